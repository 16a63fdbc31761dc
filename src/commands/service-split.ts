/**
 * The per-version Service part of a deploy's preflight, loaded only when the route names its
 * versions by Service (a dynamic import keeps it out of the startup bundle): a VirtualService
 * host-level split and a Gateway API HTTPRoute go through the same checks (re-run, supersede,
 * version order, Services, traffic policies, RBAC, gates); only reading the route and the data
 * plane's checks differ (PerVersionRoute).
 */
import type { Config } from '../config/config.js'
import { PreflightError, quote } from '../errors.js'
import type { KubeObject } from '../kube/kube-object.js'
import { isInFlight } from '../rollout/planner.js'
import type { RolloutState } from '../rollout/types.js'
import { GatewayApiRouter } from '../traffic/gateway-api/gateway-api-router.js'
import { ruleIndexOf, withoutBackend, withRuleSplit, readRuleSplit } from '../traffic/gateway-api/http-route-transform.js'
import { parentsOf, resolveHttpRoute, ruleServiceNames, sharedHost } from '../traffic/gateway-api/http-route-topology.js'
import { withoutCanary } from '../traffic/istio/istio-router.js'
import { resolveServiceSplit, serviceSplitNames } from '../traffic/istio/service-split-topology.js'
import type { TrafficRouter } from '../traffic/traffic-router.js'
import {
  canaryServiceName,
  stableVersionOf,
  type VersionServicesCheck,
  type VersionServicesInput
} from '../traffic/version-service-checks.js'
import { VersionServices } from '../traffic/version-services.js'
import type { CommandDeps } from './command-deps.js'
import { checkAccess, versionGuard, type DeployRead, type Preflight } from './preflight.js'
import { checkOutsideMesh, checkSidecar, managedByGitOps, preflightGates, redeployDecision, selectsPods } from './deploy-preflight.js'
import { iso } from './runtime.js'

/** The per-version Services a router adds and removes. */
export function versionServices(config: Config, deps: CommandDeps, namespace: string, canaryService?: KubeObject): VersionServices {
  return new VersionServices({
    cluster: deps.cluster,
    namespace,
    ...(canaryService ? { canaryService } : {}),
    copyTrafficPolicy: config.copyTrafficPolicy,
    retire: config.retire
  })
}

/** The router of an HTTPRoute rollout (fenced by `epoch`). */
export function httpRouteRouter(config: Config, deps: CommandDeps, pre: Preflight, epoch: number): TrafficRouter {
  return new GatewayApiRouter({
    cluster: deps.cluster,
    namespace: pre.namespace,
    httpRoute: config.virtualService,
    services: pre.versionServices ?? versionServices(config, deps, pre.namespace, pre.canaryService),
    epoch,
    now: () => iso(deps.clock.now())
  })
}

/** What a resolved route gives the shared checks. */
interface ResolvedRoute {
  check: VersionServicesCheck
  stableName: string
  routeIndex: number
  routeName?: string
  /** The host gates and reports name (the stable destination as written, or its Service). */
  host: string
}

/** How the shared preflight reads one kind of route over per-version Services. */
interface PerVersionRoute {
  /** `VirtualService shop/reviews`. */
  label: string
  /** The route as it will be once a superseded rollout's canary is rolled back. */
  withoutCanary(obj: KubeObject, state: RolloutState): KubeObject
  /** The Services the route (or the rollout in flight) names. */
  names(obj: KubeObject, state?: RolloutState): string[]
  resolve(obj: KubeObject, input: Omit<VersionServicesInput, 'where' | 'stableName'>, state?: RolloutState): ResolvedRoute
  /** The data plane's checks: sidecars for a VirtualService; parents, ambient and shared hosts for an HTTPRoute. */
  dataPlane(warnings: string[]): Promise<void>
  /** The field a GitOps tool must ignore. */
  weightField: string
}

/** A deploy on a VirtualService host-level split. */
export async function preflightServiceSplit(config: Config, deps: CommandDeps, read: DeployRead): Promise<Preflight> {
  const { namespace } = read
  return preflightPerVersion(config, deps, read, {
    label: `VirtualService ${namespace}/${config.virtualService}`,
    withoutCanary: (vs, state) => withoutCanary(vs, state, namespace),
    names: (vs, state) => serviceSplitNames(vs, namespace, config.route, state),
    resolve: (vs, input, state) => {
      const split = resolveServiceSplit({ ...input, vs, routeName: config.route, existingState: state })
      return { check: split, stableName: split.stableName, routeIndex: split.routeIndex, routeName: split.routeName, host: split.host }
    },
    dataPlane: (warnings) => checkSidecar(deps, namespace, read.manifest, warnings),
    weightField: '.spec.http[].route[].weight'
  })
}

