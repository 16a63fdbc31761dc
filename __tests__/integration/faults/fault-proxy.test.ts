/**
 * KubeCluster's retry behaviour against the REAL local kube-apiserver, with faults injected by a
 * real HTTPS proxy in between (__tests__/support/fault-proxy.ts): 500/503, 429 + Retry-After,
 * 409, 401, the Istio validation webhook down, dropped connections, slow answers and "the write
 * landed but the answer was lost".
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { KubeCluster, type KubeClusterOptions } from '../../../src/cluster/kube-cluster.js'
import { KubeApiError } from '../../../src/cluster/kube-api-error.js'
import { ConflictError } from '../../../src/errors.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { startFaultProxy, type FaultProxy, type ProxyRequestLog } from '../../support/fault-proxy.js'
import { applyManifests, createTestNamespace, deleteNamespace, kubeConfig, loadTestEnv } from '../../support/test-cluster.js'

let proxy: FaultProxy
let proxiedKc: KubeConfig
let tmpDir: string | undefined
let ns: string

const vsYaml = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: primary
    route:
    - destination: {host: reviews, subset: stable}
      weight: 100
    - destination: {host: reviews, subset: canary}
      weight: 0
`

/** Matches the VirtualService "reviews" of the current test namespace (query string allowed). */
function vsPath(): RegExp {
  return new RegExp(`/apis/networking\\.istio\\.io/v1/namespaces/${ns}/virtualservices/reviews(\\?|$)`)
}

/** The proxy log of the requests to our VirtualService, as [method, status, faulted]. */
function vsRequests(): Array<[string, number | undefined, string | undefined]> {
  const re = vsPath()
  return proxy.requests.filter((r) => re.test(r.path)).map((r: ProxyRequestLog) => [r.method, r.status, r.faulted])
}

/** A KubeCluster talking through the proxy, with a fast backoff; discovery done before any rule. */
async function cluster(opts: KubeClusterOptions = {}): Promise<KubeCluster> {
  const c = new KubeCluster(proxiedKc, { minBackoffMs: 20, ...opts })
  expect(await c.istioVersion()).toBe('v1')
  return c
}

/** Our VS with the canary at `canary` percent. */
function withCanary(vs: KubeObject, canary: number): KubeObject {
  const edited = structuredClone(vs)
  edited.spec.http[0].route[0].weight = 100 - canary
  edited.spec.http[0].route[1].weight = canary
  return edited
}

async function readWeights(c: KubeCluster): Promise<number[]> {
  const vs = await c.getIstio('VirtualService', ns, 'reviews')
  return vs!.spec.http[0].route.map((r: { weight: number }) => r.weight)
}

beforeAll(async () => {
  const admin = kubeConfig()
  const upstream = admin.getCurrentCluster()
  if (!upstream) throw new Error('the test kubeconfig has no current cluster')
  let caFile = upstream.caFile
  if (!caFile && upstream.caData) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-proxy-ca-'))
    caFile = path.join(tmpDir, 'ca.crt')
    fs.writeFileSync(caFile, Buffer.from(upstream.caData, 'base64'))
  }
  proxy = await startFaultProxy({ target: upstream.server, caFile, insecure: upstream.skipTLSVerify })
  proxiedKc = new KubeConfig()
  proxiedKc.loadFromString(proxy.kubeconfigFor(loadTestEnv().kubeconfigPath))
})

afterAll(async () => {
  await proxy?.stop()
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true })
})

beforeEach(async () => {
  ns = await createTestNamespace('faults')
  await applyManifests(ns, vsYaml)
  proxy.clearRules()
  proxy.clearLog()
})

afterEach(async () => {
  proxy.clearRules()
  if (ns) await deleteNamespace(ns)
})

describe('passthrough', () => {
  it('reads and writes through the proxy untouched (auth, content type, body)', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    const written = await c.replaceIstio(withCanary(vs, 10))
    expect(written.spec.http[0].route[1].weight).toBe(10)
    expect(await readWeights(c)).toEqual([90, 10])
    expect(vsRequests()).toEqual([
      ['GET', 200, undefined],
      ['PUT', 200, undefined],
      ['GET', 200, undefined]
    ])
  })
})

