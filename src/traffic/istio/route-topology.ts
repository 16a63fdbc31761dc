/**
 * Preflight over already-fetched objects: which route we split, which subsets and DestinationRule
 * it uses, and whether the Service and subsets can carry the canary. Pure: no I/O, throws
 * PreflightError naming the object, quoting the value and saying what was expected.
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { labelsMatch } from '../../kube/label-selector.js'
import { PreflightError, quote } from '../../errors.js'
import { isInFlight } from '../../rollout/planner.js'
import type { RolloutState } from '../../rollout/types.js'
import { findSubset, sameLabels, subsetsOf } from './destination-rule-transform.js'
import { labelString, objectRef, routeRef } from './object-ref.js'
import { parseServiceHost, type ServiceHost } from './service-host.js'
import {
  effectiveWeight,
  firstDestinationHost,
  httpRoutes,
  readSplit,
  routeIndexOf,
  routePosition,
  routesOf,
  type RouteSection,
  type HttpRoute,
  type RouteDestination
} from './virtual-service-transform.js'

/** What resolveTopology looks at: the objects as read, and the rollout's inputs. */
export interface TopologyInput {
  vs: KubeObject
  /** Every DestinationRule of the namespace (others are ignored). */
  drs: KubeObject[]
  /** Input 'destination-rule'. */
  destinationRuleName?: string
  /**
   * A VirtualService moved in lockstep with another: input 'destination-rule' names the holder's
   * DestinationRule, so when it is for another host this route's is found by its host instead.
   */
  destinationRuleByHost?: boolean
  /** The Service named by the route host's short name; undefined when it does not exist. */
  service?: KubeObject
  namespace: string
  /** Input 'route'. */
  routeName?: string
  versionLabel: string
  canaryVersion: string
  /** Defaults to canaryVersion. */
  canarySubset?: string
  /** Pod template labels of the canary Deployment. */
  canaryPodLabels: Record<string, string>
  /** The state annotation of the VirtualService, when there is one. */
  existingState?: RolloutState
}

/** The route, subsets and DestinationRule a rollout works on, and where the route stands now. */
export interface Topology {
  /** The route's position among the routes that are not the action's own (what the state records). */
  routeIndex: number
  routeName?: string
  /** `tcp`: the route is in spec.tcp (weighted TCP destinations). */
  section?: 'tcp'
  /** The destination host as written in the route. */
  host: string
  /** The Service the host names. */
  service: ServiceHost
  stableSubset: string
  /** labels[versionLabel] of the stable subset, else its name (from the state when resuming). */
  stableVersion: string
  canarySubset: string
  canaryVersion: string
  destinationRuleName: string
  drApiVersion: string
  /** The canary subset is already in the DestinationRule with labels {versionLabel: canaryVersion}. */
  canarySubsetExists: boolean
  /** existingState is an unfinished rollout: the subsets came from it. */
  resuming: boolean
  currentSplit: { stable: number; canary: number }
}

/** Resolve and check the topology of a rollout; throws PreflightError on the first problem. */
export function resolveTopology(input: TopologyInput): Topology {
  const { vs, namespace } = input
  const vsRef = objectRef(vs, namespace)
  const state = isInFlight(input.existingState) ? input.existingState : undefined

  const { route, routeIndex, section, where, dests } = splitRoute(input, vsRef, state)
  const host = checkDestinations(dests, where, namespace)
  const service = parseServiceHost(host, namespace) as ServiceHost
  const subsets = chooseSubsets(input, dests, where, state)

  // Resuming: the DestinationRule recorded by the rollout, unless input 'destination-rule' names one.
  const drName = input.destinationRuleName ?? state?.destinationRule
  const dr = findDestinationRule({ ...input, destinationRuleName: drName }, service, host, where)
  if (hostOf(dr, namespace)?.form === 'partial') {
    throw new PreflightError(
      `${objectRef(dr, namespace)} is for host ${quote(dr.spec.host)}, which Istio takes literally (it expands only names without a dot), ` +
        `so its subsets do not apply to Service ${service.namespace}/${service.name}; expected host ${quote(service.name)} ` +
        `or ${quote(service.fqdn)}.`
    )
  }
  const { stableVersion, canaryExists } = checkSubsets(input, dr, subsets, where, state)
  checkNoDuplicateSubsets(input, service, dr, subsets)
  checkService(input, service, host)

  const split = readSplit(vs, routeIndex, subsets.stableSubset, subsets.canarySubset, section)
  return {
    routeIndex: section === 'http' ? routePosition(vs, routeIndex) : routeIndex,
    ...(typeof route.name === 'string' && section === 'http' ? { routeName: route.name } : {}),
    ...(section === 'tcp' ? { section } : {}),
    host,
    service,
    stableSubset: subsets.stableSubset,
    stableVersion,
    canarySubset: subsets.canarySubset,
    canaryVersion: subsets.canaryVersion,
    destinationRuleName: dr.metadata.name,
    drApiVersion: dr.apiVersion,
    canarySubsetExists: canaryExists,
    resuming: state !== undefined,
    currentSplit: { stable: split.stable, canary: split.canary }
  }
}

