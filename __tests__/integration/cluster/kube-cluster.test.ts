/**
 * KubeCluster against the real local test cluster (kube-apiserver with the Istio CRDs,
 * controller-manager, kwok nodes).
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { KubeCluster } from '../../../src/cluster/kube-cluster.js'
import { KubeApiError } from '../../../src/cluster/kube-api-error.js'
import { waitForDeployment } from '../../../src/cluster/deployment-waiter.js'
import { ConflictError } from '../../../src/errors.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import {
  applyManifests,
  clients,
  createTestNamespace,
  deleteNamespace,
  grantRole,
  kubeConfig,
  restrictedKubeConfig,
  waitFor,
  withBehaviour
} from '../../support/test-cluster.js'

let ns: string
let admin: KubeCluster

const vsYaml = `
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: primary
    route:
    - destination: {host: reviews, subset: v1}
      weight: 100
`

function deploymentObj(name: string, namespace: string, replicas = 2): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      progressDeadlineSeconds: 600,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, version: 'v2' } },
        spec: { containers: [{ name: 'app', image: `example.com/${name}:2.0` }] }
      }
    }
  }
}

beforeAll(async () => {
  ns = await createTestNamespace('kube-cluster')
  admin = new KubeCluster(kubeConfig())
})
afterAll(async () => {
  if (ns) await deleteNamespace(ns)
})

describe('Istio objects', () => {
  it('finds networking.istio.io v1, in one request, cached', async () => {
    const c = new KubeCluster(kubeConfig())
    expect(await c.istioVersion()).toBe('v1')
    expect(await c.istioVersion()).toBe('v1')
    expect(c.requestCount).toBe(1)
  })

  it('reads a v1alpha3-created VirtualService in v1 and replaces it with the resourceVersion guard', async () => {
    await applyManifests(ns, vsYaml)
    await admin.istioVersion() // discovered once per KubeCluster: not part of the read-modify-write
    const before = admin.requestCount
    const vs = await admin.getIstio('VirtualService', ns, 'reviews')
    expect(vs?.apiVersion).toBe('networking.istio.io/v1')
    expect(vs?.spec.http[0].route[0].weight).toBe(100)

    const edited = structuredClone(vs!)
    edited.spec.http[0].route = [
      { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
      { destination: { host: 'reviews', subset: 'v2' }, weight: 10 }
    ]
    const written = await admin.replaceIstio(edited)
    expect(written.metadata.resourceVersion).not.toBe(vs!.metadata.resourceVersion)
    expect(admin.requestCount - before).toBe(2)
    const readBack = await admin.getIstio('VirtualService', ns, 'reviews')
    expect(readBack?.spec.http[0].route.map((r: { weight: number }) => r.weight)).toEqual([90, 10])
    // The field manager shows who changed it.
    expect(readBack?.metadata.managedFields?.some((f) => f.manager === 'istio-canary')).toBe(true)

    // A write based on the old read is refused: read again, decide again.
    await expect(admin.replaceIstio(edited)).rejects.toBeInstanceOf(ConflictError)
  })

  it('writes back in the version the object was read in (v1alpha3)', async () => {
    const old = (await clients.custom.getNamespacedCustomObject({
      group: 'networking.istio.io',
      version: 'v1alpha3',
      namespace: ns,
      plural: 'virtualservices',
      name: 'reviews'
    })) as KubeObject
    expect(old.apiVersion).toBe('networking.istio.io/v1alpha3')
    old.metadata.annotations = { ...(old.metadata.annotations ?? {}), 'istio-canary/test': 'v1alpha3' }
    const written = await admin.replaceIstio(old)
    expect(written.apiVersion).toBe('networking.istio.io/v1alpha3')
    expect((await admin.getIstio('VirtualService', ns, 'reviews'))?.metadata.annotations?.['istio-canary/test']).toBe('v1alpha3')
  })

  it('a read-back not older than a write shows the write; the apiserver holds to that bound (a version it has not reached: 504)', async () => {
    const vs = (await admin.getIstio('VirtualService', ns, 'reviews'))!
    vs.metadata.annotations = { ...(vs.metadata.annotations ?? {}), 'istio-canary/read-back': 'seen' }
    const written = await admin.replaceIstio(vs)
    const back = await admin.getIstio('VirtualService', ns, 'reviews', { notOlderThan: written.metadata.resourceVersion })
    expect(back?.metadata.resourceVersion).toBe(written.metadata.resourceVersion)
    expect(back?.metadata.annotations?.['istio-canary/read-back']).toBe('seen')
    // The bound is really sent and kept: a version far ahead is waited for (3 s), then refused.
    const impatient = new KubeCluster(kubeConfig(), { callDeadlineMs: 3_500 })
    const ahead = String(Number(written.metadata.resourceVersion) + 1_000_000)
    const err = await impatient.getIstio('VirtualService', ns, 'reviews', { notOlderThan: ahead }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).status).toBe(504)
    impatient.close()
  })

  it('dry-run replace validates but stores nothing', async () => {
    const vs = (await admin.getIstio('VirtualService', ns, 'reviews'))!
    vs.metadata.annotations = { ...(vs.metadata.annotations ?? {}), 'istio-canary/dry': 'yes' }
    await admin.replaceIstio(vs, { dryRun: true })
    expect((await admin.getIstio('VirtualService', ns, 'reviews'))?.metadata.annotations?.['istio-canary/dry']).toBeUndefined()
  })

  it('lists, and answers undefined for a missing object', async () => {
    expect((await admin.listIstio('VirtualService', ns)).map((v) => v.metadata.name)).toEqual(['reviews'])
    expect(await admin.getIstio('DestinationRule', ns, 'missing')).toBeUndefined()
  })
})

describe('Deployments', () => {
  it('server-side apply with dryRun creates nothing; for real it creates with field manager istio-canary', async () => {
    const dep = deploymentObj('web', ns)
    const dry = await admin.applyDeployment(dep, { dryRun: true })
    expect(dry.metadata.name).toBe('web')
    expect(await admin.getDeployment(ns, 'web')).toBeUndefined()

    const created = await admin.applyDeployment(dep)
    expect(created.metadata.managedFields?.find((f) => f.manager === 'istio-canary')?.operation).toBe('Apply')
    expect((await admin.getDeployment(ns, 'web'))?.spec.replicas).toBe(2)
    // Applying the same again is a no-op, not a conflict.
    await admin.applyDeployment(dep)
  })

  it('refuses to take a field another manager owns, naming manager and field', async () => {
    const dep = deploymentObj('owned', ns)
    await clients.custom.patchNamespacedCustomObject(
      { group: 'apps', version: 'v1', namespace: ns, plural: 'deployments', name: 'owned', body: dep, fieldManager: 'flux', force: true },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)
    )
    const err = await admin.applyDeployment({ ...dep, spec: { ...dep.spec, replicas: 5 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as Error).message).toContain('.spec.replicas is managed by "flux"')
  })

  it('scales with a resourceVersion guard, and deletes idempotently', async () => {
    // The Deployment controller still writes status after the apply above: read again on a 409,
    // as a real caller would, until one guarded scale goes through.
    let read: KubeObject | undefined
    let scaled: KubeObject | undefined
    for (let attempt = 0; !scaled && attempt < 20; attempt++) {
      read = (await admin.getDeployment(ns, 'web'))!
      scaled = await admin.scaleDeployment(ns, 'web', 0, { resourceVersion: read.metadata.resourceVersion }).catch((err: unknown) => {
        if (err instanceof ConflictError) return undefined
        throw err
      })
    }
    expect(scaled?.spec.replicas).toBe(0)
    // The version read before that scale is stale now: the guard refuses it.
    await expect(admin.scaleDeployment(ns, 'web', 1, { resourceVersion: read!.metadata.resourceVersion })).rejects.toBeInstanceOf(
      ConflictError
    )
    await admin.deleteDeployment(ns, 'web')
    await admin.deleteDeployment(ns, 'web')
    await waitFor(async () => (await admin.getDeployment(ns, 'web')) === undefined, { what: 'deployment web deleted' })
  })
})

describe('waitForDeployment on kwok pods', () => {
  it('ready pods -> ready', async () => {
    await admin.applyDeployment(deploymentObj('good', ns))
    const r = await waitForDeployment(admin, ns, 'good', { deadlineMs: 60_000, pollMs: 250 })
    expect(r.state).toBe('ready')
    expect((await admin.listPods(ns, 'app=good')).length).toBe(2)
  })

  it('crashing pods -> failed with CrashLoopBackOff, long before the deadline', async () => {
    await admin.applyDeployment(withBehaviour(deploymentObj('crash', ns) as never, 'crash') as unknown as KubeObject)
    const t0 = Date.now()
    const r = await waitForDeployment(admin, ns, 'crash', { deadlineMs: 60_000, pollMs: 250 })
    expect(r.state).toBe('failed')
    expect(r.reason).toMatch(/CrashLoopBackOff|ProgressDeadlineExceeded/)
    expect(r.reason).toMatch(/pod "crash-[a-z0-9-]+" container "app"/)
    expect(Date.now() - t0).toBeLessThan(30_000)
  })

  it('image pull failure -> failed fast, naming the reason', async () => {
    await admin.applyDeployment(withBehaviour(deploymentObj('nopull', ns) as never, 'image-pull-failure') as unknown as KubeObject)
    const t0 = Date.now()
    const r = await waitForDeployment(admin, ns, 'nopull', { deadlineMs: 60_000, pollMs: 250 })
    expect(r.state).toBe('failed')
    expect(r.reason).toMatch(/ErrImagePull|ImagePullBackOff/)
    expect(Date.now() - t0).toBeLessThan(15_000)
  })

  it('lists the events of a failing pod', async () => {
    const pods = await admin.listPods(ns, 'app=crash')
    const events = await waitFor(
      async () => {
        const e = await admin.listEvents(ns, pods[0].metadata.name)
        return e.length > 0 ? e : undefined
      },
      { what: 'events of a crashing pod' }
    )
    expect(events.every((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === pods[0].metadata.name)).toBe(true)
  })
})

describe('RBAC', () => {
  const checks = () => [
    { verb: 'patch', group: 'networking.istio.io', resource: 'destinationrules', namespace: ns },
    { verb: 'get', group: 'networking.istio.io', resource: 'virtualservices', namespace: ns }
  ]

  it('canI: admin may, the restricted user may not until granted', async () => {
    expect((await admin.canI(checks())).map((r) => r.allowed)).toEqual([true, true])
    const restricted = new KubeCluster(restrictedKubeConfig())
    expect((await restricted.canI(checks())).map((r) => r.allowed)).toEqual([false, false])
    await grantRole(ns, 'restricted', [{ apiGroups: ['networking.istio.io'], resources: ['virtualservices'], verbs: ['get'] }])
    await waitFor(async () => (await restricted.canI(checks()))[1].allowed, { what: 'get virtualservices granted' })
    expect((await restricted.canI(checks()))[0].allowed).toBe(false)
  })

  it('a forbidden write says what the apiserver said, in one request', async () => {
    const restricted = new KubeCluster(restrictedKubeConfig())
    const vs = (await admin.getIstio('VirtualService', ns, 'reviews'))!
    // The version is discovered first (1 request), then the PUT is refused once, not retried.
    await restricted.istioVersion()
    const before = restricted.requestCount
    const err = await restricted.replaceIstio(vs).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).status).toBe(403)
    expect((err as Error).message).toMatch(
      /forbidden: User "restricted" cannot update resource "virtualservices" in API group "networking.istio.io" in the namespace/
    )
    expect(restricted.requestCount - before).toBe(1)
  })
})
