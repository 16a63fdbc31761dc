import type { AccessCheck } from '../cluster/cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import type { Config } from '../config/config.js'
import { validateCanaryDeployment } from '../config/manifests.js'
import { loadManifests } from './manifest-files.js'
import { PreflightError, quote } from '../errors.js'
import { planCommand } from '../rollout/command-plan.js'
import { isInFlight } from '../rollout/planner.js'
import { effectiveMinSoak, soakRefusal } from '../rollout/soak.js'
import { stateOf } from '../rollout/state-codec.js'
import type { RolloutPlacement, RolloutState, RouteMember } from '../rollout/types.js'
import type { CommandDeps } from './command-deps.js'
import type { VersionServices } from '../traffic/version-services.js'
import type { TrafficRouter } from '../traffic/traffic-router.js'
import type { CapacityRecord } from '../rollout/capacity-record.js'
import {
  loadCanaryCapacity,
  loadCanaryService,
  loadDeployPreflight,
  loadServiceSplit,
  loadTrafficTargets,
  loadVersionRule
} from './lazy-modules.js'
export { loadVersionRule } from './lazy-modules.js'

/** Everything a command needs to know before its first write. */
export interface Preflight extends RolloutPlacement {
  namespace: string
  state?: RolloutState
  /** The VirtualServices moved in lockstep with the state holder, in write order ([] when one). */
  members: RouteMember[]
  canaryManifest?: KubeObject
  /** The canary's Service as the manifests carry it (a host-level split), applied before any weight. */
  canaryService?: KubeObject
  /** A host-level split: the per-version Services its router adds and removes. */
  versionServices?: VersionServices
  /** An HTTPRoute rollout: the lazily loaded module that makes its router. */
  httpRoute?: { httpRouteRouter: (config: Config, deps: CommandDeps, pre: Preflight, epoch: number) => TrafficRouter }
  /** Deploy only: how the canary's replicas are chosen, and the HPA it gets (recorded in a new rollout's state). */
  capacity?: CapacityRecord
  /** Deploy only: how the canary's capacity will move, for the dry-run plan (none when as the manifest says). */
  capacityPlan?: string
  warnings: string[]
  /** Deploy only: the version is already stable and its Deployment matches the manifest; nothing to write. */
  alreadyStable?: { version: string; deployment: string; note: string }
  /** Read-only preflight (command plan): what it could not check. */
  readOnly?: ReadOnlyNotes
}

/** What a read-only preflight left out: the checks that need a (dry-run) write the credentials may not make. */
export interface ReadOnlyNotes {
  /** The deploy's permissions SelfSubjectAccessReview denies these credentials (`update networking.istio.io/virtualservices x`). */
  denied: string[]
  /** No write verb among them: the plan may check its writes as dry runs. */
  writesAllowed: boolean
  /** A stable version's manifest not compared with its live Deployment (a dry-run apply these credentials may not make). */
  uncompared?: { version: string; deployment: string }
}

export interface PreflightOptions {
  /**
   * Get and list only (command plan): write permissions are asked of SelfSubjectAccessReview and
   * reported, not required, and the dry-run apply is made only where they are granted.
   */
  readOnly?: boolean
}

/**
 * Thrown by preflight when a route named in input 'virtual-service' delegates to another
 * VirtualService: runCommand then follows the delegation (commands/delegation.ts, loaded only then)
 * and runs preflight again on the delegate.
 */
export class DelegationFound extends Error {
  constructor(readonly virtualService: string) {
    super(`VirtualService ${virtualService}: its route delegates`)
    this.name = 'DelegationFound'
  }
}

/** Whether the route a target names (or its only http route) hands over to a delegate VirtualService. */
export function routeDelegates(vs: KubeObject, routeName?: string): boolean {
  const http: Array<{ name?: unknown; delegate?: unknown }> = Array.isArray(vs.spec?.http) ? vs.spec.http : []
  const route = routeName !== undefined ? http.find((r) => r.name === routeName) : http.length === 1 ? http[0] : undefined
  return route?.delegate !== undefined && route.delegate !== null
}

