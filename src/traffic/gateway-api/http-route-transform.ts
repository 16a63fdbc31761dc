/**
 * Pure HTTPRoute transforms. We own the weights of the per-version Service backendRefs of one rule
 * (adding the canary's as a copy of the stable one, removing a retired one) and one annotation;
 * every other field (matches, filters, other rules, foreign backendRefs, parentRefs, hostnames)
 * is carried through untouched. Results share the subtrees they do not change with the input.
 *
 * Gateway API weights are relative (default 1): a rule's backend gets weight / sum of weights. The
 * action writes stable = 100 - w and canary = w, so they read as percent.
 */
import { ConflictError, quote } from '../../errors.js'
import type { KubeObject } from '../../kube/kube-object.js'
import type { RouteSplit } from '../istio/virtual-service-transform.js'

/** One `HTTPBackendRef`: fields we do not model (filters, ...) are kept. */
export interface BackendRef {
  group?: string
  kind?: string
  name?: string
  namespace?: string
  port?: number
  weight?: number
  [key: string]: unknown
}

/** One `HTTPRouteRule`: fields we do not model (matches, filters, timeouts, ...) are kept. */
export interface HttpRouteRule {
  name?: string
  backendRefs?: BackendRef[]
  [key: string]: unknown
}

/** The rules of spec.rules (empty when there are none). */
export function rulesOf(route: KubeObject): HttpRouteRule[] {
  const rules: unknown = route.spec?.rules
  return Array.isArray(rules) ? (rules as HttpRouteRule[]) : []
}

/** The index of the rule `ref` points at (by name, else by index); -1 when there is none. */
export function ruleIndexOf(route: KubeObject, ref: { index: number; name?: string }): number {
  const rules = rulesOf(route)
  if (ref.name !== undefined) return rules.findIndex((r) => r.name === ref.name)
  return Number.isInteger(ref.index) && ref.index >= 0 && ref.index < rules.length ? ref.index : -1
}

/** `rule "name" (#i)` or `rule #i`, as messages name an HTTPRoute rule. */
export function ruleRef(rule: { name?: unknown } | undefined, index: number): string {
  return typeof rule?.name === 'string' ? `rule "${rule.name}" (#${index})` : `rule #${index}`
}

/** The name of the Service of `namespace` a backendRef names (core group, kind Service), else undefined. */
export function serviceOf(ref: BackendRef, namespace: string): string | undefined {
  const core = (ref.group ?? '') === '' && (ref.kind ?? 'Service') === 'Service'
  const local = ref.namespace === undefined || ref.namespace === namespace
  return core && local && typeof ref.name === 'string' ? ref.name : undefined
}

/** The weight a backendRef carries as the Gateway API reads it (default 1). */
export function backendWeight(ref: BackendRef): number {
  return typeof ref.weight === 'number' ? ref.weight : 1
}

/** The stored weights of the stable and canary Services in rule `index`. */
export function readRuleSplit(route: KubeObject, index: number, namespace: string, stable: string, canary: string): RouteSplit {
  const refs = refsAt(route, index)
  const of = (name: string): BackendRef[] => refs.filter((r) => serviceOf(r, namespace) === name)
  const sum = (rs: BackendRef[]): number => rs.reduce((n, r) => n + backendWeight(r), 0)
  return {
    stable: sum(of(stable)),
    canary: sum(of(canary)),
    stablePresent: of(stable).length > 0,
    canaryPresent: of(canary).length > 0
  }
}

/**
 * Rule `index` with stable = 100 - canaryWeight and canary = canaryWeight, both explicit. A missing
 * backendRef is added as a copy of the other (port, filters kept) with only `name` changed. Throws
 * ConflictError when another backendRef of the rule still carries weight.
 */
export function withRuleSplit(
  route: KubeObject,
  index: number,
  namespace: string,
  stable: string,
  canary: string,
  canaryWeight: number
): KubeObject {
  if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
    throw new RangeError(`Canary weight ${quote(String(canaryWeight))} is invalid: expected an integer between 0 and 100.`)
  }
  const refs = structuredClone(refsAt(route, index))
  const is = (r: BackendRef, name: string): boolean => serviceOf(r, namespace) === name
  const others = refs.filter((r) => !is(r, stable) && !is(r, canary) && backendWeight(r) > 0)
  if (others.length > 0) {
    throw new ConflictError(
      `${ruleRef(rulesOf(route)[index], index)} of HTTPRoute ${route.metadata.namespace ?? namespace}/${route.metadata.name} sends traffic to ` +
        `${others.map((r) => `${quote(r.name)} (weight ${r.weight ?? 'unset'})`).join(', ')} besides Services ${quote(stable)} and ${quote(canary)}: ` +
        `expected only those two to carry weight. Someone changed the rule; set the other backendRefs' weight to 0 or remove them.`
    )
  }
  const template = refs.find((r) => is(r, stable)) ?? refs.find((r) => is(r, canary))
  const ensure = (name: string): BackendRef[] => {
    const found = refs.filter((r) => is(r, name))
    if (found.length > 0) return found
    const added: BackendRef = template ? { ...structuredClone(template), name } : { name }
    refs.push(added)
    return [added]
  }
  const s = ensure(stable)
  const c = ensure(canary)
  s.forEach((r, i) => (r.weight = i === 0 ? 100 - canaryWeight : 0))
  c.forEach((r, i) => (r.weight = i === 0 ? canaryWeight : 0))
  return withRefs(route, index, refs)
}

/**
 * Rule `index` without the backendRef(s) of Service `name` (unchanged when absent). Refuses to
 * remove one that still carries weight, or the last. A lone remaining one keeps its weight.
 */
export function withoutBackend(route: KubeObject, index: number, namespace: string, name: string): KubeObject {
  const refs = refsAt(route, index)
  const removed = refs.filter((r) => serviceOf(r, namespace) === name)
  if (removed.length === 0) return route
  const kept = refs.filter((r) => serviceOf(r, namespace) !== name)
  const where = `${ruleRef(rulesOf(route)[index], index)} of HTTPRoute ${route.metadata.name}`
  if (kept.length === 0) throw new Error(`Cannot remove Service ${quote(name)} from ${where}: it is the only backend, the rule needs one.`)
  const live = removed.find((r) => backendWeight(r) > 0)
  if (live) {
    throw new Error(
      `Cannot remove Service ${quote(name)} from ${where}: it still has weight ${live.weight ?? 'unset (1)'}; expected weight 0 first.`
    )
  }
  return withRefs(route, index, kept)
}

function refsAt(route: KubeObject, index: number): BackendRef[] {
  const rule = rulesOf(route)[index]
  if (!Number.isInteger(index) || rule === undefined) {
    throw new RangeError(`HTTPRoute ${route.metadata.name} has no rule #${index} (it has ${rulesOf(route).length}).`)
  }
  return Array.isArray(rule.backendRefs) ? rule.backendRefs : []
}

// Path copy: new metadata, spec, rules list and rule; every other subtree is shared with the input.
function withRefs(route: KubeObject, index: number, refs: BackendRef[]): KubeObject {
  const rules = [...rulesOf(route)]
  rules[index] = { ...rules[index], backendRefs: refs }
  return { ...route, metadata: { ...route.metadata }, spec: { ...route.spec, rules } }
}
