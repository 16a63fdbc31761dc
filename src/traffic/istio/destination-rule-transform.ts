/**
 * Pure DestinationRule transforms. We own one subset (the canary's; at promotion, the old stable's
 * removal); the host, trafficPolicy and every other subset are carried through untouched. Results
 * share unchanged subtrees with the input: treat both as immutable.
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { PreflightError, quote } from '../../errors.js'
import { labelString, objectRef } from './object-ref.js'

/** One DestinationRule subset: fields we do not model (trafficPolicy, ...) are kept. */
export interface Subset {
  name: string
  labels?: Record<string, string>
  [key: string]: unknown
}

/** The subsets of spec.subsets (empty when there are none). */
export function subsetsOf(dr: KubeObject): Subset[] {
  const subsets: unknown = dr.spec?.subsets
  return Array.isArray(subsets) ? (subsets as Subset[]) : []
}

/** The subset named `name`, if any. */
export function findSubset(dr: KubeObject, name: string): Subset | undefined {
  return subsetsOf(dr).find((s) => s.name === name)
}

/** Whether the DestinationRule has a subset named `name`. */
export function hasSubset(dr: KubeObject, name: string): boolean {
  return findSubset(dr, name) !== undefined
}

/** Whether two label maps are the same set of key=value pairs. */
export function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ea = Object.entries(a ?? {})
  const bb = b ?? {}
  return ea.length === Object.keys(bb).length && ea.every(([k, v]) => Object.hasOwn(bb, k) && bb[k] === v)
}

/**
 * Append subset `name` selecting `labels`. Returns the input unchanged when it is already there with
 * the same labels (a resumed rollout); throws PreflightError when it is there with other labels.
 */
export function withSubset(dr: KubeObject, name: string, labels: Record<string, string>): KubeObject {
  const existing = findSubset(dr, name)
  if (existing) {
    if (sameLabels(existing.labels, labels)) return dr
    throw new PreflightError(
      `${objectRef(dr)} already has subset ${quote(name)} with labels ${quote(labelString(existing.labels))}; ` +
        `expected labels ${quote(labelString(labels))}. Rename the canary subset or remove the other one.`
    )
  }
  return withSubsets(dr, [...subsetsOf(dr), { name, labels: { ...labels } }])
}

/** Remove subset `name` (input unchanged when absent); `subsets` is dropped when it becomes empty. */
export function withoutSubset(dr: KubeObject, name: string): KubeObject {
  if (!hasSubset(dr, name)) return dr
  return withSubsets(
    dr,
    subsetsOf(dr).filter((s) => s.name !== name)
  )
}

function withSubsets(dr: KubeObject, subsets: Subset[]): KubeObject {
  const spec = { ...dr.spec, subsets }
  if (subsets.length === 0) delete spec.subsets
  return { ...dr, metadata: { ...dr.metadata }, spec }
}
