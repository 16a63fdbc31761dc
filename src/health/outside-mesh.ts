/**
 * Callers outside the mesh: requests that reached a workload from a client without an Istio sidecar.
 * Such a caller ignores the VirtualService: it reaches the Service through kube-proxy, which picks
 * among every pod the Service selects, so once the canary has a Ready pod behind the same Service it
 * gets a share of those requests set by pod counts, not by the weights, before any gate has judged it.
 *
 * Istio's telemetry shows them at reporter="destination" (the receiving sidecar reports every
 * request): a client without a sidecar has no peer metadata and no mTLS identity, so its requests
 * carry source_workload="unknown" and source_principal "unknown" (or none). The reporter input does
 * not apply here: a source or waypoint reporter never sees these requests.
 */
import { quote } from '../errors.js'
import type { OutsideMeshShare } from '../rollout/types.js'
import type { PrometheusClient, VectorOutcome } from './prometheus-client.js'
import { escapePromqlString, invalidValue } from './promql-template.js'

/** What input `outside-mesh` asks for when callers outside the mesh reach the stable version. */
export type OutsideMeshPolicy = 'warn' | 'fail' | 'ignore'

export const OUTSIDE_MESH_POLICIES: readonly OutsideMeshPolicy[] = ['warn', 'fail', 'ignore']

/** The window of the preflight's look at the stable version: the last 10 minutes. */
export const OUTSIDE_MESH_PREFLIGHT_WINDOW_SECONDS = 600

/** Where the README says how to keep outside callers off the canary. */
export const OUTSIDE_MESH_DOCS = 'README, "Callers outside the mesh"'

/** The workload whose incoming requests are looked at. */
export interface OutsideMeshSubject {
  namespace: string
  /** The Deployment name: Istio's destination_workload. */
  workload: string
}

/** One source of outside-mesh requests, as far as Istio tells it ("unknown" otherwise). */
export interface OutsideMeshSource {
  /** source_workload_namespace; "unknown" for a client without a sidecar. */
  namespace: string
  /** source_principal; "unknown" when there was no mTLS peer. */
  principal: string
  /** destination_service_name: the Service the caller addressed. */
  service: string
  /** Requests per second over the window. */
  rps: number
}

/** What Prometheus says about one workload's callers over a window. */
export type OutsideMeshReading =
  | {
      kind: 'measured'
      windowSeconds: number
      /** All requests per second at reporter="destination". */
      totalRps: number
      /** Of those, from callers outside the mesh. */
      outsideRps: number
      /** 0..100. */
      percent: number
      /** Largest first. */
      sources: OutsideMeshSource[]
    }
  /** Nothing to judge: no requests recorded, or Prometheus could not answer. Not the same as zero. */
  | { kind: 'unknown'; windowSeconds: number; reason: string }

/** Refused before a value goes into a query: a name Prometheus labels could never hold. */
export class OutsideMeshSubjectError extends Error {
  override readonly name = 'OutsideMeshSubjectError'
}

/** The label matchers of one workload's incoming requests, values checked and escaped. */
export function destinationSelector(subject: OutsideMeshSubject): string {
  const ns = invalidValue('namespace', subject.namespace)
  if (ns) throw new OutsideMeshSubjectError(`namespace ${quote(subject.namespace)} ${ns}`)
  const wl = invalidValue('workload', subject.workload)
  if (wl) throw new OutsideMeshSubjectError(`workload ${quote(subject.workload)} ${wl}`)
  return (
    `reporter="destination",destination_workload_namespace="${escapePromqlString(subject.namespace)}",` +
    `destination_workload="${escapePromqlString(subject.workload)}"`
  )
}

