/**
 * A small client for Prometheus's instant-query API (`POST /api/v1/query`), built on global fetch.
 * It never throws: every answer, error and timeout becomes a QueryOutcome the gate can judge.
 * Parsing is defensive: proxies answer with HTML, values are strings ("NaN", "+Inf"), and a gate
 * wants exactly one number.
 */
import { sleepUnlessAborted } from '../abortable-sleep.js'

/** The result of one instant query, reduced to what a gate needs. */
export type QueryOutcome =
  | { kind: 'value'; value: number; warnings: string[] }
  /** Nothing to judge: empty vector, NaN, ±Inf. `reason` says which. */
  | { kind: 'no-data'; reason: string; warnings: string[] }
  /**
   * Prometheus could not answer usefully. `rejected`: Prometheus refused the query itself (bad_data,
   * 400/422) or its shape can never give one number (matrix, string, several series): a config error.
   * `unreachable`: no HTTP answer at all. `unauthorized`: 401/403.
   */
  | {
      kind: 'error'
      reason: string
      warnings: string[]
      rejected?: boolean
      unreachable?: boolean
      unauthorized?: boolean
    }

/** One series of an instant vector: its labels and its value (NaN and ±Inf as read). */
export interface VectorSample {
  labels: Record<string, string>
  value: number
}

/** The result of an instant query whose answer may hold any number of series. */
export type VectorOutcome = { kind: 'vector'; samples: VectorSample[]; warnings: string[] } | Extract<QueryOutcome, { kind: 'error' }>

export type PrometheusAuth = { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string }

export interface PrometheusClientOptions {
  url: string
  auth?: PrometheusAuth
  /** Client-side deadline per request, seconds; the server gets a slightly lower `timeout`. */
  timeoutSeconds: number
  fetch?: typeof fetch
  /** Retries after a transport error or 502/503/504 (not after a timeout: its time is spent). */
  retries?: number
  retryDelayMs?: number
}

function snippet(text: string, max = 160): string {
  const flat = text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

function warningsOf(body: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const key of ['warnings', 'infos']) {
    const list = body[key]
    if (Array.isArray(list)) for (const w of list) if (typeof w === 'string') out.push(w)
  }
  return out
}

/** Parse a sample value string ("0.99", "NaN", "+Inf") into a value or a no-data reason. */
function sampleOutcome(raw: unknown, warnings: string[]): QueryOutcome {
  if (typeof raw !== 'string' && typeof raw !== 'number') {
    return { kind: 'error', reason: `sample value ${JSON.stringify(raw)} is not a number`, warnings }
  }
  // Prometheus spells infinities the Go way, which Number() does not read.
  const text = String(raw)
  const value = text === '+Inf' || text === 'Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text)
  if (Number.isNaN(value)) {
    if (String(raw) === 'NaN') return { kind: 'no-data', reason: 'value is NaN (0/0: no requests in the window?)', warnings }
    return { kind: 'error', reason: `sample value ${JSON.stringify(raw)} is not a number`, warnings }
  }
  if (!Number.isFinite(value)) {
    return { kind: 'no-data', reason: `value is ${value > 0 ? '+Inf' : '-Inf'} (division by zero?)`, warnings }
  }
  return { kind: 'value', value, warnings }
}

function labelsText(metric: unknown): string {
  if (!metric || typeof metric !== 'object') return '{}'
  const pairs = Object.entries(metric as Record<string, unknown>).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
  return `{${pairs.join(',')}}`
}

