/**
 * The fetch Octokit uses for the reports: Node's https with keep-alive, instead of undici's fetch
 * (bundled by @actions/github) or Node's global fetch (its own undici). Either of those costs
 * ~15-25 MiB of memory for the handful of requests a run makes to the GitHub API. Proxies come
 * from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) through Node's own agent support.
 *
 * Only what @octokit/request reads of a response is provided: status, statusText, url, headers
 * (iterable, get), text(), arrayBuffer(), json().
 */
import http from 'node:http'
import https from 'node:https'

export interface GithubFetchInit {
  method?: string
  headers?: Record<string, string>
  body?: string | Uint8Array | null
  redirect?: 'follow' | 'manual' | 'error'
  signal?: AbortSignal | null
}

class ResponseHeaders {
  constructor(private readonly map: Map<string, string>) {}
  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null
  }
  has(name: string): boolean {
    return this.map.has(name.toLowerCase())
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.map.entries()
  }
}

export class GithubFetchResponse {
  readonly ok: boolean
  readonly body = null
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly url: string,
    readonly headers: ResponseHeaders,
    private readonly bytes: Buffer
  ) {
    this.ok = status >= 200 && status < 300
  }
  async text(): Promise<string> {
    return this.bytes.toString('utf8')
  }
  async json(): Promise<unknown> {
    return JSON.parse(this.bytes.toString('utf8'))
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer
  }
}

const MAX_REDIRECTS = 5
let agents: { http: http.Agent; https: https.Agent } | undefined

function agentFor(protocol: string): http.Agent {
  // proxyEnv: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as the runner sets them on self-hosted machines.
  agents ??= {
    http: new http.Agent({ keepAlive: true, proxyEnv: process.env }),
    https: new https.Agent({ keepAlive: true, proxyEnv: process.env })
  }
  return protocol === 'http:' ? agents.http : agents.https
}

/** A fetch for Octokit's `request.fetch`. */
export async function githubFetch(input: string | URL, init: GithubFetchInit = {}, redirects = 0): Promise<GithubFetchResponse> {
  const url = new URL(String(input))
  const method = (init.method ?? 'GET').toUpperCase()
  const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body)
  const headers: Record<string, string | number> = { ...(init.headers ?? {}) }
  if (body) headers['content-length'] = body.length
  const send = url.protocol === 'http:' ? http.request : https.request
  const response = await new Promise<GithubFetchResponse>((resolve, reject) => {
    const req = send(url, { method, headers, agent: agentFor(url.protocol), signal: init.signal ?? undefined }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const map = new Map<string, string>()
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) map.set(k, Array.isArray(v) ? v.join(', ') : v)
        resolve(
          new GithubFetchResponse(res.statusCode ?? 0, res.statusMessage ?? '', url.href, new ResponseHeaders(map), Buffer.concat(chunks))
        )
      })
    })
    req.on('error', reject)
    req.end(body)
  })
  const location = response.headers.get('location')
  if ([301, 302, 303, 307, 308].includes(response.status) && location && (init.redirect ?? 'follow') === 'follow') {
    if (redirects >= MAX_REDIRECTS) throw new Error(`GitHub API: more than ${MAX_REDIRECTS} redirects from ${url.href}`)
    const next = new URL(location, url)
    // A redirect to another origin must not carry the token.
    const sameOrigin = next.origin === url.origin
    const nextHeaders = Object.fromEntries(
      Object.entries(init.headers ?? {}).filter(([k]) => sameOrigin || k.toLowerCase() !== 'authorization')
    )
    const keepBody = response.status === 307 || response.status === 308
    return githubFetch(
      next,
      {
        ...init,
        headers: nextHeaders,
        method: keepBody ? method : method === 'HEAD' ? 'HEAD' : 'GET',
        body: keepBody ? init.body : undefined
      },
      redirects + 1
    )
  }
  return response
}
