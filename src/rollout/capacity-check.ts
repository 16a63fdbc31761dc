/**
 * Preflight's judgement of the namespace's ResourceQuotas and PodDisruptionBudgets against the
 * canary's replicas, before any write. Pure: the objects come in, findings go out.
 *
 * A ResourceQuota that cannot hold the canary's pods is an error: the apiserver refuses pods over a
 * quota, so the canary would never become available (first step) or the promotion would stall with
 * all traffic on a canary short of pods (peak). A PodDisruptionBudget only warns: it limits
 * evictions (node drains, the cluster autoscaler), never the Deployment scaling the action does, so
 * it cannot stop the rollout; what it can do is pin the small canary's pods while the rollout runs.
 */
import type { KubeObject } from '../kube/kube-object.js'
import { selectorMatches } from '../kube/label-selector.js'
import { formatQuantity, parseQuantity } from '../kube/quantity.js'
import type { CapacityNeeds } from './capacity.js'

/** One thing preflight reports: an error stops the run before any write, a warning is reported. */
export interface CapacityFinding {
  level: 'error' | 'warning'
  message: string
}

/** What the canary's pods and objects will add to the namespace. */
export interface CanaryFootprint {
  deployment: string
  /** The manifest's pod template (spec.template). */
  podTemplate: KubeObject['spec']
  /** Replicas the canary Deployment has now (0 when it does not exist): its pods are already counted in `used`. */
  liveReplicas: number
  /** The canary Deployment exists already (it counts in count/deployments.apps). */
  exists: boolean
  /** The action will create a HorizontalPodAutoscaler for the canary. */
  createsHpa: boolean
  needs: CapacityNeeds
}

type Amounts = Record<string, number>

/** What one pod takes of each compute resource, as the quota admission counts it. */
export function podUsage(podSpec: KubeObject['spec']): { requests: Amounts; limits: Amounts } {
  const sum = (containers: unknown, field: 'requests' | 'limits'): Amounts => {
    const out: Amounts = {}
    for (const c of (containers as Array<{ resources?: Record<string, Record<string, unknown>> }> | undefined) ?? []) {
      // A container with a limit but no request gets the limit as its request (apiserver defaulting).
      const values =
        field === 'requests' ? { ...(c.resources?.limits ?? {}), ...(c.resources?.requests ?? {}) } : (c.resources?.limits ?? {})
      for (const [name, raw] of Object.entries(values)) {
        const v = parseQuantity(raw)
        if (v !== undefined) out[name] = (out[name] ?? 0) + v
      }
    }
    return out
  }
  const effective = (field: 'requests' | 'limits'): Amounts => {
    // Init containers run one at a time before the others: the pod needs the larger of the two.
    const main = sum(podSpec?.containers, field)
    for (const init of (podSpec?.initContainers as unknown[] | undefined) ?? []) {
      for (const [name, v] of Object.entries(sum([init], field))) main[name] = Math.max(main[name] ?? 0, v)
    }
    for (const [name, raw] of Object.entries((podSpec?.overhead as Record<string, unknown> | undefined) ?? {})) {
      const v = parseQuantity(raw)
      if (v !== undefined) main[name] = (main[name] ?? 0) + v
    }
    return main
  }
  return { requests: effective('requests'), limits: effective('limits') }
}

/** What one more canary pod adds to a quota's resource; undefined when the quota does not count pods that way. */
function perPod(resource: string, usage: { requests: Amounts; limits: Amounts }): number | 'unset' | undefined {
  if (resource === 'pods' || resource === 'count/pods') return 1
  const m = /^(requests|limits)\.(.+)$/.exec(resource)
  const [field, name] = m ? [m[1] as 'requests' | 'limits', m[2]!] : ['requests' as const, resource]
  const compute = ['cpu', 'memory', 'ephemeral-storage'].includes(name)
  // requests.storage is the PersistentVolumeClaims' storage, not the pods'.
  if ((!m && !compute) || name === 'storage') return undefined
  const v = usage[field][name]
  // The quota admission refuses pods that leave out a compute resource it limits; an extended one they do not request costs nothing.
  return v !== undefined ? v : compute ? 'unset' : 0
}

