/**
 * Touch only what the action owns: on a VirtualService with several routes, matches, retries,
 * timeouts, a mirror and headers, and a DestinationRule with a traffic policy and other subsets,
 * a whole rollout changes the weights and destinations of one route, one subset and one
 * annotation. Everything else is compared as the apiserver stores it, before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { applyManifests, createTestNamespace, deleteNamespace, waitForDeploymentCondition } from '../../support/test-cluster.js'
import { runAction, snapshot, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { versionDeployment } from '../../support/reviews-fixtures.js'

const deployment = (version: string): string => versionDeployment(version, { replicas: 2 })

const objects = `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  host: reviews.NS.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { http1MaxPendingRequests: 100 } }
    outlierDetection: { consecutive5xxErrors: 7, interval: 5m }
    portLevelSettings:
      - port: { number: 9080 }
        loadBalancer: { simple: LEAST_REQUEST }
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
    - name: legacy
      labels: { version: v0 }
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team, "argocd.argoproj.io/sync-options": "Prune=false" }
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
    - name: jason
      match: [{ headers: { end-user: { exact: jason } } }]
      route: [{ destination: { host: reviews, subset: legacy } }]
      fault: { delay: { percentage: { value: 10 }, fixedDelay: 2s } }
    - name: primary
      route:
        - destination: { host: reviews, subset: v1, port: { number: 9080 } }
          headers: { response: { set: { x-version: stable } } }
      retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,reset" }
      timeout: 10s
      mirror: { host: reviews-shadow }
      mirrorPercentage: { value: 5 }
      corsPolicy: { allowOrigins: [{ exact: "https://example.com" }] }
`

/** The object without what the apiserver or the action may change. */
function untouched(obj: KubeObject, ownedRoute?: number): unknown {
  const copy = structuredClone(obj) as KubeObject
  delete copy.metadata.resourceVersion
  delete copy.metadata.generation
  delete copy.metadata.managedFields
  delete copy.metadata.annotations?.[STATE_ANNOTATION]
  if (ownedRoute !== undefined) {
    // Our route keeps every field but the destinations' subsets and weights.
    for (const d of copy.spec.http[ownedRoute].route) {
      delete d.weight
      delete d.destination.subset
    }
    copy.spec.http[ownedRoute].route = copy.spec.http[ownedRoute].route.slice(0, 1)
  }
  return copy
}

describe('a rollout touches only what it owns', () => {
  let ns: string
  beforeAll(async () => {
    ns = await createTestNamespace('owned')
    await applyManifests(ns, [deployment('v1'), objects.replace('NS', ns)])
    await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
  })
  afterAll(async () => {
    await deleteNamespace(ns)
  })

  it('refuses a VirtualService with several routes unless one is named', async () => {
    const { report } = await runAction({ manifests: writeManifest(deployment('v2')), 'virtual-service': 'reviews', namespace: ns })
    expect(report.result).toBe('unchanged')
    expect(report.error?.message).toMatch(/route/)
    expect(report.error?.message).toMatch(/"jason"/)
    expect(report.error?.message).toMatch(/"primary"/)
    expect(report.error?.message).toMatch(/'route'/)
  })

  it('promotes v2 on route "primary" and leaves everything else as it was', async () => {
    const cluster = testCluster()
    const vsBefore = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const drBefore = await snapshot(cluster, 'DestinationRule', ns, 'reviews')
    const seen: number[][] = []
    const { report } = await runAction(
      { manifests: writeManifest(deployment('v2')), 'virtual-service': 'reviews', namespace: ns, route: 'primary', steps: '10,60,100' },
      {
        onProgress: (r) => {
          if (r.state?.phase === 'progressing') seen.push([100 - r.state.canaryWeight, r.state.canaryWeight])
        }
      }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    // Splits are integers summing to 100, never decreasing for the canary.
    for (const [a, b] of seen) expect(a + b).toBe(100)
    expect([...new Set(seen.map((s) => s[1]))]).toEqual([0, 10, 60, 100])

    const vsAfter = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const drAfter = await snapshot(cluster, 'DestinationRule', ns, 'reviews')
    // Written back in the version it was read in (the server's preferred one).
    expect(vsAfter.apiVersion).toBe(vsBefore.apiVersion)
    expect(untouched(vsAfter, 1)).toEqual(untouched(vsBefore, 1))
    // Our route: the v2 destination is a copy of the v1 one (port and headers kept), at 100.
    expect(vsAfter.spec.http[1].route).toEqual([
      {
        destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } },
        headers: { response: { set: { 'x-version': 'stable' } } },
        weight: 100
      }
    ])
    // The other route, its fault and its subset are byte-for-byte the same.
    expect(JSON.stringify(vsAfter.spec.http[0])).toBe(JSON.stringify(vsBefore.spec.http[0]))

    // DestinationRule: subset v1 replaced by v2; legacy, the traffic policies, labels and annotations kept.
    expect(drAfter.spec.subsets).toEqual([drBefore.spec.subsets[1], { name: 'v2', labels: { version: 'v2' } }])
    const strip = (o: KubeObject): unknown => {
      const c = untouched(o) as KubeObject
      delete c.spec.subsets
      return c
    }
    expect(strip(drAfter)).toEqual(strip(drBefore))
    expect((await cluster.getDeployment(ns, 'reviews-v1'))?.spec.replicas).toBe(0)
  })
})
