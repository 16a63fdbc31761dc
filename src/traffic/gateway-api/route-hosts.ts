/**
 * The hosts and parents of an HTTPRoute, and whether a VirtualService routes one of the same hosts
 * (Istio leaves the result of both undefined). Small and pure: the VirtualService preflight uses it
 * too, at startup.
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { parseServiceHost } from '../istio/service-host.js'

export interface HttpRouteParents {
  /** `namespace/name` of each Gateway parent. */
  gateways: string[]
  /** Names of the Service parents (GAMMA: east-west), in the route's namespace. */
  services: string[]
}

/** The Gateway and Service parents of an HTTPRoute. */
export function parentsOf(route: KubeObject, namespace: string): HttpRouteParents {
  const refs = (Array.isArray(route.spec?.parentRefs) ? route.spec.parentRefs : []) as Array<Record<string, string | undefined>>
  const gateways: string[] = []
  const services: string[] = []
  for (const p of refs) {
    const kind = p.kind ?? 'Gateway'
    const group = p.group ?? 'gateway.networking.k8s.io'
    if (kind === 'Gateway' && group === 'gateway.networking.k8s.io') gateways.push(`${p.namespace ?? namespace}/${p.name}`)
    else if (kind === 'Service' && (group === '' || group === 'core') && (p.namespace ?? namespace) === namespace && p.name)
      services.push(p.name)
  }
  return { gateways, services }
}

/**
 * The hosts an HTTPRoute routes, as Istio compares them with VirtualService hosts: each Service
 * parent's FQDN (GAMMA), and each of spec.hostnames (Gateway parents).
 */
export function hostsOfHttpRoute(route: KubeObject, namespace: string): string[] {
  const { services } = parentsOf(route, namespace)
  const hostnames = (Array.isArray(route.spec?.hostnames) ? route.spec.hostnames : []) as string[]
  return [...services.map((s) => `${s}.${namespace}.svc.cluster.local`), ...hostnames.map((h) => h.toLowerCase())]
}

/** The hosts of a VirtualService, short names resolved in its namespace. */
export function hostsOfVirtualService(vs: KubeObject, namespace: string): string[] {
  const ns = vs.metadata.namespace ?? namespace
  const hosts = (Array.isArray(vs.spec?.hosts) ? vs.spec.hosts : []) as string[]
  return hosts.map((h) => parseServiceHost(h, ns)?.fqdn ?? h.toLowerCase())
}

/** The first host covered both by the HTTPRoute and one of `virtualServices`, and that VirtualService. */
export function sharedHost(
  route: KubeObject,
  virtualServices: KubeObject[],
  namespace: string
): { host: string; vs: KubeObject } | undefined {
  const ours = new Set(hostsOfHttpRoute(route, namespace))
  for (const vs of virtualServices) {
    const host = hostsOfVirtualService(vs, namespace).find((h) => ours.has(h))
    if (host) return { host, vs }
  }
  return undefined
}
