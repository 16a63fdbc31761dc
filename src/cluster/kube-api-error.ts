/**
 * What went wrong with one Kubernetes API request, in words, and whether trying again can help.
 * Pure: it reads the error the client threw (status, Status body, headers), never the request, so
 * no request body or Authorization header can end up in a message.
 */

/** Which request failed, for the message: `PUT virtualservices "shop/reviews"`. */
export interface RequestTarget {
  verb: string
  resource: string
  namespace?: string
  name?: string
}

/** A failed Kubernetes API call. `status` is undefined for network errors and timeouts. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError'
  constructor(
    message: string,
    readonly status: number | undefined,
    /** The Status reason (`Forbidden`, `Conflict`, `NotFound`, `Invalid`...) or the network error code. */
    readonly reason: string | undefined,
    /** Retrying may help: 5xx, 429, network errors, request timeouts. */
    readonly retryable: boolean,
    /** Server-requested wait before the next attempt (429/503 Retry-After), in ms. */
    readonly retryAfterMs: number | undefined,
    /** The apiserver's own message (from the Status body), without our prefix. */
    readonly apiMessage: string,
    /** Status details causes (field conflicts of server-side apply, validation errors). */
    readonly causes: Array<{ reason?: string; message?: string; field?: string }> = []
  ) {
    super(message)
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED'
])

interface StatusBody {
  kind?: string
  message?: string
  reason?: string
  code?: number
  details?: { retryAfterSeconds?: number; causes?: Array<{ reason?: string; message?: string; field?: string }> }
}

/** Describe a target as `PUT virtualservices "shop/reviews"`. */
export function describeTarget(t: RequestTarget): string {
  const id = [t.namespace, t.name].filter(Boolean).join('/')
  return `${t.verb} ${t.resource}${id ? ` ${JSON.stringify(id)}` : ''}`
}

/**
 * Classify whatever the client threw. `timedOut` says our own per-request timeout fired (the
 * request may still have reached the server).
 */
export function toKubeApiError(err: unknown, target: RequestTarget, timedOut = false): KubeApiError {
  if (err instanceof KubeApiError) return err
  const what = describeTarget(target)
  const e = err as { code?: unknown; body?: unknown; headers?: Record<string, string>; name?: string; message?: string; cause?: unknown }
  if (typeof e?.code === 'number' && e.code >= 100) {
    const status = e.code
    const body = parseStatusBody(e.body)
    const apiMessage = body?.message ?? (status === 401 ? 'Unauthorized' : `HTTP ${status}`)
    const reason = body?.reason ?? defaultReason(status)
    const retryAfterMs = parseRetryAfter(e.headers?.['retry-after'] ?? e.headers?.['Retry-After'], body?.details?.retryAfterSeconds)
    const retryable = status === 429 || status >= 500
    let message: string
    if (status === 403) {
      // The apiserver already names user, verb, resource and namespace: keep its words.
      const m = apiMessage.match(/is forbidden: (.*)$/s)
      message = `Kubernetes API refused ${what}: forbidden: ${m ? m[1] : apiMessage}`
    } else if (status === 401) {
      message = `Kubernetes API refused ${what}: unauthorized (401): the credentials were rejected or have expired`
    } else {
      message = `Kubernetes API ${what} failed: ${status} ${reason}: ${apiMessage}`
    }
    return new KubeApiError(message, status, reason, retryable, retryAfterMs, apiMessage, body?.details?.causes ?? [])
  }
  const code = networkCode(err)
  if (timedOut || code === 'TimeoutError') {
    return new KubeApiError(`Kubernetes API ${what} timed out`, undefined, 'Timeout', true, undefined, 'timeout')
  }
  if (code) {
    return new KubeApiError(`Kubernetes API ${what} failed: network error ${code}`, undefined, code, true, undefined, code)
  }
  const msg = e?.message ?? String(err)
  return new KubeApiError(`Kubernetes API ${what} failed: ${firstLine(msg)}`, undefined, e?.name, false, undefined, firstLine(msg))
}

/** The network error code hidden in a fetch failure (`fetch failed` → cause.code), if it is one. */
export function networkCode(err: unknown): string | undefined {
  let cur: unknown = err
  for (let depth = 0; cur && depth < 5; depth++) {
    const c = cur as { code?: unknown; name?: string; message?: string; cause?: unknown }
    if (typeof c.code === 'string' && NETWORK_CODES.has(c.code)) return c.code
    if (c.name === 'TimeoutError') return 'TimeoutError'
    if (typeof c.message === 'string') {
      if (/socket hang up/i.test(c.message)) return 'ECONNRESET'
      const m = c.message.match(/\b(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)\b/)
      if (m) return m[1]
      if (c.message === 'fetch failed' && !c.cause) return 'fetch failed'
      if (/other side closed|terminated/i.test(c.message) && c.name !== 'AbortError') return 'ECONNRESET'
    }
    cur = c.cause
  }
  return undefined
}

/** Retry-After in ms: the header (seconds or an HTTP date) or the Status details, the longer one. */
export function parseRetryAfter(header: string | undefined, detailSeconds?: number, now = Date.now()): number | undefined {
  let ms: number | undefined
  if (header !== undefined && header.trim() !== '') {
    const secs = Number(header.trim())
    if (Number.isFinite(secs) && secs >= 0) ms = secs * 1000
    else {
      const at = Date.parse(header)
      if (Number.isFinite(at)) ms = Math.max(0, at - now)
    }
  }
  if (typeof detailSeconds === 'number' && detailSeconds > 0) ms = Math.max(ms ?? 0, detailSeconds * 1000)
  return ms
}

function parseStatusBody(body: unknown): StatusBody | undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown
      return typeof parsed === 'object' && parsed !== null ? (parsed as StatusBody) : undefined
    } catch {
      // Not a Status (a proxy's HTML page): keep only its first line, bodies can be long.
      return { message: firstLine(body).slice(0, 200) }
    }
  }
  if (typeof body === 'object') return body as StatusBody
  return undefined
}

function defaultReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    409: 'Conflict',
    410: 'Gone',
    415: 'UnsupportedMediaType',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
    502: 'BadGateway',
    503: 'ServiceUnavailable',
    504: 'Timeout'
  }
  return reasons[status] ?? 'Error'
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s
}
