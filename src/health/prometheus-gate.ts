import { formatNumber } from '../format.js'
import { ConfigError, PreflightError, quote } from '../errors.js'
import type { CheckResult } from '../rollout/types.js'
import type { GateContext, GateMoment, HealthGate } from './health-gate.js'
import { PrometheusClient, type PrometheusAuth, type QueryOutcome } from './prometheus-client.js'
import { renderTemplate, TemplateValueError, type QueryTemplate, type TemplateValues } from './promql-template.js'
import { invalidInput } from '../config/input-error.js'

/** How a check compares the canary with the stable version over the same window. */
export interface CompareSpec {
  kind: 'max-increase' | 'max-increase-percent' | 'max-decrease' | 'max-decrease-percent'
  amount: number
}

/** One Prometheus check: a query template and its bounds. */
export interface CheckSpec {
  name: string
  template: QueryTemplate
  min?: number
  max?: number
  compare?: CompareSpec
  unit?: string
  /** The input the check came from, for error messages (`success-rate`, `checks`). */
  input: string
}

export interface PrometheusGateConfig {
  url: string
  auth?: PrometheusAuth
  timeoutSeconds: number
  /** Checks inconclusive below this many canary requests in the window; 0 = off. */
  minRequests: number
  /** The query counting canary requests in the window (used when minRequests > 0). */
  requestCount: QueryTemplate
  checks: CheckSpec[]
}

export interface GateDeps {
  fetch?: typeof fetch
  /** When given, queries are evaluated at this time (ms) instead of Prometheus's own now. */
  now?: () => number
}

type Side = 'canary' | 'stable'

/** The template values of one side's queries. */
export function valuesFor(ctx: GateContext, side: Side): TemplateValues {
  const stableWorkload = ctx.stable.deployment
  return {
    namespace: ctx.namespace,
    workload: side === 'canary' ? ctx.canary.deployment : stableWorkload,
    canary_workload: ctx.canary.deployment,
    stable_workload: stableWorkload,
    version: side === 'canary' ? ctx.canary.version : ctx.stable.version,
    canary_version: ctx.canary.version,
    stable_version: ctx.stable.version,
    intervalSeconds: ctx.windowSeconds
  }
}

function withUnit(n: number, unit?: string): string {
  return unit ? `${formatNumber(n)} ${unit}` : formatNumber(n)
}

/** The human threshold of a check, e.g. `>= 99 %`, `<= stable + 20% (relative)`. */
export function describeThreshold(check: Pick<CheckSpec, 'min' | 'max' | 'compare' | 'unit'>): string {
  const parts: string[] = []
  if (check.min !== undefined) parts.push(`>= ${withUnit(check.min, check.unit)}`)
  if (check.max !== undefined) parts.push(`<= ${withUnit(check.max, check.unit)}`)
  const c = check.compare
  if (c) {
    switch (c.kind) {
      case 'max-increase':
        parts.push(`<= stable + ${withUnit(c.amount, check.unit)}`)
        break
      case 'max-decrease':
        parts.push(`>= stable - ${withUnit(c.amount, check.unit)}`)
        break
      case 'max-increase-percent':
        parts.push(`<= stable + ${formatNumber(c.amount)}% (relative)`)
        break
      case 'max-decrease-percent':
        parts.push(`>= stable - ${formatNumber(c.amount)}% (relative)`)
        break
    }
  }
  return parts.join(' and ')
}

/** Judge a canary value against its stable reference. Pure; `undefined` = within bounds. */
export function compareViolation(compare: CompareSpec, canary: number, stable: number, unit?: string): string | undefined {
  const diff = canary - stable
  const signed = `${diff >= 0 ? '+' : ''}${withUnit(diff, unit)}`
  switch (compare.kind) {
    case 'max-increase':
      return diff > compare.amount ? `canary is ${signed} over stable (allowed +${withUnit(compare.amount, unit)})` : undefined
    case 'max-decrease':
      return -diff > compare.amount ? `canary is ${signed} under stable (allowed -${withUnit(compare.amount, unit)})` : undefined
    case 'max-increase-percent': {
      if (stable === 0)
        return canary > 0 ? `stable is 0 and canary ${withUnit(canary, unit)}: any increase over 0 exceeds a relative limit` : undefined
      const pct = (diff / Math.abs(stable)) * 100
      return pct > compare.amount ? `canary is +${formatNumber(pct)}% over stable (allowed +${formatNumber(compare.amount)}%)` : undefined
    }
    case 'max-decrease-percent': {
      if (stable === 0)
        return canary < 0 ? `stable is 0 and canary ${withUnit(canary, unit)}: any decrease under 0 exceeds a relative limit` : undefined
      const pct = (-diff / Math.abs(stable)) * 100
      return pct > compare.amount ? `canary is -${formatNumber(pct)}% under stable (allowed -${formatNumber(compare.amount)}%)` : undefined
    }
  }
}

