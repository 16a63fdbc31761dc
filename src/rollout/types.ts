/**
 * The rollout's vocabulary. Pure data: no I/O anywhere under src/rollout/.
 * stable / canary name the two versions; a split is the pair of weights, a weight is one side.
 */

import type { CapacityRecord } from './capacity-record.js'

/**
 * Which requests a match step sends to the canary: one condition on a request header, or on one
 * cookie of the Cookie header. `exact` compares the whole value; `regex` is an RE2 expression that
 * must match the whole value (Envoy's full match).
 */
export interface RequestMatch {
  on: 'header' | 'cookie'
  /** The header name (lower case) or the cookie name. */
  name: string
  op: 'exact' | 'regex'
  value: string
}

/**
 * What the canary gets besides its weight, while its weight is 0: only the requests that `match`
 * (a route of the action's own, before the driven one), or a copy of `percent` of the stable's
 * requests whose responses nobody receives (a mirror on the driven route).
 */
export type Exposure = { kind: 'match'; match: RequestMatch } | { kind: 'mirror'; percent: number }

/**
 * One entry of the schedule: move the canary to `weight` percent, stop and wait for a promote, or
 * (before any weight) expose the canary to matching requests or to mirrored ones only.
 */
export type Step = { kind: 'weight'; weight: number } | { kind: 'pause' } | Exposure

/** Where a rollout stands. Terminal phases: promoted, rolled-back, aborted. */
export type Phase =
  | 'initializing' // lock taken, canary Deployment being applied / waited for
  | 'progressing' // weights moving through the schedule
  | 'paused' // waiting for a manual promote (or abort)
  | 'promoting' // 100 % on canary; old destination, subset and Deployment being retired
  | 'rolling-back' // weight 0 written (or being written); canary destination/subset being removed
  | 'promoted'
  | 'rolled-back'
  | 'aborted'

/** The `result` output of one run. */
export type Result = 'promoted' | 'paused' | 'rolled-back' | 'aborted' | 'unchanged'

export type Verdict = 'pass' | 'fail' | 'inconclusive'

/** What one health check observed at one evaluation. */
export interface CheckResult {
  /** Gate-unique check name, e.g. `success-rate`, `latency-p99`, `webhook:load-test`, `pods-ready`. */
  name: string
  verdict: Verdict
  /** The observed value (undefined when there was none: no data, error). */
  value?: number
  /** The canary-against-stable reference value, when the check compares. */
  stableValue?: number
  /** Human threshold, e.g. `>= 99`, `<= 500 ms`, `<= stable + 1`. */
  threshold?: string
  unit?: string
  /** Why: `no data`, `Prometheus error: ...`, `HTTP 500`, `3 restarts`. */
  detail?: string
  /** Requests behind a rate on the canary and on stable, when the gate counted them. */
  requests?: number
  stableRequests?: number
}

/**
 * The share of the canary's requests in an evaluation's window that came from callers outside the
 * mesh: requests the weights did not decide. Informational; never part of the verdict.
 */
export interface OutsideMeshShare {
  /** Percent (0..100) of the canary's requests. */
  percent?: number
  /** Those requests per second. */
  rps?: number
  /** Why there is no figure (no requests in the window, Prometheus error): unknown, not zero. */
  detail?: string
}

/** One evaluation of every gate at one weight. */
/**
 * How the new version is compared with the stable one: by semver precedence, or not at all. Here,
 * not in version-order.ts, so that reading the inputs does not load semver (version-order.ts and
 * semver load with the first version check, after the first API request).
 */
export const VERSION_ORDERS = ['semver', 'none'] as const
export type VersionOrder = (typeof VERSION_ORDERS)[number]

/** What a run is asked to do. `plan` previews a deploy read-only (the pull request's comment). */
export const COMMANDS = ['deploy', 'promote', 'abort', 'status', 'plan'] as const
export type Command = (typeof COMMANDS)[number]

/** The moments at which gates are asked (webhooks follow Flagger's names). */
export type GateMoment =
  | 'pre-rollout' // before the first write that sends traffic
  | 'before-increase' // before each traffic increase
  | 'bake' // during / at the end of the bake time at a weight
  | 'before-promotion' // before the final promotion
  | 'rollback' // event only: never blocks
  | 'success' // event only: never blocks

/** The moments whose results are judged by the verdict policy; the others only notify. */
export type JudgedMoment = Exclude<GateMoment, 'rollback' | 'success'>

export interface GateEvaluation {
  at: string // ISO time
  /** When the gates were asked; absent means `bake`. */
  moment?: JudgedMoment
  canaryWeight: number
  checks: CheckResult[]
  verdict: Verdict
  /** Callers outside the mesh among the canary's requests (when Prometheus is configured). */
  outsideMesh?: OutsideMeshShare
}

