/**
 * The retry policy of every Kubernetes API call: 5xx, 429 (waiting at least Retry-After), network
 * errors and request timeouts are retried with exponential backoff and jitter, bounded by a
 * per-call deadline and an optional AbortSignal. Everything else fails at once.
 *
 * A write retried after a network error or timeout may have been applied the first time. With a
 * resourceVersion precondition the retry then answers 409, which the caller turns into "read again,
 * decide again" (ConflictError); it must never assume the first attempt failed.
 */
import { KubeApiError, toKubeApiError, type RequestTarget } from './kube-api-error.js'
import { abortableSleep } from '../abortable-sleep.js'
import { monotonicMs } from '../monotonic-clock.js'

export interface ApiRetryOptions {
  /** Whole call, all attempts and waits included. */
  deadlineMs: number
  /** One HTTP request. */
  requestTimeoutMs: number
  /** Cancellation of the whole run. */
  signal?: AbortSignal
  /** First backoff (doubles each retry, times a random 1..2 factor). */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** Wait used for Retry-After (injectable for tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

export const DEFAULT_CALL_DEADLINE_MS = 30_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
/** Most retries of one call (the deadline usually ends it first). */
const MAX_RETRIES = 20

/**
 * Run `attempt` until it succeeds or fails for good. Each attempt gets a signal that fires on the
 * per-request timeout or cancellation. Rejects with a KubeApiError (or the signal's reason).
 */
export async function withApiRetry<T>(
  target: RequestTarget,
  attempt: (signal: AbortSignal) => Promise<T>,
  opts: ApiRetryOptions
): Promise<T> {
  const started = monotonicMs()
  const remaining = () => opts.deadlineMs - (monotonicMs() - started)
  const sleep = opts.sleep ?? abortableSleep
  const minBackoff = opts.minBackoffMs ?? 250
  const maxBackoff = opts.maxBackoffMs ?? 5_000
  let attempts = 0
  // The last real answer: when the deadline runs out, that (e.g. "500 InternalError") is the
  // cause to report, not the timeout of an attempt squeezed into the last millisecond.
  let lastFailure: KubeApiError | undefined
  try {
    for (;;) {
      opts.signal?.throwIfAborted()
      attempts++
      const budget = Math.min(opts.requestTimeoutMs, remaining())
      const attemptSignal = new AttemptSignal(Math.max(1, Math.ceil(budget)), opts.signal)
      let failure: KubeApiError
      try {
        const result = await attempt(attemptSignal.signal)
        opts.signal?.throwIfAborted()
        return result
      } catch (err) {
        opts.signal?.throwIfAborted()
        failure = toKubeApiError(err, target, attemptSignal.timedOut)
        if (attemptSignal.timedOut && budget < opts.requestTimeoutMs && lastFailure) failure = lastFailure
      } finally {
        attemptSignal.done()
      }
      lastFailure = failure
      // One more try on 401: exec / OIDC credentials are refreshed on the next request.
      if (!failure.retryable && !(failure.status === 401 && attempts === 1)) throw failure
      const wait = failure.retryAfterMs
      if (wait !== undefined && wait > 0) {
        // Retry-After longer than what is left of the deadline: give up now rather than hammer.
        if (wait > remaining()) throw failure
        await sleep(wait, opts.signal)
      }
      const left = remaining()
      if (left <= 0 || attempts > MAX_RETRIES) throw failure
      // Exponential backoff with jitter: the n-th retry waits 1..2 x minBackoff x 2^(n-1), at most maxBackoff.
      const backoff = Math.min(Math.round((Math.random() + 1) * minBackoff * 2 ** (attempts - 1)), maxBackoff)
      await abortableSleep(Math.min(backoff, left), opts.signal)
      // Too little of the deadline left for a request: the last answer is the error.
      if (remaining() < Math.min(50, opts.deadlineMs * 0.05)) throw failure
    }
  } catch (err) {
    if (opts.signal?.aborted && err === opts.signal.reason) throw err
    const failure = toKubeApiError(err, target)
    if (!failure.retryable || attempts <= 1) throw failure
    const secs = ((monotonicMs() - started) / 1000).toFixed(1)
    throw new KubeApiError(
      `${failure.message} (gave up after ${attempts} attempts in ${secs}s)`,
      failure.status,
      failure.reason,
      failure.retryable,
      failure.retryAfterMs,
      failure.apiMessage,
      failure.causes
    )
  }
}

/**
 * One attempt's signal: fires when its time is up or the run is cancelled. A cleared timer and one
 * listener, released when the attempt ends (AbortSignal.timeout + AbortSignal.any would leave a
 * pending timer and weak references behind for every request).
 */
class AttemptSignal {
  private readonly controller = new AbortController()
  private readonly timer: NodeJS.Timeout
  private readonly onCancel?: () => void
  timedOut = false

  constructor(
    ms: number,
    private readonly run?: AbortSignal
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
    }, ms)
    this.timer.unref()
    if (run?.aborted) this.controller.abort(run.reason)
    else if (run) {
      this.onCancel = () => this.controller.abort(run.reason)
      run.addEventListener('abort', this.onCancel, { once: true })
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  done(): void {
    clearTimeout(this.timer)
    if (this.onCancel) this.run?.removeEventListener('abort', this.onCancel)
  }
}
