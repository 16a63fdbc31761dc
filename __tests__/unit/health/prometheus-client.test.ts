import { parseQueryResponse, PrometheusClient } from '../../../src/health/prometheus-client.js'

const json = (body: unknown) => JSON.stringify(body)
const vector = (samples: Array<[Record<string, string>, string]>, extra: Record<string, unknown> = {}) =>
  json({
    status: 'success',
    data: { resultType: 'vector', result: samples.map(([metric, v]) => ({ metric, value: [1700000000, v] })) },
    ...extra
  })

describe('parseQueryResponse', () => {
  it.each([
    ['one sample', 200, vector([[{}, '99.5']]), { kind: 'value', value: 99.5, warnings: [] }],
    [
      'scalar',
      200,
      json({ status: 'success', data: { resultType: 'scalar', result: [1700000000, '42'] } }),
      { kind: 'value', value: 42, warnings: [] }
    ],
    ['empty vector', 200, vector([]), { kind: 'no-data', reason: 'no data (empty result)', warnings: [] }],
    ['NaN', 200, vector([[{}, 'NaN']]), { kind: 'no-data', reason: 'value is NaN (0/0: no requests in the window?)', warnings: [] }],
    ['+Inf', 200, vector([[{}, '+Inf']]), { kind: 'no-data', reason: 'value is +Inf (division by zero?)', warnings: [] }],
    ['-Inf', 200, vector([[{}, '-Inf']]), { kind: 'no-data', reason: 'value is -Inf (division by zero?)', warnings: [] }],
    [
      'scalar NaN',
      200,
      json({ status: 'success', data: { resultType: 'scalar', result: [1, 'NaN'] } }),
      { kind: 'no-data', reason: 'value is NaN (0/0: no requests in the window?)', warnings: [] }
    ],
    [
      'warnings and infos',
      200,
      vector([[{}, '1']], { warnings: ['PromQL warning: a'], infos: ['PromQL info: b'] }),
      { kind: 'value', value: 1, warnings: ['PromQL warning: a', 'PromQL info: b'] }
    ],
    [
      'multiple series',
      200,
      vector([
        [{ pod: 'a' }, '1'],
        [{ pod: 'b' }, '2']
      ]),
      {
        kind: 'error',
        reason: '2 series where one was expected (aggregate with sum() or similar): {pod="a"}, {pod="b"}',
        warnings: [],
        rejected: true
      }
    ],
    [
      'matrix',
      200,
      json({ status: 'success', data: { resultType: 'matrix', result: [{ metric: {}, values: [[1, '1']] }] } }),
      {
        kind: 'error',
        reason: 'range vector (matrix) result where one number was expected; wrap the range selector in a function like rate()',
        warnings: [],
        rejected: true
      }
    ],
    [
      'string',
      200,
      json({ status: 'success', data: { resultType: 'string', result: [1, 'hello'] } }),
      { kind: 'error', reason: 'string result where a number was expected', warnings: [], rejected: true }
    ],
    [
      'bad_data',
      400,
      json({ status: 'error', errorType: 'bad_data', error: '1:5: parse error: unexpected end of input' }),
      {
        kind: 'error',
        reason: 'Prometheus error (HTTP 400, bad_data): 1:5: parse error: unexpected end of input',
        warnings: [],
        rejected: true
      }
    ],
    [
      'execution 422',
      422,
      json({ status: 'error', errorType: 'execution', error: 'many-to-many matching not allowed' }),
      { kind: 'error', reason: 'Prometheus error (HTTP 422, execution): many-to-many matching not allowed', warnings: [], rejected: true }
    ],
    [
      'timeout 503',
      503,
      json({ status: 'error', errorType: 'timeout', error: 'query timed out in expression evaluation' }),
      { kind: 'error', reason: 'Prometheus error (HTTP 503, timeout): query timed out in expression evaluation', warnings: [] }
    ],
    [
      'HTML from a proxy',
      502,
      '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>',
      { kind: 'error', reason: 'HTTP 502, not a Prometheus answer (text/html): "502 Bad Gateway 502 Bad Gateway"', warnings: [] }
    ],
    ['non-JSON 200', 200, 'ok', { kind: 'error', reason: 'HTTP 200, not a Prometheus answer (text/html): "ok"', warnings: [] }],
    [
      'HTML login page 401',
      401,
      '<html>Sign in</html>',
      { kind: 'error', reason: 'HTTP 401, not a Prometheus answer (text/html): "Sign in"', warnings: [], unauthorized: true }
    ],
    ['JSON but not an envelope', 200, '[1,2]', { kind: 'error', reason: 'HTTP 200, unexpected JSON: "[1,2]"', warnings: [] }],
    ['no status', 200, json({ data: {} }), { kind: 'error', reason: 'unexpected status undefined in Prometheus answer', warnings: [] }],
    ['garbage sample', 200, vector([[{}, 'abc']]), { kind: 'error', reason: 'sample value "abc" is not a number', warnings: [] }]
  ])('%s', (_label, status, body, expected) => {
    expect(parseQueryResponse(status, 'text/html; charset=utf-8', body)).toEqual(expected)
  })
})

describe('PrometheusClient', () => {
  it('POSTs a form with the query, a server timeout below the client one, the time and the credentials', async () => {
    const seen: Array<{ url: string; init: RequestInit }> = []
    const fake: typeof fetch = async (url, init) => {
      seen.push({ url: String(url), init: init as RequestInit })
      return new Response(vector([[{}, '1']]), { status: 200, headers: { 'content-type': 'application/json' } })
    }
    const client = new PrometheusClient({
      url: 'http://prom:9090/',
      timeoutSeconds: 10,
      auth: { kind: 'basic', username: 'u', password: 'p' },
      fetch: fake
    })
    await expect(client.query('up', { time: 1700000000 })).resolves.toEqual({ kind: 'value', value: 1, warnings: [] })
    expect(seen[0].url).toBe('http://prom:9090/api/v1/query')
    expect(seen[0].init.method).toBe('POST')
    expect(String(seen[0].init.body)).toBe('query=up&timeout=9000ms&time=1700000000.000')
    expect((seen[0].init.headers as Record<string, string>).authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`)
  })

  it('retries once after a 503 and a transport error, not after a rejected query', async () => {
    let calls = 0
    const answers = [() => new Response('<html>busy</html>', { status: 503 }), () => new Response(vector([[{}, '7']]), { status: 200 })]
    const client = new PrometheusClient({ url: 'http://prom', timeoutSeconds: 5, retryDelayMs: 1, fetch: async () => answers[calls++]() })
    await expect(client.query('up')).resolves.toEqual({ kind: 'value', value: 7, warnings: [] })
    expect(client.queriesSent).toBe(2)

    let refused = 0
    const down = new PrometheusClient({
      url: 'http://prom',
      timeoutSeconds: 5,
      retryDelayMs: 1,
      fetch: async () => {
        refused++
        throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' } })
      }
    })
    await expect(down.query('up')).resolves.toEqual({
      kind: 'error',
      reason: 'unreachable: fetch failed (connect ECONNREFUSED 127.0.0.1:1)',
      warnings: [],
      unreachable: true
    })
    expect(refused).toBe(2)

    let bad = 0
    const rejecting = new PrometheusClient({
      url: 'http://prom',
      timeoutSeconds: 5,
      fetch: async () => {
        bad++
        return new Response(json({ status: 'error', errorType: 'bad_data', error: 'parse error' }), { status: 400 })
      }
    })
    await rejecting.query('up{')
    expect(bad).toBe(1)
  })
})
