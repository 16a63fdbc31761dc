import { ConfigError, PreflightError } from '../../../src/errors.js'
import { buildGates, parseGateConfig } from '../../../src/health/gate-config.js'
import type { GateContext } from '../../../src/health/health-gate.js'
import { compareViolation, describeThreshold, PrometheusGate } from '../../../src/health/prometheus-gate.js'

const ctx = (over: Partial<GateContext> = {}): GateContext => ({
  namespace: 'shop',
  host: 'reviews',
  virtualService: 'reviews',
  stable: { version: 'v1', subset: 'v1', deployment: 'reviews-v1' },
  canary: { version: 'v2', subset: 'v2', deployment: 'reviews-v2' },
  canaryWeight: 10,
  stepIndex: 0,
  schedule: [
    { kind: 'weight', weight: 10 },
    { kind: 'weight', weight: 100 }
  ],
  windowSeconds: 60,
  ...over
})

type Answer = { status?: number; body: unknown }
const value = (v: string, extra: Record<string, unknown> = {}): Answer => ({
  body: { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, v] }] }, ...extra }
})
const empty: Answer = { body: { status: 'success', data: { resultType: 'vector', result: [] } } }

/** A fetch that answers by the first rule whose pattern the query contains; records the queries. */
function fakePrometheus(rules: Array<[RegExp, Answer]>) {
  const queries: string[] = []
  const fetchFn: typeof fetch = async (_url, init) => {
    const query = new URLSearchParams(String(init?.body)).get('query') ?? ''
    queries.push(query)
    const hit = rules.find(([re]) => re.test(query))
    const answer = hit ? hit[1] : empty
    const html = typeof answer.body === 'string'
    return new Response(html ? (answer.body as string) : JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { 'content-type': html ? 'text/html; charset=utf-8' : 'application/json' }
    })
  }
  return { fetchFn, queries }
}

const CANARY = /destination_workload="reviews-v2"/
const STABLE = /destination_workload="reviews-v1"/

function gate(inputs: Record<string, string>, rules: Array<[RegExp, Answer]>) {
  const fake = fakePrometheus(rules)
  const config = parseGateConfig({ 'prometheus-url': 'http://prom', ...inputs })
  const [g] = buildGates(config, { fetch: fake.fetchFn })
  return { gate: g as PrometheusGate, queries: fake.queries }
}

