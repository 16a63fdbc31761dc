/**
 * The per-version Service model, shared by every router whose route names versions by Service
 * rather than by subset (a VirtualService host-level split, an HTTPRoute's backendRefs): the
 * canary's Service exists before any weight points at it (applied from the manifests when it
 * comes with them), an optional DestinationRule gives the canary host the stable host's traffic
 * policy, and a version's Service and DestinationRule leave with it only when this action
 * created them and `retire` is `delete`. A Service or DestinationRule a person made is never
 * changed nor deleted.
 */
import { FIELD_MANAGER, type Cluster, type MeshKind } from '../cluster/cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import type { RolloutState } from '../rollout/types.js'
import { parseServiceHost } from './istio/service-host.js'
import type { SubsetRemoval } from './traffic-router.js'

/** The label on the DestinationRules this action creates (and so may delete). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY = 'istio-canary'

export interface VersionServicesOptions {
  cluster: Cluster
  namespace: string
  /** The canary's Service as the manifests carry it (applied before any weight); none when it already exists. */
  canaryService?: KubeObject
  /** Copy the stable host's DestinationRule traffic policy to a DestinationRule for the canary host. */
  copyTrafficPolicy: boolean
  /** `delete`: a version's Service and DestinationRule this action created leave with the version; else they stay. */
  retire: 'scale-down' | 'delete' | 'keep'
}

export class VersionServices {
  constructor(private readonly o: VersionServicesOptions) {}

  /** Make before break: the canary's Service (and its DestinationRule copy) exist before the route names it. */
  async addCanary(state: RolloutState, opts: { dryRun?: boolean } = {}): Promise<string[]> {
    const done: string[] = []
    const { cluster, namespace } = this.o
    if (this.o.canaryService) {
      await cluster.applyService({ ...this.o.canaryService, metadata: { ...this.o.canaryService.metadata, namespace } }, opts)
      done.push(`Service ${namespace}/${state.canary.subset} applied`)
    }
    if (this.o.copyTrafficPolicy) {
      const copy = await this.trafficPolicyCopy(state)
      if (copy) {
        await cluster.createIstio(copy, opts)
        done.push(`DestinationRule ${namespace}/${copy.metadata.name} created with the traffic policy of ${state.stable.subset}`)
      }
    }
    return done
  }

  /**
   * The DestinationRule giving the canary host the stable host's traffic policy, when the stable
   * host has one and the canary host has none yet (one that exists is respected as it is).
   */
  async trafficPolicyCopy(state: RolloutState): Promise<KubeObject | undefined> {
    const { cluster, namespace } = this.o
    const drs = await cluster.listIstio('DestinationRule', namespace)
    const stable = drs.find((d) => hostIs(d, state.stable.subset, namespace))
    if (!stable?.spec?.trafficPolicy || drs.some((d) => hostIs(d, state.canary.subset, namespace))) return undefined
    return {
      apiVersion: stable.apiVersion,
      kind: 'DestinationRule',
      metadata: {
        name: state.canary.subset,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
        annotations: { 'istio-canary/copied-from': `${namespace}/${stable.metadata.name}` }
      },
      spec: { host: `${state.canary.subset}.${namespace}.svc.cluster.local`, trafficPolicy: structuredClone(stable.spec.trafficPolicy) }
    }
  }

  /**
   * After a version left the route: its Service and DestinationRule go when this action created
   * them and `retire` is `delete`; else they stay ('absent': nothing removed).
   */
  async remove(service: string): Promise<SubsetRemoval> {
    if (this.o.retire !== 'delete') return 'absent'
    const { cluster, namespace } = this.o
    let removed = false
    const svc = await cluster.getService(namespace, service)
    if (svc && appliedByUs(svc)) {
      await cluster.deleteService(namespace, service)
      removed = true
    }
    const kind: MeshKind = 'DestinationRule'
    for (const dr of await cluster.listIstio(kind, namespace)) {
      if (hostIs(dr, service, namespace) && dr.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY) {
        await cluster.deleteIstio(kind, namespace, dr.metadata.name)
        removed = true
      }
    }
    return removed ? 'removed' : 'absent'
  }
}

/** Whether this action's server-side apply created or owns fields of the object. */
export function appliedByUs(obj: KubeObject): boolean {
  return (obj.metadata.managedFields ?? []).some((m) => m.manager === FIELD_MANAGER && m.operation === 'Apply')
}

function hostIs(dr: KubeObject, service: string, namespace: string): boolean {
  const h: unknown = dr.spec?.host
  const svc = typeof h === 'string' ? parseServiceHost(h, dr.metadata.namespace ?? namespace) : undefined
  return svc !== undefined && svc.form !== 'partial' && svc.namespace === namespace && svc.name === service
}
