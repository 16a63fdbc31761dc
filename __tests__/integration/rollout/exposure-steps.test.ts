/**
 * Header/cookie-matched and mirror steps on the real apiserver with the Istio CRDs. A match step
 * puts a route of the action's own before the driven route (only matching requests reach the
 * canary); a mirror step puts a mirror to the canary on the driven route. Either is recorded in the
 * rollout state and must be gone on every path out of its step: the next step, promotion, abort,
 * a gate's rollback, supersede, cancellation (SIGINT), and a run killed and taken over by the next.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { renderPlainLog, renderReport } from '../../../src/report/render-report.js'
import { bundleAction, startAction } from '../../support/action-process.js'
import { runAction, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { clearTraffic, deleteNamespace, loadTestEnv, readSeedScenario, setTraffic, waitFor } from '../../support/test-cluster.js'
import { leaseExpiry } from '../../../src/cluster/lease-lock.js'
import { expectBackOnStable, seedInputs, seedNamespace, versionsOf, view, VS, type Seed } from '../chaos/seed-rollout.js'

const seeds: Seed[] = []
afterAll(async () => {
  await Promise.all(
    seeds.flatMap((s) => [clearTraffic(s.ns, 'istio-deployment-v1'), clearTraffic(s.ns, 'istio-deployment-v2'), deleteNamespace(s.ns)])
  )
})

async function seed(prefix: string): Promise<Seed> {
  const s = await seedNamespace(prefix)
  seeds.push(s)
  return s
}

type HttpRoute = {
  name?: string
  match?: unknown
  route: Array<{ destination: { host: string; subset?: string }; weight?: number }>
} & Record<string, unknown>

const http = (vs: KubeObject): HttpRoute[] => vs.spec?.http ?? []
const owned = (vs: KubeObject): HttpRoute[] => http(vs).filter((r) => r.name?.startsWith('istio-canary-'))
/** The driven route: the seed's one route, whatever the action inserted before it. */
const driven = (vs: KubeObject): HttpRoute => http(vs).find((r) => !r.name?.startsWith('istio-canary-'))!
const split = (vs: KubeObject) => driven(vs).route.map((d) => [d.destination.subset, d.weight])

/** The match route a `header:x-canary=<value>` step of `subset` puts before the driven route. */
const headerRoute = (subset: string, value = 'always') => ({
  name: `istio-canary-${subset}`,
  match: [{ headers: { 'x-canary': { exact: value } } }],
  route: [{ destination: { host: 'istio-service', subset } }]
})

/** Nothing of a match or mirror step is left: one route, no mirror, no exposure in the state. */
async function expectNoExposure(ns: string): Promise<void> {
  const { vs, state } = await view(ns)
  expect(http(vs)).toHaveLength(1)
  expect(owned(vs)).toEqual([])
  expect(driven(vs).mirror).toBeUndefined()
  expect(driven(vs).mirrorPercentage).toBeUndefined()
  expect(state?.exposure).toBeUndefined()
}

const abort = (s: Seed) => runAction({ command: 'abort', 'virtual-service': VS, namespace: s.ns })
const promote = (s: Seed) =>
  runAction({ command: 'promote', 'virtual-service': VS, namespace: s.ns, 'version-label': 'istio-test-version' })

