/**
 * Wait for a Deployment to roll out, fail, or run out of time, by polling (2 requests a poll:
 * the Deployment and its pods; 1 more for the events of a failing pod). The clock and the sleep
 * are injectable so unit tests replay recorded snapshots without waiting.
 */
import type { Cluster } from './cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import { labelSelectorQuery } from '../kube/label-selector.js'
import { goDuration, judgeDeployment, type DeploymentState } from '../kube/deployment-health.js'
import { abortableSleep } from '../abortable-sleep.js'

export interface WaitForDeploymentOptions {
  /** Give up (state `failed`) after this long. */
  deadlineMs: number
  /** Between polls (default 1000 ms). */
  pollMs?: number
  signal?: AbortSignal
  now?: () => Date
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

export interface DeploymentWaitResult {
  /** `ready` or `failed` (never `progressing`: the deadline turns that into `failed`). */
  state: Exclude<DeploymentState, 'progressing'>
  reason?: string
  /** Polls made. */
  polls: number
}

/** Poll until the Deployment is ready or failed. Rejects only with the signal's reason or an API error. */
export async function waitForDeployment(
  cluster: Cluster,
  namespace: string,
  name: string,
  opts: WaitForDeploymentOptions
): Promise<DeploymentWaitResult> {
  const now = opts.now ?? (() => new Date())
  const sleep = opts.sleep ?? abortableSleep
  const pollMs = opts.pollMs ?? 1000
  const started = now().getTime()
  let last: string
  let lastPods: KubeObject[] = []
  for (let polls = 1; ; polls++) {
    opts.signal?.throwIfAborted()
    const deployment = await cluster.getDeployment(namespace, name)
    if (!deployment) {
      last = `Deployment "${namespace}/${name}" not found`
    } else {
      const selector = labelSelectorQuery(deployment.spec?.selector)
      lastPods = selector === undefined ? [] : await cluster.listPods(namespace, selector)
      const judged = judgeDeployment(deployment, lastPods, [], now())
      if (judged.state === 'ready') return { state: 'ready', polls }
      if (judged.state === 'failed') {
        return { state: 'failed', reason: await withEvents(cluster, namespace, lastPods, judged.reason), polls }
      }
      last = judged.reason ?? 'progressing'
    }
    const elapsed = now().getTime() - started
    if (elapsed >= opts.deadlineMs) {
      const reason = `progress deadline of ${goDuration(opts.deadlineMs / 1000)} exceeded: ${last}`
      return { state: 'failed', reason: await withEvents(cluster, namespace, lastPods, reason), polls }
    }
    await sleep(Math.min(pollMs, opts.deadlineMs - elapsed), opts.signal)
  }
}

/** Add the newest Warning event of the first pod that is not ready, when it says more. */
async function withEvents(cluster: Cluster, namespace: string, pods: KubeObject[], reason = 'failed'): Promise<string> {
  const pod = pods.find(
    (p) => !(p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True')
  )
  if (!pod) return reason
  try {
    const events = await cluster.listEvents(namespace, pod.metadata.name)
    const warning = [...events].reverse().find((e) => (e as { type?: string }).type === 'Warning') as
      { reason?: string; message?: string } | undefined
    if (!warning?.message || reason.includes(warning.message)) return reason
    return `${reason}; last event on pod "${pod.metadata.name}": ${warning.reason ?? 'Warning'}: ${warning.message.replace(/\s+/g, ' ').slice(0, 300)}`
  } catch {
    // The verdict stands without the events (e.g. RBAC without `list events`).
    return reason
  }
}
