import { describeExposure, exposureOf, sameExposure, stepWeight } from './exposure.js'
import { soakStatus } from './soak.js'
import type { GateEvaluation, HistoryEvent, JudgedMoment, Phase, RolloutPlacement, RolloutState, RouteMember, Step } from './types.js'

/**
 * The step planner: a pure reducer over the rollout state. `nextAction(state)` says what to do
 * next; the commands carry it out and feed what happened back through `reduce(state, event)`.
 * The ordering rules (make before break, weight 0 before anything else on rollback, no weight
 * rise after a failure, every path ends) live here and are tested as tables and properties.
 */

/** What the commands must do next. */
export type Action =
  /** Apply the canary Deployment, wait until available, add its subset (make before break). */
  | { kind: 'prepare-canary' }
  /** Move the canary to `weight` (one guarded write of weights + state, read back). */
  | { kind: 'shift'; weight: number; stepIndex: number }
  /** Bake at the current weight and evaluate the gates until the step is decided. */
  | { kind: 'bake'; weight: number; stepIndex: number }
  /**
   * The next step is 100 % but the minimum soak is not met: keep baking at the current weight, the
   * gates evaluated as in a bake, until `untilMs` (a non-passing evaluation moves it later).
   */
  | { kind: 'soak'; weight: number; stepIndex: number; untilMs: number }
  /** Stop at a pause step: persist `paused` and end the run successfully. */
  | { kind: 'pause'; stepIndex: number }
  /** 100 % is on the canary: remove the stable destination, then its subset, then retire it. */
  | { kind: 'finalize-promotion' }
  /** Weight 0 -> remove the canary destination -> remove the canary subset -> scale the canary to 0. */
  | { kind: 'rollback' }
  /** Nothing left to do in this run. */
  | { kind: 'done'; phase: Phase }

/** What happened while carrying out an action (or what a person asked for). */
export type RolloutEvent =
  | { type: 'canary-ready'; at: string; message?: string }
  | { type: 'shifted'; at: string; weight: number; stepIndex: number }
  | {
      type: 'evaluated'
      at: string
      /** When the gates were asked; absent means `bake`. */
      moment?: JudgedMoment
      evaluation: GateEvaluation
      /** The verdict policy's decision for this evaluation. */
      decision: 'continue' | 'advance' | 'rollback' | 'pause'
      failedChecks: number
      inconclusiveStreak: number
      reason?: string
    }
  | { type: 'paused'; at: string; reason?: string }
  /** An automatic rollback found the stable version unhealthy too: stop and let a person decide. */
  | { type: 'halted'; at: string; reason: string }
  | { type: 'promote-requested'; at: string; full: boolean; by?: string }
  | { type: 'abort-requested'; at: string; reason: string; by?: string }
  | { type: 'failed'; at: string; reason: string }
  | { type: 'cancelled'; at: string; freeze: boolean }
  | { type: 'promoted'; at: string }
  | { type: 'rolled-back'; at: string }

export const TERMINAL_PHASES: readonly Phase[] = ['promoted', 'rolled-back', 'aborted']

export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.includes(phase)
}

/** Whether traffic may be on the canary in this phase (a new rollout must not start over it). */
export function isInFlight(state: RolloutState | undefined): boolean {
  return state !== undefined && !isTerminal(state.phase)
}

export interface NewRolloutInput extends RolloutPlacement {
  at: string
  schedule: Step[]
  epoch: number
  startedBy?: string
  commit?: string
  minSoakSeconds?: number
  /** The VirtualServices moved in lockstep with this one (none: absent from the state). */
  members?: RouteMember[]
}

