/**
 * Which routes still send traffic to a subset of a Service: before a version is retired (its
 * Deployment scaled to 0 or deleted) no route anywhere in the mesh may point at it, or its callers
 * get 503s. Pure: the caller lists the VirtualServices.
 *
 * A destination is `{host, subset}` in http/tcp/tls routes, and in http mirrors (`mirror`,
 * `mirrors[].destination`). Hosts are compared as `service.namespace`: a short host is resolved in
 * the namespace of the VirtualService that names it, as Istio does.
 */
import type { KubeObject } from '../../kube/kube-object.js'

export interface SubsetTarget {
  /** The host as our route names it (`reviews`, `reviews.shop`, `reviews.shop.svc.cluster.local`). */
  host: string
  /** The namespace of our VirtualService (where a short host resolves). */
  namespace: string
  subset: string
}

/** A route to leave out: ours (the rollout handles its own route). */
export interface RouteRef {
  namespace: string
  virtualService: string
  routeIndex: number
  /** Default http. */
  section?: 'http' | 'tcp'
}

/** `service.namespace` for a Kubernetes Service host, else the host itself (ServiceEntry, external). */
export function serviceKey(host: string, vsNamespace: string): string {
  const h = host.replace(/\.$/, '').toLowerCase()
  const labels = h.split('.')
  if (labels.length === 1) return `${labels[0]}.${vsNamespace}`
  if (labels.length === 2 || labels[2] === 'svc') return `${labels[0]}.${labels[1]}`
  return h
}

const SECTIONS = ['http', 'tcp', 'tls'] as const

/** Every destination a route sends traffic (or mirrored traffic) to: its host, and its subset as written (absent when none). */
function destinationsOf(route: unknown): Array<{ host: string; subset?: unknown }> {
  const out: Array<{ host: string; subset?: unknown }> = []
  const add = (d: unknown) => {
    const o = d as { host?: unknown; subset?: unknown } | undefined
    if (o && typeof o.host === 'string') out.push({ host: o.host, subset: o.subset })
  }
  const r = route as { route?: Array<{ destination?: unknown }>; mirror?: unknown; mirrors?: Array<{ destination?: unknown }> }
  for (const d of r?.route ?? []) add(d?.destination)
  add(r?.mirror)
  for (const m of r?.mirrors ?? []) add(m?.destination)
  return out
}

/**
 * Every route of `virtualServices` (http, tcp and tls) that `hit` accepts, but the `exclude` ones,
 * described like `VirtualService shop/reviews http route "beta-testers"` (`#2` when it has no name).
 * `hit` gets the route and the namespace its short hosts resolve in (the VirtualService's, else `namespace`).
 */
function referencesWhere(
  virtualServices: KubeObject[],
  namespace: string,
  exclude: RouteRef | RouteRef[] | undefined,
  hit: (route: unknown, ns: string) => boolean
): string[] {
  const excluded = exclude === undefined ? [] : Array.isArray(exclude) ? exclude : [exclude]
  const refs: string[] = []
  for (const vs of virtualServices) {
    const ns = vs.metadata.namespace ?? namespace
    for (const section of SECTIONS) {
      const routes: Array<{ name?: unknown }> = Array.isArray(vs.spec?.[section]) ? vs.spec[section] : []
      routes.forEach((route, index) => {
        const ours = excluded.some(
          (e) => (e.section ?? 'http') === section && index === e.routeIndex && ns === e.namespace && vs.metadata.name === e.virtualService
        )
        if (ours || !hit(route, ns)) return
        const label = typeof route.name === 'string' && route.name !== '' ? `"${route.name}"` : `#${index}`
        refs.push(`VirtualService ${ns}/${vs.metadata.name} ${section} route ${label}`)
      })
    }
  }
  return refs
}

/**
 * Routes of `virtualServices` with a destination (or mirror) on `target`'s host and subset,
 * described like `VirtualService shop/reviews http route "beta-testers"`. The `exclude` routes are left out.
 */
export function subsetReferences(virtualServices: KubeObject[], target: SubsetTarget, exclude?: RouteRef | RouteRef[]): string[] {
  const key = serviceKey(target.host, target.namespace)
  return referencesWhere(virtualServices, target.namespace, exclude, (route, ns) =>
    destinationsOf(route).some((d) => d.subset === target.subset && serviceKey(d.host, ns) === key)
  )
}

/** A per-version Service, as a route with no subset names it (a host-level split, an HTTPRoute backendRef). */
export interface ServiceTarget {
  /** The Service's name in `namespace`. */
  host: string
  namespace: string
}

/**
 * Routes of `virtualServices` with a destination (or mirror) on `target`'s Service, with or
 * without a subset. `exclude` is left out.
 */
export function serviceReferences(virtualServices: KubeObject[], target: ServiceTarget, exclude?: RouteRef | RouteRef[]): string[] {
  const key = `${target.host}.${target.namespace}`
  return referencesWhere(virtualServices, target.namespace, exclude, (route, ns) =>
    destinationsOf(route).some((d) => serviceKey(d.host, ns) === key)
  )
}
