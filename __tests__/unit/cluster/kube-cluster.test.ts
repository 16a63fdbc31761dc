/**
 * KubeCluster's wiring over real HTTP: a small local server plays the apiserver (status codes,
 * Retry-After, bodies) and records what the client sent. No mock of the client library.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'
import { KubeCluster } from '../../../src/cluster/kube-cluster.js'
import { KubeApiError } from '../../../src/cluster/kube-api-error.js'
import { ConflictError } from '../../../src/errors.js'

interface Seen {
  method: string
  url: string
  contentType?: string
  authorization?: string
  body: string
}
type Reply = { status: number; body?: unknown; headers?: Record<string, string> }

let server: http.Server
let base: string
let seen: Seen[] = []
let replies: Array<(req: Seen) => Reply> = []
let connections = 0
/** The server's open sockets: a test that abandons a call waits for its sockets to close. */
const live = new Set<import('node:net').Socket>()

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body
      }
      seen.push(s)
      const next = replies.shift()
      const r = next ? next(s) : { status: 500, body: { kind: 'Status', message: 'no reply scripted' } }
      res.writeHead(r.status, { 'content-type': 'application/json', ...(r.headers ?? {}) })
      res.end(JSON.stringify(r.body ?? {}))
    })
  })
  server.on('connection', (socket) => {
    connections++
    live.add(socket)
    socket.on('close', () => live.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  // Kept-alive client connections would hold close() until their idle timeout.
  server.closeAllConnections()
  return new Promise<void>((resolve) => server.close(() => resolve()))
})
beforeEach(() => {
  seen = []
  replies = []
  connections = 0
})

function cluster(server = base, opts: ConstructorParameters<typeof KubeCluster>[1] = {}): KubeCluster {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'tok-never-in-messages' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x'
  })
  return new KubeCluster(kc, { minBackoffMs: 1, ...opts })
}

const status = (code: number, reason: string, message: string, details?: object): Reply => ({
  status: code,
  body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, details }
})
const apis = (versions: string[]): Reply => ({
  status: 200,
  body: {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [
      {
        name: 'apps',
        versions: [{ groupVersion: 'apps/v1', version: 'v1' }],
        preferredVersion: { groupVersion: 'apps/v1', version: 'v1' }
      },
      {
        name: 'networking.istio.io',
        versions: versions.map((v) => ({ groupVersion: `networking.istio.io/${v}`, version: v })),
        preferredVersion: { groupVersion: `networking.istio.io/${versions[0]}`, version: versions[0] }
      }
    ]
  }
})
const vs = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop', resourceVersion: '7' },
  spec: { hosts: ['reviews'] }
}

