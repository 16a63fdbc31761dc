import type { KubeObject } from '../../../src/kube/kube-object.js'
import { PreflightError } from '../../../src/errors.js'
import { MAX_STATE_BYTES, STATE_ANNOTATION, decodeState, encodeState, stateOf } from '../../../src/rollout/state-codec.js'
import type { HistoryEvent } from '../../../src/rollout/types.js'
import { withState } from '../../../src/traffic/istio/virtual-service-transform.js'
import { loadSeed } from '../../fixtures/istio/load-fixture.js'
import { makeRolloutState } from '../../fixtures/istio/rollout-state.js'
import { thrown } from '../traffic/istio/thrown.js'

const CLEAR = 'kubectl -n shop annotate virtualservice istio-virtualservice istio-canary.io/rollout-'

function decodeError(value: string, name = 'shop/istio-virtualservice'): string {
  const err = thrown(() => decodeState(value, name))
  expect(err).toBeInstanceOf(PreflightError)
  return err.message
}

const prefix = `Annotation 'istio-canary.io/rollout' on VirtualService shop/istio-virtualservice is not a rollout state istio-canary can read: `
const suffix = `. If no rollout is in progress, clear it by hand (\`${CLEAR}\`), then run again.`

function gatesEvent(i: number): HistoryEvent {
  return {
    at: `2025-01-01T01:${String(i % 60).padStart(2, '0')}:00.000Z`,
    kind: 'gates',
    canaryWeight: 10,
    evaluation: {
      at: '2025-01-01T01:00:00.000Z',
      canaryWeight: 10,
      verdict: 'pass',
      checks: [{ name: 'success-rate', verdict: 'pass', value: 99.9, threshold: '>= 99', detail: 'x'.repeat(200) }]
    }
  }
}

describe('encodeState / decodeState', () => {
  it('round-trips a state as compact JSON', () => {
    const state = makeRolloutState()
    const encoded = encodeState(state)
    expect(encoded).toBe(JSON.stringify(state))
    expect(decodeState(encoded, 'shop/istio-virtualservice')).toEqual(state)
  })

  it('stateOf reads the annotation of a VirtualService, undefined without one', () => {
    const vs = loadSeed('virtualservice-v1.yaml', 'shop')
    expect(stateOf(vs)).toBeUndefined()
    const state = makeRolloutState({ phase: 'paused', reason: 'waiting for promote' })
    expect(stateOf(withState(vs, STATE_ANNOTATION, encodeState(state)))).toEqual(state)
  })

  it('keeps the annotation under 64 KiB by dropping the oldest non-essential events first', () => {
    const base = makeRolloutState()
    const history: HistoryEvent[] = [
      { at: '2025-01-01T00:00:00.000Z', kind: 'started' },
      ...Array.from({ length: 400 }, (_, i) => gatesEvent(i)),
      { at: '2025-01-01T02:00:00.000Z', kind: 'rollback-started', message: 'gate failed' },
      gatesEvent(999)
    ]
    const state = { ...base, history }
    expect(JSON.stringify(state).length).toBeGreaterThan(MAX_STATE_BYTES)
    const encoded = encodeState(state)
    expect(Buffer.byteLength(encoded)).toBeLessThanOrEqual(MAX_STATE_BYTES)
    const back = decodeState(encoded, 'shop/istio-virtualservice')
    const dropped = back.historyDropped ?? 0
    expect(dropped).toBeGreaterThan(0)
    expect(back.history.length + dropped).toBe(history.length)
    // Essential events and the newest one stay; the gates events kept are the newest ones.
    expect(back.history[0]).toEqual(history[0])
    expect(back.history.at(-2)).toEqual(history.at(-2))
    expect(back.history.at(-1)).toEqual(history.at(-1))
    expect(back.history.slice(1, -2)).toEqual(history.slice(1 + dropped, -2))
    // Dropping one event fewer would not have fitted: it drops no more than it must.
    const oneFewer = { ...state, history: [history[0], ...history.slice(dropped)], historyDropped: dropped - 1 }
    expect(Buffer.byteLength(JSON.stringify(oneFewer))).toBeGreaterThan(MAX_STATE_BYTES)
  })

  it('adds to an earlier historyDropped and drops essential events only after the others', () => {
    const history: HistoryEvent[] = [
      { at: 't0', kind: 'started', message: 'a'.repeat(300) },
      { at: 't1', kind: 'weight', canaryWeight: 10, message: 'b'.repeat(300) },
      { at: 't2', kind: 'paused', message: 'c'.repeat(300) },
      { at: 't3', kind: 'promote-requested', message: 'd'.repeat(300) }
    ]
    const state = makeRolloutState({ history, historyDropped: 5 })
    const limit = Buffer.byteLength(JSON.stringify({ ...state, history: history.slice(2), historyDropped: 7 }))
    const back = JSON.parse(encodeState(state, limit))
    expect(back.history.map((e: HistoryEvent) => e.kind)).toEqual(['paused', 'promote-requested'])
    expect(back.historyDropped).toBe(7)
  })

  it('throws when even the newest event alone does not fit', () => {
    const state = makeRolloutState()
    const err = thrown(() => encodeState(state, 100))
    expect(err).toBeInstanceOf(RangeError)
    expect(err.message).toMatch(
      /^Rollout state "v2@2025-01-01T00:00:00.000Z" needs \d+ bytes even with 2 history events dropped; expected at most 100 bytes in annotation 'istio-canary.io\/rollout'\.$/
    )
  })
})

