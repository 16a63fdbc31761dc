/**
 * GatewayApiRouter: the TrafficRouter over one rule of a Gateway API HTTPRoute whose backendRefs
 * are per-version Services (Istio's gateway, waypoints and sidecars; any conformant
 * implementation). The rollout state lives in an annotation of the HTTPRoute, written in the same
 * guarded update as the weights (../guarded-write.ts, shared with IstioRouter), fenced by the lock
 * epoch, and drift is judged the same way. The canary's Service and its DestinationRule copy are
 * the per-version Service model's (../version-services.ts), as in a host-level split.
 */
import type { Cluster } from '../../cluster/cluster.js'
import { DriftError, FencedError } from '../../errors.js'
import { errorText } from '../../format.js'
import type { KubeObject } from '../../kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../rollout/state-codec.js'
import type { RolloutState } from '../../rollout/types.js'
import { guardedWrite } from '../guarded-write.js'
import { serviceReferences } from '../istio/subset-references.js'
import { withState } from '../istio/virtual-service-transform.js'
import {
  routeLabel,
  splitShows,
  type RouteChange,
  type RouteView,
  type SubsetRemoval,
  type TrafficRouter,
  type WriteOptions
} from '../traffic-router.js'
import type { VersionServices } from '../version-services.js'
import { readRuleSplit, ruleIndexOf, rulesOf, serviceOf, withoutBackend, withRuleSplit } from './http-route-transform.js'

export interface GatewayApiRouterOptions {
  cluster: Cluster
  namespace: string
  httpRoute: string
  services: VersionServices
  /** Lease epoch of this run: every write checks that no later holder has written. */
  epoch: number
  /** The time to stamp on each written state (ISO 8601). */
  now: () => string
}

/** Conflicting writes in a row before giving up. */
const ATTEMPTS = 5

export class GatewayApiRouter implements TrafficRouter {
  readonly name: string
  private lastReadBack?: KubeObject

  constructor(private readonly o: GatewayApiRouterOptions) {
    this.name = `HTTPRoute ${o.namespace}/${o.httpRoute}`
  }

  async readState(): Promise<RolloutState | undefined> {
    return stateOf(await this.getRoute())
  }

  async readRoute(state: RolloutState): Promise<RouteView> {
    const split = this.split(await this.getRoute(), state)
    return { canaryWeight: split.canaryPresent ? split.canary : 0, canaryRouted: split.canaryPresent }
  }

  async write(next: RolloutState, change: RouteChange = { kind: 'state' }, opts: WriteOptions = {}): Promise<RolloutState> {
    let stamped = next
    let cached = this.lastReadBack
    this.lastReadBack = undefined
    this.lastReadBack = await guardedWrite({
      cluster: this.o.cluster,
      kind: 'HTTPRoute',
      namespace: this.o.namespace,
      name: this.o.httpRoute,
      attempts: ATTEMPTS,
      read: async () => {
        const route = cached ?? (await this.getRoute())
        cached = undefined
        return route
      },
      decide: (route) => {
        this.fence(stateOf(route))
        if (opts.expectCanaryWeight !== undefined) this.checkDrift(route, next, opts.expectCanaryWeight)
        stamped = { ...next, epoch: this.o.epoch, updatedAt: this.o.now() }
        const body = withState(this.applyChange(route, next, change), STATE_ANNOTATION, encodeState(stamped))
        const confirm = (b: KubeObject): boolean => {
          const s = stateOf(b)
          return s?.updatedAt === stamped.updatedAt && s.epoch === stamped.epoch && this.shows(b, next, change)
        }
        return { body, confirm }
      }
    })
    return stamped
  }

  async addCanaryBackend(state: RolloutState): Promise<void> {
    await this.o.services.addCanary(state)
  }

