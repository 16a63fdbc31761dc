import { describe, expect, it } from '@jest/globals'
import { nextAction, reduce, type RolloutEvent } from '../../../src/rollout/planner.js'
import { effectiveMinSoak, promoteReachesFull, soakRefusal, soakStatus } from '../../../src/rollout/soak.js'
import type { RolloutState, Verdict } from '../../../src/rollout/types.js'
import { rollout, steps } from './rollout-fixtures.js'

const T0 = Date.parse('2026-06-01T10:00:00Z')
const min = (m: number): string => new Date(T0 + m * 60_000).toISOString()
const ms = (m: number): number => T0 + m * 60_000

/** Events at given minutes after T0, so the soak arithmetic reads off the table. */
const ev = {
  ready: (m: number): RolloutEvent => ({ type: 'canary-ready', at: min(m) }),
  shifted: (m: number, weight: number, stepIndex: number): RolloutEvent => ({ type: 'shifted', at: min(m), weight, stepIndex }),
  evaluated: (
    m: number,
    verdict: Verdict,
    decision: 'continue' | 'advance' | 'pause' | 'rollback' = verdict === 'pass' ? 'advance' : 'continue',
    weight = 10
  ): RolloutEvent => ({
    type: 'evaluated',
    at: min(m),
    evaluation: { at: min(m), canaryWeight: weight, checks: [{ name: 'success-rate', verdict }], verdict },
    decision,
    failedChecks: verdict === 'fail' ? 1 : 0,
    inconclusiveStreak: verdict === 'inconclusive' ? 1 : 0
  }),
  paused: (m: number): RolloutEvent => ({ type: 'paused', at: min(m) }),
  promote: (m: number, full: boolean): RolloutEvent => ({ type: 'promote-requested', at: min(m), full, by: 'someone' })
}
const play = (schedule: ReturnType<typeof steps>, list: RolloutEvent[]): RolloutState => list.reduce(reduce, rollout(schedule, min(0)))