/** A VirtualService marked as moving in lockstep with another rollout may not be ours (lockstep-preflight says). */
export async function checkNotClaimed(vs: KubeObject, stateOn: string): Promise<void> {
  // The member marker's annotation (traffic/istio/member-marker.ts), read only when it is there.
  if (vs.metadata.annotations?.['istio-canary.io/rollout-member'] === undefined) return
  const { checkMarker } = await loadTrafficTargets()
  checkMarker(vs, stateOn)
}

/** A VirtualService without hosts is only a delegate: a deploy checks that some root delegates to it. */
export async function checkDelegate(config: Config, deps: CommandDeps, namespace: string, vs: KubeObject): Promise<void> {
  const hosts: unknown = vs.spec?.hosts
  if (config.command !== 'deploy' || (Array.isArray(hosts) && hosts.length > 0)) return
  const { checkDelegatedTo } = await loadTrafficTargets()
  await checkDelegatedTo(deps, namespace, vs)
}

/**
 * Reads and checks everything before any write: inputs and manifests, the VirtualService, route,
 * DestinationRule and Service, the sidecar, RBAC, the gates' queries. Throws ConfigError or
 * PreflightError naming the input or object, quoting the value and saying what was expected.
 */
export async function preflight(config: Config, deps: CommandDeps, opts: PreflightOptions = {}): Promise<Preflight> {
  const warnings: string[] = []
  const readOnly: ReadOnlyNotes | undefined = opts.readOnly ? { denied: [], writesAllowed: true } : undefined
  // A deploy's own checks load while its manifests are read and its first requests are on the wire.
  const deployChecks = config.command === 'deploy' ? loadDeployPreflight() : undefined
  void deployChecks?.catch(() => undefined)
  const manifests = config.command === 'deploy' ? await readManifests(config, deps) : undefined
  const namespace = config.namespace ?? manifests?.manifest.metadata.namespace ?? deps.defaultNamespace ?? 'default'
  const inNamespace = (o: KubeObject): KubeObject => ({ ...o, metadata: { ...o.metadata, namespace } })
  const manifest = manifests && inNamespace(manifests.manifest)
  const manifestService = manifests?.service && inNamespace(manifests.service)
  const canaryVersion = manifests?.version

  const vs = await readRouteObject(config, deps, namespace)
  const state = stateOf(vs)
  await checkNotClaimed(vs, `${namespace}/${config.virtualService}`)
  if (config.virtualServices.length > 1 && isInFlight(state) && (config.command !== 'deploy' || state!.canary.version === canaryVersion)) {
    const { checkSameMembers } = await loadTrafficTargets()
    checkSameMembers(config, namespace, state!)
  }

  // Decided again under the lock; here so that a command that may not run writes nothing.
  const plan = planCommand({
    command: config.command,
    state,
    target: `${namespace}/${config.virtualService}`,
    version: config.command === 'deploy' ? canaryVersion : config.version,
    full: config.full,
    supersede: config.supersede
  })
  if (plan.kind === 'refuse') throw new PreflightError(plan.message)
  if (config.command === 'promote' && state && (state.phase === 'paused' || state.phase === 'progressing')) {
    await versionGuard(config, deps, state.stable.version, state.canary.version, `${namespace}/${config.virtualService}`, warnings)
    const early = soakRefusal(state, deps.clock.now(), effectiveMinSoak(state, config.minSoakSeconds), config.full)
    if (early) throw new PreflightError(early)
  }
  if (config.command !== 'deploy') return preflightFromState(config, deps, namespace, state, warnings)

  if (!manifest || !canaryVersion) throw new Error('internal: deploy without a manifest')
  const { preflightByTarget } = await deployChecks!
  const pre = await preflightByTarget(config, deps, { namespace, vs, state, manifest, manifestService, canaryVersion, warnings, readOnly })
  return readOnly ? { ...pre, readOnly } : pre
}

