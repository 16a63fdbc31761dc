/**
 * Webhook gates against a real HTTP server started here (node:http on loopback): what is sent, and
 * how 2xx, errors, retries and timeouts become verdicts.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildGates, parseGateConfig } from '../../../src/health/gate-config.js'
import type { GateContext, HealthGate } from '../../../src/health/health-gate.js'
import { WebhookGate, type WebhookConfig } from '../../../src/health/webhook-gate.js'

interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: Record<string, unknown>
  at: number
}

/** Answers each request with the next planned reply (the last one repeats). */
class HookServer {
  readonly received: Received[] = []
  private server = http.createServer((req, res) => this.handle(req, res))
  private plan: Array<{ status: number; delayMs?: number; body?: string }> = [{ status: 200 }]
  private sockets = new Set<import('node:net').Socket>()
  url = ''

  async start(): Promise<void> {
    this.server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }
  answer(...plan: Array<{ status: number; delayMs?: number; body?: string }>): void {
    this.plan = plan
    this.received.length = 0
  }
  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let text = ''
    req.on('data', (c) => (text += c))
    req.on('end', () => {
      const n = this.received.length
      this.received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(text || '{}'), at: Date.now() })
      const reply = this.plan[Math.min(n, this.plan.length - 1)]
      const send = () => {
        if (res.destroyed) return
        res.writeHead(reply.status, { 'content-type': 'text/plain' })
        res.end(reply.body ?? '')
      }
      if (reply.delayMs) setTimeout(send, reply.delayMs)
      else send()
    })
  }
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}

const server = new HookServer()
beforeAll(() => server.start())
afterAll(() => server.stop())

const ctx: GateContext = {
  namespace: 'shop',
  host: 'reviews',
  virtualService: 'reviews-vs',
  stable: { version: 'v1', subset: 'v1', deployment: 'reviews-v1' },
  canary: { version: 'v2', subset: 'v2', deployment: 'reviews-v2' },
  canaryWeight: 10,
  nextWeight: 50,
  stepIndex: 0,
  schedule: [
    { kind: 'weight', weight: 10 },
    { kind: 'weight', weight: 50 },
    { kind: 'weight', weight: 100 }
  ],
  windowSeconds: 60
}

function hook(over: Partial<WebhookConfig> = {}): WebhookGate {
  return new WebhookGate(
    {
      name: 'load-test',
      url: `${server.url}/hook`,
      moments: ['before-increase', 'rollback'],
      timeoutSeconds: 2,
      retries: 2,
      headers: {},
      metadata: {},
      ...over
    },
    { backoffMs: () => 100 }
  )
}

describe('WebhookGate', () => {
  it('passes on 2xx and sends the rollout situation with the configured headers (env-resolved)', async () => {
    server.answer({ status: 204 })
    const config = parseGateConfig(
      {
        webhooks: `- name: load-test\n  url: ${server.url}/hook\n  moments: [before-increase]\n  headers: {Authorization: "Bearer \${HOOK_TOKEN}"}\n  metadata: {cmd: "hey -z 1m", n: 3}`
      },
      { HOOK_TOKEN: 'tok-abc' }
    )
    const [gate] = buildGates(config) as HealthGate[]
    const [result] = await gate.evaluate('before-increase', ctx)
    expect(result).toMatchObject({ name: 'webhook:load-test', verdict: 'pass', threshold: 'HTTP 2xx' })
    expect(result.detail).toMatch(/^HTTP 204 in \d+ ms$/)
    expect(server.received).toHaveLength(1)
    const [req] = server.received
    expect(req.path).toBe('/hook')
    expect(req.headers.authorization).toBe('Bearer tok-abc')
    expect(req.headers['content-type']).toBe('application/json')
    expect(req.body).toEqual({
      name: 'load-test',
      namespace: 'shop',
      virtualService: 'reviews-vs',
      phase: 'before-increase',
      moment: 'before-increase',
      stable: { version: 'v1', subset: 'v1' },
      canary: { version: 'v2', subset: 'v2' },
      canaryWeight: 10,
      nextWeight: 50,
      stepIndex: 0,
      steps: 3,
      metadata: { cmd: 'hey -z 1m', n: 3 }
    })
    expect(await gate.evaluate('bake', ctx)).toEqual([])
    expect(server.received).toHaveLength(1)
  })

  it('retries: 500 then 200 passes on the second try, after the default backoff', async () => {
    server.answer({ status: 500, body: 'boom' }, { status: 200 })
    const [gate] = buildGates(parseGateConfig({ webhooks: `- name: flaky\n  url: ${server.url}/flaky\n  moments: [bake]` }))
    const [result] = await gate.evaluate('bake', ctx)
    expect(result.verdict).toBe('pass')
    expect(result.detail).toMatch(/^HTTP 200 in \d+ ms on try 2$/)
    expect(server.received).toHaveLength(2)
    expect(server.received[1].at - server.received[0].at).toBeGreaterThanOrEqual(950)
  })

  it('fails after the bounded retries when the hook always answers 500', async () => {
    server.answer({ status: 500, body: 'database down' })
    const [result] = await hook().evaluate('before-increase', ctx)
    expect(result).toEqual({
      name: 'webhook:load-test',
      verdict: 'fail',
      threshold: 'HTTP 2xx',
      detail: 'HTTP 500 after 3 tries: "database down"'
    })
    expect(server.received).toHaveLength(3)
  })

  it('fails on a timeout, each try cut at the deadline', async () => {
    server.answer({ status: 200, delayMs: 1500 })
    const started = Date.now()
    const [result] = await hook({ timeoutSeconds: 0.3, retries: 1 }).evaluate('before-increase', ctx)
    expect(result).toMatchObject({ verdict: 'fail', detail: 'timeout (0.3s) after 2 tries' })
    expect(server.received).toHaveLength(2)
    expect(Date.now() - started).toBeLessThan(1500)
  })

  it('passes a slow answer that arrives in time', async () => {
    server.answer({ status: 202, delayMs: 400 })
    const [result] = await hook({ timeoutSeconds: 2 }).evaluate('before-increase', ctx)
    expect(result.verdict).toBe('pass')
    expect(result.detail).toMatch(/^HTTP 202 in (4\d\d|[5-9]\d\d|1\d\d\d) ms$/)
    expect(server.received).toHaveLength(1)
  })

  it('never blocks at an event moment: a failed delivery is informational', async () => {
    server.answer({ status: 503 })
    const [result] = await hook({ retries: 1 }).evaluate('rollback', ctx)
    expect(result).toEqual({
      name: 'webhook:load-test',
      verdict: 'pass',
      detail: 'rollback event NOT delivered: HTTP 503 after 2 tries (informational, does not block)'
    })
    expect(server.received[0].body.phase).toBe('rollback')
  })

  it('fails when nothing listens', async () => {
    const closed = http.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((r) => closed.close(() => r()))
    const gate = hook({ url: `http://127.0.0.1:${port}/x`, retries: 0 })
    const [result] = await gate.evaluate('before-increase', ctx)
    expect(result.verdict).toBe('fail')
    expect(result.detail).toMatch(/^unreachable after 1 try: fetch failed \(.*ECONNREFUSED.*\)$/)
  })
})