/** The state of a rollout that has just taken the lock: nothing shifted yet. */
export function newRollout(input: NewRolloutInput): RolloutState {
  return {
    schema: 1,
    id: `${input.canary.version}@${input.at}`,
    phase: 'initializing',
    route: input.route,
    host: input.host,
    destinationRule: input.destinationRule,
    ...(input.backends ? { backends: input.backends } : {}),
    stable: input.stable,
    canary: input.canary,
    ...(input.members && input.members.length > 0 ? { members: input.members } : {}),
    schedule: input.schedule,
    stepIndex: -1,
    stepDone: false,
    canaryWeight: 0,
    failedChecks: 0,
    inconclusiveStreak: 0,
    epoch: input.epoch,
    startedAt: input.at,
    updatedAt: input.at,
    startedBy: input.startedBy,
    ...(input.commit ? { commit: input.commit } : {}),
    ...(input.minSoakSeconds ? { minSoakSeconds: input.minSoakSeconds } : {}),
    history: [{ at: input.at, kind: 'started', canaryWeight: 0, by: input.startedBy }]
  }
}

/** The minimum soak before 100 %, and the time it is judged at. */
export interface SoakRule {
  nowMs: number
  minSoakSeconds: number
}

/** Decide the next action from the state (and, with a soak rule, the time). */
export function nextAction(state: RolloutState, soak?: SoakRule): Action {
  switch (state.phase) {
    case 'promoted':
    case 'rolled-back':
    case 'aborted':
      return { kind: 'done', phase: state.phase }
    case 'rolling-back':
      return { kind: 'rollback' }
    case 'promoting':
      return { kind: 'finalize-promotion' }
    case 'paused':
      return { kind: 'done', phase: 'paused' }
    case 'initializing':
      return { kind: 'prepare-canary' }
    case 'progressing': {
      const { schedule, stepIndex } = state
      const current = stepIndex >= 0 ? schedule[stepIndex] : undefined
      if (current && current.kind !== 'pause' && !state.stepDone) {
        const weight = stepWeight(current)!
        // The step's weight (and exposure) is written only when `shifted` recorded it; a half-done shift is redone.
        if (state.canaryWeight !== weight || !sameExposure(state.exposure, exposureOf(current))) return { kind: 'shift', weight, stepIndex }
        return { kind: 'bake', weight, stepIndex }
      }
      const next = stepIndex + 1
      if (next >= schedule.length) {
        // The schedule ends at 100 (the parser guarantees it): the canary is the new stable.
        return { kind: 'finalize-promotion' }
      }
      const step = schedule[next]
      if (step.kind === 'pause') return { kind: 'pause', stepIndex: next }
      if (step.kind !== 'weight') return { kind: 'shift', weight: 0, stepIndex: next }
      if (step.weight === 100 && soak && soak.minSoakSeconds > 0 && state.canaryWeight > 0) {
        const s = soakStatus(state.history, soak.nowMs, soak.minSoakSeconds)
        // No stretch now (the last evaluation failed): bake one check period and judge again.
        if (!s.met) return { kind: 'soak', weight: state.canaryWeight, stepIndex, untilMs: s.readyAtMs ?? soak.nowMs }
      }
      return { kind: 'shift', weight: step.weight, stepIndex: next }
    }
  }
}

/** The state without an exposure: the write that carries it has removed the header route or the mirror. */
export function withoutExposure(state: RolloutState): RolloutState {
  if (state.exposure === undefined) return state
  const { exposure: _removed, ...rest } = state
  return rest
}

function withHistory(state: RolloutState, at: string, event: HistoryEvent): RolloutState {
  return { ...state, updatedAt: at, history: [...state.history, event] }
}

function startRollback(
  state: RolloutState,
  at: string,
  result: 'rolled-back' | 'aborted',
  reason: string,
  kind: HistoryEvent['kind'],
  by?: string
): RolloutState {
  // Once promoting, the old version's destination, subset and Deployment may be gone: the only
  // safe way is forward, so the promotion is finished (by this run or the next), never undone.
  if (state.phase === 'rolling-back' || state.phase === 'promoting' || isTerminal(state.phase)) return state
  return withHistory({ ...state, phase: 'rolling-back', rollbackResult: result, reason }, at, {
    at,
    kind,
    canaryWeight: state.canaryWeight,
    message: reason,
    by
  })
}

