import type { Config } from '../config/config.js'
import { PreflightError } from '../errors.js'
import { planCommand, type CommandPlan, type CommandSituation, type Recovery } from '../rollout/command-plan.js'
import { describeExposure, stepWeight } from '../rollout/exposure.js'
import { isInFlight, isTerminal, newRollout, reduce, retirementPending, type NewRolloutInput } from '../rollout/planner.js'
import type { Result, RolloutState } from '../rollout/types.js'
import type { RunReport } from '../report/run-report.js'
import { DelegationFound, type Preflight } from './preflight.js'
import { frozenNow, preflightWaitingForLock, takeLock, type LockTaken } from './lock-wait.js'
import { effectiveMinSoak, soakRefusal } from '../rollout/soak.js'
import { errorText } from '../format.js'
import type { RolloutExecutor } from './rollout-executor.js'
import { iso } from './runtime.js'
import type { CommandDeps } from './command-deps.js'
import { loadRolloutExecutor, loadRolloutRouter, loadTrafficTargets } from './lazy-modules.js'

/**
 * Runs one command (deploy, promote, abort, status) and returns the report. Throws only for
 * errors the report cannot describe; preflight and rollout failures are in `report.error`.
 */
export async function runCommand(input: Config, deps: CommandDeps): Promise<RunReport> {
  let config = input
  let base = baseReport(config, deps)
  let pre: Preflight
  try {
    try {
      pre = await preflightWaitingForLock(config, deps)
    } catch (err) {
      if (!(err instanceof DelegationFound)) throw err
      // A route named in input 'virtual-service' delegates: the rollout drives the delegate instead.
      const { followDelegations } = await loadTrafficTargets()
      config = await followDelegations(input, deps)
      base = baseReport(config, deps)
      pre = await preflightWaitingForLock(config, deps)
    }
  } catch (err) {
    return finish(base, deps, undefined, 'unchanged', err)
  }
  const situation: CommandSituation = {
    command: config.command,
    state: pre.state,
    target: `${pre.namespace}/${config.virtualService}`,
    version: config.command === 'deploy' ? pre.canary.version : config.version,
    full: config.full,
    supersede: config.supersede
  }
  const ended = await beforeLock(config, deps, pre, withPreflight(base, pre), situation)
  if (ended) return ended

  const taken = await takeLock(config, deps, pre)
  if ('error' in taken) return finish(withPreflight(base, pre), deps, taken.pre.state, 'unchanged', taken.error)
  // pre may have been read again while waiting for the lock: plan from what it shows now.
  const run: LockedRun = {
    config,
    deps,
    pre: taken.pre,
    report: withPreflight(base, taken.pre),
    epoch: taken.acquired.epoch,
    undone: []
  }
  return underLock(run, taken, { ...situation, state: taken.pre.state, takeover: taken.acquired.takeover })
}

function baseReport(config: Config, deps: CommandDeps): RunReport {
  const startedAt = iso(deps.clock.now())
  return {
    command: config.command,
    namespace: config.namespace ?? 'default',
    virtualService: config.virtualService,
    result: 'unchanged',
    canaryWeight: 0,
    warnings: [...config.warnings],
    dryRun: config.dryRun,
    runUrl: deps.runUrl,
    startedAt,
    finishedAt: startedAt,
    rollout: rolloutSettings(config, deps)
  }
}

function withPreflight(base: RunReport, pre: Preflight): RunReport {
  return { ...base, namespace: pre.namespace, warnings: [...base.warnings, ...pre.warnings] }
}

/**
 * What ends a run before the lock, so not even a Lease is written: status, a release already
 * stable, a freeze window, a dry run, a command with nothing to do. Undefined: take the lock.
 */
