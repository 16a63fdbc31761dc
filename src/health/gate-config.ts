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
import { got, inputError, invalidInput } from '../config/input-error.js'
import { choiceInput, durationInput, inputValue, type Inputs } from '../config/input-reader.js'
import type { InputNameOfKind } from '../config/inputs.js'

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

/** Seconds of a duration in the one grammar of config/duration.ts, or undefined when it is not one. */
function parseDurationSeconds(text: string): number | undefined {
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
      throw invalidInput('webhooks', `${where} refers to \${${name}}, which is not an environment variable name`)
    }
    const value = env[name]
    if (value === undefined || value === '') {
      throw invalidInput(
        'webhooks',
        `${where} refers to \${${name}}, which is not set; pass it to the step with env: ${name}: \${{ secrets.${name} }}`
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
  if (!Array.isArray(doc)) throw inputError(input, 'expected a YAML list (each item starting with "- name: ...")', text)
  return doc
}

function checkKeys(input: 'checks' | 'webhooks', label: string, item: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(item)) {
    if (!allowed.includes(key)) {
      throw invalidInput(input, `${label} has unknown key ${quote(key)}; expected ${allowed.join(', ')}`)
    }
  }
}

function itemName(input: 'checks' | 'webhooks', index: number, item: unknown, seen: Set<string>): string {
  const position = `item ${index + 1}`
  if (!item || typeof item !== 'object' || Array.isArray(item)) {
    throw inputError(input, `${position} must be a mapping with a name`, item)
  }
  const name = (item as Record<string, unknown>).name
  if (typeof name !== 'string' || !NAME.test(name) || name.length > 63) {
    throw inputError(input, `${position} needs a name of lower-case letters, digits, '-', '_' or '.', at most 63 characters`, name)
  }
  if (seen.has(name)) throw invalidInput(input, `the name ${quote(name)} is used twice; names must be unique`)
  seen.add(name)
  return name
}

