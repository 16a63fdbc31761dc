/**
 * The fault proxy itself, against a tiny local node:http(s) upstream (no cluster needed).
 */
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import yaml from 'js-yaml'
import { selfSignedCert, startFaultProxy, type FaultProxy } from '../../support/fault-proxy.js'

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

interface Upstream {
  url: string
  seen: Seen[]
  close(): Promise<void>
}

/** Echo upstream: answers 201 with what it received, x-upstream: yes; /stream sends 3 chunks 100 ms apart. */
async function startUpstream(tls?: { key: string; cert: string }): Promise<Upstream> {
  const seen: Seen[] = []
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() }
      seen.push(s)
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'application/json' })
        let n = 0
        const t = setInterval(() => {
          res.write(`{"n":${n}}\n`)
          if (++n === 3) {
            clearInterval(t)
            res.end()
          }
        }, 100)
        res.once('close', () => clearInterval(t))
        return
      }
      if (req.url === '/hang') return // never answers (a long watch)
      if (req.url?.startsWith('/api/v1/namespaces')) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'ns-a' } }] }))
        return
      }
      const body = JSON.stringify(s)
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' })
      res.end(body)
    })
  }
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request through the proxy (fresh connection, trusting the proxy's certificate). */
function send(
  proxy: FaultProxy,
  method: string,
  p: string,
  opts: { body?: string; headers?: Record<string, string>; agent?: https.Agent } = {}
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${proxy.url}${p}`, { method, ca: proxy.caPem, headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

let upstream: Upstream
let proxy: FaultProxy

beforeEach(async () => {
  upstream = await startUpstream()
  proxy = await startFaultProxy({ target: upstream.url })
})
afterEach(async () => {
  await proxy.stop()
  await upstream.close()
})

describe('passthrough', () => {
  it('forwards method, path, query, headers and body both ways, and logs the request', async () => {
    const r = await send(proxy, 'POST', '/apis/x/v1/things?dryRun=All&fieldManager=me', {
      body: '{"hello":"world"}',
      headers: { authorization: 'Bearer secret-token', 'content-type': 'application/merge-patch+json', 'x-custom': 'kept' }
    })
    expect(r.status).toBe(201)
    expect(r.headers['x-upstream']).toBe('yes')
    expect(r.headers['content-type']).toBe('application/json')
    const seen = JSON.parse(r.body) as Seen
    expect(seen.method).toBe('POST')
    expect(seen.url).toBe('/apis/x/v1/things?dryRun=All&fieldManager=me')
    expect(seen.body).toBe('{"hello":"world"}')
    expect(seen.headers.authorization).toBe('Bearer secret-token')
    expect(seen.headers['content-type']).toBe('application/merge-patch+json')
    expect(seen.headers['x-custom']).toBe('kept')
    expect(seen.headers.host).toBe(new URL(upstream.url).host)
    expect(proxy.requests).toEqual([
      { method: 'POST', path: '/apis/x/v1/things?dryRun=All&fieldManager=me', status: 201, faulted: undefined, at: expect.any(Number) }
    ])
  })

  it('streams a response chunk by chunk (watch-like) instead of buffering it', async () => {
    const arrivals: number[] = []
    const started = Date.now()
    await new Promise<void>((resolve, reject) => {
      https
        .get(`${proxy.url}/stream`, { ca: proxy.caPem, agent: false }, (res) => {
          res.on('data', () => arrivals.push(Date.now() - started))
          res.on('end', () => resolve())
        })
        .on('error', reject)
    })
    expect(arrivals.length).toBeGreaterThanOrEqual(2)
    // The first chunk came well before the last one was written (~300 ms after the start).
    expect(arrivals[arrivals.length - 1] - arrivals[0]).toBeGreaterThanOrEqual(100)
  })

  it('streams a large request body', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024)
    const r = await send(proxy, 'PUT', '/big', { body: big, headers: { 'content-type': 'text/plain' } })
    expect(r.status).toBe(201)
    expect(upstream.seen[0].body.length).toBe(big.length)
  })

  it('answers 502 with a Status when the upstream is unreachable', async () => {
    await upstream.close()
    const r = await send(proxy, 'GET', '/x')
    expect(r.status).toBe(502)
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', code: 502, reason: 'BadGateway' })
  })
})

describe('status faults', () => {
  it('answers a Kubernetes Status with the injected code, forwards nothing, once by default', async () => {
    proxy.addRule({ action: { kind: 'status', status: 503 } })
    const r1 = await send(proxy, 'PUT', '/a', { body: 'payload' })
    expect(r1.status).toBe(503)
    expect(JSON.parse(r1.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: 503, reason: 'ServiceUnavailable' })
    expect(upstream.seen).toHaveLength(0)
    const r2 = await send(proxy, 'PUT', '/a', { body: 'payload' })
    expect(r2.status).toBe(201)
    expect(upstream.seen).toHaveLength(1)
    expect(proxy.requests.map((r) => [r.status, r.faulted])).toEqual([
      [503, 'status:503'],
      [201, undefined]
    ])
  })

  it('sends Retry-After (header and Status details) for a 429', async () => {
    proxy.addRule({ action: { kind: 'status', status: 429, retryAfterSeconds: 2 } })
    const r = await send(proxy, 'GET', '/a')
    expect(r.status).toBe(429)
    expect(r.headers['retry-after']).toBe('2')
    expect(JSON.parse(r.body)).toMatchObject({ code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 2 } })
  })

  it('uses a custom body as given (string: text/plain, object: JSON)', async () => {
    proxy.addRule({ action: { kind: 'status', status: 500, body: '<html>bad gateway</html>' } })
    proxy.addRule({ action: { kind: 'status', status: 409, body: { kind: 'Status', code: 409, reason: 'Conflict', message: 'mine' } } })
    const r1 = await send(proxy, 'GET', '/a')
    expect([r1.status, r1.body, r1.headers['content-type']]).toEqual([500, '<html>bad gateway</html>', 'text/plain; charset=utf-8'])
    const r2 = await send(proxy, 'GET', '/a')
    expect(r2.status).toBe(409)
    expect(JSON.parse(r2.body)).toEqual({ kind: 'Status', code: 409, reason: 'Conflict', message: 'mine' })
  })
})

describe('rule matching', () => {
  it('matches on method (case-insensitive) and on a path regex over path and query', async () => {
    proxy.addRule({
      match: { method: 'put', pathRegex: /\/virtualservices\/reviews$/ },
      times: Infinity,
      action: { kind: 'status', status: 500 }
    })
    proxy.addRule({ match: { pathRegex: 'watch=true' }, times: Infinity, action: { kind: 'status', status: 503 } })
    expect((await send(proxy, 'GET', '/apis/n/v1/virtualservices/reviews')).status).toBe(201)
    expect((await send(proxy, 'PUT', '/apis/n/v1/virtualservices/ratings')).status).toBe(201)
    expect((await send(proxy, 'PUT', '/apis/n/v1/virtualservices/reviews')).status).toBe(500)
    expect((await send(proxy, 'GET', '/apis/n/v1/virtualservices?watch=true')).status).toBe(503)
    expect((await send(proxy, 'GET', '/apis/n/v1/virtualservices?watch=false')).status).toBe(201)
  })

  it('counts times down, then lets requests through; Infinity never runs out', async () => {
    const twice = proxy.addRule({ match: { pathRegex: /^\/twice/ }, times: 2, action: { kind: 'status', status: 500 } })
    const always = proxy.addRule({ match: { pathRegex: /^\/always/g }, times: Infinity, action: { kind: 'status', status: 503 } })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await send(proxy, 'GET', '/twice')).status)
    for (let i = 0; i < 4; i++) statuses.push((await send(proxy, 'GET', '/always')).status)
    expect(statuses).toEqual([500, 500, 201, 503, 503, 503, 503])
    expect([twice.hits, twice.remaining]).toEqual([2, 0])
    expect([always.hits, always.remaining]).toEqual([4, Infinity])
  })

  it('applies the first matching rule with times left, in the order added', async () => {
    proxy.addRule({ action: { kind: 'status', status: 500 } })
    proxy.addRule({ times: 2, action: { kind: 'status', status: 503 } })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await send(proxy, 'GET', '/x')).status)
    expect(statuses).toEqual([500, 503, 503, 201])
  })

  it('clearRules removes every rule; clearLog empties the log', async () => {
    proxy.addRule({ times: Infinity, action: { kind: 'status', status: 500 } })
    expect((await send(proxy, 'GET', '/x')).status).toBe(500)
    proxy.clearRules()
    expect((await send(proxy, 'GET', '/x')).status).toBe(201)
    expect(proxy.requests).toHaveLength(2)
    proxy.clearLog()
    expect(proxy.requests).toHaveLength(0)
  })

  it('refuses a negative times', () => {
    expect(() => proxy.addRule({ times: -1, action: { kind: 'drop' } })).toThrow(/times must be >= 0/)
  })
})

describe('connection faults', () => {
  it('drop: destroys the connection without an answer and forwards nothing', async () => {
    proxy.addRule({ action: { kind: 'drop' } })
    await expect(send(proxy, 'GET', '/x')).rejects.toMatchObject({ code: 'ECONNRESET' })
    expect(upstream.seen).toHaveLength(0)
    expect(proxy.requests[0]).toMatchObject({ method: 'GET', path: '/x', status: undefined, faulted: 'drop' })
    // The next request on a new connection goes through.
    expect((await send(proxy, 'GET', '/x')).status).toBe(201)
  })

  it('drop on a kept-alive connection: the client sees a reset, a new connection works', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: proxy.caPem })
    try {
      expect((await send(proxy, 'GET', '/first', { agent })).status).toBe(201)
      proxy.addRule({ action: { kind: 'drop' } })
      await expect(send(proxy, 'GET', '/second', { agent })).rejects.toMatchObject({ code: 'ECONNRESET' })
      expect((await send(proxy, 'GET', '/third', { agent })).status).toBe(201)
      expect(upstream.seen.map((s) => s.url)).toEqual(['/first', '/third'])
    } finally {
      agent.destroy()
    }
  })

  it('delay: answers (forwarded) no sooner than ms later', async () => {
    proxy.addRule({ action: { kind: 'delay', ms: 300 } })
    const t0 = Date.now()
    const r = await send(proxy, 'POST', '/slow', { body: 'late body' })
    const took = Date.now() - t0
    expect(r.status).toBe(201)
    expect(took).toBeGreaterThanOrEqual(280)
    expect(upstream.seen[0].body).toBe('late body')
    expect(proxy.requests[0]).toMatchObject({ status: 201, faulted: 'delay:300' })
    // Once only: the next request is not delayed.
    const t1 = Date.now()
    await send(proxy, 'GET', '/fast')
    expect(Date.now() - t1).toBeLessThan(280)
  })

  it('reset-after-forward: the upstream gets the whole request, the client only a reset', async () => {
    proxy.addRule({ match: { method: 'PUT' }, action: { kind: 'reset-after-forward' } })
    await expect(send(proxy, 'PUT', '/write', { body: '{"spec":1}' })).rejects.toMatchObject({ code: 'ECONNRESET' })
    expect(upstream.seen).toHaveLength(1)
    expect(upstream.seen[0]).toMatchObject({ method: 'PUT', url: '/write', body: '{"spec":1}' })
    expect(proxy.requests[0]).toMatchObject({ method: 'PUT', status: 201, faulted: 'reset-after-forward' })
  })
})

describe('lifecycle and TLS', () => {
  it('stop() ends open long requests and refuses new connections', async () => {
    const pending = send(proxy, 'GET', '/hang')
    await new Promise((r) => setTimeout(r, 100))
    await proxy.stop()
    await expect(pending).rejects.toBeDefined()
    await expect(send(proxy, 'GET', '/x')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('forwards to an HTTPS upstream verified with caFile, and refuses an untrusted one', async () => {
    const tls = selfSignedCert()
    const secure = await startUpstream(tls)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-proxy-test-'))
    const caFile = path.join(dir, 'ca.crt')
    fs.writeFileSync(caFile, tls.cert)
    const verified = await startFaultProxy({ target: secure.url, caFile })
    const insecure = await startFaultProxy({ target: secure.url, insecure: true })
    const untrusted = await startFaultProxy({ target: secure.url })
    try {
      expect((await send(verified, 'GET', '/v')).status).toBe(201)
      expect((await send(insecure, 'GET', '/i')).status).toBe(201)
      const r = await send(untrusted, 'GET', '/u')
      expect(r.status).toBe(502)
      expect(JSON.parse(r.body).message).toMatch(/certificate/i)
      expect(secure.seen.map((s) => s.url)).toEqual(['/v', '/i'])
    } finally {
      await Promise.all([verified.stop(), insecure.stop(), untrusted.stop()])
      await secure.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('kubeconfigFor(token) gives a kubeconfig that @kubernetes/client-node uses through the proxy', async () => {
    const text = proxy.kubeconfigFor('tok-123')
    const parsed = yaml.load(text) as any
    expect(parsed.clusters[0].cluster.server).toBe(proxy.url)
    expect(Buffer.from(parsed.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(proxy.caPem)
    expect(parsed.users[0].user).toEqual({ token: 'tok-123' })
    const kc = new KubeConfig()
    kc.loadFromString(text)
    const list = await kc.makeApiClient(CoreV1Api).listNamespace()
    expect(list.items.map((n) => n.metadata?.name)).toEqual(['ns-a'])
    const seen = upstream.seen.find((s) => s.url.startsWith('/api/v1/namespaces'))
    expect(seen?.headers.authorization).toBe('Bearer tok-123')
  })

  it('kubeconfigFor(path) keeps the current user of a base kubeconfig', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-proxy-test-'))
    try {
      const base = path.join(dir, 'kubeconfig')
      fs.writeFileSync(
        base,
        yaml.dump({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'certificate-authority': '/nowhere/ca.crt' } }],
          users: [
            { name: 'other', user: { token: 'wrong' } },
            { name: 'admin', user: { token: 'admin-token' } }
          ],
          contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'admin', namespace: 'shop' } }],
          'current-context': 'ctx'
        })
      )
      for (const arg of [base, { kubeconfigPath: base }]) {
        const parsed = yaml.load(proxy.kubeconfigFor(arg)) as any
        expect(parsed.users[0].user).toEqual({ token: 'admin-token' })
        expect(parsed.clusters[0].cluster.server).toBe(proxy.url)
        expect(parsed.contexts[0].context.namespace).toBe('shop')
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