async function beforeLock(
  config: Config,
  deps: CommandDeps,
  pre: Preflight,
  report: RunReport,
  situation: CommandSituation
): Promise<RunReport | undefined> {
  if (config.command === 'status') return finish(report, deps, pre.state, 'unchanged')
  if (pre.alreadyStable) {
    deps.log.info(pre.alreadyStable.note)
    const { version, deployment } = pre.alreadyStable
    return finish(
      { ...report, alreadyStable: { version, deployment }, stableVersion: version, canaryVersion: version },
      deps,
      pre.state,
      'unchanged'
    )
  }
  // takeLock asks again after a wait for the lock: the wait may run into a window.
  const frozen = frozenNow(config, deps)
  if (frozen) return finish(report, deps, pre.state, 'unchanged', new PreflightError(frozen))
  if (config.dryRun) return dryRun(config, deps, pre, report)
  const early = planCommand(situation)
  if (early.kind === 'nothing') {
    deps.log.info(early.message)
    return finish(report, deps, pre.state, early.result)
  }
  return undefined
}

/** A run holding the lock: what it was configured with, read, and has done so far. */
interface LockedRun {
  config: Config
  deps: CommandDeps
  pre: Preflight
  report: RunReport
  /** The lock's fencing epoch: every write of this run carries it. */
  epoch: number
  executor?: RolloutExecutor
  /** What the executors could not undo (for the report). */
  undone: string[]
  /** Set when the lock's renewal failed mid-run. */
  lost?: Error
}

/** Plans again under the lock and carries the plan out; on an error, a cancelled run stops its canary first. Releases the lock. */
async function underLock(run: LockedRun, taken: LockTaken, situation: CommandSituation): Promise<RunReport> {
  const { config, deps, pre, report } = run
  taken.lock.startRenewing(undefined, (err) => {
    run.lost = err
    deps.log.error(`Lost the lock: ${err.message}`)
  })
  try {
    const plan = planCommand(situation)
    if (plan.kind === 'refuse') throw new PreflightError(plan.message)
    if (plan.kind === 'nothing') {
      deps.log.info(plan.message)
      return finish(report, deps, pre.state, plan.result)
    }
    return await carryOut(run, plan, taken.acquired.previousHolder)
  } catch (err) {
    const running = run.executor
    if (deps.signal.aborted && running && isInFlight(running.current)) {
      try {
        await running.cancel(config.onCancel === 'freeze')
      } catch (cancelErr) {
        deps.log.error(
          `Could not set the canary weight to 0 on cancellation: ${errorText(cancelErr)}. The post step or the next run will finish the rollback.`
        )
      }
    }
    const state = running?.current ?? pre.state
    const result = state?.phase === 'rolled-back' ? 'rolled-back' : 'unchanged'
    return finish({ ...report, undone: running ? run.undone : undefined }, deps, state, result, err)
  } finally {
    deps.onExecutor?.(undefined)
    // A cancelled run keeps the lock only if it could not finish its write; the post step re-takes it.
    await taken.lock.release().catch((err: unknown) => deps.log.warning(`Could not release the lock: ${errorText(err)}`))
  }
}

/** The recovery first (an unfinished retirement, a dead run's or a superseded rollout), then the command. */
async function carryOut(
  run: LockedRun,
  plan: Extract<CommandPlan, { kind: 'run' }>,
  previousHolder: string | undefined
): Promise<RunReport> {
  const { config, deps, pre, report } = run
  let state = pre.state
  if (state && plan.recover === 'retirement') {
    state = await finishRetirement(run, state)
    if (plan.then === 'stop') return finish({ ...report, undone: run.undone }, deps, state, 'promoted')
    if (retirementPending(state)) {
      report.warnings.push(
        `the old version ${state.retirement!.version} of the previous rollout stays running (still routed to); this rollout no longer tracks it: retire it by hand once nothing routes to subset ${state.retirement!.subset}`
      )
    }
  } else if (state && plan.recover) {
    state = await execute(run, recoveryState(plan.recover, state, previousHolder, deps, report, pre.canary.version))
    if (plan.then === 'stop') return finish({ ...report, undone: run.undone }, deps, state, state.result ?? 'rolled-back')
  }
  for (const w of plan.warnings) {
    deps.log.warning(w)
    report.warnings.push(w)
  }
  const ended = await execute(run, commandState(plan.then, state, config, deps, pre, run.epoch))
  if (run.lost) report.warnings.push(`the lock was lost during the run: ${run.lost.message}`)
  const { result, error } = outcome(ended)
  return finish({ ...report, undone: run.undone, error }, deps, ended, result)
}

