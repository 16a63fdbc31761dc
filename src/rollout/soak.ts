import { formatDuration } from '../config/duration.js'
import { quote } from '../errors.js'
import type { HistoryEvent, RolloutState } from './types.js'

/**
 * The minimum soak: how long the canary has served traffic with its gates passing, read from the
 * rollout's history. Pure: the caller passes the time.
 *
 * The soak is the latest unbroken stretch in which the canary had traffic (weight > 0) and no gate
 * evaluation failed. It starts at the first weight step above 0, or at the first evaluation after a
 * break that did not fail; a failed evaluation, weight 0, a rollback or drift breaks it. An
 * inconclusive evaluation neither breaks nor proves anything: what no data means is on-no-data's
 * call (pause, count as a failure, or skip), not the soak's. Time spent paused counts (the canary
 * serves traffic then). Only weight and gate events start a stretch: those are the events the
 * state's size cap drops first (oldest first), so a dropped failure can never hide behind an older
 * kept event.
 */
export interface SoakStatus {
  /** Start of the current stretch; undefined when the canary has no traffic with passing gates now. */
  sinceMs?: number
  soakedMs: number
  /** When the soak is met; undefined until a stretch has started. */
  readyAtMs?: number
  met: boolean
}

const BREAKS: ReadonlySet<HistoryEvent['kind']> = new Set(['rollback-started', 'rolled-back', 'aborted', 'abort-requested', 'drift'])

export function soakStatus(history: readonly HistoryEvent[], nowMs: number, minSoakSeconds: number): SoakStatus {
  let since: number | undefined
  for (const e of history) {
    const failedGates = e.kind === 'gates' && e.evaluation?.verdict === 'fail'
    if (BREAKS.has(e.kind) || e.canaryWeight === 0 || failedGates) {
      since = undefined
      continue
    }
    if (since === undefined && (e.kind === 'weight' || e.kind === 'gates') && (e.canaryWeight ?? 0) > 0) since = Date.parse(e.at)
  }
  const soakedMs = since === undefined ? 0 : Math.max(0, nowMs - since)
  const readyAtMs = since === undefined ? undefined : since + minSoakSeconds * 1000
  return {
    ...(since !== undefined && { sinceMs: since }),
    soakedMs,
    ...(readyAtMs !== undefined && { readyAtMs }),
    met: minSoakSeconds <= 0 || (readyAtMs !== undefined && nowMs >= readyAtMs)
  }
}

/** The soak a run applies: the larger of its own min-soak input and the one the deploy recorded. */
export function effectiveMinSoak(state: RolloutState | undefined, inputSeconds: number): number {
  return Math.max(inputSeconds, state?.minSoakSeconds ?? 0)
}

/** Whether a promote run moves the canary to 100 % at once: `full`, or a pause whose next step is 100. */
export function promoteReachesFull(state: RolloutState, full: boolean): boolean {
  if (full) return true
  const here = state.schedule[state.stepIndex]
  const next = state.schedule[state.stepIndex + 1]
  return state.phase === 'paused' && here?.kind === 'pause' && next?.kind === 'weight' && next.weight === 100
}

/**
 * The refusal of a promote that would reach 100 % before the soak is met, saying when it will be
 * allowed; undefined when it may go ahead.
 */
export function soakRefusal(state: RolloutState, nowMs: number, minSoakSeconds: number, full: boolean): string | undefined {
  if (minSoakSeconds <= 0 || !promoteReachesFull(state, full)) return undefined
  const s = soakStatus(state.history, nowMs, minSoakSeconds)
  if (s.met) return undefined
  const head = `Input 'min-soak' is ${quote(formatDuration(minSoakSeconds))}: promoting ${quote(state.canary.version)} to 100 % ${full ? "(input 'full')" : '(the next step)'} needs the canary to have served traffic with its gates passing for that long`
  const tail = 'Nothing was changed.'
  if (s.readyAtMs === undefined) {
    return `${head}, and it has no such stretch now (weight ${state.canaryWeight}%${state.canaryWeight > 0 ? ', and the last gate evaluation failed' : ''}); promote once it has soaked ${formatDuration(minSoakSeconds)}. ${tail}`
  }
  const left = Math.ceil((s.readyAtMs - nowMs) / 1000)
  return (
    `${head}; it has soaked ${formatDuration(Math.floor(s.soakedMs / 1000))} since ${new Date(s.sinceMs!).toISOString()}. ` +
    `Promotion to 100 % is allowed from ${new Date(s.readyAtMs).toISOString()} (in ${formatDuration(left)}). ${tail}`
  )
}
