/**
 * Shared by the mesh tests: real calls through istiod's xDS (meshsim callers), the moments the
 * action wrote each weight, and the split the calls actually took between those moments.
 */
import { afterAll } from '@jest/globals'
import type { RunReport } from '../../../src/report/run-report.js'
import { runAction } from '../../support/rollout-harness.js'
import { callerStats, createTestNamespace, deleteNamespace, splitOf, startCaller, stopCaller, waitFor } from '../../support/test-cluster.js'

/** Skip this much after each write: istiod's debounce (100 ms) and the push (see docs/test-cluster.md). */
export const PROPAGATION_MS = 1500

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
 * Starts an xDS caller of `service` (default the seed's istio-service) and waits until istiod has
 * routed it: calls answered without failure for a whole second, all by `workload` unless it is null.
 */
export async function startSeedCaller(
  ns: string,
  name: string,
  rps: number,
  workload: string | null = 'istio-deployment-v1',
  service = 'istio-service'
): Promise<void> {
  await startCaller(ns, name, { service, rps })
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
 * Runs the action with `inputs`, recording a Mark at each write, then lets the callers call `tailMs`
 * longer (the window after the last write). [t0, tEnd) holds the whole rollout's calls.
 */
export async function runMarked(inputs: Record<string, string>, tailMs: number) {
  const t0 = Date.now()
  const marks: Mark[] = []
  const { report } = await runAction(inputs, { onProgress: recordMarks(marks) })
  await sleep(tailMs)
  return { report, marks, t0, tEnd: Date.now() }
}

/**
 * The steps the rollout held strictly between 0 and 100 %, each with the window its weight was in
 * force: from its write plus PROPAGATION_MS to the next write.
 */
export function stepWindows(marks: Mark[]): Array<{ weight: number; since: number; until: number }> {
  return marks
    .filter((m) => m.phase === 'progressing' && m.weight > 0 && m.weight < 100)
    .map((m) => {
      const next = marks[marks.indexOf(m) + 1]
      if (!next) throw new Error(`no write after the ${m.weight} % step`)
      return { weight: m.weight, since: m.t + PROPAGATION_MS, until: next.t }
    })
}

/**
 * A caller's calls in [since, until) and how many failed, with `clientWindow`: the caller's failures
 * (over its whole life) that were gRPC-Go's route-change window (see clientWindowFailures).
 */
export async function callsDuring(ns: string, caller: string, since: number, until: number) {
  const all = splitOf(await callerStats(ns, caller, { since, until }))
  return { ...all, clientWindow: clientWindowFailures((await callerStats(ns, caller)).errors) }
}

/**
 * Teardown lists run after the file's tests: every caller is stopped before any namespace goes
 * (deleting a VirtualService under a caller fails its calls).
 */
export function teardownAfterAll() {
  const callers: Array<() => Promise<void>> = []
  const cleanup: Array<() => Promise<void>> = []
  afterAll(async () => {
    await Promise.all(callers.map((f) => f()))
    await Promise.all(cleanup.map((f) => f()))
  })
  /** A fresh namespace, deleted after the file's tests; the callers named are stopped first. */
  async function meshNamespace(prefix: string, callerNames: string[]): Promise<string> {
    const ns = await createTestNamespace(prefix)
    callers.push(...callerNames.map((name) => () => stopCaller(ns, name)))
    cleanup.push(() => deleteNamespace(ns))
    return ns
  }
  return { callers, cleanup, meshNamespace }
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
