/**
 * KubeCluster: the Cluster port over the Kubernetes REST API. Credentials come from
 * client-node's KubeConfig; the requests themselves go through KubeHttpClient (Node's https with
 * keep-alive), so none of client-node's generated API classes is loaded. Everything is plain JSON
 * in and out: fields the action does not model are carried through untouched.
 *
 * Every request counts into requestCount, gets a per-request timeout, and is retried by
 * withApiRetry (see api-retry.ts for why a retried write may already have been applied). Request
 * bodies and headers are never logged nor put into error messages.
 */
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js'
import { ConflictError } from '../errors.js'
import { DEFAULT_CALL_DEADLINE_MS, DEFAULT_REQUEST_TIMEOUT_MS, withApiRetry } from './api-retry.js'
import {
  FIELD_MANAGER,
  type AccessCheck,
  type AccessResult,
  type ApplyOptions,
  type CapacityApi,
  type Cluster,
  type MeshKind,
  type ReadOptions,
  type WriteOptions
} from './cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import { KubeApiError, type RequestTarget } from './kube-api-error.js'
import { KubeHttpClient, type KubeRequest } from './kube-http-client.js'

export const ISTIO_GROUP = 'networking.istio.io'
/** Preferred first: the action reads and writes in the newest served version. */
export const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const

const ISTIO_PLURALS: Record<MeshKind, string> = {
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  HTTPRoute: 'httproutes'
}
export const GATEWAY_GROUP = 'gateway.networking.k8s.io'
/** The Gateway API's standard channel version of HTTPRoute. */
export const GATEWAY_VERSION = 'v1'

export interface KubeClusterOptions {
  /** Bound on one call, retries and waits included (default 30 s). */
  callDeadlineMs?: number
  /** Bound on one HTTP request (default 10 s). */
  requestTimeoutMs?: number
  /** Cancels every call in flight and every retry wait. */
  signal?: AbortSignal
  /** First retry backoff (default 250 ms). */
  minBackoffMs?: number
  /** How long applied credentials are reused before KubeConfig is asked again (default 10 s; a 401 drops them at once). */
  credentialsTtlMs?: number
}

/** Extra write option of scaleDeployment: the resourceVersion precondition. */
export interface ScaleOptions extends WriteOptions {
  resourceVersion?: string
}

export class KubeCluster implements Cluster {
  private readonly http: KubeHttpClient
  private readonly opts: Required<Omit<KubeClusterOptions, 'signal' | 'credentialsTtlMs'>> & { signal?: AbortSignal }
  private istioVersionPromise?: Promise<string>
  private requests = 0

  constructor(kubeConfig: KubeConfig, options: KubeClusterOptions = {}) {
    this.http = new KubeHttpClient(kubeConfig, options.credentialsTtlMs)
    this.opts = {
      callDeadlineMs: options.callDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      minBackoffMs: options.minBackoffMs ?? 250,
      signal: options.signal
    }
  }

  get requestCount(): number {
    return this.requests
  }

  // ---- Istio -------------------------------------------------------------------------------

  istioVersion(): Promise<string> {
    this.istioVersionPromise ??= this.discoverIstioVersion().catch((err: unknown) => {
      this.istioVersionPromise = undefined // a transient failure must not stick
      throw err
    })
    return this.istioVersionPromise
  }

  private async discoverIstioVersion(): Promise<string> {
    const list = await this.call<{ groups?: Array<{ name: string; versions?: Array<{ version: string }> }> }>(
      { verb: 'GET', resource: '/apis' },
      { method: 'GET', path: '/apis' }
    )
    const group = list?.groups?.find((g) => g.name === ISTIO_GROUP)
    const served = new Set(group?.versions?.map((v) => v.version) ?? [])
    const version = ISTIO_VERSIONS.find((v) => served.has(v))
    if (!version) {
      throw new KubeApiError(
        `The cluster does not serve ${ISTIO_GROUP} (found ${JSON.stringify([...served])}): expected one of ${ISTIO_VERSIONS.join(', ')}; is Istio installed?`,
        404,
        'NotFound',
        false,
        undefined,
        `${ISTIO_GROUP} not served`
      )
    }
    return version
  }

  /** The group and version a routing kind is read in. */
  private async groupVersion(kind: MeshKind): Promise<[string, string]> {
    return kind === 'HTTPRoute' ? [GATEWAY_GROUP, GATEWAY_VERSION] : [ISTIO_GROUP, await this.istioVersion()]
  }