describe('apiserver 500/503', () => {
  it('a GET answered 503 once succeeds on the retry (2 requests)', async () => {
    const c = await cluster()
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'status', status: 503 } })
    const before = c.requestCount
    const vs = await c.getIstio('VirtualService', ns, 'reviews')
    expect(vs?.spec.http[0].route[0].weight).toBe(100)
    expect(vsRequests()).toEqual([
      ['GET', 503, 'status:503'],
      ['GET', 200, undefined]
    ])
    expect(c.requestCount - before).toBe(2)
  })

  it('a VirtualService PUT answered 500 (not applied) is retried and lands once; the read-back shows it', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    proxy.addRule({ match: { method: 'PUT', pathRegex: vsPath() }, action: { kind: 'status', status: 500 } })
    await c.replaceIstio(withCanary(vs, 20))
    expect(await readWeights(c)).toEqual([80, 20])
    expect(vsRequests()).toEqual([
      ['GET', 200, undefined],
      ['PUT', 500, 'status:500'],
      ['PUT', 200, undefined],
      ['GET', 200, undefined]
    ])
  })

  it('a persistent 500 fails the call within its deadline, after several retries', async () => {
    const c = await cluster({ callDeadlineMs: 1500 })
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, times: Infinity, action: { kind: 'status', status: 500 } })
    const t0 = Date.now()
    const err = await c.getIstio('VirtualService', ns, 'reviews').catch((e: unknown) => e)
    const took = Date.now() - t0
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).retryable).toBe(true)
    expect(took).toBeGreaterThanOrEqual(1400)
    expect(took).toBeLessThan(1500 + 1000)
    expect(vsRequests().length).toBeGreaterThanOrEqual(3)
    expect(vsRequests().every(([, status, faulted]) => status === 500 && faulted === 'status:500')).toBe(true)
    expect((err as Error).message).toMatch(/^Kubernetes API GET virtualservices ".*\/reviews" .*\(gave up after \d+ attempts in 1\.\ds\)$/)
  })

  // Regression (api-retry.ts): p-retry clamps the last backoff to the time left, then starts one more
  // attempt with a 1 ms request timeout at the deadline; that attempt "times out", so the error
  // reported a timeout (status undefined, reason Timeout) instead of the 500 the apiserver kept
  // answering (fixed: the last real answer is kept as the cause).
  it('a persistent 500 is reported as the 500, not as a timeout', async () => {
    const c = await cluster({ callDeadlineMs: 1500 })
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, times: Infinity, action: { kind: 'status', status: 500 } })
    const err = await c.getIstio('VirtualService', ns, 'reviews').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as Error).message).toMatch(/^Kubernetes API GET virtualservices ".*\/reviews" failed: 500 InternalError: fault injected/)
    expect((err as KubeApiError).status).toBe(500)
  })
})

describe('429 + Retry-After', () => {
  it('waits at least Retry-After before the retry', async () => {
    const c = await cluster()
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'status', status: 429, retryAfterSeconds: 1 } })
    const t0 = Date.now()
    await c.getIstio('VirtualService', ns, 'reviews')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    const log = proxy.requests.filter((r) => vsPath().test(r.path))
    expect(log.map((r) => [r.status, r.faulted])).toEqual([
      [429, 'status:429'],
      [200, undefined]
    ])
    expect(log[1].at - log[0].at).toBeGreaterThanOrEqual(900)
  })

  it('a Retry-After longer than what is left of the deadline fails at once instead of waiting', async () => {
    const c = await cluster({ callDeadlineMs: 2000 })
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'status', status: 429, retryAfterSeconds: 5 } })
    const t0 = Date.now()
    const err = await c.getIstio('VirtualService', ns, 'reviews').catch((e: unknown) => e)
    expect(Date.now() - t0).toBeLessThan(1500)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).status).toBe(429)
    expect((err as KubeApiError).retryAfterMs).toBe(5000)
    expect(vsRequests()).toEqual([['GET', 429, 'status:429']])
  })
})

describe('409 on a VirtualService update', () => {
  it('is a ConflictError at once, never retried', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    proxy.addRule({ match: { method: 'PUT', pathRegex: vsPath() }, action: { kind: 'status', status: 409 } })
    await expect(c.replaceIstio(withCanary(vs, 5))).rejects.toThrow(ConflictError)
    expect(vsRequests().filter(([m]) => m === 'PUT')).toEqual([['PUT', 409, 'status:409']])
    expect(await readWeights(c)).toEqual([100, 0])
  })
})

