import { isTerminal, nextAction, reduce, startPromotion, type Action, type RolloutEvent } from '../../../src/rollout/planner.js'
import { decideAfterEvaluation, type GatePolicy, type OnNoData } from '../../../src/rollout/verdict.js'
import type { RolloutState, Step, Verdict } from '../../../src/rollout/types.js'
import { clock, events, rollout } from './rollout-fixtures.js'
import { seededRandom } from '../../support/seeded-random.js'

/** A seeded PRNG, so every run replays the same cases. */
const mulberry32 = seededRandom

type Rng = () => number
const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1))
const oneOf = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]

/** A schedule the parser accepts: increasing whole weights ending at 100; pauses after a weight below 100, one at a time. */
function randomSchedule(r: Rng): Step[] {
  const weights = new Set<number>()
  const count = int(r, 0, 6)
  while (weights.size < count) weights.add(int(r, 1, 99))
  const out: Step[] = []
  for (const weight of [...[...weights].sort((a, b) => a - b), 100]) {
    out.push({ kind: 'weight', weight })
    if (weight < 100 && r() < 0.3) out.push({ kind: 'pause' })
  }
  return out
}

function randomPolicy(r: Rng): GatePolicy {
  return { failureThreshold: int(r, 1, 3), inconclusiveLimit: int(r, 1, 3), onNoData: oneOf<OnNoData>(r, ['fail', 'pause', 'skip']) }
}

function randomVerdict(r: Rng): Verdict {
  const x = r()
  return x < 0.75 ? 'pass' : x < 0.87 ? 'inconclusive' : 'fail'
}

const MAX_ACTIONS = 400
const MAX_PERSON_VISITS = 4

interface Outcome {
  state: RolloutState
  actions: number
  stoppedPaused: boolean
  firstRollbackCause?: 'abort' | 'failure'
}

class Violation extends Error {}

/**
 * Drives one rollout as the commands would: ask nextAction, feed back a plausible event, with a
 * person answering pauses and (when `faults`) random aborts, failures and cancels in between.
 * Every invariant is checked as it goes; a broken one throws a Violation naming the seed.
 */
type Faults = 'none' | 'safe' | 'all'

