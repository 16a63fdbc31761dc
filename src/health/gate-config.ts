import yaml from 'js-yaml'
import { ConfigError, quote } from '../errors.js'
import type { GatePolicy, OnNoData } from '../rollout/verdict.js'
import type { GateMoment, HealthGate } from './health-gate.js'
import { PrometheusGate, type CheckSpec, type CompareSpec, type GateDeps, type PrometheusGateConfig } from './prometheus-gate.js'
import { parseTemplate, type QueryTemplate } from './promql-template.js'
import { OUTSIDE_MESH_POLICIES, OutsideMeshProbe, type OutsideMeshPolicy } from './outside-mesh.js'
import { PrometheusClient, type PrometheusAuth } from './prometheus-client.js'
import { WebhookGate, type WebhookConfig } from './webhook-gate.js'
import { readDuration } from '../config/duration.js'
import { got, inputError } from '../config/input-error.js'

/** One action input of the gates: what action.yml says about it. */
export interface GateInput {
  description: string
  /** Absent: the input is off unless given. */
  default?: string
}

/** Every input the gates read, spelled once (action.yml is built from this). */
export const GATE_INPUTS = {
  'prometheus-url': {
    description: 'Base URL of Prometheus (e.g. http://prometheus.istio-system:9090). Needed by every metric check.'
  },
  'prometheus-token': { description: 'Bearer token for Prometheus (masked in logs). Not together with basic auth.' },
  'prometheus-username': { description: 'Basic-auth user name for Prometheus (with prometheus-password).' },
  'prometheus-password': { description: 'Basic-auth password for Prometheus (masked in logs).' },
  'prometheus-timeout': { description: 'Deadline of one Prometheus query (e.g. 10s).', default: '10s' },
  reporter: {
    description: 'Istio metrics reporter to read: destination (sidecar on the canary), source, or waypoint (ambient).',
    default: 'destination'
  },
  'success-rate': {
    description: 'Minimum canary request success rate in percent (non-5xx / all, Istio metrics), e.g. 99. Off when empty.'
  },
  'latency-p99': { description: 'Maximum canary P99 request latency in milliseconds, e.g. 500. Off when empty.' },
  'success-rate-vs-stable': {
    description: 'Maximum drop of the canary success rate below the stable one, in percentage points (e.g. 1). Off when empty.'
  },
  'latency-p99-vs-stable': {
    description: 'Maximum rise of the canary P99 latency over the stable one, in percent (e.g. 20). Off when empty.'
  },
  checks: {
    description:
      'Custom Prometheus checks, a YAML list of {name, query, min, max, unit, compare: {max-increase | max-increase-percent | max-decrease | max-decrease-percent}}. ' +
      'Placeholders: {{namespace}} {{workload}} {{canary_workload}} {{stable_workload}} {{version}} {{canary_version}} {{stable_version}} (each with a _re twin for =~), {{interval}}.'
  },
  'outside-mesh': {
    description:
      'What the deploy preflight does when Prometheus shows requests to the stable version from callers outside the mesh (no sidecar: they ignore the weights and reach the canary by pod count): warn, fail (refuse; nothing written) or ignore. Only with prometheus-url.',
    default: 'warn'
  },
  'min-requests': {
    description: 'Metric checks are inconclusive while the canary served fewer requests than this in the window (0 = off).',
    default: '10'
  },
  'failure-threshold': { description: 'Failed gate evaluations (over the whole rollout) that trigger the rollback.', default: '1' },
  'inconclusive-limit': {
    description: 'Consecutive inconclusive evaluations (no data, Prometheus down) after which on-no-data applies.',
    default: '3'
  },
  'on-no-data': {
    description:
      'What inconclusive-limit inconclusive evaluations in a row mean: fail (count a failure), pause (wait for a person), or skip (treat as a pass, reported loudly).',
    default: 'pause'
  },
  'check-every': {
    description: 'Evaluate the gates this often during a bake (e.g. 30s); always once at the end of each step. 0 = only at the end.',
    default: '30s'
  },
  webhooks: {
    description:
      'Webhook gates, a YAML list of {name, url, moments: [pre-rollout|before-increase|bake|before-promotion|rollback|success], timeout, retries, headers, metadata}. ' +
      'Header and URL values may use ${ENV_NAME}.'
  }
} as const satisfies Record<string, GateInput>

