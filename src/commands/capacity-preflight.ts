import type { AccessCheck } from '../cluster/cluster.js'
import type { Config } from '../config/config.js'
import { INPUT } from '../config/inputs.js'
import { PreflightError, quote } from '../errors.js'
import { errorText } from '../format.js'
import { boundsOf, isManagedByUs, scalesDeployment } from '../kube/horizontal-pod-autoscaler.js'
import type { KubeObject } from '../kube/kube-object.js'
import { appliesWithoutReplicas, capacityNeeds, type CapacityNeeds, type CapacityRecord } from '../rollout/capacity.js'
import { checkDisruptionBudgets, checkQuotas, type CapacityFinding } from '../rollout/capacity-check.js'
import type { CommandDeps } from './command-deps.js'
import type { ReadOnlyNotes } from './preflight.js'

/** What a deploy's preflight knows when it comes to the canary's capacity. */
export interface CapacityView {
  namespace: string
  manifest: KubeObject
  stableDeployment?: KubeObject
  /** Command plan: denied write rights are noted here instead of refused. */
  readOnly?: ReadOnlyNotes
}

/**
 * The canary's capacity before any write: the stable's HorizontalPodAutoscaler (the canary gets its
 * own), the input 'canary-replicas' against what it needs, and the namespace's ResourceQuotas (an
 * error when they cannot hold the canary's pods) and PodDisruptionBudgets (warnings). Returns what
 * the rollout records (and the dry-run plan's line); throws PreflightError with every blocking finding at once.
 */
export async function preflightCapacity(
  config: Config,
  deps: CommandDeps,
  view: CapacityView,
  warnings: string[]
): Promise<{ capacity: CapacityRecord; capacityPlan?: string }> {
  const { namespace, manifest, stableDeployment } = view
  const mode = config.canaryReplicas
  const canary = manifest.metadata.name
  if (mode === 'proportional' && !stableDeployment) {
    throw new PreflightError(
      `Input '${INPUT.canaryReplicas}' is ${quote(mode)}, but no single Deployment of the stable version was found, so the canary's replicas have nothing to follow. ` +
        `Use 'manifest', or make the stable subset's labels select exactly one Deployment; nothing was changed.`
    )
  }
  const allowed = await allowedReads(deps, namespace)
  const hpas = allowed.horizontalpodautoscalers ? await (await deps.cluster.capacity()).listHorizontalPodAutoscalers(namespace) : []
  if (!allowed.horizontalpodautoscalers) {
    if (mode === 'proportional') {
      throw new PreflightError(
        `The Kubernetes credentials may not list autoscaling/horizontalpodautoscalers in namespace ${quote(namespace)}: with input '${INPUT.canaryReplicas}' ${quote(mode)} ` +
          `the action must know whether an HPA scales the stable version (it never fights one). Grant it (see the RBAC Role in the README); nothing was changed.`
      )
    }
    warnings.push(
      `the Kubernetes credentials may not list autoscaling/horizontalpodautoscalers in namespace ${namespace}: an HPA of the stable version is not copied for the canary`
    )
  }
  const stableHpas = stableDeployment ? hpas.filter((h) => scalesDeployment(h, stableDeployment.metadata.name)) : []
  if (stableHpas.length > 1) {
    warnings.push(
      `several HorizontalPodAutoscalers scale the stable Deployment ${stableDeployment!.metadata.name} (${stableHpas.map((h) => h.metadata.name).join(', ')}); the canary's copies ${stableHpas[0]!.metadata.name}`
    )
  }
  const stableHpa = stableHpas[0]
  const record: CapacityRecord = { mode, ...(stableHpa ? { stableHpa: stableHpa.metadata.name, canaryHpa: canary } : {}) }
  await checkCanaryHpa(deps, { namespace, canary, hpas, record, readOnly: view.readOnly })
  if (appliesWithoutReplicas(mode, stableHpa !== undefined) && manifest.spec?.replicas !== undefined) {
    deps.log.info(
      `The manifest's spec.replicas (${manifest.spec.replicas}) is not applied: ${stableHpa ? `the canary's HorizontalPodAutoscaler ${canary} sets its replicas` : `the canary's replicas follow its weight (canary-replicas: proportional)`}`
    )
  }

  const needs = capacityNeeds({
    mode,
    weights: config.steps.flatMap((s) => (s.kind === 'weight' ? [s.weight] : [])),
    stableReplicas: Number(stableDeployment?.spec?.replicas ?? 1),
    ...(stableHpa ? { stableHpa: boundsOf(stableHpa) } : {}),
    manifestReplicas: Number(manifest.spec?.replicas ?? 1)
  })
  const findings = await capacityFindings(deps, view, { needs, allowed, createsHpa: stableHpa !== undefined }, warnings)
  const errors = findings.filter((f) => f.level === 'error')
  if (errors.length > 0) throw new PreflightError(errors.map((f) => f.message).join('\n'))
  warnings.push(...findings.map((f) => f.message))
  const capacityPlan = record.stableHpa
    ? `give the canary HorizontalPodAutoscaler ${record.canaryHpa} (from ${record.stableHpa}); raise its bounds before each increase`
    : mode === 'proportional'
      ? `raise the canary's replicas before each increase (stable's × weight)`
      : undefined
  return { capacity: record, ...(capacityPlan ? { capacityPlan } : {}) }
}

