/**
 * Pure VirtualService transforms. We own the weights and destinations of one http route and one
 * annotation; every other field is carried through untouched. Results share the subtrees they do
 * not change with the input (only the route's destination list and metadata are copied), so each
 * call is O(size of the route): treat inputs and results as immutable.
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { ConflictError, quote } from '../../errors.js'
import { objectRef, routeRef } from './object-ref.js'
import { parseServiceHost } from './service-host.js'

/**
 * How a route's destinations name a version: a DestinationRule subset of one host (the default),
 * or a per-version Service of `namespace` as the destination's host, without a subset.
 */
export type DestinationKey = { by: 'subset' } | { by: 'service'; namespace: string }

const BY_SUBSET: DestinationKey = { by: 'subset' }

/** The version name a destination carries under `key`: its subset, or its per-version Service. */
export function destinationName(d: RouteDestination, key: DestinationKey = BY_SUBSET): string | undefined {
  if (key.by === 'subset') return d.destination?.subset
  const host = d.destination?.host
  if (typeof host !== 'string' || d.destination?.subset !== undefined) return undefined
  const svc = parseServiceHost(host, key.namespace)
  return svc && svc.form !== 'partial' && svc.namespace === key.namespace ? svc.name : undefined
}

/** A copy of `template` naming `name` instead: its subset, or its host in the same form. */
function renamed(template: RouteDestination, name: string, key: DestinationKey): RouteDestination {
  const added = structuredClone(template)
  if (key.by === 'subset') {
    added.destination = { ...added.destination, subset: name }
    return added
  }
  const host = typeof added.destination?.host === 'string' ? added.destination.host : name
  added.destination = { ...added.destination, host: [name, ...host.split('.').slice(1)].join('.') }
  return added
}

/** One `HTTPRouteDestination`: fields we do not model (headers, ...) are kept. */
export interface RouteDestination {
  destination?: { host?: string; subset?: string; [key: string]: unknown }
  weight?: number
  [key: string]: unknown
}

/** One `HTTPRoute`: fields we do not model (match, retries, mirror, ...) are kept. */
export interface HttpRoute {
  name?: string
  route?: RouteDestination[]
  delegate?: unknown
  [key: string]: unknown
}

/** The stored weights of the stable and canary subsets in one route. */
export interface RouteSplit {
  stable: number
  canary: number
  canaryPresent: boolean
  stablePresent: boolean
}

/** Options of withoutDestination. */
export interface RemoveDestinationOptions {
  /**
   * When one destination remains, drop its `weight` field (the seed's original form) instead of
   * writing `weight: 100`. Either form is valid; use it only when the original had no weight.
   */
  omitWeight?: boolean
  /** The route is in spec.tcp. */
  section?: RouteSection
  /** How destinations name versions (default: by subset). */
  key?: DestinationKey
}

/** Which list of routes: spec.http (the default) or spec.tcp (weighted TCP destinations). */
export type RouteSection = 'http' | 'tcp'

/** The routes of spec.http (empty when there are none). */
export function httpRoutes(vs: KubeObject): HttpRoute[] {
  return routesOf(vs, 'http')
}

/** The routes of spec.http or spec.tcp (empty when there are none); a TCP route has no name. */
export function routesOf(vs: KubeObject, section: RouteSection = 'http'): HttpRoute[] {
  const list: unknown = vs.spec?.[section]
  return Array.isArray(list) ? (list as HttpRoute[]) : []
}

/**
 * Routes whose name starts with this are the action's own (a match step's route, inserted before
 * the driven one): every write makes them what the rollout asks for, and a route recorded by
 * position counts only the routes that are not ours.
 */
export const OWNED_ROUTE_PREFIX = 'istio-canary-'

/** Whether an http route is one the action inserted (and removes). */
export function isOwnedRoute(route: HttpRoute | undefined): boolean {
  return typeof route?.name === 'string' && route.name.startsWith(OWNED_ROUTE_PREFIX)
}

/** Where a rollout's route is: by name when it has one, else by position; in spec.tcp when `section` says so. */
export interface RouteRef {
  index: number
  name?: string
  section?: RouteSection
}