/** An entry of the rollout's history, as the reports show it. Kept small: it lives in an annotation. */
export interface HistoryEvent {
  at: string // ISO time
  kind:
    | 'started'
    | 'canary-ready'
    | 'subset-added'
    | 'weight'
    | 'gates'
    | 'paused'
    | 'promote-requested'
    | 'abort-requested'
    | 'promoted'
    | 'rollback-started'
    | 'rolled-back'
    | 'aborted'
    | 'takeover'
    | 'drift'
    | 'cancelled'
    | 'error'
  canaryWeight?: number
  message?: string
  evaluation?: GateEvaluation
  /** Who did it: a run URL or `holder` id. */
  by?: string
}

/**
 * The rollout's state, kept as JSON in one annotation on the VirtualService and written in the
 * same resourceVersion-guarded update as the weights, so the two can never disagree.
 */
export interface RolloutState {
  schema: 1
  /** Unique per rollout: `<canaryVersion>@<startedAt>`. */
  id: string
  phase: Phase
  /** Index of the route in spec.http (spec.tcp with section tcp) and its name (if it has one), to find it again. */
  route: { index: number; name?: string; section?: 'tcp' }
  host: string
  /** The DestinationRule holding the subsets (same namespace as the VirtualService); '' without subsets. */
  destinationRule: string
  /**
   * How the route names the versions. Absent: subsets of one host (`subset` is a DestinationRule
   * subset). `services`: one Service per version (`subset` is that Service's name, in the route's
   * namespace), the host-level split of a VirtualService and the backendRefs of an HTTPRoute.
   */
  backends?: 'services'
  stable: { version: string; subset: string; deployment?: string }
  canary: { version: string; subset: string; deployment: string }
  /**
   * The other VirtualServices moved in lockstep with this one (same weights, same subsets), in the
   * order they are written; absent when the rollout has one VirtualService.
   */
  members?: RouteMember[]
  schedule: Step[]
  /** Index into schedule of the step currently applied; -1 before the first. */
  stepIndex: number
  /** Whether the gates have passed at the current step (the next step may start). */
  stepDone: boolean
  /** When the current step's weight was confirmed (bake time counts from here). */
  stepStartedAt?: string
  canaryWeight: number
  /**
   * The header/cookie route or the mirror this rollout put on the VirtualService (written in the
   * same guarded write): any later run reading the state knows it is there and removes it.
   */
  exposure?: Exposure
  /** What the rollback has to end in: `rolled-back` after a failure, `aborted` after an abort. */
  rollbackResult?: 'rolled-back' | 'aborted'
  /** Failed gate evaluations so far (cumulative), and consecutive inconclusive ones. */
  failedChecks: number
  inconclusiveStreak: number
  /** Fencing epoch of the lock holder that last wrote this state (Lease transitions). */
  epoch: number
  startedAt: string
  updatedAt: string
  /** Who started the rollout (a run URL or holder id). */
  startedBy?: string
  /** The commit being released (the deploy run's GITHUB_SHA): later promote/abort runs report on its PR. */
  commit?: string
  /** The deploy run's min-soak in seconds: later runs apply the larger of it and their own input. */
  minSoakSeconds?: number
  /** How the canary's replicas are chosen, and its HorizontalPodAutoscaler (see capacity.ts). */
  capacity?: CapacityRecord
  /** Terminal or pause reason, for the reports. */
  reason?: string
  result?: Result
  history: HistoryEvent[]
  /** History events dropped (oldest first) to keep the annotation small; counted over the rollout. */
  historyDropped?: number
  /**
   * The version this rollout took out of service: the old stable after a promotion, the canary
   * after a rollback. `retired: false` with `heldBy` when routes it does not own still send traffic
   * to it, so it was kept running (a later promote run retires it once they moved).
   */
  retirement?: Retirement
}

/** Where a rollout runs and between which versions: what preflight finds, and what a new rollout records. */
export type RolloutPlacement = Pick<RolloutState, 'route' | 'host' | 'destinationRule' | 'backends' | 'stable' | 'canary'>

/** A VirtualService the rollout moves in lockstep with the one that holds its state. */
export interface RouteMember {
  /** Its namespace; absent: the state holder's. */
  namespace?: string
  virtualService: string
  route: { index: number; name?: string; section?: 'tcp' }
  /** The destination host as its route writes it. */
  host: string
  /** The DestinationRule holding the subsets for its host (in its namespace). */
  destinationRule: string
}

/** What became of the version a rollout took out of service. */
export interface Retirement {
  version: string
  subset: string
  deployment?: string
  /** Its Deployment was scaled to 0 or deleted. */
  retired: boolean
  /** The routes (other than the rollout's own) that still send traffic to it. */
  heldBy?: string[]
}