/** Turn one HTTP answer of `/api/v1/query` into an outcome. Pure. */
export function parseQueryResponse(status: number, contentType: string | null, bodyText: string): QueryOutcome {
  let body: unknown
  try {
    body = JSON.parse(bodyText)
  } catch {
    const what = contentType ? contentType.split(';')[0] : 'no content type'
    const unauthorized = status === 401 || status === 403
    return {
      kind: 'error',
      reason: `HTTP ${status}, not a Prometheus answer (${what}): ${JSON.stringify(snippet(bodyText))}`,
      warnings: [],
      ...(unauthorized ? { unauthorized } : {})
    }
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return { kind: 'error', reason: `HTTP ${status}, unexpected JSON: ${JSON.stringify(snippet(bodyText))}`, warnings: [] }
  }
  const envelope = body as Record<string, unknown>
  const warnings = warningsOf(envelope)
  if (envelope.status === 'error' || status < 200 || status >= 300) {
    const errorType = typeof envelope.errorType === 'string' ? envelope.errorType : 'unknown'
    const message = typeof envelope.error === 'string' ? envelope.error : snippet(bodyText)
    const rejected = errorType === 'bad_data' || status === 400 || status === 422
    const unauthorized = status === 401 || status === 403
    return {
      kind: 'error',
      reason: `Prometheus error (HTTP ${status}, ${errorType}): ${message}`,
      warnings,
      ...(rejected ? { rejected } : {}),
      ...(unauthorized ? { unauthorized } : {})
    }
  }
  if (envelope.status !== 'success') {
    return { kind: 'error', reason: `unexpected status ${JSON.stringify(envelope.status)} in Prometheus answer`, warnings }
  }
  const data = envelope.data as { resultType?: unknown; result?: unknown } | undefined
  if (!data || typeof data !== 'object') return { kind: 'error', reason: 'Prometheus answer has no data', warnings }
  switch (data.resultType) {
    case 'scalar': {
      const pair = data.result
      if (!Array.isArray(pair) || pair.length !== 2) return { kind: 'error', reason: 'malformed scalar result', warnings }
      return sampleOutcome(pair[1], warnings)
    }
    case 'vector': {
      const result = data.result
      if (!Array.isArray(result)) return { kind: 'error', reason: 'malformed vector result', warnings }
      if (result.length === 0) return { kind: 'no-data', reason: 'no data (empty result)', warnings }
      if (result.length > 1) {
        const shown = result
          .slice(0, 3)
          .map((s: { metric?: unknown }) => labelsText(s?.metric))
          .join(', ')
        return {
          kind: 'error',
          reason: `${result.length} series where one was expected (aggregate with sum() or similar): ${shown}${result.length > 3 ? ', …' : ''}`,
          warnings,
          rejected: true
        }
      }
      const sample = result[0] as { value?: unknown }
      if (!Array.isArray(sample?.value) || sample.value.length !== 2) {
        return { kind: 'error', reason: 'malformed vector sample', warnings }
      }
      return sampleOutcome(sample.value[1], warnings)
    }
    case 'matrix':
      return {
        kind: 'error',
        reason: 'range vector (matrix) result where one number was expected; wrap the range selector in a function like rate()',
        warnings,
        rejected: true
      }
    case 'string':
      return { kind: 'error', reason: 'string result where a number was expected', warnings, rejected: true }
    default:
      return { kind: 'error', reason: `unknown resultType ${JSON.stringify(data.resultType)}`, warnings }
  }
}

/**
 * Turn one HTTP answer of `/api/v1/query` into every series of an instant vector. Pure. Errors are
 * those of parseQueryResponse; any other result type is an error too.
 */