/** The route to split and its destinations: a plain 'route' list, not a delegate, redirect or direct response. */
function splitRoute(
  input: TopologyInput,
  vsRef: string,
  state: RolloutState | undefined
): { route: HttpRoute; routeIndex: number; section: RouteSection; where: string; dests: RouteDestination[] } {
  const { route, routeIndex, section } = findRoute(input, vsRef, state)
  const where = `${routeRef(route, routeIndex, section)} of ${vsRef}`
  if (route.delegate !== undefined) {
    const d = (route.delegate ?? {}) as { name?: string; namespace?: string }
    throw new PreflightError(
      `${where} delegates to VirtualService ${quote(`${d.namespace ?? input.namespace}/${d.name ?? ''}`)}; expected a route with a 'route' destination list. ` +
        `Name the delegate VirtualService in input 'virtual-service' (or this route, as root/route, to follow the delegation).`
    )
  }
  const dests = route.route
  if (!Array.isArray(dests) || dests.length === 0) {
    throw new PreflightError(
      `${where} has no 'route' destinations (it may redirect or return a direct response); ` +
        `expected a route whose 'route' list sends traffic to a subset of one service.`
    )
  }
  return { route, routeIndex, section, where, dests }
}

/** The stable and canary subsets and the canary version. */
interface Subsets {
  stableSubset: string
  canarySubset: string
  canaryVersion: string
}

/** Resuming: the subsets the rollout recorded (the route must still use one); else the route's stable one and the inputs'. */
function chooseSubsets(input: TopologyInput, dests: RouteDestination[], where: string, state: RolloutState | undefined): Subsets {
  let subsets: Subsets
  if (state) {
    subsets = { stableSubset: state.stable.subset, canarySubset: state.canary.subset, canaryVersion: state.canary.version }
    const { stableSubset, canarySubset } = subsets
    if (!dests.some((d) => d.destination?.subset === stableSubset || d.destination?.subset === canarySubset)) {
      throw new PreflightError(
        `${where} has no destination for subset ${quote(stableSubset)} or ${quote(canarySubset)}, yet the rollout ` +
          `${quote(state.id)} recorded on it is in phase ${quote(state.phase)}; expected the route it left. ` +
          `The route was changed by hand: restore it, or clear the state annotation and start again.`
      )
    }
  } else {
    subsets = {
      stableSubset: stableOf(dests, where),
      canaryVersion: input.canaryVersion,
      canarySubset: input.canarySubset ?? input.canaryVersion
    }
  }
  if (subsets.canarySubset === subsets.stableSubset) {
    throw new PreflightError(
      `The canary subset ${quote(subsets.canarySubset)} is the stable subset of ${where}; expected a new subset name ` +
        `(set input 'canary-subset', or release a version other than ${quote(subsets.canaryVersion)}).`
    )
  }
  return subsets
}

/**
 * The stable subset exists (unless it is being retired) and does not select the canary's pods; the
 * canary pods carry the version label; a canary subset already there selects exactly them.
 */