export type GateInputName = keyof typeof GATE_INPUTS

export type Reporter = 'destination' | 'source' | 'waypoint'

/** Everything the gates were configured with. Holds secrets: log it only through gateSecrets masking. */
export interface GateConfig {
  prometheus?: PrometheusGateConfig & { reporter: Reporter; outsideMesh: OutsideMeshPolicy }
  webhooks: WebhookConfig[]
  policy: GatePolicy
  /** Seconds between evaluations during a bake; 0 = only at the end of each step. */
  checkEverySeconds: number
  /** Env-substituted values and other secrets found while parsing (see gateSecrets). */
  secrets: string[]
}

const MOMENTS: readonly GateMoment[] = ['pre-rollout', 'before-increase', 'bake', 'before-promotion', 'rollback', 'success']
const NAME = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/
const BUILT_IN_NAMES = ['success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable', 'min-requests']

function invalid(input: GateInputName, what: string, value: unknown): ConfigError {
  return inputError(input, what, value)
}

/** Seconds of a duration in the one grammar of config/duration.ts, or undefined when it is not one. */
export function parseDurationSeconds(text: string): number | undefined {
  const read = readDuration(text)
  return 'seconds' in read ? read.seconds : undefined
}

function numberFrom(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim())
  return undefined
}

/** Replace `${NAME}` with env values; returns the text and the substituted values (secrets). */
function substituteEnv(text: string, env: Record<string, string | undefined>, where: string): { text: string; used: string[] } {
  const used: string[] = []
  const out = text.replace(/\$\{([^}]*)\}/g, (_all, name: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new ConfigError(`Input 'webhooks' is invalid: ${where} refers to \${${name}}, which is not an environment variable name.`)
    }
    const value = env[name]
    if (value === undefined || value === '') {
      throw new ConfigError(
        `Input 'webhooks' is invalid: ${where} refers to \${${name}}, which is not set; pass it to the step with env: ${name}: \${{ secrets.${name} }}.`
      )
    }
    used.push(value)
    return value
  })
  return { text: out, used }
}

function loadYamlList(input: 'checks' | 'webhooks', text: string): unknown[] {
  let doc: unknown
  try {
    doc = yaml.load(text)
  } catch (err) {
    const reason = (err as { reason?: string; mark?: { line: number; column: number } }) ?? {}
    const at = reason.mark ? ` at line ${reason.mark.line + 1}, column ${reason.mark.column + 1}` : ''
    throw new ConfigError(`Input '${input}' is not valid YAML: ${reason.reason ?? (err as Error).message}${at} (got ${got(text)}).`)
  }
  if (doc === null || doc === undefined) return []
  if (!Array.isArray(doc)) throw invalid(input, 'expected a YAML list (each item starting with "- name: ...")', text)
  return doc
}

function checkKeys(input: 'checks' | 'webhooks', label: string, item: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(item)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(`Input '${input}' is invalid: ${label} has unknown key ${quote(key)}; expected ${allowed.join(', ')}.`)
    }
  }
}

function itemName(input: 'checks' | 'webhooks', index: number, item: unknown, seen: Set<string>): string {
  const position = `item ${index + 1}`
  if (!item || typeof item !== 'object' || Array.isArray(item)) {
    throw new ConfigError(`Input '${input}' is invalid: ${position} must be a mapping with a name (got ${got(item)}).`)
  }
  const name = (item as Record<string, unknown>).name
  if (typeof name !== 'string' || !NAME.test(name) || name.length > 63) {
    throw new ConfigError(
      `Input '${input}' is invalid: ${position} needs a name of lower-case letters, digits, '-', '_' or '.', at most 63 characters (got ${got(name)}).`
    )
  }
  if (seen.has(name)) throw new ConfigError(`Input '${input}' is invalid: the name ${quote(name)} is used twice; names must be unique.`)
  seen.add(name)
  return name
}