  async getIstio(kind: MeshKind, namespace: string, name: string, opts: ReadOptions = {}): Promise<KubeObject | undefined> {
    const [group, version] = await this.groupVersion(kind)
    const plural = ISTIO_PLURALS[kind]
    return this.orUndefined(
      this.call(
        { verb: 'GET', resource: plural, namespace, name },
        {
          method: 'GET',
          path: apiPath(group, version, plural, namespace, name),
          // Without resourceVersionMatch, a GET's resourceVersion means "not older than".
          query: { resourceVersion: opts.notOlderThan }
        }
      )
    )
  }

  async listIstio(kind: MeshKind, namespace: string): Promise<KubeObject[]> {
    const [group, version] = await this.groupVersion(kind)
    const plural = ISTIO_PLURALS[kind]
    const list = await this.call(
      { verb: 'LIST', resource: plural, namespace },
      { method: 'GET', path: apiPath(group, version, plural, namespace) }
    )
    return items(list, `${group}/${version}`, kind)
  }

  async listIstioInAllNamespaces(kind: MeshKind): Promise<KubeObject[]> {
    const [group, version] = await this.groupVersion(kind)
    const plural = ISTIO_PLURALS[kind]
    const list = await this.call({ verb: 'LIST', resource: plural }, { method: 'GET', path: `/apis/${group}/${version}/${plural}` })
    return items(list, `${group}/${version}`, kind)
  }

  async createIstio(obj: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const kind = obj.kind as MeshKind
    const plural = ISTIO_PLURALS[kind]
    const [group, version] = obj.apiVersion.split('/')
    const { name, namespace } = obj.metadata
    if (!plural || (group !== ISTIO_GROUP && group !== GATEWAY_GROUP) || !version || !namespace) {
      throw new Error(`createIstio: expected a namespaced routing object, got ${obj.apiVersion} ${obj.kind} ${JSON.stringify(name)}`)
    }
    return this.conflictAs(
      this.call(
        { verb: 'POST', resource: plural, namespace, name },
        {
          method: 'POST',
          path: apiPath(group, version, plural, namespace),
          query: { dryRun: dryRun(opts), fieldManager: FIELD_MANAGER },
          body: obj
        }
      ),
      () => `${kind} ${JSON.stringify(`${namespace}/${name}`)} already exists.`
    )
  }

  async deleteIstio(kind: MeshKind, namespace: string, name: string): Promise<void> {
    const [group, version] = await this.groupVersion(kind)
    const plural = ISTIO_PLURALS[kind]
    await this.notFoundIsDone(
      this.call(
        { verb: 'DELETE', resource: plural, namespace, name },
        { method: 'DELETE', path: apiPath(group, version, plural, namespace, name) }
      )
    )
  }

  async replaceIstio(obj: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const kind = obj.kind as MeshKind
    const plural = ISTIO_PLURALS[kind]
    const [group, version] = obj.apiVersion.split('/')
    if (!plural || (group !== ISTIO_GROUP && group !== GATEWAY_GROUP) || !version) {
      throw new Error(`replaceIstio: expected a ${ISTIO_GROUP} VirtualService or DestinationRule, got ${obj.apiVersion} ${obj.kind}`)
    }
    const { name, namespace, resourceVersion } = obj.metadata
    if (!namespace || !resourceVersion) {
      // Without resourceVersion a PUT is last-writer-wins: never send one.
      throw new Error(`replaceIstio: ${kind} ${JSON.stringify(name)} needs metadata.namespace and metadata.resourceVersion`)
    }
    return this.conflictAs(
      this.call(
        { verb: 'PUT', resource: plural, namespace, name },
        {
          method: 'PUT',
          path: apiPath(group, version, plural, namespace, name),
          query: { dryRun: dryRun(opts), fieldManager: FIELD_MANAGER },
          body: obj
        }
      ),
      () =>
        `${kind} ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else since it was read ` +
        `(resourceVersion ${resourceVersion}): read it again and decide again.`
    )
  }

  // ---- Core reads --------------------------------------------------------------------------

  getNamespace(name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(this.core({ verb: 'GET', resource: 'namespaces', name }, `/api/v1/namespaces/${seg(name)}`, 'Namespace'))
  }