function checkSubsets(
  input: TopologyInput,
  dr: KubeObject,
  { stableSubset, canarySubset, canaryVersion }: Subsets,
  where: string,
  state: RolloutState | undefined
): { stableVersion: string; canaryExists: boolean } {
  const { versionLabel } = input
  const drRef = objectRef(dr, input.namespace)
  // While promoting, the old stable subset may already be gone: it is being retired.
  const stable = findSubset(dr, stableSubset)
  if (!stable && !(state && state.phase === 'promoting')) {
    throw new PreflightError(
      `${drRef} has no subset ${quote(stableSubset)}, which ${where} routes to; expected it among ` +
        `${quote(
          subsetsOf(dr)
            .map((s) => s.name)
            .join(', ')
        )}.`
    )
  }
  const stableVersion = state ? state.stable.version : (stable?.labels?.[versionLabel] ?? stableSubset)
  if (stable && labelsMatch(stable.labels ?? {}, input.canaryPodLabels)) {
    throw new PreflightError(
      `The stable subset ${quote(stableSubset)} of ${drRef} selects labels ${quote(labelString(stable.labels))}, ` +
        `which the canary pods (labels ${quote(labelString(input.canaryPodLabels))}) also carry: the canary would ` +
        `get stable traffic. Expected the stable subset to select the stable version only (e.g. ${versionLabel}=${stableVersion}).`
    )
  }

  const wanted = { [versionLabel]: canaryVersion }
  if (input.canaryPodLabels[versionLabel] !== canaryVersion) {
    throw new PreflightError(
      `The canary pods' labels ${quote(labelString(input.canaryPodLabels))} lack ${quote(`${versionLabel}=${canaryVersion}`)}: ` +
        `the canary subset ${quote(canarySubset)} would select no canary pod. Expected the Deployment's pod template ` +
        `to carry label ${quote(versionLabel)} with value ${quote(canaryVersion)}.`
    )
  }
  const canary = findSubset(dr, canarySubset)
  if (canary && !sameLabels(canary.labels, wanted)) {
    throw new PreflightError(
      `${drRef} already has a subset ${quote(canarySubset)} with labels ${quote(labelString(canary.labels))}; ` +
        `expected no such subset, or one with labels ${quote(labelString(wanted))} (a rollout being resumed). ` +
        `Set input 'canary-subset' to an unused name.`
    )
  }
  return { stableVersion, canaryExists: canary !== undefined }
}

/** Istio keeps only the first definition of a subset: no other DestinationRule of the host may define ours. */
function checkNoDuplicateSubsets(input: TopologyInput, service: ServiceHost, dr: KubeObject, subsets: Subsets): void {
  for (const other of sameHostRules(input, service, dr)) {
    const dup = [subsets.stableSubset, subsets.canarySubset].find((name) => findSubset(other, name))
    if (dup !== undefined) {
      throw new PreflightError(
        `${objectRef(other, input.namespace)} also defines host ${quote(other.spec?.host)} with subset ${quote(dup)}, like ` +
          `${objectRef(dr, input.namespace)}; Istio keeps only the first definition of a subset. Expected the subset in one DestinationRule only.`
      )
    }
  }
}

/**
 * The subset that carries all traffic on the route a new rollout would split (input 'route', else
 * the only http route), or undefined when there is no such single destination. Never throws: the
 * problems are resolveTopology's to name.
 */
export function servingSubset(vs: KubeObject, namespace: string, routeName?: string): string | undefined {
  try {
    const { route } = findRoute({ vs, routeName }, objectRef(vs, namespace), undefined)
    const dests = Array.isArray(route.route) ? route.route : []
    const live = dests.filter((d) => effectiveWeight(d, dests.length) > 0)
    const subset = live.length === 1 ? live[0].destination?.subset : undefined
    return typeof subset === 'string' ? subset : undefined
  } catch {
    return undefined
  }
}

/**
 * The short name of the Service the route a rollout would split sends traffic to (input 'route', or
 * the recorded one, or the only http route), else of the first destination of any route; preflight
 * looks that Service up before resolveTopology. Never throws.
 */
export function routeServiceName(vs: KubeObject, namespace: string, routeName?: string, state?: RolloutState): string | undefined {
  try {
    const { route } = findRoute({ vs, routeName }, objectRef(vs, namespace), isInFlight(state) ? state : undefined)
    const host: unknown = route.route?.[0]?.destination?.host
    if (typeof host === 'string') return host.split('.')[0]
  } catch {
    // resolveTopology names the problem.
  }
  return firstDestinationHost(vs)
}

