/**
 * A deploy's own checks, after preflight has read the route: the re-run decision, the topology of
 * the route and its subsets, the stable Deployment, sidecar injection, RBAC for every write, the
 * gates' dry runs. Loaded by deploys only, while their first reads are on the wire.
 */
import type { AccessCheck } from '../cluster/cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import { labelsMatch, selectorMatches } from '../kube/label-selector.js'
import type { Config } from '../config/config.js'
import { defaultCanarySubset } from '../config/kube-names.js'
import { PreflightError, quote } from '../errors.js'
import { decideOutsideMesh, OUTSIDE_MESH_PREFLIGHT_WINDOW_SECONDS, type OutsideMeshReading } from '../health/outside-mesh.js'
import { isInFlight } from '../rollout/planner.js'
import { decideRedeploy, deploymentChanges, type RedeployDecision } from '../rollout/release-rerun.js'
import type { RolloutState, RouteMember, Step } from '../rollout/types.js'
import { resolveTopology, routeServiceName, servingSubset, splitsByService, type Topology } from '../traffic/istio/route-topology.js'
import { findSubset, withoutSubset } from '../traffic/istio/destination-rule-transform.js'
import { withoutCanary } from '../traffic/istio/istio-router.js'
import { exposureRefusal } from '../traffic/istio/exposure-transform.js'
import { formatSchedule } from '../config/schedule.js'
import { routeIndexOf } from '../traffic/istio/virtual-service-transform.js'
import type { CommandDeps } from './command-deps.js'
import type { MemberRead } from './lockstep-preflight.js'
import { loadCanaryCapacity, loadServiceSplit, loadTrafficTargets } from './lazy-modules.js'
import { checkAccess, requireAccess, versionGuard, type DeployRead, type Preflight, type ReadOnlyNotes } from './preflight.js'

/** A deploy's checks by target: an HTTPRoute, a host-level split, or subsets of one host (one or several VirtualServices). */
export async function preflightByTarget(config: Config, deps: CommandDeps, read: DeployRead): Promise<Preflight> {
  const { namespace, vs, state, manifestService } = read
  const target = quote(`${namespace}/${config.virtualService}`)
  if (config.routeKind === 'HTTPRoute') {
    refuseExposureSteps(
      config.steps,
      `input 'http-route' names a Gateway API HTTPRoute, where this action does not yet write header matches or RequestMirror filters`
    )
    return (await loadServiceSplit()).preflightHttpRoute(config, deps, read)
  }
  await (await loadServiceSplit()).refuseHttpRouteOnSameHost(deps, namespace, vs)
  if (splitsByService(vs, namespace, config.route, state)) {
    if (config.virtualServices.length > 1) {
      throw new PreflightError(
        `Input 'virtual-service' names ${config.virtualServices.length} VirtualServices, but the route of ${target} ` +
          `splits between per-version Services; expected one VirtualService for a host-level split (several move in lockstep only over DestinationRule subsets).`
      )
    }
    refuseExposureSteps(config.steps, `the route of ${target} splits between per-version Services, not DestinationRule subsets`)
    return (await loadServiceSplit()).preflightServiceSplit(config, deps, read)
  }
  if (manifestService) {
    throw new PreflightError(
      `Input 'manifests' carries Service ${quote(manifestService.metadata.name)}, but the route of VirtualService ${target} ` +
        `names its versions by DestinationRule subset, so a canary Service would not be used; expected only the canary Deployment ` +
        `(a Service per version is for a host-level split, whose destinations are Services without subsets).`
    )
  }
  return preflightDeploy(config, deps, read)
}