/** Whether a quota's scopes take in the canary's pods; undefined when a scope cannot be judged here. */
function quotaApplies(quota: KubeObject, podSpec: KubeObject['spec'], usage: { requests: Amounts; limits: Amounts }): boolean | undefined {
  const bestEffort = ['cpu', 'memory'].every((r) => usage.requests[r] === undefined && usage.limits[r] === undefined)
  const terminating = podSpec?.activeDeadlineSeconds !== undefined
  const priority: string | undefined = podSpec?.priorityClassName
  const scope = (name: string, operator = 'Exists', values: string[] = []): boolean | undefined => {
    switch (name) {
      case 'BestEffort':
        return bestEffort
      case 'NotBestEffort':
        return !bestEffort
      case 'Terminating':
        return terminating
      case 'NotTerminating':
        return !terminating
      case 'PriorityClass':
        if (operator === 'Exists') return priority !== undefined
        if (operator === 'DoesNotExist') return priority === undefined
        if (operator === 'In') return priority !== undefined && values.includes(priority)
        if (operator === 'NotIn') return priority === undefined || !values.includes(priority)
        return undefined
      default:
        return undefined
    }
  }
  const terms: Array<boolean | undefined> = [
    ...((quota.spec?.scopes as string[] | undefined) ?? []).map((s) => scope(s)),
    ...(
      (quota.spec?.scopeSelector?.matchExpressions as Array<{ scopeName: string; operator: string; values?: string[] }> | undefined) ?? []
    ).map((e) => scope(e.scopeName, e.operator, e.values))
  ]
  if (terms.includes(false)) return false
  return terms.includes(undefined) ? undefined : true
}

/**
 * The ResourceQuotas that cannot hold the canary: an error when the pods of its first step or of its
 * peak (at 100 %, beside the stable's) would go over what the quota has left; warnings when a quota
 * cannot be judged (usage not counted yet, a scope we do not evaluate, a resource the pods do not set).
 */
export function checkQuotas(quotas: KubeObject[], canary: CanaryFootprint): CapacityFinding[] {
  const findings: CapacityFinding[] = []
  const usage = podUsage(canary.podTemplate?.spec)
  for (const quota of quotas) {
    const name = quota.metadata.name
    const applies = quotaApplies(quota, canary.podTemplate?.spec, usage)
    if (applies === false) continue
    if (applies === undefined) {
      findings.push({
        level: 'warning',
        message: `ResourceQuota ${name} has a scope this check does not evaluate: whether it holds the canary's ${canary.needs.peak} pod(s) was not checked`
      })
      continue
    }
    const hard = (quota.spec?.hard ?? {}) as Record<string, unknown>
    const used = (quota.status?.used ?? {}) as Record<string, unknown>
    for (const [resource, rawHard] of Object.entries(hard)) {
      const limit = parseQuantity(rawHard)
      if (limit === undefined) continue
      const objectCount =
        resource === 'count/deployments.apps'
          ? Number(!canary.exists)
          : resource === 'count/horizontalpodautoscalers.autoscaling'
            ? Number(canary.createsHpa)
            : undefined
      const each = objectCount === undefined ? perPod(resource, usage) : undefined
      if (objectCount === undefined && each === undefined) continue
      if (each === 'unset') {
        findings.push({
          level: 'warning',
          message: `ResourceQuota ${name} limits ${resource}, which the canary's pod template does not set: the apiserver refuses its pods unless a LimitRange gives them a default`
        })
        continue
      }
      if (used[resource] === undefined) {
        findings.push({
          level: 'warning',
          message: `ResourceQuota ${name} has not counted its ${resource} usage yet (status.used is empty): whether it holds the canary was not checked`
        })
        continue
      }
      const inUse = parseQuantity(used[resource]) ?? 0
      const left = limit - inUse
      const fmt = (v: number): string => formatQuantity(resource, v)
      if (objectCount !== undefined) {
        if (objectCount > 0 && left < objectCount - 1e-9) {
          findings.push({
            level: 'error',
            message: `ResourceQuota ${name} allows ${resource} ${fmt(limit)} and ${fmt(inUse)} are in use: the canary needs ${objectCount} more. Raise the quota or remove an unused object; nothing was changed.`
          })
        }
        continue
      }
      const perPodAmount = each as number
      for (const [when, replicas] of [
        ['its first step', canary.needs.first],
        ['its promotion (beside the stable version, before it leaves)', canary.needs.peak]
      ] as const) {
        const more = Math.max(0, replicas - canary.liveReplicas)
        const needed = more * perPodAmount
        if (more > 0 && needed > 0 && needed > left + Math.max(1e-9, limit * 1e-12)) {
          findings.push({
            level: 'error',
            message:
              `ResourceQuota ${name} cannot hold the canary Deployment ${canary.deployment} at ${when}: ${replicas} replica(s) need ${fmt(needed)} more ${resource}` +
              `${resource === 'pods' || resource === 'count/pods' ? '' : ` (${fmt(perPodAmount)} a pod)`}, and the quota has ${fmt(Math.max(0, left))} left of ${fmt(limit)} (${fmt(inUse)} in use). ` +
              `The apiserver would refuse the pods. Raise the quota, lower the pods' requests, or use fewer canary replicas (input 'canary-replicas'); nothing was changed.`
          })
          break
        }
      }
    }
  }
  return findings
}

