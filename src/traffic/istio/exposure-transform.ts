/**
 * Pure transforms of what a match or mirror step adds to a VirtualService: a route of the action's
 * own, inserted just before the driven route, that sends only the matching requests to the canary;
 * or a mirror on the driven route that copies a share of its requests to the canary (Envoy drops
 * the mirrored responses). `withExposure` makes the VirtualService show exactly the exposure asked
 * for (none: both removed), so every write of the rollout, on every path, also removes what a
 * previous step, run or version left.
 */
import { ConflictError, quote } from '../../errors.js'
import type { KubeObject } from '../../kube/kube-object.js'
import type { Exposure, RequestMatch } from '../../rollout/types.js'
import { objectRef, routeRef } from './object-ref.js'
import { httpRoutes, isOwnedRoute, OWNED_ROUTE_PREFIX, type HttpRoute, type RouteDestination } from './virtual-service-transform.js'

/** Fields of the driven route a match route does not copy: it has its own name, match and destination, and mirrors nothing. */
const NOT_COPIED = new Set(['name', 'match', 'route', 'mirror', 'mirrorPercentage', 'mirrorPercent', 'mirror_percent', 'mirrors'])

/** The name of the match route of the canary subset `canarySubset`. */
export function matchRouteName(canarySubset: string): string {
  return `${OWNED_ROUTE_PREFIX}${canarySubset}`
}

/** An Istio StringMatch for one header; a cookie is matched in the Cookie header by a regex. */
export function headerCondition(m: RequestMatch): { header: string; condition: { exact: string } | { regex: string } } {
  if (m.on === 'header') return { header: m.name, condition: m.op === 'exact' ? { exact: m.value } : { regex: m.value } }
  const value = m.op === 'exact' ? escapeRegex(m.value) : `(?:${m.value})`
  // Envoy matches the whole header value: the cookie may be first, or follow another and "; "
  // (or ", ", should several Cookie headers reach the match joined by commas).
  return { header: 'cookie', condition: { regex: `^(.*?[;,]\\s*)?${escapeRegex(m.name)}=${value}([;,].*)?$` } }
}

/**
 * The VirtualService with exactly `exposure` for the driven route at `routeIndex` (a real index into
 * spec.http): every route of ours removed, our mirror (the one to `canarySubset`) removed, then the
 * asked one added. Throws ConflictError when the driven route already has a mirror of someone else's,
 * or already matches the header a match step needs: the result would not do what the step says.
 */
export function withExposure(
  vs: KubeObject,
  routeIndex: number,
  host: string,
  canarySubset: string,
  exposure: Exposure | undefined
): KubeObject {
  const all = httpRoutes(vs)
  const driven = all[routeIndex]
  if (driven === undefined || isOwnedRoute(driven)) throw new RangeError(`${objectRef(vs)} has no driven http route #${routeIndex}.`)
  const where = `${routeRef(driven, routeIndex)} of ${objectRef(vs)}`
  let route: HttpRoute = driven
  if (isOurMirror(route, canarySubset)) {
    route = { ...route }
    delete route.mirror
    delete route.mirrorPercentage
  }
  const dests: RouteDestination[] = Array.isArray(route.route) ? route.route : []
  const template = dests.find((d) => d.destination?.subset === canarySubset) ?? dests[0]
  const canaryDestination = { ...(template?.destination ?? { host }), subset: canarySubset }
  if (exposure?.kind === 'mirror') {
    if (route.mirror !== undefined || (Array.isArray(route.mirrors) && route.mirrors.length > 0)) {
      throw new ConflictError(
        `${where} already mirrors to ${quote(JSON.stringify(route.mirror ?? route.mirrors))}; a mirror step needs the route's mirror: ` +
          `expected no mirror of its own (remove it, or use weight steps).`
      )
    }
    route = { ...route, mirror: canaryDestination, mirrorPercentage: { value: exposure.percent } }
  }
  const http = all.filter((r, i) => i === routeIndex || !isOwnedRoute(r))
  const at = http.indexOf(driven)
  http[at] = route
  if (exposure?.kind === 'match') {
    const { header, condition } = headerCondition(exposure.match)
    const matches: Array<Record<string, unknown>> = Array.isArray(driven.match) && driven.match.length > 0 ? driven.match : [{}]
    const narrowed = matches.map((m) => {
      const headers = (m.headers ?? {}) as Record<string, unknown>
      if (header in headers) {
        throw new ConflictError(
          `${where} already matches header ${quote(header)}; a match step adds its own condition on that header: expected a route that does not match on it.`
        )
      }
      return { ...m, headers: { ...headers, [header]: condition } }
    })
    const copied = Object.fromEntries(Object.entries(driven).filter(([k]) => !NOT_COPIED.has(k)))
    const own: HttpRoute = { name: matchRouteName(canarySubset), match: narrowed, ...copied, route: [{ destination: canaryDestination }] }
    http.splice(at, 0, own)
  }
  if (http.length === all.length && http.every((r, i) => r === all[i])) return vs
  return { ...vs, metadata: { ...vs.metadata }, spec: { ...vs.spec, http } }
}

/**
 * Why the match and mirror steps of `exposures` cannot be applied to the driven route (its own
 * mirror, or a match on the same header), or undefined: asked before any write.
 */
export function exposureRefusal(
  vs: KubeObject,
  routeIndex: number,
  host: string,
  canarySubset: string,
  exposures: Exposure[]
): string | undefined {
  for (const e of exposures) {
    try {
      withExposure(vs, routeIndex, host, canarySubset, e)
    } catch (err) {
      if (err instanceof ConflictError) return err.message
      throw err
    }
  }
  return undefined
}

/** Whether the VirtualService has a route of ours, or the driven route our mirror. */
export function hasExposure(vs: KubeObject, routeIndex: number, canarySubset: string): boolean {
  const http = httpRoutes(vs)
  return http.some(isOwnedRoute) || isOurMirror(http[routeIndex], canarySubset)
}

/** Whether the VirtualService shows exactly `exposure` (none included) for the driven route. */
export function showsExposure(
  vs: KubeObject,
  routeIndex: number,
  host: string,
  canarySubset: string,
  exposure: Exposure | undefined
): boolean {
  try {
    return canonical(withExposure(vs, routeIndex, host, canarySubset, exposure).spec) === canonical(vs.spec)
  } catch {
    return false
  }
}

// JSON with sorted keys: the apiserver returns a custom resource's fields in its own order.
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v
  )
}

function isOurMirror(route: HttpRoute | undefined, canarySubset: string): boolean {
  const mirror = route?.mirror as { subset?: unknown } | undefined
  return mirror?.subset === canarySubset
}

/** Escape RE2 metacharacters: the value is matched literally. */
function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')
}