/** The two queries of a reading: all requests per second, and those from outside the mesh per source. */
export function outsideMeshQueries(subject: OutsideMeshSubject, windowSeconds: number): { total: string; outside: string } {
  const sel = destinationSelector(subject)
  const window = `${Math.max(1, Math.round(windowSeconds))}s`
  // No sidecar: no peer metadata (workload "unknown") and no mTLS identity (principal "unknown" or absent).
  const outsideSel = `${sel},source_workload="unknown",source_principal=~"unknown|"`
  return {
    total: `sum(rate(istio_requests_total{${sel}}[${window}]))`,
    outside: `sum by (source_workload_namespace, source_principal, destination_service_name) (rate(istio_requests_total{${outsideSel}}[${window}]))`
  }
}

/** Reduce the two answers to a reading. Pure. */
export function readingOf(total: VectorOutcome, outside: VectorOutcome, windowSeconds: number): OutsideMeshReading {
  const window = formatWindow(windowSeconds)
  if (total.kind === 'error') return { kind: 'unknown', windowSeconds, reason: `Prometheus could not count the requests: ${total.reason}` }
  const totalRps = total.samples.reduce((sum, s) => sum + (Number.isFinite(s.value) ? s.value : 0), 0)
  if (total.samples.length === 0 || !(totalRps > 0)) {
    return { kind: 'unknown', windowSeconds, reason: `no requests were recorded at reporter="destination" in the last ${window}` }
  }
  if (outside.kind === 'error')
    return { kind: 'unknown', windowSeconds, reason: `Prometheus could not count the requests from outside the mesh: ${outside.reason}` }
  const sources = outside.samples
    .filter((s) => Number.isFinite(s.value) && s.value > 0)
    .map((s) => ({
      namespace: s.labels.source_workload_namespace || 'unknown',
      principal: s.labels.source_principal || 'unknown',
      service: s.labels.destination_service_name || 'unknown',
      rps: s.value
    }))
    .sort((a, b) => b.rps - a.rps)
  const outsideRps = sources.reduce((sum, s) => sum + s.rps, 0)
  // Both come from the same counters at slightly different instants: never above 100 %.
  const percent = Math.min(100, (outsideRps / totalRps) * 100)
  return { kind: 'measured', windowSeconds, totalRps, outsideRps, percent, sources }
}

/** Measures the share of a workload's requests that came from outside the mesh. Never throws. */
export class OutsideMeshProbe {
  constructor(
    private readonly client: PrometheusClient,
    readonly policy: OutsideMeshPolicy,
    private readonly now?: () => number
  ) {}

  async measure(subject: OutsideMeshSubject, windowSeconds: number, signal?: AbortSignal): Promise<OutsideMeshReading> {
    let queries: { total: string; outside: string }
    try {
      queries = outsideMeshQueries(subject, windowSeconds)
    } catch (err) {
      return { kind: 'unknown', windowSeconds, reason: `not queried: ${(err as Error).message}` }
    }
    // Both queries at one instant: evaluated at Prometheus's own now, a scrape landing between them
    // would give the two rates different samples (and a share off by several points at a series' start).
    const time = (this.now ?? Date.now)() / 1000
    const [total, outside] = await Promise.all([
      this.client.queryVector(queries.total, { time, signal }),
      this.client.queryVector(queries.outside, { time, signal })
    ])
    return readingOf(total, outside, windowSeconds)
  }

  /** The figure for one gate evaluation of the canary. */
  async share(subject: OutsideMeshSubject, windowSeconds: number, signal?: AbortSignal): Promise<OutsideMeshShare> {
    return shareOf(await this.measure(subject, windowSeconds, signal))
  }
}

/** The compact per-step figure of a reading. Pure. */
export function shareOf(reading: OutsideMeshReading): OutsideMeshShare {
  if (reading.kind === 'unknown') return { detail: reading.reason }
  return { percent: round(reading.percent), rps: round(reading.outsideRps) }
}

/** What preflight does with a reading: say it (info), warn, or refuse. */
export type OutsideMeshDecision = { level: 'none' } | { level: 'info' | 'warning' | 'refuse'; message: string }

