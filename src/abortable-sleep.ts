/** The one wait of the action: every sleep ends early when the run is cancelled. */

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts (also if it already has). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      },
      Math.max(0, ms)
    )
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Like abortableSleep, but resolves (instead of rejecting) on abort: for retry loops that check the signal themselves. */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return abortableSleep(ms, signal).catch(() => undefined)
}
