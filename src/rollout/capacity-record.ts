/**
 * What a rollout records about the canary's capacity, and the input's modes: small, and loaded at
 * startup (config, state codec); the arithmetic is in capacity.ts, loaded only when needed.
 */

/** Input 'canary-replicas': the manifest's count (today's behaviour), or replicas that follow the weight. */
export const CANARY_REPLICAS_MODES = ['manifest', 'proportional'] as const
export type CanaryReplicasMode = (typeof CANARY_REPLICAS_MODES)[number]

/** Bounds of a HorizontalPodAutoscaler. */
export interface HpaBounds {
  min: number
  max: number
}

/** What the rollout records about capacity (in its state): later runs act on it, whatever their inputs. */
export interface CapacityRecord {
  mode: CanaryReplicasMode
  /** The stable Deployment's HorizontalPodAutoscaler, whose metrics and behaviour the canary's copies. */
  stableHpa?: string
  /** The canary's own HorizontalPodAutoscaler, made by the action (removed on rollback and on retirement). */
  canaryHpa?: string
}

/** Whether the rollout manages the canary's capacity at all (proportional, or an HPA to copy). */
export function managesCapacity(record: CapacityRecord | undefined): boolean {
  return record !== undefined && (record.mode === 'proportional' || record.stableHpa !== undefined)
}