/** A deploy's checks: the re-run decision, the topology, the stable Deployment, sidecar, RBAC, gates. */
async function preflightDeploy(config: Config, deps: CommandDeps, read: DeployRead): Promise<Preflight> {
  const { cluster } = deps
  const { namespace, vs, state, manifest, canaryVersion, warnings, readOnly } = read
  const canaryDeployment = manifest.metadata.name
  const canarySubset = config.canarySubset ?? defaultCanarySubset(canaryVersion)
  const podLabels: Record<string, string> = manifest.spec?.template?.metadata?.labels ?? {}

  const drs = await cluster.listIstio('DestinationRule', namespace)
  const hostGuess = routeServiceName(vs, namespace, config.route, state)
  const service = hostGuess ? await cluster.getService(namespace, hostGuess) : undefined
  // A rollout in flight of the same version is resumed; its subsets come from the state.
  const inFlight = isInFlight(state)
  const resuming = inFlight && state!.canary.version === canaryVersion
  if (!inFlight) {
    const decision = await redeployDecision(config, deps, { namespace, vs, drs, state, manifest, version: canaryVersion, readOnly })
    if (decision.kind === 'refuse') throw new PreflightError(decision.reason)
    if (decision.kind === 'already-stable') return alreadyStable(config, read, canarySubset, decision.note)
    if (decision.note) deps.log.info(decision.note)
  }
  // planCommand refused a rollout in flight of another version without input 'supersede'.
  const superseded = inFlight && !resuming ? state : undefined
  const { routeView, drs: judgedDrs } = afterRollbackOf(superseded, vs, drs, namespace)
  const topology = resolveTopology({
    vs: routeView,
    drs: judgedDrs,
    destinationRuleName: config.destinationRule,
    service,
    namespace,
    routeName: config.route,
    versionLabel: config.versionLabel,
    canaryVersion,
    canarySubset,
    canaryPodLabels: podLabels,
    existingState: resuming ? state : undefined
  })

  const members = await lockstepMembers(config, deps, {
    namespace,
    holder: { vs: routeView, topology },
    drs: judgedDrs,
    podLabels,
    canarySubset,
    canaryVersion,
    state: resuming ? state : undefined,
    superseded
  })

  // A resumed rollout passed this guard when it started.
  if (!resuming) await versionGuard(config, deps, topology.stableVersion, canaryVersion, `${namespace}/${config.virtualService}`, warnings)

  const stableDeployment = await findStableDeployment(config, deps, { namespace, drs: judgedDrs, topology, manifest, warnings })

  await checkSidecar(deps, namespace, manifest, warnings)
  await checkAccess(deps, namespace, config, topology.destinationRuleName, true, warnings, readOnly, members)
  // Loaded here, after the first requests: outside the startup bundle.
  const { preflightCapacity } = await loadCanaryCapacity()
  const { capacity, capacityPlan } = await preflightCapacity(config, deps, { namespace, manifest, stableDeployment, readOnly }, warnings)

  const stable: RolloutState['stable'] = {
    version: topology.stableVersion,
    subset: topology.stableSubset,
    deployment: stableDeployment?.metadata.name
  }
  const canary: RolloutState['canary'] = { version: canaryVersion, subset: canarySubset, deployment: canaryDeployment }
  const route = routeOf(topology)
  refuseUnfitExposures(config.steps, routeView, route, topology.host, canarySubset)

  if (topology.section === 'tcp') {
    const { checkTcpGates } = await loadTrafficTargets()
    checkTcpGates(deps, `tcp route #${topology.routeIndex} of VirtualService ${namespace}/${config.virtualService}`)
  }
  await preflightGates(config, deps, { namespace, host: topology.host, stable, canary })
  // Callers outside the mesh are measured by their HTTP requests, which a TCP route has none of.
  if (topology.section !== 'tcp') await checkOutsideMesh(deps, { namespace, stable, service, canaryPodLabels: podLabels }, warnings)
  warnGitOps([[config.virtualService, vs], ...members.map((m) => [m.member.virtualService, m.vs] as const)], warnings)
  return {
    namespace,
    state,
    route,
    host: topology.host,
    destinationRule: topology.destinationRuleName,
    stable,
    canary,
    members: members.map((m) => m.member),
    canaryManifest: manifest,
    capacity,
    capacityPlan,
    warnings
  }
}

