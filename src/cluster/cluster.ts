/**
 * The Cluster port: every Kubernetes call the action makes goes through it, so the rollout logic
 * never sees @kubernetes/client-node. KubeCluster (kube-cluster.ts) is the one implementation.
 */

import type { KubeObject } from '../kube/kube-object.js'

export type IstioKind = 'VirtualService' | 'DestinationRule'

export interface WriteOptions {
  /** Server-side dry run: the apiserver validates and admits, nothing is stored. */
  dryRun?: boolean
}

export interface ReadOptions {
  /**
   * The resourceVersion of a write this read must show or pass (its read-back): the answer is
   * never older than that write, and the API server may give it from its watch cache instead of a
   * quorum read of etcd (resourceVersion "not older than" semantics; it waits for its cache to
   * catch up, or answers 504 Timeout, which is retried).
   */
  notOlderThan?: string
}

export interface ApplyOptions extends WriteOptions {
  /**
   * Take the fields other managers own. Honoured only with dryRun: it previews what the manifest
   * would make of the object (a diff) without ever forcing a real write.
   */
  force?: boolean
}

export interface AccessCheck {
  verb: string
  group: string // '' for the core group
  resource: string
  namespace: string
  name?: string
  subresource?: string
}

export interface AccessResult extends AccessCheck {
  allowed: boolean
  reason?: string
}

/** The Kubernetes calls of canary capacity (src/commands/canary-capacity.ts, capacity-preflight.ts). */
export interface CapacityApi {
  /** autoscaling/v2 HorizontalPodAutoscalers of the namespace. */
  listHorizontalPodAutoscalers(namespace: string): Promise<KubeObject[]>
  /** Server-side apply (field manager istio-canary, never forced) of an HPA the action owns. */
  applyHorizontalPodAutoscaler(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>
  /** Deletes an HPA; one already gone is fine. */
  deleteHorizontalPodAutoscaler(namespace: string, name: string): Promise<void>
  /** policy/v1 PodDisruptionBudgets of the namespace. */
  listPodDisruptionBudgets(namespace: string): Promise<KubeObject[]>
  /** ResourceQuotas of the namespace (with status.used). */
  listResourceQuotas(namespace: string): Promise<KubeObject[]>
}

/** The field manager of every write the action makes, so managedFields shows who changed what. */
export const FIELD_MANAGER = 'istio-canary'

export interface Cluster {
  /** Served networking.istio.io version to read and write in: v1, else v1beta1, else v1alpha3. */
  istioVersion(): Promise<string>
  /** undefined when the object does not exist. The latest object (a quorum read) unless `opts.notOlderThan`. */
  getIstio(kind: IstioKind, namespace: string, name: string, opts?: ReadOptions): Promise<KubeObject | undefined>
  listIstio(kind: IstioKind, namespace: string): Promise<KubeObject[]>
  /** Every object of the kind in every namespace (needs a cluster-wide `list`: a ClusterRole). */
  listIstioInAllNamespaces(kind: IstioKind): Promise<KubeObject[]>
  /**
   * PUT the whole object with metadata.resourceVersion as the precondition, in the apiVersion the
   * object carries. Throws ConflictError (from ../errors.js) on 409: read again, decide again.
   */
  replaceIstio(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>

  getNamespace(name: string): Promise<KubeObject | undefined>
  getService(namespace: string, name: string): Promise<KubeObject | undefined>
  getDeployment(namespace: string, name: string): Promise<KubeObject | undefined>
  listDeployments(namespace: string, labelSelector?: string): Promise<KubeObject[]>
  /** Server-side apply with field manager istio-canary (force=false unless a forced dry run: ownership conflicts surface). */
  applyDeployment(obj: KubeObject, opts?: ApplyOptions): Promise<KubeObject>
  /** Sets spec.replicas (merge patch guarded by resourceVersion when given). */
  scaleDeployment(namespace: string, name: string, replicas: number, opts?: WriteOptions): Promise<KubeObject>
  deleteDeployment(namespace: string, name: string, opts?: WriteOptions): Promise<void>
  listPods(namespace: string, labelSelector: string): Promise<KubeObject[]>
  /** Events about one object (involvedObject.name), newest last. */
  listEvents(namespace: string, involvedName: string): Promise<KubeObject[]>

  /** Canary capacity's calls (autoscalers, disruption budgets, quotas), loaded when a rollout needs them. */
  capacity(): Promise<CapacityApi>

  /** SelfSubjectAccessReview for each check. */
  canI(checks: AccessCheck[]): Promise<AccessResult[]>

  getLease(namespace: string, name: string): Promise<KubeObject | undefined>
  /** Throws ConflictError when it already exists (409). */
  createLease(lease: KubeObject): Promise<KubeObject>
  /** Guarded by metadata.resourceVersion; throws ConflictError on 409. */
  replaceLease(lease: KubeObject): Promise<KubeObject>
  deleteLease(namespace: string, name: string, resourceVersion?: string): Promise<void>

  /** API requests sent so far (retries included), for the benchmarks and the report. */
  readonly requestCount: number
}
