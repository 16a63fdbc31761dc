/**
 * KubeHttpClient: the few Kubernetes API requests the action makes, sent through Node's own
 * http/https with a keep-alive agent. Credentials stay with client-node's KubeConfig
 * (applyToHTTPSOptions: exec plugins, token files and in-cluster, client certificates, OIDC,
 * basic auth, proxy-url). What it applies is kept for CREDENTIALS_TTL_MS and dropped on a 401, so
 * refreshed tokens and rotated files are picked up without reading them for every request.
 *
 * A non-2xx answer rejects with KubeHttpError { code, body, headers }, the shape toKubeApiError
 * (kube-api-error.ts) classifies; network errors and aborts reject with Node's own errors.
 * Neither carries the request's headers or body.
 */
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js'
import { monotonicMs } from '../monotonic-clock.js'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface KubeRequest {
  method: HttpMethod
  /** API path from the server root, e.g. `/apis/apps/v1/namespaces/shop/deployments/web`. */
  path: string
  /** Query parameters in the order given; undefined values are left out. */
  query?: Record<string, string | undefined>
  /** Sent as JSON. */
  body?: unknown
  /** Content-Type of the body (default application/json). */
  contentType?: string
  signal?: AbortSignal
}

/** A non-2xx answer of the API server. `body` is the raw text (usually a Status). */
export class KubeHttpError extends Error {
  override readonly name = 'KubeHttpError'
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: Record<string, string>
  ) {
    super(`HTTP ${code}`)
  }
}

/** Free sockets are closed after this long: below the API server's and load balancers' idle timeouts. */
const IDLE_SOCKET_MS = 30_000
/**
 * Connections per API server. The preflight sends ~20 access reviews at once: without a bound each
 * would open its own TLS connection (a handshake and a secure context apiece, at startup).
 */
const MAX_SOCKETS = 6
const USER_AGENT = 'istio-canary'
/**
 * How long applied credentials are used before KubeConfig is asked again. Short against any token's
 * lifetime; a token that expires sooner gets a 401, which drops them at once (and the call is retried).
 */
export const CREDENTIALS_TTL_MS = 10_000

type TlsOptions = Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase' | 'rejectUnauthorized' | 'servername'>
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const

export class KubeHttpClient {
  private agent?: http.Agent
  /** Protocol and TLS options the agent was made for. */
  private agentMadeFor?: { protocol: string; tls: TlsOptions }
  private proxyAgent?: http.Agent
  /** What KubeConfig applied last, and when (monotonicMs()). */
  private applied?: { opts: https.RequestOptions; at: number }

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly credentialsTtlMs = CREDENTIALS_TTL_MS
  ) {}

  /** The parsed JSON of a 2xx answer (undefined when empty). */
  async request<T = unknown>(req: KubeRequest): Promise<T> {
    const server = this.kubeConfig.getCurrentCluster()?.server
    if (!server) throw new Error('The kubeconfig has no current cluster with a server URL.')
    const base = new URL(server)
    const opts = await this.credentials()
    const agent = this.agentFor(base, opts)
    const body = req.body === undefined ? undefined : JSON.stringify(req.body)
    const headers: Record<string, string | number> = {
      ...(opts.headers as Record<string, string> | undefined),
      Accept: 'application/json',
      'User-Agent': USER_AGENT
    }
    if (body) {
      headers['Content-Type'] = req.contentType ?? 'application/json'
      headers['Content-Length'] = Buffer.byteLength(body)
    }
    const send = base.protocol === 'http:' ? http.request : https.request
    const signal = req.signal
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(aborted(signal))
        return
      }
      const r = send(
        {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: base.port || undefined,
          path: base.pathname.replace(/\/+$/, '') + req.path + queryString(req.query),
          method: req.method,
          headers,
          agent,
          auth: opts.auth
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', fail)
          res.on('end', () => {
            signal?.removeEventListener('abort', onAbort)
            const text = Buffer.concat(chunks).toString('utf8')
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) {
              try {
                resolve((text === '' ? undefined : JSON.parse(text)) as T)
              } catch {
                reject(new Error(`The API server answered ${req.method} with ${status} and a body that is not JSON`))
              }
              return
            }
            // Expired or revoked credentials: ask KubeConfig afresh for the next request.
            if (status === 401) this.applied = undefined
            const h: Record<string, string> = {}
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v
            reject(new KubeHttpError(status, text, h))
          })
        }
      )
      // One listener on the signal, removed when the answer is in (cheaper than handing the signal
      // to http.request, which watches the request's whole life for it).
      function onAbort(): void {
        r.destroy(aborted(signal!))
      }
      function fail(err: Error): void {
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      r.on('error', fail)
      r.end(body)
    })
  }

  /** The request options KubeConfig applies (TLS material, auth header, proxy agent), kept for a while. */
  private async credentials(): Promise<https.RequestOptions> {
    const now = monotonicMs()
    if (this.applied && now - this.applied.at < this.credentialsTtlMs) return this.applied.opts
    const opts: https.RequestOptions = {}
    await this.kubeConfig.applyToHTTPSOptions(opts)
    this.applied = { opts, at: now }
    return opts
  }

  /** Close kept-alive connections (the process exits without waiting for them anyway). */
  close(): void {
    this.proxyAgent?.destroy()
    this.agent?.destroy()
    this.agent = undefined
    this.agentMadeFor = undefined
    this.applied = undefined
  }

  /**
   * A proxy-url goes through the agent KubeConfig made for it (HTTP CONNECT or SOCKS), with
   * keep-alive switched on; otherwise one keep-alive agent per TLS identity, replaced when an exec
   * plugin hands out a new client certificate.
   */
  private agentFor(base: URL, opts: https.RequestOptions): http.Agent {
    const proxied = this.kubeConfig.getCurrentCluster()?.proxyUrl
    if (proxied && opts.agent instanceof http.Agent) {
      const a = opts.agent as http.Agent & { keepAlive?: boolean }
      a.keepAlive = true
      this.proxyAgent = a
      return a
    }
    const tlsOpts: TlsOptions = {}
    for (const k of TLS_KEYS) if (opts[k] !== undefined) (tlsOpts as Record<string, unknown>)[k] = opts[k]
    const made = this.agentMadeFor
    // Compared in place (memcmp for PEM buffers): this runs before every request.
    if (!this.agent || !made || made.protocol !== base.protocol || !TLS_KEYS.every((k) => same(made.tls[k], tlsOpts[k]))) {
      this.agent?.destroy()
      const common = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const, maxSockets: MAX_SOCKETS }
      if (base.protocol === 'http:') {
        this.agent = new http.Agent(common)
      } else {
        // One secure context (CA and client certificate parsed once) for every connection.
        const { ca, cert, key, pfx, passphrase, ...rest } = tlsOpts
        const secureContext = tls.createSecureContext({ ca, cert, key, pfx, passphrase })
        this.agent = new https.Agent({ ...common, ...rest, secureContext })
      }
      this.agentMadeFor = { protocol: base.protocol, tls: tlsOpts }
    }
    return this.agent
  }
}

/** Whether two TLS option values are the same credential (buffers by content, lists item by item). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b)
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) return JSON.stringify(a) === JSON.stringify(b)
  return false
}

/** The error an aborted request rejects with: an AbortError whose cause is the signal's reason. */
function aborted(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' })
}

function queryString(query: KubeRequest['query']): string {
  if (!query) return ''
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, v)
  const s = params.toString()
  return s ? `?${s}` : ''
}