/** Runs `state` to its next stop with a new executor; what it could not undo and its warnings go to the run. */
async function execute(run: LockedRun, state: RolloutState): Promise<RolloutState> {
  const executor = await makeExecutor(run.config, run.deps, run.pre, state, run.epoch)
  run.executor = executor
  run.deps.onExecutor?.(executor)
  const ended = await executor.run()
  run.undone.push(...executor.undone)
  run.report.warnings.push(...executor.warnings)
  return ended
}

/** Retires the old version the last rollout kept, if nothing routes to it any more. */
async function finishRetirement(run: LockedRun, state: RolloutState): Promise<RolloutState> {
  const previous = await makeExecutor(run.config, run.deps, run.pre, state, run.epoch)
  run.executor = previous
  run.deps.onExecutor?.(previous)
  const after = await previous.finishRetirement()
  run.report.warnings.push(...previous.warnings)
  return after
}

/** The state the command itself starts from, once any recovery is done. */
function commandState(
  then: 'start' | 'resume' | 'promote' | 'abort' | 'stop',
  state: RolloutState | undefined,
  config: Config,
  deps: CommandDeps,
  pre: Preflight,
  epoch: number
): RolloutState {
  const at = iso(deps.clock.now())
  const by = deps.runUrl ?? deps.holder
  switch (then) {
    case 'start':
      return withCapacity(
        pre,
        rolloutFromPreflight(config, pre, { at, epoch, startedBy: by, commit: deps.commit, minSoakSeconds: config.minSoakSeconds })
      )
    case 'promote': {
      // Checked again under the lock: the state may have moved since preflight read it.
      const early = soakRefusal(state!, deps.clock.now(), effectiveMinSoak(state!, config.minSoakSeconds), config.full)
      if (early) throw new PreflightError(early)
      return reduce(state!, { type: 'promote-requested', at, full: config.full, by })
    }
    case 'abort':
      return reduce(state!, { type: 'abort-requested', at, reason: 'aborted by request', by })
    default:
      return state!
  }
}

/**
 * A new rollout where preflight found it (route, host, DestinationRule, backends, versions, lockstep
 * members) on the schedule of input 'steps'; `run` says when, in which epoch and by whom.
 */
function rolloutFromPreflight(
  config: Config,
  pre: Preflight,
  run: Pick<NewRolloutInput, 'at' | 'epoch' | 'startedBy' | 'commit' | 'minSoakSeconds'>
): RolloutState {
  return newRollout({
    ...run,
    route: pre.route,
    host: pre.host,
    destinationRule: pre.destinationRule,
    ...(pre.backends ? { backends: pre.backends } : {}),
    stable: pre.stable,
    canary: pre.canary,
    schedule: config.steps,
    members: pre.members
  })
}

/** A new rollout records how its canary's capacity is managed: later runs (promote, abort, takeover) follow it. */
function withCapacity(pre: Preflight, state: RolloutState): RolloutState {
  return pre.capacity ? { ...state, capacity: pre.capacity } : state
}

