/**
 * IstioRouter: the TrafficRouter over one VirtualService route and its DestinationRule. It owns
 * the one guarded write loop for both objects: read, change only what we own, PUT under the
 * resourceVersion just read, retry on 409 (read again, decide again), and count a write only once
 * a read shows it. Every write is fenced: when the state on the VirtualService carries a later
 * lock epoch than ours, another run owns the rollout and this one stops writing.
 */
import type { Cluster, IstioKind } from '../../cluster/cluster.js'
import { DriftError, FencedError } from '../../errors.js'
import { guardedWrite } from '../guarded-write.js'
import { errorText } from '../../format.js'
import type { KubeObject } from '../../kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../rollout/state-codec.js'
import { describeExposure, exposureOf } from '../../rollout/exposure.js'
import type { Exposure, RolloutState } from '../../rollout/types.js'
import {
  routeLabel,
  splitShows,
  type RouteChange,
  type RouteView,
  type SubsetRemoval,
  type TrafficRouter,
  type WriteOptions
} from '../traffic-router.js'
import { hasSubset, withoutSubset, withSubset } from './destination-rule-transform.js'
import { serviceReferences, subsetReferences } from './subset-references.js'
import type { VersionServices } from '../version-services.js'
import { hasExposure, matchRouteName, showsExposure, withExposure } from './exposure-transform.js'
import {
  httpRoutes,
  isOwnedRoute,
  readSplit,
  routeIndexOf,
  withoutDestination,
  withSplit,
  withState,
  type DestinationKey
} from './virtual-service-transform.js'

export interface IstioRouterOptions {
  cluster: Cluster
  namespace: string
  virtualService: string
  destinationRule: string
  /** Lease epoch of this run: every write checks that no later holder has written. */
  epoch: number
  /** Waits between retries of a conflicting DestinationRule write (default: none). */
  sleep?: (ms: number) => Promise<void>
  /** The time to stamp on each written state (ISO 8601). */
  now: () => string
  /**
   * A host-level split: the route's destinations are per-version Services (no subsets, no
   * DestinationRule of ours); these are their backends.
   */
  services?: VersionServices
}

/** Conflicting writes in a row before giving up. */
const ATTEMPTS = 5
/**
 * One DestinationRule is shared by every VirtualService routing to its host, so many rollouts may
 * add and remove their subsets at once: its conflicts are retried more often, with a growing,
 * jittered pause, so that twenty at once all get through.
 */
const DR_ATTEMPTS = 12

export class IstioRouter implements TrafficRouter {
  readonly name: string
  /** The VirtualService as the read-back after our last write showed it, and the state we wrote on it. */
  protected lastReadBack?: { vs: KubeObject; state: RolloutState }

  constructor(protected readonly o: IstioRouterOptions) {
    this.name = `VirtualService ${o.namespace}/${o.virtualService}`
  }

  /** The DestinationRule holding this route's subsets. */
  get destinationRule(): string {
    return this.o.destinationRule
  }

  async readState(): Promise<RolloutState | undefined> {
    return this.liveState()
  }

  async readRoute(state: RolloutState): Promise<RouteView> {
    const vs = await this.getVs()
    const index = this.routeIndex(vs, state)
    const split = readSplit(vs, index, state.stable.subset, state.canary.subset, state.route.section, this.key)
    return {
      canaryWeight: split.canaryPresent ? split.canary : 0,
      canaryRouted: split.canaryPresent,
      ...(this.exposes(state) && hasExposure(vs, index, state.canary.subset) ? { exposed: true } : {})
    }
  }

  async write(next: RolloutState, change: RouteChange = { kind: 'state' }, opts: WriteOptions = {}): Promise<RolloutState> {
    let stamped = next
    // Start from our own last read-back: if anyone wrote since, its resourceVersion is stale, the
    // PUT answers 409, and the next attempt reads afresh (where drift and fencing are judged).
    let cached = this.lastReadBack
    this.lastReadBack = undefined
    /** The state on the object `decide` gets, when known without decoding it (our own read-back). */
    let known: RolloutState | undefined
    const back = await this.guarded(
      'VirtualService',
      this.o.virtualService,
      async () => {
        known = cached?.state
        const vs = cached?.vs ?? (await this.getVs())
        cached = undefined
        return vs
      },
      (vs) => {
        this.fence(known ?? stateOf(vs))
        known = undefined
        if (opts.expectCanaryWeight !== undefined) this.checkDrift(vs, next, opts.expectCanaryWeight)
        if (opts.expectExposure !== undefined) this.checkExposure(vs, next, opts.expectExposure)
        stamped = { ...next, epoch: this.o.epoch, updatedAt: this.o.now() }
        const encoded = encodeState(stamped)
        const body = withState(this.applyChange(vs, next, change), STATE_ANNOTATION, encoded)
        // The annotation is stored as sent: the very text we wrote is our write (and our stamp),
        // with no need to decode and check it again.
        const confirm = (b: KubeObject): boolean => b.metadata.annotations?.[STATE_ANNOTATION] === encoded && this.shows(b, next, change)
        return { body, confirm }
      }
    )
    this.lastReadBack = { vs: back, state: stamped }
    return stamped
  }

