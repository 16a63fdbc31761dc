/**
 * KubeCluster: the Cluster port over @kubernetes/client-node (the only importer of it in src/).
 *
 * Deployments and Leases go through CustomObjectsApi (/apis/<group>/<version>/...) so they stay
 * plain JSON in and out: the typed clients turn timestamps into Date objects and drop fields their
 * model does not know. Core objects (namespaces, services, pods, events) are only read, through
 * CoreV1Api, and converted back to JSON.
 *
 * Every request counts into requestCount, gets a per-request timeout, and is retried by
 * withApiRetry (see api-retry.ts for why a retried write may already have been applied). Request
 * bodies and headers are never logged nor put into error messages.
 */
import {
  ApisApi,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Observable,
  PatchStrategy,
  type ConfigurationOptions,
  type ObservableMiddleware
} from '@kubernetes/client-node'
import { ConflictError } from '../errors.js'
import { DEFAULT_CALL_DEADLINE_MS, DEFAULT_REQUEST_TIMEOUT_MS, withApiRetry } from './api-retry.js'
import {
  FIELD_MANAGER,
  type AccessCheck,
  type AccessResult,
  type ApplyOptions,
  type Cluster,
  type IstioKind,
  type WriteOptions
} from './cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import { KubeApiError, type RequestTarget } from './kube-api-error.js'

export const ISTIO_GROUP = 'networking.istio.io'
/** Preferred first: the action reads and writes in the newest served version. */
export const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const

const ISTIO_PLURALS: Record<IstioKind, string> = {
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules'
}

export interface KubeClusterOptions {
  /** Bound on one call, retries and waits included (default 30 s). */
  callDeadlineMs?: number
  /** Bound on one HTTP request (default 10 s). */
  requestTimeoutMs?: number
  /** Cancels every call in flight and every retry wait. */
  signal?: AbortSignal
  /** First retry backoff (default 250 ms). */
  minBackoffMs?: number
}

/** Extra write option of scaleDeployment: the resourceVersion precondition. */
export interface ScaleOptions extends WriteOptions {
  resourceVersion?: string
}

export class KubeCluster implements Cluster {
  private readonly custom: CustomObjectsApi
  private readonly core: CoreV1Api
  private readonly apis: ApisApi
  private readonly authz: AuthorizationV1Api
  private readonly opts: Required<Omit<KubeClusterOptions, 'signal'>> & { signal?: AbortSignal }
  private istioVersionPromise?: Promise<string>
  private requests = 0

