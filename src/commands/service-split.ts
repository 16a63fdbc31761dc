/**
 * The host-level split's part of a deploy's preflight and its backends, loaded only when a route
 * names its versions by Service (a dynamic import keeps it out of the startup bundle).
 */
import type { Config } from '../config/config.js'
import { PreflightError, quote } from '../errors.js'
import type { KubeObject } from '../kube/kube-object.js'
import { isInFlight } from '../rollout/planner.js'
import type { RolloutState } from '../rollout/types.js'
import { withoutCanary } from '../traffic/istio/istio-router.js'
import { resolveServiceSplit, serviceSplitNames } from '../traffic/istio/service-split-topology.js'
import { canaryServiceName, stableVersionOf } from '../traffic/version-service-checks.js'
import { VersionServices } from '../traffic/version-services.js'
import type { CommandDeps } from './command-deps.js'
import {
  checkAccess,
  checkOutsideMesh,
  checkSidecar,
  managedByGitOps,
  redeployDecision,
  selectsPods,
  versionGuard,
  type DeployRead,
  type Preflight
} from './preflight.js'

/** The per-version Services a host-level split's router adds and removes. */
export function versionServices(config: Config, deps: CommandDeps, namespace: string, canaryService?: KubeObject): VersionServices {
  return new VersionServices({
    cluster: deps.cluster,
    namespace,
    ...(canaryService ? { canaryService } : {}),
    copyTrafficPolicy: config.copyTrafficPolicy,
    retire: config.retire
  })
}

/**
 * A deploy on a host-level split: the route's destinations are per-version Services. The same
 * decisions as preflightDeploy (re-run, supersede, version order, sidecar, RBAC, gates) over
 * Services instead of subsets; no DestinationRule is needed.
 */
export async function preflightServiceSplit(config: Config, deps: CommandDeps, read: DeployRead): Promise<Preflight> {
  const { cluster } = deps
  const { namespace, vs, state, manifest, manifestService, canaryVersion, warnings } = read
  const canaryDeployment = manifest.metadata.name
  const podLabels: Record<string, string> = manifest.spec?.template?.metadata?.labels ?? {}
  const inFlight = isInFlight(state)
  const resuming = inFlight && state!.canary.version === canaryVersion
  const routeView = state && inFlight && !resuming ? withoutCanary(vs, state, namespace) : vs

  // Every Service the checks may name: the route's, the recorded and the asked-for canary's, and
  // the one named after each route Service with its version replaced.
  const services: Record<string, KubeObject | undefined> = {}
  const readService = async (name: string): Promise<void> => {
    if (!(name in services)) services[name] = await cluster.getService(namespace, name)
  }
  const routeNames = serviceSplitNames(routeView, namespace, config.route, resuming ? state : undefined)
  for (const name of routeNames) await readService(name)
  for (const name of [config.canaryService, state?.canary.subset]) if (name) await readService(name)
  if (!config.canaryService && !manifestService) {
    for (const name of routeNames) {
      const version = stableVersionOf(services[name], config.versionLabel)
      if (version && name.includes(version)) await readService(canaryServiceName({ stableName: name, canaryVersion, where: '' }, version))
    }
  }
  const deployments = await cluster.listDeployments(namespace)

  if (!inFlight) {
    const serving = routeNames.length === 1 ? services[routeNames[0]] : undefined
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
        backends: 'services',
        stable: released,
        canary: released,
        warnings,
        alreadyStable: { version: canaryVersion, deployment: canaryDeployment, note: decision.note }
      }
    }
    if (decision.note) deps.log.info(decision.note)
  }

  const split = resolveServiceSplit({
    vs: routeView,
    namespace,
    versionLabel: config.versionLabel,
    routeName: config.route,
    existingState: resuming ? state : undefined,
    services,
    ...(config.canaryService ? { canaryServiceInput: config.canaryService } : {}),
    ...(manifestService ? { manifestService } : {}),
    canaryVersion,
    canaryDeployment,
    canaryPodLabels: podLabels,
    deployments
  })
  warnings.push(...split.warnings)
  if (!resuming) versionGuard(config, deps, split.stableVersion, canaryVersion, `${namespace}/${config.virtualService}`, warnings)
  const existing = deployments.find((d) => d.metadata.name === canaryDeployment)
  const stableSelector: Record<string, string> = services[split.stableName]?.spec?.selector ?? {}
  if (existing && !resuming && selectsPods(stableSelector, existing.spec?.template?.metadata?.labels ?? {})) {
    throw new PreflightError(
      `Deployment ${quote(canaryDeployment)} already runs the stable version ${quote(split.stableVersion)} (Service ${quote(split.stableName)} selects its pods); ` +
        `each version needs its own Deployment name: rename the canary Deployment in input 'manifests'.`
    )
  }
  await checkTrafficPolicies(config, deps, { namespace, stable: split.stableName, canary: split.canaryName }, warnings)
  await checkSidecar(deps, namespace, manifest, warnings)
  await checkAccess(deps, namespace, config, '', true, warnings)

  const stable: RolloutState['stable'] = {
    version: split.stableVersion,
    subset: split.stableName,
    ...(split.stableDeployment ? { deployment: split.stableDeployment.metadata.name } : {})
  }
  if (resuming && state?.stable.deployment) stable.deployment = state.stable.deployment
  const canary: RolloutState['canary'] = { version: canaryVersion, subset: split.canaryName, deployment: canaryDeployment }
  const route: RolloutState['route'] = { index: split.routeIndex, ...(split.routeName ? { name: split.routeName } : {}) }
  for (const gate of deps.gates) {
    await gate.preflight({
      namespace,
      host: split.host,
      virtualService: config.virtualService,
      stable,
      canary,
      canaryWeight: 0,
      stepIndex: -1,
      schedule: config.steps,
      windowSeconds: Math.max(1, config.intervalSeconds),
      signal: deps.signal
    })
  }
  await checkOutsideMesh(deps, { namespace, stable, service: services[split.stableName], canaryPodLabels: podLabels }, warnings)
  if (managedByGitOps(vs)) {
    warnings.push(
      `VirtualService ${config.virtualService} is also managed by ${managedByGitOps(vs)}; configure it to ignore .spec.http[].route[].weight, or it will revert the weights (the rollout then stops and rolls back)`
    )
  }
  return {
    namespace,
    state,
    route,
    host: split.host,
    destinationRule: '',
    backends: 'services',
    stable,
    canary,
    canaryManifest: manifest,
    ...(manifestService ? { canaryService: manifestService } : {}),
    versionServices: versionServices(config, deps, namespace, manifestService),
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
