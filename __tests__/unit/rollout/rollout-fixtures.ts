import { newRollout, reduce, type RolloutEvent } from '../../../src/rollout/planner.js'
import type { Decision } from '../../../src/rollout/verdict.js'
import type { RolloutState, Step, Verdict } from '../../../src/rollout/types.js'

/** A clock for events: each call is one second later, so history entries are distinct. */
export function clock(start = Date.parse('2025-01-01T00:00:00Z')): () => string {
  let t = start
  return () => new Date((t += 1000)).toISOString()
}

/** `10,50,pause,100` as steps; numbers are weights, 'pause' a pause. */
export function steps(...entries: (number | 'pause')[]): Step[] {
  return entries.map((e) => (e === 'pause' ? { kind: 'pause' } : { kind: 'weight', weight: e }))
}

export function rollout(schedule: Step[], at = '2025-01-01T00:00:00.000Z'): RolloutState {
  return newRollout({
    at,
    route: { index: 0, name: 'primary' },
    host: 'reviews',
    destinationRule: 'reviews',
    stable: { version: 'v1', subset: 'v1', deployment: 'reviews-v1' },
    canary: { version: 'v2', subset: 'v2', deployment: 'reviews-v2' },
    schedule,
    epoch: 1,
    startedBy: 'https://github.com/o/r/actions/runs/1'
  })
}

/** Event builders: the `at` comes from the clock so every event is later than the one before. */
export function events(now: () => string) {
  return {
    ready: (): RolloutEvent => ({ type: 'canary-ready', at: now() }),
    shifted: (weight: number, stepIndex: number): RolloutEvent => ({ type: 'shifted', at: now(), weight, stepIndex }),
    evaluated: (
      decision: Decision,
      canaryWeight: number,
      verdict: Verdict = decision === 'rollback' ? 'fail' : decision === 'pause' ? 'inconclusive' : 'pass',
      counters = { failedChecks: 0, inconclusiveStreak: 0 }
    ): RolloutEvent => {
      const at = now()
      return {
        type: 'evaluated',
        at,
        evaluation: { at, canaryWeight, checks: [{ name: 'success-rate', verdict }], verdict },
        decision,
        ...counters,
        reason: `gates ${verdict}`
      }
    },
    paused: (): RolloutEvent => ({ type: 'paused', at: now() }),
    promote: (full: boolean): RolloutEvent => ({ type: 'promote-requested', at: now(), full, by: 'someone' }),
    abort: (): RolloutEvent => ({ type: 'abort-requested', at: now(), reason: 'aborted by hand', by: 'someone' }),
    failed: (): RolloutEvent => ({ type: 'failed', at: now(), reason: 'apiserver said no' }),
    cancelled: (freeze: boolean): RolloutEvent => ({ type: 'cancelled', at: now(), freeze }),
    promoted: (): RolloutEvent => ({ type: 'promoted', at: now() }),
    rolledBack: (): RolloutEvent => ({ type: 'rolled-back', at: now() })
  }
}

export function replay(state: RolloutState, list: RolloutEvent[]): RolloutState {
  return list.reduce(reduce, state)
}