describe('PrometheusGate.evaluate', () => {
  const builtIns = { 'success-rate': '99', 'latency-p99': '500', 'success-rate-vs-stable': '1', 'latency-p99-vs-stable': '20' }

  it('passes a healthy canary, sharing queries between a check and its comparison', async () => {
    const { gate: g, queries } = gate(builtIns, [
      [/increase\(istio_requests_total/, value('1200')],
      [new RegExp(`istio_requests_total.*${CANARY.source}`), value('99.5')],
      [new RegExp(`istio_requests_total.*${STABLE.source}`), value('99.8')],
      [new RegExp(`bucket.*${CANARY.source}`), value('120')],
      [new RegExp(`bucket.*${STABLE.source}`), value('110')]
    ])
    const results = await g.evaluate('bake', ctx())
    expect(results).toEqual([
      { name: 'min-requests', verdict: 'pass', value: 1200, threshold: '>= 10 requests', unit: 'requests' },
      { name: 'success-rate', verdict: 'pass', value: 99.5, threshold: '>= 99 %', unit: '%', detail: '99.5 %' },
      { name: 'latency-p99', verdict: 'pass', value: 120, threshold: '<= 500 ms', unit: 'ms', detail: '120 ms' },
      {
        name: 'success-rate-vs-stable',
        verdict: 'pass',
        value: 99.5,
        stableValue: 99.8,
        threshold: '>= stable - 1 %',
        unit: '%',
        detail: 'canary 99.5 %, stable 99.8 %'
      },
      {
        name: 'latency-p99-vs-stable',
        verdict: 'pass',
        value: 120,
        stableValue: 110,
        threshold: '<= stable + 20% (relative)',
        unit: 'ms',
        detail: 'canary 120 ms, stable 110 ms'
      }
    ])
    expect(queries).toHaveLength(5) // count, 2 success-rate, 2 latency
    expect(g.lastQueryCount).toBe(5)
  })

  it('fails on a bound or a comparison, and says by how much', async () => {
    const { gate: g } = gate(builtIns, [
      [/increase\(/, value('1200')],
      [new RegExp(`istio_requests_total.*${CANARY.source}`), value('97.5')],
      [new RegExp(`istio_requests_total.*${STABLE.source}`), value('99.9')],
      [new RegExp(`bucket.*${CANARY.source}`), value('300')],
      [new RegExp(`bucket.*${STABLE.source}`), value('200')]
    ])
    const results = await g.evaluate('bake', ctx())
    expect(results.map((r) => [r.name, r.verdict, r.detail])).toEqual([
      ['min-requests', 'pass', undefined],
      ['success-rate', 'fail', '97.5 % is below the minimum 99 %'],
      ['latency-p99', 'pass', '300 ms'],
      ['success-rate-vs-stable', 'fail', 'canary is -2.4 % under stable (allowed -1 %)'],
      ['latency-p99-vs-stable', 'fail', 'canary is +50% over stable (allowed +20%)']
    ])
  })

  it('is inconclusive, never pass, below min-requests; the other queries are not sent', async () => {
    const { gate: g, queries } = gate({ 'success-rate': '99', 'min-requests': '50' }, [[/increase\(/, value('12.4')]])
    expect(await g.evaluate('bake', ctx())).toEqual([
      {
        name: 'min-requests',
        verdict: 'inconclusive',
        value: 12.4,
        threshold: '>= 50 requests',
        unit: 'requests',
        detail: 'too little traffic: 12.4 canary requests in 60s (min-requests 50)'
      },
      {
        name: 'success-rate',
        verdict: 'inconclusive',
        threshold: '>= 99 %',
        unit: '%',
        detail: 'not judged: too little traffic: 12.4 canary requests in 60s (min-requests 50)'
      }
    ])
    expect(queries).toHaveLength(1)
  })

  it.each<[string, Answer, string]>([
    ['empty vector', empty, 'no data (empty result)'],
    ['NaN', value('NaN'), 'value is NaN (0/0: no requests in the window?)'],
    ['+Inf', value('+Inf'), 'value is +Inf (division by zero?)'],
    [
      'HTML',
      { status: 502, body: '<html><title>Bad Gateway</title></html>' },
      'HTTP 502, not a Prometheus answer (text/html): "Bad Gateway"'
    ],
    [
      'status error',
      { status: 503, body: { status: 'error', errorType: 'timeout', error: 'query timed out' } },
      'Prometheus error (HTTP 503, timeout): query timed out'
    ],
    [
      'two series',
      {
        body: {
          status: 'success',
          data: {
            resultType: 'vector',
            result: [
              { metric: { pod: 'a' }, value: [1, '1'] },
              { metric: { pod: 'b' }, value: [1, '1'] }
            ]
          }
        }
      },
      '2 series where one was expected (aggregate with sum() or similar): {pod="a"}, {pod="b"}'
    ]
  ])('is inconclusive on %s', async (_label, answer, detail) => {
    const { gate: g } = gate({ 'success-rate': '99', 'min-requests': '0' }, [[/./, answer]])
    const [result] = await g.evaluate('bake', ctx())
    expect(result).toEqual({
      name: 'success-rate',
      verdict: 'inconclusive',
      threshold: '>= 99 %',
      unit: '%',
      detail: expect.stringContaining(detail)
    })
    expect(result.value).toBeUndefined()
  })

  it('surfaces Prometheus warnings in the detail', async () => {
    const { gate: g } = gate({ 'success-rate': '99', 'min-requests': '0' }, [
      [/./, value('99.9', { warnings: ['PromQL warning: metric might not be a counter'] })]
    ])
    const [result] = await g.evaluate('bake', ctx())
    expect(result.verdict).toBe('pass')
    expect(result.detail).toBe('99.9 %; Prometheus warnings: PromQL warning: metric might not be a counter')
  })

  it('fails on a known violation even when the stable side has no data', async () => {
    const { gate: g } = gate(
      { 'min-requests': '0', checks: '- name: errors\n  query: sum(e{w="{{workload}}"})\n  max: 5\n  compare: {max-increase: 1}' },
      [[/reviews-v2/, value('9')]]
    )
    const [result] = await g.evaluate('bake', ctx())
    expect(result).toMatchObject({ verdict: 'fail', value: 9, detail: '9 is above the maximum 5' })
    const { gate: g2 } = gate(
      { 'min-requests': '0', checks: '- name: errors\n  query: sum(e{w="{{workload}}"})\n  max: 5\n  compare: {max-increase: 1}' },
      [[/reviews-v2/, value('2')]]
    )
    expect((await g2.evaluate('bake', ctx()))[0]).toMatchObject({
      verdict: 'inconclusive',
      value: 2,
      detail: '2; stable: no data (empty result)'
    })
  })

  it('renders the stable side with the stable workload and version, and refuses hostile values', async () => {
    const { gate: g, queries } = gate(
      {
        'min-requests': '0',
        checks:
          '- name: x\n  query: sum(m{w="{{workload}}",v="{{version}}",c="{{canary_workload}}"}[{{interval}}])\n  compare: {max-increase: 1}'
      },
      [[/./, value('1')]]
    )
    await g.evaluate('bake', ctx({ windowSeconds: 90 }))
    expect(queries.sort()).toEqual([
      'sum(m{w="reviews-v1",v="v1",c="reviews-v2"}[90s])',
      'sum(m{w="reviews-v2",v="v2",c="reviews-v2"}[90s])'
    ])
    const hostile = ctx({ canary: { version: 'v2', subset: 'v2', deployment: 'x",namespace=~".*' } })
    const before = queries.length
    expect((await g.evaluate('bake', hostile))[0]).toMatchObject({
      verdict: 'inconclusive',
      detail: 'query not rendered: {{workload}} value "x\\",namespace=~\\".*" is not a DNS-1123 name'
    })
    expect(queries.length).toBe(before)
  })

  it('answers only at bake', async () => {
    const { gate: g, queries } = gate({ 'success-rate': '99' }, [])
    expect(await g.evaluate('before-increase', ctx())).toEqual([])
    expect(queries).toEqual([])
  })

  it('passes the fixed evaluation time when a clock is given', async () => {
    const bodies: string[] = []
    const config = parseGateConfig({ 'prometheus-url': 'http://prom', 'success-rate': '99', 'min-requests': '0' })
    const g = new PrometheusGate(config.prometheus!, {
      now: () => 1_700_000_000_000,
      fetch: async (_u, init) => {
        bodies.push(String(init?.body))
        return new Response(JSON.stringify(value('100').body))
      }
    })
    await g.evaluate('bake', ctx())
    expect(new URLSearchParams(bodies[0]).get('time')).toBe('1700000000.000')
  })
})

describe('PrometheusGate.preflight', () => {
  it('runs every query once and names each rejected check with Prometheus’s words', async () => {
    const bad = { status: 400, body: { status: 'error', errorType: 'bad_data', error: '1:4: parse error: unexpected "}"' } }
    const { gate: g, queries } = gate(
      {
        'success-rate': '99',
        checks:
          '- name: broken\n  query: sum(x{w="{{workload}}"}})\n  max: 1\n- name: fine\n  query: sum(y{w="{{workload}}"})\n  max: 1\n  compare: {max-increase: 1}'
      },
      [[/x\{/, bad]]
    )
    const err = await g.preflight(ctx()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toBe(
      `Input 'checks' is invalid: check "broken" was rejected by Prometheus: Prometheus error (HTTP 400, bad_data): 1:4: parse error: unexpected "}" (query "sum(x{w=\\"reviews-v2\\"}})").`
    )
    expect(queries).toHaveLength(5) // min-requests, success-rate, broken, fine (canary + stable)
  })

  it('names the input of a rejected built-in and refuses a matrix query', async () => {
    const matrix = { body: { status: 'success', data: { resultType: 'matrix', result: [] } } }
    const { gate: g } = gate({ 'min-requests': '0', checks: '- name: raw\n  query: m{w="{{workload}}"}[{{interval}}]\n  max: 1' }, [
      [/./, matrix]
    ])
    await expect(g.preflight(ctx())).rejects.toThrow(
      `Input 'checks' is invalid: check "raw" was rejected by Prometheus: range vector (matrix) result where one number was expected; wrap the range selector in a function like rate() (query "m{w=\\"reviews-v2\\"}[60s]").`
    )
  })

  it('is a PreflightError when Prometheus cannot be reached, refuses credentials, or the stable Deployment is unknown', async () => {
    const down = new PrometheusGate(parseGateConfig({ 'prometheus-url': 'http://prom:9090', 'success-rate': '99' }).prometheus!, {
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND prom' } })
      }
    })
    const err = await down.preflight(ctx()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PreflightError)
    expect((err as Error).message).toBe(
      `Prometheus at "http://prom:9090" (input 'prometheus-url') is unreachable: unreachable: fetch failed (getaddrinfo ENOTFOUND prom).`
    )
    const { gate: g401 } = gate({ 'success-rate': '99' }, [[/./, { status: 401, body: 'Unauthorized' }]])
    await expect(g401.preflight(ctx())).rejects.toThrow(
      `Prometheus at "http://prom" refused the credentials: HTTP 401, not a Prometheus answer (text/html): "Unauthorized". Check prometheus-token or prometheus-username/prometheus-password.`
    )
    const { gate: g } = gate({ 'success-rate-vs-stable': '1' }, [])
    const noStable = ctx({ stable: { version: 'v1', subset: 'v1' } })
    await expect(g.preflight(noStable)).rejects.toThrow(PreflightError)
    await expect(g.preflight(noStable)).rejects.toThrow(
      `Check "success-rate-vs-stable" compares the canary with the stable version, but the stable Deployment of "v1" is not known.`
    )
  })

  it('is a ConfigError when a value cannot go into a query', async () => {
    const { gate: g } = gate({ 'success-rate': '99' }, [])
    await expect(g.preflight(ctx({ namespace: 'Bad_NS' }))).rejects.toThrow(
      `Input 'min-requests' is invalid: check "min-requests" cannot be rendered: {{namespace}} value "Bad_NS" is not a DNS-1123 label.`
    )
  })
})

describe('thresholds and comparisons', () => {
  it.each([
    [{ min: 99, unit: '%' }, '>= 99 %'],
    [{ min: 1, max: 2 }, '>= 1 and <= 2'],
    [{ compare: { kind: 'max-increase' as const, amount: 0.5 }, unit: 'ms' }, '<= stable + 0.5 ms'],
    [{ compare: { kind: 'max-decrease-percent' as const, amount: 10 } }, '>= stable - 10% (relative)']
  ])('%j -> %s', (check, text) => {
    expect(describeThreshold(check)).toBe(text)
  })

  it.each([
    ['max-increase', 1, 2.5, 1.5, undefined],
    ['max-increase', 1, 2.6, 1.5, 'canary is +1.1 over stable (allowed +1)'],
    ['max-decrease', 1, 98.5, 99.5, undefined],
    ['max-decrease', 1, 98, 99.5, 'canary is -1.5 under stable (allowed -1)'],
    ['max-increase-percent', 20, 120, 100, undefined],
    ['max-increase-percent', 20, 121, 100, 'canary is +21% over stable (allowed +20%)'],
    ['max-increase-percent', 20, 0, 0, undefined],
    ['max-increase-percent', 20, 0.1, 0, 'stable is 0 and canary 0.1: any increase over 0 exceeds a relative limit'],
    ['max-decrease-percent', 10, 89, 100, 'canary is -11% under stable (allowed -10%)']
  ] as const)('%s %d: canary %d vs stable %d -> %s', (kind, amount, canary, stable, expected) => {
    expect(compareViolation({ kind, amount }, canary, stable)).toBe(expected)
  })
})