describe('decodeState errors', () => {
  const good = (): Record<string, unknown> => JSON.parse(JSON.stringify(makeRolloutState()))

  it('invalid JSON', () => {
    expect(decodeError('{"schema":1,')).toBe(
      `${prefix}invalid JSON (${(() => {
        try {
          JSON.parse('{"schema":1,')
        } catch (e) {
          return (e as Error).message
        }
      })()}; got "{\\"schema\\":1,")${suffix}`
    )
  })

  it('not an object', () => {
    expect(decodeError('[1]')).toBe(`${prefix}expected a JSON object (got "[1]")${suffix}`)
  })

  it('another schema version', () => {
    expect(decodeError(JSON.stringify({ ...good(), schema: 2 }))).toBe(
      `${prefix}schema "2" is not supported, this version reads schema 1 (a newer istio-canary may have written it: ` +
        `finish the rollout with that version)${suffix}`
    )
  })

  it.each([
    [
      { phase: 'exploded' },
      'field "phase": expected one of initializing, progressing, paused, promoting, rolling-back, promoted, rolled-back, aborted (got "exploded")'
    ],
    [{ stable: { version: 'v1' } }, 'field "stable.subset": expected a string (missing)'],
    [{ canaryWeight: 150 }, 'field "canaryWeight": expected an integer between 0 and 100 (got "150")'],
    [{ stepIndex: -2 }, 'field "stepIndex": expected an integer >= -1 (got "-2")'],
    [{ route: { index: 1.5 } }, 'field "route.index": expected an integer >= 0 (got "1.5")'],
    [
      { schedule: [{ kind: 'weight', weight: 10 }, { kind: 'wait' }] },
      'field "schedule[1]": expected {"kind":"weight","weight":0..100}, {"kind":"pause"}, {"kind":"match",...} or {"kind":"mirror",...} (got "{\\"kind\\":\\"wait\\"}")'
    ],
    [
      {
        history: [
          { at: 't', kind: 'started' },
          { at: 't', kind: 'boom' }
        ]
      },
      'field "history[1].kind": expected one of started, canary-ready, subset-added, weight, gates, paused, promote-requested, abort-requested, promoted, rollback-started, rolled-back, aborted, takeover, drift, cancelled, error (got "boom")'
    ],
    [{ history: 'none' }, 'field "history": expected a list (got "none")'],
    [{ stepDone: 'yes' }, 'field "stepDone": expected true or false (got "yes")'],
    [{ result: 'great' }, 'field "result": expected one of promoted, paused, rolled-back, aborted, unchanged (got "great")']
  ])('a bad field: %j', (patch, problem) => {
    expect(decodeError(JSON.stringify({ ...good(), ...patch }))).toBe(`${prefix}${problem}${suffix}`)
  })

  it('names the object without a namespace when given only a name', () => {
    expect(decodeError('x', 'istio-virtualservice')).toBe(
      `Annotation 'istio-canary.io/rollout' on VirtualService istio-virtualservice is not a rollout state istio-canary can read: ` +
        `invalid JSON (${(() => {
          try {
            JSON.parse('x')
          } catch (e) {
            return (e as Error).message
          }
        })()}; got "x"). If no rollout is in progress, clear it by hand ` +
        '(`kubectl annotate virtualservice istio-virtualservice istio-canary.io/rollout-`), then run again.'
    )
  })

  it('stateOf names the VirtualService it read', () => {
    const vs: KubeObject = withState(loadSeed('virtualservice-v1.yaml', 'shop'), STATE_ANNOTATION, '[]')
    expect(thrown(() => stateOf(vs)).message).toBe(`${prefix}expected a JSON object (got "[]")${suffix}`)
  })
})
