import { combine, decideAfterEvaluation, evaluationOffsets, type GatePolicy } from '../../../src/rollout/verdict.js'
import type { CheckResult, Verdict } from '../../../src/rollout/types.js'

const check = (verdict: Verdict): CheckResult => ({ name: `c-${verdict}`, verdict })

describe('combine', () => {
  it.each<[Verdict[], Verdict]>([
    [['pass'], 'pass'],
    [['pass', 'pass'], 'pass'],
    [['pass', 'inconclusive'], 'inconclusive'],
    [['inconclusive', 'fail'], 'fail'],
    [['fail', 'pass'], 'fail'],
    [['inconclusive'], 'inconclusive'],
    [[], 'inconclusive']
  ])('%j -> %s', (verdicts, expected) => {
    expect(combine(verdicts.map(check))).toBe(expected)
  })
})

describe('decideAfterEvaluation at the blocking moments', () => {
  const policy: GatePolicy = { failureThreshold: 2, inconclusiveLimit: 2, onNoData: 'pause' }
  const zero = { failedChecks: 0, inconclusiveStreak: 0 }
  const streak1 = { failedChecks: 0, inconclusiveStreak: 1 }

  it.each([
    // moment, verdict, counters before, on-no-data, decision
    ['before-increase', 'pass', zero, 'pause', 'advance'],
    ['before-increase', 'fail', zero, 'pause', 'continue'],
    ['before-increase', 'fail', { failedChecks: 1, inconclusiveStreak: 0 }, 'pause', 'rollback'],
    ['before-increase', 'inconclusive', zero, 'pause', 'continue'],
    ['before-increase', 'inconclusive', streak1, 'pause', 'pause'],
    ['before-increase', 'inconclusive', streak1, 'skip', 'advance'],
    ['before-increase', 'inconclusive', streak1, 'fail', 'continue'],
    ['before-promotion', 'inconclusive', streak1, 'pause', 'pause'],
    ['before-promotion', 'pass', zero, 'pause', 'advance'],
    ['pre-rollout', 'pass', zero, 'pause', 'advance'],
    ['pre-rollout', 'inconclusive', zero, 'pause', 'continue'],
    ['pre-rollout', 'inconclusive', streak1, 'pause', 'rollback'],
    ['pre-rollout', 'inconclusive', streak1, 'skip', 'advance']
  ] as const)('%s: %s from %j with on-no-data %s -> %s', (moment, verdict, before, onNoData, decision) => {
    // A blocking moment's evaluation is always final: `final: false` must not change it.
    const d = decideAfterEvaluation({ ...policy, onNoData }, before, verdict, { final: false, moment })
    expect(d.decision).toBe(decision)
  })

  it('says which action may go on, and why pre-rollout cannot pause', () => {
    expect(decideAfterEvaluation(policy, zero, 'pass', { final: true, moment: 'before-increase' }).reason).toBe(
      'gates passed; before-increase may go on'
    )
    expect(decideAfterEvaluation(policy, streak1, 'inconclusive', { final: true, moment: 'pre-rollout' }).reason).toMatch(
      /on-no-data: pause; promote or abort by hand: nothing is routed to the canary yet, so the attempt ends; run deploy again$/
    )
  })
})

