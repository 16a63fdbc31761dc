/**
 * One writer per VirtualService. Runs race for an absent lease (exactly one
 * Lease create wins), runs arriving while it is held fail fast naming the holder and change
 * nothing, and a holder whose lease was taken over after expiry can no longer write (fencing).
 */
import { describe, expect, it } from '@jest/globals'
import { LeaseLock } from '../../../src/cluster/lease-lock.js'
import { makeCommandDeps } from '../../../src/commands/command-deps.js'
import { runCommand } from '../../../src/commands/run-command.js'
import { MemoryLog } from '../../../src/commands/runtime.js'
import { readConfig } from '../../../src/config/config.js'
import { ConflictError } from '../../../src/errors.js'
import { parseGateConfig } from '../../../src/health/gate-config.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { runAction, stateOf, testCluster, type RunOutcome } from '../../support/rollout-harness.js'
import { waitFor } from '../../support/test-cluster.js'
import { canaryWeightOf, expectBackOnStable, seedInputs, seedsDeletedAfterAll, versionsOf, view, watchObjects } from './seed-rollout.js'

const seed = seedsDeletedAfterAll()

interface Racer {
  holder: string
  controller: AbortController
  promise: Promise<RunOutcome>
  outcome?: RunOutcome
  error?: unknown
}

function startRacer(inputs: Record<string, string>, holder: string): Racer {
  const controller = new AbortController()
  const racer: Racer = { holder, controller, promise: runAction(inputs, { holder, signal: controller.signal }) }
  racer.promise.then(
    (o) => (racer.outcome = o),
    (e) => (racer.error = e)
  )
  return racer
}

const settled = (r: Racer) => r.outcome !== undefined || r.error !== undefined

/** The winner is at 20 % and sleeping through a 60 s bake: nothing of its own writes for a while. */
async function waitUntilBaking(ns: string): Promise<void> {
  await waitFor(
    async () => {
      const v = await view(ns)
      return canaryWeightOf(v.vs) === 20 && v.state?.phase === 'progressing' && v.state.stepIndex === 0
    },
    { what: `the winner baking at 20 % in ${ns}`, timeoutMs: 60_000 }
  )
}

function expectLockedBy(report: RunReport, holder: string): void {
  expect(report.result).toBe('unchanged')
  expect(report.error?.kind).toBe('LockedError')
  expect(report.error?.message).toContain(`is locked by ${JSON.stringify(holder)}`)
}

/** Cancel the winner (its own weight-0 write), then an abort by anyone finishes the rollback. */
async function cleanUp(ns: string, winner: Racer, inputs: Record<string, string>): Promise<void> {
  winner.controller.abort(new Error('test over'))
  const done = await winner.promise
  expect(done.report.phase).toBe('rolling-back')
  const abort = await runAction({ ...inputs, command: 'abort' }, { holder: 'cleanup' })
  expect(abort.report.result).toBe('rolled-back')
  await expectBackOnStable(ns)
}

