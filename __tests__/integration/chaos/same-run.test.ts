/**
 * One writer per VirtualService even inside one workflow run: the legs of a matrix job and two
 * steps of one job share GITHUB_REPOSITORY, GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT and GITHUB_JOB. The
 * bundled action (dist/index.js, started as the runner starts it) with identical GitHub variables:
 * exactly one takes the lock, the others fail naming it and write nothing; the post step of the
 * winner still recognises the lock as its own. With lock-wait, a matrix over two routes of one
 * VirtualService promotes both, one after the other.
 */
import { describe, expect, it } from '@jest/globals'
import { startAction, type ActionProcess } from '../../support/action-process.js'
import { applyManifests, waitFor } from '../../support/test-cluster.js'
import { stateOf, testCluster } from '../../support/rollout-harness.js'
import { canaryWeightOf, expectBackOnStable, LEASE, seedInputs, seedsDeletedAfterAll, VS, view, watchObjects } from './seed-rollout.js'

const seed = seedsDeletedAfterAll()

/** The GitHub variables every leg of one matrix job gets alike. */
const sameRun = (id: string): Record<string, string> => ({
  GITHUB_REPOSITORY: 'istio-canary/matrix',
  GITHUB_RUN_ID: id,
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_JOB: 'deploy'
})

const HOLDER = /Lock taken: Lease \S+, holder "([^"]+)"/
const exitedBy = (p: ActionProcess) => p.exited.then(() => true)