/** Apply what happened. Events that make no sense in the current phase leave the state as it is. */
export function reduce(state: RolloutState, event: RolloutEvent): RolloutState {
  const at = event.at
  switch (event.type) {
    case 'canary-ready':
      if (state.phase !== 'initializing') return state
      return withHistory({ ...state, phase: 'progressing' }, at, {
        at,
        kind: 'canary-ready',
        canaryWeight: 0,
        message: event.message
      })
    case 'shifted':
      return onShifted(state, event)
    case 'evaluated':
      return onEvaluated(state, event)
    case 'paused':
      return onPauseStep(state, event)
    case 'halted':
      return onHalted(state, event)
    case 'promote-requested':
      return onPromoteRequested(state, event)
    case 'abort-requested':
      return startRollback(state, at, 'aborted', event.reason, 'abort-requested', event.by)
    case 'failed':
      return startRollback(state, at, 'rolled-back', event.reason, 'rollback-started')
    case 'cancelled':
      return onCancelled(state, event)
    case 'promoted':
      if (state.phase !== 'promoting') return state
      return withHistory({ ...withoutExposure(state), phase: 'promoted', result: 'promoted', canaryWeight: 100, reason: undefined }, at, {
        at,
        kind: 'promoted',
        canaryWeight: 100
      })
    case 'rolled-back':
      return onRolledBack(state, event)
  }
}

/** One kind of RolloutEvent. */
type EventOf<T extends RolloutEvent['type']> = Extract<RolloutEvent, { type: T }>

/** A weight, match or mirror step was written: it starts baking. */
function onShifted(state: RolloutState, event: EventOf<'shifted'>): RolloutState {
  if (state.phase !== 'progressing') return state
  const step = state.schedule[event.stepIndex]
  if (!step || step.kind === 'pause' || stepWeight(step) !== event.weight) return state
  const at = event.at
  const exposure = exposureOf(step)
  const shifted: RolloutState = {
    ...state,
    stepIndex: event.stepIndex,
    stepDone: false,
    stepStartedAt: at,
    canaryWeight: event.weight,
    inconclusiveStreak: 0
  }
  // The exposure goes with the write that records it; a weight step's write removes it.
  if (exposure) shifted.exposure = exposure
  else delete shifted.exposure
  return withHistory(shifted, at, {
    at,
    kind: 'weight',
    canaryWeight: event.weight,
    ...(exposure ? { message: describeExposure(exposure) } : {})
  })
}

/** A gate evaluation, already decided by the verdict policy: recorded, then continue, advance, pause or roll back. */
function onEvaluated(state: RolloutState, event: EventOf<'evaluated'>): RolloutState {
  const at = event.at
  const moment = event.moment ?? 'bake'
  // pre-rollout is asked before the canary exists; every other judged moment while progressing.
  if (state.phase !== 'progressing' && !(state.phase === 'initializing' && moment === 'pre-rollout')) return state
  const counted: RolloutState = {
    ...state,
    failedChecks: event.failedChecks,
    inconclusiveStreak: event.inconclusiveStreak
  }
  const recorded = withHistory(counted, at, {
    at,
    kind: 'gates',
    canaryWeight: state.canaryWeight,
    evaluation: event.evaluation,
    message: event.reason
  })
  switch (event.decision) {
    case 'continue':
      return recorded
    case 'advance':
      // Only a bake finishes a step; a blocking moment's pass lets its action go on.
      return moment === 'bake' ? { ...recorded, stepDone: true } : recorded
    case 'pause':
      return withHistory({ ...recorded, phase: 'paused', reason: event.reason }, at, {
        at,
        kind: 'paused',
        canaryWeight: state.canaryWeight,
        message: event.reason
      })
    case 'rollback':
      return startRollback(recorded, at, 'rolled-back', event.reason ?? 'health gates failed', 'rollback-started')
  }
  return recorded
}

/** The next step is a pause step: the rollout waits for a promote. */
function onPauseStep(state: RolloutState, event: EventOf<'paused'>): RolloutState {
  if (state.phase !== 'progressing') return state
  const next = state.stepIndex + 1
  const step = state.schedule[next]
  if (!step || step.kind !== 'pause') return state
  const at = event.at
  const reason = event.reason ?? `pause step ${next + 1} of ${state.schedule.length}`
  return withHistory({ ...state, phase: 'paused', stepIndex: next, stepDone: true, reason }, at, {
    at,
    kind: 'paused',
    canaryWeight: state.canaryWeight,
    message: reason
  })
}

