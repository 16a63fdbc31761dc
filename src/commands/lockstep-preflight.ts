/**
 * Preflight of the VirtualServices moved in lockstep with the first one (input 'virtual-service'
 * naming several): loaded only by the runs that name several, so the others start without it.
 */
import type { Config } from '../config/config.js'
import { PreflightError, quote } from '../errors.js'
import type { KubeObject } from '../kube/kube-object.js'
import { isInFlight } from '../rollout/planner.js'
import { stateOf } from '../rollout/state-codec.js'
import type { RolloutState, RouteMember } from '../rollout/types.js'
import { withoutSubset } from '../traffic/istio/destination-rule-transform.js'
import { withoutCanary } from '../traffic/istio/istio-router.js'
import { objectRef, routeRef } from '../traffic/istio/object-ref.js'
import { resolveTopology, routeServiceName, type Topology } from '../traffic/istio/route-topology.js'
import { parseServiceHost } from '../traffic/istio/service-host.js'
import type { CommandDeps } from './command-deps.js'
import { markerOf } from '../traffic/istio/member-marker.js'
import { checkDelegate, checkNotClaimed, DelegationFound, routeDelegates } from './preflight.js'

/** What resolveMembers needs of the holder's checks. */
export interface MemberRead {
  namespace: string
  holder: LockstepTarget
  drs: KubeObject[]
  podLabels: Record<string, string>
  canarySubset: string
  canaryVersion: string
  /** The rollout being resumed: its members' routes come from it. */
  state?: RolloutState
  /** The rollout being superseded: its canary is judged as already rolled back. */
  superseded?: RolloutState
}

/**
 * The other VirtualServices of input 'virtual-service': each read, checked like the holder
 * (route, subsets, DestinationRule, Service) and against the others (same stable subset, no host
 * covered twice for one gateway), before any write.
 */
export async function resolveMembers(
  config: Config,
  deps: CommandDeps,
  r: MemberRead
): Promise<Array<{ vs: KubeObject; member: RouteMember }>> {
  const { cluster } = deps
  const { namespace } = r
  const out: Array<{ vs: KubeObject; member: RouteMember; topology: Topology }> = []
  for (const target of config.virtualServices.slice(1)) {
    let vs = await cluster.getIstio('VirtualService', namespace, target.name)
    if (!vs) {
      throw new PreflightError(
        `VirtualService ${quote(target.name)} was not found in namespace ${quote(namespace)} (input 'virtual-service' names it); ` +
          `expected every VirtualService of the rollout to exist with a route to the stable subset.`
      )
    }
    const own = stateOf(vs)
    if (own && isInFlight(own)) {
      throw new PreflightError(
        `VirtualService ${namespace}/${target.name} holds rollout ${quote(own.id)} of its own (phase ${quote(own.phase)}); expected it free ` +
          `to move in lockstep with ${config.virtualService}. Finish or abort that rollout first.`
      )
    }
    await checkNotClaimed(vs, `${namespace}/${config.virtualService}`)
    if (routeDelegates(vs, target.route)) throw new DelegationFound(target.name)
    await checkDelegate(config, deps, namespace, vs)
    const recorded = (r.state ?? r.superseded)?.members?.find((m) => m.virtualService === target.name)
    const old = r.superseded
    if (old && recorded)
      vs = withoutCanary(vs, { ...old, route: recorded.route, host: recorded.host, destinationRule: recorded.destinationRule }, namespace)
    const drs = old
      ? r.drs.map((d) => (old.members?.some((m) => m.destinationRule === d.metadata.name) ? withoutSubset(d, old.canary.subset) : d))
      : r.drs
    const memberState = r.state && recorded ? { ...r.state, route: recorded.route } : undefined
    const host = routeServiceName(vs, namespace, target.route, memberState)
    const service = host ? await cluster.getService(namespace, host) : undefined
    const topology = resolveTopology({
      vs,
      drs,
      destinationRuleName: config.destinationRule,
      destinationRuleByHost: true,
      service,
      namespace,
      routeName: target.route,
      versionLabel: config.versionLabel,
      canaryVersion: r.canaryVersion,
      canarySubset: r.canarySubset,
      canaryPodLabels: r.podLabels,
      existingState:
        r.state && recorded
          ? { ...r.state, route: recorded.route, host: recorded.host, destinationRule: recorded.destinationRule }
          : undefined
    })
    const member: RouteMember = {
      virtualService: target.name,
      route: {
        index: topology.routeIndex,
        ...(topology.routeName ? { name: topology.routeName } : {}),
        ...(topology.section ? { section: topology.section } : {})
      },
      host: topology.host,
      destinationRule: topology.destinationRuleName
    }
    out.push({ vs, member, topology })
  }
  checkLockstep([r.holder, ...out], namespace)
  return out
}