describe('soakStatus', () => {
  const S = steps(10, 50, 100)
  it.each<[string, RolloutEvent[], number, { since?: number; met: boolean }]>([
    ['no traffic yet', [ev.ready(1)], 60, { met: false }],
    ['traffic from the first weight step', [ev.ready(1), ev.shifted(2, 10, 0)], 31, { since: 2, met: false }],
    [
      'met exactly 30 minutes after the first traffic',
      [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass')],
      32,
      { since: 2, met: true }
    ],
    ['one minute short', [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass')], 31, { since: 2, met: false }],
    // A failed evaluation (below the failure threshold) starts the soak over at the next evaluation that does not fail.
    [
      'a failure breaks it',
      [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(20, 'fail'), ev.evaluated(25, 'pass')],
      54,
      { since: 25, met: false }
    ],
    [
      'and it is met again 30 minutes later',
      [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(20, 'fail'), ev.evaluated(25, 'pass')],
      55,
      { since: 25, met: true }
    ],
    ['a failure as the last event leaves no stretch', [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(20, 'fail')], 90, { met: false }],
    // No data is on-no-data's call: it neither breaks nor proves.
    [
      'inconclusive evaluations do not break it',
      [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(10, 'inconclusive'), ev.evaluated(20, 'inconclusive')],
      32,
      { since: 2, met: true }
    ],
    [
      'later weight steps continue it',
      [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass'), ev.shifted(4, 50, 1)],
      32,
      { since: 2, met: true }
    ]
  ])('%s', (_, list, nowMin, want) => {
    const s = soakStatus(play(S, list).history, ms(nowMin), 30 * 60)
    expect({ since: s.sinceMs === undefined ? undefined : (s.sinceMs - T0) / 60_000, met: s.met }).toEqual({
      since: want.since,
      met: want.met
    })
    if (want.since !== undefined) expect(s.readyAtMs).toBe(ms(want.since + 30))
  })

  it('counts time spent paused: the canary serves traffic then', () => {
    const state = play(steps(10, 'pause', 100), [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass'), ev.paused(4)])
    expect(soakStatus(state.history, ms(40), 30 * 60)).toMatchObject({ sinceMs: ms(2), soakedMs: 38 * 60_000, met: true })
  })

  it('is always met with no minimum', () => {
    expect(soakStatus([], ms(0), 0).met).toBe(true)
  })

  it('a kept essential event with traffic does not start a stretch (its weight and gate events may have been dropped)', () => {
    const state = play(steps(10, 'pause', 100), [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass'), ev.paused(4)])
    const trimmed = state.history.filter((e) => e.kind !== 'weight' && e.kind !== 'gates')
    expect(soakStatus(trimmed, ms(60), 30 * 60)).toMatchObject({ met: false, soakedMs: 0 })
  })
})

describe('soakRefusal (a manual promote)', () => {
  const pausedAt = (m: number): RolloutState =>
    play(steps(10, 'pause', 100), [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(m - 1, 'pass'), ev.paused(m)])

  it('refuses a promote to 100 % one minute early, saying when it will be allowed', () => {
    expect(soakRefusal(pausedAt(5), ms(31), 30 * 60, false)).toBe(
      `Input 'min-soak' is "30m": promoting "v2" to 100 % (the next step) needs the canary to have served traffic with its gates passing for that long; ` +
        `it has soaked 29m since 2026-06-01T10:02:00.000Z. Promotion to 100 % is allowed from 2026-06-01T10:32:00.000Z (in 1m). Nothing was changed.`
    )
  })

  it('lets it through at the first allowed minute', () => {
    expect(soakRefusal(pausedAt(5), ms(32), 30 * 60, false)).toBeUndefined()
  })

  it('refuses promote with full the same way, from any phase', () => {
    const progressing = play(steps(10, 50, 100), [ev.ready(1), ev.shifted(2, 10, 0)])
    expect(soakRefusal(progressing, ms(10), 30 * 60, true)).toMatch(
      /^Input 'min-soak' is "30m": promoting "v2" to 100 % \(input 'full'\) needs .* allowed from 2026-06-01T10:32:00.000Z \(in 22m\)\. Nothing was changed\.$/
    )
  })

  it('says the soak has not started when the canary has had no traffic', () => {
    const initializing = play(steps(10, 100), [])
    expect(soakRefusal(initializing, ms(10), 30 * 60, true)).toBe(
      `Input 'min-soak' is "30m": promoting "v2" to 100 % (input 'full') needs the canary to have served traffic with its gates passing for that long, and it has no such stretch now (weight 0%); promote once it has soaked 30m. Nothing was changed.`
    )
  })

  it('lets a promote through that does not reach 100 % yet (the rollout soaks before its last step)', () => {
    const state = play(steps(10, 'pause', 50, 100), [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass'), ev.paused(4)])
    expect(promoteReachesFull(state, false)).toBe(false)
    expect(soakRefusal(state, ms(5), 30 * 60, false)).toBeUndefined()
  })

  it('has nothing to say without a min-soak', () => {
    expect(soakRefusal(pausedAt(5), ms(6), 0, true)).toBeUndefined()
  })
})

describe('nextAction with a minimum soak (the automatic path)', () => {
  const S = steps(10, 100)
  const passed = play(S, [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass')])

  it('keeps baking at the last weight below 100 until the soak is met', () => {
    expect(nextAction(passed, { nowMs: ms(3), minSoakSeconds: 30 * 60 })).toEqual({
      kind: 'soak',
      weight: 10,
      stepIndex: 0,
      untilMs: ms(32)
    })
    expect(nextAction(passed, { nowMs: ms(31), minSoakSeconds: 30 * 60 })).toEqual({
      kind: 'soak',
      weight: 10,
      stepIndex: 0,
      untilMs: ms(32)
    })
  })

  it('shifts to 100 at the first minute the soak is met', () => {
    expect(nextAction(passed, { nowMs: ms(32), minSoakSeconds: 30 * 60 })).toEqual({ kind: 'shift', weight: 100, stepIndex: 1 })
  })

  it('after a failed evaluation, bakes on and judges again (no stretch yet: until now)', () => {
    const failed = reduce(passed, ev.evaluated(10, 'fail', 'continue'))
    expect(nextAction(failed, { nowMs: ms(40), minSoakSeconds: 30 * 60 })).toEqual({
      kind: 'soak',
      weight: 10,
      stepIndex: 0,
      untilMs: ms(40)
    })
    const recovered = reduce(failed, ev.evaluated(41, 'pass', 'continue'))
    expect(nextAction(recovered, { nowMs: ms(41), minSoakSeconds: 30 * 60 })).toEqual({
      kind: 'soak',
      weight: 10,
      stepIndex: 0,
      untilMs: ms(71)
    })
  })

  it('does not hold intermediate steps, nor without a rule', () => {
    const first = play(steps(10, 50, 100), [ev.ready(1), ev.shifted(2, 10, 0), ev.evaluated(3, 'pass')])
    expect(nextAction(first, { nowMs: ms(3), minSoakSeconds: 30 * 60 })).toEqual({ kind: 'shift', weight: 50, stepIndex: 1 })
    expect(nextAction(passed)).toEqual({ kind: 'shift', weight: 100, stepIndex: 1 })
  })
})

describe('effectiveMinSoak', () => {
  it('is the larger of the run input and the soak the deploy recorded', () => {
    const recorded = { ...rollout(steps(10, 100)), minSoakSeconds: 1800 }
    expect(effectiveMinSoak(recorded, 0)).toBe(1800)
    expect(effectiveMinSoak(recorded, 3600)).toBe(3600)
    expect(effectiveMinSoak(rollout(steps(10, 100)), 60)).toBe(60)
    expect(effectiveMinSoak(undefined, 0)).toBe(0)
  })
})

describe('the recorded min-soak in the state annotation', () => {
  it('survives encoding, and a negative one is refused as a foreign annotation', async () => {
    const { decodeState, encodeState } = await import('../../../src/rollout/state-codec.js')
    const state = { ...rollout(steps(10, 100)), minSoakSeconds: 1800 }
    expect(decodeState(encodeState(state), 'reviews').minSoakSeconds).toBe(1800)
    expect(() => decodeState(encodeState({ ...state, minSoakSeconds: -1 }), 'reviews')).toThrow(/minSoakSeconds/)
  })
})
