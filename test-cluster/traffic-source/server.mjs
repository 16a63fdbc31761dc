#!/usr/bin/env node
// Traffic source for the istio-canary test cluster: exports Istio's standard request metrics
// (istio_requests_total, istio_request_duration_milliseconds) in Prometheus text format on
// /metrics, for workloads configured through a small HTTP API. No dependencies; Node >= 20.
//
// Nothing is sent anywhere: the counters are computed from elapsed time, so they grow in real time
// between scrapes without a timer. Changing a workload's config keeps every counter monotonic
// (what accrued so far is kept, then the new rates apply from now on).
//
//   node cluster/traffic-source/server.mjs [--port 0] [--host 127.0.0.1]
//
// API (JSON):
//   PUT|POST /workloads/{namespace}/{workload}
//            {rps, errorRatio, latencyMs, version?, reporters?, service?, errorCode?,
//             sourceWorkload?, sourceNamespace?, outsideMeshRatio?}
//     rps         requests per second (>= 0)
//     errorRatio  fraction of requests answered 5xx (0..1), response_code = errorCode (default 503)
//     latencyMs   p99 latency in ms: histogram_quantile(0.99, ...) over the exported buckets gives it
//                 back exactly (for 1 < latencyMs <= 3600000); lower quantiles are spread linearly
//     version     destination_version and destination_canonical_revision (default "unknown"/"latest")
//     reporters   which reporter label values to emit (default ["destination", "source"])
//     service     destination service name (default: the workload name)
//     outsideMeshRatio  fraction of requests (0..1) from a caller without a sidecar: only the
//                 destination reporter sees them, with source_workload, source_principal and the
//                 other source labels "unknown" and connection_security_policy "none", as Istio
//                 reports a client outside the mesh (default 0)
//   DELETE /workloads/{namespace}/{workload}   the workload's series disappear (like a deleted pod)
//   GET    /workloads                          {"workloads":[{namespace, workload, config, since}]}
//   GET    /metrics                            Prometheus text format 0.0.4
//   GET    /healthz                            "ok"
import http from 'node:http'

// Istio's default buckets for istio_request_duration_milliseconds.
export const ISTIO_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000
]
const Q = 0.99

/** Cumulative fraction of requests at or below each bucket bound, so that histogram_quantile(0.99)
 *  interpolates back to exactly p99Ms. Returns {cdf: number[] (per bucket), mean: number (ms)}. */
export function latencyShape(p99Ms) {
  const B = ISTIO_BUCKETS
  const L = Math.min(Math.max(Number(p99Ms) || 0, 0), B[B.length - 1])
  // bucket i with B[i-1] < L <= B[i] (lower bound 0 for the first)
  let i = B.findIndex((b) => L <= b)
  if (i < 0) i = B.length - 1
  const cdf = new Array(B.length).fill(1)
  if (i === 0 || L <= B[0]) {
    // Everything in the first bucket: Prometheus interpolates from 0, giving 0.99 * B[0].
    return { cdf, mean: B[0] / 2 }
  }
  const a = B[i - 1]
  const b = B[i]
  const r = (L - a) / (b - a) // in (0, 1]
  const w = r < 1 ? Math.min(0.02, 0.01 / (1 - r)) : 0.02 // keep Fb <= 1
  const Fa = Q - r * w
  let Fb = Q + (1 - r) * w
  if (Fb <= Q) Fb = Q + 1e-9 // L on a bound: keep the 0.99 rank inside this bucket
  const next = i + 1 < B.length ? B[i + 1] : b * 1.5
  let mean = 0
  for (let k = 0; k < B.length; k++) {
    if (k < i - 1) cdf[k] = (Fa * B[k]) / a // linear from 0 up to a
    else if (k === i - 1) cdf[k] = Fa
    else if (k === i) cdf[k] = Fb
    else cdf[k] = 1 // the rest lies in (b, next]
  }
  mean = Fa * (a / 2) + (Fb - Fa) * ((a + b) / 2) + (1 - Fb) * ((b + next) / 2)
  return { cdf, mean }
}

const workloads = new Map() // key "ns/name" -> {namespace, workload, config, t0, base: Map(seriesKey -> value)}