/** A deploy on a Gateway API HTTPRoute rule over per-version Services. */
export async function preflightHttpRoute(config: Config, deps: CommandDeps, read: DeployRead): Promise<Preflight> {
  const { namespace } = read
  const route = read.vs
  return preflightPerVersion(config, deps, read, {
    label: `HTTPRoute ${namespace}/${config.virtualService}`,
    withoutCanary: (r, state) => {
      const index = ruleIndexOf(r, state.route)
      if (index < 0 || !readRuleSplit(r, index, namespace, state.stable.subset, state.canary.subset).canaryPresent) return r
      return withoutBackend(
        withRuleSplit(r, index, namespace, state.stable.subset, state.canary.subset, 0),
        index,
        namespace,
        state.canary.subset
      )
    },
    names: (r, state) => ruleServiceNames(r, namespace, config.route, state),
    resolve: (r, input, state) => {
      const t = resolveHttpRoute({ ...input, route: r, ruleName: config.route, existingState: state })
      return { check: t, stableName: t.stableName, routeIndex: t.ruleIndex, routeName: t.ruleName, host: t.stableName }
    },
    dataPlane: (warnings) => checkHttpRouteDataPlane(deps, namespace, route, warnings),
    weightField: '.spec.rules[].backendRefs[].weight'
  })
}

/**
 * The same decisions as preflightDeploy (re-run, supersede, version order, data plane, RBAC,
 * gates) over Services instead of subsets; no DestinationRule is needed.
 */
async function preflightPerVersion(config: Config, deps: CommandDeps, read: DeployRead, kind: PerVersionRoute): Promise<Preflight> {
  const { cluster } = deps
  const { namespace, vs, state, manifest, manifestService, canaryVersion, warnings } = read
  const canaryDeployment = manifest.metadata.name
  const podLabels: Record<string, string> = manifest.spec?.template?.metadata?.labels ?? {}
  const inFlight = isInFlight(state)
  const resuming = inFlight && state!.canary.version === canaryVersion
  const routeView = state && inFlight && !resuming ? kind.withoutCanary(vs, state) : vs

  const routeNames = kind.names(routeView, resuming ? state : undefined)
  const services = await readRouteServices(config, deps, read, routeNames)
  const deployments = await cluster.listDeployments(namespace)

  if (!inFlight) {
    const done = await redeployOrStable(config, deps, read, routeNames.length === 1 ? services[routeNames[0]] : undefined)
    if (done) return done
  }

  const resolved = kind.resolve(
    routeView,
    {
      namespace,
      versionLabel: config.versionLabel,
      services,
      ...(config.canaryService ? { canaryServiceInput: config.canaryService } : {}),
      ...(manifestService ? { manifestService } : {}),
      canaryVersion,
      canaryDeployment,
      canaryPodLabels: podLabels,
      deployments
    },
    resuming ? state : undefined
  )
  const split = { ...resolved.check, ...resolved }
  warnings.push(...split.warnings)
  if (!resuming) await versionGuard(config, deps, split.stableVersion, canaryVersion, `${namespace}/${config.virtualService}`, warnings)
  const existing = deployments.find((d) => d.metadata.name === canaryDeployment)
  const stableSelector: Record<string, string> = services[split.stableName]?.spec?.selector ?? {}
  if (existing && !resuming && selectsPods(stableSelector, existing.spec?.template?.metadata?.labels ?? {})) {
    throw new PreflightError(
      `Deployment ${quote(canaryDeployment)} already runs the stable version ${quote(split.stableVersion)} (Service ${quote(split.stableName)} selects its pods); ` +
        `each version needs its own Deployment name: rename the canary Deployment in input 'manifests'.`
    )
  }
  await checkTrafficPolicies(config, deps, { namespace, stable: split.stableName, canary: split.canaryName }, warnings)
  await kind.dataPlane(warnings)
  await checkAccess(deps, namespace, config, '', true, warnings)

  const stable: RolloutState['stable'] = {
    version: split.stableVersion,
    subset: split.stableName,
    ...(split.stableDeployment ? { deployment: split.stableDeployment.metadata.name } : {})
  }
  if (resuming && state?.stable.deployment) stable.deployment = state.stable.deployment
  const canary: RolloutState['canary'] = { version: canaryVersion, subset: split.canaryName, deployment: canaryDeployment }
  const route: RolloutState['route'] = { index: split.routeIndex, ...(split.routeName ? { name: split.routeName } : {}) }
  await preflightGates(config, deps, { namespace, host: split.host, stable, canary })
  await checkOutsideMesh(deps, { namespace, stable, service: services[split.stableName], canaryPodLabels: podLabels }, warnings)
  if (managedByGitOps(vs)) {
    warnings.push(
      `${kind.label} is also managed by ${managedByGitOps(vs)}; configure it to ignore ${kind.weightField}, or it will revert the weights (the rollout then stops and rolls back)`
    )
  }
  return {
    namespace,
    state,
    route,
    members: [],
    host: split.host,
    destinationRule: '',
    backends: 'services',
    stable,
    canary,
    canaryManifest: manifest,
    ...(manifestService ? { canaryService: manifestService } : {}),
    versionServices: versionServices(config, deps, namespace, manifestService),
    ...(config.routeKind === 'HTTPRoute' ? { httpRoute: { httpRouteRouter } } : {}),
    warnings
  }
}