/** How an ended run reads in the report: its result, and the error a rollback or a halt is. */
function outcome(ended: RolloutState): { result: Result; error?: RunReport['error'] } {
  const result: Result = ended.phase === 'paused' ? 'paused' : (ended.result ?? 'unchanged')
  const halted = ended.phase === 'paused' && ended.reason?.startsWith('rollback halted')
  if (ended.phase === 'rolled-back') return { result, error: { kind: 'RolledBack', message: ended.reason ?? 'rolled back' } }
  if (halted) return { result, error: { kind: 'RollbackHalted', message: ended.reason ?? 'rollback halted' } }
  return { result }
}

/** The state a recovery starts from: the rollback of a dead run's or an old version's rollout, or one already under way. */
function recoveryState(
  recover: Recovery,
  state: RolloutState,
  previousHolder: string | undefined,
  deps: CommandDeps,
  report: RunReport,
  newVersion: string
): RolloutState {
  const at = iso(deps.clock.now())
  const previous = previousHolder ?? 'an earlier run'
  switch (recover) {
    case 'rolling-back':
      return state
    case 'retirement':
      return state
    case 'supersede':
      deps.log.warning(`Superseding the rollout of ${state.canary.version}: rolling it back first.`)
      return reduce(state, { type: 'abort-requested', at, reason: `superseded by ${newVersion}`, by: deps.holder })
    case 'takeover': {
      deps.log.warning(
        `Took over the lock from ${previous}, which stopped mid-rollout (phase ${state.phase}); bringing traffic back to ${state.stable.version} first.`
      )
      report.warnings.push(`took over from ${previous} that stopped mid-rollout; its canary ${state.canary.version} was rolled back first`)
      const failed = reduce(state, {
        type: 'failed',
        at,
        reason: `the run holding the rollout (${previousHolder ?? 'unknown'}) stopped without finishing`
      })
      return {
        ...failed,
        history: [
          ...failed.history,
          { at, kind: 'takeover', by: deps.holder, message: `lock taken over from ${previousHolder ?? 'unknown'}` }
        ]
      }
    }
  }
}

async function makeExecutor(
  config: Config,
  deps: CommandDeps,
  pre: Preflight,
  state: RolloutState,
  epoch: number
): Promise<RolloutExecutor> {
  const [{ RolloutExecutor }, { rolloutRouter }] = await Promise.all([loadRolloutExecutor(), loadRolloutRouter()])
  return new RolloutExecutor(
    {
      cluster: deps.cluster,
      router: await rolloutRouter(config, deps, pre, epoch, state),
      clock: deps.clock,
      log: deps.log,
      signal: deps.signal,
      namespace: pre.namespace,
      virtualService: config.virtualService,
      destinationRule: [...new Set([state.destinationRule, ...(state.members ?? []).map((m) => m.destinationRule)])].join(', '),
      versionLabel: config.versionLabel,
      canaryManifest: pre.canaryManifest,
      retire: config.retire,
      intervalMs: config.intervalSeconds * 1000,
      checkEveryMs: deps.checkEveryMs,
      settleMs: config.settleSeconds * 1000,
      progressDeadlineMs: config.progressDeadlineSeconds * 1000,
      minSoakSeconds: config.minSoakSeconds,
      gates: deps.gates,
      policy: deps.policy,
      outsideMesh: deps.outsideMesh,
      waitForCanary: (deadlineMs) => deps.waitForDeployment(pre.namespace, state.canary.deployment, deadlineMs, deps.signal),
      onProgress: (s) => deps.onProgress?.(reportOf(config, deps, pre.namespace, s))
    },
    state
  )
}

function reportOf(config: Config, deps: CommandDeps, namespace: string, state: RolloutState): RunReport {
  const now = iso(deps.clock.now())
  return {
    command: config.command,
    namespace,
    virtualService: config.virtualService,
    result: state.phase === 'paused' ? 'paused' : (state.result ?? 'unchanged'),
    phase: state.phase,
    canaryWeight: state.canaryWeight,
    stableVersion: state.stable.version,
    canaryVersion: state.canary.version,
    state,
    warnings: [],
    dryRun: config.dryRun,
    runUrl: deps.runUrl,
    startedAt: now,
    finishedAt: now,
    rollout: rolloutSettings(config, deps)
  }
}

