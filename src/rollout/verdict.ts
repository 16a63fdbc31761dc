import type { CheckResult, JudgedMoment, Verdict } from './types.js'

/**
 * The verdict over gate results, and what one evaluation means for the rollout. Pure: no I/O.
 *
 * Policy (all counters live in the rollout state, so a later run continues where this one stopped):
 * - pass: the inconclusive streak resets. At the step's final evaluation the step may `advance`;
 *   before it the rollout `continue`s baking.
 * - fail: `failedChecks` grows by one (cumulative over the rollout) and the streak resets. When
 *   `failedChecks` reaches `failureThreshold` -> `rollback`; below it -> `continue` (bake and
 *   evaluate again at the same weight: a failed evaluation never advances).
 * - inconclusive: the streak grows by one. Below `inconclusiveLimit` -> `continue` (never advances).
 *   On reaching it, `onNoData` applies:
 *     `fail`  -> counted as one failed evaluation (streak resets); rollback if the threshold is reached,
 *                else `continue`;
 *     `pause` -> `pause` for a person to promote or abort (streak resets);
 *     `skip`  -> treated as a pass (advance at the final evaluation, else continue), with `skipped`
 *                set so the report says so loudly. The streak stays, so each further inconclusive
 *                evaluation is skipped too, until a real pass resets it.
 *
 * Every judged moment goes through this one policy and into the history; only where the
 * evaluation happens differs:
 * - `bake`: evaluated every check-every; only the step's final evaluation may `advance`.
 * - `before-increase`, `before-promotion`, `pre-rollout`: the action waits for the gates. Each
 *   evaluation is final (a pass lets the action go on); `continue` means ask again after
 *   check-every, so a webhook's 5xx or timeout is inconclusive like missing metrics, and
 *   `on-no-data` applies after `inconclusive-limit` of them in a row.
 * - At `pre-rollout` nothing is routed to the canary yet, so there is nothing to hold: `pause` ends
 *   the attempt like a rollback (nothing to undo); run deploy again.
 * - `rollback` and `success` only notify: their answers are logged, never judged.
 */

/** What to do when the gates keep saying "cannot tell". */
export type OnNoData = 'fail' | 'pause' | 'skip'

export interface GatePolicy {
  /** Failed evaluations (cumulative over the rollout) that trigger the rollback; at least 1. */
  failureThreshold: number
  /** Consecutive inconclusive evaluations after which `onNoData` applies; at least 1. */
  inconclusiveLimit: number
  onNoData: OnNoData
}

export interface GateCounters {
  failedChecks: number
  inconclusiveStreak: number
}

export type Decision = 'continue' | 'advance' | 'rollback' | 'pause'

export interface EvaluationDecision {
  decision: Decision
  counters: GateCounters
  reason: string
  /** Set when an inconclusive evaluation was let through by `on-no-data: skip`. */
  skipped?: boolean
}

/** Any fail -> fail; else any inconclusive -> inconclusive; else pass. No checks at all -> inconclusive. */
export function combine(checks: readonly CheckResult[]): Verdict {
  if (checks.length === 0) return 'inconclusive'
  if (checks.some((c) => c.verdict === 'fail')) return 'fail'
  if (checks.some((c) => c.verdict === 'inconclusive')) return 'inconclusive'
  return 'pass'
}

/**
 * Decide after one evaluation. `final` says whether this was the step's last scheduled evaluation
 * (the end of its bake time): only then may a pass advance the rollout.
 */
export function decideAfterEvaluation(
  policy: GatePolicy,
  counters: GateCounters,
  verdict: Verdict,
  position: { final: boolean; moment?: JudgedMoment }
): EvaluationDecision {
  const moment = position.moment ?? 'bake'
  const decided = decideBake(policy, counters, verdict, { final: moment !== 'bake' || position.final }, moment)
  if (moment === 'pre-rollout' && decided.decision === 'pause') {
    return {
      ...decided,
      decision: 'rollback',
      reason: `${decided.reason}: nothing is routed to the canary yet, so the attempt ends; run deploy again`
    }
  }
  return decided
}

function decideBake(
  policy: GatePolicy,
  counters: GateCounters,
  verdict: Verdict,
  position: { final: boolean },
  moment: JudgedMoment
): EvaluationDecision {
  const passOn = (next: GateCounters, reason: string, skipped?: boolean): EvaluationDecision => ({
    decision: position.final ? 'advance' : 'continue',
    counters: next,
    reason: moment !== 'bake' ? `${reason}; ${moment} may go on` : position.final ? `${reason}; step done` : `${reason}; keep baking`,
    ...(skipped ? { skipped } : {})
  })
  const countFailure = (why: string): EvaluationDecision => {
    const failedChecks = counters.failedChecks + 1
    const next = { failedChecks, inconclusiveStreak: 0 }
    const tally = `${failedChecks} of ${policy.failureThreshold} failed evaluations allowed`
    if (failedChecks >= policy.failureThreshold) {
      return { decision: 'rollback', counters: next, reason: `${why}: ${tally}, rolling back` }
    }
    return { decision: 'continue', counters: next, reason: `${why}: ${tally}; evaluating again at this weight` }
  }

  switch (verdict) {
    case 'pass':
      return passOn({ failedChecks: counters.failedChecks, inconclusiveStreak: 0 }, 'gates passed')
    case 'fail':
      return countFailure('gates failed')
    case 'inconclusive': {
      const streak = counters.inconclusiveStreak + 1
      const tally = `${streak} inconclusive evaluation${streak === 1 ? '' : 's'} in a row (limit ${policy.inconclusiveLimit})`
      if (streak < policy.inconclusiveLimit) {
        return {
          decision: 'continue',
          counters: { failedChecks: counters.failedChecks, inconclusiveStreak: streak },
          reason: `gates inconclusive: ${tally}; evaluating again`
        }
      }
      switch (policy.onNoData) {
        case 'fail':
          return countFailure(`gates inconclusive: ${tally}, on-no-data: fail counts it as a failure`)
        case 'pause':
          return {
            decision: 'pause',
            counters: { failedChecks: counters.failedChecks, inconclusiveStreak: 0 },
            reason: `gates inconclusive: ${tally}, on-no-data: pause; promote or abort by hand`
          }
        case 'skip':
          return passOn(
            { failedChecks: counters.failedChecks, inconclusiveStreak: streak },
            `GATES NOT CHECKED: ${tally}, on-no-data: skip treats it as a pass`,
            true
          )
      }
    }
  }
}

/**
 * When to evaluate during a bake of `bakeSeconds`: every `checkEverySeconds`, always once at the end.
 * Returns offsets in seconds from the start of the bake, ascending; the last one is the final evaluation.
 */
export function evaluationOffsets(bakeSeconds: number, checkEverySeconds: number): number[] {
  const end = Math.max(0, bakeSeconds)
  if (!(checkEverySeconds > 0) || checkEverySeconds >= end) return [end]
  const offsets: number[] = []
  for (let t = checkEverySeconds; t < end; t += checkEverySeconds) offsets.push(t)
  offsets.push(end)
  return offsets
}