describe('header/cookie-matched steps', () => {
  it('the match route sits before the driven route while its step lasts; the promotion removes it', async () => {
    const s = await seed('match-promote')
    const first = await runAction(seedInputs(s, { steps: 'header:x-canary=always,pause,100' }))
    expect(first.report.error).toBeUndefined()
    expect(first.report).toMatchObject({ result: 'paused', canaryWeight: 0 })
    const paused = await view(s.ns)
    expect(http(paused.vs)[0]).toEqual(headerRoute('v2'))
    expect(http(paused.vs)).toHaveLength(2)
    // Random traffic stays on stable: the canary's destination is there at weight 0.
    expect(split(paused.vs)).toEqual([
      ['v1', 100],
      ['v2', 0]
    ])
    expect(paused.state?.exposure).toEqual({ kind: 'match', match: { on: 'header', name: 'x-canary', op: 'exact', value: 'always' } })
    expect(first.log.lines.join('\n')).toContain('requests matching header:x-canary=always go to v2')

    const second = await promote(s)
    expect(second.report.error).toBeUndefined()
    expect(second.report.result).toBe('promoted')
    const { vs, state } = await view(s.ns)
    expect(http(vs)).toEqual([{ route: [{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }] }])
    expect(state?.exposure).toBeUndefined()
  })

  it('a cookie step, then weights: the first weight write replaces the match route', async () => {
    const s = await seed('match-next')
    const marks: Array<{ exposed: boolean; weight: number }> = []
    const { report } = await runAction(seedInputs(s, { steps: 'cookie:beta=yes,30,pause,100' }), {
      onProgress: (r) => marks.push({ exposed: r.state?.exposure !== undefined, weight: r.state?.canaryWeight ?? -1 })
    })
    expect(report.error).toBeUndefined()
    expect(report).toMatchObject({ result: 'paused', canaryWeight: 30 })
    // Every write the state recorded: exposed only at weight 0, never together with a weight above it.
    expect(marks.some((m) => m.exposed)).toBe(true)
    expect(marks.filter((m) => m.exposed).every((m) => m.weight === 0)).toBe(true)
    const { vs } = await view(s.ns)
    expect(owned(vs)).toEqual([])
    expect(split(vs)).toEqual([
      ['v1', 70],
      ['v2', 30]
    ])
    expect((await abort(s)).report.result).toBe('aborted')
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })

  it('abort removes the match route first, then the destination and the subset', async () => {
    const s = await seed('match-abort')
    expect((await runAction(seedInputs(s, { steps: 'header:x-canary=always,pause,100' }))).report.result).toBe('paused')
    const aborted = await abort(s)
    expect(aborted.report.result).toBe('aborted')
    expect(aborted.report.undone).toEqual([
      'header:x-canary=always to v2 removed',
      'destination v2 removed from the route',
      'subset v2 removed from DestinationRule istio-destinationrule',
      'Deployment istio-deployment-v2 scaled to 0'
    ])
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })

  it('supersede: the old version’s match route goes before the new version’s comes', async () => {
    const s = await seed('match-supersede')
    expect((await runAction(seedInputs(s, { steps: 'header:x-canary=always,pause,100' }))).report.result).toBe('paused')
    const v3 = writeManifest(readSeedScenario('deployment-v2.yaml').replaceAll('v2', 'v3'))
    const next = await runAction({ ...seedInputs(s, { steps: 'header:x-canary=v3,pause,100', supersede: 'true' }), manifests: v3 })
    expect(next.report.error).toBeUndefined()
    expect(next.report.result).toBe('paused')
    expect(next.report.undone).toContain('header:x-canary=always to v2 removed')
    const { vs, state } = await view(s.ns)
    expect(owned(vs)).toEqual([headerRoute('v3', 'v3')])
    expect(split(vs)).toEqual([
      ['v1', 100],
      ['v3', 0]
    ])
    expect(state?.canary.version).toBe('v3')
    expect((await abort(s)).report.result).toBe('aborted')
    await expectNoExposure(s.ns)
  })

  it('cancellation (SIGINT) mid-step removes the match route in its one write; the next run finishes', async () => {
    const s = await seed('match-sigint')
    const controller = new AbortController()
    const run = await runAction(seedInputs(s, { steps: 'header:x-canary=always,100', interval: '5m' }), {
      signal: controller.signal,
      onProgress: (r) => {
        if (r.state?.exposure && r.state.phase === 'progressing') controller.abort()
      }
    })
    expect(run.report.result).toBe('unchanged')
    const after = await view(s.ns)
    expect(after.state?.phase).toBe('rolling-back')
    expect(owned(after.vs)).toEqual([])
    expect(after.state?.exposure).toBeUndefined()
    // What the post step does: finish the rollback.
    expect((await abort(s)).report.result).toBe('rolled-back')
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })

  it('on-cancel freeze keeps the match route; the promote run continues from it and removes it', async () => {
    const s = await seed('match-freeze')
    const controller = new AbortController()
    await runAction(seedInputs(s, { steps: 'header:x-canary=always,100', interval: '5m', 'on-cancel': 'freeze' }), {
      signal: controller.signal,
      onProgress: (r) => {
        if (r.state?.exposure && r.state.phase === 'progressing') controller.abort()
      }
    })
    const frozen = await view(s.ns)
    expect(frozen.state?.phase).toBe('paused')
    expect(owned(frozen.vs)).toEqual([headerRoute('v2')])
    const resumed = await runAction({
      command: 'promote',
      'virtual-service': VS,
      namespace: s.ns,
      'version-label': 'istio-test-version',
      interval: '1s'
    })
    expect(resumed.report.error).toBeUndefined()
    expect(resumed.report.result).toBe('promoted')
    // The resumed run baked the match step again on the route as it was (not dropped, not re-added:
    // each bake write checks it is there), then moved on.
    const history = resumed.report.state!.history
    const after = history.slice(history.findIndex((h) => h.kind === 'promote-requested'))
    expect(after.filter((h) => h.kind === 'weight').map((h) => h.canaryWeight)).toEqual([100])
    expect(after.findIndex((h) => h.kind === 'gates' && h.canaryWeight === 0)).toBeGreaterThan(0)
    expect(after.findIndex((h) => h.kind === 'gates' && h.canaryWeight === 0)).toBeLessThan(after.findIndex((h) => h.kind === 'weight'))
    await expectNoExposure(s.ns)
  })

  it('a hand-deleted match route is drift: the rollout rolls back instead of judging nobody', async () => {
    const s = await seed('match-drift')
    const cluster = testCluster()
    let deleted = false
    const { report } = await runAction(seedInputs(s, { steps: 'header:x-canary=always,100', interval: '20s', 'check-every': '2s' }), {
      onProgress: (r) => {
        if (!deleted && r.state?.exposure) {
          deleted = true
          void (async () => {
            const vs = (await cluster.getIstio('VirtualService', s.ns, VS))!
            await cluster.replaceIstio({ ...vs, spec: { ...vs.spec, http: http(vs).filter((x) => !x.name?.startsWith('istio-canary-')) } })
          })()
        }
      }
    })
    expect(report.result).toBe('rolled-back')
    expect(report.error?.message).toMatch(
      /route "istio-canary-v2" of VirtualService .* is not what this rollout set \(header:x-canary=always\)/
    )
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })
})

