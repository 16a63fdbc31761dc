/**
 * KubeCapacity: canary capacity's calls over KubeCluster's request machinery (counted, timed out,
 * retried). A lazy chunk of its own: most runs never need it.
 */
import type { CapacityApi, WriteOptions } from './cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import type { RequestTarget } from './kube-api-error.js'
import type { KubeRequest } from './kube-http-client.js'

type Call = (target: RequestTarget, req: Omit<KubeRequest, 'signal'>) => Promise<unknown>
type Apply = (obj: KubeObject, opts?: WriteOptions) => Promise<KubeObject>

const HPA = 'horizontalpodautoscalers'

export class KubeCapacity implements CapacityApi {
  constructor(
    private readonly call: Call,
    readonly applyHorizontalPodAutoscaler: Apply
  ) {}

  listHorizontalPodAutoscalers(namespace: string): Promise<KubeObject[]> {
    return this.list('autoscaling/v2', 'HorizontalPodAutoscaler', HPA, namespace)
  }

  async deleteHorizontalPodAutoscaler(namespace: string, name: string): Promise<void> {
    try {
      await this.call(
        { verb: 'DELETE', resource: HPA, namespace, name },
        { method: 'DELETE', path: `${path('autoscaling/v2', HPA, namespace)}/${encodeURIComponent(name)}` }
      )
    } catch (err) {
      // Already gone is what we wanted (a retried DELETE lands here too).
      if ((err as { status?: number }).status !== 404) throw err
    }
  }

  listPodDisruptionBudgets(namespace: string): Promise<KubeObject[]> {
    return this.list('policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets', namespace)
  }

  listResourceQuotas(namespace: string): Promise<KubeObject[]> {
    return this.list('v1', 'ResourceQuota', 'resourcequotas', namespace)
  }

  private async list(apiVersion: string, kind: string, plural: string, namespace: string): Promise<KubeObject[]> {
    const list = (await this.call(
      { verb: 'LIST', resource: plural, namespace },
      { method: 'GET', path: path(apiVersion, plural, namespace) }
    )) as {
      items?: KubeObject[]
    }
    // Items of built-in lists come without apiVersion/kind.
    return (list?.items ?? []).map((i) => ({ ...i, apiVersion: i.apiVersion ?? apiVersion, kind: i.kind ?? kind }))
  }
}

/** `/apis/<group>/<version>/namespaces/<ns>/<plural>`; the core group lives under /api. */
function path(apiVersion: string, plural: string, namespace: string): string {
  return `${apiVersion.includes('/') ? '/apis' : '/api'}/${apiVersion}/namespaces/${encodeURIComponent(namespace)}/${plural}`
}
