/**
 * Milliseconds from an arbitrary start that never go back, for deadlines and ages. Not
 * performance.now(): its first use loads perf_hooks and half a dozen internal modules (~0.7 ms),
 * before the first API request.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6
}
