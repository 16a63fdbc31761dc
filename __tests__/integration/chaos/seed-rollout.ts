/**
 * Shared by the chaos, concurrency and drift tests: the seed scenario (v1 stable, v2 canary) in a
 * fresh namespace, its inputs, and what "converged back to stable" means, checked on the cluster.
 */
import { afterAll, expect } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { leaseName } from '../../../src/cluster/lease-lock.js'
import type { RolloutState } from '../../../src/rollout/types.js'
import { stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import {
  createTestNamespace,
  deleteNamespace,
  readSeedScenario,
  withBehaviour,
  type BehaviourOptions,
  type PodBehaviour,
  startSeedScenario
} from '../../support/test-cluster.js'
import * as yaml from 'js-yaml'
import { Watch } from '@kubernetes/client-node'
import { kubeConfig } from '../../support/test-cluster.js'

export const VS = 'istio-virtualservice'
export const DR = 'istio-destinationrule'
export const STABLE_DEPLOYMENT = 'istio-deployment-v1'
export const CANARY_DEPLOYMENT = 'istio-deployment-v2'
export const LEASE = leaseName(VS)

export interface Seed {
  ns: string
  /** Absolute path of the canary (v2) manifest. */
  manifest: string
}

/** A namespace with the seed scenario's v1 release running, and a v2 manifest (optionally with a pod behaviour). */
export async function seedNamespace(prefix: string, canary?: { behaviour: PodBehaviour; opts?: BehaviourOptions }): Promise<Seed> {
  const ns = await createTestNamespace(prefix)
  await startSeedScenario(ns)
  const v2 = readSeedScenario('deployment-v2.yaml')
  const text = canary ? yaml.dump(withBehaviour(v2, canary.behaviour, canary.opts ?? {})) : v2
  return { ns, manifest: writeManifest(text) }
}

/** seedNamespace for one test file: every namespace it makes is deleted after the file's tests. */
export function seedsDeletedAfterAll(): (prefix: string) => Promise<Seed> {
  const namespaces: string[] = []
  afterAll(async () => {
    await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
  })
  return async (prefix) => {
    const s = await seedNamespace(prefix)
    namespaces.push(s.ns)
    return s
  }
}

/** The inputs of a deploy of v2 on the seed scenario. */
export function seedInputs(seed: Seed, extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'deploy',
    manifests: seed.manifest,
    'virtual-service': VS,
    namespace: seed.ns,
    'version-label': 'istio-test-version',
    ...extra
  }
}

export type Route = Array<{ destination: { host: string; subset?: string }; weight?: number }>

export function routeOf(vs: KubeObject): Route {
  return vs.spec?.http?.[0]?.route ?? []
}

/** The canary (v2) weight on the route: undefined when the canary destination is absent. */
export function canaryWeightOf(vs: KubeObject): number | undefined {
  const d = routeOf(vs).find((r) => r.destination.subset === 'v2')
  return d ? (d.weight ?? 0) : undefined
}

export interface ClusterView {
  vs: KubeObject
  dr: KubeObject
  canary?: KubeObject
  stable?: KubeObject
  lease?: KubeObject
  state?: RolloutState
}

export async function view(ns: string): Promise<ClusterView> {
  const c = testCluster()
  const [vs, dr, canary, stable, lease] = await Promise.all([
    c.getIstio('VirtualService', ns, VS),
    c.getIstio('DestinationRule', ns, DR),
    c.getDeployment(ns, CANARY_DEPLOYMENT),
    c.getDeployment(ns, STABLE_DEPLOYMENT),
    c.getLease(ns, LEASE)
  ])
  if (!vs || !dr) throw new Error(`seed objects missing in ${ns}`)
  return { vs, dr, canary, stable, lease, state: stateOf(vs) }
}

/** resourceVersions (and the Deployments' generations) of everything a run could write. */
export function versionsOf(v: ClusterView): Record<string, string | number | undefined> {
  return {
    vs: v.vs.metadata.resourceVersion,
    dr: v.dr.metadata.resourceVersion,
    lease: v.lease?.metadata.resourceVersion,
    canaryGeneration: v.canary?.metadata.generation,
    canaryExists: v.canary ? 1 : 0,
    stableGeneration: v.stable?.metadata.generation
  }
}

/** Whether the Lease is absent or no longer held by anyone. */
export function leaseFree(lease: KubeObject | undefined): boolean {
  if (!lease) return true
  const renew = Date.parse(String(lease.spec?.renewTime ?? '').replace(/(\.\d{3})\d+/, '$1'))
  const expired = Number.isFinite(renew) && renew + Number(lease.spec?.leaseDurationSeconds ?? 0) * 1000 < Date.now()
  return !lease.spec?.holderIdentity || expired
}

/**
 * Asserts the namespace is back on the stable version: 100 % on v1 (the only destination), no v2
 * subset in the DestinationRule, the canary Deployment absent or scaled to 0, the lock free and the
 * rollout state in a terminal rolled-back/aborted phase.
 */
export async function expectBackOnStable(
  ns: string,
  phases: Array<RolloutState['phase']> = ['rolled-back', 'aborted']
): Promise<ClusterView> {
  const v = await view(ns)
  const route = routeOf(v.vs)
  expect(route.map((r) => r.destination.subset)).toEqual(['v1'])
  expect(route[0].weight ?? 100).toBe(100)
  expect((v.dr.spec.subsets as Array<{ name: string }>).map((s) => s.name)).toEqual(['v1'])
  if (v.canary) expect(v.canary.spec.replicas).toBe(0)
  expect(v.stable?.spec.replicas).toBe(1)
  expect(leaseFree(v.lease)).toBe(true)
  expect(phases).toContain(v.state?.phase)
  return v
}

export interface Observed {
  /** When the event reached us (Date.now()). */
  at: number
  type: string
  obj: KubeObject
}

export interface ObjectWatch {
  events: Observed[]
  stop(): void
}

const PATHS = {
  VirtualService: (ns: string) => `/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices`,
  DestinationRule: (ns: string) => `/apis/networking.istio.io/v1/namespaces/${ns}/destinationrules`
}

/**
 * Records every version of the namespace's VirtualServices or DestinationRules from now on (a watch
 * from the current resourceVersion), in the order the apiserver stored them.
 */
export async function watchObjects(ns: string, kind: keyof typeof PATHS): Promise<ObjectWatch> {
  const c = testCluster()
  const current = kind === 'VirtualService' ? await c.getIstio(kind, ns, VS) : await c.getIstio(kind, ns, DR)
  const events: Observed[] = []
  const controller = await new Watch(kubeConfig()).watch(
    PATHS[kind](ns),
    { resourceVersion: current?.metadata.resourceVersion, allowWatchBookmarks: false },
    (type, obj) => events.push({ at: Date.now(), type, obj }),
    () => undefined
  )
  return { events, stop: () => controller.abort() }
}