function parseCompare(label: string, value: unknown): CompareSpec {
  const kinds: CompareSpec['kind'][] = ['max-increase', 'max-increase-percent', 'max-decrease', 'max-decrease-percent']
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      `Input 'checks' is invalid: ${label} compare must be a mapping with one of ${kinds.join(', ')} (got ${got(value)}).`
    )
  }
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length !== 1 || !kinds.includes(entries[0][0] as CompareSpec['kind'])) {
    throw new ConfigError(`Input 'checks' is invalid: ${label} compare needs exactly one of ${kinds.join(', ')} (got ${got(value)}).`)
  }
  const amount = numberFrom(entries[0][1])
  if (amount === undefined || amount < 0) {
    throw new ConfigError(`Input 'checks' is invalid: ${label} compare ${entries[0][0]} must be a number >= 0 (got ${got(entries[0][1])}).`)
  }
  return { kind: entries[0][0] as CompareSpec['kind'], amount }
}

function parseChecks(text: string): CheckSpec[] {
  const seen = new Set<string>(BUILT_IN_NAMES)
  return loadYamlList('checks', text).map((raw, index) => {
    const name = itemName('checks', index, raw, seen)
    const item = raw as Record<string, unknown>
    const label = `check ${quote(name)}`
    checkKeys('checks', label, item, ['name', 'query', 'min', 'max', 'unit', 'compare'])
    if (typeof item.query !== 'string' || item.query.trim() === '') {
      throw new ConfigError(`Input 'checks' is invalid: ${label} needs a query (PromQL text) (got ${got(item.query)}).`)
    }
    const template = parseTemplate(item.query)
    if ('error' in template) throw new ConfigError(`Input 'checks' is invalid: ${label}: ${template.error} (got ${got(item.query)}).`)
    const bound = (key: 'min' | 'max') => {
      if (item[key] === undefined || item[key] === null) return undefined
      const n = numberFrom(item[key])
      if (n === undefined) throw new ConfigError(`Input 'checks' is invalid: ${label} ${key} must be a number (got ${got(item[key])}).`)
      return n
    }
    const min = bound('min')
    const max = bound('max')
    const compare = item.compare === undefined ? undefined : parseCompare(label, item.compare)
    if (min === undefined && max === undefined && !compare) {
      throw new ConfigError(`Input 'checks' is invalid: ${label} needs min, max or compare, or it can never fail (got ${got(item)}).`)
    }
    if (min !== undefined && max !== undefined && min > max) {
      throw new ConfigError(`Input 'checks' is invalid: ${label} has min ${min} above max ${max}; expected min <= max.`)
    }
    if (item.unit !== undefined && typeof item.unit !== 'string') {
      throw new ConfigError(`Input 'checks' is invalid: ${label} unit must be a string (got ${got(item.unit)}).`)
    }
    return {
      name,
      template,
      input: 'checks',
      ...(min !== undefined ? { min } : {}),
      ...(max !== undefined ? { max } : {}),
      ...(compare ? { compare } : {}),
      ...(item.unit ? { unit: item.unit as string } : {})
    }
  })
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@')
}

