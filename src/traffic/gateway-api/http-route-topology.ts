/**
 * Preflight of an HTTPRoute rollout over already-fetched objects: the rule whose backendRefs are
 * per-version Services, the Services' checks (shared with the host-level split), the parents
 * (Gateways for north-south, Services for east-west / GAMMA) and the hosts the route covers.
 * Pure: throws PreflightError naming the object, quoting the value and saying what was expected.
 */
import { PreflightError, quote } from '../../errors.js'
import type { KubeObject } from '../../kube/kube-object.js'
import { isInFlight } from '../../rollout/planner.js'
import type { RolloutState } from '../../rollout/types.js'
import { parentsOf, type HttpRouteParents } from './route-hosts.js'
import { checkVersionServices, type VersionServicesCheck, type VersionServicesInput } from '../version-service-checks.js'
import { backendWeight, readRuleSplit, ruleIndexOf, ruleRef, rulesOf, serviceOf, type HttpRouteRule } from './http-route-transform.js'

export { hostsOfHttpRoute, hostsOfVirtualService, parentsOf, sharedHost, type HttpRouteParents } from './route-hosts.js'

export interface HttpRouteTopologyInput extends Omit<VersionServicesInput, 'where' | 'stableName'> {
  route: KubeObject
  /** Input 'route': the name of the rule. */
  ruleName?: string
  existingState?: RolloutState
}

export interface HttpRouteTopology extends VersionServicesCheck {
  ruleIndex: number
  ruleName?: string
  stableName: string
  resuming: boolean
  currentSplit: { stable: number; canary: number }
  parents: HttpRouteParents
}

/** The names of the per-version Services the rule names (to read them before resolving). */
export function ruleServiceNames(route: KubeObject, namespace: string, ruleName?: string, state?: RolloutState): string[] {
  const inFlight = isInFlight(state) ? state : undefined
  if (inFlight) return [inFlight.stable.subset, inFlight.canary.subset]
  try {
    const { rule } = findRule(route, namespace, ruleName, undefined)
    return (rule.backendRefs ?? []).map((b) => serviceOf(b, namespace)).filter((n): n is string => n !== undefined)
  } catch {
    return []
  }
}

/** Resolve and check an HTTPRoute rollout; throws PreflightError on the first problem. */
export function resolveHttpRoute(input: HttpRouteTopologyInput): HttpRouteTopology {
  const { route, namespace } = input
  const state = isInFlight(input.existingState) ? input.existingState : undefined
  const { rule, index } = findRule(route, namespace, input.ruleName, state)
  const where = `${ruleRef(rule, index)} of HTTPRoute ${namespace}/${route.metadata.name}`
  const refs = rule.backendRefs ?? []
  if (refs.length === 0) {
    throw new PreflightError(
      `${where} has no backendRefs (it may redirect or only filter); expected a rule whose backendRefs send traffic to the stable version's Service.`
    )
  }
  let stableName: string
  if (state) {
    stableName = state.stable.subset
    if (!refs.some((r) => [state.stable.subset, state.canary.subset].includes(serviceOf(r, namespace) ?? ''))) {
      throw new PreflightError(
        `${where} has no backendRef to Service ${quote(state.stable.subset)} or ${quote(state.canary.subset)}, yet the rollout ${quote(state.id)} ` +
          `recorded on it is in phase ${quote(state.phase)}; expected the rule it left. Restore the rule, or clear the state annotation and start again.`
      )
    }
  } else {
    const live = refs.filter((r) => backendWeight(r) > 0)
    const shown = refs.map((r) => `${r.kind ?? 'Service'} ${r.name}=${r.weight ?? 'unset'}`).join(', ')
    if (live.length !== 1) {
      throw new PreflightError(
        `${where} ${live.length === 0 ? 'gives no backendRef a weight above 0' : 'already splits traffic and no rollout is in progress on it'} ` +
          `(${quote(shown)}); expected one backendRef, the stable version's Service, carrying all traffic.`
      )
    }
    const name = serviceOf(live[0], namespace)
    if (name === undefined) {
      throw new PreflightError(
        `${where} sends its traffic to ${quote(`${live[0].group ?? ''}/${live[0].kind ?? 'Service'} ${live[0].namespace ?? namespace}/${live[0].name}`)}, ` +
          `not to a Service of namespace ${quote(namespace)}; expected the stable version's Service as the rule's backendRef.`
      )
    }
    stableName = name
  }
  const checked = checkVersionServices({ ...input, where, stableName, ...(state ? { canaryServiceInput: state.canary.subset } : {}) })
  const split = readRuleSplit(route, index, namespace, stableName, checked.canaryName)
  const parents = parentsOf(route, namespace)
  if (parents.gateways.length === 0 && parents.services.length === 0) {
    throw new PreflightError(
      `HTTPRoute ${namespace}/${route.metadata.name} has no Gateway or Service parentRef, so no data plane applies it; expected a parentRef to a Gateway (north-south) or a Service (east-west, GAMMA).`
    )
  }
  return {
    ...checked,
    ...(state ? { stableVersion: state.stable.version } : {}),
    ruleIndex: index,
    ...(typeof rule.name === 'string' ? { ruleName: rule.name } : {}),
    stableName,
    resuming: state !== undefined,
    currentSplit: { stable: split.stable, canary: split.canary },
    parents
  }
}

function findRule(
  route: KubeObject,
  namespace: string,
  ruleName: string | undefined,
  state: RolloutState | undefined
): { rule: HttpRouteRule; index: number } {
  const rules = rulesOf(route)
  const ref = `HTTPRoute ${namespace}/${route.metadata.name}`
  if (rules.length === 0) throw new PreflightError(`${ref} has no rules; expected a rule whose backendRefs carry the traffic to split.`)
  const wanted = ruleName ?? state?.route.name
  if (wanted !== undefined) {
    const index = rules.findIndex((r) => r.name === wanted)
    if (index < 0) {
      const names = rules.map((r) => r.name).filter((n): n is string => typeof n === 'string')
      throw new PreflightError(
        `${ref} has no rule named ${quote(wanted)} (${ruleName !== undefined ? "input 'route'" : 'recorded by the rollout in progress'}); ` +
          (names.length > 0 ? `expected one of ${quote(names.join(', '))}.` : `none of its ${rules.length} rules has a name.`)
      )
    }
    return { rule: rules[index], index }
  }
  if (state) {
    const index = ruleIndexOf(route, state.route)
    if (index < 0)
      throw new PreflightError(
        `${ref} no longer has rule #${state.route.index}, which rollout ${quote(state.id)} recorded; expected the rule it left.`
      )
    return { rule: rules[index], index }
  }
  if (rules.length === 1) return { rule: rules[0], index: 0 }
  throw new PreflightError(
    `${ref} has ${rules.length} rules (${rules.map((r, i) => ruleRef(r, i)).join(', ')}); which one to split is ambiguous. ` +
      `Set input 'route' to the name of one of them (give the rule a name if it has none).`
  )
}