function simulate(seed: number, faults: Faults): Outcome {
  const r = mulberry32(seed)
  const e = events(clock())
  const policy = randomPolicy(r)
  let state = rollout(randomSchedule(r))
  const trail: string[] = []
  const fail = (msg: string): never => {
    throw new Violation(
      `seed ${seed} (${JSON.stringify(state.schedule.map((s) => (s.kind === 'weight' ? s.weight : s.kind)))}, ${JSON.stringify(policy)}): ${msg}\n  trail: ${trail.slice(-12).join(' | ')}`
    )
  }

  let lastShift = 0
  let passedAt100 = false
  let prepared = false
  let rollbackStarted = false
  let promotionStarted = false
  let firstRollbackCause: Outcome['firstRollbackCause']
  let personVisits = 0

  const apply = (event: RolloutEvent): void => {
    const before = state
    const snapshot = JSON.stringify(before)
    const next = reduce(before, event)
    trail.push(`${event.type}${'decision' in event ? ':' + event.decision : ''} -> ${next.phase}@${next.canaryWeight}`)
    if (JSON.stringify(before) !== snapshot) fail(`reduce(${event.type}) mutated its input`)
    if (next !== before && next.history.length <= before.history.length) fail(`${event.type} changed the state without a history entry`)
    if (!Number.isInteger(next.canaryWeight) || next.canaryWeight < 0 || next.canaryWeight > 100) fail(`canaryWeight ${next.canaryWeight}`)
    if (rollbackStarted && next.canaryWeight > before.canaryWeight)
      fail(`weight rose from ${before.canaryWeight} to ${next.canaryWeight} after the rollback started`)
    if (rollbackStarted && !['rolling-back', 'rolled-back', 'aborted'].includes(next.phase)) fail(`left the rollback for ${next.phase}`)
    if (isTerminal(before.phase) && next !== before) fail(`${event.type} changed a ${before.phase} rollout`)
    if (event.type === 'canary-ready' && next !== before) prepared = true
    if (event.type === 'shifted' && next !== before) passedAt100 = false
    if (event.type === 'evaluated' && event.decision === 'advance' && before.phase === 'progressing' && before.canaryWeight === 100)
      passedAt100 = true
    if (promotionStarted && next.phase === 'rolling-back') fail(`${event.type} rolls back after the promotion began retiring the stable`)
    if (next.phase === 'rolling-back' && !rollbackStarted) {
      rollbackStarted = true
      firstRollbackCause = event.type === 'abort-requested' ? 'abort' : 'failure'
    }
    state = next
  }

  const person = (): 'stop' | 'acted' => {
    if (++personVisits > MAX_PERSON_VISITS || r() < 0.2) return 'stop'
    if (r() < 0.15) apply(e.abort())
    else apply(e.promote(r() < 0.25))
    return 'acted'
  }

  const injectFault = (): void => {
    // 'safe' leaves out any fault while promoting and a freeze while initializing (planner bugs, see planner.test.ts).
    if (faults === 'safe' && state.phase === 'promoting') return
    const choices = ['abort', 'failed', 'cancel', 'freeze', 'promote-full'] as const
    const kind = oneOf(r, choices)
    if (faults === 'safe' && kind === 'freeze' && state.phase === 'initializing') return
    apply(
      kind === 'abort'
        ? e.abort()
        : kind === 'failed'
          ? e.failed()
          : kind === 'cancel'
            ? e.cancelled(false)
            : kind === 'freeze'
              ? e.cancelled(true)
              : e.promote(true)
    )
  }

  for (let actions = 0; actions < MAX_ACTIONS; actions++) {
    if (faults !== 'none' && r() < (state.phase === 'promoting' ? 0.3 : 0.03)) injectFault()
    const action: Action = nextAction(state)
    trail.push(action.kind + ('weight' in action ? `(${action.weight})` : ''))
    if (rollbackStarted && action.kind !== 'rollback' && action.kind !== 'done') fail(`${action.kind} returned after the rollback started`)
    switch (action.kind) {
      case 'done':
        if (action.phase !== 'paused' && action.phase !== state.phase) fail(`done(${action.phase}) in ${state.phase}`)
        if (isTerminal(state.phase)) return { state, actions, stoppedPaused: false, firstRollbackCause }
        if (state.phase !== 'paused') fail(`done in ${state.phase}`)
        if (person() === 'stop') return { state, actions, stoppedPaused: true, firstRollbackCause }
        break
      case 'prepare-canary':
        if (state.phase !== 'initializing') fail(`prepare-canary in ${state.phase}`)
        apply(r() < 0.03 ? e.failed() : e.ready())
        break
      case 'shift': {
        const step = state.schedule[action.stepIndex]
        if (!prepared) fail('shift before the canary was prepared')
        if (!Number.isInteger(action.weight) || action.weight < 1 || action.weight > 100) fail(`shift to ${action.weight}`)
        if (step?.kind !== 'weight' || step.weight !== action.weight) fail(`shift ${action.weight} does not match step ${action.stepIndex}`)
        if (action.weight < lastShift) fail(`shift ${action.weight} after ${lastShift}`)
        if (action.weight < state.canaryWeight) fail(`shift ${action.weight} below the current ${state.canaryWeight}`)
        lastShift = action.weight
        apply(e.shifted(action.weight, action.stepIndex))
        if (state.canaryWeight !== action.weight) fail(`shifted(${action.weight}) was not taken`)
        break
      }
      case 'bake': {
        if (action.weight !== state.canaryWeight) fail(`bake ${action.weight} at ${state.canaryWeight}`)
        const evaluations = int(r, 1, 3)
        for (let i = 1; i <= evaluations; i++) {
          const verdict = randomVerdict(r)
          const d = decideAfterEvaluation(policy, state, verdict, { final: i === evaluations })
          apply(e.evaluated(d.decision, state.canaryWeight, verdict, d.counters))
          if (d.decision === 'advance' && verdict === 'fail') fail('a failed evaluation advanced')
          if (d.decision !== 'continue') break
        }
        break
      }
      case 'pause':
        apply(e.paused())
        if (state.phase !== 'paused' || state.schedule[state.stepIndex]?.kind !== 'pause')
          fail('pause action did not pause at a pause step')
        break
      case 'finalize-promotion': {
        const last = state.schedule.length - 1
        if (!passedAt100) fail('finalize-promotion before the 100 step passed its gates')
        if (state.stepIndex !== last || state.canaryWeight !== 100 || !state.stepDone)
          fail(`finalize at step ${state.stepIndex} weight ${state.canaryWeight}`)
        if (state.phase === 'progressing') {
          const promoting = startPromotion(state, state.updatedAt)
          trail.push('startPromotion')
          state = promoting
          promotionStarted = true
          // Half the time the run stops between the two writes: the next loop finds it promoting.
          if (r() < 0.5) break
        }
        if (state.phase !== 'promoting') fail(`finalize in ${state.phase}`)
        apply(e.promoted())
        break
      }
      case 'rollback':
        apply(e.rolledBack())
        if (state.canaryWeight !== 0) fail(`rolled back with canaryWeight ${state.canaryWeight}`)
        break
    }
  }
  return fail(`no end after ${MAX_ACTIONS} actions (phase ${state.phase})`)
}