/**
 * DestinationRules of a host-level split: none is needed, but a stable host's traffic policy
 * (TLS, connection pool, outlier detection) does not reach the canary's host by itself. Input
 * 'copy-traffic-policy' copies it to a DestinationRule named after the canary's Service; without
 * it the difference is a warning, and a canary host's own DestinationRule is left as it is.
 */
async function checkTrafficPolicies(
  config: Config,
  deps: CommandDeps,
  hosts: { namespace: string; stable: string; canary: string },
  warnings: string[]
): Promise<void> {
  const { namespace } = hosts
  const drs = await deps.cluster.listIstio('DestinationRule', namespace)
  const forHost = (name: string): KubeObject | undefined =>
    drs.find(
      (d) => typeof d.spec?.host === 'string' && d.spec.host.split('.')[0] === name && [1, 4].includes(d.spec.host.split('.').length)
    )
  const stable = forHost(hosts.stable)
  const canary = forHost(hosts.canary)
  const policy = stable?.spec?.trafficPolicy
  if (!policy) return
  if (canary) {
    if (JSON.stringify(canary.spec?.trafficPolicy ?? null) !== JSON.stringify(policy)) {
      warnings.push(
        `DestinationRule ${canary.metadata.name} of the canary's host ${hosts.canary} has another traffic policy than DestinationRule ${stable!.metadata.name} of ${hosts.stable}; it is used as it is`
      )
    }
    return
  }
  if (!config.copyTrafficPolicy) {
    warnings.push(
      `DestinationRule ${stable!.metadata.name} gives ${hosts.stable} a traffic policy that the canary's host ${hosts.canary} will not have (no DestinationRule is for it); set input 'copy-traffic-policy' to copy it`
    )
    return
  }
  const taken = drs.find((d) => d.metadata.name === hosts.canary)
  if (taken) {
    throw new PreflightError(
      `Input 'copy-traffic-policy' would create DestinationRule ${quote(`${namespace}/${hosts.canary}`)} for the canary's host, but one of that name exists for host ${quote(taken.spec?.host)}; ` +
        `expected the name free, or a DestinationRule for host ${quote(hosts.canary)} made by hand.`
    )
  }
}

/**
 * No rollout in flight: the re-run decision over the route's one Service. A Preflight that ends
 * here (the version is already stable), or undefined to go on.
 */
async function redeployOrStable(
  config: Config,
  deps: CommandDeps,
  read: DeployRead,
  serving: KubeObject | undefined
): Promise<Preflight | undefined> {
  const { namespace, vs, state, manifest, canaryVersion, warnings } = read
  const canaryDeployment = manifest.metadata.name
  const servesVersion = serving !== undefined && stableVersionOf(serving, config.versionLabel) === canaryVersion
  const decision = await redeployDecision(config, deps, {
    namespace,
    vs,
    drs: [],
    state,
    manifest,
    version: canaryVersion,
    servesVersion
  })
  if (decision.kind === 'refuse') throw new PreflightError(decision.reason)
  if (decision.kind === 'already-stable') {
    const released = { version: canaryVersion, subset: serving!.metadata.name, deployment: canaryDeployment }
    return {
      namespace,
      state,
      route: state?.route ?? { index: 0 },
      host: state?.host ?? '',
      destinationRule: '',
      members: [],
      backends: 'services',
      stable: released,
      canary: released,
      warnings,
      alreadyStable: { version: canaryVersion, deployment: canaryDeployment, note: decision.note }
    }
  }
  if (decision.note) deps.log.info(decision.note)
  return undefined
}

/**
 * Every Service the checks may name: the route's, the recorded and the asked-for canary's, and
 * the one named after each route Service with its version replaced.
 */
