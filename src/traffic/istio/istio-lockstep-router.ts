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
import { DriftError } from '../../errors.js'
import { isTerminal } from '../../rollout/planner.js'
import type { RolloutState, RouteMember } from '../../rollout/types.js'
import {
  routeLabel,
  type RouteChange,
  type RouteView,
  type SubsetRemoval,
  type TrafficRouter,
  type WriteOptions
} from '../traffic-router.js'
import type { IstioRouter } from './istio-router.js'
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