function parseCompare(label: string, value: unknown): CompareSpec {
  const kinds: CompareSpec['kind'][] = ['max-increase', 'max-increase-percent', 'max-decrease', 'max-decrease-percent']
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw inputError('checks', `${label} compare must be a mapping with one of ${kinds.join(', ')}`, value)
  }
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length !== 1 || !kinds.includes(entries[0][0] as CompareSpec['kind'])) {
    throw inputError('checks', `${label} compare needs exactly one of ${kinds.join(', ')}`, value)
  }
  const amount = numberFrom(entries[0][1])
  if (amount === undefined || amount < 0) {
    throw inputError('checks', `${label} compare ${entries[0][0]} must be a number >= 0`, entries[0][1])
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
      throw inputError('checks', `${label} needs a query (PromQL text)`, item.query)
    }
    const template = parseTemplate(item.query)
    if ('error' in template) throw inputError('checks', `${label}: ${template.error}`, item.query)
    const bound = (key: 'min' | 'max') => {
      if (item[key] === undefined || item[key] === null) return undefined
      const n = numberFrom(item[key])
      if (n === undefined) throw inputError('checks', `${label} ${key} must be a number`, item[key])
      return n
    }
    const min = bound('min')
    const max = bound('max')
    const compare = item.compare === undefined ? undefined : parseCompare(label, item.compare)
    if (min === undefined && max === undefined && !compare) {
      throw inputError('checks', `${label} needs min, max or compare, or it can never fail`, item)
    }
    if (min !== undefined && max !== undefined && min > max) {
      throw invalidInput('checks', `${label} has min ${min} above max ${max}; expected min <= max`)
    }
    if (item.unit !== undefined && typeof item.unit !== 'string') {
      throw inputError('checks', `${label} unit must be a string`, item.unit)
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
      throw inputError('webhooks', `${label} needs a url (http:// or https://)`, item.url)
    }
    const url = substituteEnv(item.url, env, `${label} url`)
    secrets.push(...url.used)
    let parsed: URL
    try {
      parsed = new URL(url.text)
    } catch {
      throw inputError('webhooks', `${label} url is not a URL; expected http:// or https://`, redactUrl(item.url))
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw inputError('webhooks', `${label} url must be http:// or https://`, redactUrl(item.url))
    }
    if (parsed.username || parsed.password) {
      throw inputError('webhooks', `${label} url must not carry credentials; send them in headers from \${ENV}`, redactUrl(item.url))
    }
    const momentList = item.moments
    if (!Array.isArray(momentList) || momentList.length === 0 || !momentList.every((m) => MOMENTS.includes(m as GateMoment))) {
      throw inputError('webhooks', `${label} moments must be a non-empty list of ${MOMENTS.join(', ')}`, momentList)
    }
    let timeoutSeconds = 10
    if (item.timeout !== undefined) {
      const t = parseDurationSeconds(String(item.timeout))
      if (t === undefined || t <= 0 || t > 600) {
        throw inputError('webhooks', `${label} timeout must be a duration between 1ms and 10m, e.g. 10s`, item.timeout)
      }
      timeoutSeconds = t
    }
    let retries = 2
    if (item.retries !== undefined) {
      const r = numberFrom(item.retries)
      if (r === undefined || !Number.isInteger(r) || r < 0 || r > 10) {
        throw inputError('webhooks', `${label} retries must be a whole number from 0 to 10`, item.retries)
      }
      retries = r
    }
    const headers: Record<string, string> = {}
    if (item.headers !== undefined && item.headers !== null) {
      if (typeof item.headers !== 'object' || Array.isArray(item.headers)) {
        throw inputError('webhooks', `${label} headers must be a mapping of name: value`, item.headers)
      }
      for (const [key, value] of Object.entries(item.headers as Record<string, unknown>)) {
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) {
          throw invalidInput('webhooks', `${label} header name ${quote(key)} is not a valid HTTP header name`)
        }
        if (typeof value !== 'string' && typeof value !== 'number') {
          throw invalidInput('webhooks', `${label} header ${quote(key)} must be a string`)
        }
        const v = substituteEnv(String(value), env, `${label} header ${quote(key)}`)
        if (/[\r\n]/.test(v.text)) throw invalidInput('webhooks', `${label} header ${quote(key)} contains a line break`)
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
        throw inputError('webhooks', `${label} metadata must be a mapping`, item.metadata)
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

/** Read and validate every gate input. Empty or missing inputs take their catalogue defaults. */
export function parseGateConfig(inputs: Inputs, env: Record<string, string | undefined> = {}): GateConfig {
  const secrets: string[] = []
  const policy = parsePolicy(inputs)
  const checkEverySeconds = durationInput(inputs, 'check-every')
  const prometheus = parsePrometheus(inputs, secrets)
  const webhooksText = inputValue(inputs, 'webhooks')
  const webhooks = webhooksText === '' ? [] : parseWebhooks(webhooksText, env, secrets)
  return { prometheus, webhooks, policy, checkEverySeconds, secrets }
}

type GateNumberInput = InputNameOfKind<'number'>

/** A number input, or undefined when it is empty and has no default; `ok` says what is accepted. */
function numberInput(inputs: Inputs, name: GateNumberInput, ok: (n: number) => boolean, expected: string): number | undefined {
  const raw = inputValue(inputs, name)
  if (raw === '') return undefined
  const n = numberFrom(raw)
  if (n === undefined || !ok(n)) throw inputError(name, expected, raw)
  return n
}

function wholeNumberInput(inputs: Inputs, name: GateNumberInput, min: number, max: number): number {
  const ok = (n: number) => Number.isInteger(n) && n >= min && n <= max
  return numberInput(inputs, name, ok, `expected a whole number from ${min} to ${max}`)!
}

function parsePolicy(inputs: Inputs): GatePolicy {
  return {
    failureThreshold: wholeNumberInput(inputs, 'failure-threshold', 1, 1000),
    inconclusiveLimit: wholeNumberInput(inputs, 'inconclusive-limit', 1, 1000),
    onNoData: choiceInput<OnNoData>(inputs, 'on-no-data', ['fail', 'pause', 'skip'])
  }
}

/** The metric thresholds of the built-in checks, each undefined when its input is empty. */
interface MetricThresholds {
  successRate?: number
  latencyP99?: number
  successVsStable?: number
  latencyVsStable?: number
}

function parseThresholds(inputs: Inputs): MetricThresholds {
  return {
    successRate: numberInput(inputs, 'success-rate', (n) => n > 0 && n <= 100, 'expected a percentage above 0 and at most 100, e.g. 99'),
    latencyP99: numberInput(inputs, 'latency-p99', (n) => n > 0, 'expected a number of milliseconds above 0, e.g. 500'),
    successVsStable: numberInput(
      inputs,
      'success-rate-vs-stable',
      (n) => n >= 0 && n <= 100,
      'expected percentage points from 0 to 100, e.g. 1'
    ),
    latencyVsStable: numberInput(inputs, 'latency-p99-vs-stable', (n) => n >= 0, 'expected a percentage of 0 or more, e.g. 20')
  }
}

const METRIC_INPUTS = ['success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable', 'checks'] as const

/** The Prometheus side of the gates, or undefined when 'prometheus-url' is empty (then no metric input may be set). */
function parsePrometheus(inputs: Inputs, secrets: string[]): GateConfig['prometheus'] {
  const reporter = choiceInput<Reporter>(inputs, 'reporter', ['destination', 'source', 'waypoint'])
  const thresholds = parseThresholds(inputs)
  const custom = inputValue(inputs, 'checks') === '' ? [] : parseChecks(inputValue(inputs, 'checks'))
  const minRequests = numberInput(
    inputs,
    'min-requests',
    (n) => Number.isInteger(n) && n >= 0,
    'expected a whole number of requests, 0 or more'
  )!
  const timeoutSeconds = durationInput(inputs, 'prometheus-timeout')
  const outsideMesh = choiceInput(inputs, 'outside-mesh', OUTSIDE_MESH_POLICIES)

  const url = inputValue(inputs, 'prometheus-url')
  if (url === '') {
    refuseWithoutPrometheus(inputs, outsideMesh)
    return undefined
  }
  checkPrometheusUrl(url)
  const auth = prometheusAuth(inputs, secrets)
  const templates = builtInTemplates(reporter)
  const checks = [...builtInChecks(thresholds, templates), ...custom]
  if (checks.length === 0) {
    throw new ConfigError(
      `Input 'prometheus-url' is set but no metric check is: set 'success-rate', 'latency-p99', 'success-rate-vs-stable', 'latency-p99-vs-stable' or 'checks' (got ${got(url)}).`
    )
  }
  return { url, auth, timeoutSeconds, reporter, outsideMesh, minRequests, requestCount: templates.requestCount, checks }
}

/** Without 'prometheus-url', an input that needs Prometheus is a mistake, not something to ignore. */
function refuseWithoutPrometheus(inputs: Inputs, outsideMesh: OutsideMeshPolicy): void {
  const metricInputs = METRIC_INPUTS.filter((n) => inputValue(inputs, n) !== '')
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
    if (inputValue(inputs, n) !== '') throw new ConfigError(`Input '${n}' is set but 'prometheus-url' is not; expected both or neither.`)
  }
}