function warningText(warnings: string[]): string {
  return warnings.length ? `; Prometheus warnings: ${[...new Set(warnings)].join(' | ')}` : ''
}

/** One evaluation's queries: the same rendered query is sent once (built-ins and comparisons share). */
class QueryBatch {
  private readonly cache = new Map<string, Promise<QueryOutcome>>()
  constructor(
    private readonly client: PrometheusClient,
    private readonly time: number | undefined,
    private readonly signal: AbortSignal | undefined
  ) {}
  run(expr: string): Promise<QueryOutcome> {
    let p = this.cache.get(expr)
    if (!p) {
      p = this.client.query(expr, { time: this.time, signal: this.signal })
      this.cache.set(expr, p)
    }
    return p
  }
  get size(): number {
    return this.cache.size
  }
}

/**
 * Health checks over Prometheus metrics: built-in success rate and P99 latency over Istio's standard
 * metrics, and custom PromQL checks, each against fixed bounds and/or against the stable version.
 * Every check ends pass, fail or inconclusive; missing data and Prometheus errors are never a pass.
 */
export class PrometheusGate implements HealthGate {
  readonly name = 'prometheus'
  readonly moments: readonly GateMoment[] = ['bake']
  readonly client: PrometheusClient
  /** Distinct queries sent by the last evaluation (retries not counted), for the figures. */
  lastQueryCount = 0

  constructor(
    readonly config: PrometheusGateConfig,
    private readonly deps: GateDeps = {}
  ) {
    this.client = new PrometheusClient({
      url: config.url,
      auth: config.auth,
      timeoutSeconds: config.timeoutSeconds,
      fetch: deps.fetch
    })
  }

  private time(): number | undefined {
    return this.deps.now ? this.deps.now() / 1000 : undefined
  }

