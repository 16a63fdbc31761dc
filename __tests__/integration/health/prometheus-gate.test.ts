/**
 * The Prometheus gate against the REAL Prometheus of the local test cluster, fed by its traffic
 * source (Istio's standard metrics, scraped every second), and against a Prometheus started on
 * backfilled data for exact values at a fixed time.
 */
import { ConfigError, PreflightError } from '../../../src/errors.js'
import { buildGates, parseGateConfig } from '../../../src/health/gate-config.js'
import type { GateContext } from '../../../src/health/health-gate.js'
import { PrometheusGate } from '../../../src/health/prometheus-gate.js'
import { combine } from '../../../src/rollout/verdict.js'
import type { CheckResult } from '../../../src/rollout/types.js'
import {
  clearTraffic,
  freePort,
  loadTestEnv,
  setTraffic,
  startBackfilledPrometheus,
  toOpenMetrics,
  waitFor,
  type OpenMetricsSeries,
  type TrafficConfig
} from '../../support/test-cluster.js'

const WINDOW = 10 // seconds: ten scrapes
/** Live tests wait for Prometheus to scrape a full window. */
const LIVE_TIMEOUT = 90_000

/** A namespace name of our own: the traffic source keys series by namespace/workload, no kube object needed. */
const ns = `hg-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
const used: string[] = []

function context(canary: string, stable = `${canary}-stable`, over: Partial<GateContext> = {}): GateContext {
  return {
    namespace: ns,
    host: 'reviews',
    virtualService: 'reviews',
    stable: { version: 'v1', subset: 'v1', deployment: stable },
    canary: { version: 'v2', subset: 'v2', deployment: canary },
    canaryWeight: 10,
    stepIndex: 0,
    schedule: [
      { kind: 'weight', weight: 10 },
      { kind: 'weight', weight: 100 }
    ],
    windowSeconds: WINDOW,
    ...over
  }
}

function prometheusGate(inputs: Record<string, string>, url = loadTestEnv().prometheusUrl, deps = {}): PrometheusGate {
  const config = parseGateConfig({ 'prometheus-url': url, 'min-requests': '10', ...inputs })
  return buildGates(config, deps)[0] as PrometheusGate
}

async function traffic(workload: string, config: TrafficConfig): Promise<void> {
  used.push(workload)
  await setTraffic(ns, workload, config)
}

/** Evaluate until every check is judged over a window full of the configured traffic; return that evaluation. */
async function settled(gate: PrometheusGate, ctx: GateContext): Promise<CheckResult[]> {
  let judgedSince: number | undefined
  return waitFor(
    async () => {
      const results = await gate.evaluate('bake', ctx)
      if (results.some((r) => r.verdict === 'inconclusive')) return undefined
      // Judged once: give rate() one more window so it sees nothing but the configured traffic.
      judgedSince ??= Date.now()
      return Date.now() - judgedSince >= WINDOW * 1000 ? results : undefined
    },
    { timeoutMs: 60_000, intervalMs: 1000, what: 'a full metric window' }
  )
}

const byName = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.name, r]))

// All live workloads start at once, so their windows fill in parallel.
const LIVE: Record<string, TrafficConfig> = {
  'healthy-v2': { rps: 50, errorRatio: 0.001, latencyMs: 120, version: 'v2' },
  'errors-v2': { rps: 50, errorRatio: 0.2, latencyMs: 120, version: 'v2' },
  'slow-v2': { rps: 50, errorRatio: 0, latencyMs: 800, version: 'v2' },
  'idle-v2': { rps: 0, errorRatio: 0, latencyMs: 100, version: 'v2' },
  'same-v1': { rps: 40, errorRatio: 0.01, latencyMs: 200, version: 'v1' },
  'same-v2': { rps: 10, errorRatio: 0.015, latencyMs: 215, version: 'v2' },
  'worse-v1': { rps: 40, errorRatio: 0.01, latencyMs: 200, version: 'v1' },
  'worse-v2': { rps: 10, errorRatio: 0.05, latencyMs: 300, version: 'v2' }
}

beforeAll(async () => {
  for (const [workload, config] of Object.entries(LIVE)) await traffic(workload, config)
}, LIVE_TIMEOUT)

afterAll(async () => {
  for (const w of used) await clearTraffic(ns, w)
})

describe('PrometheusGate on live Istio metrics', () => {
  const builtIns = { 'success-rate': '99', 'latency-p99': '500' }

  it(
    'passes a healthy canary and reports the observed values',
    async () => {
      const gate = prometheusGate(builtIns)
      const ctx = context('healthy-v2')
      await gate.preflight(ctx)
      const results = await settled(gate, ctx)
      const r = byName(results)
      expect(combine(results)).toBe('pass')
      expect(r['success-rate'].value).toBeCloseTo(99.9, 1)
      expect(r['latency-p99'].value).toBeCloseTo(120, 0)
      expect(r['min-requests'].value).toBeGreaterThan(10)

      // Figures: one evaluation's wall time and query count (printed, never asserted).
      const t0 = performance.now()
      await gate.evaluate('bake', ctx)
      const ms = performance.now() - t0
      console.log(
        `[figures] one evaluation (min-requests + success-rate + latency-p99): ${ms.toFixed(1)} ms, ${gate.lastQueryCount} queries`
      )
    },
    LIVE_TIMEOUT
  )

  it(
    'fails a canary whose error ratio rose',
    async () => {
      const results = await settled(prometheusGate(builtIns), context('errors-v2'))
      const r = byName(results)
      expect(r['success-rate'].verdict).toBe('fail')
      expect(r['success-rate'].value).toBeCloseTo(80, 0)
      expect(r['success-rate'].detail).toMatch(/^(79|80)(\.\d+)? % is below the minimum 99 %$/)
      expect(r['latency-p99'].verdict).toBe('pass')
    },
    LIVE_TIMEOUT
  )

  it(
    'fails a slow canary on latency',
    async () => {
      const results = await settled(prometheusGate(builtIns), context('slow-v2'))
      const r = byName(results)
      expect(r['latency-p99'].verdict).toBe('fail')
      expect(r['latency-p99'].value).toBeCloseTo(800, 0)
      expect(r['success-rate'].verdict).toBe('pass')
    },
    LIVE_TIMEOUT
  )

  it(
    'is inconclusive when the canary gets no traffic: below min-requests, no series, or 0/0',
    async () => {
      const gate = prometheusGate(builtIns)
      const none = await gate.evaluate('bake', context('absent-v2'))
      expect(none.map((r) => r.verdict)).toEqual(['inconclusive', 'inconclusive', 'inconclusive'])
      expect(none[0].detail).toBe(`too little traffic: 0 canary requests in ${WINDOW}s (min-requests 10)`)

      const noMin = prometheusGate({ ...builtIns, 'min-requests': '0' })
      const [success, latency] = await noMin.evaluate('bake', context('absent-v2'))
      expect(success).toMatchObject({ verdict: 'inconclusive', detail: 'no data (empty result)' })
      expect(latency).toMatchObject({ verdict: 'inconclusive', detail: 'no data (empty result)' })

      // Series exist but carry no requests: 0/0 is NaN, which must not pass.
      const idle = await waitFor(
        async () => {
          const rs = await noMin.evaluate('bake', context('idle-v2'))
          return rs.every((x) => x.detail !== 'no data (empty result)') ? rs : undefined
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'the idle series to be scraped' }
      )
      expect(idle.map((r) => [r.verdict, r.detail])).toEqual([
        ['inconclusive', 'value is NaN (0/0: no requests in the window?)'],
        ['inconclusive', 'value is NaN (0/0: no requests in the window?)']
      ])
    },
    LIVE_TIMEOUT
  )

  it(
    'is inconclusive when Prometheus is unreachable, and preflight says so clearly',
    async () => {
      const port = await closedPort()
      const gate = prometheusGate(builtIns, `http://127.0.0.1:${port}`)
      const results = await gate.evaluate('bake', context('healthy-v2'))
      expect(results.map((r) => r.verdict)).toEqual(['inconclusive', 'inconclusive', 'inconclusive'])
      expect(results[0].detail).toMatch(/^canary request count unknown: unreachable: fetch failed \(.*ECONNREFUSED.*\)$/)
      const err = await gate.preflight(context('healthy-v2')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PreflightError)
      expect((err as Error).message).toMatch(
        new RegExp(
          `^Prometheus at "http://127.0.0.1:${port}" \\(input 'prometheus-url'\\) is unreachable: unreachable: fetch failed \\(.*ECONNREFUSED.*\\)\\.$`
        )
      )
    },
    LIVE_TIMEOUT
  )

  it(
    'catches a query Prometheus rejects in preflight, quoting Prometheus',
    async () => {
      const gate = prometheusGate({
        checks: '- name: typo\n  query: sum(rate(istio_requests_total{destination_workload="{{workload}}"}[{{interval}}])) by\n  max: 1'
      })
      const err = await gate.preflight(context('healthy-v2')).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as Error).message).toMatch(
        /^Input 'checks' is invalid: check "typo" was rejected by Prometheus: Prometheus error \(HTTP 400, bad_data\): .*parse error.* \(query "sum\(rate\(istio_requests_total\{destination_workload=\\"healthy-v2\\"\}\[10s\]\)\) by"\)\.$/
      )
    },
    LIVE_TIMEOUT
  )

  it(
    'cannot be widened by a hostile workload name',
    async () => {
      const gate = prometheusGate({ ...builtIns, 'min-requests': '0' })
      const hostile = context('x",destination_workload_namespace=~".*')
      const results = await gate.evaluate('bake', hostile)
      expect(results.map((r) => r.verdict)).toEqual(['inconclusive', 'inconclusive'])
      expect(results[0].detail).toMatch(/^query not rendered: \{\{workload\}\} value .* is not a DNS-1123 name$/)
    },
    LIVE_TIMEOUT
  )

  describe('canary against stable', () => {
    const compare = { 'success-rate-vs-stable': '1', 'latency-p99-vs-stable': '20' }

    it(
      'passes when the two differ by less than the allowance',
      async () => {
        const results = await settled(prometheusGate(compare), context('same-v2', 'same-v1'))
        const r = byName(results)
        expect(combine(results)).toBe('pass')
        expect(r['success-rate-vs-stable'].value).toBeCloseTo(98.5, 1)
        expect(r['success-rate-vs-stable'].stableValue).toBeCloseTo(99, 1)
        expect(r['latency-p99-vs-stable'].stableValue).toBeCloseTo(200, 0)

        const all = prometheusGate({ 'success-rate': '99', 'latency-p99': '500', ...compare })
        const t0 = performance.now()
        await all.evaluate('bake', context('same-v2', 'same-v1'))
        const ms = performance.now() - t0
        console.log(`[figures] one evaluation (min-requests + 4 built-ins, 2 compared): ${ms.toFixed(1)} ms, ${all.lastQueryCount} queries`)
      },
      LIVE_TIMEOUT
    )

    it(
      'fails when the canary is worse',
      async () => {
        const results = await settled(prometheusGate(compare), context('worse-v2', 'worse-v1'))
        const r = byName(results)
        expect(r['success-rate-vs-stable'].verdict).toBe('fail')
        expect(r['success-rate-vs-stable'].detail).toMatch(/^canary is -4(\.\d+)? % under stable \(allowed -1 %\)$/)
        expect(r['latency-p99-vs-stable'].verdict).toBe('fail')
        expect(r['latency-p99-vs-stable'].detail).toMatch(/^canary is \+50(\.\d+)?% over stable \(allowed \+20%\)$/)
      },
      LIVE_TIMEOUT
    )
  })
})