/**
 * The route and DestinationRules a deploy is judged against: as they are, or, when it supersedes a
 * rollout in flight, as they will be once that rollout's canary is rolled back.
 */
function afterRollbackOf(
  superseded: RolloutState | undefined,
  vs: KubeObject,
  drs: KubeObject[],
  namespace: string
): { routeView: KubeObject; drs: KubeObject[] } {
  if (!superseded) return { routeView: vs, drs }
  return {
    routeView: withoutCanary(vs, superseded, namespace),
    drs: drs.map((d) => (d.metadata.name === superseded.destinationRule ? withoutSubset(d, superseded.canary.subset) : d))
  }
}

/** The VirtualServices moved in lockstep with the state holder; none unless input 'virtual-service' names more than one. */
async function lockstepMembers(
  config: Config,
  deps: CommandDeps,
  read: MemberRead
): Promise<Array<{ vs: KubeObject; member: RouteMember }>> {
  if (config.virtualServices.length <= 1) return []
  return (await loadTrafficTargets()).resolveMembers(config, deps, read)
}

/** Where the route is found again: its index, and its name and section when it has them. */
function routeOf(topology: Topology): RolloutState['route'] {
  return {
    index: topology.routeIndex,
    ...(topology.routeName ? { name: topology.routeName } : {}),
    ...(topology.section ? { section: topology.section } : {})
  }
}

/** A VirtualService a GitOps tool also manages gets its weights reverted: each such one is warned of. */
function warnGitOps(virtualServices: Array<readonly [string, KubeObject]>, warnings: string[]): void {
  for (const [name, obj] of virtualServices) {
    if (managedByGitOps(obj)) {
      warnings.push(
        `VirtualService ${name} is also managed by ${managedByGitOps(obj)}; configure it to ignore .spec.http[].route[].weight, or it will revert the weights (the rollout then stops and rolls back)`
      )
    }
  }
}

/** A match or mirror step the route cannot take (its own mirror, a match on the same header) is refused before any write. */
function refuseUnfitExposures(steps: Step[], vs: KubeObject, route: RolloutState['route'], host: string, canarySubset: string): void {
  const exposures = steps.flatMap((step) => (step.kind === 'match' || step.kind === 'mirror' ? [step] : []))
  if (exposures.length === 0) return
  if (route.section === 'tcp') refuseExposureSteps(steps, 'a TCP route has no headers, cookies or request mirroring')
  const refusal = exposureRefusal(vs, routeIndexOf(vs, route), host, canarySubset, exposures)
  if (refusal) throw new PreflightError(`Input 'steps' (${quote(formatSchedule(steps))}) cannot be carried out: ${refusal}`)
}

/**
 * Header, cookie and mirror steps are written as a VirtualService http route of the action's own
 * or a mirror over DestinationRule subsets; any other target refuses them before any write.
 */
export function refuseExposureSteps(steps: Step[], why: string): void {
  if (!steps.some((step) => step.kind === 'match' || step.kind === 'mirror')) return
  throw new PreflightError(
    `Input 'steps' (${quote(formatSchedule(steps))}) has a header, cookie or mirror step, but ${why}; ` +
      `expected weights and pauses only for this route.`
  )
}

/** A re-run of the release that is already stable: nothing to roll out; the note says why. */
function alreadyStable(config: Config, read: DeployRead, canarySubset: string, note: string): Preflight {
  const { namespace, state, canaryVersion, warnings } = read
  const canaryDeployment = read.manifest.metadata.name
  const released = { version: canaryVersion, subset: canarySubset, deployment: canaryDeployment }
  return {
    namespace,
    state,
    route: state?.route ?? { index: 0 },
    host: state?.host ?? '',
    destinationRule: state?.destinationRule ?? config.destinationRule ?? '',
    stable: released,
    canary: released,
    members: [],
    warnings,
    alreadyStable: { version: canaryVersion, deployment: canaryDeployment, note }
  }
}