async function readRouteServices(
  config: Config,
  deps: CommandDeps,
  read: DeployRead,
  routeNames: string[]
): Promise<Record<string, KubeObject | undefined>> {
  const services: Record<string, KubeObject | undefined> = {}
  const readService = async (name: string): Promise<void> => {
    if (!(name in services)) services[name] = await deps.cluster.getService(read.namespace, name)
  }
  for (const name of routeNames) await readService(name)
  for (const name of [config.canaryService, read.state?.canary.subset]) if (name) await readService(name)
  if (!config.canaryService && !read.manifestService) {
    for (const name of routeNames) {
      const version = stableVersionOf(services[name], config.versionLabel)
      if (version && name.includes(version)) {
        await readService(canaryServiceName({ stableName: name, canaryVersion: read.canaryVersion, where: '' }, version))
      }
    }
  }
  return services
}

/**
 * A host routed by a VirtualService and an HTTPRoute is undefined in Istio: refused. Looked for
 * where the credentials may list HTTPRoutes; without the Gateway API (or the right) nothing is said.
 */
export async function refuseHttpRouteOnSameHost(deps: CommandDeps, namespace: string, vs: KubeObject): Promise<void> {
  let routes: KubeObject[]
  try {
    routes = await deps.cluster.listIstioInAllNamespaces('HTTPRoute')
  } catch {
    routes = await deps.cluster.listIstio('HTTPRoute', namespace).catch(() => [])
  }
  for (const route of routes) {
    const shared = sharedHost(route, [vs], route.metadata.namespace ?? namespace)
    if (shared) {
      throw new PreflightError(
        `VirtualService ${namespace}/${vs.metadata.name} and HTTPRoute ${route.metadata.namespace ?? namespace}/${route.metadata.name} both route host ${quote(shared.host)}; ` +
          `Istio leaves the result of both undefined, so the weights could not be trusted. Expected one of them only: remove the host from one, or roll out with input 'http-route'.`
      )
    }
  }
}

/**
 * The data plane of an HTTPRoute. A host both an HTTPRoute and a VirtualService route is refused
 * (Istio leaves the result undefined). A Service parent (GAMMA, east-west) is applied by the
 * callers' sidecars, or in ambient mode by a waypoint: without either the weights are ignored,
 * which is said as the sidecar check says it. A Gateway parent is applied by the gateway.
 */
async function checkHttpRouteDataPlane(deps: CommandDeps, namespace: string, route: KubeObject, warnings: string[]): Promise<void> {
  const { cluster } = deps
  let virtualServices: KubeObject[]
  try {
    virtualServices = await cluster.listIstioInAllNamespaces('VirtualService')
  } catch {
    virtualServices = await cluster.listIstio('VirtualService', namespace).catch(() => [])
  }
  const shared = sharedHost(route, virtualServices, namespace)
  if (shared) {
    throw new PreflightError(
      `HTTPRoute ${namespace}/${route.metadata.name} and VirtualService ${shared.vs.metadata.namespace ?? namespace}/${shared.vs.metadata.name} both route host ${quote(shared.host)}; ` +
        `Istio leaves the result of both undefined, so the weights could not be trusted. Expected one of them only: remove the host from one, or roll out with input 'virtual-service'.`
    )
  }
  const { services } = parentsOf(route, namespace)
  if (services.length === 0) return
  let ns: KubeObject | undefined
  try {
    ns = await cluster.getNamespace(namespace)
  } catch {
    warnings.push(
      `could not read namespace ${namespace} (cluster-scoped; the Role does not cover it), so ambient mode and waypoints were not verified for the HTTPRoute's Service parents`
    )
    return
  }
  const nsLabels: Record<string, string> = ns?.metadata.labels ?? {}
  const sidecars =
    nsLabels['istio-injection'] === 'enabled' || (nsLabels['istio.io/rev'] !== undefined && nsLabels['istio-injection'] !== 'disabled')
  for (const name of services) {
    const svc = await cluster.getService(namespace, name)
    const labels: Record<string, string> = svc?.metadata.labels ?? {}
    const ambient = (labels['istio.io/dataplane-mode'] ?? nsLabels['istio.io/dataplane-mode']) === 'ambient'
    const waypoint = labels['istio.io/use-waypoint'] ?? nsLabels['istio.io/use-waypoint']
    if (ambient && (waypoint === undefined || waypoint === 'none')) {
      warnings.push(
        `Service ${name}, a parent of HTTPRoute ${route.metadata.name}, is in ambient mode but uses no waypoint (label istio.io/use-waypoint on it or on namespace ${namespace}); ` +
          `ztunnel does not apply HTTP routes, so the weights are ignored. Deploy a waypoint (istioctl waypoint apply -n ${namespace} --enroll-namespace)`
      )
    } else if (!ambient && !sidecars) {
      warnings.push(
        `Service ${name}, a parent of HTTPRoute ${route.metadata.name}, is neither in ambient mode with a waypoint (labels istio.io/dataplane-mode=ambient, istio.io/use-waypoint) ` +
          `nor in a namespace with sidecar injection; callers without either ignore the weights and reach the versions by pod count`
      )
    }
  }
}