describe('decideAfterEvaluation', () => {
  const policy = (over: Partial<GatePolicy> = {}): GatePolicy => ({ failureThreshold: 2, inconclusiveLimit: 3, onNoData: 'pause', ...over })
  const zero = { failedChecks: 0, inconclusiveStreak: 0 }

  it.each([
    // verdict, final, counters before, policy, decision, counters after
    ['pass', false, zero, policy(), 'continue', { failedChecks: 0, inconclusiveStreak: 0 }],
    ['pass', true, zero, policy(), 'advance', { failedChecks: 0, inconclusiveStreak: 0 }],
    ['pass', true, { failedChecks: 1, inconclusiveStreak: 2 }, policy(), 'advance', { failedChecks: 1, inconclusiveStreak: 0 }],
    ['fail', false, zero, policy(), 'continue', { failedChecks: 1, inconclusiveStreak: 0 }],
    ['fail', true, zero, policy(), 'continue', { failedChecks: 1, inconclusiveStreak: 0 }],
    ['fail', false, { failedChecks: 1, inconclusiveStreak: 1 }, policy(), 'rollback', { failedChecks: 2, inconclusiveStreak: 0 }],
    ['fail', true, zero, policy({ failureThreshold: 1 }), 'rollback', { failedChecks: 1, inconclusiveStreak: 0 }],
    ['inconclusive', true, zero, policy(), 'continue', { failedChecks: 0, inconclusiveStreak: 1 }],
    ['inconclusive', false, { failedChecks: 0, inconclusiveStreak: 1 }, policy(), 'continue', { failedChecks: 0, inconclusiveStreak: 2 }],
    ['inconclusive', false, { failedChecks: 0, inconclusiveStreak: 2 }, policy(), 'pause', { failedChecks: 0, inconclusiveStreak: 0 }],
    [
      'inconclusive',
      true,
      { failedChecks: 0, inconclusiveStreak: 2 },
      policy({ onNoData: 'fail' }),
      'continue',
      { failedChecks: 1, inconclusiveStreak: 0 }
    ],
    [
      'inconclusive',
      true,
      { failedChecks: 1, inconclusiveStreak: 2 },
      policy({ onNoData: 'fail' }),
      'rollback',
      { failedChecks: 2, inconclusiveStreak: 0 }
    ],
    [
      'inconclusive',
      true,
      { failedChecks: 0, inconclusiveStreak: 2 },
      policy({ onNoData: 'skip' }),
      'advance',
      { failedChecks: 0, inconclusiveStreak: 3 }
    ],
    [
      'inconclusive',
      false,
      { failedChecks: 0, inconclusiveStreak: 2 },
      policy({ onNoData: 'skip' }),
      'continue',
      { failedChecks: 0, inconclusiveStreak: 3 }
    ],
    [
      'inconclusive',
      true,
      { failedChecks: 0, inconclusiveStreak: 0 },
      policy({ inconclusiveLimit: 1, onNoData: 'skip' }),
      'advance',
      { failedChecks: 0, inconclusiveStreak: 1 }
    ]
  ] as const)('%s (final %s) from %j with %j -> %s %j', (verdict, final, before, pol, decision, after) => {
    const d = decideAfterEvaluation(pol, before, verdict, { final })
    expect(d.decision).toBe(decision)
    expect(d.counters).toEqual(after)
  })

  it('says why, with the tallies', () => {
    const p = policy()
    expect(decideAfterEvaluation(p, zero, 'pass', { final: true }).reason).toBe('gates passed; step done')
    expect(decideAfterEvaluation(p, zero, 'pass', { final: false }).reason).toBe('gates passed; keep baking')
    expect(decideAfterEvaluation(p, zero, 'fail', { final: true }).reason).toBe(
      'gates failed: 1 of 2 failed evaluations allowed; evaluating again at this weight'
    )
    expect(decideAfterEvaluation(p, { failedChecks: 1, inconclusiveStreak: 0 }, 'fail', { final: false }).reason).toBe(
      'gates failed: 2 of 2 failed evaluations allowed, rolling back'
    )
    expect(decideAfterEvaluation(p, zero, 'inconclusive', { final: true }).reason).toBe(
      'gates inconclusive: 1 inconclusive evaluation in a row (limit 3); evaluating again'
    )
    expect(decideAfterEvaluation(p, { failedChecks: 0, inconclusiveStreak: 2 }, 'inconclusive', { final: true }).reason).toBe(
      'gates inconclusive: 3 inconclusive evaluations in a row (limit 3), on-no-data: pause; promote or abort by hand'
    )
    const skipped = decideAfterEvaluation(policy({ onNoData: 'skip' }), { failedChecks: 0, inconclusiveStreak: 2 }, 'inconclusive', {
      final: true
    })
    expect(skipped.skipped).toBe(true)
    expect(skipped.reason).toBe(
      'GATES NOT CHECKED: 3 inconclusive evaluations in a row (limit 3), on-no-data: skip treats it as a pass; step done'
    )
    expect(
      decideAfterEvaluation(policy({ onNoData: 'fail', failureThreshold: 1 }), { failedChecks: 0, inconclusiveStreak: 2 }, 'inconclusive', {
        final: false
      }).reason
    ).toBe(
      'gates inconclusive: 3 inconclusive evaluations in a row (limit 3), on-no-data: fail counts it as a failure: 1 of 1 failed evaluations allowed, rolling back'
    )
  })

  it('never advances on a failed or inconclusive evaluation unless skip says so', () => {
    for (const onNoData of ['fail', 'pause'] as const) {
      for (const verdict of ['fail', 'inconclusive'] as const) {
        for (let failed = 0; failed < 3; failed++) {
          for (let streak = 0; streak < 4; streak++) {
            const d = decideAfterEvaluation(policy({ onNoData }), { failedChecks: failed, inconclusiveStreak: streak }, verdict, {
              final: true
            })
            expect(d.decision).not.toBe('advance')
            expect(d.skipped).toBeUndefined()
          }
        }
      }
    }
  })
})

describe('evaluationOffsets', () => {
  it.each([
    [120, 30, [30, 60, 90, 120]],
    [100, 30, [30, 60, 90, 100]],
    [20, 30, [20]],
    [60, 0, [60]],
    [0, 30, [0]]
  ])('bake %ss every %ss -> %j', (bake, every, expected) => {
    expect(evaluationOffsets(bake, every)).toEqual(expected)
  })
})