/** Every gate checks what it will ask (a metric query's dry run, a webhook's reachability) before anything is written. */
export async function preflightGates(
  config: Config,
  deps: CommandDeps,
  at: { namespace: string; host: string; stable: RolloutState['stable']; canary: RolloutState['canary'] }
): Promise<void> {
  for (const gate of deps.gates) {
    await gate.preflight({
      ...at,
      virtualService: config.virtualService,
      canaryWeight: 0,
      stepIndex: -1,
      schedule: config.steps,
      windowSeconds: Math.max(1, config.intervalSeconds),
      signal: deps.signal
    })
  }
}

interface RedeployView {
  namespace: string
  vs: KubeObject
  drs: KubeObject[]
  state?: RolloutState
  manifest: KubeObject
  version: string
  /** A host-level split: whether the route's one live Service serves `version` (instead of a subset's labels). */
  servesVersion?: boolean
  readOnly?: ReadOnlyNotes
}

/**
 * Gathers what decideRedeploy needs when no rollout is in flight. The version is stable when the
 * route's one live destination is a subset selecting that version (whatever the subset's name).
 * Whether the manifest matches a live Deployment is asked of the apiserver: a dry-run server-side
 * apply with our field manager (forced, so fields another manager owns show up as changes instead
 * of a conflict) returns the object as the apply would leave it, and deploymentChanges compares it
 * with the live one, leaving out what only the apiserver sets (see there).
 */
export async function redeployDecision(config: Config, deps: CommandDeps, r: RedeployView): Promise<RedeployDecision> {
  const { cluster } = deps
  const { namespace, state, manifest } = r
  const serving = servingSubset(r.vs, namespace, config.route ?? state?.route.name)
  const drName = config.destinationRule ?? state?.destinationRule
  const stable =
    r.servesVersion ??
    (serving !== undefined &&
      r.drs.some(
        (dr) =>
          (drName === undefined || dr.metadata.name === drName) && findSubset(dr, serving)?.labels?.[config.versionLabel] === r.version
      ))
  const lastOfVersion = state && ['rolled-back', 'aborted'].includes(state.phase) && state.canary.version === r.version
  const facts = {
    version: r.version,
    versionLabel: config.versionLabel,
    deployment: manifest.metadata.name,
    virtualService: `${namespace}/${config.virtualService}`,
    stable,
    last: state,
    retry: config.retry
  }
  if (!stable && !lastOfVersion) return decideRedeploy({ ...facts, changes: [] })
  // A rolled-back release is compared with the Deployment that rollout used (scaled to 0 since).
  const name = stable ? manifest.metadata.name : state!.canary.deployment
  if (name !== manifest.metadata.name)
    return decideRedeploy({ ...facts, changes: [`Deployment name: ${quote(name)} → ${quote(manifest.metadata.name)}`] })
  const patch: AccessCheck = { verb: 'patch', group: 'apps', resource: 'deployments', namespace }
  if (r.readOnly && !(await deps.cluster.canI([patch]))[0]?.allowed) {
    r.readOnly.uncompared = { version: r.version, deployment: name }
    return { kind: 'new-rollout' }
  }
  if (!r.readOnly) await requireAccess(deps, namespace, [patch])
  const live = await cluster.getDeployment(namespace, name)
  if (!live) return decideRedeploy({ ...facts, changes: undefined })
  const applied = await cluster.applyDeployment(manifest, { dryRun: true, force: true })
  // The rollback scaled the old canary to 0: its replica count says nothing about the release.
  return decideRedeploy({ ...facts, changes: deploymentChanges(live, applied, stable ? [] : ['spec.replicas']) })
}

