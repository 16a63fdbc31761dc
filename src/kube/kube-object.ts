/**
 * Kubernetes vocabulary shared by every part: the ground floor, importing nothing of ours.
 */

/** A Kubernetes object as JSON. Fields we do not model are carried through untouched. */
export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    resourceVersion?: string
    generation?: number
    uid?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    managedFields?: Array<{ manager?: string; operation?: string; time?: string; fieldsV1?: unknown }>
    creationTimestamp?: string
    [key: string]: unknown
  }
  // Specs are open-ended (Istio, apps/v1, CRDs we do not model): readers narrow what they use.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status?: any
  [key: string]: unknown
}
