/**
 * An in-memory Cluster with the apiserver's write rules that our code relies on: every stored
 * object has a resourceVersion, a replace under a stale one answers 409 (ConflictError), a create
 * of an existing name answers 409. `beforeReplace` lets a test play a concurrent writer. Only for
 * unit tests of code written against the Cluster port (routers, executor, commands); the real
 * apiserver is what the integration tests use.
 */
import type { AccessCheck, AccessResult, CapacityApi, Cluster, MeshKind, ReadOptions, WriteOptions } from '../../src/cluster/cluster.js'
import { ConflictError } from '../../src/errors.js'
import type { KubeObject } from '../../src/kube/kube-object.js'

export class MemoryCluster implements Cluster, CapacityApi {
  requestCount = 0
  readonly writes: string[] = []
  /** Every getIstio, as `Kind name` plus ` >=RV` when it asked for an object not older than RV. */
  readonly istioReads: string[] = []
  /** Called before each replace of an Istio object is judged; may change the store (a concurrent writer). */
  beforeReplace?: (obj: KubeObject, store: MemoryCluster) => void
  private readonly objects = new Map<string, KubeObject>()
  private rv = 100

  constructor(objects: KubeObject[] = []) {
    for (const o of objects) this.put(o)
  }

  /** Store `obj` as it is, with a fresh resourceVersion (a write by someone else). */
  put(obj: KubeObject): KubeObject {
    const stored = structuredClone(obj)
    stored.metadata.resourceVersion = String(++this.rv)
    this.objects.set(key(obj.kind, obj.metadata.namespace ?? 'default', obj.metadata.name), stored)
    return structuredClone(stored)
  }

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    const o = this.objects.get(key(kind, namespace, name))
    return o && structuredClone(o)
  }

  private replace(obj: KubeObject, opts?: WriteOptions): KubeObject {
    const current = this.objects.get(key(obj.kind, obj.metadata.namespace ?? 'default', obj.metadata.name))
    if (!current) throw new Error(`${obj.kind} ${obj.metadata.name} not found`)
    if (obj.metadata.resourceVersion !== undefined && obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new ConflictError(`${obj.kind} ${obj.metadata.name}: the object has been modified`)
    }
    if (opts?.dryRun) return structuredClone(obj)
    this.writes.push(`${obj.kind} ${obj.metadata.name}`)
    return this.put(obj)
  }

  async istioVersion(): Promise<string> {
    return 'v1'
  }
  async getIstio(kind: MeshKind, namespace: string, name: string, opts?: ReadOptions): Promise<KubeObject | undefined> {
    this.requestCount++
    this.istioReads.push(`${kind} ${name}${opts?.notOlderThan ? ` >=${opts.notOlderThan}` : ''}`)
    const o = this.get(kind, namespace, name)
    // The apiserver would wait for a version it does not have yet, then answer 504.
    if (o && opts?.notOlderThan && Number(opts.notOlderThan) > Number(o.metadata.resourceVersion)) {
      throw new Error(`${kind} ${name}: resourceVersion ${opts.notOlderThan} is newer than the stored one`)
    }
    return o
  }
  async listIstio(kind: MeshKind, namespace: string): Promise<KubeObject[]> {
    this.requestCount++
    return this.list(kind, namespace)
  }
  async listIstioInAllNamespaces(kind: MeshKind): Promise<KubeObject[]> {
    this.requestCount++
    return [...this.objects.values()].filter((o) => o.kind === kind).map((o) => structuredClone(o))
  }
  async replaceIstio(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    this.requestCount++
    this.beforeReplace?.(obj, this)
    return this.replace(obj, opts)
  }
  async createIstio(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    this.requestCount++
    if (this.get(obj.kind, obj.metadata.namespace ?? 'default', obj.metadata.name)) throw new ConflictError(`${obj.kind} already exists`)
    if (opts?.dryRun) return structuredClone(obj)
    this.writes.push(`create ${obj.kind} ${obj.metadata.name}`)
    return this.put(obj)
  }
  async deleteIstio(kind: MeshKind, namespace: string, name: string): Promise<void> {
    this.requestCount++
    this.writes.push(`delete ${kind} ${name}`)
    this.objects.delete(key(kind, namespace, name))
  }
  async applyService(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    if (opts?.dryRun) return structuredClone(obj)
    this.writes.push(`apply Service ${obj.metadata.name}`)
    const managedFields = [{ manager: 'istio-canary', operation: 'Apply' }]
    return this.put({ ...obj, metadata: { ...obj.metadata, managedFields } })
  }
  async deleteService(namespace: string, name: string): Promise<void> {
    this.writes.push(`delete Service ${name}`)
    this.objects.delete(key('Service', namespace, name))
  }
  async getNamespace(name: string): Promise<KubeObject | undefined> {
    const ns = [...this.objects.values()].find((o) => o.kind === 'Namespace' && o.metadata.name === name)
    return ns && structuredClone(ns)
  }
  async getService(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.get('Service', namespace, name)
  }
  async getDeployment(namespace: string, name: string): Promise<KubeObject | undefined> {
    this.requestCount++
    return this.get('Deployment', namespace, name)
  }
  async listDeployments(namespace: string): Promise<KubeObject[]> {
    return this.list('Deployment', namespace)
  }
  async applyDeployment(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    if (opts?.dryRun) return structuredClone(obj)
    this.writes.push(`apply Deployment ${obj.metadata.name}`)
    const live = this.get('Deployment', obj.metadata.namespace ?? 'default', obj.metadata.name)
    return this.put({ ...obj, status: live?.status ?? { availableReplicas: obj.spec?.replicas ?? 1 } })
  }
  async scaleDeployment(namespace: string, name: string, replicas: number): Promise<KubeObject> {
    const live = this.get('Deployment', namespace, name)
    if (!live) throw new Error(`Deployment ${name} not found`)
    this.writes.push(`scale Deployment ${name} ${replicas}`)
    // No pods here: scaled replicas are available at once.
    return this.put({ ...live, spec: { ...live.spec, replicas }, status: { ...live.status, availableReplicas: replicas } })
  }
  async deleteDeployment(namespace: string, name: string): Promise<void> {
    this.writes.push(`delete Deployment ${name}`)
    this.objects.delete(key('Deployment', namespace, name))
  }
  async listPods(): Promise<KubeObject[]> {
    return []
  }
  async listEvents(): Promise<KubeObject[]> {
    return []
  }
  async capacity(): Promise<CapacityApi> {
    return this
  }
  async listHorizontalPodAutoscalers(namespace: string): Promise<KubeObject[]> {
    return this.list('HorizontalPodAutoscaler', namespace)
  }
  async applyHorizontalPodAutoscaler(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    if (opts?.dryRun) return structuredClone(obj)
    this.writes.push(`apply HorizontalPodAutoscaler ${obj.metadata.name} ${obj.spec?.minReplicas}..${obj.spec?.maxReplicas}`)
    return this.put({ ...obj, kind: 'HorizontalPodAutoscaler' })
  }
  async deleteHorizontalPodAutoscaler(namespace: string, name: string): Promise<void> {
    if (!this.objects.delete(key('HorizontalPodAutoscaler', namespace, name))) return
    this.writes.push(`delete HorizontalPodAutoscaler ${name}`)
  }
  async listPodDisruptionBudgets(namespace: string): Promise<KubeObject[]> {
    return this.list('PodDisruptionBudget', namespace)
  }
  async listResourceQuotas(namespace: string): Promise<KubeObject[]> {
    return this.list('ResourceQuota', namespace)
  }
  async canI(checks: AccessCheck[]): Promise<AccessResult[]> {
    return checks.map((c) => ({ ...c, allowed: true }))
  }
  async getLease(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.get('Lease', namespace, name)
  }
  async createLease(lease: KubeObject): Promise<KubeObject> {
    if (this.get('Lease', lease.metadata.namespace ?? 'default', lease.metadata.name)) throw new ConflictError('Lease already exists')
    return this.put(lease)
  }
  async replaceLease(lease: KubeObject): Promise<KubeObject> {
    return this.replace(lease)
  }
  async deleteLease(namespace: string, name: string): Promise<void> {
    this.objects.delete(key('Lease', namespace, name))
  }

  /** Every stored object of `kind` in `namespace`. */
  list(kind: string, namespace: string): KubeObject[] {
    return [...this.objects.values()]
      .filter((o) => o.kind === kind && (o.metadata.namespace ?? 'default') === namespace)
      .map((o) => structuredClone(o))
  }
}

function key(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`
}

/**
 * What a subset-split rollout of `app` (default web) starts from in namespace `ns`: the namespace
 * with sidecar injection on, the Service (port 80), a DestinationRule with the stable version's
 * subset and a VirtualService sending all of the Service's traffic to that subset.
 */
export function subsetRoutedService(ns: string, stable: { subset: string; version: string }, app = 'web'): KubeObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'istio-injection': 'enabled' } } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, namespace: ns },
      spec: { selector: { app }, ports: [{ port: 80 }] }
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: app, namespace: ns },
      spec: { host: app, subsets: [{ name: stable.subset, labels: { version: stable.version } }] }
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: app, namespace: ns },
      spec: { hosts: [app], http: [{ route: [{ destination: { host: app, subset: stable.subset } }] }] }
    }
  ]
}
