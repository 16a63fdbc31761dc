/**
 * Preflight of a host-level split over already-fetched objects: the route whose destinations are
 * per-version Services (no subsets), and the Services' checks (../version-service-checks.ts).
 * Pure: throws PreflightError naming the object, quoting the value and saying what was expected.
 * Loaded only for a host-level split (commands/service-split.ts imports it lazily).
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { PreflightError, quote } from '../../errors.js'
import { isInFlight } from '../../rollout/planner.js'
import type { RolloutState } from '../../rollout/types.js'
import { checkVersionServices, type VersionServicesCheck, type VersionServicesInput } from '../version-service-checks.js'
import { objectRef, routeRef } from './object-ref.js'
import { findRoute } from './route-topology.js'
import { parseServiceHost } from './service-host.js'
import { destinationName, effectiveWeight, readSplit, type DestinationKey } from './virtual-service-transform.js'

/** What resolveServiceSplit looks at besides the per-version Service checks' own input. */
export interface ServiceSplitInput extends Omit<VersionServicesInput, 'where' | 'stableName'> {
  vs: KubeObject
  routeName?: string
  existingState?: RolloutState
}

/** The route and per-version Services of a host-level split, and where the route stands now. */
export interface ServiceSplit extends VersionServicesCheck {
  routeIndex: number
  routeName?: string
  /** The stable destination's host as written in the route. */
  host: string
  stableName: string
  resuming: boolean
  currentSplit: { stable: number; canary: number }
}

/** The Service names resolveServiceSplit will need to read, before it can be called. */
export function serviceSplitNames(vs: KubeObject, namespace: string, routeName?: string, state?: RolloutState): string[] {
  const inFlight = state && isInFlight(state) ? state : undefined
  if (inFlight) return [inFlight.stable.subset, inFlight.canary.subset]
  try {
    const { route } = findRoute({ vs, routeName }, objectRef(vs, namespace), undefined)
    const key: DestinationKey = { by: 'service', namespace }
    return (route.route ?? []).map((d) => destinationName(d, key)).filter((n): n is string => n !== undefined)
  } catch {
    return []
  }
}

/** Resolve and check a host-level split (per-version Services, no subsets); throws PreflightError. */
export function resolveServiceSplit(input: ServiceSplitInput): ServiceSplit {
  const { vs, namespace } = input
  const vsRef = objectRef(vs, namespace)
  const state = isInFlight(input.existingState) ? input.existingState : undefined
  const { route, routeIndex } = findRoute({ vs, routeName: input.routeName }, vsRef, state)
  const where = `${routeRef(route, routeIndex)} of ${vsRef}`
  const dests = Array.isArray(route.route) ? route.route : []
  const key: DestinationKey = { by: 'service', namespace }
  for (const d of dests) {
    const h = d.destination?.host
    const svc = typeof h === 'string' ? parseServiceHost(h, namespace) : undefined
    if (!svc || svc.namespace !== namespace || svc.form === 'partial' || d.destination?.subset !== undefined) {
      throw new PreflightError(
        `${where} sends traffic to ${quote(d.destination?.subset === undefined ? h : `${h} subset ${d.destination.subset}`)}; a host-level split ` +
          `expects every destination to be a Service of namespace ${quote(namespace)} without a subset (${quote('<service>')} or ` +
          `${quote(`<service>.${namespace}.svc.cluster.local`)}), one per version.`
      )
    }
  }
  let stableName: string
  if (state) {
    stableName = state.stable.subset
    if (!dests.some((d) => destinationName(d, key) === stableName || destinationName(d, key) === state.canary.subset)) {
      throw new PreflightError(
        `${where} has no destination for Service ${quote(stableName)} or ${quote(state.canary.subset)}, yet the rollout ${quote(state.id)} ` +
          `recorded on it is in phase ${quote(state.phase)}; expected the route it left. Restore the route, or clear the state annotation and start again.`
      )
    }
  } else {
    const live = dests.filter((d) => effectiveWeight(d, dests.length) > 0)
    if (live.length !== 1) {
      const shown = dests.map((d) => `${d.destination?.host}=${d.weight ?? 'unset'}`).join(', ')
      throw new PreflightError(
        `${where} ${live.length === 0 ? 'gives no destination a weight above 0' : 'already splits traffic and no rollout is in progress on it'} ` +
          `(${quote(shown)}); expected one destination, the stable version's Service, carrying all traffic.`
      )
    }
    stableName = destinationName(live[0], key)!
  }
  const stableHost = dests.find((d) => destinationName(d, key) === stableName)?.destination?.host ?? stableName
  const checked = checkVersionServices({
    ...input,
    where,
    stableName,
    ...(state ? { canaryServiceInput: state.canary.subset } : {})
  })
  const split = readSplit(vs, routeIndex, stableName, checked.canaryName, undefined, key)
  return {
    ...checked,
    ...(state ? { stableVersion: state.stable.version } : {}),
    routeIndex,
    ...(typeof route.name === 'string' ? { routeName: route.name } : {}),
    host: stableHost,
    stableName,
    resuming: state !== undefined,
    currentSplit: { stable: split.stable, canary: split.canary }
  }
}