/** A deploy's manifests: the canary Deployment, its version, and the canary's Service when one comes along. */
async function readManifests(config: Config, deps: CommandDeps): Promise<{ manifest: KubeObject; version: string; service?: KubeObject }> {
  const loaded = await loadManifests(config.manifests, { cwd: deps.cwd })
  // The canary's Service may come along (per-version Services): read only when there is one.
  let service: KubeObject | undefined
  if (loaded.documents.some((d) => (d.object as { kind?: unknown } | null)?.kind === 'Service')) {
    service = (await loadCanaryService()).takeCanaryService(loaded.documents, { namespace: config.namespace }).service
  }
  const canary = validateCanaryDeployment(loaded.documents, {
    versionLabel: config.versionLabel,
    version: config.version,
    namespace: config.namespace
  })
  return { manifest: canary.deployment as KubeObject, version: canary.version, ...(service ? { service } : {}) }
}

/** The VirtualService or HTTPRoute whose weights move traffic, after the permission to read it is checked. */
async function readRouteObject(config: Config, deps: CommandDeps, namespace: string): Promise<KubeObject> {
  // The reads below are allowed or not before the first one: a missing permission is named, not a bare 403.
  await requireAccess(deps, namespace, readChecks(config, namespace))
  const vs = await deps.cluster.getIstio(config.routeKind, namespace, config.virtualService)
  if (!vs && config.routeKind === 'HTTPRoute') {
    throw new PreflightError(
      `HTTPRoute ${quote(config.virtualService)} was not found in namespace ${quote(namespace)} (input 'http-route'). ` +
        `Create it first with a rule whose backendRef is the stable version's Service; istio-canary edits an HTTPRoute you own, it does not create one.`
    )
  }
  if (!vs) {
    throw new PreflightError(
      `VirtualService ${quote(config.virtualService)} was not found in namespace ${quote(namespace)} (input 'virtual-service'). ` +
        `Create it first with a route to the stable subset; istio-canary edits a VirtualService you own, it does not create one.`
    )
  }
  // Delegation is a VirtualService's: an HTTPRoute has no spec.hosts and no delegate routes.
  if (config.routeKind === 'VirtualService') {
    if (routeDelegates(vs, config.route)) throw new DelegationFound(config.virtualService)
    await checkDelegate(config, deps, namespace, vs)
  }
  return vs
}

/** promote / abort / status work from the state the rollout left on the route. */
async function preflightFromState(
  config: Config,
  deps: CommandDeps,
  namespace: string,
  state: RolloutState | undefined,
  warnings: string[]
): Promise<Preflight> {
  if (!state) {
    return {
      namespace,
      state,
      route: { index: 0 },
      host: '',
      destinationRule: config.destinationRule ?? '',
      stable: { version: '', subset: '' },
      canary: { version: config.version ?? '', subset: '', deployment: '' },
      members: [],
      warnings
    }
  }
  if (config.command !== 'status')
    await checkAccess(deps, namespace, config, state.destinationRule, false, warnings, undefined, state.members)
  // The canary's HPA moves with the weights, and goes on rollback or retirement.
  if (config.command !== 'status' && state.capacity?.canaryHpa) await (await loadCanaryCapacity()).requireHpaRights(deps, namespace)
  return {
    namespace,
    state,
    route: state.route,
    host: state.host,
    destinationRule: state.destinationRule,
    ...(state.backends ? { backends: state.backends } : {}),
    ...(state.backends === 'services' ? { versionServices: (await loadServiceSplit()).versionServices(config, deps, namespace) } : {}),
    ...(config.routeKind === 'HTTPRoute' ? { httpRoute: await loadServiceSplit() } : {}),
    stable: state.stable,
    canary: state.canary,
    members: state.members ?? [],
    warnings
  }
}

/** What preflight has read when it comes to a deploy's own checks. */
export interface DeployRead {
  namespace: string
  vs: KubeObject
  state?: RolloutState
  manifest: KubeObject
  manifestService?: KubeObject
  canaryVersion: string
  warnings: string[]
  readOnly?: ReadOnlyNotes
}

