import { ConfigError } from '../../../src/errors.js'
import { readDuration } from '../../../src/config/duration.js'
import { INPUT_NAMES, INPUTS } from '../../../src/config/inputs.js'
import { buildGates, gateSecrets, parseGateConfig } from '../../../src/health/gate-config.js'
import { PrometheusGate } from '../../../src/health/prometheus-gate.js'
import { WebhookGate } from '../../../src/health/webhook-gate.js'

const PROM = { 'prometheus-url': 'http://prometheus:9090' }

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

const GATE_INPUTS = Object.fromEntries(INPUT_NAMES.filter((name) => INPUTS[name].group === 'gates').map((name) => [name, INPUTS[name]]))
const parseDurationSeconds = (text: string) => {
  const read = readDuration(text)
  return 'seconds' in read ? read.seconds : undefined
}

describe('the gate inputs of the catalogue', () => {
  it('describes every input the brief names, with the defaults parseGateConfig uses', () => {
    expect(Object.keys(GATE_INPUTS)).toEqual([
      'prometheus-url',
      'prometheus-token',
      'prometheus-username',
      'prometheus-password',
      'prometheus-timeout',
      'reporter',
      'success-rate',
      'latency-p99',
      'success-rate-vs-stable',
      'latency-p99-vs-stable',
      'checks',
      'outside-mesh',
      'min-requests',
      'failure-threshold',
      'inconclusive-limit',
      'on-no-data',
      'check-every',
      'webhooks'
    ])
    for (const input of Object.values(GATE_INPUTS)) expect(input.description.length).toBeGreaterThan(20)
    const defaults = Object.fromEntries(Object.entries(GATE_INPUTS).map(([k, v]) => [k, 'default' in v ? v.default : undefined]))
    const withDefaults = parseGateConfig({ ...PROM, 'success-rate': '99' })
    expect(withDefaults.policy).toEqual({
      failureThreshold: Number(defaults['failure-threshold']),
      inconclusiveLimit: Number(defaults['inconclusive-limit']),
      onNoData: defaults['on-no-data']
    })
    expect(withDefaults.checkEverySeconds).toBe(parseDurationSeconds(defaults['check-every'] as string))
    expect(withDefaults.prometheus?.minRequests).toBe(Number(defaults['min-requests']))
    expect(withDefaults.prometheus?.timeoutSeconds).toBe(parseDurationSeconds(defaults['prometheus-timeout'] as string))
    expect(withDefaults.prometheus?.reporter).toBe(defaults.reporter)
  })
})