  /** Where this router's route is now, to leave it out of the routes that serve a subset. */
  async ownRoute(
    state: RolloutState
  ): Promise<{ namespace: string; virtualService: string; routeIndex: number; section?: 'http' | 'tcp' }> {
    const routeIndex = this.routeIndex(await this.getVs(), state)
    return { namespace: this.o.namespace, virtualService: this.o.virtualService, routeIndex, section: state.route.section ?? 'http' }
  }

  async addCanaryBackend(state: RolloutState, labels: Record<string, string>): Promise<void> {
    if (this.o.services) {
      await this.o.services.addCanary(state)
      return
    }
    await this.editDestinationRule((dr) => (hasSubset(dr, state.canary.subset) ? dr : withSubset(dr, state.canary.subset, labels)))
  }

  /** As the port says; `alsoExclude`: the lockstep siblings' routes, which the rollout handles too. */
  async routesServing(
    state: RolloutState,
    subset: string,
    alsoExclude: Array<{ namespace: string; virtualService: string; routeIndex: number; section?: 'http' | 'tcp' }> = []
  ): Promise<{ routes: string[]; blind?: string }> {
    const { cluster, namespace, virtualService } = this.o
    const vs = await this.getVs()
    let others: KubeObject[]
    let blind: string | undefined
    try {
      others = await cluster.listIstioInAllNamespaces('VirtualService')
    } catch (err) {
      blind = `routes in namespaces other than ${namespace} were not checked for subset ${subset} (the credentials may not list VirtualServices cluster-wide: ${errorText(err)})`
      others = await cluster.listIstio('VirtualService', namespace)
    }
    // Our own match route sends to the canary's subset: it is the rollout's, not another route's.
    const http = httpRoutes(vs)
    const index = this.routeIndex(vs, state)
    const section: 'http' | 'tcp' = state.route.section ?? 'http'
    const mine = { ...vs, spec: { ...vs.spec, http: http.filter((r) => !isOwnedRoute(r)) } }
    const all = [mine, ...others.filter((o) => !(o.metadata.name === virtualService && (o.metadata.namespace ?? namespace) === namespace))]
    const routeIndex = section === 'http' ? index - http.slice(0, index).filter(isOwnedRoute).length : index
    const ours = [{ namespace, virtualService, routeIndex, section }, ...alsoExclude]
    const routes = this.o.services
      ? serviceReferences(all, { host: subset, namespace }, ours)
      : subsetReferences(all, { host: state.host, namespace, subset }, ours)
    return { routes, ...(blind ? { blind } : {}) }
  }

  async removeBackend(subset: string): Promise<SubsetRemoval> {
    if (this.o.services) return this.o.services.remove(subset)
    const dr = await this.o.cluster.getIstio('DestinationRule', this.o.namespace, this.o.destinationRule)
    if (!dr || !hasSubset(dr, subset)) return 'absent'
    await this.editDestinationRule((d) => withoutSubset(d, subset))
    return 'removed'
  }

  async dryRunStart(
    state: RolloutState,
    labels: Record<string, string>,
    canaryWeight?: number
  ): Promise<{ backend: boolean; route: boolean }> {
    const { cluster, namespace } = this.o
    const dr = this.o.services ? undefined : await cluster.getIstio('DestinationRule', namespace, this.o.destinationRule)
    if (dr) await cluster.replaceIstio(withSubset(dr, state.canary.subset, labels), { dryRun: true })
    const backend = this.o.services ? (await this.o.services.addCanary(state, { dryRun: true })).length > 0 : dr !== undefined
    const vs = await cluster.getIstio('VirtualService', namespace, this.o.virtualService)
    if (vs && canaryWeight !== undefined) {
      const exposure = exposureOf(state.schedule[0])
      const split = this.applyChange(vs, state, { kind: 'split', canaryWeight, ...(exposure ? { exposure } : {}) })
      await cluster.replaceIstio(this.annotated(split, state), { dryRun: true })
    }
    return { backend, route: vs !== undefined && canaryWeight !== undefined }
  }

