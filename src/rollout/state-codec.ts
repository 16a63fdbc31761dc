/**
 * The rollout state as the JSON of one VirtualService annotation: compact, under a size cap, and
 * checked on the way back in so a hand-edited or foreign annotation never drives a rollout.
 */
import type { KubeObject } from '../kube/kube-object.js'
import { PreflightError, quote } from '../errors.js'
import type { HistoryEvent, Phase, Result, RolloutState } from './types.js'
import { CANARY_REPLICAS_MODES } from './capacity-record.js'

/** The annotation on the VirtualService that holds the rollout state. */
export const STATE_ANNOTATION = 'istio-canary.io/rollout'

/** Cap of the encoded state (UTF-8 bytes); Kubernetes allows 256 KiB for all annotations together. */
export const MAX_STATE_BYTES = 64 * 1024

const SCHEMA = 1

// Records keyed by the union types: the compiler flags a phase or kind added to types.ts but not here.
const PHASES = new Set(
  Object.keys({
    initializing: 1,
    progressing: 1,
    paused: 1,
    promoting: 1,
    'rolling-back': 1,
    promoted: 1,
    'rolled-back': 1,
    aborted: 1
  } satisfies Record<Phase, 1>)
)
const RESULTS = new Set(Object.keys({ promoted: 1, paused: 1, 'rolled-back': 1, aborted: 1, unchanged: 1 } satisfies Record<Result, 1>))
/** true: the event tells the rollout's story and is dropped only after every `false` one. */
const ESSENTIAL = {
  started: true,
  'canary-ready': false,
  'subset-added': false,
  weight: false,
  gates: false,
  paused: true,
  'promote-requested': true,
  'abort-requested': true,
  promoted: true,
  'rollback-started': true,
  'rolled-back': true,
  aborted: true,
  takeover: true,
  drift: true,
  cancelled: true,
  error: false
} satisfies Record<HistoryEvent['kind'], boolean>

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8')

/**
 * Compact JSON of the state. Over `maxBytes`, history events are dropped oldest first, the
 * non-essential ones (weights, gate evaluations, errors) before the others and never the newest;
 * `historyDropped` adds up how many. Throws RangeError when even that cannot fit.
 */
export function encodeState(state: RolloutState, maxBytes: number = MAX_STATE_BYTES): string {
  const full = JSON.stringify(state)
  if (byteLength(full) <= maxBytes) return full

  const history = state.history
  const sizes = history.map((e) => byteLength(JSON.stringify(e)))
  const keep = history.map(() => true)
  const last = history.length - 1
  const order = [
    ...history.flatMap((e, i) => (i !== last && !ESSENTIAL[e.kind] ? [i] : [])),
    ...history.flatMap((e, i) => (i !== last && ESSENTIAL[e.kind] ? [i] : []))
  ]
  let kept = history.length
  let keptBytes = sizes.reduce((a, b) => a + b, 0)
  let dropped = 0
  const encodeWith = (): string =>
    JSON.stringify({
      ...state,
      history: history.filter((_, i) => keep[i]),
      historyDropped: (state.historyDropped ?? 0) + dropped
    })
  // Size arithmetic instead of re-encoding per drop: the shell plus the events and their commas.
  const shellBytes = (): number =>
    byteLength(JSON.stringify({ ...state, history: [], historyDropped: (state.historyDropped ?? 0) + dropped }))
  const fits = (): boolean => shellBytes() + keptBytes + Math.max(0, kept - 1) <= maxBytes
  for (const i of order) {
    if (fits()) break
    keep[i] = false
    kept--
    keptBytes -= sizes[i]
    dropped++
  }
  const out = encodeWith()
  if (byteLength(out) > maxBytes) {
    throw new RangeError(
      `Rollout state ${quote(state.id)} needs ${byteLength(out)} bytes even with ${dropped} history events dropped; ` +
        `expected at most ${maxBytes} bytes in annotation '${STATE_ANNOTATION}'.`
    )
  }
  return out
}

/**
 * Parse and check an annotation value. `objectName` is the VirtualService's `namespace/name` (or
 * name): a corrupt value is a PreflightError that says how to clear it by hand.
 */
export function decodeState(annotationValue: string, objectName: string): RolloutState {
  const [ns, name] = objectName.includes('/') ? objectName.split('/', 2) : [undefined, objectName]
  const clear = `kubectl ${ns ? `-n ${ns} ` : ''}annotate virtualservice ${name} ${STATE_ANNOTATION}-`
  const fail = (problem: string): never => {
    throw new PreflightError(
      `Annotation '${STATE_ANNOTATION}' on VirtualService ${objectName} is not a rollout state istio-canary can read: ` +
        `${problem}. If no rollout is in progress, clear it by hand (\`${clear}\`), then run again.`
    )
  }
  let raw: unknown
  try {
    raw = JSON.parse(annotationValue)
  } catch (err) {
    return fail(`invalid JSON (${(err as Error).message}; got ${quote(annotationValue)})`)
  }
  if (!isObject(raw)) return fail(`expected a JSON object (got ${quote(annotationValue)})`)
  if (raw.schema !== SCHEMA) {
    return fail(
      `schema ${quote(raw.schema)} is not supported, this version reads schema ${SCHEMA} ` +
        `(a newer istio-canary may have written it: finish the rollout with that version)`
    )
  }
  const problem = shapeProblem(raw)
  if (problem !== undefined) return fail(problem)
  return raw as unknown as RolloutState
}