function esc(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function labelsOf(w, reporter, code, outside = false) {
  const c = w.config
  const service = c.service || w.workload
  const ns = w.namespace
  const sourceWorkload = outside ? 'unknown' : (c.sourceWorkload ?? 'istio-ingressgateway')
  const sourceNamespace = outside ? 'unknown' : (c.sourceNamespace ?? 'istio-system')
  return {
    reporter,
    source_workload: sourceWorkload,
    source_workload_namespace: sourceNamespace,
    source_canonical_service: sourceWorkload,
    source_principal: outside ? 'unknown' : `spiffe://cluster.local/ns/${sourceNamespace}/sa/${sourceWorkload}`,
    destination_workload: w.workload,
    destination_workload_namespace: ns,
    destination_service: `${service}.${ns}.svc.cluster.local`,
    destination_service_name: service,
    destination_service_namespace: ns,
    destination_version: c.version || 'unknown',
    destination_canonical_service: service,
    destination_canonical_revision: c.version || 'latest',
    response_code: String(code),
    response_flags: '-',
    request_protocol: 'http',
    connection_security_policy: outside ? 'none' : reporter === 'destination' ? 'mutual_tls' : 'unknown'
  }
}

function fmtLabels(labels, extra) {
  const all = extra ? { ...labels, ...extra } : labels
  return Object.entries(all)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(',')
}

/** The series a config accrues over `seconds`: Map(key -> {metric, labels, value}). */
function accrue(w, seconds) {
  const out = new Map()
  const c = w.config
  const total = Math.max(0, c.rps) * Math.max(0, seconds)
  const shape = latencyShape(c.latencyMs)
  const codes = [
    [200, total * (1 - c.errorRatio)],
    [c.errorCode ?? 503, total * c.errorRatio]
  ]
  const outsideRatio = c.outsideMeshRatio ?? 0
  // A caller outside the mesh has no sidecar: only the destination reporter sees its requests.
  const callers = [
    [false, 1 - outsideRatio],
    [true, outsideRatio]
  ]
  for (const reporter of c.reporters) {
    for (const [outside, share] of callers) {
      if (share <= 0 || (outside && reporter !== 'destination')) continue
      for (const [code, all] of codes) {
        const n = all * share
        const labels = fmtLabels(labelsOf(w, reporter, code, outside))
        const put = (metric, lbl, value) => {
          const key = `${metric}{${lbl}}`
          out.set(key, { metric, text: key, value })
        }
        put('istio_requests_total', labels, n)
        ISTIO_BUCKETS.forEach((b, k) => put('istio_request_duration_milliseconds_bucket', `${labels},le="${b}"`, n * shape.cdf[k]))
        put('istio_request_duration_milliseconds_bucket', `${labels},le="+Inf"`, n)
        put('istio_request_duration_milliseconds_sum', labels, n * shape.mean)
        put('istio_request_duration_milliseconds_count', labels, n)
      }
    }
  }
  return out
}

function snapshot(w, nowMs) {
  const cur = accrue(w, (nowMs - w.t0) / 1000)
  const merged = new Map(w.base)
  for (const [k, s] of cur) {
    const prev = merged.get(k)
    merged.set(k, prev ? { ...s, value: prev.value + s.value } : s)
  }
  return merged
}

function validate(body) {
  const errs = []
  const num = (v) => typeof v === 'number' && Number.isFinite(v)
  if (!num(body.rps) || body.rps < 0) errs.push('rps must be a number >= 0')
  if (!num(body.errorRatio) || body.errorRatio < 0 || body.errorRatio > 1) errs.push('errorRatio must be a number in [0, 1]')
  if (!num(body.latencyMs) || body.latencyMs <= 0) errs.push('latencyMs must be a number > 0 (the p99 in ms)')
  if (body.reporters !== undefined) {
    if (!Array.isArray(body.reporters) || body.reporters.some((r) => !['destination', 'source', 'waypoint'].includes(r)))
      errs.push('reporters must be an array of "destination", "source", "waypoint"')
  }
  if (body.outsideMeshRatio !== undefined && (!num(body.outsideMeshRatio) || body.outsideMeshRatio < 0 || body.outsideMeshRatio > 1))
    errs.push('outsideMeshRatio must be a number in [0, 1]')
  if (body.errorCode !== undefined && (!Number.isInteger(body.errorCode) || body.errorCode < 500 || body.errorCode > 599))
    errs.push('errorCode must be an integer 500..599')
  return errs
}

function setWorkload(namespace, workload, body, nowMs) {
  const key = `${namespace}/${workload}`
  const config = {
    rps: body.rps,
    errorRatio: body.errorRatio,
    latencyMs: body.latencyMs,
    version: body.version ?? '',
    reporters: body.reporters ?? ['destination', 'source'],
    service: body.service,
    errorCode: body.errorCode ?? 503,
    sourceWorkload: body.sourceWorkload,
    sourceNamespace: body.sourceNamespace,
    outsideMeshRatio: body.outsideMeshRatio ?? 0
  }
  const prev = workloads.get(key)
  if (prev) {
    prev.base = snapshot(prev, nowMs) // accrue up to now at the old rates
    prev.t0 = nowMs
    prev.config = config
    return prev
  }
  const w = { namespace, workload, config, t0: nowMs, base: new Map() }
  workloads.set(key, w)
  return w
}

export function renderMetrics(nowMs = Date.now()) {
  const byMetric = new Map()
  for (const w of workloads.values()) {
    for (const s of snapshot(w, nowMs).values()) {
      if (!byMetric.has(s.metric)) byMetric.set(s.metric, [])
      byMetric.get(s.metric).push(`${s.text} ${s.value}`)
    }
  }
  const lines = [
    '# HELP istio_requests_total Total requests.',
    '# TYPE istio_requests_total counter',
    ...(byMetric.get('istio_requests_total') ?? []),
    '# HELP istio_request_duration_milliseconds Request duration in milliseconds.',
    '# TYPE istio_request_duration_milliseconds histogram',
    ...(byMetric.get('istio_request_duration_milliseconds_bucket') ?? []),
    ...(byMetric.get('istio_request_duration_milliseconds_sum') ?? []),
    ...(byMetric.get('istio_request_duration_milliseconds_count') ?? [])
  ]
  return lines.join('\n') + '\n'
}

function send(res, code, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

export function createServer() {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
    if (req.method === 'GET' && url.pathname === '/metrics') {
      return send(res, 200, renderMetrics(), 'text/plain; version=0.0.4; charset=utf-8')
    }
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, 'ok\n', 'text/plain')
    if (parts[0] !== 'workloads') return send(res, 404, { error: `no route ${req.method} ${url.pathname}` })
    if (parts.length === 1 && req.method === 'GET') {
      return send(res, 200, {
        workloads: [...workloads.values()].map((w) => ({
          namespace: w.namespace,
          workload: w.workload,
          config: w.config,
          since: new Date(w.t0).toISOString()
        }))
      })
    }
    if (parts.length !== 3) return send(res, 404, { error: 'expected /workloads/{namespace}/{workload}' })
    const [, namespace, workload] = parts
    const key = `${namespace}/${workload}`
    if (req.method === 'GET') {
      const w = workloads.get(key)
      return w ? send(res, 200, { namespace, workload, config: w.config }) : send(res, 404, { error: `${key} not found` })
    }
    if (req.method === 'DELETE') {
      const had = workloads.delete(key)
      return send(res, had ? 200 : 404, had ? { deleted: key } : { error: `${key} not found` })
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      let data = ''
      req.setEncoding('utf8')
      req.on('data', (d) => {
        data += d
        if (data.length > 1e5) req.destroy()
      })
      req.on('end', () => {
        let body
        try {
          body = JSON.parse(data || '{}')
        } catch (e) {
          return send(res, 400, { error: `invalid JSON: ${e.message}` })
        }
        const errs = validate(body)
        if (errs.length) return send(res, 400, { error: errs.join('; ') })
        const w = setWorkload(namespace, workload, body, Date.now())
        send(res, 200, { namespace, workload, config: w.config })
      })
      return
    }
    send(res, 405, { error: `method ${req.method} not allowed` })
  })
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (isMain) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 ? process.argv[i + 1] : def
  }
  const port = Number(arg('port', process.env.PORT ?? '0'))
  const host = arg('host', '127.0.0.1')
  const server = createServer()
  server.listen(port, host, () => {
    const addr = server.address()
    console.log(`traffic-source listening on http://${host}:${addr.port}`)
  })
  const stop = () => server.close(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
