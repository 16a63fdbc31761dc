/**
 * HorizontalPodAutoscalers (autoscaling/v2) as the canary rollout uses them: which one scales a
 * Deployment, its bounds, and the canary's own made from the stable's.
 */
import type { KubeObject } from './kube-object.js'

/** Marks the objects the action made (the canary's HPA): only those does it ever remove. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY_VALUE = 'istio-canary'

/** Whether `hpa` scales the Deployment `deployment`. */
export function scalesDeployment(hpa: KubeObject, deployment: string): boolean {
  const ref = hpa.spec?.scaleTargetRef as { apiVersion?: string; kind?: string; name?: string } | undefined
  const group = (ref?.apiVersion ?? 'apps/v1').split('/').length === 2 ? ref!.apiVersion!.split('/')[0] : ''
  return ref?.kind === 'Deployment' && ref.name === deployment && (ref.apiVersion === undefined || group === 'apps')
}

/** minReplicas (default 1) and maxReplicas. */
export function boundsOf(hpa: KubeObject): { min: number; max: number } {
  const min = Number(hpa.spec?.minReplicas ?? 1)
  return { min, max: Number(hpa.spec?.maxReplicas ?? min) }
}

/** Whether the action made this HPA. */
export function isManagedByUs(obj: KubeObject): boolean {
  return obj.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE
}

/**
 * The canary's HPA: the stable's metrics and behaviour, aimed at the canary Deployment, with the
 * given bounds. Everything else of the stable's (its name, labels, annotations) stays the stable's.
 */
export function canaryHpaFrom(
  stable: KubeObject,
  canary: { name: string; namespace: string; deployment: string; min: number; max: number }
): KubeObject {
  const spec: Record<string, unknown> = {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: canary.deployment },
    minReplicas: canary.min,
    maxReplicas: canary.max
  }
  if (stable.spec?.metrics !== undefined) spec.metrics = stable.spec.metrics
  if (stable.spec?.behavior !== undefined) spec.behavior = stable.spec.behavior
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: canary.name, namespace: canary.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } },
    spec
  }
}