/** The rollout state on a VirtualService; undefined when it has none. */
export function stateOf(vs: KubeObject): RolloutState | undefined {
  const value = vs.metadata.annotations?.[STATE_ANNOTATION]
  if (value === undefined) return undefined
  const ns = vs.metadata.namespace
  return decodeState(value, ns ? `${ns}/${vs.metadata.name}` : vs.metadata.name)
}

type Json = Record<string, unknown>
type Check = (value: unknown) => string | undefined // the expectation when value fails

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// A problem below `at` is already a path (".x: expected ..."); a bare expectation gets its path here.
const nest = (at: string, problem: string): string =>
  problem.startsWith('.') || problem.startsWith('[') ? `${at}${problem}` : `${at}: expected ${problem}`

const str: Check = (v) => (typeof v === 'string' ? undefined : 'a string')
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'true or false')
const int =
  (min: number, max?: number): Check =>
  (v) =>
    Number.isInteger(v) && (v as number) >= min && (max === undefined || (v as number) <= max)
      ? undefined
      : max === undefined
        ? `an integer >= ${min}`
        : `an integer between ${min} and ${max}`
const num: Check = (v) => (typeof v === 'number' && Number.isFinite(v) ? undefined : 'a number')
const oneOf =
  (values: Set<string>): Check =>
  (v) =>
    typeof v === 'string' && values.has(v) ? undefined : `one of ${[...values].join(', ')}`
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined ? undefined : check(v)
const list =
  (check: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return 'a list'
    for (let i = 0; i < v.length; i++) {
      const p = check(v[i])
      if (p !== undefined) return nest(`[${i}]`, p)
    }
    return undefined
  }
const shape =
  (fields: Record<string, Check>): Check =>
  (v) => {
    if (!isObject(v)) return 'an object'
    for (const [key, check] of Object.entries(fields)) {
      const p = check(v[key])
      if (p !== undefined) return nest(`.${key}`, p)
    }
    return undefined
  }

const percent: Check = (v) => (typeof v === 'number' && v > 0 && v <= 100 ? undefined : 'a number above 0 and at most 100')
const requestMatch: Check = shape({
  on: oneOf(new Set(['header', 'cookie'])),
  name: str,
  op: oneOf(new Set(['exact', 'regex'])),
  value: str
})
const exposure: Check = (v) => {
  if (isObject(v) && v.kind === 'mirror') return shape({ percent })(v)
  if (isObject(v) && v.kind === 'match') return shape({ match: requestMatch })(v)
  return '{"kind":"match","match":{...}} or {"kind":"mirror","percent":...}'
}

const step: Check = (v) => {
  if (isObject(v) && v.kind === 'pause') return undefined
  if (isObject(v) && (v.kind === 'match' || v.kind === 'mirror')) return exposure(v)
  return shape({ kind: oneOf(new Set(['weight'])), weight: int(0, 100) })(v) === undefined
    ? undefined
    : `{"kind":"weight","weight":0..100}, {"kind":"pause"}, {"kind":"match",...} or {"kind":"mirror",...}`
}

const event: Check = shape({
  at: str,
  kind: oneOf(new Set(Object.keys(ESSENTIAL))),
  canaryWeight: optional(num),
  message: optional(str),
  evaluation: optional((v) => (isObject(v) ? undefined : 'an object')),
  by: optional(str)
})

const stateShape: Check = shape({
  id: str,
  phase: oneOf(PHASES),
  route: shape({ index: int(0), name: optional(str), section: optional(oneOf(new Set(['tcp']))) }),
  host: str,
  stable: shape({ version: str, subset: str, deployment: optional(str) }),
  canary: shape({ version: str, subset: str, deployment: str }),
  members: optional(
    list(
      shape({
        namespace: optional(str),
        virtualService: str,
        route: shape({ index: int(0), name: optional(str), section: optional(oneOf(new Set(['tcp']))) }),
        host: str,
        destinationRule: str
      })
    )
  ),
  schedule: list(step),
  stepIndex: int(-1),
  canaryWeight: int(0, 100),
  exposure: optional(exposure),
  failedChecks: int(0),
  inconclusiveStreak: int(0),
  epoch: int(0),
  startedAt: str,
  updatedAt: str,
  startedBy: optional(str),
  commit: optional(str),
  minSoakSeconds: optional(int(0)),
  capacity: optional(shape({ mode: oneOf(new Set(CANARY_REPLICAS_MODES)), stableHpa: optional(str), canaryHpa: optional(str) })),
  reason: optional(str),
  result: optional(oneOf(RESULTS)),
  history: list(event),
  historyDropped: optional(int(0)),
  destinationRule: str,
  backends: optional(oneOf(new Set(['services']))),
  stepDone: bool,
  stepStartedAt: optional(str),
  rollbackResult: optional(oneOf(new Set(['rolled-back', 'aborted']))),
  retirement: optional(shape({ version: str, subset: str, deployment: optional(str), retired: bool, heldBy: optional(list(str)) }))
})

function shapeProblem(raw: Json): string | undefined {
  const p = stateShape(raw)
  if (p === undefined) return undefined
  // ".stable.subset: expected a string" -> "field stable.subset: expected a string"
  const field = p.slice(1)
  const at = field.indexOf(':')
  const path = field.slice(0, at)
  const value = lookup(raw, path)
  return `field ${quote(path)}${field.slice(at)} (${value === undefined ? 'missing' : `got ${quote(value)}`})`
}

function lookup(raw: unknown, path: string): unknown {
  let v: unknown = raw
  for (const part of path.split(/\.|\[|\]/).filter((s) => s !== '')) {
    v = isObject(v) ? v[part] : Array.isArray(v) ? v[Number(part)] : undefined
  }
  return v
}