/** The version rule: refuses a downgrade, or lets it through with a warning the report shows. */
export async function versionGuard(
  config: Config,
  deps: CommandDeps,
  stable: string,
  canary: string,
  target: string,
  warnings: string[]
): Promise<void> {
  const { decideVersionOrder } = await loadVersionRule()
  const decision = decideVersionOrder({
    stable,
    canary,
    order: config.versionOrder,
    allowDowngrade: config.allowDowngrade,
    target: `VirtualService ${quote(target)}`
  })
  if (decision.kind === 'refuse') throw new PreflightError(decision.reason)
  if (decision.kind === 'downgrade') warnings.push(decision.note)
  else if (decision.note) deps.log.info(decision.note)
}

/** The reads preflight itself makes before it knows the DestinationRule. */
function readChecks(config: Config, namespace: string): AccessCheck[] {
  const checks: AccessCheck[] =
    config.routeKind === 'HTTPRoute'
      ? [{ verb: 'get', ...routeResource(config), namespace, name: config.virtualService }]
      : config.virtualServices.map((t) => ({
          verb: 'get',
          group: 'networking.istio.io',
          resource: 'virtualservices',
          namespace,
          name: t.name
        }))
  if (config.command === 'deploy') {
    checks.push(
      { verb: 'list', group: 'networking.istio.io', resource: 'destinationrules', namespace },
      { verb: 'get', group: '', resource: 'services', namespace },
      { verb: 'list', group: 'apps', resource: 'deployments', namespace },
      { verb: 'get', group: 'apps', resource: 'deployments', namespace }
    )
  }
  return checks
}

/** The API group and resource of the routing object the rollout writes. */
function routeResource(config: Config): { group: string; resource: string } {
  return config.routeKind === 'HTTPRoute'
    ? { group: 'gateway.networking.k8s.io', resource: 'httproutes' }
    : { group: 'networking.istio.io', resource: 'virtualservices' }
}

/** SelfSubjectAccessReview for every verb the command will use; all missing ones in one error. */
export async function checkAccess(
  deps: CommandDeps,
  namespace: string,
  config: Config,
  destinationRule: string,
  deploy: boolean,
  warnings: string[],
  readOnly?: ReadOnlyNotes,
  members: Array<RouteMember | { member: RouteMember }> = []
): Promise<void> {
  const each = members.map((m) => ('member' in m ? m.member : m))
  const istio = (resource: string, names: string[]): AccessCheck[] =>
    [...new Set(names)].flatMap((name) => [
      { verb: 'get', group: 'networking.istio.io', resource, namespace, name },
      { verb: 'update', group: 'networking.istio.io', resource, namespace, name }
    ])
  const checks: AccessCheck[] = [
    ...istio(
      'virtualservices',
      each.map((m) => m.virtualService)
    ),
    ...istio(
      'destinationrules',
      each.map((m) => m.destinationRule)
    ),
    { verb: 'get', ...routeResource(config), namespace, name: config.virtualService },
    { verb: 'update', ...routeResource(config), namespace, name: config.virtualService },
    // Before a version is retired: which other routes of the namespace still send traffic to it.
    { verb: 'list', group: 'networking.istio.io', resource: 'virtualservices', namespace },
    ...(config.routeKind === 'HTTPRoute' ? [{ verb: 'list', ...routeResource(config), namespace }] : []),
    { verb: 'get', group: 'apps', resource: 'deployments', namespace },
    { verb: 'patch', group: 'apps', resource: 'deployments', namespace },
    { verb: 'list', group: '', resource: 'pods', namespace },
    { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace },
    { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace },
    { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace }
  ]
  if (destinationRule !== '') {
    checks.push(
      { verb: 'get', group: 'networking.istio.io', resource: 'destinationrules', namespace, name: destinationRule },
      { verb: 'update', group: 'networking.istio.io', resource: 'destinationrules', namespace, name: destinationRule }
    )
  } else {
    // Per-version Services: the canary's is applied; with retire: delete ours leave with their version.
    checks.push({ verb: 'get', group: '', resource: 'services', namespace })
    if (deploy) checks.push({ verb: 'patch', group: '', resource: 'services', namespace })
    if (config.retire === 'delete') {
      checks.push(
        { verb: 'delete', group: '', resource: 'services', namespace },
        { verb: 'delete', group: 'networking.istio.io', resource: 'destinationrules', namespace }
      )
    }
    if (config.copyTrafficPolicy && deploy)
      checks.push({ verb: 'create', group: 'networking.istio.io', resource: 'destinationrules', namespace })
  }
  if (deploy) {
    checks.push(
      { verb: 'list', group: 'networking.istio.io', resource: 'destinationrules', namespace },
      { verb: 'create', group: 'apps', resource: 'deployments', namespace },
      { verb: 'list', group: 'apps', resource: 'deployments', namespace },
      { verb: 'get', group: '', resource: 'services', namespace }
    )
  }
  // A promote finishes the rollout too, and so retires the stable Deployment.
  if (config.retire === 'delete' && config.command !== 'abort')
    checks.push({ verb: 'delete', group: 'apps', resource: 'deployments', namespace })
  // Only for the diagnosis of a canary that fails to start (the deployment waiter does without).
  const events: AccessCheck = { verb: 'list', group: '', resource: 'events', namespace }
  if (readOnly) {
    // The plan's own reads were required before its first read; the deploy's permissions are asked and reported.
    const denied = (await deps.cluster.canI(checks)).filter((r) => !r.allowed)
    readOnly.denied = denied.map(describeAccess)
    readOnly.writesAllowed = denied.every((r) => READ_VERBS.has(r.verb))
  } else await requireAccess(deps, namespace, checks, deploy ? [events] : [], warnings)
  await checkMeshWideView(deps, namespace, warnings)
}