/** The index of the route `ref` points at (by name, else by index); -1 when there is none. */
export function routeIndexOf(vs: KubeObject, ref: RouteRef): number {
  const http = routesOf(vs, ref.section)
  if (ref.name !== undefined) return http.findIndex((r) => r.name === ref.name)
  if (!Number.isInteger(ref.index) || ref.index < 0) return -1
  // The position among the routes that are not ours: an inserted match route does not move it.
  let seen = -1
  for (let i = 0; i < http.length; i++) {
    if (!isOwnedRoute(http[i]) && ++seen === ref.index) return i
  }
  return -1
}

/** The position a rollout records for the route at real index `index`: among the routes that are not ours. */
export function routePosition(vs: KubeObject, index: number): number {
  return index - httpRoutes(vs).slice(0, index).filter(isOwnedRoute).length
}

/** The short name of the first destination host of any http route (`reviews` of `reviews.shop.svc`). */
export function firstDestinationHost(vs: KubeObject): string | undefined {
  for (const route of httpRoutes(vs)) {
    for (const d of route.route ?? []) {
      const host: unknown = d.destination?.host
      if (typeof host === 'string') return host.split('.')[0]
    }
  }
  return undefined
}

/** Whether any route of any kind (http, tcp, tls) still sends traffic to `subset`. */
export function referencesSubset(vs: KubeObject, subset: string): boolean {
  const text = JSON.stringify({ http: vs.spec?.http ?? [], tcp: vs.spec?.tcp ?? [], tls: vs.spec?.tls ?? [] })
  return text.includes(`"subset":${JSON.stringify(subset)}`)
}

/**
 * The weight a destination gets as Istio reads it: a lone destination takes all traffic whatever
 * its weight; otherwise an omitted weight is 0.
 */
export function effectiveWeight(dest: RouteDestination, destinationCount: number): number {
  if (destinationCount === 1) return 100
  return typeof dest.weight === 'number' ? dest.weight : 0
}

/** The stored weights of `stableSubset` and `canarySubset` in route `routeIndex`. */
export function readSplit(
  vs: KubeObject,
  routeIndex: number,
  stableSubset: string,
  canarySubset: string,
  section: RouteSection = 'http',
  key: DestinationKey = BY_SUBSET
): RouteSplit {
  const dests = destinationsAt(vs, routeIndex, section)
  const is = (d: RouteDestination, name: string): boolean => destinationName(d, key) === name
  const weightOf = (subset: string): number =>
    dests.filter((d) => is(d, subset)).reduce((sum, d) => sum + effectiveWeight(d, dests.length), 0)
  return {
    stable: weightOf(stableSubset),
    canary: weightOf(canarySubset),
    canaryPresent: dests.some((d) => is(d, canarySubset)),
    stablePresent: dests.some((d) => is(d, stableSubset))
  }
}

/**
 * Set route `routeIndex` to stable = 100 - canaryWeight, canary = canaryWeight, both written
 * explicitly (0 included: Envoy drops a 0-weight destination, so it can stay during a rollback until
 * removed). A missing destination is added as a copy of the other one (port, headers kept) with only
 * `subset` changed, or built from `host` when the route has neither. Throws ConflictError when another
 * destination of the route still carries traffic: the split would not be what we wrote.
 */
export function withSplit(
  vs: KubeObject,
  routeIndex: number,
  host: string,
  stableSubset: string,
  canarySubset: string,
  canaryWeight: number,
  section: RouteSection = 'http',
  key: DestinationKey = BY_SUBSET
): KubeObject {
  if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
    throw new RangeError(`Canary weight ${quote(String(canaryWeight))} is invalid: expected an integer between 0 and 100.`)
  }
  if (stableSubset === canarySubset) {
    throw new RangeError(`Stable and canary subsets must differ (both are ${quote(stableSubset)}).`)
  }
  const route = routeAt(vs, routeIndex, section)
  const dests = structuredClone(route.route ?? [])
  const is = (d: RouteDestination, name: string): boolean => destinationName(d, key) === name
  const ours = (d: RouteDestination): boolean => is(d, stableSubset) || is(d, canarySubset)
  const others = dests.filter((d) => !ours(d) && effectiveWeight(d, dests.length) > 0)
  if (others.length > 0) {
    const list = others.map((d) => `${quote(d.destination?.subset ?? d.destination?.host)} (weight ${d.weight ?? 'unset'})`)
    throw new ConflictError(
      `${routeRef(route, routeIndex, section)} of ${objectRef(vs)} sends traffic to ${list.join(', ')} besides ${key.by === 'subset' ? 'subsets' : 'Services'} ` +
        `${quote(stableSubset)} and ${quote(canarySubset)}: expected only those two to carry weight. ` +
        `Someone changed the route; set the other destinations' weight to 0 or remove them.`
    )
  }
  const template = dests.find((d) => is(d, stableSubset)) ?? dests.find(ours)
  const ensure = (subset: string): RouteDestination[] => {
    const found = dests.filter((d) => is(d, subset))
    if (found.length > 0) return found
    const added = renamed(template ?? { destination: { host } }, subset, key)
    dests.push(added)
    return [added]
  }
  const stable = ensure(stableSubset)
  const canary = ensure(canarySubset)
  // A subset listed twice: the first entry carries the weight, the rest none.
  stable.forEach((d, i) => (d.weight = i === 0 ? 100 - canaryWeight : 0))
  canary.forEach((d, i) => (d.weight = i === 0 ? canaryWeight : 0))
  return withDestinations(vs, routeIndex, dests, section)
}

