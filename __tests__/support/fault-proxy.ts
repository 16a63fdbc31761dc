/**
 * A real fault-injecting HTTPS reverse proxy for reliability tests: put it between the action's
 * Kubernetes client and the real local kube-apiserver (or any HTTP(S) upstream), then inject
 * 5xx / 429 + Retry-After / delays / dropped connections / "the write landed but the answer was
 * lost" on chosen requests. Everything not matched by a rule is forwarded untouched (method, path,
 * query, headers including Authorization and Content-Type, streamed bodies both ways; long watch
 * requests are simply piped).
 *
 * It serves HTTPS with a throw-away self-signed certificate (made once per process with the
 * `openssl` CLI): client-node refuses an http:// server unless TLS verification is switched off,
 * and a proxy that needs `insecure-skip-tls-verify` would test a different client configuration
 * than production. kubeconfigFor() embeds that certificate as certificate-authority-data.
 *
 *   const proxy = await startFaultProxy({ target: 'https://127.0.0.1:6443', caFile: '.cluster/pki/apiserver.crt' })
 *   const kc = new KubeConfig(); kc.loadFromString(proxy.kubeconfigFor('.cluster/kubeconfig'))
 *   proxy.addRule({ match: { method: 'GET', pathRegex: /virtualservices/ }, action: { kind: 'status', status: 503 } })
 *   ... proxy.requests ...   // [{ method, path, status, faulted, at }]
 *   await proxy.stop()
 *
 * Rules are checked in the order they were added; the first matching rule that still has `times`
 * left applies to the request and counts down by one.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import yaml from 'js-yaml'

export interface FaultMatch {
  /** HTTP method, case-insensitive (GET, PUT, PATCH, POST, DELETE...). Any when omitted. */
  method?: string
  /** Tested against the request target: path AND query string (`/apis/x/v1/ns/a/things?watch=true`). */
  pathRegex?: RegExp | string
}

export type FaultAction =
  /** Answer with this status (a Kubernetes Status JSON body unless `body` is given); nothing is forwarded. */
  | { kind: 'status'; status: number; retryAfterSeconds?: number; body?: string | object }
  /** Wait `ms`, then forward normally. */
  | { kind: 'delay'; ms: number }
  /** Destroy the client connection without any response; nothing is forwarded. */
  | { kind: 'drop' }
  /** Forward to the upstream, wait for its complete answer, then destroy the client connection. */
  | { kind: 'reset-after-forward' }

export interface FaultRule {
  match?: FaultMatch
  /** How many matching requests get the fault (default 1; Infinity for all). */
  times?: number
  action: FaultAction
}

/** What addRule returns: the rule's live counters. */
export interface ActiveRule {
  readonly id: number
  readonly rule: FaultRule
  /** Requests this rule has been applied to so far. */
  readonly hits: number
  /** Applications left (Infinity for an unlimited rule). */
  readonly remaining: number
}

export interface ProxyRequestLog {
  method: string
  /** Path and query as received. */
  path: string
  /** Status sent to the client (for reset-after-forward: the upstream's status the client never saw); undefined when the connection was dropped before any answer. */
  status: number | undefined
  /** `${action.kind}` (`status:503`, `delay:200`, `drop`, `reset-after-forward`) or undefined when forwarded untouched. */
  faulted: string | undefined
  /** Date.now() when the request arrived. */
  at: number
}

export interface FaultProxyOptions {
  /** Upstream base URL, e.g. https://127.0.0.1:6443 (http:// works too). */
  target: string
  /** CA bundle (PEM file) to verify the upstream's certificate. */
  caFile?: string
  /** Do not verify the upstream's certificate. */
  insecure?: boolean
}

export interface FaultProxy {
  /** https://127.0.0.1:<port> */
  readonly url: string
  /** PEM of the proxy's self-signed certificate (trust it as the CA). */
  readonly caPem: string
  /**
   * A kubeconfig (YAML) whose only cluster is this proxy (CA = the proxy certificate). Pass a bearer
   * token, or the path of a base kubeconfig whose current user (token, client cert...) is kept; the
   * string form treats an existing file as a kubeconfig path, anything else as a token.
   */
  kubeconfigFor(credentials: string | { token: string } | { kubeconfigPath: string }, namespace?: string): string
  addRule(rule: FaultRule): ActiveRule
  clearRules(): void
  /** Every request received, in arrival order (cleared by clearLog). */
  readonly requests: ProxyRequestLog[]
  clearLog(): void
  stop(): Promise<void>
}

// ------------------------------------------------------------------------------------------------

let cachedCert: { key: string; cert: string } | undefined