  getService(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.core({ verb: 'GET', resource: 'services', namespace, name }, apiPath('', 'v1', 'services', namespace, name), 'Service')
    )
  }

  async applyService(obj: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const { name, namespace } = obj.metadata
    if (!namespace) throw new Error(`applyService: Service ${JSON.stringify(name)} needs metadata.namespace`)
    const { managedFields: _m, resourceVersion: _r, ...metadata } = obj.metadata
    const body = { ...obj, apiVersion: 'v1', kind: 'Service', metadata }
    delete body.status
    try {
      return await this.call(
        { verb: 'APPLY', resource: 'services', namespace, name },
        {
          method: 'PATCH',
          path: apiPath('', 'v1', 'services', namespace, name),
          query: { dryRun: dryRun(opts), fieldManager: FIELD_MANAGER, force: 'false' },
          body,
          contentType: APPLY_PATCH
        }
      )
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        throw new ConflictError(applyConflictMessage(`${namespace}/${name}`, err).replace(/^Deployment/, 'Service'))
      }
      throw err
    }
  }

  async deleteService(namespace: string, name: string): Promise<void> {
    await this.notFoundIsDone(
      this.call(
        { verb: 'DELETE', resource: 'services', namespace, name },
        { method: 'DELETE', path: apiPath('', 'v1', 'services', namespace, name) }
      )
    )
  }

  async listPods(namespace: string, labelSelector: string): Promise<KubeObject[]> {
    const list = await this.call(
      { verb: 'LIST', resource: 'pods', namespace },
      { method: 'GET', path: apiPath('', 'v1', 'pods', namespace), query: { labelSelector } }
    )
    return items(list, 'v1', 'Pod')
  }

  async listEvents(namespace: string, involvedName: string): Promise<KubeObject[]> {
    const list = await this.call(
      { verb: 'LIST', resource: 'events', namespace },
      { method: 'GET', path: apiPath('', 'v1', 'events', namespace), query: { fieldSelector: `involvedObject.name=${involvedName}` } }
    )
    const events = items(list, 'v1', 'Event')
    return events.sort((a, b) => eventTime(a).localeCompare(eventTime(b)))
  }

  // ---- Deployments -------------------------------------------------------------------------

  getDeployment(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call(
        { verb: 'GET', resource: 'deployments', namespace, name },
        { method: 'GET', path: apiPath('apps', 'v1', 'deployments', namespace, name) }
      )
    )
  }

  async listDeployments(namespace: string, labelSelector?: string): Promise<KubeObject[]> {
    const list = await this.call(
      { verb: 'LIST', resource: 'deployments', namespace },
      { method: 'GET', path: apiPath('apps', 'v1', 'deployments', namespace), query: { labelSelector } }
    )
    return items(list, 'apps/v1', 'Deployment')
  }

  applyDeployment(obj: KubeObject, opts: ApplyOptions = {}): Promise<KubeObject> {
    return this.apply('apps/v1', 'Deployment', 'deployments', obj, opts)
  }

  /** Server-side apply with our field manager; a real apply never forces (see applyDeployment). */
  private async apply(apiVersion: string, kind: string, plural: string, obj: KubeObject, opts: ApplyOptions): Promise<KubeObject> {
    const { name, namespace } = obj.metadata
    if (!namespace) throw new Error(`apply: ${kind} ${JSON.stringify(name)} needs metadata.namespace`)
    // The apiserver refuses managedFields in an apply; status is not ours to apply.
    const { managedFields: _m, ...metadata } = obj.metadata
    const body = { ...obj, apiVersion, kind, metadata }
    delete body.status
    const [group, version] = apiVersion.split('/') as [string, string]
    try {
      return await this.call(
        { verb: 'APPLY', resource: plural, namespace, name },
        {
          method: 'PATCH',
          path: apiPath(group, version, plural, namespace, name),
          // A real apply never forces: taking fields from another manager must be the user's decision.
          query: { dryRun: dryRun(opts), fieldManager: FIELD_MANAGER, force: String(opts.dryRun === true && opts.force === true) },
          body,
          contentType: APPLY_PATCH
        }
      )
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        throw new ConflictError(applyConflictMessage(`${namespace}/${name}`, err, kind))
      }
      throw err
    }
  }

  async scaleDeployment(namespace: string, name: string, replicas: number, opts: ScaleOptions = {}): Promise<KubeObject> {
    const body: Record<string, unknown> = { spec: { replicas } }
    // A merge patch carrying metadata.resourceVersion is a precondition (409 when it moved).
    if (opts.resourceVersion) body.metadata = { resourceVersion: opts.resourceVersion }
    return this.conflictAs(
      this.call(
        { verb: 'PATCH', resource: 'deployments', namespace, name },
        {
          method: 'PATCH',
          path: apiPath('apps', 'v1', 'deployments', namespace, name),
          query: { dryRun: dryRun(opts), fieldManager: FIELD_MANAGER },
          body,
          contentType: MERGE_PATCH
        }
      ),
      () =>
        `Deployment ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else since it was read ` +
        `(resourceVersion ${opts.resourceVersion}): read it again and decide again.`
    )
  }

  async deleteDeployment(namespace: string, name: string, opts: WriteOptions = {}): Promise<void> {
    try {
      await this.call(
        { verb: 'DELETE', resource: 'deployments', namespace, name },
        {
          method: 'DELETE',
          path: apiPath('apps', 'v1', 'deployments', namespace, name),
          query: { dryRun: dryRun(opts), propagationPolicy: 'Background' }
        }
      )
    } catch (err) {
      // Already gone is what we wanted (a retried DELETE lands here too).
      if (err instanceof KubeApiError && err.status === 404) return
      throw err
    }
  }

  // ---- Capacity: autoscalers, disruption budgets, quotas ------------------------------------

  /** In a lazy chunk: most runs never make these calls. */
  async capacity(): Promise<CapacityApi> {
    const { KubeCapacity } = await loadKubeCapacity()
    return new KubeCapacity(
      (target, req) => this.call(target, req),
      (obj, opts) => this.apply('autoscaling/v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', obj, opts ?? {})
    )
  }

  // ---- RBAC --------------------------------------------------------------------------------

  canI(checks: AccessCheck[]): Promise<AccessResult[]> {
    return Promise.all(
      checks.map(async (check) => {
        const review = await this.call<{ status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string } }>(
          { verb: 'CREATE', resource: 'selfsubjectaccessreviews' },
          {
            method: 'POST',
            path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: {
                resourceAttributes: {
                  verb: check.verb,
                  group: check.group,
                  resource: check.resource,
                  namespace: check.namespace,
                  name: check.name,
                  subresource: check.subresource
                }
              }
            }
          }
        )
        const status = review?.status
        const reason = status?.reason || status?.evaluationError || undefined
        return { ...check, allowed: status?.allowed === true && status?.denied !== true, ...(reason ? { reason } : {}) }
      })
    )
  }

  // ---- Leases ------------------------------------------------------------------------------

  getLease(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call(
        { verb: 'GET', resource: 'leases', namespace, name },
        { method: 'GET', path: apiPath(LEASE_GROUP, 'v1', 'leases', namespace, name) }
      )
    )
  }

  createLease(lease: KubeObject): Promise<KubeObject> {
    const { name, namespace } = lease.metadata
    if (!namespace) throw new Error(`createLease: Lease ${JSON.stringify(name)} needs metadata.namespace`)
    return this.conflictAs(
      this.call(
        { verb: 'POST', resource: 'leases', namespace, name },
        {
          method: 'POST',
          path: apiPath(LEASE_GROUP, 'v1', 'leases', namespace),
          query: { fieldManager: FIELD_MANAGER },
          body: { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' }
        }
      ),
      () => `Lease ${JSON.stringify(`${namespace}/${name}`)} already exists.`
    )
  }

  replaceLease(lease: KubeObject): Promise<KubeObject> {
    const { name, namespace, resourceVersion } = lease.metadata
    if (!namespace || !resourceVersion) {
      throw new Error(`replaceLease: Lease ${JSON.stringify(name)} needs metadata.namespace and metadata.resourceVersion`)
    }
    return this.conflictAs(
      this.call(
        { verb: 'PUT', resource: 'leases', namespace, name },
        { method: 'PUT', path: apiPath(LEASE_GROUP, 'v1', 'leases', namespace, name), query: { fieldManager: FIELD_MANAGER }, body: lease }
      ),
      () => `Lease ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else (resourceVersion ${resourceVersion}).`
    )
  }

  async deleteLease(namespace: string, name: string, resourceVersion?: string): Promise<void> {
    try {
      await this.call(
        { verb: 'DELETE', resource: 'leases', namespace, name },
        {
          method: 'DELETE',
          path: apiPath(LEASE_GROUP, 'v1', 'leases', namespace, name),
          body: resourceVersion ? { preconditions: { resourceVersion } } : undefined
        }
      )
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return
      if (err instanceof KubeApiError && err.status === 409) {
        throw new ConflictError(
          `Lease ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else (resourceVersion ${resourceVersion}): not deleted.`
        )
      }
      throw err
    }
  }

  /** Close the kept-alive connections to the API server. */
  close(): void {
    this.http.close()
  }

  // ---- plumbing ----------------------------------------------------------------------------

  /** One API call: counted, timed out per request, retried per api-retry.ts. */
  private call<T = KubeObject>(target: RequestTarget, req: Omit<KubeRequest, 'signal'>): Promise<T> {
    return withApiRetry(
      target,
      (signal) => {
        this.requests++
        return this.http.request<T>({ ...req, signal })
      },
      {
        deadlineMs: this.opts.callDeadlineMs,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        signal: this.opts.signal,
        minBackoffMs: this.opts.minBackoffMs
      }
    )
  }

  /** A core/v1 object, which the API server sends with apiVersion and kind (kept as a fallback). */
  private async core(target: RequestTarget, path: string, kind: string): Promise<KubeObject> {
    const o = await this.call(target, { method: 'GET', path })
    return { ...o, apiVersion: o.apiVersion ?? 'v1', kind: o.kind ?? kind }
  }

  private async orUndefined(p: Promise<KubeObject>): Promise<KubeObject | undefined> {
    try {
      return await p
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined
      throw err
    }
  }

  private async notFoundIsDone(p: Promise<unknown>): Promise<void> {
    try {
      await p
    } catch (err) {
      // Already gone is what we wanted (a retried DELETE lands here too).
      if (err instanceof KubeApiError && err.status === 404) return
      throw err
    }
  }

  private async conflictAs(p: Promise<KubeObject>, message: () => string): Promise<KubeObject> {
    try {
      return await p
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) throw new ConflictError(message())
      throw err
    }
  }
}