  async routesServing(state: RolloutState, service: string): Promise<{ routes: string[]; blind?: string }> {
    const { cluster, namespace, httpRoute } = this.o
    const ours = await this.getRoute()
    const index = this.ruleIndex(ours, state)
    let blind: string | undefined
    const list = async (kind: 'HTTPRoute' | 'VirtualService'): Promise<KubeObject[]> => {
      try {
        return await cluster.listIstioInAllNamespaces(kind)
      } catch (err) {
        blind = `routes in namespaces other than ${namespace} were not checked for Service ${service} (the credentials may not list ${kind}s cluster-wide: ${errorText(err)})`
        return cluster.listIstio(kind, namespace).catch(() => [])
      }
    }
    const routes: string[] = []
    for (const r of [
      ours,
      ...(await list('HTTPRoute')).filter((r) => !(r.metadata.name === httpRoute && (r.metadata.namespace ?? namespace) === namespace))
    ]) {
      const ns = r.metadata.namespace ?? namespace
      rulesOf(r).forEach((rule, i) => {
        if (r === ours && i === index) return
        const hit = (rule.backendRefs ?? []).some(
          (b) => (b.namespace ?? ns) === namespace && serviceOf({ ...b, namespace: undefined }, ns) === service
        )
        if (hit) routes.push(`HTTPRoute ${ns}/${r.metadata.name} rule ${typeof rule.name === 'string' ? `"${rule.name}"` : `#${i}`}`)
      })
    }
    routes.push(...serviceReferences(await list('VirtualService'), { host: service, namespace }))
    return { routes, ...(blind ? { blind } : {}) }
  }

  async removeBackend(service: string): Promise<SubsetRemoval> {
    return this.o.services.remove(service)
  }

  async dryRunStart(
    state: RolloutState,
    _labels: Record<string, string>,
    canaryWeight?: number
  ): Promise<{ backend: boolean; route: boolean }> {
    const backend = (await this.o.services.addCanary(state, { dryRun: true })).length > 0
    const route = await this.o.cluster.getIstio('HTTPRoute', this.o.namespace, this.o.httpRoute)
    if (route && canaryWeight !== undefined) {
      const split = this.applyChange(route, state, { kind: 'split', canaryWeight })
      await this.o.cluster.replaceIstio(withState(split, STATE_ANNOTATION, encodeState(state)), { dryRun: true })
    }
    return { backend, route: route !== undefined && canaryWeight !== undefined }
  }

  manualRollback(s: RolloutState): { routing: string[]; clearState: string } {
    const { namespace: ns, httpRoute } = this.o
    return {
      routing: [
        `kubectl -n ${ns} edit httproute ${httpRoute}   # ${routeLabel(s)}: backendRef ${s.stable.subset} weight 100, remove the backendRef ${s.canary.subset}`
      ],
      clearState: `kubectl -n ${ns} annotate httproute ${httpRoute} ${STATE_ANNOTATION}-   # clears the rollout state`
    }
  }

  private split(route: KubeObject, s: RolloutState): ReturnType<typeof readRuleSplit> {
    return readRuleSplit(route, this.ruleIndex(route, s), this.o.namespace, s.stable.subset, s.canary.subset)
  }

  private applyChange(route: KubeObject, s: RolloutState, change: RouteChange): KubeObject {
    if (change.kind === 'state') return route
    const index = this.ruleIndex(route, s)
    const { namespace } = this.o
    switch (change.kind) {
      case 'split':
        return withRuleSplit(route, index, namespace, s.stable.subset, s.canary.subset, change.canaryWeight)
      case 'canary-to-zero':
        return this.split(route, s).canaryPresent ? withRuleSplit(route, index, namespace, s.stable.subset, s.canary.subset, 0) : route
      case 'remove-destination':
        return withoutBackend(route, index, namespace, change.side === 'stable' ? s.stable.subset : s.canary.subset)
    }
  }

  private shows(route: KubeObject, s: RolloutState, change: RouteChange): boolean {
    if (change.kind === 'state') return true
    return splitShows(this.split(route, s), change)
  }

  private fence(live: RolloutState | undefined): void {
    if (live && live.epoch > this.o.epoch) {
      throw new FencedError(`another run took over this rollout (lock epoch ${live.epoch} > ours ${this.o.epoch}); this run stops writing`)
    }
  }

  private checkDrift(route: KubeObject, s: RolloutState, expected: number): void {
    const split = this.split(route, s)
    if (split.canary !== expected || (split.canaryPresent && split.stable + split.canary !== 100)) {
      throw new DriftError(
        `${routeLabel(s)} of ${this.name} has canary weight ${split.canary} (stable ${split.stable}), but this rollout last set ${expected}; someone else changed it`
      )
    }
  }

  private ruleIndex(route: KubeObject, s: RolloutState): number {
    const index = ruleIndexOf(route, s.route)
    if (index < 0) throw new DriftError(`rule ${routeLabel(s)} is no longer in ${this.name}`)
    return index
  }

  private async getRoute(): Promise<KubeObject> {
    const route = await this.o.cluster.getIstio('HTTPRoute', this.o.namespace, this.o.httpRoute)
    if (!route) throw new Error(`${this.name} not found`)
    return route
  }
}