  /** Run every query once; a query Prometheus rejects is a ConfigError naming its check. */
  async preflight(ctx: GateContext): Promise<void> {
    const rendered: Array<{ label: string; input: string; expr: string }> = []
    const render = (label: string, input: string, template: QueryTemplate, side: Side) => {
      if (side === 'stable' && !ctx.stable.deployment) {
        throw new PreflightError(
          `Check ${quote(label)} compares the canary with the stable version, but the stable Deployment of ${quote(ctx.stable.version)} is not known.`
        )
      }
      try {
        rendered.push({ label, input, expr: renderTemplate(template, valuesFor(ctx, side)) })
      } catch (err) {
        if (err instanceof TemplateValueError) {
          throw invalidInput(input, `check ${quote(label)} cannot be rendered: ${err.message}`)
        }
        throw err
      }
    }
    if (this.config.minRequests > 0) render('min-requests', 'min-requests', this.config.requestCount, 'canary')
    for (const check of this.config.checks) {
      render(check.name, check.input, check.template, 'canary')
      if (check.compare) render(check.name, check.input, check.template, 'stable')
    }
    const batch = new QueryBatch(this.client, this.time(), ctx.signal)
    const outcomes = await Promise.all(rendered.map((r) => batch.run(r.expr)))
    const rejected: string[] = []
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.kind !== 'error') continue
      const { label, input, expr } = rendered[i]
      if (outcome.unreachable) {
        throw new PreflightError(`Prometheus at ${quote(this.config.url)} (input 'prometheus-url') is unreachable: ${outcome.reason}.`)
      }
      if (outcome.unauthorized) {
        throw new PreflightError(
          `Prometheus at ${quote(this.config.url)} refused the credentials: ${outcome.reason}. Check prometheus-token or prometheus-username/prometheus-password.`
        )
      }
      if (outcome.rejected) {
        const where = input === 'checks' ? `Input 'checks' is invalid: check ${quote(label)}` : `Input '${input}' is invalid: its query`
        rejected.push(`${where} was rejected by Prometheus: ${outcome.reason} (query ${quote(expr)}).`)
      } else {
        throw new PreflightError(
          `Prometheus at ${quote(this.config.url)} could not run the query of check ${quote(label)}: ${outcome.reason}.`
        )
      }
    }
    if (rejected.length) throw new ConfigError([...new Set(rejected)].join('\n'))
  }

  async evaluate(moment: GateMoment, ctx: GateContext): Promise<CheckResult[]> {
    if (!this.moments.includes(moment)) return []
    const batch = new QueryBatch(this.client, this.time(), ctx.signal)
    try {
      const results: CheckResult[] = []
      if (this.config.minRequests > 0) {
        const gateCheck = await this.requestCountCheck(batch, ctx)
        results.push(gateCheck)
        if (gateCheck.verdict !== 'pass') {
          for (const check of this.config.checks) {
            results.push({
              name: check.name,
              verdict: 'inconclusive',
              threshold: describeThreshold(check),
              unit: check.unit,
              detail: `not judged: ${gateCheck.detail}`
            })
          }
          return results
        }
      }
      results.push(...(await Promise.all(this.config.checks.map((c) => this.judge(c, batch, ctx)))))
      return results
    } catch (err) {
      // A gate never throws from evaluate: whatever went wrong, nothing was judged.
      const detail = `not judged: ${(err as Error)?.message ?? String(err)}`
      return this.config.checks.map((c) => ({
        name: c.name,
        verdict: 'inconclusive' as const,
        threshold: describeThreshold(c),
        unit: c.unit,
        detail
      }))
    } finally {
      this.lastQueryCount = batch.size
    }
  }

  private async requestCountCheck(batch: QueryBatch, ctx: GateContext): Promise<CheckResult> {
    const base = { name: 'min-requests', threshold: `>= ${this.config.minRequests} requests`, unit: 'requests' }
    let expr: string
    try {
      expr = renderTemplate(this.config.requestCount, valuesFor(ctx, 'canary'))
    } catch (err) {
      return { ...base, verdict: 'inconclusive', detail: (err as Error).message }
    }
    const outcome = await batch.run(expr)
    const window = `${Math.max(1, Math.round(ctx.windowSeconds))}s`
    if (outcome.kind === 'error') {
      return { ...base, verdict: 'inconclusive', detail: `canary request count unknown: ${outcome.reason}${warningText(outcome.warnings)}` }
    }
    // No series at all means no request reached the canary in the window.
    const count = outcome.kind === 'value' ? outcome.value : 0
    if (count < this.config.minRequests) {
      return {
        ...base,
        verdict: 'inconclusive',
        value: count,
        detail: `too little traffic: ${formatNumber(count)} canary requests in ${window} (min-requests ${this.config.minRequests})${warningText(outcome.warnings)}`
      }
    }
    return {
      ...base,
      verdict: 'pass',
      value: count,
      ...(outcome.warnings.length ? { detail: warningText(outcome.warnings).slice(2) } : {})
    }
  }

  private async judge(check: CheckSpec, batch: QueryBatch, ctx: GateContext): Promise<CheckResult> {
    const result: CheckResult = { name: check.name, verdict: 'inconclusive', threshold: describeThreshold(check), unit: check.unit }
    let canaryExpr: string
    let stableExpr: string | undefined
    try {
      canaryExpr = renderTemplate(check.template, valuesFor(ctx, 'canary'))
      if (check.compare) {
        if (!ctx.stable.deployment) return { ...result, detail: 'the stable Deployment is not known: nothing to compare with' }
        stableExpr = renderTemplate(check.template, valuesFor(ctx, 'stable'))
      }
    } catch (err) {
      return { ...result, detail: `query not rendered: ${(err as Error).message}` }
    }
    const [canary, stable] = await Promise.all([batch.run(canaryExpr), stableExpr ? batch.run(stableExpr) : undefined])
    const warnings = warningText([...canary.warnings, ...(stable?.warnings ?? [])])
    if (canary.kind !== 'value') {
      return { ...result, detail: `${canary.reason}${warnings}` }
    }
    result.value = canary.value
    const violations: string[] = []
    if (check.min !== undefined && canary.value < check.min) {
      violations.push(`${withUnit(canary.value, check.unit)} is below the minimum ${withUnit(check.min, check.unit)}`)
    }
    if (check.max !== undefined && canary.value > check.max) {
      violations.push(`${withUnit(canary.value, check.unit)} is above the maximum ${withUnit(check.max, check.unit)}`)
    }
    let undetermined: string | undefined
    if (check.compare && stable) {
      if (stable.kind === 'value') {
        result.stableValue = stable.value
        const v = compareViolation(check.compare, canary.value, stable.value, check.unit)
        if (v) violations.push(v)
      } else {
        undetermined = `stable: ${stable.reason}`
      }
    }
    const observed =
      result.stableValue !== undefined
        ? `canary ${withUnit(canary.value, check.unit)}, stable ${withUnit(result.stableValue, check.unit)}`
        : withUnit(canary.value, check.unit)
    // A known violation fails even when the comparison could not be made.
    if (violations.length) return { ...result, verdict: 'fail', detail: `${violations.join('; ')}${warnings}` }
    if (undetermined) return { ...result, verdict: 'inconclusive', detail: `${observed}; ${undetermined}${warnings}` }
    return { ...result, verdict: 'pass', detail: `${observed}${warnings}` }
  }
}
