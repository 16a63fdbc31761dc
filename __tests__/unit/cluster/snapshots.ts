/**
 * Deployment / Pod / Event snapshots shaped like what the apiserver returns (fields trimmed to
 * what the judgements read). Pure data for the unit tests.
 */
import type { KubeObject } from '../../../src/kube/kube-object.js'

export function deployment(
  over: {
    generation?: number
    observedGeneration?: number
    replicas?: number
    updated?: number
    total?: number
    available?: number
    image?: string
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>
    progressDeadlineSeconds?: number
  } = {}
): KubeObject {
  const replicas = over.replicas ?? 2
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'reviews-v2', namespace: 'shop', generation: over.generation ?? 1, resourceVersion: '100' },
    spec: {
      replicas,
      progressDeadlineSeconds: over.progressDeadlineSeconds ?? 600,
      selector: { matchLabels: { app: 'reviews', version: 'v2' } },
      template: {
        metadata: { labels: { app: 'reviews', version: 'v2' } },
        spec: { containers: [{ name: 'reviews', image: over.image ?? 'reviews:2.0' }] }
      }
    },
    status: {
      observedGeneration: over.observedGeneration ?? over.generation ?? 1,
      replicas: over.total ?? over.updated ?? replicas,
      updatedReplicas: over.updated ?? replicas,
      availableReplicas: over.available ?? over.updated ?? replicas,
      conditions: over.conditions ?? []
    }
  }
}

export interface ContainerSnap {
  name?: string
  ready?: boolean
  restartCount?: number
  waiting?: { reason: string; message?: string }
  lastTerminated?: { reason: string; exitCode: number }
}

export function pod(
  name: string,
  over: { ready?: boolean; image?: string; containers?: ContainerSnap[]; deleting?: boolean; phase?: string; unschedulable?: string } = {}
): KubeObject {
  const containers = over.containers ?? [{ ready: over.ready ?? true }]
  const ready = over.ready ?? containers.every((c) => c.ready !== false && !c.waiting)
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      labels: { app: 'reviews', version: 'v2' },
      ...(over.deleting ? { deletionTimestamp: '2026-11-25T10:00:00Z' } : {})
    },
    spec: { containers: containers.map((c) => ({ name: c.name ?? 'reviews', image: over.image ?? 'reviews:2.0' })) },
    status: {
      phase: over.phase ?? (ready ? 'Running' : 'Pending'),
      conditions: [
        { type: 'Ready', status: ready ? 'True' : 'False' },
        ...(over.unschedulable
          ? [
              {
                type: 'PodScheduled',
                status: 'False',
                reason: 'Unschedulable',
                message: over.unschedulable,
                lastTransitionTime: '2026-11-25T09:58:00Z'
              }
            ]
          : [])
      ],
      containerStatuses: containers.map((c) => ({
        name: c.name ?? 'reviews',
        ready: c.ready ?? !c.waiting,
        restartCount: c.restartCount ?? 0,
        state: c.waiting ? { waiting: c.waiting } : { running: { startedAt: '2026-11-25T09:59:00Z' } },
        ...(c.lastTerminated ? { lastState: { terminated: c.lastTerminated } } : {})
      }))
    }
  }
}

export function event(podName: string, reason: string, message: string, type = 'Warning', at = '2026-11-25T10:00:00Z'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${podName}.1`, namespace: 'shop' },
    involvedObject: { kind: 'Pod', name: podName, namespace: 'shop' },
    type,
    reason,
    message,
    lastTimestamp: at
  }
}
