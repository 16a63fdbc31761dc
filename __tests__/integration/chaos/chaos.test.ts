/**
 * Cancellation and lost runners: the bundled action
 * (dist/index.js) is stopped the way the runner stops it — SIGINT (cancel), SIGTERM (7.5 s later),
 * SIGKILL (runner lost) — at step boundaries and in the middle of waits, and must end with all
 * traffic on stable: after SIGINT/SIGTERM through its own cancellation path plus the post step,
 * after SIGKILL through the next run, once the dead run's lease expired.
 *
 * Every case runs in its own namespace, all at once (they are independent); each `it` checks one
 * case's outcome. SIGINT -> exit and SIGINT -> canary weight 0 are printed as figures.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { leaseExpiry } from '../../../src/cluster/lease-lock.js'
import { bundleAction, startAction, type ActionProcess } from '../../support/action-process.js'
import { deleteNamespace, waitFor } from '../../support/test-cluster.js'
import {
  canaryWeightOf,
  expectBackOnStable,
  seedInputs,
  seedNamespace,
  versionsOf,
  view,
  type ClusterView,
  type Seed
} from './seed-rollout.js'

/** The runner's budget between SIGINT and the kill of the process tree: 7.5 s + 2.5 s. */
const RUNNER_BUDGET_MS = 10_000
const STEPS = { steps: '20,50,100', interval: '3s', settle: '1s', 'lock-duration': '15s' }

interface Figures {
  /** Signal sent -> process exited. */
  exitMs?: number
  /** Signal sent -> the VirtualService shows canary weight 0 (or no canary destination). */
  weightZeroMs?: number
  /** Canary weight when the signal was sent. */
  weightAtSignal?: number
}

interface CaseOutcome {
  seed: Seed
  main: ActionProcess
  mainExit: { code: number | null; signal: NodeJS.Signals | null }
  figures: Figures
  /** The post step (SIGINT/SIGTERM) or the later runs (SIGKILL). */
  followUps: Record<string, { run: ActionProcess; exit: { code: number | null; signal: NodeJS.Signals | null } }>
  /** Views of the cluster around a status run (SIGKILL). */
  aroundStatus?: { before: ClusterView; after: ClusterView }
  afterMain: ClusterView
}

type Signal = 'SIGINT' | 'SIGTERM' | 'SIGKILL'

interface CaseSpec {
  name: string
  signal: Signal
  /** Extra inputs. */
  inputs?: Record<string, string>
  canary?: Parameters<typeof seedNamespace>[1]
  /** Waits until the moment to send the signal. */
  until: (run: ActionProcess) => Promise<unknown>
  /** After SIGKILL: what the next run does. */
  next?: 'status-then-abort' | 'deploy'
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))
let runIds = 5000

/** Signal -> canary weight 0 on the VirtualService, polled every 20 ms. */
async function timeToWeightZero(ns: string, sentAt: number): Promise<number> {
  await waitFor(async () => (canaryWeightOf((await view(ns)).vs) ?? 0) === 0, {
    intervalMs: 20,
    timeoutMs: 30_000,
    what: `canary weight 0 in ${ns}`
  })
  return Date.now() - sentAt
}

async function runToEnd(run: ActionProcess, timeoutMs = 90_000) {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`run did not end within ${timeoutMs} ms; log:\n${run.log().slice(-3000)}`)), timeoutMs)
  })
  try {
    const exit = await Promise.race([run.exited, timeout])
    return { run, exit }
  } finally {
    clearTimeout(timer)
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
  }
}

/** Waits until the Lease of the killed run counts as expired for a new holder (duration + skew margin). */
async function waitForLeaseExpiry(ns: string): Promise<void> {
  await waitFor(
    async () => {
      const lease = (await view(ns)).lease
      const expiry = lease ? leaseExpiry(lease) : 0
      // LeaseLock tolerates 5 s of clock skew before it calls a lease expired.
      return expiry !== undefined && Date.now() > expiry + 5_500
    },
    { timeoutMs: 90_000, intervalMs: 250, what: `the lease in ${ns} to expire` }
  )
}