describe('KubeCluster over HTTP', () => {
  it('discovers the Istio version once (v1beta1 when v1 is not served) and reads in it', async () => {
    const c = cluster()
    replies.push(
      () => apis(['v1beta1', 'v1alpha3']),
      () => ({ status: 200, body: vs }),
      () => status(404, 'NotFound', 'not found')
    )
    expect(await c.istioVersion()).toBe('v1beta1')
    expect(await c.getIstio('VirtualService', 'shop', 'reviews')).toEqual(vs)
    expect(await c.getIstio('DestinationRule', 'shop', 'nope')).toBeUndefined()
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /apis',
      'GET /apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices/reviews',
      'GET /apis/networking.istio.io/v1beta1/namespaces/shop/destinationrules/nope'
    ])
    expect(c.requestCount).toBe(3)
    expect(seen.every((s) => s.authorization === 'Bearer tok-never-in-messages')).toBe(true)
  })

  it('reads an Istio object not older than a given resourceVersion when asked (a read-back), else the latest', async () => {
    const c = cluster()
    replies.push(
      () => apis(['v1']),
      () => ({ status: 200, body: vs }),
      () => ({ status: 200, body: vs })
    )
    await c.getIstio('VirtualService', 'shop', 'reviews', { notOlderThan: '7' })
    await c.getIstio('VirtualService', 'shop', 'reviews')
    expect(seen.slice(1).map((s) => s.url)).toEqual([
      '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews?resourceVersion=7',
      '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews'
    ])
  })

  it('replaces with PUT in the apiVersion of the object, field manager set; 409 -> ConflictError', async () => {
    const c = cluster()
    replies.push(
      () => ({ status: 200, body: { ...vs, metadata: { ...vs.metadata, resourceVersion: '8' } } }),
      () =>
        status(
          409,
          'Conflict',
          'Operation cannot be fulfilled on virtualservices.networking.istio.io "reviews": the object has been modified'
        )
    )
    const out = await c.replaceIstio(vs)
    expect(out.metadata.resourceVersion).toBe('8')
    expect(seen[0]).toMatchObject({
      method: 'PUT',
      url: '/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices/reviews?fieldManager=istio-canary'
    })
    expect(JSON.parse(seen[0].body).metadata.resourceVersion).toBe('7')
    const err = await c.replaceIstio(vs, { dryRun: true }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as Error).message).toBe(
      'VirtualService "shop/reviews" was changed by someone else since it was read (resourceVersion 7): read it again and decide again.'
    )
    expect(seen[1].url).toContain('dryRun=All')
  })

  it('refuses to PUT without a resourceVersion (no last-writer-wins)', async () => {
    const { resourceVersion: _rv, ...metadata } = vs.metadata
    await expect(cluster().replaceIstio({ ...vs, metadata })).rejects.toThrow(/needs metadata.namespace and metadata.resourceVersion/)
    expect(seen).toHaveLength(0)
  })

  it('applies Deployments server-side (apply-patch+yaml, force=false) and names the other manager on conflict', async () => {
    const c = cluster()
    const dep = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop', managedFields: [{ manager: 'x' }] },
      spec: { replicas: 2 },
      status: { replicas: 1 }
    }
    replies.push(
      () => ({ status: 201, body: dep }),
      () =>
        status(409, 'Conflict', 'Apply failed with 1 conflict: conflict with "flux" using apps/v1: .spec.replicas', {
          causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "flux" using apps/v1', field: '.spec.replicas' }]
        })
    )
    await c.applyDeployment(dep, { dryRun: true })
    expect(seen[0].method).toBe('PATCH')
    expect(seen[0].contentType).toBe('application/apply-patch+yaml')
    expect(seen[0].url).toBe('/apis/apps/v1/namespaces/shop/deployments/web?dryRun=All&fieldManager=istio-canary&force=false')
    const sent = JSON.parse(seen[0].body)
    expect(sent.metadata.managedFields).toBeUndefined()
    expect(sent.status).toBeUndefined()
    const err = await c.applyDeployment(dep).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as Error).message).toContain('.spec.replicas is managed by "flux"')
  })

  it('scales with a merge patch carrying the resourceVersion precondition', async () => {
    const c = cluster()
    replies.push(() => ({
      status: 200,
      body: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 0 } }
    }))
    await c.scaleDeployment('shop', 'web', 0, { resourceVersion: '42' })
    expect(seen[0]).toMatchObject({ method: 'PATCH', contentType: 'application/merge-patch+json' })
    expect(JSON.parse(seen[0].body)).toEqual({ spec: { replicas: 0 }, metadata: { resourceVersion: '42' } })
  })

  it('deletes idempotently (404 is done)', async () => {
    replies.push(() => status(404, 'NotFound', 'deployments.apps "web" not found'))
    await expect(cluster().deleteDeployment('shop', 'web')).resolves.toBeUndefined()
  })

  it('retries 503 and 429, waiting at least Retry-After, and counts every request', async () => {
    const c = cluster()
    replies.push(
      () => status(503, 'ServiceUnavailable', 'etcd leader changed'),
      () => ({ ...status(429, 'TooManyRequests', 'slow down'), headers: { 'retry-after': '1' } }),
      () => ({ status: 200, body: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } } })
    )
    const t0 = performance.now()
    await c.getDeployment('shop', 'web')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1000)
    expect(c.requestCount).toBe(3)
  })

  it('maps 403 to the apiserver message and never retries it', async () => {
    const c = cluster()
    replies.push(() =>
      status(
        403,
        'Forbidden',
        'destinationrules.networking.istio.io "reviews" is forbidden: User "ci" cannot patch resource "destinationrules" in API group "networking.istio.io" in the namespace "shop"'
      )
    )
    const err = await c.replaceIstio({ ...vs, kind: 'DestinationRule', apiVersion: 'networking.istio.io/v1' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as Error).message).toBe(
      'Kubernetes API refused PUT destinationrules "shop/reviews": forbidden: User "ci" cannot patch resource "destinationrules" in API group "networking.istio.io" in the namespace "shop"'
    )
    expect(c.requestCount).toBe(1)
  })

  it('gives up on a refused connection at the call deadline, without the token in the message', async () => {
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const c = cluster(`http://127.0.0.1:${port}`, { callDeadlineMs: 300 })
    const err = await c.getLease('shop', 'x').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as Error).message).toMatch(
      /^Kubernetes API GET leases "shop\/x" failed: network error ECONNREFUSED \(gave up after \d+ attempts/
    )
    expect((err as Error).message).not.toContain('tok-never-in-messages')
    expect(c.requestCount).toBeGreaterThan(1)
  })

  it('cancels a call in flight with the signal', async () => {
    const before = new Set(live)
    const controller = new AbortController()
    const c = cluster(base, { signal: controller.signal })
    replies.push(() => status(503, 'ServiceUnavailable', 'x'))
    setTimeout(() => controller.abort(new Error('run cancelled')), 50)
    replies.push(...Array.from({ length: 50 }, () => () => status(503, 'ServiceUnavailable', 'x')))
    await expect(c.getDeployment('shop', 'web')).rejects.toThrow('run cancelled')
    // A request the abort cut off may still sit unread at the server; it is read before its socket
    // closes, so waiting for the close keeps it from taking the next test's scripted reply.
    while ([...live].some((socket) => !before.has(socket))) await new Promise((resolve) => setTimeout(resolve, 5))
  })

  it('lists events about one object, newest last', async () => {
    replies.push(() => ({
      status: 200,
      body: {
        kind: 'EventList',
        apiVersion: 'v1',
        items: [
          { metadata: { name: 'e2' }, involvedObject: { name: 'p' }, reason: 'BackOff', lastTimestamp: '2026-11-25T10:00:05Z' },
          { metadata: { name: 'e1' }, involvedObject: { name: 'p' }, reason: 'Pulling', lastTimestamp: '2026-11-25T10:00:01Z' }
        ]
      }
    }))
    const events = await cluster().listEvents('shop', 'p')
    expect(events.map((e) => e.metadata.name)).toEqual(['e1', 'e2'])
    // The API server's own timestamp, untouched (the typed client used to turn it into a Date and back).
    expect(events[0]).toMatchObject({ kind: 'Event', lastTimestamp: '2026-11-25T10:00:01Z' })
    expect(decodeURIComponent(seen[0].url)).toBe('/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name=p')
  })

  it('applies the credentials once while they last, and again after a 401 (an expired token is refreshed at once)', async () => {
    const kc = new KubeConfig()
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: base, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'first' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x'
    })
    let applied = 0
    const apply = kc.applyToHTTPSOptions.bind(kc)
    kc.applyToHTTPSOptions = async (opts) => {
      applied++
      return apply(opts)
    }
    const c = new KubeCluster(kc, { minBackoffMs: 1 })
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', resourceVersion: '3' } }
    replies.push(
      () => ({ status: 200, body: dep }),
      () => ({ status: 200, body: dep }),
      () => ({ status: 200, body: dep })
    )
    for (let i = 0; i < 3; i++) await c.getDeployment('shop', 'web')
    expect(applied).toBe(1)
    // The token was refreshed (an exec plugin's next answer): the server refuses the old one.
    ;(kc.users[0] as { token?: string }).token = 'second'
    replies.push(
      (r) => (r.authorization === 'Bearer second' ? { status: 200, body: dep } : status(401, 'Unauthorized', 'Unauthorized')),
      (r) => (r.authorization === 'Bearer second' ? { status: 200, body: dep } : status(401, 'Unauthorized', 'Unauthorized'))
    )
    await c.getDeployment('shop', 'web')
    expect(seen.slice(-2).map((s) => s.authorization)).toEqual(['Bearer first', 'Bearer second'])
    expect(applied).toBe(2)
    c.close()
  })

  it('keeps its connection while the credentials stay the same, and opens a new one when the client certificate changes', async () => {
    const kc = new KubeConfig()
    const pem = (s: string): string => Buffer.from(`-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`).toString('base64')
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: base, skipTLSVerify: true }],
      users: [{ name: 'u', certData: pem('first'), keyData: pem('key') }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x'
    })
    // Credentials asked of KubeConfig for every request, as after each TTL.
    const c = new KubeCluster(kc, { minBackoffMs: 1, credentialsTtlMs: 0 })
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', resourceVersion: '3' } }
    for (let i = 0; i < 4; i++) replies.push(() => ({ status: 200, body: dep }))
    await c.getDeployment('shop', 'web')
    // The same bytes again (an exec plugin or a file read afresh hands out a new buffer): same agent.
    ;(kc.users[0] as { certData?: string }).certData = pem('first')
    await c.getDeployment('shop', 'web')
    expect(connections).toBe(1)
    // A rotated certificate is another identity: a new agent, so a new connection.
    ;(kc.users[0] as { certData?: string }).certData = pem('second')
    await c.getDeployment('shop', 'web')
    await c.getDeployment('shop', 'web')
    expect(connections).toBe(2)
    c.close()
  })

  it('sends consecutive requests over one kept-alive connection', async () => {
    const c = cluster()
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', resourceVersion: '3' } }
    replies.push(
      () => ({ status: 200, body: dep }),
      () => ({ status: 200, body: dep }),
      () => ({ status: 200, body: { ...dep, spec: { replicas: 1 } } })
    )
    await c.getDeployment('shop', 'web')
    await c.getDeployment('shop', 'web')
    await c.scaleDeployment('shop', 'web', 1)
    expect(seen.map((s) => s.method)).toEqual(['GET', 'GET', 'PATCH'])
    expect(connections).toBe(1)
    c.close()
  })

  it('sends many concurrent requests (the preflight access reviews) over a bounded number of connections', async () => {
    const c = cluster()
    const checks = Array.from({ length: 20 }, (_, i) => ({ verb: 'get', group: '', resource: `r${i}`, namespace: 'shop' }))
    replies.push(...checks.map(() => () => ({ status: 201, body: { status: { allowed: true } } })))
    const results = await c.canI(checks)
    expect(results.every((r) => r.allowed)).toBe(true)
    expect(seen).toHaveLength(20)
    expect(connections).toBeGreaterThan(1)
    expect(connections).toBeLessThanOrEqual(6)
    c.close()
  })
})