/** A rollout in progress moves the VirtualServices it started with: input naming others is refused. */
export function checkSameMembers(config: Config, namespace: string, state: RolloutState): void {
  if (config.virtualServices.length === 1) return
  const named = config.virtualServices.map((t) => t.name)
  const recorded = [config.virtualService, ...(state.members ?? []).map((m) => m.virtualService)]
  if (named.join(',') !== recorded.join(',')) {
    throw new PreflightError(
      `Rollout ${quote(state.id)} on VirtualService ${namespace}/${config.virtualService} moves ${quote(recorded.join(', '))} in lockstep, ` +
        `but input 'virtual-service' names ${quote(named.join(', '))}; expected the same VirtualServices in the same order ` +
        `(or only ${quote(config.virtualService)}: the state names the others). Finish or abort that rollout first.`
    )
  }
}

/** One VirtualService of a lockstep rollout, as preflight read and resolved it. */
interface LockstepTarget {
  vs: KubeObject
  topology: Topology
}

/**
 * Checks VirtualServices moved in lockstep against each other: each routes to the same stable
 * subset (the weights move one pair of subsets), and no two cover the same host for the same
 * gateway (Istio then uses one of them, and the split written on the other would not apply).
 */
function checkLockstep(targets: LockstepTarget[], namespace: string): void {
  const [first, ...rest] = targets
  for (const t of rest) {
    if (t.topology.stableSubset !== first.topology.stableSubset) {
      throw new PreflightError(
        `${routeRef({ name: t.topology.routeName }, t.topology.routeIndex)} of ${objectRef(t.vs, namespace)} sends its traffic to subset ` +
          `${quote(t.topology.stableSubset)}, but ${routeRef({ name: first.topology.routeName }, first.topology.routeIndex)} of ` +
          `${objectRef(first.vs, namespace)} to ${quote(first.topology.stableSubset)}; expected every VirtualService of the rollout ` +
          `to route to the same stable subset (the weights move one pair of subsets on all of them).`
      )
    }
  }
  for (let i = 0; i < targets.length; i++) {
    for (let j = i + 1; j < targets.length; j++) {
      const a = targets[i].vs
      const b = targets[j].vs
      const gateways = gatewaysOf(a, namespace).filter((g) => gatewaysOf(b, namespace).includes(g))
      const hosts = hostsOf(a, namespace).filter((h) => hostsOf(b, namespace).includes(h))
      if (gateways.length > 0 && hosts.length > 0) {
        throw new PreflightError(
          `${objectRef(a, namespace)} and ${objectRef(b, namespace)} both cover host ${quote(hosts[0])} for gateway ${quote(gateways[0])}; ` +
            `Istio applies only one VirtualService per host to a sidecar, so the split written on the other would not take effect. ` +
            `Expected each VirtualService of input 'virtual-service' to cover its hosts on its own gateways (e.g. one for "mesh", one for the ingress gateway).`
        )
      }
    }
  }
}

/** The gateways a VirtualService binds to, as `namespace/name` (`mesh` when it names none). */
function gatewaysOf(vs: KubeObject, namespace: string): string[] {
  const ns = vs.metadata.namespace ?? namespace
  const list: unknown = vs.spec?.gateways
  const names = Array.isArray(list) && list.length > 0 ? list.filter((g): g is string => typeof g === 'string') : ['mesh']
  return names.map((g) => (g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`))
}

/** The hosts of a VirtualService, a Service's in its FQDN form. */
function hostsOf(vs: KubeObject, namespace: string): string[] {
  const ns = vs.metadata.namespace ?? namespace
  const list: unknown = vs.spec?.hosts
  return (Array.isArray(list) ? list : [])
    .filter((h): h is string => typeof h === 'string')
    .map((h) => parseServiceHost(h, ns)?.fqdn ?? h.toLowerCase())
}

/** A VirtualService marked as part of another rollout's lockstep may not be ours. */
export function checkMarker(vs: KubeObject, stateOn: string): void {
  const marker = markerOf(vs)
  if (marker && marker.stateOn !== stateOn) {
    const where = `${vs.metadata.namespace ? `${vs.metadata.namespace}/` : ''}${vs.metadata.name}`
    throw new PreflightError(
      `VirtualService ${where} moves in lockstep with the rollout ${quote(marker.id)} recorded on VirtualService ${quote(marker.stateOn)}; ` +
        `expected it free. Finish or abort that rollout first (if none is in progress, clear the marker: ` +
        `kubectl -n ${vs.metadata.namespace ?? 'default'} annotate virtualservice ${vs.metadata.name} istio-canary.io/rollout-member-).`
    )
  }
}