async function runCase(spec: CaseSpec): Promise<CaseOutcome> {
  const seed = await seedNamespace(`chaos-${spec.name}`, spec.canary)
  const env = { GITHUB_RUN_ID: String(runIds++) }
  const inputs = seedInputs(seed, { ...STEPS, ...(spec.inputs ?? {}) })
  const main = startAction(inputs, { env })
  await spec.until(main)
  const figures: Figures = { weightAtSignal: canaryWeightOf((await view(seed.ns)).vs) ?? 0 }
  const sentAt = Date.now()
  main.child.kill(spec.signal)
  const weightZero = spec.signal === 'SIGKILL' ? undefined : timeToWeightZero(seed.ns, sentAt)
  const { exit: mainExit } = await runToEnd(main, 30_000)
  figures.exitMs = mainExit.at - sentAt
  if (weightZero) figures.weightZeroMs = await weightZero
  const afterMain = await view(seed.ns)
  const followUps: CaseOutcome['followUps'] = {}
  let aroundStatus: CaseOutcome['aroundStatus']
  if (spec.signal !== 'SIGKILL') {
    // The runner runs the post step (post-if: always()) with the state the main step saved.
    followUps.post = await runToEnd(main.post())
  } else if (spec.next === 'status-then-abort') {
    // No post step: the runner is gone. A status run looks without writing...
    const before = await view(seed.ns)
    followUps.status = await runToEnd(startAction({ ...inputs, command: 'status' }, { env: { GITHUB_RUN_ID: String(runIds++) } }))
    aroundStatus = { before, after: await view(seed.ns) }
    // ...an abort while the dead run's lease still counts is refused, naming the holder...
    followUps.earlyAbort = await runToEnd(startAction({ ...inputs, command: 'abort' }, { env: { GITHUB_RUN_ID: String(runIds++) } }))
    // ...and once it expired, the next abort takes over and brings traffic back to stable.
    await waitForLeaseExpiry(seed.ns)
    followUps.abort = await runToEnd(startAction({ ...inputs, command: 'abort' }, { env: { GITHUB_RUN_ID: String(runIds++) } }))
  } else {
    await waitForLeaseExpiry(seed.ns)
    followUps.deploy = await runToEnd(startAction(inputs, { env: { GITHUB_RUN_ID: String(runIds++) } }))
  }
  return { seed, main, mainExit, figures, followUps, aroundStatus, afterMain }
}

const firstWeights = (run: ActionProcess) => run.waitForLine(/Weights: v1=80 v2=20/)
const secondWeights = (run: ActionProcess) => run.waitForLine(/Weights: v1=50 v2=50/)

const CASES: CaseSpec[] = [
  { name: 'sigint-after-step-1', signal: 'SIGINT', until: firstWeights },
  { name: 'sigint-after-step-2', signal: 'SIGINT', until: secondWeights },
  // A longer bake so that 2.5 s after the shift (settle is 1 s) the run is surely sleeping in it.
  { name: 'sigint-mid-bake', signal: 'SIGINT', inputs: { interval: '20s' }, until: async (r) => (await firstWeights(r), delay(2_500)) },
  {
    name: 'sigint-mid-canary-wait',
    signal: 'SIGINT',
    canary: { behaviour: 'ready', opts: { readyDelay: '60s' } },
    until: async (r) => (await r.waitForLine(/Applying Deployment/), delay(1_500))
  },
  { name: 'sigterm-after-step-1', signal: 'SIGTERM', until: firstWeights },
  // A longer bake, so that a busy machine still kills it at 20 %, not after the next step.
  // The lease outlives the status run and the early abort even on a busy machine.
  {
    name: 'sigkill-then-status-and-abort',
    signal: 'SIGKILL',
    inputs: { interval: '12s', 'lock-duration': '40s' },
    until: firstWeights,
    next: 'status-then-abort'
  },
  { name: 'sigkill-then-deploy-again', signal: 'SIGKILL', until: secondWeights, next: 'deploy' },
  // Killed after the canary subset was added, before any state was written on the VirtualService.
  {
    name: 'sigkill-before-state',
    signal: 'SIGKILL',
    inputs: { settle: '5s', 'lock-duration': '40s' },
    until: async (r) => (await r.waitForLine(/Subset v2 added to DestinationRule/), delay(500)),
    next: 'status-then-abort'
  }
]