  manualRollback(s: RolloutState): { routing: string[]; clearState: string } {
    const { namespace: ns, virtualService, destinationRule } = this.o
    const clearState = `kubectl -n ${ns} annotate virtualservice ${virtualService} ${STATE_ANNOTATION}-   # clears the rollout state`
    if (this.o.services) {
      return {
        routing: [
          `kubectl -n ${ns} edit virtualservice ${virtualService}   # route ${routeLabel(s)}: host ${s.stable.subset} weight 100, remove the destination with host ${s.canary.subset}`
        ],
        clearState
      }
    }
    return {
      routing: [
        `kubectl -n ${ns} edit virtualservice ${virtualService}   # route ${routeLabel(s)}: ${s.stable.subset} weight 100, remove the ${s.canary.subset} destination` +
          (s.exposure ? `, the route "${matchRouteName(s.canary.subset)}" and any mirror to ${s.canary.subset}` : ''),
        `wait a few seconds, then: kubectl -n ${ns} edit destinationrule ${destinationRule}   # remove subset ${s.canary.subset}`
      ],
      clearState
    }
  }

  protected applyChange(vs: KubeObject, s: RolloutState, change: RouteChange): KubeObject {
    if (change.kind === 'state') return vs
    const index = this.routeIndex(vs, s)
    const key = this.key
    const routed = ((): KubeObject => {
      switch (change.kind) {
        case 'split':
          return withSplit(vs, index, s.host, s.stable.subset, s.canary.subset, change.canaryWeight, s.route.section, key)
        case 'canary-to-zero':
          return readSplit(vs, index, s.stable.subset, s.canary.subset, s.route.section, key).canaryPresent
            ? withSplit(vs, index, s.host, s.stable.subset, s.canary.subset, 0, s.route.section, key)
            : vs
        case 'remove-destination':
          return withoutDestination(vs, index, change.side === 'stable' ? s.stable.subset : s.canary.subset, {
            section: s.route.section,
            key
          })
      }
    })()
    if (!this.exposes(s)) return routed
    // Every routing write leaves exactly the exposure asked for: a match route or mirror left by a
    // previous step, run or version goes in the same write that moves the weights.
    const exposure = change.kind === 'split' ? change.exposure : undefined
    return withExposure(routed, index, s.host, s.canary.subset, exposure)
  }

  /** Whether the read-back shows `change`. */
  protected shows(vs: KubeObject, s: RolloutState, change: RouteChange): boolean {
    if (change.kind === 'state') return true
    const index = this.routeIndex(vs, s)
    const exposure = change.kind === 'split' ? change.exposure : undefined
    if (this.exposes(s) && !showsExposure(vs, index, s.host, s.canary.subset, exposure)) return false
    return splitShows(readSplit(vs, index, s.stable.subset, s.canary.subset, s.route.section, this.key), change)
  }

  /** Guarded read-modify-write of the DestinationRule, fenced by the state on the VirtualService. */
  private async editDestinationRule(edit: (dr: KubeObject) => KubeObject): Promise<void> {
    await this.guarded(
      'DestinationRule',
      this.o.destinationRule,
      async () => {
        this.fence(await this.liveState())
        return this.o.cluster.getIstio('DestinationRule', this.o.namespace, this.o.destinationRule)
      },
      (dr) => {
        const next = edit(dr)
        // An edit that changes nothing on the read-back has landed (edits are idempotent).
        const confirm = (back: KubeObject): boolean => sameSpec(edit(back), back)
        return { body: sameSpec(next, dr) ? undefined : next, confirm }
      }
    )
  }

  /** The shared guarded write loop (../guarded-write.ts) over one of our objects. */
  protected async guarded(
    kind: IstioKind,
    name: string,
    read: () => Promise<KubeObject | undefined>,
    decide: (live: KubeObject) => { body?: KubeObject; confirm: (back: KubeObject) => boolean }
  ): Promise<KubeObject> {
    const dr = kind === 'DestinationRule'
    return guardedWrite({
      cluster: this.o.cluster,
      kind,
      namespace: this.o.namespace,
      name,
      attempts: dr ? DR_ATTEMPTS : ATTEMPTS,
      ...(dr
        ? { pause: (attempt: number) => this.o.sleep?.(Math.random() * Math.min(2_000, 50 * 2 ** attempt)) ?? Promise.resolve() }
        : {}),
      read,
      decide
    })
  }

