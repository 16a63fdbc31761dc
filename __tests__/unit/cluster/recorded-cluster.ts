/**
 * A Cluster that answers from recorded snapshots (pure data) and keeps Leases in memory with the
 * apiserver's resourceVersion rules (create 409 when present, guarded replace/delete 409 when the
 * version moved). Only for unit tests of code written against the Cluster port.
 */
import type { AccessCheck, AccessResult, CapacityApi, Cluster, IstioKind } from '../../../src/cluster/cluster.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { ConflictError } from '../../../src/errors.js'

export interface Snapshot {
  deployment?: KubeObject
  pods?: KubeObject[]
}

export class RecordedCluster implements Cluster {
  requestCount = 0
  readonly calls: string[] = []
  private snapshotIndex = -1
  private leases = new Map<string, KubeObject>()
  private rv = 1000

  constructor(
    private readonly snapshots: Snapshot[] = [],
    private readonly events: KubeObject[] = []
  ) {}

  private count(call: string) {
    this.requestCount++
    this.calls.push(call)
  }

  async getDeployment(namespace: string, name: string): Promise<KubeObject | undefined> {
    this.count(`getDeployment ${namespace}/${name}`)
    this.snapshotIndex = Math.min(this.snapshotIndex + 1, this.snapshots.length - 1)
    return structuredClone(this.snapshots[this.snapshotIndex]?.deployment)
  }
  async listPods(namespace: string, labelSelector: string): Promise<KubeObject[]> {
    this.count(`listPods ${namespace} ${labelSelector}`)
    return structuredClone(this.snapshots[this.snapshotIndex]?.pods ?? [])
  }
  async listEvents(namespace: string, involvedName: string): Promise<KubeObject[]> {
    this.count(`listEvents ${namespace} ${involvedName}`)
    return this.events.filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === involvedName)
  }

  async getLease(namespace: string, name: string): Promise<KubeObject | undefined> {
    this.count(`getLease ${name}`)
    return structuredClone(this.leases.get(`${namespace}/${name}`))
  }
  async createLease(lease: KubeObject): Promise<KubeObject> {
    this.count(`createLease ${lease.metadata.name}`)
    const key = `${lease.metadata.namespace}/${lease.metadata.name}`
    if (this.leases.has(key)) throw new ConflictError(`Lease ${key} already exists`)
    const stored = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(++this.rv) } }
    this.leases.set(key, stored)
    return structuredClone(stored)
  }
  async replaceLease(lease: KubeObject): Promise<KubeObject> {
    this.count(`replaceLease ${lease.metadata.name}`)
    const key = `${lease.metadata.namespace}/${lease.metadata.name}`
    const cur = this.leases.get(key)
    if (!cur || cur.metadata.resourceVersion !== lease.metadata.resourceVersion) throw new ConflictError(`Lease ${key} changed`)
    const stored = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: String(++this.rv) } }
    this.leases.set(key, stored)
    return structuredClone(stored)
  }
  async deleteLease(namespace: string, name: string, resourceVersion?: string): Promise<void> {
    this.count(`deleteLease ${name}`)
    const key = `${namespace}/${name}`
    const cur = this.leases.get(key)
    if (!cur) return
    if (resourceVersion && cur.metadata.resourceVersion !== resourceVersion) throw new ConflictError(`Lease ${key} changed`)
    this.leases.delete(key)
  }
  /** Test hook: change a stored lease as another writer would. */
  tamperLease(namespace: string, name: string, change: (l: KubeObject) => void): void {
    const cur = this.leases.get(`${namespace}/${name}`)!
    change(cur)
    cur.metadata.resourceVersion = String(++this.rv)
  }

  istioVersion(): Promise<string> {
    throw new Error('not recorded')
  }
  getIstio(_k: IstioKind, _ns: string, _n: string): Promise<KubeObject | undefined> {
    throw new Error('not recorded')
  }
  listIstio(_k: IstioKind, _ns: string): Promise<KubeObject[]> {
    throw new Error('not recorded')
  }
  listIstioInAllNamespaces(_k: IstioKind): Promise<KubeObject[]> {
    throw new Error('not recorded')
  }
  replaceIstio(_o: KubeObject): Promise<KubeObject> {
    throw new Error('not recorded')
  }
  getNamespace(_n: string): Promise<KubeObject | undefined> {
    throw new Error('not recorded')
  }
  getService(_ns: string, _n: string): Promise<KubeObject | undefined> {
    throw new Error('not recorded')
  }
  listDeployments(_ns: string): Promise<KubeObject[]> {
    throw new Error('not recorded')
  }
  applyDeployment(_o: KubeObject): Promise<KubeObject> {
    throw new Error('not recorded')
  }
  scaleDeployment(_ns: string, _n: string, _r: number): Promise<KubeObject> {
    throw new Error('not recorded')
  }
  deleteDeployment(_ns: string, _n: string): Promise<void> {
    throw new Error('not recorded')
  }
  canI(_c: AccessCheck[]): Promise<AccessResult[]> {
    throw new Error('not recorded')
  }
  capacity(): Promise<CapacityApi> {
    throw new Error('not recorded')
  }
}

/** A clock that only moves when the code under test sleeps. */
export class FakeClock {
  constructor(private t: number) {}
  readonly sleeps: number[] = []
  now = (): Date => new Date(this.t)
  advance(ms: number): void {
    this.t += ms
  }
  sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted()
    this.sleeps.push(ms)
    this.t += ms
  }
}
