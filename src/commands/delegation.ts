/**
 * Delegate VirtualServices. A root VirtualService (hosts, gateways) may hand a route to a delegate
 * (`delegate: {name, namespace}`): a VirtualService without hosts whose routes Istio merges into
 * the root's. The weights live on the delegate, so that is the VirtualService a rollout drives.
 * Input 'virtual-service' may name the delegate itself, or the root (`root/route`), whose route's
 * delegation is followed here, before preflight: every later step works on the delegate. Either
 * way the delegate must really be delegated to (else Istio ignores it and its weights move nothing).
 */
import type { Config } from '../config/config.js'
import { validateCanaryDeployment } from '../config/manifests.js'
import { loadManifests } from './manifest-files.js'
import type { VirtualServiceTarget } from '../config/virtual-services.js'
import { PreflightError, quote } from '../errors.js'
import { errorText } from '../format.js'
import type { KubeObject } from '../kube/kube-object.js'
import { httpRoutes } from '../traffic/istio/virtual-service-transform.js'
import type { CommandDeps } from './command-deps.js'

/** Where a route delegates to. */
interface DelegateRef {
  name: string
  namespace: string
}

/**
 * The config with every root named in input 'virtual-service' replaced by the delegate its route
 * hands over to; throws PreflightError for a delegation that cannot be driven. Logs what it followed.
 */
export async function followDelegations(config: Config, deps: CommandDeps): Promise<Config> {
  const namespace = await rolloutNamespace(config, deps)
  const targets: VirtualServiceTarget[] = []
  for (const t of config.virtualServices) {
    const vs = await deps.cluster.getIstio('VirtualService', namespace, t.name)
    if (!vs) {
      targets.push(t) // preflight names the missing VirtualService
      continue
    }
    let target = t
    let driven = vs
    const delegated = delegationOf(vs, namespace, t.route)
    if (delegated) {
      const { ref, where } = delegated
      const child = await deps.cluster.getIstio('VirtualService', ref.namespace, ref.name)
      if (!child) {
        throw new PreflightError(
          `${where} delegates to VirtualService ${quote(`${ref.namespace}/${ref.name}`)}, which was not found; expected the delegate ` +
            `VirtualService the root hands the route to (create it with the route to the stable subset, or name an existing one in input 'virtual-service').`
        )
      }
      if (ref.namespace !== namespace) {
        throw new PreflightError(
          `${where} delegates to VirtualService ${quote(`${ref.namespace}/${ref.name}`)} in another namespace than the rollout's ${quote(namespace)}; ` +
            `expected the delegate beside the Deployments: run the rollout in namespace ${quote(ref.namespace)} if they are there, naming the delegate (virtual-service: ${ref.name}).`
        )
      }
      const routes = httpRoutes(child)
      if (routes.length !== 1) {
        throw new PreflightError(
          `${where} delegates to VirtualService ${quote(`${ref.namespace}/${ref.name}`)}, which has ${routes.length} http routes; which one to split ` +
            `is ambiguous. Name the delegate and its route in input 'virtual-service' instead: ${quote(`${ref.name}/<route>`)}.`
        )
      }
      target = { name: ref.name, ...(typeof routes[0].name === 'string' ? { route: routes[0].name } : {}) }
      driven = child
      deps.log.info(`${where} delegates to VirtualService ${ref.namespace}/${ref.name}: the weights are written there`)
    }
    // Preflight checks that a delegate is delegated to (checkDelegatedTo, for a deploy only).
    if (hasHosts(driven) && delegated) {
      throw new PreflightError(
        `${delegated.where} delegates to VirtualService ${quote(`${namespace}/${target.name}`)}, which has hosts of its own, so Istio does not ` +
          `use it as a delegate; expected a delegate VirtualService without 'hosts'.`
      )
    }
    if (targets.some((x) => x.name === target.name)) {
      throw new PreflightError(
        `Input 'virtual-service' leads twice to VirtualService ${quote(`${namespace}/${target.name}`)} (directly and through a delegation); expected each once.`
      )
    }
    targets.push(target)
  }
  if (targets.every((t, i) => t === config.virtualServices[i])) return config
  const { route: _route, ...rest } = config
  return {
    ...rest,
    virtualService: targets[0].name,
    virtualServices: targets,
    ...(targets[0].route !== undefined ? { route: targets[0].route } : {})
  }
}