describe('cancellation and lost runners', () => {
  const outcomes = new Map<string, Promise<CaseOutcome>>()
  const converged = new Set<string>()
  const started = Date.now()

  beforeAll(() => {
    bundleAction() // checks dist/ is there (the global setup built it)
    for (const spec of CASES) {
      const p = runCase(spec)
      p.catch(() => undefined) // reported by the case's own test
      outcomes.set(spec.name, p)
    }
  })

  afterAll(async () => {
    const settled = await Promise.allSettled(outcomes.values())
    const rows = CASES.map((spec, i) => {
      const s = settled[i]
      const f = s.status === 'fulfilled' ? s.value.figures : undefined
      return `${spec.name.padEnd(30)} ${spec.signal.padEnd(7)} at ${String(f?.weightAtSignal ?? '?').padStart(3)} %  ->exit ${String(f?.exitMs ?? '-').padStart(5)} ms  ->weight 0 ${String(f?.weightZeroMs ?? '-').padStart(5)} ms  ${converged.has(spec.name) ? 'converged' : 'NOT converged'}`
    })
    console.log(
      [`chaos: ${CASES.length} cases run, ${converged.size} converged (wall ${Math.round((Date.now() - started) / 1000)} s)`, ...rows].join(
        '\n'
      )
    )
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? deleteNamespace(s.value.seed.ns) : undefined)))
  })

  const cancelled = CASES.filter((c) => c.signal !== 'SIGKILL')
  it.each(cancelled.map((c) => [c.name, c] as const))(
    '%s: one guarded write within the runner budget, the post step finishes the rollback',
    async (name, spec) => {
      const o = await outcomes.get(name)!
      // The process ends on its own, well before the runner would kill it; the job is marked failed.
      expect(o.mainExit.signal).toBeNull()
      expect(o.mainExit.code).toBe(1)
      expect(o.figures.exitMs).toBeLessThan(RUNNER_BUDGET_MS)
      expect(o.figures.weightZeroMs).toBeLessThan(RUNNER_BUDGET_MS)
      expect(o.main.log()).toContain(`Received ${spec.signal}: stopping the rollout`)

      // What the main step left: canary weight 0, state rolling-back for the post step, lock released.
      expect(canaryWeightOf(o.afterMain.vs) ?? 0).toBe(0)
      expect(o.afterMain.state?.phase).toBe('rolling-back')
      expect(o.afterMain.state?.history.map((h) => h.kind)).toContain('cancelled')
      expect(o.afterMain.lease).toBeUndefined()
      const mainOut = o.main.outputs()
      expect(mainOut.error).toBe(`CancelledError: run cancelled (${spec.signal})`)
      expect(mainOut.phase).toBe('rolling-back')
      expect(mainOut['canary-weight']).toBe('0')
      expect(o.main.summary()).toContain('CancelledError')

      // The post step resumed the rollback from the state on the VirtualService.
      const post = o.followUps.post
      expect(post.run.log()).toContain('The main step did not finish: completing the rollback it started.')
      expect(post.exit.code).toBe(1) // a rollback fails the job
      expect(post.run.outputs()).toMatchObject({
        result: 'rolled-back',
        phase: 'rolled-back',
        'canary-weight': '0',
        'stable-version': 'v1'
      })
      expect(post.run.summary()).toContain('v2 rolled back on')
      expect(post.run.summary()).toContain('run cancelled')

      await expectBackOnStable(o.seed.ns, ['rolled-back'])
      converged.add(name)
    }
  )

  it.each([
    ['sigkill-then-status-and-abort', { phase: 'progressing', weight: 20, undone: 'canary weight 20% → 0%' }],
    // Killed between adding the canary subset and its first weight: only the state written before
    // the first change tells the next run that there is a canary and a subset to remove.
    ['sigkill-before-state', { phase: 'initializing', weight: 0, undone: 'subset v2 removed from DestinationRule' }]
  ] as const)('%s: status writes nothing, an abort waits for the lease, takes over and rolls back', async (name, expected) => {
    const o = await outcomes.get(name)!
    expect(o.mainExit.signal).toBe('SIGKILL')
    // Killed mid-rollout: the lease still names the dead run; the state says where it stopped.
    expect(canaryWeightOf(o.afterMain.vs) ?? 0).toBe(expected.weight)
    expect(o.afterMain.state?.phase).toBe(expected.phase)
    expect(o.afterMain.dr.spec.subsets.map((x: { name: string }) => x.name)).toEqual(['v1', 'v2'])
    expect(o.afterMain.canary?.spec.replicas).toBe(1)
    expect(o.afterMain.lease?.spec.holderIdentity).toContain(`run ${o.main.env.GITHUB_RUN_ID} attempt 1`)

    const status = o.followUps.status
    expect(status.exit.code).toBe(0)
    expect(status.run.outputs()).toMatchObject({
      result: 'unchanged',
      phase: expected.phase,
      'canary-weight': String(expected.weight),
      'canary-version': 'v2'
    })
    expect(status.run.summary()).toContain(`status of ${o.seed.ns}/istio-virtualservice: ${expected.phase} at ${expected.weight} %`)
    expect(versionsOf(o.aroundStatus!.after)).toEqual(versionsOf(o.aroundStatus!.before))

    const early = o.followUps.earlyAbort
    expect(early.exit.code).toBe(1)
    expect(early.run.outputs().error).toMatch(/^LockedError: .*is locked by /)
    expect(early.run.outputs().error).toContain(`run ${o.main.env.GITHUB_RUN_ID} attempt 1`)

    const abort = o.followUps.abort
    expect(abort.run.log()).toMatch(/Took over the lock from .*run \d+ attempt 1.*bringing traffic back to v1 first/)
    expect(abort.run.outputs()).toMatchObject({ result: 'rolled-back', phase: 'rolled-back', 'canary-weight': '0' })
    expect(abort.run.summary()).toContain('took over from')
    expect(abort.run.summary()).toContain(expected.undone)
    const v = await expectBackOnStable(o.seed.ns, ['rolled-back'])
    expect(v.state?.history.map((h) => h.kind)).toEqual(expect.arrayContaining(['takeover', 'rolled-back']))
    converged.add(name)
  })

  it('sigkill-then-deploy-again: the next deploy rolls the dead run back first, then rolls out again', async () => {
    const o = await outcomes.get('sigkill-then-deploy-again')!
    expect(o.mainExit.signal).toBe('SIGKILL')
    expect(canaryWeightOf(o.afterMain.vs)).toBe(50)

    const deploy = o.followUps.deploy
    const log = deploy.run.log()
    expect(log).toMatch(/Took over the lock from .*bringing traffic back to v1 first/)
    // Stable first: the rollback (weight 0, destination, subset, scale down) before the new rollout's first shift.
    const rollbackAt = deploy.run.lines.findIndex((l) => l.includes('Rollback: canary weight 0'))
    const firstShiftAt = deploy.run.lines.findIndex((l) => /Weights: v1=80 v2=20/.test(l))
    expect(rollbackAt).toBeGreaterThanOrEqual(0)
    expect(firstShiftAt).toBeGreaterThan(rollbackAt)
    expect(deploy.exit.code).toBe(0)
    expect(deploy.run.outputs()).toMatchObject({ result: 'promoted', phase: 'promoted', 'canary-weight': '100', 'stable-version': 'v2' })
    expect(deploy.run.summary()).toContain('took over from')
    expect(deploy.run.summary()).toContain('canary weight 50% → 0%')

    // Converged on the new stable, v2: the only destination and subset; v1 retired; lock free.
    const v = await view(o.seed.ns)
    expect(v.vs.spec.http[0].route).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    expect(v.dr.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v2'])
    expect(v.stable?.spec.replicas).toBe(0)
    expect(v.canary?.spec.replicas).toBe(1)
    expect(v.lease).toBeUndefined()
    expect(v.state?.phase).toBe('promoted')
    converged.add('sigkill-then-deploy-again')
  })
})