export function parseVectorResponse(status: number, contentType: string | null, bodyText: string): VectorOutcome {
  const single = parseQueryResponse(status, contentType, bodyText)
  if (single.kind === 'error' && !single.rejected) return single
  let data: { resultType?: unknown; result?: unknown } | undefined
  try {
    data = (JSON.parse(bodyText) as { data?: typeof data }).data
  } catch {
    data = undefined
  }
  if (single.kind === 'error' && data?.resultType !== 'vector') return single
  if (data?.resultType !== 'vector' || !Array.isArray(data.result)) {
    return {
      kind: 'error',
      reason: `${String(data?.resultType ?? 'no')} result where an instant vector was expected`,
      warnings: single.warnings,
      rejected: true
    }
  }
  const samples: VectorSample[] = []
  for (const raw of data.result as Array<{ metric?: unknown; value?: unknown }>) {
    const value = Array.isArray(raw?.value) && raw.value.length === 2 ? sampleOutcome(raw.value[1], []) : undefined
    if (!value || value.kind === 'error') return { kind: 'error', reason: 'malformed vector sample', warnings: single.warnings }
    const labels: Record<string, string> = {}
    if (raw.metric && typeof raw.metric === 'object') {
      for (const [k, v] of Object.entries(raw.metric as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v
    }
    samples.push({ labels, value: value.kind === 'value' ? value.value : NaN })
  }
  return { kind: 'vector', samples, warnings: single.warnings }
}

function describeFetchError(err: unknown, timeoutSeconds: number): { reason: string; timeout: boolean } {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return { reason: `timed out after ${timeoutSeconds}s`, timeout: true }
  if (e?.name === 'AbortError') return { reason: 'aborted', timeout: true }
  const cause = e?.cause?.message ?? e?.cause?.code
  return { reason: `unreachable: ${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`, timeout: false }
}

const sleep = sleepUnlessAborted

/** Instant queries against one Prometheus. */
export class PrometheusClient {
  private readonly endpoint: string
  private readonly headers: Record<string, string>
  private readonly fetchFn: typeof fetch
  /** Queries sent since construction (each retry counts), for the figures. */
  queriesSent = 0

  constructor(private readonly options: PrometheusClientOptions) {
    this.endpoint = `${options.url.replace(/\/+$/, '')}/api/v1/query`
    this.headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }
    if (options.auth?.kind === 'bearer') this.headers.authorization = `Bearer ${options.auth.token}`
    if (options.auth?.kind === 'basic') {
      const raw = `${options.auth.username}:${options.auth.password}`
      this.headers.authorization = `Basic ${Buffer.from(raw).toString('base64')}`
    }
    this.fetchFn = options.fetch ?? fetch
  }

  /** Run one instant query; `time` in Unix seconds (default: Prometheus's now). Never throws. */
  async query(expr: string, opts: { time?: number; signal?: AbortSignal } = {}): Promise<QueryOutcome> {
    const retries = this.options.retries ?? 1
    let last: QueryOutcome | undefined
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep((this.options.retryDelayMs ?? 500) * attempt, opts.signal)
      if (opts.signal?.aborted) return last ?? { kind: 'error', reason: 'aborted', warnings: [] }
      const { outcome, retryable } = await this.once(expr, opts)
      last = outcome
      if (!retryable) break
    }
    return last as QueryOutcome
  }

  /** Run one instant query whose answer may hold several series (e.g. `sum by (...)`). Never throws. */
  async queryVector(expr: string, opts: { time?: number; signal?: AbortSignal } = {}): Promise<VectorOutcome> {
    const retries = this.options.retries ?? 1
    let last: VectorOutcome | undefined
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep((this.options.retryDelayMs ?? 500) * attempt, opts.signal)
      if (opts.signal?.aborted) return last ?? { kind: 'error', reason: 'aborted', warnings: [] }
      const { outcome, retryable } = await this.once(expr, opts, parseVectorResponse)
      last = outcome
      if (!retryable) break
    }
    return last as VectorOutcome
  }

  private async once<T extends { kind: string } = QueryOutcome>(
    expr: string,
    opts: { time?: number; signal?: AbortSignal },
    parse: (status: number, contentType: string | null, bodyText: string) => T = parseQueryResponse as unknown as typeof parse
  ): Promise<{ outcome: T; retryable: boolean }> {
    const t = this.options.timeoutSeconds
    const form = new URLSearchParams({ query: expr })
    // The server stops a little before we give up, so its own timeout error can reach us.
    form.set('timeout', `${Math.max(1, Math.floor(t * 0.9 * 1000))}ms`)
    if (opts.time !== undefined) form.set('time', opts.time.toFixed(3))
    const timeout = AbortSignal.timeout(t * 1000)
    const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout
    this.queriesSent++
    let response: Response
    let text: string
    try {
      response = await this.fetchFn(this.endpoint, { method: 'POST', headers: this.headers, body: form, signal })
      text = await response.text()
    } catch (err) {
      const { reason, timeout: timedOut } = describeFetchError(err, t)
      return {
        outcome: { kind: 'error', reason, warnings: [], ...(timedOut ? {} : { unreachable: true }) } as unknown as T,
        retryable: !timedOut
      }
    }
    const outcome = parse(response.status, response.headers.get('content-type'), text)
    return { outcome, retryable: outcome.kind === 'error' && [502, 503, 504].includes(response.status) }
  }
}