  /** The rollout state recorded with this route (a lockstep member reads the state holder's). */
  protected async liveState(): Promise<RolloutState | undefined> {
    return stateOf(await this.getVs())
  }

  /** The VirtualService with `state` recorded on it, as a write carries it (a dry run's too). */
  protected annotated(vs: KubeObject, state: RolloutState): KubeObject {
    return withState(vs, STATE_ANNOTATION, encodeState(state))
  }

  protected fence(live: RolloutState | undefined): void {
    if (live && live.epoch > this.o.epoch) {
      throw new FencedError(`another run took over this rollout (lock epoch ${live.epoch} > ours ${this.o.epoch}); this run stops writing`)
    }
  }

  /** The route's canary weight must be the one we last wrote; anything else is someone else's edit. */
  protected checkDrift(vs: KubeObject, s: RolloutState, expected: number): void {
    const split = readSplit(vs, this.routeIndex(vs, s), s.stable.subset, s.canary.subset, s.route.section, this.key)
    if (split.canary !== expected) {
      throw new DriftError(
        `route ${routeLabel(s)} of ${this.name} has canary weight ${split.canary}, but this rollout last set ${expected}; someone else changed it`
      )
    }
  }

  /** How the route names the versions: per-version Service hosts in a host-level split, else subsets. */
  protected get key(): DestinationKey {
    return this.o.services ? { by: 'service', namespace: this.o.namespace } : { by: 'subset' }
  }

  /** Whether match routes and mirrors apply: an http route over DestinationRule subsets (preflight refuses those steps elsewhere). */
  protected exposes(s: RolloutState): boolean {
    return (s.route.section ?? 'http') === 'http' && !this.o.services
  }

  /** The match route or mirror this rollout last set must still be there; anything else is someone else's edit. */
  protected checkExposure(vs: KubeObject, s: RolloutState, expected: Exposure): void {
    if (showsExposure(vs, this.routeIndex(vs, s), s.host, s.canary.subset, expected)) return
    throw new DriftError(
      `${expected.kind === 'match' ? `the route "${matchRouteName(s.canary.subset)}"` : `the mirror to ${s.canary.subset} on route ${routeLabel(s)}`} of ${this.name} ` +
        `is not what this rollout set (${describeExposure(expected)}); someone else changed it`
    )
  }

  protected routeIndex(vs: KubeObject, s: RolloutState): number {
    const index = routeIndexOf(vs, s.route)
    if (index < 0) throw new DriftError(`route ${routeLabel(s)} is no longer in VirtualService ${this.o.virtualService}`)
    return index
  }

  protected async getVs(): Promise<KubeObject> {
    const vs = await this.o.cluster.getIstio('VirtualService', this.o.namespace, this.o.virtualService)
    if (!vs) throw new Error(`${this.name} not found`)
    return vs
  }
}

/** The VirtualService as the rollback of `state` leaves it: canary weight 0 and no exposure, then its destination gone. */
export function withoutCanary(vs: KubeObject, state: RolloutState, namespace: string): KubeObject {
  const index = routeIndexOf(vs, state.route)
  if (index < 0) return vs
  const section = state.route.section
  const key: DestinationKey = state.backends === 'services' ? { by: 'service', namespace } : { by: 'subset' }
  const exposes = (section ?? 'http') === 'http' && state.backends !== 'services'
  const unexposed = exposes ? withExposure(vs, index, state.host, state.canary.subset, undefined) : vs
  // Without our match route the driven route may have moved up.
  const at = routeIndexOf(unexposed, state.route)
  if (!readSplit(unexposed, at, state.stable.subset, state.canary.subset, section, key).canaryPresent) return unexposed
  const zero = withSplit(unexposed, at, state.host, state.stable.subset, state.canary.subset, 0, section, key)
  return withoutDestination(zero, at, state.canary.subset, { section, key })
}

/** Whether two objects carry the same spec. */
export function sameSpec(a: KubeObject, b: KubeObject): boolean {
  return JSON.stringify(a.spec) === JSON.stringify(b.spec)
}