describe('gates at a match step judge the matched traffic', () => {
  const gated = (s: Seed, extra: Record<string, string>) =>
    seedInputs(s, {
      steps: 'header:x-canary=always,100',
      interval: '6s',
      'check-every': '3s',
      'prometheus-url': loadTestEnv().prometheusUrl,
      'success-rate': '99',
      'min-requests': '5',
      ...extra
    })

  it('a quiet match step is inconclusive, not a pass: on-no-data pauses it, the route stays until the abort', async () => {
    const s = await seed('match-quiet')
    await setTraffic(s.ns, 'istio-deployment-v1', { rps: 40, errorRatio: 0.002, latencyMs: 60 })
    const { report } = await runAction(gated(s, { 'inconclusive-limit': '2' }))
    expect(report.result).toBe('paused')
    const evaluations = report.state!.history.filter((h) => h.kind === 'gates').map((h) => h.evaluation!)
    expect(evaluations.length).toBeGreaterThanOrEqual(2)
    expect(evaluations.every((e) => e.verdict === 'inconclusive')).toBe(true)
    expect(evaluations.flatMap((e) => e.checks).find((c) => c.name === 'min-requests')?.detail).toMatch(/too little traffic/)
    expect(owned((await view(s.ns)).vs)).toEqual([headerRoute('v2')])
    expect((await abort(s)).report.result).toBe('aborted')
    await expectNoExposure(s.ns)
  })

  it('a failing canary at its match step is rolled back, the match route removed first', async () => {
    const s = await seed('match-fail')
    await setTraffic(s.ns, 'istio-deployment-v1', { rps: 40, errorRatio: 0.002, latencyMs: 60 })
    await setTraffic(s.ns, 'istio-deployment-v2', { rps: 10, errorRatio: 0.3, latencyMs: 60 })
    const { report } = await runAction(gated(s, {}))
    expect(report.result).toBe('rolled-back')
    expect(report.state!.history.filter((h) => h.kind === 'weight').map((h) => [h.canaryWeight, h.message])).toEqual([
      [0, 'header:x-canary=always']
    ])
    expect(report.undone?.[0]).toBe('header:x-canary=always to v2 removed')
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })
})

