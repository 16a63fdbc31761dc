import type { CheckResult, Exposure } from '../rollout/types.js'
import type { GateContext, GateMoment, HealthGate } from './health-gate.js'
import { sleepUnlessAborted } from '../abortable-sleep.js'

/** Moments that are events: told, never waited on; their result never blocks. */
export const EVENT_MOMENTS: readonly GateMoment[] = ['rollback', 'success']

export interface WebhookConfig {
  name: string
  url: string
  moments: GateMoment[]
  timeoutSeconds: number
  /** Retries after the first try (so `retries + 1` tries in all). */
  retries: number
  /** Header values with `${ENV}` already resolved (they are secrets: see gateSecrets). */
  headers: Record<string, string>
  metadata: Record<string, unknown>
}

export interface WebhookDeps {
  fetch?: typeof fetch
  /** Delay before retry n (1-based), ms. Default 1 s, 2 s, 4 s … capped at 8 s. */
  backoffMs?: (retry: number) => number
}

/** The JSON body a webhook receives. */
export interface WebhookPayload {
  name: string
  namespace: string
  virtualService: string
  /** The moment, under Flagger's field name too. */
  phase: GateMoment
  moment: GateMoment
  stable: { version: string; subset: string }
  canary: { version: string; subset: string }
  canaryWeight: number
  nextWeight?: number
  stepIndex: number
  /** Number of steps in the schedule. */
  steps: number
  /**
   * At a match or mirror step: what reaches the canary, e.g. `{"kind":"match","match":{"on":"header",
   * "name":"x-canary","op":"exact","value":"always"}}` (a load test must send that header) or
   * `{"kind":"mirror","percent":50}`.
   */
  exposure?: Exposure
  metadata: Record<string, unknown>
}

export function webhookPayload(config: WebhookConfig, moment: GateMoment, ctx: GateContext): WebhookPayload {
  return {
    name: config.name,
    namespace: ctx.namespace,
    virtualService: ctx.virtualService,
    phase: moment,
    moment,
    stable: { version: ctx.stable.version, subset: ctx.stable.subset },
    canary: { version: ctx.canary.version, subset: ctx.canary.subset },
    canaryWeight: ctx.canaryWeight,
    ...(ctx.nextWeight !== undefined ? { nextWeight: ctx.nextWeight } : {}),
    stepIndex: ctx.stepIndex,
    steps: ctx.schedule.length,
    ...(ctx.exposure ? { exposure: ctx.exposure } : {}),
    metadata: config.metadata
  }
}

const defaultBackoff = (retry: number) => Math.min(8000, 1000 * 2 ** (retry - 1))

const sleep = sleepUnlessAborted

function bodySnippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat
}

/**
 * A webhook gate (Flagger's model): POST the rollout's situation; 2xx passes. Any other status or
 * a timeout is retried with backoff, then fails with what happened. At event moments (rollback,
 * success) the result is informational: always `pass`, the detail says whether it was delivered.
 */
export class WebhookGate implements HealthGate {
  readonly name: string
  readonly moments: readonly GateMoment[]

  constructor(
    private readonly config: WebhookConfig,
    private readonly deps: WebhookDeps = {}
  ) {
    this.name = `webhook:${config.name}`
    this.moments = config.moments
  }

  /** Nothing to send before the rollout: the URL and headers were checked when the config was parsed. */
  async preflight(): Promise<void> {}

  async evaluate(moment: GateMoment, ctx: GateContext): Promise<CheckResult[]> {
    if (!this.moments.includes(moment)) return []
    const outcome = await this.deliver(moment, ctx)
    if (EVENT_MOMENTS.includes(moment)) {
      const detail = outcome.ok
        ? `${moment} event delivered (${outcome.detail})`
        : `${moment} event NOT delivered: ${outcome.detail} (informational, does not block)`
      return [{ name: this.name, verdict: 'pass', detail }]
    }
    return [{ name: this.name, verdict: outcome.ok ? 'pass' : 'fail', threshold: 'HTTP 2xx', detail: outcome.detail }]
  }

  private async deliver(moment: GateMoment, ctx: GateContext): Promise<{ ok: boolean; detail: string }> {
    const body = JSON.stringify(webhookPayload(this.config, moment, ctx))
    const headers = { ...this.config.headers, 'content-type': 'application/json' }
    const fetchFn = this.deps.fetch ?? fetch
    const backoff = this.deps.backoffMs ?? defaultBackoff
    const tries = this.config.retries + 1
    let last = { what: 'not sent', extra: '' }
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (attempt > 1) await sleep(backoff(attempt - 1), ctx.signal)
      if (ctx.signal?.aborted)
        return { ok: false, detail: `cancelled after ${attempt - 1} ${attempt - 1 === 1 ? 'try' : 'tries'} (last: ${last.what})` }
      const timeout = AbortSignal.timeout(this.config.timeoutSeconds * 1000)
      const signal = ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout
      const started = Date.now()
      try {
        const response = await fetchFn(this.config.url, { method: 'POST', headers, body, signal })
        const text = await response.text().catch(() => '')
        const ms = Date.now() - started
        if (response.status >= 200 && response.status < 300) {
          return { ok: true, detail: `HTTP ${response.status} in ${ms} ms${attempt > 1 ? ` on try ${attempt}` : ''}` }
        }
        last = { what: `HTTP ${response.status}`, extra: text ? JSON.stringify(bodySnippet(text)) : '' }
      } catch (err) {
        const e = err as { name?: string; message?: string; cause?: { message?: string; code?: string } }
        if (e?.name === 'TimeoutError' || (e?.name === 'AbortError' && !ctx.signal?.aborted)) {
          last = { what: `timeout (${this.config.timeoutSeconds}s)`, extra: '' }
        } else if (e?.name === 'AbortError') {
          last = { what: 'cancelled', extra: '' }
        } else {
          const cause = e?.cause?.message ?? e?.cause?.code
          last = { what: 'unreachable', extra: `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}` }
        }
      }
    }
    const extra = last.extra ? `: ${last.extra}` : ''
    return { ok: false, detail: `${last.what} after ${tries} ${tries === 1 ? 'try' : 'tries'}${extra}` }
  }
}
