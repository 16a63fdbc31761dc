import { getEventListeners } from 'node:events'
import { withApiRetry } from '../../../src/cluster/api-retry.js'
import { KubeApiError, networkCode, parseRetryAfter, toKubeApiError } from '../../../src/cluster/kube-api-error.js'

/** Shaped like client-node's ApiException: what the apiserver answered. */
function apiError(code: number, status: object | string | undefined, headers: Record<string, string> = {}) {
  return Object.assign(new Error(`HTTP-Code: ${code}`), {
    code,
    body: typeof status === 'string' ? status : JSON.stringify(status),
    headers
  })
}
function fetchFailed(code: string) {
  return Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(`connect ${code} 127.0.0.1:6443`), { code }) })
}
const target = { verb: 'PATCH', resource: 'destinationrules', namespace: 'shop', name: 'reviews' }
const fast = { deadlineMs: 5_000, requestTimeoutMs: 1_000, minBackoffMs: 1, maxBackoffMs: 2 }

describe('toKubeApiError', () => {
  it("keeps the apiserver's words for 403", () => {
    const e = toKubeApiError(
      apiError(403, {
        kind: 'Status',
        reason: 'Forbidden',
        message:
          'destinationrules.networking.istio.io "reviews" is forbidden: User "restricted" cannot patch resource "destinationrules" in API group "networking.istio.io" in the namespace "shop"'
      }),
      target
    )
    expect(e.message).toBe(
      'Kubernetes API refused PATCH destinationrules "shop/reviews": forbidden: User "restricted" cannot patch resource "destinationrules" in API group "networking.istio.io" in the namespace "shop"'
    )
    expect(e).toMatchObject({ status: 403, retryable: false })
  })

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [400, false],
    [404, false],
    [409, false],
    [422, false]
  ])('status %i retryable: %s', (code, retryable) => {
    expect(toKubeApiError(apiError(code, { kind: 'Status', message: 'x' }), target).retryable).toBe(retryable)
  })

  it('keeps only the first line of a non-Status body (a proxy HTML page)', () => {
    const e = toKubeApiError(apiError(502, '<html>Bad gateway\n<body>...</body></html>'), target)
    expect(e.message).toBe('Kubernetes API PATCH destinationrules "shop/reviews" failed: 502 BadGateway: <html>Bad gateway')
  })

  it.each([
    [fetchFailed('ECONNREFUSED'), 'ECONNREFUSED'],
    [fetchFailed('ECONNRESET'), 'ECONNRESET'],
    [new Error('socket hang up'), 'ECONNRESET'],
    [Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }), 'TimeoutError'],
    [new Error('something else'), undefined]
  ])('network code of %p is %s', (err, code) => expect(networkCode(err)).toBe(code))

  it('parses Retry-After seconds, HTTP dates and Status details, taking the longer', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:05 GMT', undefined, Date.parse('2026-11-25T10:00:00Z'))).toBe(5000)
    expect(parseRetryAfter('1', 4)).toBe(4000)
    expect(parseRetryAfter(undefined)).toBeUndefined()
  })
})

describe('withApiRetry', () => {
  it('retries 5xx and network errors, then succeeds', async () => {
    const failures = [apiError(503, { message: 'etcdserver: leader changed' }), fetchFailed('ECONNRESET'), apiError(500, { message: 'x' })]
    let calls = 0
    const r = await withApiRetry(
      target,
      async () => {
        calls++
        const f = failures.shift()
        if (f) throw f
        return 'ok'
      },
      fast
    )
    expect(r).toBe('ok')
    expect(calls).toBe(4)
  })

  it('does not retry 4xx other than 429 (one attempt)', async () => {
    let calls = 0
    const err = await withApiRetry(
      target,
      async () => {
        calls++
        throw apiError(422, { reason: 'Invalid', message: 'spec.http[0].route[0].weight: Invalid value: -1' })
      },
      fast
    ).catch((e: unknown) => e)
    expect(calls).toBe(1)
    expect(err).toBeInstanceOf(KubeApiError)
    expect((err as KubeApiError).status).toBe(422)
  })

  it('retries a 401 once (exec/OIDC credentials refresh), not more', async () => {
    let calls = 0
    await expect(
      withApiRetry(
        target,
        async () => {
          calls++
          throw apiError(401, undefined)
        },
        fast
      )
    ).rejects.toThrow(/unauthorized \(401\)/)
    expect(calls).toBe(2)
  })

  it('waits at least Retry-After on 429', async () => {
    const waits: number[] = []
    let calls = 0
    await withApiRetry(
      target,
      async () => {
        if (calls++ === 0)
          throw apiError(
            429,
            { reason: 'TooManyRequests', message: 'slow down', details: { retryAfterSeconds: 2 } },
            { 'retry-after': '2' }
          )
        return 'ok'
      },
      { ...fast, sleep: async (ms) => void waits.push(ms) }
    )
    expect(waits).toEqual([2000])
  })

  it('gives up at once when Retry-After exceeds what is left of the deadline', async () => {
    let calls = 0
    const err = await withApiRetry(
      target,
      async () => {
        calls++
        throw apiError(429, { message: 'slow down' }, { 'retry-after': '60' })
      },
      { ...fast, sleep: async () => {} }
    ).catch((e: unknown) => e)
    expect(calls).toBe(1)
    expect((err as KubeApiError).status).toBe(429)
  })

  it('stops at the deadline and says how often it tried', async () => {
    let calls = 0
    const err = await withApiRetry(
      target,
      async () => {
        calls++
        throw apiError(503, { message: 'unavailable' })
      },
      { ...fast, deadlineMs: 50 }
    ).catch((e: unknown) => e)
    expect(calls).toBeGreaterThan(1)
    expect((err as Error).message).toMatch(/503 .*unavailable \(gave up after \d+ attempts in \d+\.\ds\)/)
  })

  it('times a hanging request out and retries it', async () => {
    let calls = 0
    const r = await withApiRetry(
      target,
      (signal) => {
        calls++
        if (calls === 1) {
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        }
        return Promise.resolve('ok')
      },
      { ...fast, requestTimeoutMs: 20 }
    )
    expect(r).toBe('ok')
    expect(calls).toBe(2)
  })

  it('stops with the cancellation reason when the signal fires', async () => {
    const controller = new AbortController()
    const err = await withApiRetry(
      target,
      async () => {
        controller.abort(new Error('cancelled'))
        throw apiError(503, { message: 'x' })
      },
      { ...fast, signal: controller.signal }
    ).catch((e: unknown) => e)
    expect((err as Error).message).toBe('cancelled')
  })

  it("cancels the attempt in flight when the run's signal fires, and leaves no listener on it once attempts end", async () => {
    const run = new AbortController()
    for (let i = 0; i < 5; i++) await withApiRetry(target, async () => 'ok', { ...fast, signal: run.signal })
    await withApiRetry(target, async () => Promise.reject(apiError(404, { message: 'gone' })), { ...fast, signal: run.signal }).catch(
      () => undefined
    )
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
    let seen: AbortSignal | undefined
    const pending = withApiRetry(
      target,
      (signal) => {
        seen = signal
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
      },
      { ...fast, requestTimeoutMs: 60_000, signal: run.signal }
    ).catch((e: unknown) => e)
    run.abort(new Error('run cancelled'))
    expect(((await pending) as Error).message).toBe('run cancelled')
    expect(seen?.aborted).toBe(true)
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
  })
})