function parseWebhooks(text: string, env: Record<string, string | undefined>, secrets: string[]): WebhookConfig[] {
  const seen = new Set<string>()
  return loadYamlList('webhooks', text).map((raw, index) => {
    const name = itemName('webhooks', index, raw, seen)
    const item = raw as Record<string, unknown>
    const label = `webhook ${quote(name)}`
    checkKeys('webhooks', label, item, ['name', 'url', 'moments', 'timeout', 'retries', 'headers', 'metadata'])
    if (typeof item.url !== 'string') {
      throw new ConfigError(`Input 'webhooks' is invalid: ${label} needs a url (http:// or https://) (got ${got(item.url)}).`)
    }
    const url = substituteEnv(item.url, env, `${label} url`)
    secrets.push(...url.used)
    let parsed: URL
    try {
      parsed = new URL(url.text)
    } catch {
      throw new ConfigError(
        `Input 'webhooks' is invalid: ${label} url is not a URL; expected http:// or https:// (got ${got(redactUrl(item.url))}).`
      )
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(`Input 'webhooks' is invalid: ${label} url must be http:// or https:// (got ${got(redactUrl(item.url))}).`)
    }
    if (parsed.username || parsed.password) {
      throw new ConfigError(
        `Input 'webhooks' is invalid: ${label} url must not carry credentials; send them in headers from \${ENV} (got ${got(redactUrl(item.url))}).`
      )
    }
    const momentList = item.moments
    if (!Array.isArray(momentList) || momentList.length === 0 || !momentList.every((m) => MOMENTS.includes(m as GateMoment))) {
      throw new ConfigError(
        `Input 'webhooks' is invalid: ${label} moments must be a non-empty list of ${MOMENTS.join(', ')} (got ${got(momentList)}).`
      )
    }
    let timeoutSeconds = 10
    if (item.timeout !== undefined) {
      const t = parseDurationSeconds(String(item.timeout))
      if (t === undefined || t <= 0 || t > 600) {
        throw new ConfigError(
          `Input 'webhooks' is invalid: ${label} timeout must be a duration between 1ms and 10m, e.g. 10s (got ${got(item.timeout)}).`
        )
      }
      timeoutSeconds = t
    }
    let retries = 2
    if (item.retries !== undefined) {
      const r = numberFrom(item.retries)
      if (r === undefined || !Number.isInteger(r) || r < 0 || r > 10) {
        throw new ConfigError(
          `Input 'webhooks' is invalid: ${label} retries must be a whole number from 0 to 10 (got ${got(item.retries)}).`
        )
      }
      retries = r
    }
    const headers: Record<string, string> = {}
    if (item.headers !== undefined && item.headers !== null) {
      if (typeof item.headers !== 'object' || Array.isArray(item.headers)) {
        throw new ConfigError(`Input 'webhooks' is invalid: ${label} headers must be a mapping of name: value (got ${got(item.headers)}).`)
      }
      for (const [key, value] of Object.entries(item.headers as Record<string, unknown>)) {
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) {
          throw new ConfigError(`Input 'webhooks' is invalid: ${label} header name ${quote(key)} is not a valid HTTP header name.`)
        }
        if (typeof value !== 'string' && typeof value !== 'number') {
          throw new ConfigError(`Input 'webhooks' is invalid: ${label} header ${quote(key)} must be a string.`)
        }
        const v = substituteEnv(String(value), env, `${label} header ${quote(key)}`)
        if (/[\r\n]/.test(v.text))
          throw new ConfigError(`Input 'webhooks' is invalid: ${label} header ${quote(key)} contains a line break.`)
        headers[key] = v.text
        // Env values are masked on their own and inside the whole header value; literal values too,
        // unless so short that masking them would blank out unrelated log text.
        secrets.push(...v.used)
        if (v.used.length || v.text.length >= 4) secrets.push(v.text)
      }
    }
    let metadata: Record<string, unknown> = {}
    if (item.metadata !== undefined && item.metadata !== null) {
      if (typeof item.metadata !== 'object' || Array.isArray(item.metadata)) {
        throw new ConfigError(`Input 'webhooks' is invalid: ${label} metadata must be a mapping (got ${got(item.metadata)}).`)
      }
      metadata = item.metadata as Record<string, unknown>
    }
    return { name, url: url.text, moments: momentList as GateMoment[], timeoutSeconds, retries, headers, metadata }
  })
}

function builtInTemplates(reporter: Reporter) {
  const sel = `reporter="${reporter}",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"`
  const t = (source: string): QueryTemplate => {
    const parsed = parseTemplate(source)
    if ('error' in parsed) throw new Error(`built-in template: ${parsed.error}`)
    return parsed
  }
  return {
    // Errors over all, not successes over all: with 100 % errors there is no non-5xx series, and
    // Flagger's non-5xx/all form then returns no data instead of 0 %.
    successRate: t(
      `100 * (1 - ((sum(rate(istio_requests_total{${sel},response_code=~"5.."}[{{interval}}])) or vector(0)) / sum(rate(istio_requests_total{${sel}}[{{interval}}]))))`
    ),
    latencyP99: t(`histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${sel}}[{{interval}}])))`),
    requestCount: t(`sum(increase(istio_requests_total{${sel}}[{{interval}}]))`)
  }
}

