/**
 * The TrafficRouter port: how the executor moves traffic, in weights and rollout state only. An
 * implementation owns the mesh's objects (IstioRouter: a VirtualService route and a
 * DestinationRule) and the one guarded write loop over them: read, change what we own, write under
 * the version just read, retry on conflict, and count a write only once a read shows it.
 */
import type { Exposure, RolloutState } from '../rollout/types.js'

/** What a write does to the route besides recording the state. */
export type RouteChange =
  /** The state only; the weights stay as they are. */
  | { kind: 'state' }
  /**
   * Set the canary's weight (the stable side gets the rest), adding the canary's destination if
   * needed, and give the canary exactly `exposure` (a match route, a mirror; none: whatever a
   * previous step left is removed). A router that cannot route by request or mirror throws.
   */
  | { kind: 'split'; canaryWeight: number; exposure?: Exposure }
  /** Take the canary to weight 0, but only where it still has a destination (re-entrant rollback); removes any exposure. */
  | { kind: 'canary-to-zero' }
  /** Remove one side's destination from the route (the other side then carries 100 %); removes any exposure. */
  | { kind: 'remove-destination'; side: 'stable' | 'canary' }

export interface WriteOptions {
  /**
   * The canary weight this rollout last set: when the live route shows another, someone else
   * changed it and the write throws DriftError instead.
   */
  expectCanaryWeight?: number
  /** The exposure this rollout last set: when the live route does not show it, the write throws DriftError. */
  expectExposure?: Exposure
}

/** The route as it is now. */
export interface RouteView {
  /** The canary's weight, 0 when it has no destination. */
  canaryWeight: number
  /** Whether the canary still has a destination on the route. */
  canaryRouted: boolean
  /** Whether a match route or a mirror still sends requests to the canary (absent: none). */
  exposed?: boolean
}

/** Whether removeBackend removed the subset or found none. */
export type SubsetRemoval = 'removed' | 'absent'

export interface TrafficRouter {
  /** What the router writes, for messages: `VirtualService shop/reviews`. */
  readonly name: string
  /** The rollout state recorded with the route, if any. */
  readState(): Promise<RolloutState | undefined>
  /** The route's split for the rollout in `state`. */
  readRoute(state: RolloutState): Promise<RouteView>
  /**
   * One guarded write of `change` and `next` together; returns the state as written (stamped with
   * this run's epoch and the time). Throws FencedError when a later lock holder has written, and
   * DriftError when the route no longer shows what this rollout last set.
   */
  write(next: RolloutState, change?: RouteChange, opts?: WriteOptions): Promise<RolloutState>
  /** Give the canary its backend (make before break); nothing when it has one. */
  addCanaryBackend(state: RolloutState, labels: Record<string, string>): Promise<void>
  /**
   * The routes other than this rollout's own that send traffic to `subset` of our host, wherever
   * the credentials can look; `blind` says where they could not (other namespaces).
   */
  routesServing(state: RolloutState, subset: string): Promise<{ routes: string[]; blind?: string }>
  /** Remove a version's backend (ask routesServing first: a route still using it loses its pods). */
  removeBackend(subset: string): Promise<SubsetRemoval>
  /**
   * Server-side dry runs of a deploy's first writes: the canary's backend, then the first split
   * with `state` (when `canaryWeight` is given; with the first step's exposure when it has one).
   * Nothing is stored; says which objects were found.
   */
  dryRunStart(state: RolloutState, labels: Record<string, string>, canaryWeight?: number): Promise<{ backend: boolean; route: boolean }>
  /** How a person undoes the routing of `state` by hand, when the rollback itself could not. */
  manualRollback(state: RolloutState): { routing: string[]; clearState: string }
}

/**
 * Whether a route's read-back weights show `change` done: the canary at the weight set, the canary
 * at 0 or gone, the removed side gone.
 */
export function splitShows(
  split: { canary: number; canaryPresent: boolean; stablePresent: boolean },
  change: Exclude<RouteChange, { kind: 'state' }>
): boolean {
  switch (change.kind) {
    case 'split':
      return split.canaryPresent && split.canary === change.canaryWeight
    case 'canary-to-zero':
      return !split.canaryPresent || split.canary === 0
    case 'remove-destination':
      return change.side === 'stable' ? !split.stablePresent : !split.canaryPresent
  }
}

/** A route as people name it: `"reviews"` by name, `#0` by position, `tcp #0` for a TCP route. */
export function routeLabel(s: Pick<RolloutState, 'route'>): string {
  if (s.route.section === 'tcp') return `tcp #${s.route.index}`
  return s.route.name ? `"${s.route.name}"` : `#${s.route.index}`
}

/** How messages name a version's backend: `subset v2`, or `Service reviews-v2` when the route names versions by Service. */
export function backendLabel(s: Pick<RolloutState, 'backends'>, name: string): string {
  return s.backends === 'services' ? `Service ${name}` : `subset ${name}`
}

/** Where a version's backend lives, for messages: `DestinationRule reviews`, or `namespace shop` for a Service. */
export function backendHome(s: Pick<RolloutState, 'backends' | 'destinationRule'>, namespace: string): string {
  return s.backends === 'services' ? `namespace ${namespace}` : `DestinationRule ${s.destinationRule}`
}
