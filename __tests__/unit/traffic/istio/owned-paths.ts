/**
 * What istio-canary owns in an object, cut out so the rest can be compared: the destination list of
 * one route and the state annotation of a VirtualService; named subsets of a DestinationRule.
 */
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../../src/rollout/state-codec.js'

/** A copy of `vs` without route `routeIndex`'s `route` list and without the state annotation. */
export function vsOutsideOwned(vs: KubeObject, routeIndex: number): KubeObject {
  const copy = structuredClone(vs)
  delete copy.spec.http[routeIndex].route
  const annotations = copy.metadata.annotations
  if (annotations) {
    delete annotations[STATE_ANNOTATION]
    if (Object.keys(annotations).length === 0) delete copy.metadata.annotations
  }
  return copy
}

/** A copy of `dr` without the subsets named `owned` (and without `subsets` once it is empty). */
export function drOutsideOwned(dr: KubeObject, owned: string[]): KubeObject {
  const copy = structuredClone(dr)
  copy.spec.subsets = (copy.spec.subsets ?? []).filter((s: { name: string }) => !owned.includes(s.name))
  if (copy.spec.subsets.length === 0) delete copy.spec.subsets
  return copy
}

/** The destination of `subset` in route `routeIndex` without its weight: what must survive a split. */
export function destinationWithoutWeight(vs: KubeObject, routeIndex: number, subset: string): unknown {
  const found = vs.spec.http[routeIndex].route.find((d: { destination: { subset?: string } }) => d.destination.subset === subset)
  if (!found) return undefined
  const { weight: _weight, ...rest } = found
  return rest
}