/** What the preflight knows about where the stable version's callers go once the canary exists. */
export interface OutsideMeshFacts {
  stableVersion: string
  stableWorkload?: string
  /** The Service the route's host names, and whether its selector also picks the canary's pods. */
  service?: { name: string; selectsCanary: boolean }
}

/**
 * The preflight's decision. Pure. Above zero: warn (or refuse under `fail`), naming the share, the
 * sources and what those callers will do. No figure: a warning that says so (inconclusive, not zero),
 * under `fail` too: a service without traffic yet must be deployable.
 */
export function decideOutsideMesh(policy: OutsideMeshPolicy, reading: OutsideMeshReading, facts: OutsideMeshFacts): OutsideMeshDecision {
  if (policy === 'ignore') return { level: 'none' }
  const window = formatWindow(reading.windowSeconds)
  const who = `the stable version ${facts.stableVersion}${facts.stableWorkload ? ` (Deployment ${facts.stableWorkload})` : ''}`
  if (reading.kind === 'unknown') {
    return {
      level: 'warning',
      message: `could not tell whether callers outside the mesh reach ${who}: ${reading.reason}; inconclusive, not zero (see ${OUTSIDE_MESH_DOCS})`
    }
  }
  if (reading.outsideRps <= 0) {
    return {
      level: 'info',
      message: `No requests from outside the mesh reached ${who} in the last ${window} (${formatRps(reading.totalRps)} req/s, all from callers with a sidecar).`
    }
  }
  const sources = reading.sources.slice(0, 5).map(describeSource).join('; ')
  const more = reading.sources.length > 5 ? `; and ${reading.sources.length - 5} more` : ''
  const path = facts.service
    ? facts.service.selectsCanary
      ? `Service ${facts.service.name} selects the pods of both versions, so kube-proxy sends them to the canary by pod count, unweighted, from its first Ready pod, before any gate has judged it`
      : `Service ${facts.service.name} does not select the canary's pods, so they reach the canary only through another Service that does; there they go by pod count, unweighted, from its first Ready pod`
    : `they reach the canary by pod count, unweighted, from its first Ready pod, wherever a Service selects its pods`
  const message =
    `${formatPercent(reading.percent)} of the requests to ${who} in the last ${window} came from outside the mesh ` +
    `(${formatRps(reading.outsideRps)} of ${formatRps(reading.totalRps)} req/s at reporter="destination" with source_workload="unknown" and no peer principal: ${sources}${more}). ` +
    `These callers have no Envoy sidecar and ignore the VirtualService's weights: ${path}. ` +
    `To keep them off the canary give them a Service that selects the stable version only, or refuse them with PeerAuthentication mode STRICT (see ${OUTSIDE_MESH_DOCS}).`
  if (policy === 'fail') {
    return {
      level: 'refuse',
      message: `${message} Refusing to start: input 'outside-mesh' is ${quote('fail')} (set it to "warn" to start anyway). Nothing was changed.`
    }
  }
  return { level: 'warning', message }
}

function describeSource(s: OutsideMeshSource): string {
  const from =
    s.namespace === 'unknown' && s.principal === 'unknown'
      ? 'callers Istio cannot identify'
      : [s.namespace !== 'unknown' ? `namespace ${s.namespace}` : '', s.principal !== 'unknown' ? `principal ${s.principal}` : '']
          .filter(Boolean)
          .join(', ')
  return `${formatRps(s.rps)} req/s from ${from} via Service ${s.service}`
}

function round(n: number): number {
  return Number(n.toFixed(n >= 1 ? 2 : 4))
}

/** `12.5 %`, `0.04 %`: enough digits that a small share never reads as 0. */
export function formatPercent(p: number): string {
  if (p > 0 && p < 0.01) return '< 0.01 %'
  return `${Number(p.toFixed(p >= 10 ? 1 : 2))} %`
}

function formatRps(n: number): string {
  return String(Number(n.toFixed(n >= 10 ? 1 : n >= 0.1 ? 2 : 4)))
}

function formatWindow(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`
}
