/**
 * Shared by the mesh tests: real calls through istiod's xDS (meshsim callers), the moments the
 * action wrote each weight, and the split the calls actually took between those moments.
 */
import { afterAll } from '@jest/globals'
import type { RunReport } from '../../../src/report/run-report.js'
import { callerStats, splitOf, startCaller, waitFor } from '../../support/test-cluster.js'

/** Moments the action's writes were read back, with the canary weight and phase they set. */
export interface Mark {
  t: number
  weight: number
  phase: string
}

/** An onProgress that records a Mark whenever the weight or phase changes. */
export function recordMarks(marks: Mark[]): (r: RunReport) => void {
  return (r) => {
    const s = r.state
    if (!s) return
    const last = marks.at(-1)
    if (!last || last.weight !== s.canaryWeight || last.phase !== s.phase)
      marks.push({ t: Date.now(), weight: s.canaryWeight, phase: s.phase })
  }
}

/**
 * Starts an xDS caller of the seed's istio-service and waits until istiod has routed it: calls
 * answered without failure for a whole second, all by `workload` unless it is null.
 */
export async function startSeedCaller(
  ns: string,
  name: string,
  rps: number,
  workload: string | null = 'istio-deployment-v1'
): Promise<void> {
  await startCaller(ns, name, { service: 'istio-service', rps })
  await waitFor(
    async () => {
      const since = Date.now() - 1000
      const s = splitOf(await callerStats(ns, name, { since }))
      return s.total >= rps / 2 && s.failed === 0 && (workload === null || (s.byWorkload[workload] ?? 0) === s.total)
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `caller ${ns}/${name} answered${workload ? ` by ${workload}` : ''}` }
  )
}

/** Share (0..100) of calls in [since, until) that `workload` answered, with the counts. */
export async function shareOf(ns: string, caller: string, workload: string, since: number, until: number) {
  const s = splitOf(await callerStats(ns, caller, { since, until }))
  return { percent: s.total ? (100 * (s.byWorkload[workload] ?? 0)) / s.total : NaN, ...s }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Teardown lists run after the file's tests: every caller is stopped before any namespace goes
 * (deleting a VirtualService under a caller fails its calls).
 */
export function teardownAfterAll(): { callers: Array<() => Promise<void>>; cleanup: Array<() => Promise<void>> } {
  const callers: Array<() => Promise<void>> = []
  const cleanup: Array<() => Promise<void>> = []
  afterAll(async () => {
    await Promise.all(callers.map((f) => f()))
    await Promise.all(cleanup.map((f) => f()))
  })
  return { callers, cleanup }
}

/**
 * Failed calls that were gRPC-Go's own window when a route gains or drops a cluster (the resolver's
 * new config reaches a call before the cluster picker's update: "unknown cluster selected for RPC").
 * Envoy has no such window; any other failure is the write order's.
 */
export function clientWindowFailures(errors: Record<string, number>): number {
  return Object.entries(errors)
    .filter(([message]) => message.includes('unknown cluster selected for RPC'))
    .reduce((n, [, count]) => n + count, 0)
}