/** The quota and disruption-budget findings over the canary's replicas (a denied list only warns). */
async function capacityFindings(
  deps: CommandDeps,
  view: CapacityView,
  c: { needs: CapacityNeeds; allowed: Record<'resourcequotas' | 'poddisruptionbudgets', boolean>; createsHpa: boolean },
  warnings: string[]
): Promise<CapacityFinding[]> {
  const { namespace, manifest, stableDeployment } = view
  const { needs, allowed } = c
  const canary = manifest.metadata.name
  const live = await deps.cluster.getDeployment(namespace, canary)
  const findings: CapacityFinding[] = []
  if (allowed.resourcequotas) {
    findings.push(
      ...checkQuotas(await (await deps.cluster.capacity()).listResourceQuotas(namespace), {
        deployment: canary,
        podTemplate: manifest.spec?.template,
        liveReplicas: Number(live?.spec?.replicas ?? 0),
        exists: live !== undefined,
        createsHpa: c.createsHpa,
        needs
      })
    )
  } else {
    warnings.push(
      `the Kubernetes credentials may not list resourcequotas in namespace ${namespace}: whether a quota holds the canary's pods was not checked`
    )
  }
  if (allowed.poddisruptionbudgets) {
    findings.push(
      ...checkDisruptionBudgets(
        await (await deps.cluster.capacity()).listPodDisruptionBudgets(namespace),
        { deployment: canary, podLabels: manifest.spec?.template?.metadata?.labels ?? {}, first: needs.first },
        stableDeployment
          ? { podLabels: stableDeployment.spec?.template?.metadata?.labels ?? {}, replicas: Number(stableDeployment.spec?.replicas ?? 1) }
          : undefined
      )
    )
  } else {
    warnings.push(
      `the Kubernetes credentials may not list policy/poddisruptionbudgets in namespace ${namespace}: budgets over the canary's pods were not checked`
    )
  }
  return findings
}

/** The canary's HPA name must be free (or ours, for this Deployment), and the action must be allowed to write it. */
async function checkCanaryHpa(
  deps: CommandDeps,
  c: { namespace: string; canary: string; hpas: KubeObject[]; record: CapacityRecord; readOnly?: ReadOnlyNotes }
): Promise<void> {
  const { namespace, canary, hpas, record, readOnly } = c
  const foreign = hpas.find((h) => scalesDeployment(h, canary) && !isManagedByUs(h))
  if (foreign && (record.mode === 'proportional' || record.canaryHpa)) {
    throw new PreflightError(
      `HorizontalPodAutoscaler ${quote(foreign.metadata.name)} already scales the canary Deployment ${quote(canary)}: the action would fight it over spec.replicas. ` +
        `Remove it (the canary gets a copy of the stable's HPA), or use input '${INPUT.canaryReplicas}' ${quote('manifest')} without an HPA on the stable version; nothing was changed.`
    )
  }
  if (!record.canaryHpa) return
  const taken = hpas.find((h) => h.metadata.name === record.canaryHpa && !(scalesDeployment(h, canary) && isManagedByUs(h)))
  if (taken) {
    throw new PreflightError(
      `The canary's HorizontalPodAutoscaler would be named ${quote(record.canaryHpa)}, but an HPA of that name already exists for something else; rename one of them; nothing was changed.`
    )
  }
  await requireHpaRights(
    deps,
    namespace,
    ['create', 'patch', 'delete'],
    `The stable version has HorizontalPodAutoscaler ${quote(record.stableHpa ?? '')}, so the canary gets its own`,
    readOnly
  )
}

/**
 * The rights on HorizontalPodAutoscalers a run needs: a deploy that makes the canary's (create,
 * patch, delete), a promote or abort of a rollout that made one (list, patch, delete).
 */
export async function requireHpaRights(
  deps: CommandDeps,
  namespace: string,
  verbs: string[] = ['list', 'patch', 'delete'],
  why = `The rollout gave the canary a HorizontalPodAutoscaler`,
  readOnly?: ReadOnlyNotes
): Promise<void> {
  const checks: AccessCheck[] = verbs.map((verb) => ({ verb, group: 'autoscaling', resource: 'horizontalpodautoscalers', namespace }))
  const denied = (await deps.cluster.canI(checks)).filter((r) => !r.allowed)
  if (denied.length > 0 && readOnly) {
    // A plan reports what the deploy would be denied, as for the other rights.
    readOnly.denied.push(...denied.map((d) => `${d.verb} autoscaling/horizontalpodautoscalers`))
    readOnly.writesAllowed = false
  } else if (denied.length > 0) {
    throw new PreflightError(
      `${why}, but the Kubernetes credentials may not: ` +
        `${denied.map((d) => `${d.verb} autoscaling/horizontalpodautoscalers`).join(', ')} in namespace ${quote(namespace)}. Grant them (see the RBAC Role in the README); nothing was changed.`
    )
  }
}

/** Which of the capacity reads the credentials allow (an older Role may lack them). */
async function allowedReads(
  deps: CommandDeps,
  namespace: string
): Promise<Record<'horizontalpodautoscalers' | 'resourcequotas' | 'poddisruptionbudgets', boolean>> {
  const checks: AccessCheck[] = [
    { verb: 'list', group: 'autoscaling', resource: 'horizontalpodautoscalers', namespace },
    { verb: 'list', group: '', resource: 'resourcequotas', namespace },
    { verb: 'list', group: 'policy', resource: 'poddisruptionbudgets', namespace }
  ]
  try {
    const [hpa, quota, pdb] = await deps.cluster.canI(checks)
    return {
      horizontalpodautoscalers: hpa?.allowed === true,
      resourcequotas: quota?.allowed === true,
      poddisruptionbudgets: pdb?.allowed === true
    }
  } catch (err) {
    deps.log.warning(`Could not check access to HPAs, quotas and disruption budgets: ${errorText(err)}`)
    return { horizontalpodautoscalers: false, resourcequotas: false, poddisruptionbudgets: false }
  }
}