/** The namespace the rollout works in, decided as preflight decides it. */
async function rolloutNamespace(config: Config, deps: CommandDeps): Promise<string> {
  if (config.namespace) return config.namespace
  if (config.command === 'deploy') {
    const loaded = await loadManifests(config.manifests, { cwd: deps.cwd })
    const canary = validateCanaryDeployment(loaded.documents, { versionLabel: config.versionLabel, version: config.version })
    const ns = (canary.deployment as KubeObject).metadata.namespace
    if (ns) return ns
  }
  return deps.defaultNamespace ?? 'default'
}

/** The delegation of the route a target names (or of the only http route), if it has one. */
function delegationOf(vs: KubeObject, namespace: string, routeName?: string): { ref: DelegateRef; where: string } | undefined {
  const routes = httpRoutes(vs)
  const index = routeName !== undefined ? routes.findIndex((r) => r.name === routeName) : routes.length === 1 ? 0 : -1
  const d = routes[index]?.delegate as { name?: unknown; namespace?: unknown } | undefined
  if (!d || typeof d.name !== 'string') return undefined
  const route = routes[index]
  const label = typeof route.name === 'string' ? `route "${route.name}" (#${index})` : `route #${index}`
  return {
    ref: {
      name: d.name,
      namespace: typeof d.namespace === 'string' && d.namespace !== '' ? d.namespace : (vs.metadata.namespace ?? namespace)
    },
    where: `${label} of VirtualService ${vs.metadata.namespace ?? namespace}/${vs.metadata.name}`
  }
}

function hasHosts(vs: KubeObject): boolean {
  const hosts: unknown = vs.spec?.hosts
  return Array.isArray(hosts) && hosts.length > 0
}

/**
 * A VirtualService without hosts is only ever used as a delegate: some root must delegate to it,
 * or its weights move no traffic. Roots are looked for in every namespace (the root is often the
 * platform team's, beside the gateway); without that permission, in the rollout's namespace only,
 * and then a missing root is a warning, not a refusal.
 */
export async function checkDelegatedTo(deps: CommandDeps, namespace: string, child: KubeObject): Promise<void> {
  let all: KubeObject[]
  let blind: string | undefined
  try {
    all = await deps.cluster.listIstioInAllNamespaces('VirtualService')
  } catch (err) {
    blind = errorText(err)
    all = await deps.cluster.listIstio('VirtualService', namespace)
  }
  const roots: string[] = []
  for (const root of all) {
    const rootNs = root.metadata.namespace ?? namespace
    httpRoutes(root).forEach((r, i) => {
      const d = r.delegate as { name?: unknown; namespace?: unknown } | undefined
      const ns = typeof d?.namespace === 'string' && d.namespace !== '' ? d.namespace : rootNs
      if (d?.name === child.metadata.name && ns === namespace && hasHosts(root)) {
        roots.push(`VirtualService ${rootNs}/${root.metadata.name} ${typeof r.name === 'string' ? `route "${r.name}"` : `route #${i}`}`)
      }
    })
  }
  const ref = `VirtualService ${namespace}/${child.metadata.name}`
  if (roots.length > 0) {
    deps.log.info(`${ref} is a delegate of ${roots.join(', ')}`)
    return
  }
  if (blind) {
    deps.log.warning(
      `${ref} has no hosts, so Istio uses it only as a delegate, and no VirtualService of namespace ${namespace} delegates to it; ` +
        `other namespaces were not checked (the credentials may not list VirtualServices cluster-wide: ${blind})`
    )
    return
  }
  throw new PreflightError(
    `${ref} has no hosts, so Istio uses it only as a delegate, but no VirtualService delegates to it: its weights would move no traffic. ` +
      `Expected a root VirtualService with an http route ${quote(`delegate: {name: ${child.metadata.name}, namespace: ${namespace}}`)}, or a VirtualService with hosts.`
  )
}