/** Disruptions a budget allows over `pods` healthy pods (the disruption controller's rounding: up). */
export function allowedDisruptions(pdb: KubeObject, pods: number): number {
  const scaled = (v: unknown): number | undefined => {
    if (typeof v === 'number') return v
    const pct = typeof v === 'string' ? /^(\d+)%$/.exec(v) : null
    return pct ? Math.ceil((Number(pct[1]) * pods) / 100) : undefined
  }
  const minAvailable = scaled(pdb.spec?.minAvailable)
  if (minAvailable !== undefined) return pods - minAvailable
  const maxUnavailable = scaled(pdb.spec?.maxUnavailable)
  return maxUnavailable ?? 1
}

/**
 * PodDisruptionBudgets over the canary's pods: a warning when one allows no disruption at the
 * canary's first size (its pods could not be evicted: node drains would hang while the rollout
 * runs), and when several select them (the eviction API refuses pods under more than one budget).
 */
export function checkDisruptionBudgets(
  pdbs: KubeObject[],
  canary: { deployment: string; podLabels: Record<string, string>; first: number },
  stable?: { podLabels: Record<string, string>; replicas: number }
): CapacityFinding[] {
  const findings: CapacityFinding[] = []
  // A budget without a selector selects nothing (policy/v1); an empty one selects every pod.
  const covering = pdbs.filter(
    (p) => p.spec?.selector !== undefined && p.spec?.selector !== null && selectorMatches(p.spec.selector, canary.podLabels)
  )
  for (const pdb of covering) {
    const withStable = stable !== undefined && selectorMatches(pdb.spec.selector, stable.podLabels)
    const pods = canary.first + (withStable ? stable.replicas : 0)
    const allowed = allowedDisruptions(pdb, pods)
    if (allowed > 0) continue
    const rule =
      pdb.spec?.minAvailable !== undefined ? `minAvailable ${pdb.spec.minAvailable}` : `maxUnavailable ${pdb.spec?.maxUnavailable}`
    findings.push({
      level: 'warning',
      message:
        `PodDisruptionBudget ${pdb.metadata.name} (${rule}) selects the canary's pods and allows no disruption over ${pods} pod(s) ` +
        `(${canary.first} of the canary${withStable ? ` and ${stable.replicas} of the stable version` : ''}): while the canary runs at that size its pods cannot be evicted, so node drains wait. ` +
        `The rollout itself is not blocked (scaling does not evict); give the budget a percentage or maxUnavailable, or start the canary larger.`
    })
  }
  if (covering.length > 1) {
    findings.push({
      level: 'warning',
      message: `PodDisruptionBudgets ${covering.map((p) => p.metadata.name).join(', ')} all select the canary's pods: the eviction API refuses to evict a pod under more than one budget, so node drains would fail on them.`
    })
  }
  return findings
}