/** What the reports need of the configuration: "step 2 of 4", the next step's time, "failed 1 of 3". */
function rolloutSettings(config: Config, deps: CommandDeps): RunReport['rollout'] {
  return { schedule: config.steps, intervalSeconds: config.intervalSeconds, failureThreshold: deps.policy.failureThreshold }
}

function finish(report: RunReport, deps: CommandDeps, state: RolloutState | undefined, result: Result, err?: unknown): RunReport {
  const out: RunReport = {
    ...report,
    result,
    phase: state?.phase,
    canaryWeight: state && !isTerminal(state.phase) ? state.canaryWeight : state?.phase === 'promoted' ? 100 : 0,
    stableVersion: state ? (state.phase === 'promoted' ? state.canary.version : state.stable.version) : report.stableVersion,
    canaryVersion: state?.canary.version ?? report.canaryVersion,
    state,
    finishedAt: iso(deps.clock.now())
  }
  if (err !== undefined) {
    const e = err instanceof Error ? err : new Error(String(err))
    out.error = { kind: e.name, message: e.message }
  }
  return out
}

async function dryRun(config: Config, deps: CommandDeps, pre: Preflight, report: RunReport): Promise<RunReport> {
  const { cluster } = deps
  const plan: string[] = []
  const at = iso(deps.clock.now())
  if (config.command === 'deploy') {
    if (pre.canaryManifest) {
      await cluster.applyDeployment(pre.canaryManifest, { dryRun: true })
      plan.push(`apply Deployment ${pre.canary.deployment} (server-side apply; dry run accepted by the API server)`)
    }
    if (pre.capacityPlan) plan.push(pre.capacityPlan)
    const first = config.steps[0]
    const state = rolloutFromPreflight(config, pre, { at, epoch: 0 })
    const { rolloutRouter } = await loadRolloutRouter()
    const checked = await (
      await rolloutRouter(config, deps, pre, 0)
    ).dryRunStart(state, { [config.versionLabel]: pre.canary.version }, first ? stepWeight(first) : undefined)
    if (checked.backend && pre.backends === 'services') {
      plan.push(`apply Service ${pre.canary.subset} before any weight names it (dry run accepted)`)
    } else if (checked.backend) {
      plan.push(
        `add subset ${pre.canary.subset} (${config.versionLabel}=${pre.canary.version}) to DestinationRule ${pre.destinationRule} (dry run accepted)`
      )
    }
    for (const step of config.steps) {
      plan.push(
        step.kind === 'pause'
          ? 'pause until a promote run'
          : step.kind !== 'weight'
            ? `${describeExposure(step)}: ${step.kind === 'mirror' ? `mirror ${step.percent}% of the stable's requests to` : 'send the matching requests to'} ${pre.canary.subset} (weight 0), bake ${config.intervalSeconds}s with gates`
            : `set weights ${pre.stable.subset}=${100 - step.weight} ${pre.canary.subset}=${step.weight} (dry run of the first write accepted), bake ${config.intervalSeconds}s with gates`
      )
    }
    plan.push(
      `remove destination ${pre.stable.subset}, then subset ${pre.stable.subset}, then ${config.retire} Deployment ${pre.stable.deployment ?? '(none found)'} ` +
        `(both kept while another route still sends traffic to subset ${pre.stable.subset})`
    )
  } else {
    plan.push(`${config.command} the rollout on ${pre.namespace}/${config.virtualService} (current phase: ${pre.state?.phase ?? 'none'})`)
  }
  for (const line of plan) deps.log.info(`[dry-run] ${line}`)
  // The versions it would roll out, so the report says what would happen.
  return finish({ ...report, plan, stableVersion: pre.stable.version, canaryVersion: pre.canary.version }, deps, pre.state, 'unchanged')
}
