/**
 * What merging a release would do, as plain data for the plan preview: the Deployment's changes
 * against the stable one, the schedule as a timeline with its minimum time, and the warnings a
 * reviewer should see. Pure: the caller reads the cluster and the gates.
 */
import type { KubeObject } from '../kube/kube-object.js'
import type { Exposure, Step } from './types.js'

/** One field that differs between the stable Deployment and the new one. */
export interface DiffLine {
  /** `replicas`, `containers[app].image`, `containers[app].env`, ... */
  field: string
  /** undefined: absent on that side. Values as compact JSON, strings as they are. */
  stable?: string
  canary?: string
}

const CONTAINER_FIELDS = ['image', 'env', 'resources', 'readinessProbe', 'livenessProbe', 'startupProbe'] as const

/** The fields a reviewer judges a release by (image, env, resources, probes, replicas), stable against new. */
export function deploymentDiff(stable: KubeObject | undefined, canary: KubeObject): DiffLine[] {
  const lines: DiffLine[] = []
  const show = (v: unknown): string | undefined => (v === undefined ? undefined : typeof v === 'string' ? v : JSON.stringify(v))
  const push = (field: string, a: unknown, b: unknown): void => {
    if (JSON.stringify(a) !== JSON.stringify(b)) lines.push({ field, stable: show(a), canary: show(b) })
  }
  // An omitted replica count is 1 on both sides (the apiserver's default).
  push('replicas', stable ? (stable.spec?.replicas ?? 1) : undefined, canary.spec?.replicas ?? 1)
  type Container = Record<string, unknown> & { name?: string }
  const list = (d: KubeObject | undefined): Container[] => d?.spec?.template?.spec?.containers ?? []
  const before = new Map(list(stable).map((c) => [c.name ?? '', c]))
  const after = list(canary)
  for (const c of after) {
    const old = before.get(c.name ?? '')
    for (const f of CONTAINER_FIELDS) push(`containers[${c.name}].${f}`, old?.[f], c[f])
  }
  for (const [name, old] of before) {
    if (!after.some((c) => (c.name ?? '') === name)) lines.push({ field: `containers[${name}]`, stable: show(old.image) ?? 'present' })
  }
  return lines
}

/** One entry of the timeline, with its earliest start in seconds after the canary is available. */
export type TimelineEntry =
  /** A weight step; a header/cookie or mirror step is weight 0 with its `exposure`. */
  | { kind: 'weight'; weight: number; atSeconds: number; bakeSeconds: number; soakHoldSeconds?: number; exposure?: Exposure }
  | { kind: 'pause'; atSeconds: number }

export interface Timeline {
  entries: TimelineEntry[]
  /** From the canary being available to promoted, pauses counted as 0 (they wait for a person). */
  minimumSeconds: number
  pauses: number
}

/**
 * The schedule as it runs: each weight is written, settles, and bakes `interval`; the last weight
 * below 100 holds until `min-soak` is met; promotion then settles twice (destination, then subset).
 */
export function scheduleTimeline(
  steps: readonly Step[],
  t: { intervalSeconds: number; settleSeconds: number; minSoakSeconds: number }
): Timeline {
  const entries: TimelineEntry[] = []
  let at = t.settleSeconds // the new subset propagates before the first weight
  let firstTraffic: number | undefined
  let pauses = 0
  for (const step of steps) {
    if (step.kind === 'pause') {
      pauses++
      entries.push({ kind: 'pause', atSeconds: at })
      continue
    }
    if (step.kind !== 'weight') {
      // The minimum soak counts from the first weight: mirrored or matched requests are not all traffic.
      entries.push({ kind: 'weight', weight: 0, atSeconds: at, bakeSeconds: t.intervalSeconds, exposure: step })
      at += t.settleSeconds + t.intervalSeconds
      continue
    }
    if (step.weight === 100 && firstTraffic !== undefined && t.minSoakSeconds > at - firstTraffic) {
      const hold = t.minSoakSeconds - (at - firstTraffic)
      const last = [...entries].reverse().find((e) => e.kind === 'weight')
      if (last && last.kind === 'weight') last.soakHoldSeconds = hold
      at += hold
    }
    firstTraffic ??= at
    entries.push({ kind: 'weight', weight: step.weight, atSeconds: at, bakeSeconds: t.intervalSeconds })
    at += t.settleSeconds + t.intervalSeconds
  }
  return { entries, minimumSeconds: at + 2 * t.settleSeconds, pauses }
}

export interface ReviewFacts {
  steps: readonly Step[]
  /** Names of the configured metric and webhook gates (the pods-ready check is always on). */
  gates: readonly string[]
  onNoData: string
  /** Undefined when no metric gate is configured. */
  minRequests?: number
  /** Gates whose query returned no data for the stable version over the last hour. */
  stableNoData: readonly string[]
}

/** What a reviewer should know before approving, beyond the preflight's errors. */
export function reviewerWarnings(f: ReviewFacts): string[] {
  const w: string[] = []
  if (f.gates.length === 0)
    w.push(
      'No health gates are configured: only the pods-ready check judges the canary; set success-rate, latency-p99, checks or webhooks.'
    )
  if (f.onNoData === 'skip') w.push('on-no-data is skip: a gate with no data counts as a pass, so a canary nobody calls is promoted.')
  if (f.minRequests === 0 && f.gates.length > 0)
    w.push('min-requests is 0: a metric gate judges the canary on however few requests it served.')
  const weights = f.steps.filter((s) => s.kind === 'weight')
  if (weights.length === 1)
    w.push('The schedule reaches 100 % in one step: all traffic moves to the new version at once, with no canary phase.')
  for (const name of f.stableNoData) {
    w.push(`Gate ${name} had no data for the stable version over the last hour: the same query will likely be inconclusive for the canary.`)
  }
  return w
}