/**
 * The stable Deployment: the one whose pods the stable subset selects (none, with a warning, when
 * several do). Refuses a canary whose selector and the stable one's select each other's pods, and
 * a canary Deployment name that already runs the stable version.
 */
async function findStableDeployment(
  config: Config,
  deps: CommandDeps,
  r: { namespace: string; drs: KubeObject[]; topology: Topology; manifest: KubeObject; warnings: string[] }
): Promise<KubeObject | undefined> {
  const { cluster } = deps
  const { namespace, drs, topology, manifest, warnings } = r
  const canaryDeployment = manifest.metadata.name
  const podLabels: Record<string, string> = manifest.spec?.template?.metadata?.labels ?? {}
  const stableDr = drs.find((d) => d.metadata.name === topology.destinationRuleName)
  const stableSubsetLabels = stableDr ? findSubset(stableDr, topology.stableSubset)?.labels : undefined
  const deployments = await cluster.listDeployments(namespace)
  const stableDeployments = deployments.filter(
    (d) =>
      d.metadata.name !== canaryDeployment &&
      stableSubsetLabels &&
      selectsPods(stableSubsetLabels, d.spec?.template?.metadata?.labels ?? {})
  )
  if (stableDeployments.length > 1) {
    warnings.push(
      `several Deployments run the stable version (${stableDeployments.map((d) => d.metadata.name).join(', ')}); none will be retired after promotion`
    )
  }
  const stableDeployment = stableDeployments.length === 1 ? stableDeployments[0] : undefined
  if (stableDeployment) {
    const stableSelector: Record<string, string> = stableDeployment.spec?.selector?.matchLabels ?? {}
    const canarySelector: Record<string, string> = manifest.spec?.selector?.matchLabels ?? {}
    if (
      selectorMatches(stableDeployment.spec?.selector, podLabels) ||
      selectorMatches(manifest.spec?.selector, stableDeployment.spec?.template?.metadata?.labels ?? {})
    ) {
      throw new PreflightError(
        `Deployment ${quote(canaryDeployment)} and the stable Deployment ${quote(stableDeployment.metadata.name)} select each other's pods ` +
          `(stable selector ${quote(stableSelector)}, canary selector ${quote(canarySelector)}); the two controllers would fight. ` +
          `Give each version its own selector that includes the ${quote(config.versionLabel)} label.`
      )
    }
  }
  const existing = await cluster.getDeployment(namespace, canaryDeployment)
  // stableDeployments leaves out the canary's name, so judge an existing one by its pods' labels.
  if (existing && stableSubsetLabels && selectsPods(stableSubsetLabels, existing.spec?.template?.metadata?.labels ?? {})) {
    throw new PreflightError(
      `Deployment ${quote(canaryDeployment)} already runs the stable version ${quote(topology.stableVersion)} (its pods match subset ${quote(topology.stableSubset)}); ` +
        `each version needs its own Deployment name: rename the canary Deployment in input 'manifests'.`
    )
  }

  return stableDeployment
}

/** A subset's labels pick out these pods; a subset without labels is taken to pick out none of them. */
export function selectsPods(subsetLabels: Record<string, string>, podLabels: Record<string, string>): boolean {
  return Object.keys(subsetLabels).length > 0 && labelsMatch(subsetLabels, podLabels)
}