  constructor(kubeConfig: KubeConfig, options: KubeClusterOptions = {}) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi)
    this.core = kubeConfig.makeApiClient(CoreV1Api)
    this.apis = kubeConfig.makeApiClient(ApisApi)
    this.authz = kubeConfig.makeApiClient(AuthorizationV1Api)
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
    const list = await this.call({ verb: 'GET', resource: '/apis' }, (o) => this.apis.getAPIVersions({}, o))
    const group = list.groups.find((g) => g.name === ISTIO_GROUP)
    const served = new Set(group?.versions.map((v) => v.version) ?? [])
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

  async getIstio(kind: IstioKind, namespace: string, name: string): Promise<KubeObject | undefined> {
    const version = await this.istioVersion()
    const plural = ISTIO_PLURALS[kind]
    return this.orUndefined(
      this.call({ verb: 'GET', resource: plural, namespace, name }, (o) =>
        this.custom.getNamespacedCustomObject({ group: ISTIO_GROUP, version, namespace, plural, name }, o)
      )
    )
  }

  async listIstio(kind: IstioKind, namespace: string): Promise<KubeObject[]> {
    const version = await this.istioVersion()
    const plural = ISTIO_PLURALS[kind]
    const list = await this.call({ verb: 'LIST', resource: plural, namespace }, (o) =>
      this.custom.listNamespacedCustomObject({ group: ISTIO_GROUP, version, namespace, plural }, o)
    )
    return items(list, `${ISTIO_GROUP}/${version}`, kind)
  }

  async listIstioInAllNamespaces(kind: IstioKind): Promise<KubeObject[]> {
    const version = await this.istioVersion()
    const plural = ISTIO_PLURALS[kind]
    const list = await this.call({ verb: 'LIST', resource: plural }, (o) =>
      this.custom.listClusterCustomObject({ group: ISTIO_GROUP, version, plural }, o)
    )
    return items(list, `${ISTIO_GROUP}/${version}`, kind)
  }

  async replaceIstio(obj: KubeObject, opts: WriteOptions = {}): Promise<KubeObject> {
    const kind = obj.kind as IstioKind
    const plural = ISTIO_PLURALS[kind]
    const [group, version] = obj.apiVersion.split('/')
    if (!plural || group !== ISTIO_GROUP || !version) {
      throw new Error(`replaceIstio: expected a ${ISTIO_GROUP} VirtualService or DestinationRule, got ${obj.apiVersion} ${obj.kind}`)
    }
    const { name, namespace, resourceVersion } = obj.metadata
    if (!namespace || !resourceVersion) {
      // Without resourceVersion a PUT is last-writer-wins: never send one.
      throw new Error(`replaceIstio: ${kind} ${JSON.stringify(name)} needs metadata.namespace and metadata.resourceVersion`)
    }
    const target = { verb: 'PUT', resource: plural, namespace, name }
    return this.conflictAs(
      this.call(target, (o) =>
        this.custom.replaceNamespacedCustomObject(
          { group, version, namespace, plural, name, body: obj, dryRun: dryRun(opts), fieldManager: FIELD_MANAGER },
          o
        )
      ),
      () =>
        `${kind} ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else since it was read ` +
        `(resourceVersion ${resourceVersion}): read it again and decide again.`
    )
  }

  // ---- Core reads --------------------------------------------------------------------------

  getNamespace(name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call({ verb: 'GET', resource: 'namespaces', name }, async (o) =>
        json(await this.core.readNamespace({ name }, o), 'v1', 'Namespace')
      )
    )
  }

  getService(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call({ verb: 'GET', resource: 'services', namespace, name }, async (o) =>
        json(await this.core.readNamespacedService({ namespace, name }, o), 'v1', 'Service')
      )
    )
  }

  async listPods(namespace: string, labelSelector: string): Promise<KubeObject[]> {
    const list = await this.call({ verb: 'LIST', resource: 'pods', namespace }, (o) =>
      this.core.listNamespacedPod({ namespace, labelSelector }, o)
    )
    return items(JSON.parse(JSON.stringify(list)), 'v1', 'Pod')
  }

  async listEvents(namespace: string, involvedName: string): Promise<KubeObject[]> {
    const list = await this.call({ verb: 'LIST', resource: 'events', namespace }, (o) =>
      this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${involvedName}` }, o)
    )
    const events = items(JSON.parse(JSON.stringify(list)), 'v1', 'Event')
    return events.sort((a, b) => eventTime(a).localeCompare(eventTime(b)))
  }

  // ---- Deployments -------------------------------------------------------------------------

  getDeployment(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call({ verb: 'GET', resource: 'deployments', namespace, name }, (o) =>
        this.custom.getNamespacedCustomObject({ ...DEPLOYMENTS, namespace, name }, o)
      )
    )
  }

  async listDeployments(namespace: string, labelSelector?: string): Promise<KubeObject[]> {
    const list = await this.call({ verb: 'LIST', resource: 'deployments', namespace }, (o) =>
      this.custom.listNamespacedCustomObject({ ...DEPLOYMENTS, namespace, labelSelector }, o)
    )
    return items(list, 'apps/v1', 'Deployment')
  }

  async applyDeployment(obj: KubeObject, opts: ApplyOptions = {}): Promise<KubeObject> {
    const { name, namespace } = obj.metadata
    if (!namespace) throw new Error(`applyDeployment: Deployment ${JSON.stringify(name)} needs metadata.namespace`)
    // The apiserver refuses managedFields in an apply; status is not ours to apply.
    const { managedFields: _m, ...metadata } = obj.metadata
    const body = { ...obj, apiVersion: 'apps/v1', kind: 'Deployment', metadata }
    delete body.status
    try {
      return await this.call({ verb: 'APPLY', resource: 'deployments', namespace, name }, (o) =>
        this.custom.patchNamespacedCustomObject(
          // A real apply never forces: taking fields from another manager must be the user's decision.
          { ...DEPLOYMENTS, namespace, name, body, dryRun: dryRun(opts), fieldManager: FIELD_MANAGER, force: opts.dryRun === true && opts.force === true },
          contentType(PatchStrategy.ServerSideApply, o)
        )
      )
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        throw new ConflictError(applyConflictMessage(`${namespace}/${name}`, err))
      }
      throw err
    }
  }

  async scaleDeployment(
    namespace: string,
    name: string,
    replicas: number,
    opts: ScaleOptions = {}
  ): Promise<KubeObject> {
    const body: Record<string, unknown> = { spec: { replicas } }
    // A merge patch carrying metadata.resourceVersion is a precondition (409 when it moved).
    if (opts.resourceVersion) body.metadata = { resourceVersion: opts.resourceVersion }
    return this.conflictAs(
      this.call({ verb: 'PATCH', resource: 'deployments', namespace, name }, (o) =>
        this.custom.patchNamespacedCustomObject(
          { ...DEPLOYMENTS, namespace, name, body, dryRun: dryRun(opts), fieldManager: FIELD_MANAGER },
          contentType(PatchStrategy.MergePatch, o)
        )
      ),
      () =>
        `Deployment ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else since it was read ` +
        `(resourceVersion ${opts.resourceVersion}): read it again and decide again.`
    )
  }

  async deleteDeployment(namespace: string, name: string, opts: WriteOptions = {}): Promise<void> {
    try {
      await this.call({ verb: 'DELETE', resource: 'deployments', namespace, name }, (o) =>
        this.custom.deleteNamespacedCustomObject(
          { ...DEPLOYMENTS, namespace, name, propagationPolicy: 'Background', dryRun: dryRun(opts) },
          o
        )
      )
    } catch (err) {
      // Already gone is what we wanted (a retried DELETE lands here too).
      if (err instanceof KubeApiError && err.status === 404) return
      throw err
    }
  }

  // ---- RBAC --------------------------------------------------------------------------------

  canI(checks: AccessCheck[]): Promise<AccessResult[]> {
    return Promise.all(
      checks.map(async (check) => {
        const review = await this.call({ verb: 'CREATE', resource: 'selfsubjectaccessreviews' }, (o) =>
          this.authz.createSelfSubjectAccessReview(
            {
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
            },
            o
          )
        )
        const status = review.status
        const reason = status?.reason || status?.evaluationError || undefined
        return { ...check, allowed: status?.allowed === true && status?.denied !== true, ...(reason ? { reason } : {}) }
      })
    )
  }

  // ---- Leases ------------------------------------------------------------------------------

  getLease(namespace: string, name: string): Promise<KubeObject | undefined> {
    return this.orUndefined(
      this.call({ verb: 'GET', resource: 'leases', namespace, name }, (o) =>
        this.custom.getNamespacedCustomObject({ ...LEASES, namespace, name }, o)
      )
    )
  }

  createLease(lease: KubeObject): Promise<KubeObject> {
    const { name, namespace } = lease.metadata
    if (!namespace) throw new Error(`createLease: Lease ${JSON.stringify(name)} needs metadata.namespace`)
    return this.conflictAs(
      this.call({ verb: 'POST', resource: 'leases', namespace, name }, (o) =>
        this.custom.createNamespacedCustomObject(
          { ...LEASES, namespace, body: { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' }, fieldManager: FIELD_MANAGER },
          o
        )
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
      this.call({ verb: 'PUT', resource: 'leases', namespace, name }, (o) =>
        this.custom.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body: lease, fieldManager: FIELD_MANAGER }, o)
      ),
      () => `Lease ${JSON.stringify(`${namespace}/${name}`)} was changed by someone else (resourceVersion ${resourceVersion}).`
    )
  }

  async deleteLease(namespace: string, name: string, resourceVersion?: string): Promise<void> {
    try {
      await this.call({ verb: 'DELETE', resource: 'leases', namespace, name }, (o) =>
        this.custom.deleteNamespacedCustomObject(
          {
            ...LEASES,
            namespace,
            name,
            body: resourceVersion ? { preconditions: { resourceVersion } } : undefined
          },
          o
        )
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

  // ---- plumbing ----------------------------------------------------------------------------

  /** One API call: counted, timed out per request, retried per api-retry.ts. */
  private call<T>(target: RequestTarget, send: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    return withApiRetry(
      target,
      (signal) => {
        const middleware: ObservableMiddleware = {
          pre: (ctx) => {
            this.requests++
            ctx.setSignal(signal)
            return new Observable(Promise.resolve(ctx))
          },
          post: (rsp) => new Observable(Promise.resolve(rsp))
        }
        return send({ middleware: [middleware], middlewareMergeStrategy: 'append' })
      },
      {
        deadlineMs: this.opts.callDeadlineMs,
        requestTimeoutMs: this.opts.requestTimeoutMs,
        signal: this.opts.signal,
        minBackoffMs: this.opts.minBackoffMs
      }
    )
  }

  private async orUndefined(p: Promise<KubeObject>): Promise<KubeObject | undefined> {
    try {
      return await p
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined
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

const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments' } as const
const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' } as const

function dryRun(opts: WriteOptions): string | undefined {
  return opts.dryRun ? 'All' : undefined
}

function contentType(type: string, options: ConfigurationOptions): ConfigurationOptions {
  const setHeader: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setHeaderParam('Content-Type', type)
      return new Observable(Promise.resolve(ctx))
    },
    post: (rsp) => new Observable(Promise.resolve(rsp))
  }
  return { ...options, middleware: [...(options.middleware ?? []), setHeader], middlewareMergeStrategy: 'append' }
}

/** `ConflictError` text of a server-side apply refused because another manager owns fields. */
export function applyConflictMessage(id: string, err: KubeApiError): string {
  const owners = err.causes
    .filter((c) => c.reason === 'FieldManagerConflict' || /conflict with/.test(c.message ?? ''))
    .map((c) => {
      const manager = c.message?.match(/conflict with "([^"]+)"/)?.[1] ?? 'another manager'
      return `${c.field ?? '(field)'} is managed by "${manager}"`
    })
  const detail = owners.length > 0 ? owners.join('; ') : err.apiMessage
  return (
    `Deployment ${JSON.stringify(id)} cannot be applied: ${detail}. ` +
    `istio-canary does not force ownership: remove the field from the other manager or from the manifest.`
  )
}

function items(list: unknown, apiVersion: string, kind: string): KubeObject[] {
  const raw = (list as { items?: KubeObject[] })?.items ?? []
  // Items of built-in lists come without apiVersion/kind.
  return raw.map((i) => ({ ...i, apiVersion: i.apiVersion ?? apiVersion, kind: i.kind ?? kind }))
}

function json(obj: unknown, apiVersion: string, kind: string): KubeObject {
  const o = JSON.parse(JSON.stringify(obj)) as KubeObject
  return { ...o, apiVersion: o.apiVersion ?? apiVersion, kind: o.kind ?? kind }
}

function eventTime(e: KubeObject): string {
  const ev = e as { lastTimestamp?: string; eventTime?: string; firstTimestamp?: string }
  return ev.lastTimestamp ?? ev.eventTime ?? ev.firstTimestamp ?? e.metadata.creationTimestamp ?? ''
}