/** Read and validate every gate input. Empty or missing inputs take their defaults. */
export function parseGateConfig(inputs: Record<string, string | undefined>, env: Record<string, string | undefined> = {}): GateConfig {
  const get = (name: GateInputName): string => {
    const v = (inputs[name] ?? '').trim()
    if (v !== '') return v
    const def: GateInput = GATE_INPUTS[name]
    return def.default ?? ''
  }
  const num = (name: GateInputName, ok: (n: number) => boolean, expected: string): number | undefined => {
    const raw = get(name)
    if (raw === '') return undefined
    const n = numberFrom(raw)
    if (n === undefined || !ok(n)) throw invalid(name, expected, raw)
    return n
  }
  const int = (name: GateInputName, min: number, max: number): number =>
    num(name, (n) => Number.isInteger(n) && n >= min && n <= max, `expected a whole number from ${min} to ${max}`) as number
  const duration = (name: GateInputName, ok: (s: number) => boolean, expected: string): number => {
    const raw = get(name)
    const s = parseDurationSeconds(raw)
    if (s === undefined || !ok(s)) throw invalid(name, expected, raw)
    return s
  }

  const secrets: string[] = []
  const policy: GatePolicy = {
    failureThreshold: int('failure-threshold', 1, 1000),
    inconclusiveLimit: int('inconclusive-limit', 1, 1000),
    onNoData: ((): OnNoData => {
      const v = get('on-no-data')
      if (v !== 'fail' && v !== 'pause' && v !== 'skip') throw invalid('on-no-data', 'expected fail, pause or skip', v)
      return v
    })()
  }
  const checkEverySeconds = duration(
    'check-every',
    (s) => s === 0 || s >= 1,
    'expected a duration of at least 1s, e.g. 30s, or 0 for only at the end of each step'
  )

  const reporter = get('reporter')
  if (reporter !== 'destination' && reporter !== 'source' && reporter !== 'waypoint') {
    throw invalid('reporter', 'expected destination, source or waypoint', reporter)
  }
  const successRate = num('success-rate', (n) => n > 0 && n <= 100, 'expected a percentage above 0 and at most 100, e.g. 99')
  const latencyP99 = num('latency-p99', (n) => n > 0, 'expected a number of milliseconds above 0, e.g. 500')
  const successVsStable = num('success-rate-vs-stable', (n) => n >= 0 && n <= 100, 'expected percentage points from 0 to 100, e.g. 1')
  const latencyVsStable = num('latency-p99-vs-stable', (n) => n >= 0, 'expected a percentage of 0 or more, e.g. 20')
  const custom = get('checks') === '' ? [] : parseChecks(get('checks'))
  const minRequests = num('min-requests', (n) => Number.isInteger(n) && n >= 0, 'expected a whole number of requests, 0 or more') as number
  const timeoutSeconds = duration('prometheus-timeout', (s) => s >= 1 && s <= 300, 'expected a duration from 1s to 5m, e.g. 10s')

  const outsideMesh = get('outside-mesh') as OutsideMeshPolicy
  if (!OUTSIDE_MESH_POLICIES.includes(outsideMesh)) throw invalid('outside-mesh', 'expected warn, fail or ignore', outsideMesh)

  const url = get('prometheus-url')
  const metricInputs = (['success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable', 'checks'] as const).filter(
    (n) => get(n) !== ''
  )
  let prometheus: GateConfig['prometheus']
  if (url === '') {
    if (metricInputs.length) {
      throw new ConfigError(
        `Input 'prometheus-url' is required when ${metricInputs.map((n) => `'${n}'`).join(', ')} ${metricInputs.length === 1 ? 'is' : 'are'} set: the metric checks need a Prometheus to query (got "").`
      )
    }
    if (outsideMesh === 'fail') {
      throw new ConfigError(
        `Input 'outside-mesh' is "fail" but 'prometheus-url' is not set: callers outside the mesh are found in Prometheus's Istio metrics; set 'prometheus-url', or 'outside-mesh' to warn or ignore.`
      )
    }
    for (const n of ['prometheus-token', 'prometheus-username', 'prometheus-password'] as const) {
      if (get(n) !== '') throw new ConfigError(`Input '${n}' is set but 'prometheus-url' is not; expected both or neither.`)
    }
  } else {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw invalid('prometheus-url', 'expected an http:// or https:// URL', redactUrl(url))
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw invalid('prometheus-url', 'expected an http:// or https:// URL', redactUrl(url))
    }
    if (parsed.username || parsed.password) {
      throw invalid(
        'prometheus-url',
        'credentials do not belong in the URL; use prometheus-username and prometheus-password',
        redactUrl(url)
      )
    }
    if (parsed.search || parsed.hash) {
      throw invalid('prometheus-url', 'expected a base URL without query or fragment (the API path is added)', redactUrl(url))
    }
    const token = get('prometheus-token')
    const username = get('prometheus-username')
    const password = get('prometheus-password')
    let auth: PrometheusAuth | undefined
    if (token && (username || password)) {
      throw new ConfigError(
        `Input 'prometheus-token' cannot be combined with 'prometheus-username'/'prometheus-password'; expected one kind of authentication.`
      )
    }
    if (token) {
      auth = { kind: 'bearer', token }
      secrets.push(token)
    } else if (username || password) {
      if (!username || !password) {
        throw new ConfigError(
          `Inputs 'prometheus-username' and 'prometheus-password' go together; only ${username ? "'prometheus-username'" : "'prometheus-password'"} is set.`
        )
      }
      auth = { kind: 'basic', username, password }
      // The Authorization header carries the base64 form: mask that too.
      secrets.push(password, Buffer.from(`${username}:${password}`).toString('base64'))
    }
    const templates = builtInTemplates(reporter)
    const checks: CheckSpec[] = []
    if (successRate !== undefined) {
      checks.push({ name: 'success-rate', template: templates.successRate, min: successRate, unit: '%', input: 'success-rate' })
    }
    if (latencyP99 !== undefined) {
      checks.push({ name: 'latency-p99', template: templates.latencyP99, max: latencyP99, unit: 'ms', input: 'latency-p99' })
    }
    if (successVsStable !== undefined) {
      checks.push({
        name: 'success-rate-vs-stable',
        template: templates.successRate,
        compare: { kind: 'max-decrease', amount: successVsStable },
        unit: '%',
        input: 'success-rate-vs-stable'
      })
    }
    if (latencyVsStable !== undefined) {
      checks.push({
        name: 'latency-p99-vs-stable',
        template: templates.latencyP99,
        compare: { kind: 'max-increase-percent', amount: latencyVsStable },
        unit: 'ms',
        input: 'latency-p99-vs-stable'
      })
    }
    checks.push(...custom)
    if (checks.length === 0) {
      throw new ConfigError(
        `Input 'prometheus-url' is set but no metric check is: set 'success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable' or 'checks' (got ${got(url)}).`
      )
    }
    prometheus = { url, auth, timeoutSeconds, reporter, outsideMesh, minRequests, requestCount: templates.requestCount, checks }
  }

  const webhooksText = get('webhooks')
  const webhooks = webhooksText === '' ? [] : parseWebhooks(webhooksText, env, secrets)
  return { prometheus, webhooks, policy, checkEverySeconds, secrets }
}

/** The gates the config asks for: Prometheus (if configured), then one per webhook. */
export function buildGates(config: GateConfig, deps: GateDeps = {}): HealthGate[] {
  const gates: HealthGate[] = []
  if (config.prometheus) gates.push(new PrometheusGate(config.prometheus, deps))
  for (const webhook of config.webhooks) gates.push(new WebhookGate(webhook, { fetch: deps.fetch }))
  return gates
}

/** The probe of callers outside the mesh, when Prometheus is configured and input 'outside-mesh' is not ignore. */
export function buildOutsideMeshProbe(config: GateConfig, deps: GateDeps = {}): OutsideMeshProbe | undefined {
  const p = config.prometheus
  if (!p || p.outsideMesh === 'ignore') return undefined
  const client = new PrometheusClient({ url: p.url, auth: p.auth, timeoutSeconds: p.timeoutSeconds, fetch: deps.fetch })
  return new OutsideMeshProbe(client, p.outsideMesh, deps.now)
}

/** Strings main must pass to core.setSecret before anything is logged. */
export function gateSecrets(config: GateConfig): string[] {
  return [...new Set(config.secrets)].filter((s) => s !== '')
}