/** Routing rules apply only to meshed callers and meshed pods: without Envoy the weights are ignored. */
export async function checkSidecar(deps: CommandDeps, namespace: string, manifest: KubeObject, warnings: string[]): Promise<void> {
  // Namespaces are cluster-scoped: a least-privilege Role cannot read them, so a denial only warns.
  let ns: KubeObject | undefined
  let nsReadable = true
  try {
    ns = await deps.cluster.getNamespace(namespace)
  } catch {
    nsReadable = false
  }
  const nsLabels: Record<string, string> = ns?.metadata.labels ?? {}
  const tpl = manifest.spec?.template?.metadata ?? {}
  const podLabels: Record<string, string> = tpl.labels ?? {}
  const podAnnotations: Record<string, string> = tpl.annotations ?? {}
  const optOut = podLabels['sidecar.istio.io/inject'] ?? podAnnotations['sidecar.istio.io/inject']
  if (optOut === 'false') {
    throw new PreflightError(
      `Deployment ${quote(manifest.metadata.name)} opts out of the Istio sidecar (sidecar.istio.io/inject: "false"); without Envoy the canary's routing rules are ignored. Remove the opt-out.`
    )
  }
  const injectedTemplate =
    podAnnotations['sidecar.istio.io/status'] !== undefined ||
    (manifest.spec?.template?.spec?.containers ?? []).some((c: { name?: string }) => c.name === 'istio-proxy')
  const nsInjected =
    nsLabels['istio-injection'] === 'enabled' || (nsLabels['istio.io/rev'] !== undefined && nsLabels['istio-injection'] !== 'disabled')
  const podOptIn = optOut === 'true'
  if (!injectedTemplate && !nsInjected && !podOptIn && !nsReadable) {
    warnings.push(
      `could not read namespace ${namespace} (cluster-scoped; the Role does not cover it), so sidecar injection was not verified; the pods must get the Istio sidecar or the weights are ignored`
    )
    return
  }
  if (!injectedTemplate && !nsInjected && !podOptIn) {
    throw new PreflightError(
      `The pods of Deployment ${quote(manifest.metadata.name)} will not get the Istio sidecar: namespace ${quote(namespace)} has neither the label istio-injection=enabled nor istio.io/rev, ` +
        `and the pod template is not injected (istioctl kube-inject) nor labelled sidecar.istio.io/inject: "true". Without Envoy the routing rules are ignored, as the weights would be. ` +
        `Label the namespace: kubectl label namespace ${namespace} istio-injection=enabled`
    )
  }
}

/**
 * Callers without a sidecar ignore the weights: once the canary has a Ready pod behind their Service
 * they reach it by pod count. Istio's metrics of the stable version show how many there are.
 */
export async function checkOutsideMesh(
  deps: CommandDeps,
  where: { namespace: string; stable: RolloutState['stable']; service?: KubeObject; canaryPodLabels: Record<string, string> },
  warnings: string[]
): Promise<void> {
  const probe = deps.outsideMesh
  if (!probe) return
  const { namespace, stable, service } = where
  const window = OUTSIDE_MESH_PREFLIGHT_WINDOW_SECONDS
  const reading: OutsideMeshReading = stable.deployment
    ? await probe.measure({ namespace, workload: stable.deployment }, window, deps.signal)
    : {
        kind: 'unknown',
        windowSeconds: window,
        reason: 'the Deployment of the stable version is not known, so its requests cannot be looked up'
      }
  const selector: Record<string, string> | undefined = service?.spec?.selector
  const decision = decideOutsideMesh(probe.policy, reading, {
    stableVersion: stable.version,
    stableWorkload: stable.deployment,
    ...(service && selector
      ? { service: { name: service.metadata.name, selectsCanary: selectsPods(selector, where.canaryPodLabels) } }
      : {})
  })
  switch (decision.level) {
    case 'none':
      return
    case 'info':
      deps.log.info(decision.message)
      return
    case 'warning':
      deps.log.warning(decision.message)
      warnings.push(decision.message)
      return
    case 'refuse':
      throw new PreflightError(decision.message)
  }
}

/** The field manager of a GitOps tool that also writes this object, if any. */
export function managedByGitOps(vs: KubeObject): string | undefined {
  const known = ['kustomize-controller', 'helm-controller', 'argocd-controller', 'argocd-application-controller', 'flux']
  for (const m of vs.metadata.managedFields ?? []) {
    if (m.manager && known.some((k) => m.manager?.startsWith(k))) return m.manager
  }
  return undefined
}