const closedPort = freePort

describe('PrometheusGate on backfilled data (exact values at a fixed time)', () => {
  // Every 15 s for 10 minutes ending at T: canary 97 ok + 3 errors per scrape, stable 99 + 1.
  const T = 1_700_000_400
  const times = Array.from({ length: 41 }, (_, i) => T - 600 + i * 15)
  const labels = (workload: string, code: string) => ({
    reporter: 'destination',
    destination_workload: workload,
    destination_workload_namespace: 'shop',
    destination_version: 'unknown',
    response_code: code
  })
  const counter = (workload: string, code: string, perStep: number): OpenMetricsSeries => ({
    name: 'istio_requests_total',
    labels: labels(workload, code),
    samples: times.map((t, i) => [t, i * perStep])
  })
  // p99 of the canary: rank 99 of 100 lies in (100, 250] with 90 below -> 100 + 150 * 9/10 = 235 ms.
  const buckets = (workload: string, cumulative: Array<[string, number]>): OpenMetricsSeries[] =>
    cumulative.map(([le, perStep]) => ({
      name: 'istio_request_duration_milliseconds_bucket',
      labels: { ...labels(workload, '200'), le },
      samples: times.map((t, i) => [t, i * perStep])
    }))
  const series: OpenMetricsSeries[] = [
    counter('reviews-v2', '200', 97),
    counter('reviews-v2', '503', 3),
    counter('reviews-v1', '200', 99),
    counter('reviews-v1', '503', 1),
    ...buckets('reviews-v2', [
      ['100', 90],
      ['250', 100],
      ['500', 100],
      ['+Inf', 100]
    ]),
    ...buckets('reviews-v1', [
      ['100', 95],
      ['250', 100],
      ['500', 100],
      ['+Inf', 100]
    ])
  ]
  let prom: Awaited<ReturnType<typeof startBackfilledPrometheus>>
  beforeAll(async () => {
    prom = await startBackfilledPrometheus(toOpenMetrics(series))
  }, LIVE_TIMEOUT)
  afterAll(async () => {
    await prom?.stop()
  })

  it(
    'computes the success rate, P99 and comparisons exactly',
    async () => {
      const gate = prometheusGate(
        { 'success-rate': '99', 'latency-p99': '500', 'success-rate-vs-stable': '1', 'latency-p99-vs-stable': '20', 'min-requests': '100' },
        prom.url,
        { now: () => T * 1000 }
      )
      const ctx: GateContext = { ...context('reviews-v2', 'reviews-v1'), namespace: 'shop', windowSeconds: 60 }
      await gate.preflight(ctx)
      const r = byName(await gate.evaluate('bake', ctx))
      expect(r['min-requests'].verdict).toBe('pass')
      expect(r['success-rate']).toMatchObject({ verdict: 'fail', detail: '97 % is below the minimum 99 %' })
      expect(r['success-rate'].value).toBeCloseTo(97, 9)
      expect(r['latency-p99']).toMatchObject({ verdict: 'pass', detail: '235 ms' })
      expect(r['latency-p99'].value).toBeCloseTo(235, 9)
      expect(r['success-rate-vs-stable']).toMatchObject({ verdict: 'fail', detail: 'canary is -2 % under stable (allowed -1 %)' })
      expect(r['success-rate-vs-stable'].stableValue).toBeCloseTo(99, 9)
      // Stable p99: rank 99 in (100, 250] with 95 below -> 100 + 150 * 4/5 = 220 ms; 235 is +6.8 %.
      expect(r['latency-p99-vs-stable']).toMatchObject({ verdict: 'pass', detail: 'canary 235 ms, stable 220 ms' })
      expect(r['latency-p99-vs-stable'].stableValue).toBeCloseTo(220, 9)
    },
    LIVE_TIMEOUT
  )

  it(
    'sees no data before the series begin',
    async () => {
      const gate = prometheusGate({ 'success-rate': '99', 'min-requests': '0' }, prom.url, { now: () => (T - 3600) * 1000 })
      const [r] = await gate.evaluate('bake', { ...context('reviews-v2', 'reviews-v1'), namespace: 'shop', windowSeconds: 60 })
      expect(r).toMatchObject({ verdict: 'inconclusive', detail: 'no data (empty result)' })
    },
    LIVE_TIMEOUT
  )
})