describe('identical GitHub run variables (matrix legs, two steps of one job)', () => {
  it.each([2, 10])('%i processes of one run: exactly one proceeds, the others fail naming it and write nothing', async (n) => {
    const s = await seed(`same-run-${n}`)
    const inputs = seedInputs(s, { steps: '20,100', interval: '10m', settle: '0s', 'lock-duration': '2m' })
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    const drWatch = await watchObjects(s.ns, 'DestinationRule')
    const env = sameRun(String(77_000 + n))

    const procs = Array.from({ length: n }, () => startAction(inputs, { env }))
    const done = new Set<ActionProcess>()
    for (const p of procs) void exitedBy(p).then(() => done.add(p))
    await waitFor(() => done.size >= n - 1, { what: `${n - 1} losers to exit`, timeoutMs: 120_000 })
    const running = procs.filter((p) => !done.has(p))
    expect(running).toHaveLength(1)
    const [winner] = running
    const holder = HOLDER.exec(await winner.waitForLine(HOLDER, 60_000))![1]
    expect(holder).toMatch(/^istio-canary\/matrix run \d+ attempt 1 job deploy invocation [0-9a-f]{8} \(https:\/\/github.com\//)

    const lease = (await view(s.ns)).lease
    expect(lease?.spec.holderIdentity).toBe(holder)
    expect(lease?.spec.leaseTransitions).toBe(1) // one create won; nobody took it over
    for (const l of procs.filter((p) => p !== winner)) {
      expect((await l.exited).code).toBe(1)
      expect(l.outputs().error).toContain(`LockedError: VirtualService "${s.ns}/${VS}" is locked by ${JSON.stringify(holder)}`)
      expect(l.outputs().result).toBe('unchanged')
      expect(l.log()).not.toMatch(/Lock taken|Applying Deployment|Weights:/)
    }

    // Every version of the VirtualService and the DestinationRule written is the winner's: one
    // subset added, the state at epoch 1 only, the canary at 20 %.
    await waitFor(async () => canaryWeightOf((await view(s.ns)).vs) === 20, { what: 'the winner at 20 %', timeoutMs: 60_000 })
    vsWatch.stop()
    drWatch.stop()
    // What is there: one rollout (the winner's, epoch 1, its history only), one subset added.
    const now = await view(s.ns)
    expect(now.state?.epoch).toBe(1)
    expect(now.state?.history.filter((h) => h.kind === 'started')).toHaveLength(1)
    expect(now.dr.spec.subsets.map((x: { name: string }) => x.name)).toEqual(['v1', 'v2'])
    // And every version written on the way, as far as the watches saw them (a watch can be cut
    // off on a loaded machine; then only the end state above speaks).
    const vsWrites = vsWatch.events.filter((e) => e.type === 'MODIFIED')
    expect(new Set(vsWrites.map((e) => stateOf(e.obj)?.epoch)).size).toBeLessThanOrEqual(1)
    for (const e of vsWrites) expect(stateOf(e.obj)?.epoch).toBe(1)
    expect(drWatch.events.filter((e) => e.type === 'MODIFIED').length).toBeLessThanOrEqual(1)

    // The winner's runner is lost (SIGKILL, its Lease stays held); its post step, with the saved
    // state, recognises the lock as its own and finishes the rollback at once.
    winner.child.kill('SIGKILL')
    await winner.exited
    const post = winner.post()
    const posted = await post.exited
    expect(post.log()).not.toMatch(/LockedError|is locked by/)
    expect(post.log()).toContain(`holder ${JSON.stringify(holder)}`)
    expect(posted.code).toBe(0)
    await expectBackOnStable(s.ns, ['aborted'])
    console.log(
      `same run, ${n} processes: 1 winner (${holder}), ${n - 1} LockedError with no write; VirtualService writes seen by the watch ${vsWrites.length}, all epoch 1; post step resumed its own lock`
    )
  })

  it('a matrix over two routes of one VirtualService with lock-wait: both promoted, one after the other', async () => {
    const s = await seed('matrix')
    await applyManifests(
      s.ns,
      JSON.stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: VS },
        spec: {
          hosts: ['istio-service'],
          http: [
            {
              name: 'beta',
              match: [{ headers: { 'x-beta': { exact: 'true' } } }],
              route: [{ destination: { host: 'istio-service', subset: 'v1' } }]
            },
            { name: 'primary', route: [{ destination: { host: 'istio-service', subset: 'v1' } }] }
          ]
        }
      })
    )
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    const env = sameRun('88001')
    const legs = ['primary', 'beta'].map((route) =>
      startAction(seedInputs(s, { route, steps: '50,100', interval: '3s', settle: '1s', 'lock-wait': '5m', 'check-every': '0' }), { env })
    )
    const ends = await Promise.all(legs.map((l) => l.exited))
    for (const l of legs) {
      expect({ code: ends[legs.indexOf(l)].code, error: l.outputs().error }).toEqual({ code: 0, error: '' })
      expect(l.outputs().result).toBe('promoted')
    }
    vsWatch.stop()

    // One waited, naming the other; it took the lock only after the other had released it.
    const [first, second] = [...legs].sort((a, b) => ends[legs.indexOf(a)].at - ends[legs.indexOf(b)].at)
    const firstHolder = HOLDER.exec(first.lines.find((l) => HOLDER.test(l))!)![1]
    const waited = second.lines.find((l) => l.includes('Waiting for the lock'))
    expect(waited).toContain(`held by ${JSON.stringify(firstHolder)}`)
    expect(waited).toContain(`Lease ${s.ns}/${LEASE}`)
    expect(first.log()).not.toContain('Waiting for the lock')

    // Writes never interleave: the VirtualService's states go through one rollout, then the other.
    const routesInState = vsWatch.events.filter((e) => e.type === 'MODIFIED').map((e) => stateOf(e.obj)?.route.name)
    const switches = routesInState.filter((r, i) => i > 0 && r !== routesInState[i - 1]).length
    expect(switches).toBe(1)

    // The first promotion kept v1 (the other route still served it); the second retired it.
    expect(first.outputs().retired).toBe('false')
    expect(first.outputs()['retire-blocked-by']).toMatch(new RegExp(`VirtualService ${s.ns}/${VS} http route "(beta|primary)"`))
    expect(second.outputs().retired).toBe('true')
    const c = testCluster()
    const vs = (await c.getIstio('VirtualService', s.ns, VS))!
    for (const r of vs.spec.http) expect(r.route.map((d: { destination: { subset: string } }) => d.destination.subset)).toEqual(['v2'])
    const dr = (await c.getIstio('DestinationRule', s.ns, 'istio-destinationrule'))!
    expect(dr.spec.subsets.map((x: { name: string }) => x.name)).toEqual(['v2'])
    expect((await c.getDeployment(s.ns, 'istio-deployment-v1'))?.spec.replicas).toBe(0)
    console.log(
      `matrix pair: ${first.inputs.route} promoted first (${((ends[legs.indexOf(first)].at - first.startedAt) / 1000).toFixed(1)} s), ${second.inputs.route} waited and promoted after it (${((ends[legs.indexOf(second)].at - second.startedAt) / 1000).toFixed(1)} s)`
    )
  })
})