describe('one writer per VirtualService', () => {
  it.each([2, 10])('%i simultaneous deploys: exactly one proceeds; every other fails naming it and writes nothing', async (n) => {
    const s = await seed(`race-${n}`)
    const inputs = seedInputs(s, { steps: '20,100', interval: '60s' })
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    const before = await view(s.ns)
    expect(before.lease).toBeUndefined()

    const racers = Array.from({ length: n }, (_, i) => startRacer(inputs, `racer-${n}-${i}`))
    await waitFor(() => racers.filter(settled).length >= n - 1, { what: `${n - 1} losers to return`, timeoutMs: 60_000 })
    const running = racers.filter((r) => !settled(r))
    expect(running).toHaveLength(1)
    const [winner] = running
    const losers = racers.filter((r) => r !== winner)

    // Exactly one Lease create won; it names the winner and was never taken over.
    const lease = (await view(s.ns)).lease
    expect(lease?.spec.holderIdentity).toBe(winner.holder)
    expect(lease?.spec.leaseTransitions).toBe(1)
    for (const l of losers) {
      expect(l.error).toBeUndefined()
      expectLockedBy(l.outcome!.report, winner.holder)
      expect(l.outcome!.log.lines.join('\n')).not.toMatch(/Applying Deployment|Weights:/)
    }

    // Every version of the VirtualService written during the race is the winner's.
    await waitUntilBaking(s.ns)
    vsWatch.stop()
    const written = vsWatch.events.filter((e) => e.type === 'MODIFIED').map((e) => stateOf(e.obj))
    expect(written.length).toBeGreaterThanOrEqual(2) // canary-ready, 20 %
    for (const st of written) {
      expect(st?.startedBy).toBe(winner.holder)
      expect(st?.epoch).toBe(1)
    }

    // Late arrivals while the lock is held: deploy, promote and abort are refused before any write.
    const held = versionsOf(await view(s.ns))
    const late = await Promise.all([
      runAction(inputs, { holder: 'late-deploy' }),
      runAction({ ...inputs, command: 'promote', full: 'true' }, { holder: 'late-promote' }),
      runAction({ ...inputs, command: 'abort' }, { holder: 'late-abort' })
    ])
    for (const l of late) expectLockedBy(l.report, winner.holder)
    expect(versionsOf(await view(s.ns))).toEqual(held)
    console.log(
      `race of ${n}: winner ${winner.holder}, ${losers.length} LockedError, ${late.length} late runs refused, VirtualService versions written ${written.length} (all the winner's)`
    )

    await cleanUp(s.ns, winner, inputs)
  })

  it('a stale lock holder is fenced: once its lease was taken over after expiry it can no longer write', async () => {
    const s = await seed('fenced')
    const cluster = testCluster()

    // The LeaseLock itself: B takes over A's expired lease (B's clock is past A's expiry + skew).
    const a = new LeaseLock(cluster, { namespace: s.ns, virtualService: 'lock-only', holder: 'A', leaseDurationSeconds: 15 })
    const b = new LeaseLock(cluster, {
      namespace: s.ns,
      virtualService: 'lock-only',
      holder: 'B',
      leaseDurationSeconds: 15,
      now: () => new Date(Date.now() + 21_000)
    })
    const got = await a.acquire()
    const took = await b.acquire()
    expect(took).toMatchObject({ takeover: true, previousHolder: 'A', epoch: got.epoch + 1 })
    await expect(a.renew()).rejects.toThrow(ConflictError)
    await expect(a.release()).resolves.toBe(false)
    expect((await cluster.getLease(s.ns, b.name))?.spec.holderIdentity).toBe('B')
    await expect(b.release()).resolves.toBe(true)

    // A whole run: A deploys and bakes at 20 %, writing its gate evaluations every 2 s.
    const inputs = seedInputs(s, { steps: '20,100', interval: '60s', 'check-every': '2s', 'lock-duration': '15s' })
    const runA = runAction(inputs, { holder: 'run-A' })
    await waitUntilBaking(s.ns)
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    await waitFor(() => vsWatch.events.some((e) => stateOf(e.obj)?.epoch === 1), {
      what: "one of A's gate evaluations written",
      timeoutMs: 10_000
    })

    // B: an abort whose clock says A's lease expired (as after A's runner stalled for 21 s).
    const config = readConfig({ settle: '0s', ...inputs, command: 'abort' })
    const logB = new MemoryLog()
    const depsB = makeCommandDeps({
      cluster,
      config,
      gateConfig: parseGateConfig({ 'check-every': '0' }, process.env),
      log: logB,
      signal: new AbortController().signal,
      holder: 'run-B',
      cwd: process.cwd()
    })
    depsB.makeLock = (namespace, virtualService) =>
      new LeaseLock(cluster, {
        namespace,
        virtualService,
        holder: 'run-B',
        leaseDurationSeconds: 15,
        now: () => new Date(Date.now() + 21_000)
      })
    const reportB = await runCommand(config, depsB)
    expect(reportB.result).toBe('rolled-back')
    expect(logB.lines.join('\n')).toMatch(/Took over the lock from run-A/)

    // A's next write meets B's epoch on the VirtualService: FencedError, and A stops.
    const a2 = await runA
    expect(a2.report.error?.kind).toBe('FencedError')
    expect(a2.report.error?.message).toMatch(/another run took over this rollout \(lock epoch 2 > ours 1\)/)
    vsWatch.stop()

    // Fencing, in the order the apiserver stored the versions: after B's first write, none of A's.
    const epochs = vsWatch.events.filter((e) => e.type === 'MODIFIED').map((e) => stateOf(e.obj)?.epoch)
    const firstB = epochs.indexOf(2)
    expect(firstB).toBeGreaterThan(0)
    expect(epochs.slice(firstB).every((e) => e === 2)).toBe(true)
    console.log(`fencing: VirtualService epochs in write order ${epochs.join(',')}`)

    const v = await expectBackOnStable(s.ns, ['rolled-back'])
    expect(v.state?.epoch).toBe(2)
    expect(v.state?.history.map((h) => h.kind)).toContain('takeover')
    expect(v.lease).toBeUndefined() // B released; A's release did not delete anything of B's
  })
})