/** An automatic rollback stopped before it undid anything: paused for a person. */
function onHalted(state: RolloutState, event: EventOf<'halted'>): RolloutState {
  // Only an automatic rollback that has undone nothing yet halts; a person's abort goes through.
  if (state.phase !== 'rolling-back' || state.rollbackResult !== 'rolled-back') return state
  const at = event.at
  return withHistory({ ...state, phase: 'paused', rollbackResult: undefined, reason: event.reason }, at, {
    at,
    kind: 'paused',
    canaryWeight: state.canaryWeight,
    message: event.reason
  })
}

/** A promote: continue the schedule from a pause, or (full) go to the final step from a pause or mid-schedule. */
function onPromoteRequested(state: RolloutState, event: EventOf<'promote-requested'>): RolloutState {
  if (state.phase !== 'paused' && !(event.full && state.phase === 'progressing')) return state
  const at = event.at
  const base = { ...state, phase: 'progressing' as Phase, reason: undefined }
  const history: HistoryEvent = {
    at,
    kind: 'promote-requested',
    canaryWeight: state.canaryWeight,
    message: event.full ? 'straight to 100 %' : 'continue the schedule',
    by: event.by
  }
  if (event.full) {
    // Jump to the final (100 %) step: it is shifted, baked and gated like any other.
    const last = state.schedule.length - 1
    return withHistory({ ...base, stepIndex: last - 1, stepDone: true, failedChecks: 0, inconclusiveStreak: 0 }, at, history)
  }
  // A pause chosen by the policy (no data) leaves the current weight step to be baked again.
  const onPauseStep = state.schedule[state.stepIndex]?.kind === 'pause'
  return withHistory(
    { ...base, stepDone: onPauseStep, inconclusiveStreak: 0, stepStartedAt: onPauseStep ? state.stepStartedAt : at },
    at,
    history
  )
}

/** The run was cancelled: freeze the weights (on-cancel: freeze) or roll back. */
function onCancelled(state: RolloutState, event: EventOf<'cancelled'>): RolloutState {
  if (isTerminal(state.phase) || state.phase === 'rolling-back' || state.phase === 'promoting') return state
  const at = event.at
  // Before any traffic moved there is nothing to freeze: the half-prepared canary is cleaned up.
  if (event.freeze && state.phase !== 'initializing') {
    return withHistory({ ...state, phase: 'paused', reason: 'run cancelled; weights frozen' }, at, {
      at,
      kind: 'cancelled',
      canaryWeight: state.canaryWeight,
      message: 'weights frozen (on-cancel: freeze)'
    })
  }
  return startRollback(state, at, 'rolled-back', 'run cancelled', 'cancelled')
}

/** The rollback is complete: the rollout ends rolled back or aborted, as it started. */
function onRolledBack(state: RolloutState, event: EventOf<'rolled-back'>): RolloutState {
  if (state.phase !== 'rolling-back') return state
  const at = event.at
  const phase = state.rollbackResult ?? 'rolled-back'
  return withHistory({ ...withoutExposure(state), phase, result: phase, canaryWeight: 0 }, at, {
    at,
    kind: phase === 'aborted' ? 'aborted' : 'rolled-back',
    canaryWeight: 0,
    message: state.reason
  })
}

/** Marks the promotion as started: 100 % is confirmed on the canary, retirement of the old version follows. */
export function startPromotion(state: RolloutState, at: string): RolloutState {
  if (state.phase !== 'progressing') return state
  return { ...state, phase: 'promoting', canaryWeight: 100, updatedAt: at }
}

/** A promoted rollout that kept its old version because other routes still sent traffic to it. */
export function retirementPending(state: RolloutState | undefined): boolean {
  return (
    state?.phase === 'promoted' && state.retirement !== undefined && !state.retirement.retired && (state.retirement.heldBy?.length ?? 0) > 0
  )
}