describe('webhooks at a match step', () => {
  it('a webhook is told what reaches the canary (a load test must send the header)', async () => {
    const s = await seed('match-webhook')
    const bodies: Array<Record<string, unknown>> = []
    const server = createServer((req, res) => {
      let text = ''
      req.on('data', (c: Buffer) => (text += c.toString()))
      req.on('end', () => {
        bodies.push(JSON.parse(text) as Record<string, unknown>)
        res.writeHead(200).end('{}')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
      const { report } = await runAction(
        seedInputs(s, { steps: 'header:x-canary=always,50,100', webhooks: `- name: load-test\n  url: ${url}\n  moments: [bake]` })
      )
      expect(report.result).toBe('promoted')
      const at = (weight: number) => bodies.filter((b) => b.canaryWeight === weight).map((b) => b.exposure)
      expect(at(0).length).toBeGreaterThan(0)
      expect(new Set(at(0).map((e) => JSON.stringify(e)))).toEqual(
        new Set([JSON.stringify({ kind: 'match', match: { on: 'header', name: 'x-canary', op: 'exact', value: 'always' } })])
      )
      expect(at(50).length).toBeGreaterThan(0)
      expect(at(50).every((e) => e === undefined)).toBe(true)
    } finally {
      server.close()
    }
  })
})

describe('a run killed at a match step', () => {
  it('the next deploy takes over: the dead run’s route is removed, its own put back once', async () => {
    bundleAction()
    const s = await seed('match-kill')
    const inputs = seedInputs(s, { steps: 'header:x-canary=always,pause,100', interval: '5m', 'lock-duration': '15s' })
    const main = startAction(inputs, { env: { GITHUB_RUN_ID: '7101' } })
    await main.waitForLine(/requests matching header:x-canary=always go to v2/)
    main.child.kill('SIGKILL')
    await main.exited
    const dead = await view(s.ns)
    expect(owned(dead.vs)).toEqual([headerRoute('v2')])
    expect(dead.state?.phase).toBe('progressing')
    await waitFor(
      async () => {
        const lease = (await view(s.ns)).lease
        const expiry = lease ? leaseExpiry(lease) : 0
        return expiry !== undefined && Date.now() > expiry + 5_500
      },
      { timeoutMs: 90_000, intervalMs: 250, what: `the lease in ${s.ns} to expire` }
    )
    const next = await runAction({ ...inputs, interval: '1s' })
    expect(next.report.error).toBeUndefined()
    expect(next.report.result).toBe('paused')
    expect(next.report.undone).toContain('header:x-canary=always to v2 removed')
    const { vs, state } = await view(s.ns)
    expect(owned(vs)).toEqual([headerRoute('v2')])
    expect(state?.history.map((h) => h.kind)).toContain('started')
    expect((await abort(s)).report.result).toBe('aborted')
    await expectNoExposure(s.ns)
  })
})

describe('mirror steps', () => {
  it('mirrors from the driven route while the step lasts; the next step removes it; promotion ends clean', async () => {
    const s = await seed('mirror-promote')
    const first = await runAction(seedInputs(s, { steps: 'header:x-canary=always,mirror:50,pause,100' }))
    expect(first.report.error).toBeUndefined()
    expect(first.report.result).toBe('paused')
    const paused = await view(s.ns)
    // The mirror step's write removed the header step's route.
    expect(owned(paused.vs)).toEqual([])
    expect(driven(paused.vs).mirror).toEqual({ host: 'istio-service', subset: 'v2' })
    expect(driven(paused.vs).mirrorPercentage).toEqual({ value: 50 })
    expect(split(paused.vs)).toEqual([
      ['v1', 100],
      ['v2', 0]
    ])
    expect(paused.state?.exposure).toEqual({ kind: 'mirror', percent: 50 })
    expect(first.log.lines.join('\n')).toContain("50% of v1's requests mirrored to v2 (responses dropped)")
    // The report names the step as written and says where the canary's numbers came from.
    const md = renderReport(first.report)
    expect(md).toMatch(/\| 2 \| mirror:50 \| .*the canary's numbers came from mirrored requests \(their responses were dropped\)/)
    expect(md).toMatch(/\| 1 \| header:x-canary=always \| .*the canary's numbers came from the matching requests only/)
    expect(renderPlainLog(first.report)).toMatch(/step 2: mirror:50 \(mirrored requests\) for /)
    expect((await promote(s)).report.result).toBe('promoted')
    const { vs } = await view(s.ns)
    expect(http(vs)).toEqual([{ route: [{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }] }])
  })

  it('abort removes the mirror before the subset it points at', async () => {
    const s = await seed('mirror-abort')
    expect((await runAction(seedInputs(s, { steps: 'mirror:25,pause,100' }))).report.result).toBe('paused')
    const aborted = await abort(s)
    expect(aborted.report.undone?.[0]).toBe('mirror:25 to v2 removed')
    await expectBackOnStable(s.ns)
    await expectNoExposure(s.ns)
  })

  it('cancellation (SIGINT) mid-mirror removes the mirror in its one write', async () => {
    const s = await seed('mirror-sigint')
    const controller = new AbortController()
    await runAction(seedInputs(s, { steps: 'mirror:100,100', interval: '5m' }), {
      signal: controller.signal,
      onProgress: (r) => {
        if (r.state?.exposure && r.state.phase === 'progressing') controller.abort()
      }
    })
    const after = await view(s.ns)
    expect(after.state?.phase).toBe('rolling-back')
    expect(driven(after.vs).mirror).toBeUndefined()
    expect((await abort(s)).report.result).toBe('rolled-back')
    await expectNoExposure(s.ns)
  })

  it('refuses a mirror step on a route that has a mirror of its own, before any write', async () => {
    const s = await seed('mirror-foreign')
    const cluster = testCluster()
    const vs = (await cluster.getIstio('VirtualService', s.ns, VS))!
    const theirs = { host: 'istio-service', subset: 'v1' }
    vs.spec.http[0].mirror = theirs
    await cluster.replaceIstio(vs)
    const before = await view(s.ns)
    const { report } = await runAction(seedInputs(s, { steps: 'mirror:50,100' }))
    expect(report.result).toBe('unchanged')
    expect(report.error?.message).toMatch(
      /^Input 'steps' \("mirror:50,100"\) cannot be carried out: route #0 of VirtualService .*istio-virtualservice already mirrors to .*expected no mirror of its own/
    )
    const after = await view(s.ns)
    expect(versionsOf(after)).toEqual(versionsOf(before))
    expect(after.canary).toBeUndefined()
  })
})