export function findRoute(
  input: Pick<TopologyInput, 'vs' | 'routeName'>,
  vsRef: string,
  state: RolloutState | undefined
): { route: HttpRoute; routeIndex: number; section: RouteSection } {
  const http = httpRoutes(input.vs)
  const tcp = routesOf(input.vs, 'tcp')
  const wantsTcp = state
    ? state.route.section === 'tcp'
    : input.routeName === 'tcp' ||
      input.routeName?.startsWith('tcp:') ||
      (input.routeName === undefined && http.length === 0 && tcp.length > 0)
  if (wantsTcp) return findTcpRoute(tcp, vsRef, state ? `tcp:#${state.route.index}` : input.routeName, state)
  if (http.length === 0) {
    throw new PreflightError(`${vsRef} has no http routes; expected at least one 'http' route to split (or a 'tcp' route).`)
  }
  const named = (name: string, why: string): { route: HttpRoute; routeIndex: number } => {
    const routeIndex = http.findIndex((r) => r.name === name)
    if (routeIndex < 0) {
      const names = http.map((r) => r.name).filter((n): n is string => typeof n === 'string')
      throw new PreflightError(
        `${vsRef} has no http route named ${quote(name)} (${why}); ` +
          (names.length > 0 ? `expected one of ${quote(names.join(', '))}.` : `none of its ${http.length} http routes has a name.`)
      )
    }
    return { route: http[routeIndex], routeIndex }
  }
  let found: { route: HttpRoute; routeIndex: number; section: RouteSection }
  if (input.routeName !== undefined) {
    found = { ...named(input.routeName, "input 'route'"), section: 'http' }
  } else if (state) {
    const routeIndex = routeIndexOf(input.vs, state.route)
    if (routeIndex < 0 && state.route.name !== undefined) named(state.route.name, `recorded by rollout ${quote(state.id)}`)
    if (routeIndex < 0) {
      throw new PreflightError(
        `${vsRef} has ${http.length} http routes, but rollout ${quote(state.id)} recorded route #${state.route.index}; ` +
          `expected the route it left. Restore the route, or clear the state annotation and start again.`
      )
    }
    found = { route: http[routeIndex], routeIndex, section: 'http' }
  } else if (http.length === 1) {
    found = { route: http[0], routeIndex: 0, section: 'http' }
  } else {
    throw new PreflightError(
      `${vsRef} has ${http.length} http routes (${http.map((r, i) => routeRef(r, i)).join(', ')}); ` +
        `which one to split is ambiguous. Set input 'route' to the name of one of them (give the route a name if it has none).`
    )
  }
  if (state && (state.route.name ?? `#${state.route.index}`) !== (found.route.name ?? `#${routePosition(input.vs, found.routeIndex)}`)) {
    throw new PreflightError(
      `Rollout ${quote(state.id)} on ${vsRef} is in progress on ${routeRef(
        state.route.name === undefined ? undefined : { name: state.route.name },
        state.route.index
      )}, not on ${routeRef(found.route, found.routeIndex)}; expected input 'route' to name the route in progress. ` +
        `Finish or abort that rollout first.`
    )
  }
  return found
}

// Every destination: a subset of one Service of our namespace. Returns the host as first written.
/**
 * A TCP route has no name: `tcp` (or no 'route' input on a VirtualService without http routes)
 * takes the only one, `tcp:<port>` the one whose match names that port; a rollout in progress
 * finds its route by the recorded position (`tcp:#<index>`).
 */