function checkPrometheusUrl(url: string): void {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw inputError('prometheus-url', 'expected an http:// or https:// URL', redactUrl(url))
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw inputError('prometheus-url', 'expected an http:// or https:// URL', redactUrl(url))
  }
  if (parsed.username || parsed.password) {
    throw inputError(
      'prometheus-url',
      'credentials do not belong in the URL; use prometheus-username and prometheus-password',
      redactUrl(url)
    )
  }
  if (parsed.search || parsed.hash) {
    throw inputError('prometheus-url', 'expected a base URL without query or fragment (the API path is added)', redactUrl(url))
  }
}

/** Bearer or basic authentication, or none; the secrets it carries go to `secrets`. */
function prometheusAuth(inputs: Inputs, secrets: string[]): PrometheusAuth | undefined {
  const token = inputValue(inputs, 'prometheus-token')
  const username = inputValue(inputs, 'prometheus-username')
  const password = inputValue(inputs, 'prometheus-password')
  if (token && (username || password)) {
    throw new ConfigError(
      `Input 'prometheus-token' cannot be combined with 'prometheus-username'/'prometheus-password'; expected one kind of authentication.`
    )
  }
  if (token) {
    secrets.push(token)
    return { kind: 'bearer', token }
  }
  if (!username && !password) return undefined
  if (!username || !password) {
    throw new ConfigError(
      `Inputs 'prometheus-username' and 'prometheus-password' go together; only ${username ? "'prometheus-username'" : "'prometheus-password'"} is set.`
    )
  }
  // The Authorization header carries the base64 form: mask that too.
  secrets.push(password, Buffer.from(`${username}:${password}`).toString('base64'))
  return { kind: 'basic', username, password }
}

function builtInChecks(t: MetricThresholds, templates: ReturnType<typeof builtInTemplates>): CheckSpec[] {
  const checks: CheckSpec[] = []
  if (t.successRate !== undefined) {
    checks.push({ name: 'success-rate', template: templates.successRate, min: t.successRate, unit: '%', input: 'success-rate' })
  }
  if (t.latencyP99 !== undefined) {
    checks.push({ name: 'latency-p99', template: templates.latencyP99, max: t.latencyP99, unit: 'ms', input: 'latency-p99' })
  }
  if (t.successVsStable !== undefined) {
    checks.push({
      name: 'success-rate-vs-stable',
      template: templates.successRate,
      compare: { kind: 'max-decrease', amount: t.successVsStable },
      unit: '%',
      input: 'success-rate-vs-stable'
    })
  }
  if (t.latencyVsStable !== undefined) {
    checks.push({
      name: 'latency-p99-vs-stable',
      template: templates.latencyP99,
      compare: { kind: 'max-increase-percent', amount: t.latencyVsStable },
      unit: 'ms',
      input: 'latency-p99-vs-stable'
    })
  }
  return checks
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