/**
 * Routes in other namespaces can send traffic to our subsets too. Looking at them needs `list` on
 * virtualservices cluster-wide (a ClusterRole); without it the retirement checks only this
 * namespace, and the user is told so before anything changes.
 */
async function checkMeshWideView(deps: CommandDeps, namespace: string, warnings: string[]): Promise<void> {
  const [r] = await deps.cluster.canI([{ verb: 'list', group: 'networking.istio.io', resource: 'virtualservices', namespace: '' }])
  if (r && !r.allowed) {
    warnings.push(
      `the Kubernetes credentials may not list VirtualServices in all namespaces, so before retiring a version only the routes of namespace ${namespace} are checked for references to it; ` +
        `a route in another namespace to that version would lose its pods. Grant the ClusterRole istio-canary-route-reader of the README to let the action look.`
    )
  }
}

const READ_VERBS: ReadonlySet<string> = new Set(['get', 'list', 'watch'])

/** `update networking.istio.io/virtualservices reviews`. */
function describeAccess(d: AccessCheck): string {
  return `${d.verb} ${d.group ? `${d.group}/` : ''}${d.resource}${d.name ? ` ${d.name}` : ''}`
}

/** Throws one PreflightError naming every denied check; a denied `optional` check only warns. */
export async function requireAccess(
  deps: CommandDeps,
  namespace: string,
  checks: AccessCheck[],
  optional: AccessCheck[] = [],
  warnings: string[] = []
): Promise<void> {
  const results = await deps.cluster.canI([...checks, ...optional])
  const describe = describeAccess
  const denied = results.slice(0, checks.length).filter((r) => !r.allowed)
  if (denied.length > 0) {
    throw new PreflightError(
      `The Kubernetes credentials may not: ${denied.map(describe).join(', ')} in namespace ${quote(namespace)}. Grant them (see the RBAC Role in the README); nothing was changed.`
    )
  }
  for (const r of results.slice(checks.length)) {
    if (!r.allowed)
      warnings.push(
        `the Kubernetes credentials may not ${describe(r)} in namespace ${namespace}: a canary that fails to start is reported without its pods' events`
      )
  }
}