function findTcpRoute(
  tcp: HttpRoute[],
  vsRef: string,
  wanted: string | undefined,
  state: RolloutState | undefined
): { route: HttpRoute; routeIndex: number; section: RouteSection } {
  const ports = (r: HttpRoute): number[] =>
    (Array.isArray(r.match) ? (r.match as Array<{ port?: unknown }>) : [])
      .map((m) => m.port)
      .filter((p): p is number => typeof p === 'number')
  const described = tcp.map((r, i) => `#${i}${ports(r).length ? ` (port ${ports(r).join(', ')})` : ''}`).join(', ')
  if (tcp.length === 0) {
    throw new PreflightError(`${vsRef} has no tcp routes; expected a 'tcp' route for input 'route' ${quote(wanted ?? 'tcp')}.`)
  }
  let index: number
  if (wanted?.startsWith('tcp:#')) {
    index = Number(wanted.slice(5))
    if (!(index < tcp.length)) {
      throw new PreflightError(
        `${vsRef} has ${tcp.length} tcp routes, but rollout ${quote(state?.id ?? '')} recorded tcp route #${wanted.slice(5)}; ` +
          `expected the route it left. Restore the route, or clear the state annotation and start again.`
      )
    }
  } else if (wanted?.startsWith('tcp:')) {
    const port = Number(wanted.slice(4))
    index = tcp.findIndex((r) => ports(r).includes(port))
    if (!Number.isInteger(port) || index < 0) {
      throw new PreflightError(
        `${vsRef} has no tcp route matching port ${quote(wanted.slice(4))} (input 'route'); expected one of its tcp routes: ${described}.`
      )
    }
  } else if (tcp.length === 1) {
    index = 0
  } else {
    throw new PreflightError(
      `${vsRef} has ${tcp.length} tcp routes (${described}); which one to split is ambiguous. Set input 'route' to "tcp:<port>", the port its match names.`
    )
  }
  return { route: tcp[index], routeIndex: index, section: 'tcp' }
}

function checkDestinations(dests: RouteDestination[], where: string, namespace: string): string {
  const hosts = [...new Set(dests.map((d) => d.destination?.host))]
  const host = hosts[0]
  if (typeof host !== 'string' || host === '') {
    throw new PreflightError(`${where} has a destination without a host; expected every destination to name a host.`)
  }
  const svc = parseServiceHost(host, namespace)
  if (!svc || svc.namespace !== namespace) {
    throw new PreflightError(
      `${where} routes to host ${quote(host)}, which is not a Service of namespace ${quote(namespace)}; expected ` +
        `${quote(`<service>`)}, ${quote(`<service>.${namespace}`)} or ${quote(`<service>.${namespace}.svc.cluster.local`)}.`
    )
  }
  if (svc.form === 'partial') {
    throw new PreflightError(
      `${where} routes to host ${quote(host)}, which Istio takes literally (it expands only names without a dot), ` +
        `so it names no Service; expected ${quote(svc.name)} or ${quote(svc.fqdn)}.`
    )
  }
  for (const d of dests) {
    const h = d.destination?.host
    if (typeof h !== 'string' || parseServiceHost(h, namespace)?.fqdn !== svc.fqdn) {
      throw new PreflightError(
        `${where} routes to several hosts (${quote(hosts.join(', '))}); splitting a route with other hosts is not ` +
          `supported: expected every destination on host ${quote(host)}. Move the other hosts to their own route.`
      )
    }
    if (typeof d.destination?.subset !== 'string' || d.destination.subset === '') {
      throw new PreflightError(
        `${where} sends traffic to host ${quote(h)} without a subset; expected every destination of the route to ` +
          `name a DestinationRule subset (the stable version's), since the canary is routed by subset.`
      )
    }
  }
  return host
}

// No rollout in progress: the one destination carrying traffic is the stable one.
function stableOf(dests: RouteDestination[], where: string): string {
  const live = dests.filter((d) => effectiveWeight(d, dests.length) > 0)
  if (live.length === 1) return live[0].destination?.subset as string
  const shown = dests.map((d) => `${d.destination?.subset}=${d.weight ?? 'unset'}`).join(', ')
  if (live.length === 0) {
    throw new PreflightError(
      `${where} gives no destination a weight above 0 (${quote(shown)}); expected one destination carrying all traffic.`
    )
  }
  throw new PreflightError(
    `${where} already splits traffic (${quote(shown)}) and no rollout is in progress on it; expected one destination ` +
      `carrying all traffic. Set the stable subset's weight to 100 and the others to 0 by hand, then run again.`
  )
}

function inNamespace(obj: KubeObject, namespace: string): boolean {
  return (obj.metadata.namespace ?? namespace) === namespace
}

function hostOf(dr: KubeObject, namespace: string): ServiceHost | undefined {
  const h: unknown = dr.spec?.host
  return typeof h === 'string' ? parseServiceHost(h, dr.metadata.namespace ?? namespace) : undefined
}