describe('parseGateConfig', () => {
  it('builds the built-in checks over Istio metrics with the chosen reporter', () => {
    const config = parseGateConfig({
      ...PROM,
      reporter: 'waypoint',
      'success-rate': '99',
      'latency-p99': '500',
      'success-rate-vs-stable': '1',
      'latency-p99-vs-stable': '20'
    })
    const checks = config.prometheus!.checks
    expect(checks.map((c) => [c.name, c.min, c.max, c.compare, c.unit])).toEqual([
      ['success-rate', 99, undefined, undefined, '%'],
      ['latency-p99', undefined, 500, undefined, 'ms'],
      ['success-rate-vs-stable', undefined, undefined, { kind: 'max-decrease', amount: 1 }, '%'],
      ['latency-p99-vs-stable', undefined, undefined, { kind: 'max-increase-percent', amount: 20 }, 'ms']
    ])
    expect(checks[0].template.source).toBe(
      '100 * (1 - ((sum(rate(istio_requests_total{reporter="waypoint",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}",response_code=~"5.."}[{{interval}}])) or vector(0)) / sum(rate(istio_requests_total{reporter="waypoint",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"}[{{interval}}]))))'
    )
    expect(checks[1].template.source).toBe(
      'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="waypoint",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"}[{{interval}}])))'
    )
    expect(config.prometheus!.requestCount.source).toBe(
      'sum(increase(istio_requests_total{reporter="waypoint",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"}[{{interval}}]))'
    )
  })

  it('reads custom checks from YAML', () => {
    const config = parseGateConfig({
      ...PROM,
      checks: `
- name: error-ratio
  query: sum(rate(errors{ns="{{namespace}}",w=~"{{workload_re}}"}[{{interval}}]))
  max: 0.01
  compare: {max-increase: 0.005}
- name: queue-depth
  query: max(queue{ns="{{namespace}}"})
  min: "0"
  max: 100
  unit: jobs
`
    })
    expect(config.prometheus!.checks.map((c) => [c.name, c.min, c.max, c.compare, c.unit, c.input])).toEqual([
      ['error-ratio', undefined, 0.01, { kind: 'max-increase', amount: 0.005 }, undefined, 'checks'],
      ['queue-depth', 0, 100, undefined, 'jobs', 'checks']
    ])
  })

  it('resolves webhook headers and URLs from env and exports them as secrets', () => {
    const config = parseGateConfig(
      {
        webhooks: `
- name: load-test
  url: https://hooks.example.com/\${HOOK_PATH}
  moments: [pre-rollout, bake]
  headers:
    Authorization: Bearer \${HOOK_TOKEN}
    X-Team: payments
    X-N: 1
  metadata: {cmd: "hey -z 1m"}
- name: notify
  url: http://notify.local/x
  moments: [rollback, success]
  timeout: 2s
  retries: 0
`
      },
      { HOOK_TOKEN: 's3cr3t-token', HOOK_PATH: 'T000/B000/XXXX' }
    )
    expect(config.webhooks).toEqual([
      {
        name: 'load-test',
        url: 'https://hooks.example.com/T000/B000/XXXX',
        moments: ['pre-rollout', 'bake'],
        timeoutSeconds: 10,
        retries: 2,
        headers: { Authorization: 'Bearer s3cr3t-token', 'X-Team': 'payments', 'X-N': '1' },
        metadata: { cmd: 'hey -z 1m' }
      },
      {
        name: 'notify',
        url: 'http://notify.local/x',
        moments: ['rollback', 'success'],
        timeoutSeconds: 2,
        retries: 0,
        headers: {},
        metadata: {}
      }
    ])
    expect(gateSecrets(config).sort()).toEqual(['Bearer s3cr3t-token', 'T000/B000/XXXX', 'payments', 's3cr3t-token'].sort())
    const gates = buildGates(config)
    expect(gates.map((g) => [g.name, g.moments])).toEqual([
      ['webhook:load-test', ['pre-rollout', 'bake']],
      ['webhook:notify', ['rollback', 'success']]
    ])
    expect(gates[0]).toBeInstanceOf(WebhookGate)
  })

  it('masks the token, the password and the base64 header form', () => {
    expect(gateSecrets(parseGateConfig({ ...PROM, 'success-rate': '99', 'prometheus-token': 'tok-123' }))).toEqual(['tok-123'])
    const basic = parseGateConfig({ ...PROM, 'success-rate': '99', 'prometheus-username': 'ci', 'prometheus-password': 'pw' })
    expect(gateSecrets(basic)).toEqual(['pw', Buffer.from('ci:pw').toString('base64')])
    expect(basic.prometheus!.auth).toEqual({ kind: 'basic', username: 'ci', password: 'pw' })
    const gates = buildGates(basic)
    expect(gates).toHaveLength(1)
    expect(gates[0]).toBeInstanceOf(PrometheusGate)
  })

  it('needs no gate at all', () => {
    const config = parseGateConfig({})
    expect(config.prometheus).toBeUndefined()
    expect(config.webhooks).toEqual([])
    expect(buildGates(config)).toEqual([])
  })

  it.each<[string, Record<string, string>, Record<string, string>, string]>([
    [
      'metric check without Prometheus',
      { 'success-rate': '99', 'latency-p99': '300' },
      {},
      `Input 'prometheus-url' is required when 'success-rate', 'latency-p99' are set: the metric checks need a Prometheus to query (got "").`
    ],
    [
      'Prometheus without any check',
      { ...PROM },
      {},
      `Input 'prometheus-url' is set but no metric check is: set 'success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable' or 'checks' (got "http://prometheus:9090").`
    ],
    [
      'token without URL',
      { 'prometheus-token': 't' },
      {},
      `Input 'prometheus-token' is set but 'prometheus-url' is not; expected both or neither.`
    ],
    [
      'URL scheme',
      { 'prometheus-url': 'ftp://p', 'success-rate': '99' },
      {},
      `Input 'prometheus-url' is invalid: expected an http:// or https:// URL (got "ftp://p").`
    ],
    [
      'URL credentials (redacted)',
      { 'prometheus-url': 'http://u:hunter2@p', 'success-rate': '99' },
      {},
      `Input 'prometheus-url' is invalid: credentials do not belong in the URL; use prometheus-username and prometheus-password (got "http://***@p").`
    ],
    [
      'URL query',
      { 'prometheus-url': 'http://p/?x=1', 'success-rate': '99' },
      {},
      `Input 'prometheus-url' is invalid: expected a base URL without query or fragment (the API path is added) (got "http://p/?x=1").`
    ],
    [
      'token and basic',
      { ...PROM, 'success-rate': '99', 'prometheus-token': 't', 'prometheus-username': 'u' },
      {},
      `Input 'prometheus-token' cannot be combined with 'prometheus-username'/'prometheus-password'; expected one kind of authentication.`
    ],
    [
      'user without password',
      { ...PROM, 'success-rate': '99', 'prometheus-username': 'u' },
      {},
      `Inputs 'prometheus-username' and 'prometheus-password' go together; only 'prometheus-username' is set.`
    ],
    [
      'success-rate range',
      { ...PROM, 'success-rate': '101' },
      {},
      `Input 'success-rate' is invalid: expected a percentage above 0 and at most 100, e.g. 99 (got "101").`
    ],
    [
      'success-rate text',
      { ...PROM, 'success-rate': '99%' },
      {},
      `Input 'success-rate' is invalid: expected a percentage above 0 and at most 100, e.g. 99 (got "99%").`
    ],
    [
      'latency',
      { ...PROM, 'latency-p99': '0' },
      {},
      `Input 'latency-p99' is invalid: expected a number of milliseconds above 0, e.g. 500 (got "0").`
    ],
    [
      'vs-stable',
      { ...PROM, 'latency-p99-vs-stable': '-5' },
      {},
      `Input 'latency-p99-vs-stable' is invalid: expected a percentage of 0 or more, e.g. 20 (got "-5").`
    ],
    [
      'reporter',
      { ...PROM, 'success-rate': '99', reporter: 'sidecar' },
      {},
      `Input 'reporter' is invalid: expected destination, source or waypoint (got "sidecar").`
    ],
    [
      'min-requests',
      { ...PROM, 'success-rate': '99', 'min-requests': '2.5' },
      {},
      `Input 'min-requests' is invalid: expected a whole number of requests, 0 or more (got "2.5").`
    ],
    [
      'failure-threshold',
      { 'failure-threshold': '0' },
      {},
      `Input 'failure-threshold' is invalid: expected a whole number from 1 to 1000 (got "0").`
    ],
    [
      'inconclusive-limit',
      { 'inconclusive-limit': 'three' },
      {},
      `Input 'inconclusive-limit' is invalid: expected a whole number from 1 to 1000 (got "three").`
    ],
    ['on-no-data', { 'on-no-data': 'pass' }, {}, `Input 'on-no-data' is invalid: expected fail, pause or skip (got "pass").`],
    [
      'check-every',
      { 'check-every': '500ms' },
      {},
      `Input 'check-every' is invalid: must be at least 1s, or 0 for only at the end of each step (got "500ms").`
    ],
    [
      'prometheus-timeout',
      { ...PROM, 'success-rate': '99', 'prometheus-timeout': '10 min' },
      {},
      `Input 'prometheus-timeout' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "10 min").`
    ],
    [
      'checks YAML',
      { ...PROM, checks: '- name: a\n  query: "x' },
      {},
      `Input 'checks' is not valid YAML: unexpected end of the stream within a double quoted scalar at line 3, column 1 (got "- name: a\\n  query: \\"x").`
    ],
    [
      'checks not a list',
      { ...PROM, checks: 'name: a' },
      {},
      `Input 'checks' is invalid: expected a YAML list (each item starting with "- name: ...") (got "name: a").`
    ],
    [
      'check without name',
      { ...PROM, checks: '- query: up\n  max: 1' },
      {},
      `Input 'checks' is invalid: item 1 needs a name of lower-case letters, digits, '-', '_' or '.', at most 63 characters (got nothing).`
    ],
    [
      'check named like a built-in',
      { ...PROM, checks: '- name: success-rate\n  query: up\n  max: 1' },
      {},
      `Input 'checks' is invalid: the name "success-rate" is used twice; names must be unique.`
    ],
    [
      'check unknown key',
      { ...PROM, checks: '- name: a\n  query: up\n  thresold: 1' },
      {},
      `Input 'checks' is invalid: check "a" has unknown key "thresold"; expected name, query, min, max, unit, compare.`
    ],
    [
      'check without bounds',
      { ...PROM, checks: '- name: a\n  query: up' },
      {},
      `Input 'checks' is invalid: check "a" needs min, max or compare, or it can never fail (got "{name: a, query: up}").`
    ],
    [
      'check min above max',
      { ...PROM, checks: '- name: a\n  query: up\n  min: 5\n  max: 1' },
      {},
      `Input 'checks' is invalid: check "a" has min 5 above max 1; expected min <= max.`
    ],
    [
      'check bound not a number',
      { ...PROM, checks: '- name: a\n  query: up\n  max: lots' },
      {},
      `Input 'checks' is invalid: check "a" max must be a number (got "lots").`
    ],
    [
      'check without query',
      { ...PROM, checks: '- name: a\n  max: 1' },
      {},
      `Input 'checks' is invalid: check "a" needs a query (PromQL text) (got nothing).`
    ],
    [
      'check placeholder misuse',
      { ...PROM, checks: '- name: a\n  query: up{w=~"{{workload}}"}\n  max: 1' },
      {},
      `Input 'checks' is invalid: check "a": {{workload}} inside a regex matcher (=~ or !~) must be {{workload_re}}, which quotes regex metacharacters (got "up{w=~\\"{{workload}}\\"}").`
    ],
    [
      'compare two kinds',
      { ...PROM, checks: '- name: a\n  query: up\n  compare: {max-increase: 1, max-decrease: 1}' },
      {},
      `Input 'checks' is invalid: check "a" compare needs exactly one of max-increase, max-increase-percent, max-decrease, max-decrease-percent (got "{max-increase: 1, max-decrease: 1}").`
    ],
    [
      'compare negative',
      { ...PROM, checks: '- name: a\n  query: up\n  compare: {max-increase: -1}' },
      {},
      `Input 'checks' is invalid: check "a" compare max-increase must be a number >= 0 (got "-1").`
    ],
    [
      'webhook env missing',
      { webhooks: '- name: h\n  url: http://h\n  moments: [bake]\n  headers: {Authorization: "Bearer ${TOKEN}"}' },
      {},
      `Input 'webhooks' is invalid: webhook "h" header "Authorization" refers to \${TOKEN}, which is not set; pass it to the step with env: TOKEN: \${{ secrets.TOKEN }}.`
    ],
    [
      'webhook moments',
      { webhooks: '- name: h\n  url: http://h\n  moments: [confirm-rollout]' },
      {},
      `Input 'webhooks' is invalid: webhook "h" moments must be a non-empty list of pre-rollout, before-increase, bake, before-promotion, rollback, success (got "[confirm-rollout]").`
    ],
    [
      'webhook scheme',
      { webhooks: '- name: h\n  url: file:///etc/passwd\n  moments: [bake]' },
      {},
      `Input 'webhooks' is invalid: webhook "h" url must be http:// or https:// (got "file:///etc/passwd").`
    ],
    [
      'webhook credentials',
      { webhooks: '- name: h\n  url: http://a:b@h\n  moments: [bake]' },
      {},
      `Input 'webhooks' is invalid: webhook "h" url must not carry credentials; send them in headers from \${ENV} (got "http://***@h").`
    ],
    [
      'webhook timeout',
      { webhooks: '- name: h\n  url: http://h\n  moments: [bake]\n  timeout: forever' },
      {},
      `Input 'webhooks' is invalid: webhook "h" timeout must be a duration between 1ms and 10m, e.g. 10s (got "forever").`
    ],
    [
      'webhook retries',
      { webhooks: '- name: h\n  url: http://h\n  moments: [bake]\n  retries: 99' },
      {},
      `Input 'webhooks' is invalid: webhook "h" retries must be a whole number from 0 to 10 (got "99").`
    ],
    [
      'webhook duplicate',
      { webhooks: '- name: h\n  url: http://h\n  moments: [bake]\n- name: h\n  url: http://h\n  moments: [bake]' },
      {},
      `Input 'webhooks' is invalid: the name "h" is used twice; names must be unique.`
    ],
    [
      'webhook header line break',
      { webhooks: '- name: h\n  url: http://h\n  moments: [bake]\n  headers: {X-A: "${V}"}' },
      { V: 'a\r\nX-Evil: 1' },
      `Input 'webhooks' is invalid: webhook "h" header "X-A" contains a line break.`
    ]
  ])('%s', (_label, inputs, env, message) => {
    expect(errorOf(() => parseGateConfig(inputs, env)).message).toBe(message)
  })
})
