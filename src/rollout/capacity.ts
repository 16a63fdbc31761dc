/**
 * The canary's capacity: how many replicas it runs at each weight, and, when the stable version has
 * a HorizontalPodAutoscaler, the bounds of the canary's own. Pure arithmetic and decisions; the
 * commands carry them out (commands/canary-capacity.ts) and preflight checks them against the
 * namespace's ResourceQuotas and PodDisruptionBudgets before any write.
 */
import type { CanaryReplicasMode, HpaBounds } from './capacity-record.js'

export { CANARY_REPLICAS_MODES, managesCapacity, type CanaryReplicasMode, type CapacityRecord, type HpaBounds } from './capacity-record.js'

/** What the canary must have before it carries a weight. */
export type CapacityTarget =
  /** Nothing beyond the manifest: no HPA, mode `manifest`. */
  | { kind: 'as-applied' }
  /** .spec.replicas set by the action (no HPA exists for the canary). */
  | { kind: 'replicas'; replicas: number }
  /** The canary's HPA gets these bounds; the HPA controller sets .spec.replicas, never the action. */
  | { kind: 'hpa'; min: number; max: number }

/** ceil(stable × weight / 100), at least 1: the canary's share of the stable's pods at `weight` percent. */
export function proportionalReplicas(stableReplicas: number, weight: number): number {
  const stable = Math.max(0, Math.floor(stableReplicas))
  const w = Math.min(100, Math.max(0, weight))
  return Math.max(1, Math.ceil((stable * w) / 100))
}

export interface CapacityInput {
  mode: CanaryReplicasMode
  /** The weight the canary is about to carry (100 on promotion). */
  weight: number
  /** The stable Deployment's .spec.replicas now (with an HPA: what the HPA made of it). */
  stableReplicas: number
  /** The stable's HPA bounds, when it has one: the canary then gets an HPA of its own. */
  stableHpa?: HpaBounds
  /** The canary's current replicas (no HPA) or HPA bounds: capacity only rises while traffic is on it. */
  current?: { replicas?: number; hpa?: HpaBounds }
}

/**
 * The canary's capacity before it carries `weight`. Mode `proportional` follows the weight; with an
 * HPA, its minimum follows the stable's current replicas (at least the stable's minimum) and its
 * maximum the stable's maximum, both scaled by the weight; mode `manifest` with an HPA copies the
 * stable's bounds. At 100 the canary is as large as the stable, so the stable can leave. Never lower
 * than what the canary has now: traffic is on it.
 */
export function canaryCapacity(input: CapacityInput): CapacityTarget {
  const { mode, weight, stableReplicas, stableHpa, current } = input
  if (stableHpa) {
    const stableMin = Math.max(1, stableHpa.min)
    const stableMax = Math.max(stableMin, stableHpa.max)
    // The stable serves today's load with its current replicas, within its own bounds.
    const serving = Math.min(stableMax, Math.max(stableMin, stableReplicas))
    const scaled =
      mode === 'proportional' || weight >= 100
        ? { min: proportionalReplicas(serving, weight), max: proportionalReplicas(stableMax, weight) }
        : { min: stableMin, max: stableMax }
    const min = Math.max(scaled.min, current?.hpa?.min ?? 0)
    const max = Math.max(min, scaled.max, current?.hpa?.max ?? 0)
    return { kind: 'hpa', min, max }
  }
  if (mode === 'manifest') return { kind: 'as-applied' }
  return { kind: 'replicas', replicas: Math.max(proportionalReplicas(stableReplicas, weight), current?.replicas ?? 0) }
}

/** After promotion the new version's HPA takes the stable's bounds (the HPA may then scale it down). */
export function promotedBounds(stableHpa: HpaBounds): HpaBounds {
  const min = Math.max(1, stableHpa.min)
  return { min, max: Math.max(min, stableHpa.max) }
}

/** The replicas the canary must have available for a target (the HPA's minimum with an HPA). */
export function requiredReplicas(target: CapacityTarget, manifestReplicas: number): number {
  switch (target.kind) {
    case 'as-applied':
      return manifestReplicas
    case 'replicas':
      return target.replicas
    case 'hpa':
      return target.min
  }
}

/** Whether the action leaves .spec.replicas out of its apply of the canary manifest (it sets them another way). */
export function appliesWithoutReplicas(mode: CanaryReplicasMode, hasHpa: boolean): boolean {
  return mode === 'proportional' || hasHpa
}

export interface CapacityNeeds {
  /** Replicas the canary needs before its first traffic. */
  first: number
  /** The most it needs at once, while the stable still runs (at 100 %, before the stable leaves). */
  peak: number
  /** The weight of the first step (what `first` is for). */
  firstWeight: number
}

/** The canary's replicas over a schedule, for preflight's quota and disruption-budget checks. */
export function capacityNeeds(input: {
  mode: CanaryReplicasMode
  weights: number[]
  stableReplicas: number
  stableHpa?: HpaBounds
  manifestReplicas: number
}): CapacityNeeds {
  const firstWeight = input.weights[0] ?? 100
  const at = (weight: number): number =>
    requiredReplicas(
      canaryCapacity({ mode: input.mode, weight, stableReplicas: input.stableReplicas, stableHpa: input.stableHpa }),
      input.manifestReplicas
    )
  const all = input.weights.length > 0 ? input.weights.map(at) : [at(100)]
  return { first: all[0]!, peak: Math.max(...all), firstWeight }
}