function findDestinationRule(input: TopologyInput, service: ServiceHost, host: string, where: string): KubeObject {
  const { namespace } = input
  const local = input.drs.filter((d) => inNamespace(d, namespace))
  const named = local.find((d) => d.metadata.name === input.destinationRuleName)
  const byHost = input.destinationRuleByHost && (!named || hostOf(named, namespace)?.fqdn !== service.fqdn)
  if (input.destinationRuleName !== undefined && !byHost) {
    const dr = named
    if (!dr) {
      throw new PreflightError(
        `DestinationRule ${namespace}/${input.destinationRuleName} (input 'destination-rule') was not found; expected ` +
          (local.length > 0
            ? `one of ${quote(local.map((d) => d.metadata.name).join(', '))} in namespace ${quote(namespace)}.`
            : `a DestinationRule in namespace ${quote(namespace)}, which has none.`)
      )
    }
    if (hostOf(dr, namespace)?.fqdn !== service.fqdn) {
      throw new PreflightError(
        `${objectRef(dr, namespace)} is for host ${quote(dr.spec?.host)}, but ${where} routes to host ${quote(host)}; ` +
          `expected a DestinationRule for ${quote(service.fqdn)}.`
      )
    }
    return dr
  }
  const matching = local.filter((d) => hostOf(d, namespace)?.fqdn === service.fqdn)
  if (matching.length === 0) {
    throw new PreflightError(
      `No DestinationRule in namespace ${quote(namespace)} is for host ${quote(host)} (${quote(service.fqdn)}), which ` +
        `${where} routes to; expected one defining its subsets. Create it, or set input 'destination-rule'.`
    )
  }
  if (matching.length > 1) {
    throw new PreflightError(
      `Several DestinationRules in namespace ${quote(namespace)} are for host ${quote(service.fqdn)} ` +
        `(${quote(matching.map((d) => d.metadata.name).join(', '))}); set input 'destination-rule' to the one holding the subsets.`
    )
  }
  return matching[0]
}

function sameHostRules(input: TopologyInput, service: ServiceHost, chosen: KubeObject): KubeObject[] {
  return input.drs.filter(
    (d) => inNamespace(d, input.namespace) && d.metadata.name !== chosen.metadata.name && hostOf(d, input.namespace)?.fqdn === service.fqdn
  )
}

function checkService(input: TopologyInput, service: ServiceHost, host: string): void {
  const ref = `Service ${service.namespace}/${service.name}`
  const svc = input.service
  if (!svc || svc.metadata.name !== service.name || !inNamespace(svc, service.namespace)) {
    throw new PreflightError(
      `${ref} was not found; the route host ${quote(host)} names it. Expected the Service that selects the pods of every version.`
    )
  }
  const selector = (svc.spec?.selector ?? {}) as Record<string, string>
  if (Object.keys(selector).length === 0) {
    throw new PreflightError(
      `${ref} has no selector, so its endpoints do not follow the canary pods; expected a selector that matches ` +
        `the pods of every version (e.g. the app label).`
    )
  }
  if (!labelsMatch(selector, input.canaryPodLabels)) {
    throw new PreflightError(
      `${ref} selects ${quote(labelString(selector))}, which the canary pods (labels ${quote(labelString(input.canaryPodLabels))}) ` +
        `do not carry: no traffic could reach them. Expected the canary pod template to carry every label of the Service selector.`
    )
  }
}

/**
 * Whether the route a rollout would split names its versions by Service (a host-level split: no
 * destination has a subset, http routes only) rather than by subset. Never throws: resolveTopology names problems.
 */
export function splitsByService(vs: KubeObject, namespace: string, routeName?: string, state?: RolloutState): boolean {
  if (state && isInFlight(state)) return state.backends === 'services'
  try {
    const { route, section } = findRoute({ vs, routeName }, objectRef(vs, namespace), undefined)
    // A tcp route splits over DestinationRule subsets only: its checks say so when it names none.
    if (section === 'tcp') return false
    const dests = Array.isArray(route.route) ? route.route : []
    return dests.length > 0 && dests.every((d) => d.destination?.subset === undefined)
  } catch {
    return false
  }
}
