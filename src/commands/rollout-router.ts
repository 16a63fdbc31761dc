import type { Config } from '../config/config.js'
import type { RolloutState } from '../rollout/types.js'
import { IstioRouter, type IstioRouterOptions } from '../traffic/istio/istio-router.js'
import type { TrafficRouter } from '../traffic/traffic-router.js'
import type { CommandDeps } from './command-deps.js'
import { loadTrafficTargets } from './lazy-modules.js'
import type { Preflight } from './preflight.js'
import { iso } from './runtime.js'

/**
 * The TrafficRouter of this rollout's routes: writes fenced by `epoch`. An HTTPRoute or a host-level
 * split gets its own router; several VirtualServices (the state's members, else preflight's) move in
 * lockstep behind an IstioLockstepRouter, loaded only then.
 */
export async function rolloutRouter(
  config: Config,
  deps: CommandDeps,
  pre: Preflight,
  epoch: number,
  state?: RolloutState
): Promise<TrafficRouter> {
  if (config.routeKind === 'HTTPRoute') {
    if (!pre.httpRoute) throw new Error('internal: an HTTPRoute rollout without its router')
    return pre.httpRoute.httpRouteRouter(config, deps, pre, epoch)
  }
  const services = pre.backends === 'services' ? pre.versionServices : undefined
  if (pre.backends === 'services' && !services) throw new Error('internal: a host-level split without its Services')
  const options = (virtualService: string, destinationRule: string): IstioRouterOptions => ({
    cluster: deps.cluster,
    namespace: pre.namespace,
    virtualService,
    destinationRule,
    ...(services ? { services } : {}),
    epoch,
    now: () => iso(deps.clock.now()),
    sleep: (ms) => deps.clock.sleep(ms)
  })
  const holder = new IstioRouter(options(config.virtualService, state?.destinationRule ?? pre.destinationRule))
  const members = state ? (state.members ?? []) : pre.members
  if (members.length === 0) return holder
  const { IstioLockstepRouter, IstioMemberRouter } = await loadTrafficTargets()
  const stateHolder = { namespace: pre.namespace, virtualService: config.virtualService }
  return new IstioLockstepRouter([
    { router: holder, namespace: pre.namespace },
    ...members.map((m) => ({
      router: new IstioMemberRouter(options(m.virtualService, m.destinationRule), stateHolder),
      member: m,
      namespace: pre.namespace
    }))
  ])
}
