import type { CheckResult, Exposure, GateMoment, Step } from '../rollout/types.js'

export type { GateMoment }

/** What a gate knows about the rollout when it is asked. */
export interface GateContext {
  namespace: string
  /** The route's destination host, e.g. `reviews` or `reviews.shop.svc.cluster.local`. */
  host: string
  virtualService: string
  stable: { version: string; subset: string; deployment?: string }
  canary: { version: string; subset: string; deployment: string }
  canaryWeight: number
  /** The weight the rollout is about to move to (for `before-increase` moments). */
  nextWeight?: number
  stepIndex: number
  schedule: Step[]
  /** At a match or mirror step: the canary gets only the matching requests, or mirrored ones. */
  exposure?: Exposure
  /** Length of the metric window the gate should judge, in seconds (usually the step's bake time). */
  windowSeconds: number
  /** Aborts the evaluation (deadline or cancellation). */
  signal?: AbortSignal
}

/**
 * A health gate: a source of checks. It never throws for a failed or missing measurement: it
 * returns `fail` or `inconclusive` with the reason. It throws only for a configuration error
 * found by `preflight` (a query Prometheus rejects, an unreachable webhook URL scheme, ...).
 */
export interface HealthGate {
  readonly name: string
  /** Which moments this gate answers; others are skipped. */
  readonly moments: readonly GateMoment[]
  /**
   * The checks that measure HTTP requests (`success-rate`, a custom check over
   * istio_requests_total, ...), as `name (input 'x')`: a TCP route has none of those.
   */
  httpOnlyChecks?(): string[]
  /** Run every query once before any write; throw a ConfigError naming the check on a rejected query. */
  preflight(ctx: GateContext): Promise<void>
  evaluate(moment: GateMoment, ctx: GateContext): Promise<CheckResult[]>
}
