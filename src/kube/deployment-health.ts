/**
 * Is a Deployment rolled out, still progressing, or failed? Pure judgement over snapshots of the
 * Deployment, its pods and their events, like `kubectl rollout status` and Flagger's
 * isDeploymentReady, plus early failure on states that never heal by waiting (image pulls,
 * crash loops, invalid config), so a broken canary fails fast and never gets traffic.
 */
import type { KubeObject } from './kube-object.js'

export type DeploymentState = 'ready' | 'progressing' | 'failed'

export interface DeploymentJudgement {
  state: DeploymentState
  reason?: string
}

/** Waiting reasons that do not heal by waiting. */
const FATAL_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff'
])
/** Restarts of one container after which it is crash-looping even before the kubelet says so. */
const CRASH_RESTARTS = 2
/** Warning events (about a pod) that mean an image will not be pulled. */
const IMAGE_EVENT = /ErrImagePull|ImagePullBackOff|InvalidImageName|Failed to pull image/

interface ContainerStatus {
  name: string
  ready?: boolean
  restartCount?: number
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; exitCode?: number } }
  lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } }
}

/** Go-style duration as kubectl prints it: 600 s -> `10m0s`. */
export function goDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (h > 0) return `${h}h${m}m${sec}s`
  if (m > 0) return `${m}m${sec}s`
  return `${sec}s`
}

/**
 * Judge a Deployment. `pods` are those its selector matches; `events` those about the pods (or
 * the Deployment and its ReplicaSets). `now` dates the observation (used in reasons).
 */
export function judgeDeployment(deployment: KubeObject, pods: KubeObject[], events: KubeObject[], now: Date): DeploymentJudgement {
  const id = `${deployment.metadata.namespace ?? ''}/${deployment.metadata.name}`
  const spec = deployment.spec ?? {}
  const status = deployment.status ?? {}
  const conditions: Array<{ type: string; status: string; reason?: string; message?: string }> = status.conditions ?? []

  const progressing = conditions.find((c) => c.type === 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    const deadline = goDuration(Number(spec.progressDeadlineSeconds ?? 600))
    return {
      state: 'failed',
      reason: `Deployment "${id}" exceeded its progress deadline of ${deadline} (ProgressDeadlineExceeded)${withMessage(progressing.message)}${podHint(pods)}`
    }
  }
  const replicaFailure = conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True')
  if (replicaFailure) {
    return {
      state: 'failed',
      reason: `Deployment "${id}" cannot create pods (${replicaFailure.reason ?? 'ReplicaFailure'})${withMessage(replicaFailure.message)}`
    }
  }

  // Pods of an older template (a previous canary) may crash on: they are not this rollout's verdict.
  const live = pods.filter((p) => !p.metadata.deletionTimestamp && matchesTemplate(p, spec.template))
  for (const pod of live) {
    const failure = podFailure(pod)
    if (failure) return { state: 'failed', reason: failure }
  }
  const podNames = new Set(live.map((p) => p.metadata.name))
  const imageEvent = events.find((e) => {
    const ev = e as { type?: string; message?: string; involvedObject?: { name?: string; kind?: string } }
    return ev.type === 'Warning' && podNames.has(ev.involvedObject?.name ?? '') && IMAGE_EVENT.test(ev.message ?? '')
  }) as { message?: string; reason?: string; involvedObject?: { name?: string } } | undefined
  if (imageEvent) {
    return {
      state: 'failed',
      reason: `pod "${imageEvent.involvedObject?.name}": ${imageEvent.reason ?? 'Failed'}: ${imageEvent.message}`
    }
  }

  const want = Number(spec.replicas ?? 1)
  const generation = Number(deployment.metadata.generation ?? 0)
  const observed = Number(status.observedGeneration ?? 0)
  if (observed < generation) {
    return { state: 'progressing', reason: `waiting for Deployment "${id}" spec update to be observed` }
  }
  const updated = Number(status.updatedReplicas ?? 0)
  const total = Number(status.replicas ?? 0)
  const available = Number(status.availableReplicas ?? 0)
  if (updated < want) {
    return {
      state: 'progressing',
      reason: `${updated} out of ${want} new replicas have been updated${pendingHint(live, now)}`
    }
  }
  if (total > updated) {
    return { state: 'progressing', reason: `${total - updated} old replicas are pending termination` }
  }
  if (available < updated || available < want) {
    return {
      state: 'progressing',
      reason: `${available} of ${updated} updated replicas are available${pendingHint(live, now)}`
    }
  }
  return { state: 'ready' }
}