const LEASE_GROUP = 'coordination.k8s.io'
const APPLY_PATCH = 'application/apply-patch+yaml'
const MERGE_PATCH = 'application/merge-patch+json'

/** `/apis/<group>/<version>/namespaces/<ns>/<plural>[/<name>]`; the core group ('') lives under /api. */
function apiPath(group: string, version: string, plural: string, namespace: string, name?: string): string {
  const root = group === '' ? `/api/${version}` : `/apis/${group}/${version}`
  return `${root}/namespaces/${seg(namespace)}/${plural}${name === undefined ? '' : `/${seg(name)}`}`
}

function seg(s: string): string {
  return encodeURIComponent(s)
}

function dryRun(opts: WriteOptions): string | undefined {
  return opts.dryRun ? 'All' : undefined
}

/** `ConflictError` text of a server-side apply refused because another manager owns fields. */
export function applyConflictMessage(id: string, err: KubeApiError, kind = 'Deployment'): string {
  const owners = err.causes
    .filter((c) => c.reason === 'FieldManagerConflict' || /conflict with/.test(c.message ?? ''))
    .map((c) => {
      const manager = c.message?.match(/conflict with "([^"]+)"/)?.[1] ?? 'another manager'
      return `${c.field ?? '(field)'} is managed by "${manager}"`
    })
  const detail = owners.length > 0 ? owners.join('; ') : err.apiMessage
  return (
    `${kind} ${JSON.stringify(id)} cannot be applied: ${detail}. ` +
    `istio-canary does not force ownership: remove the field from the other manager or from the manifest.`
  )
}

function items(list: unknown, apiVersion: string, kind: string): KubeObject[] {
  const raw = (list as { items?: KubeObject[] })?.items ?? []
  // Items of built-in lists come without apiVersion/kind.
  return raw.map((i) => ({ ...i, apiVersion: i.apiVersion ?? apiVersion, kind: i.kind ?? kind }))
}

function eventTime(e: KubeObject): string {
  const ev = e as { lastTimestamp?: string; eventTime?: string; firstTimestamp?: string }
  return ev.lastTimestamp ?? ev.eventTime ?? ev.firstTimestamp ?? e.metadata.creationTimestamp ?? ''
}

let kubeCapacity: Promise<typeof import('./kube-capacity.js')> | undefined

/** The capacity calls' module, imported once per process (a lazy chunk of the bundle). */
export function loadKubeCapacity(): Promise<typeof import('./kube-capacity.js')> {
  return (kubeCapacity ??= import('./kube-capacity.js'))
}