describe('401 (expired credentials)', () => {
  it('one 401 is retried once (credentials may have been refreshed)', async () => {
    const c = await cluster()
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'status', status: 401 } })
    expect(await c.getIstio('VirtualService', ns, 'reviews')).toBeDefined()
    expect(vsRequests()).toEqual([
      ['GET', 401, 'status:401'],
      ['GET', 200, undefined]
    ])
  })

  it('a lasting 401 fails after exactly 2 requests, naming the credentials', async () => {
    const c = await cluster()
    proxy.addRule({ match: { pathRegex: vsPath() }, times: Infinity, action: { kind: 'status', status: 401 } })
    const err = await c.getIstio('VirtualService', ns, 'reviews').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).status).toBe(401)
    expect((err as Error).message).toMatch(/unauthorized \(401\): the credentials were rejected or have expired/)
    expect(vsRequests()).toHaveLength(2)
  })
})

describe('Istio validation webhook down', () => {
  it('"failed calling webhook" 500s on the VS write are retried until the webhook is back', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    proxy.addRule({
      match: { method: 'PUT', pathRegex: vsPath() },
      times: 2,
      action: {
        kind: 'status',
        status: 500,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message:
            'Internal error occurred: failed calling webhook "validation.istio.io": failed to call webhook: ' +
            'Post "https://istiod.istio-system.svc:443/validate?timeout=10s": dial tcp 10.0.0.10:443: connect: connection refused',
          reason: 'InternalError',
          details: { causes: [{ message: 'failed calling webhook "validation.istio.io"' }] },
          code: 500
        }
      }
    })
    await c.replaceIstio(withCanary(vs, 30))
    expect(await readWeights(c)).toEqual([70, 30])
    expect(vsRequests().filter(([m]) => m === 'PUT')).toEqual([
      ['PUT', 500, 'status:500'],
      ['PUT', 500, 'status:500'],
      ['PUT', 200, undefined]
    ])
  })
})

describe('connection faults', () => {
  it('a GET whose connection is dropped without an answer is retried', async () => {
    const c = await cluster()
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'drop' } })
    const vs = await c.getIstio('VirtualService', ns, 'reviews')
    expect(vs?.metadata.name).toBe('reviews')
    expect(vsRequests()).toEqual([
      ['GET', undefined, 'drop'],
      ['GET', 200, undefined]
    ])
  })

  it('a PUT dropped before reaching the apiserver is retried and lands', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    proxy.addRule({ match: { method: 'PUT', pathRegex: vsPath() }, action: { kind: 'drop' } })
    await c.replaceIstio(withCanary(vs, 40))
    expect(await readWeights(c)).toEqual([60, 40])
    expect(vsRequests().filter(([m]) => m === 'PUT')).toEqual([
      ['PUT', undefined, 'drop'],
      ['PUT', 200, undefined]
    ])
  })

  it('an answer slower than requestTimeoutMs times the attempt out; the retry succeeds', async () => {
    const c = await cluster({ requestTimeoutMs: 300 })
    proxy.addRule({ match: { method: 'GET', pathRegex: vsPath() }, action: { kind: 'delay', ms: 1500 } })
    const t0 = Date.now()
    expect(await c.getIstio('VirtualService', ns, 'reviews')).toBeDefined()
    expect(Date.now() - t0).toBeLessThan(1500)
    const log = vsRequests()
    expect(log[0]).toEqual(['GET', undefined, 'delay:1500'])
    expect(log[log.length - 1]).toEqual(['GET', 200, undefined])
  })

  it('reset-after-forward on a VS PUT: the write landed, the retry gets 409 => ConflictError; a re-read shows the write', async () => {
    const c = await cluster()
    const vs = (await c.getIstio('VirtualService', ns, 'reviews'))!
    proxy.addRule({ match: { method: 'PUT', pathRegex: vsPath() }, action: { kind: 'reset-after-forward' } })
    const err = await c.replaceIstio(withCanary(vs, 50)).catch((e: unknown) => e)
    // The client never learnt that its PUT succeeded; the retry with the old resourceVersion conflicts.
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as Error).message).toMatch(/was changed by someone else since it was read .*read it again and decide again/)
    expect(vsRequests().filter(([m]) => m === 'PUT')).toEqual([
      ['PUT', 200, 'reset-after-forward'],
      ['PUT', 409, undefined]
    ])
    // "A write counts only after a read-back": the read-back shows our own write did land.
    const after = (await c.getIstio('VirtualService', ns, 'reviews'))!
    expect(after.spec.http[0].route.map((r: { weight: number }) => r.weight)).toEqual([50, 50])
    expect(after.metadata.resourceVersion).not.toBe(vs.metadata.resourceVersion)
  })
})