/** The pod runs the template's images (by container name); unknown shapes count as matching. */
function matchesTemplate(
  pod: KubeObject,
  template: { spec?: { containers?: Array<{ name: string; image?: string }> } } | undefined
): boolean {
  const want = template?.spec?.containers
  const have = pod.spec?.containers as Array<{ name: string; image?: string }> | undefined
  if (!want || !have) return true
  return want.every((w) => {
    const h = have.find((c) => c.name === w.name)
    return !h || !w.image || !h.image || h.image === w.image
  })
}

/** Why a pod will not become ready by waiting, or undefined. */
function podFailure(pod: KubeObject): string | undefined {
  const statuses: ContainerStatus[] = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
  for (const c of statuses) {
    const waiting = c.state?.waiting
    if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
      const restarts = c.restartCount ? ` after ${c.restartCount} restarts` : ''
      return `pod "${pod.metadata.name}" container "${c.name}": ${waiting.reason}${restarts}${withMessage(waiting.message)}${lastExit(c)}`
    }
    if ((c.restartCount ?? 0) >= CRASH_RESTARTS) {
      return `pod "${pod.metadata.name}" container "${c.name}": CrashLoopBackOff: restarted ${c.restartCount} times${lastExit(c)}`
    }
  }
  return undefined
}

function lastExit(c: ContainerStatus): string {
  const t = c.lastState?.terminated
  if (!t) return ''
  return ` (last exit: ${t.reason ?? 'terminated'}, code ${t.exitCode ?? '?'}${t.message ? `: ${oneLine(t.message)}` : ''})`
}

/** Pods stuck unscheduled, named in a progressing reason (not a failure: capacity may come). */
function pendingHint(pods: KubeObject[], now: Date): string {
  for (const pod of pods) {
    const cond = (pod.status?.conditions ?? []).find(
      (c: { type: string; status: string; reason?: string }) => c.type === 'PodScheduled' && c.status === 'False'
    ) as { reason?: string; message?: string; lastTransitionTime?: string } | undefined
    if (cond) {
      const since = cond.lastTransitionTime ? Date.parse(cond.lastTransitionTime) : NaN
      const age = Number.isFinite(since) ? ` for ${goDuration((now.getTime() - since) / 1000)}` : ''
      return `; pod "${pod.metadata.name}" ${cond.reason ?? 'unscheduled'}${age}${withMessage(cond.message)}`
    }
  }
  return ''
}

function podHint(pods: KubeObject[]): string {
  for (const pod of pods) {
    for (const c of (pod.status?.containerStatuses ?? []) as ContainerStatus[]) {
      if (c.state?.waiting?.reason) return `; pod "${pod.metadata.name}" container "${c.name}": ${c.state.waiting.reason}`
      if (!c.ready) return `; pod "${pod.metadata.name}" container "${c.name}" not ready`
    }
  }
  return ''
}

function withMessage(message: string | undefined): string {
  return message ? `: ${oneLine(message)}` : ''
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim()
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

// ---- the Kubernetes gate's judgement --------------------------------------------------------

/** Restart counts per pod (sum over containers), the baseline of judgeCanaryPods. */
export type RestartBaseline = Record<string, number>

export function restartCounts(pods: KubeObject[]): RestartBaseline {
  const out: RestartBaseline = {}
  for (const pod of pods) {
    out[pod.metadata.name] = ((pod.status?.containerStatuses ?? []) as ContainerStatus[]).reduce((n, c) => n + (c.restartCount ?? 0), 0)
  }
  return out
}

/** The pod's Ready condition is True. */
export function isPodReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True')
}

/** Why a pod is not ready, as a short suffix: ` (app: CrashLoopBackOff)`, ` (Pending)`, or empty. */
export function podWhy(pod: KubeObject): string {
  for (const c of (pod.status?.containerStatuses ?? []) as ContainerStatus[]) {
    if (c.state?.waiting?.reason) return ` (${c.name}: ${c.state.waiting.reason})`
  }
  return pod.status?.phase ? ` (${pod.status.phase})` : ''
}