const SEEDS = Array.from({ length: 600 }, (_, i) => i + 1)

function checkEnd(seed: number, o: Outcome): void {
  const s = o.state
  if (o.stoppedPaused) {
    expect(s.phase).toBe('paused')
    expect(nextAction(s)).toEqual({ kind: 'done', phase: 'paused' })
    return
  }
  expect(isTerminal(s.phase)).toBe(true)
  expect({ seed, result: s.result }).toEqual({ seed, result: s.phase })
  expect(nextAction(s)).toEqual({ kind: 'done', phase: s.phase })
  if (s.phase === 'promoted') {
    expect(s.canaryWeight).toBe(100)
    expect(o.firstRollbackCause).toBeUndefined()
  } else {
    expect(s.canaryWeight).toBe(0)
    expect({ seed, phase: s.phase }).toEqual({ seed, phase: o.firstRollbackCause === 'abort' ? 'aborted' : 'rolled-back' })
  }
  expect(s.history.at(-1)!.kind).toBe(s.phase)
}

describe.each<[string, Faults]>([
  ['gates and people only', 'none'],
  ['with random aborts, failures, cancels and full promotes', 'safe']
])('random rollouts (%s)', (_name, faults) => {
  const outcomes = new Map<number, Outcome>()
  const violations: string[] = []
  beforeAll(() => {
    for (const seed of SEEDS) {
      try {
        outcomes.set(seed, simulate(seed, faults))
      } catch (err) {
        if (!(err instanceof Violation)) throw err
        violations.push(err.message)
      }
    }
  })

  it(`keeps every invariant over ${SEEDS.length} seeds`, () => {
    expect(violations).toEqual([])
  })

  it('ends every path in a terminal phase, or paused where the person stopped', () => {
    for (const [seed, o] of outcomes) checkEnd(seed, o)
  })

  it('reaches every ending (the generator exercises all paths)', () => {
    const endings = new Set([...outcomes.values()].map((o) => (o.stoppedPaused ? 'paused' : o.state.phase)))
    expect([...endings].sort()).toEqual(['aborted', 'paused', 'promoted', 'rolled-back'])
  })
})

// This property found two planner bugs, now fixed: a freeze while initializing skipped
// prepare-canary, and a failure while promoting rolled back to a retired stable version.
it(`random rollouts with faults in every phase keep every invariant over ${SEEDS.length} seeds`, () => {
  const violations: string[] = []
  for (const seed of SEEDS) {
    try {
      simulate(seed, 'all')
    } catch (err) {
      if (!(err instanceof Violation)) throw err
      violations.push(err.message)
    }
  }
  expect(violations).toEqual([])
})
