/**
 * IstioLockstepRouter: several VirtualServices (the mesh one and the ingress gateway's, say) moved
 * as one. Each is an IstioRouter with its own guarded write loop; the first holds the rollout state,
 * the others carry the same weights and a member marker. Every write checks drift on all of them
 * before it writes any, then writes them in one fixed order chosen so that the recorded state never
 * shows less canary traffic than any route carries:
 *
 * - raising the canary's weight: the state holder first, then the others in input order;
 * - anything else (weight 0 on rollback or cancellation, removing a destination on promotion or
 *   rollback, the end of the rollout): the others first, in input order, the state holder last.
 *
 * Between two writes a caller sees, through each VirtualService, either the old or the new split,
 * never a destination whose subset is missing: the canary's subset is added to every DestinationRule
 * before any route names it, and removed from all only after every route has dropped it.
 */
import { DriftError, FencedError } from '../../errors.js'
import type { KubeObject } from '../../kube/kube-object.js'
import { isTerminal } from '../../rollout/planner.js'
import { stateOf } from '../../rollout/state-codec.js'
import type { RolloutState, RouteMember } from '../../rollout/types.js'
import {
  routeLabel,
  type RouteChange,
  type RouteView,
  type SubsetRemoval,
  type TrafficRouter,
  type WriteOptions
} from '../traffic-router.js'
import { IstioRouter, sameSpec, type IstioRouterOptions } from './istio-router.js'
import { encodeMarker, MEMBER_ANNOTATION, markerOf } from './member-marker.js'
import { withState } from './virtual-service-transform.js'
import { serviceKey } from './subset-references.js'

/** One VirtualService of the lockstep: its router and where its route, host and subsets are. */
export interface LockstepPart {
  router: IstioRouter
  /** Absent for the state holder (its route is the state's own). */
  member?: RouteMember
  /** The namespace of its VirtualService and DestinationRule. */
  namespace: string
}

export class IstioLockstepRouter implements TrafficRouter {
  readonly name: string

  constructor(private readonly parts: LockstepPart[]) {
    if (parts.length === 0 || parts[0].member) throw new Error('internal: the lockstep needs the state holder first')
    this.name = `VirtualServices ${parts.map((p) => p.router.name.replace(/^VirtualService /, '')).join(', ')}`
  }

  readState(): Promise<RolloutState | undefined> {
    return this.parts[0].router.readState()
  }

  /** The largest canary weight on any route (what the rollback must take down), routed when any route still is. */
  async readRoute(state: RolloutState): Promise<RouteView> {
    const views = await Promise.all(this.parts.map((p) => p.router.readRoute(local(state, p))))
    return { canaryWeight: Math.max(...views.map((v) => v.canaryWeight)), canaryRouted: views.some((v) => v.canaryRouted) }
  }

  async write(next: RolloutState, change: RouteChange = { kind: 'state' }, opts: WriteOptions = {}): Promise<RolloutState> {
    // Drift on any VirtualService is drift: judged on all before the first write.
    if (opts.expectCanaryWeight !== undefined) {
      for (const p of this.parts) {
        const s = local(next, p)
        const view = await p.router.readRoute(s)
        if (view.canaryWeight !== opts.expectCanaryWeight) {
          throw new DriftError(
            `route ${routeLabel(s)} of ${p.router.name} has canary weight ${view.canaryWeight}, but this rollout last set ${opts.expectCanaryWeight}; someone else changed it`
          )
        }
      }
    }
    const [holder, ...members] = this.parts
    // A state-only write touches the members only to take their marker off at the end.
    const touched = change.kind === 'state' && !isTerminal(next.phase) ? [] : members
    const raising = change.kind === 'split' && change.canaryWeight > 0
    let stamped = next
    if (raising) stamped = await holder.router.write(next, change, opts)
    for (const p of touched) await p.router.write(local(next, p), change, opts)
    if (!raising) stamped = await holder.router.write(next, change, opts)
    return stamped
  }

  /** Every DestinationRule gets the subset before any route names it. */
  async addCanaryBackend(state: RolloutState, labels: Record<string, string>): Promise<void> {
    for (const p of this.byDestinationRule()) await p.router.addCanaryBackend(local(state, p), labels)
  }

  async routesServing(state: RolloutState, subset: string): Promise<{ routes: string[]; blind?: string }> {
    const own = await Promise.all(this.parts.map((p) => p.router.ownRoute(local(state, p))))
    const routes = new Set<string>()
    let blind: string | undefined
    const hosts = new Set<string>()
    for (const p of this.parts) {
      const s = local(state, p)
      const key = serviceKey(s.host, p.namespace)
      if (hosts.has(key)) continue
      hosts.add(key)
      const r = await p.router.routesServing(s, subset, own)
      r.routes.forEach((x) => routes.add(x))
      blind ??= r.blind
    }
    return { routes: [...routes], ...(blind ? { blind } : {}) }
  }

  async removeBackend(subset: string): Promise<SubsetRemoval> {
    let removed = false
    for (const p of this.byDestinationRule()) removed = (await p.router.removeBackend(subset)) === 'removed' || removed
    return removed ? 'removed' : 'absent'
  }