/** A self-signed certificate for 127.0.0.1/localhost, made once per process with openssl. */
export function selfSignedCert(): { key: string; cert: string } {
  if (cachedCert) return cachedCert
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fault-proxy-'))
  try {
    const keyFile = path.join(dir, 'key.pem')
    const certFile = path.join(dir, 'cert.pem')
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=istio-canary-fault-proxy',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-keyout',
        keyFile,
        '-out',
        certFile
      ],
      { encoding: 'utf8' }
    )
    if (r.error || r.status !== 0) {
      throw new Error(`fault-proxy: openssl could not make a self-signed certificate: ${r.error?.message ?? r.stderr}`)
    }
    cachedCert = { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') }
    return cachedCert
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Request headers that belong to one connection, not to the request. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade'
])

function statusReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    409: 'Conflict',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
    502: 'BadGateway',
    503: 'ServiceUnavailable',
    504: 'Timeout'
  }
  return reasons[status] ?? 'Unknown'
}

interface RuleState {
  id: number
  rule: FaultRule
  regex?: RegExp
  hits: number
  remaining: number
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target)
  const upstreamIsHttps = target.protocol === 'https:'
  if (!upstreamIsHttps && target.protocol !== 'http:') throw new Error(`fault-proxy: unsupported target ${options.target}`)
  const upstreamAgent = upstreamIsHttps
    ? new https.Agent({
        keepAlive: true,
        ca: options.caFile ? fs.readFileSync(options.caFile) : undefined,
        rejectUnauthorized: !options.insecure
      })
    : new http.Agent({ keepAlive: true })
  const basePath = target.pathname.replace(/\/+$/, '')

  const { key, cert } = selfSignedCert()
  let rules: RuleState[] = []
  let nextId = 1
  const requests: ProxyRequestLog[] = []
  const upstreamRequests = new Set<http.ClientRequest>()
  const timers = new Set<NodeJS.Timeout>()

  function pickRule(method: string, url: string): RuleState | undefined {
    for (const r of rules) {
      if (r.remaining <= 0) continue
      const m = r.rule.match
      if (m?.method && m.method.toUpperCase() !== method.toUpperCase()) continue
      if (r.regex && !r.regex.test(url)) continue
      r.remaining--
      r.hits++
      return r
    }
    return undefined
  }

  /** Forward req upstream; `onResponse` decides what to do with the upstream answer. */
  function forward(req: http.IncomingMessage, res: http.ServerResponse, entry: ProxyRequestLog, dropAnswer: boolean): void {
    const headers: http.OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue
      headers[name] = value
    }
    headers.host = target.host
    // Without content-length the body is streamed chunked (node sets transfer-encoding itself).
    const upstream = (upstreamIsHttps ? https : http).request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port || (upstreamIsHttps ? 443 : 80),
      method: req.method,
      path: basePath + (req.url ?? '/'),
      headers,
      agent: upstreamAgent
    })
    upstreamRequests.add(upstream)
    upstream.once('close', () => upstreamRequests.delete(upstream))
    upstream.on('response', (up) => {
      entry.status = up.statusCode
      if (dropAnswer) {
        // Let the upstream finish (the write is complete), then the client learns nothing.
        up.resume()
        up.once('end', () => req.socket.destroy())
        up.once('error', () => req.socket.destroy())
        return
      }
      const out: http.OutgoingHttpHeaders = {}
      for (const [name, value] of Object.entries(up.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue
        out[name] = value
      }
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out)
      res.flushHeaders() // watches: the client sees the headers before the first event
      up.pipe(res)
      up.once('error', () => res.destroy())
    })
    upstream.on('error', (err) => {
      if (res.headersSent || dropAnswer) {
        res.destroy()
        return
      }
      entry.status = 502
      const body = JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: `fault-proxy: upstream ${options.target} failed: ${err.message}`,
        reason: 'BadGateway',
        code: 502
      })
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
    // The client went away (watch closed, client timeout): stop the upstream request too.
    res.once('close', () => {
      if (!res.writableFinished && !dropAnswer) upstream.destroy()
    })
    req.pipe(upstream)
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const entry: ProxyRequestLog = { method, path: url, status: undefined, faulted: undefined, at: Date.now() }
    requests.push(entry)
    const rule = pickRule(method, url)
    if (!rule) return forward(req, res, entry, false)
    const action = rule.rule.action
    switch (action.kind) {
      case 'status': {
        entry.faulted = `status:${action.status}`
        entry.status = action.status
        req.resume() // read and discard the request body
        const body =
          typeof action.body === 'string'
            ? action.body
            : JSON.stringify(
                action.body ?? {
                  kind: 'Status',
                  apiVersion: 'v1',
                  metadata: {},
                  status: 'Failure',
                  message: `fault injected by fault-proxy: ${action.status} ${statusReason(action.status)}`,
                  reason: statusReason(action.status),
                  ...(action.retryAfterSeconds !== undefined ? { details: { retryAfterSeconds: action.retryAfterSeconds } } : {}),
                  code: action.status
                }
              )
        const headers: http.OutgoingHttpHeaders = {
          'content-type': typeof action.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
          'content-length': Buffer.byteLength(body)
        }
        if (action.retryAfterSeconds !== undefined) headers['retry-after'] = String(action.retryAfterSeconds)
        const send = () => {
          res.writeHead(action.status, headers)
          res.end(body)
        }
        if (req.readableEnded) send()
        else req.once('end', send)
        return
      }
      case 'delay': {
        entry.faulted = `delay:${action.ms}`
        req.pause()
        const t = setTimeout(() => {
          timers.delete(t)
          if (req.destroyed || res.destroyed) return
          forward(req, res, entry, false)
        }, action.ms)
        timers.add(t)
        res.once('close', () => {
          clearTimeout(t)
          timers.delete(t)
        })
        return
      }
      case 'drop': {
        entry.faulted = 'drop'
        req.socket.destroy()
        return
      }
      case 'reset-after-forward': {
        entry.faulted = 'reset-after-forward'
        forward(req, res, entry, true)
        return
      }
    }
  }

  const server = https.createServer({ key, cert, keepAlive: true }, handle)
  const sockets = new Set<net.Socket>()
  server.on('secureConnection', (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('tlsClientError', () => {}) // a client that gives up mid-handshake is not our concern
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as net.AddressInfo).port
  const url = `https://127.0.0.1:${port}`

  function kubeconfigFor(credentials: string | { token: string } | { kubeconfigPath: string }, namespace = 'default'): string {
    let user: Record<string, unknown>
    let ns = namespace
    const asPath =
      typeof credentials === 'string'
        ? fs.existsSync(credentials)
          ? credentials
          : undefined
        : 'kubeconfigPath' in credentials
          ? credentials.kubeconfigPath
          : undefined
    if (asPath) {
      const base = yaml.load(fs.readFileSync(asPath, 'utf8')) as {
        'current-context'?: string
        contexts?: Array<{ name: string; context: { user: string; namespace?: string } }>
        users?: Array<{ name: string; user: Record<string, unknown> }>
      }
      const ctx = base.contexts?.find((c) => c.name === base['current-context']) ?? base.contexts?.[0]
      const u = base.users?.find((x) => x.name === ctx?.context.user)
      if (!u) throw new Error(`fault-proxy: no user for the current context of ${asPath}`)
      user = { ...u.user }
      // Relative credential files are relative to the base kubeconfig.
      for (const k of ['client-certificate', 'client-key', 'tokenFile']) {
        const v = user[k]
        if (typeof v === 'string' && !path.isAbsolute(v)) user[k] = path.resolve(path.dirname(asPath), v)
      }
      if (namespace === 'default' && ctx?.context.namespace) ns = ctx.context.namespace
    } else {
      const token = typeof credentials === 'string' ? credentials : (credentials as { token: string }).token
      user = { token }
    }
    return yaml.dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fault-proxy', cluster: { server: url, 'certificate-authority-data': Buffer.from(cert).toString('base64') } }],
      users: [{ name: 'fault-proxy-user', user }],
      contexts: [{ name: 'fault-proxy', context: { cluster: 'fault-proxy', user: 'fault-proxy-user', namespace: ns } }],
      'current-context': 'fault-proxy'
    })
  }

  let stopped: Promise<void> | undefined
  return {
    url,
    caPem: cert,
    kubeconfigFor,
    addRule(rule: FaultRule): ActiveRule {
      const times = rule.times ?? 1
      if (!(times >= 0)) throw new Error(`fault-proxy: times must be >= 0 (got ${times})`)
      const pr = rule.match?.pathRegex
      // Without g/y: RegExp.test would otherwise be stateful across requests.
      const regex =
        pr === undefined ? undefined : typeof pr === 'string' ? new RegExp(pr) : new RegExp(pr.source, pr.flags.replace(/[gy]/g, ''))
      const state: RuleState = { id: nextId++, rule, regex, hits: 0, remaining: times }
      rules.push(state)
      return {
        id: state.id,
        rule,
        get hits() {
          return state.hits
        },
        get remaining() {
          return state.remaining
        }
      }
    },
    clearRules() {
      rules = []
    },
    requests,
    clearLog() {
      requests.length = 0
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t)
        timers.clear()
        for (const r of upstreamRequests) r.destroy()
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
        server.closeAllConnections()
        upstreamAgent.destroy()
      })
      return stopped
    }
  }
}