/**
 * Remove the destination(s) of `subset` from route `routeIndex` (unchanged input when absent). When
 * one destination remains it gets `weight: 100`, or no weight with `omitWeight`. Refuses to remove a
 * destination that still carries traffic (set its weight to 0 and wait first) or the last one.
 */
export function withoutDestination(vs: KubeObject, routeIndex: number, subset: string, opts: RemoveDestinationOptions = {}): KubeObject {
  const section = opts.section ?? 'http'
  const route = routeAt(vs, routeIndex, section)
  const dests = route.route ?? []
  const removed = dests.filter((d) => destinationName(d, opts.key) === subset)
  if (removed.length === 0) return vs
  const kept = dests.filter((d) => destinationName(d, opts.key) !== subset)
  const where = `${routeRef(route, routeIndex, section)} of ${objectRef(vs)}`
  if (kept.length === 0) {
    throw new Error(`Cannot remove subset ${quote(subset)} from ${where}: it is the only destination, the route needs one.`)
  }
  const live = removed.find((d) => effectiveWeight(d, dests.length) > 0)
  if (live) {
    throw new Error(
      `Cannot remove subset ${quote(subset)} from ${where}: it still has weight ${live.weight ?? 'unset'}; ` +
        `expected weight 0 (set the weight to 0 and wait for propagation before removing the destination).`
    )
  }
  const next = [...kept]
  if (next.length === 1) {
    const only = structuredClone(next[0])
    if (opts.omitWeight) delete only.weight
    else only.weight = 100
    next[0] = only
  }
  return withDestinations(vs, routeIndex, next, section)
}

/** Set annotation `annotationKey` to `stateJson`, or remove it when undefined; nothing else changes. */
export function withState(vs: KubeObject, annotationKey: string, stateJson: string | undefined): KubeObject {
  const current = vs.metadata.annotations
  if (stateJson === undefined && (current === undefined || !(annotationKey in current))) return vs
  const annotations = { ...current }
  if (stateJson === undefined) delete annotations[annotationKey]
  else annotations[annotationKey] = stateJson
  const metadata: KubeObject['metadata'] = { ...vs.metadata, annotations }
  if (Object.keys(annotations).length === 0) delete metadata.annotations
  return { ...vs, metadata }
}

function routeAt(vs: KubeObject, routeIndex: number, section: RouteSection): HttpRoute {
  const route = routesOf(vs, section)[routeIndex]
  if (!Number.isInteger(routeIndex) || route === undefined) {
    throw new RangeError(`${objectRef(vs)} has no ${section} route #${routeIndex} (it has ${routesOf(vs, section).length}).`)
  }
  if (!Array.isArray(route.route)) {
    throw new RangeError(`${routeRef(route, routeIndex, section)} of ${objectRef(vs)} has no 'route' destination list.`)
  }
  return route
}

function destinationsAt(vs: KubeObject, routeIndex: number, section: RouteSection): RouteDestination[] {
  return routeAt(vs, routeIndex, section).route ?? []
}

// Path copy: new metadata, spec, route list and route; every other subtree is shared with the input.
function withDestinations(vs: KubeObject, routeIndex: number, dests: RouteDestination[], section: RouteSection): KubeObject {
  const routes = [...routesOf(vs, section)]
  routes[routeIndex] = { ...routes[routeIndex], route: dests }
  return { ...vs, metadata: { ...vs.metadata }, spec: { ...vs.spec, [section]: routes } }
}