  async dryRunStart(
    state: RolloutState,
    labels: Record<string, string>,
    canaryWeight?: number
  ): Promise<{ backend: boolean; route: boolean }> {
    let backend = true
    let route = true
    for (const p of this.parts) {
      const r = await p.router.dryRunStart(local(state, p), labels, canaryWeight)
      backend &&= r.backend
      route &&= r.route
    }
    return { backend, route }
  }

  manualRollback(state: RolloutState): { routing: string[]; clearState: string } {
    const each = this.parts.map((p) => p.router.manualRollback(local(state, p)))
    const drs = this.byDestinationRule().map((p) => each[this.parts.indexOf(p)].routing.slice(1))
    return {
      routing: [...each.map((e) => e.routing[0]), ...drs.flat(), ...each.slice(1).map((e) => e.clearState)],
      clearState: each[0].clearState
    }
  }

  /** One part per DestinationRule, the state holder's first. */
  private byDestinationRule(): LockstepPart[] {
    const seen = new Set<string>()
    return this.parts.filter((p) => {
      const key = `${p.namespace}/${p.router.destinationRule}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  }
}

/** The state as one part sees it: its own route, host and DestinationRule. */
function local(state: RolloutState, p: LockstepPart): RolloutState {
  const m = p.member
  return m ? { ...state, route: m.route, host: m.host, destinationRule: m.destinationRule } : state
}

/**
 * A VirtualService moved in lockstep with another that holds the rollout state: it carries the
 * weights and a member marker (never the state); its writes are fenced by the holder's state and
 * by its own marker, and drift-checked like the holder's.
 */
export class IstioMemberRouter extends IstioRouter {
  private readonly stateOn: string

  constructor(
    o: IstioRouterOptions,
    private readonly holder: { namespace: string; virtualService: string }
  ) {
    super(o)
    this.stateOn = `${holder.namespace}/${holder.virtualService}`
  }

  /** The weights and the marker (removed once `next` is terminal); returns `next` unstamped. */
  override async write(next: RolloutState, change: RouteChange = { kind: 'state' }, opts: WriteOptions = {}): Promise<RolloutState> {
    const marker = isTerminal(next.phase) ? undefined : encodeMarker({ stateOn: this.stateOn, id: next.id, epoch: this.o.epoch })
    let holderState: RolloutState | undefined
    let cached = this.lastReadBack?.vs
    this.lastReadBack = undefined
    const back = await this.guarded(
      'VirtualService',
      this.o.virtualService,
      async () => {
        holderState = await this.liveState()
        const vs = cached ?? (await this.getVs())
        cached = undefined
        return vs
      },
      (vs) => {
        this.fence(holderState)
        this.fenceMarker(vs)
        if (opts.expectCanaryWeight !== undefined) this.checkDrift(vs, next, opts.expectCanaryWeight)
        const body = withState(this.applyChange(vs, next, change), MEMBER_ANNOTATION, marker)
        const confirm = (b: KubeObject): boolean => b.metadata.annotations?.[MEMBER_ANNOTATION] === marker && this.shows(b, next, change)
        const same = sameSpec(body, vs) && JSON.stringify(body.metadata.annotations ?? {}) === JSON.stringify(vs.metadata.annotations ?? {})
        return { body: same ? undefined : body, confirm }
      }
    )
    this.lastReadBack = { vs: back, state: next }
    return next
  }

  override manualRollback(state: RolloutState): { routing: string[]; clearState: string } {
    const { namespace: ns, virtualService } = this.o
    return {
      ...super.manualRollback(state),
      clearState: `kubectl -n ${ns} annotate virtualservice ${virtualService} ${MEMBER_ANNOTATION}-   # clears the lockstep marker`
    }
  }

  protected override async liveState(): Promise<RolloutState | undefined> {
    const vs = await this.o.cluster.getIstio('VirtualService', this.holder.namespace, this.holder.virtualService)
    if (!vs) throw new Error(`VirtualService ${this.stateOn}, which holds the rollout state, not found`)
    return stateOf(vs)
  }

  protected override annotated(vs: KubeObject, state: RolloutState): KubeObject {
    return withState(vs, MEMBER_ANNOTATION, encodeMarker({ stateOn: this.stateOn, id: state.id, epoch: state.epoch }))
  }

  /** A marker from a later lock holder, or from another rollout's state holder, stops our writes. */
  private fenceMarker(vs: KubeObject): void {
    const m = markerOf(vs)
    if (!m) return
    if (m.stateOn !== this.stateOn) {
      throw new FencedError(
        `${this.name} was claimed by the rollout recorded on VirtualService ${m.stateOn} (annotation ${MEMBER_ANNOTATION}); this run stops writing`
      )
    }
    if (m.epoch > this.o.epoch) {
      throw new FencedError(
        `another run took over this rollout (lock epoch ${m.epoch} on ${this.name} > ours ${this.o.epoch}); this run stops writing`
      )
    }
  }
}
