/**
 * Host-level split: the VirtualService route's destinations are per-version Services
 * (`reviews-v1`, `reviews-v2`), no subsets. The canary's Service comes with the manifests and is
 * applied before any weight names it; a DestinationRule gives it the stable host's traffic policy
 * when asked. Everything the action does not own (other routes, matches, retries, mirror, headers,
 * labels, annotations, the stable Service and DestinationRule) is compared as stored, before and after.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { runAction, snapshot, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { versionDeployment, versionService } from '../../support/reviews-fixtures.js'
import { applyManifests, createTestNamespace, deleteNamespace, waitFor, waitForDeploymentCondition } from '../../support/test-cluster.js'

const objects = `
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews-v1
  labels: { team: books }
spec:
  host: reviews-v1.NS.svc.cluster.local
  trafficPolicy:
    connectionPool: { http: { http1MaxPendingRequests: 100 } }
    outlierDetection: { consecutive5xxErrors: 7, interval: 5m }
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  hosts: [reviews]
  http:
    - name: jason
      match: [{ headers: { end-user: { exact: jason } } }]
      route: [{ destination: { host: reviews-v1 } }]
      fault: { delay: { percentage: { value: 10 }, fixedDelay: 2s } }
    - name: primary
      route:
        - destination: { host: reviews-v1.NS.svc.cluster.local, port: { number: 9080 } }
          headers: { response: { set: { x-served-by: reviews } } }
      retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,reset" }
      timeout: 10s
      mirror: { host: reviews-shadow }
      mirrorPercentage: { value: 5 }
    - name: ghost
      match: [{ uri: { prefix: /old } }]
      route: [{ destination: { host: reviews-v0 } }]
`

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

async function setup(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await applyManifests(ns, [versionDeployment('v1'), versionService('v1'), objects.replaceAll('NS', ns)])
  await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
  return ns
}

/** The canary's Deployment and Service, as a release would carry them. */
function canaryManifests(serviceText = versionService('v2')): string {
  return writeManifest(`${versionDeployment('v2')}---\n${serviceText}`)
}

/** The object without what the apiserver or the action may change. */
function untouched(obj: KubeObject): unknown {
  const copy = structuredClone(obj) as KubeObject
  delete copy.metadata.resourceVersion
  delete copy.metadata.generation
  delete copy.metadata.managedFields
  delete copy.metadata.annotations?.[STATE_ANNOTATION]
  return copy
}

function withPrimary(vs: KubeObject, route: unknown): unknown {
  const copy = untouched(vs) as KubeObject
  copy.spec.http[1].route = route
  return copy
}

function inputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return { manifests: canaryManifests(), 'virtual-service': 'reviews', namespace: ns, route: 'primary', ...extra }
}

describe('host-level split: per-version Services instead of subsets', () => {
  it("promotes reviews-v2 step by step and changes nothing but the route's destinations, the canary's Service and its DestinationRule", async () => {
    const ns = await setup('host-promote')
    const cluster = testCluster()
    const vsBefore = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const drBefore = await snapshot(cluster, 'DestinationRule', ns, 'reviews-v1')
    const svcBefore = await cluster.getService(ns, 'reviews-v1')
    const seen: number[] = []
    const { report } = await runAction(
      { ...inputs(ns), steps: '10,60,100', retire: 'delete', 'copy-traffic-policy': 'true' },
      {
        onProgress: (r) => {
          if (r.state?.phase === 'progressing') seen.push(r.state.canaryWeight)
        }
      }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(report.state?.stable).toMatchObject({ version: 'v1', subset: 'reviews-v1', deployment: 'reviews-v1' })
    expect([...new Set(seen)]).toEqual([0, 10, 60, 100])

    const vsAfter = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const state = stateOf(vsAfter)
    expect(state).toMatchObject({
      backends: 'services',
      destinationRule: '',
      stable: { subset: 'reviews-v1' },
      canary: { subset: 'reviews-v2' }
    })
    // The canary's destination is a copy of the stable one (port, headers, host form kept), now alone at 100.
    expect(vsAfter.spec.http[1].route).toEqual([
      {
        destination: { host: `reviews-v2.${ns}.svc.cluster.local`, port: { number: 9080 } },
        headers: { response: { set: { 'x-served-by': 'reviews' } } },
        weight: 100
      }
    ])
    expect(withPrimary(vsAfter, null)).toEqual(withPrimary(vsBefore, null))
    expect(JSON.stringify(vsAfter.spec.http[0])).toBe(JSON.stringify(vsBefore.spec.http[0]))

    // The stable host's DestinationRule and Service are not ours: byte for byte the same, kept.
    expect(untouched(await snapshot(cluster, 'DestinationRule', ns, 'reviews-v1'))).toEqual(untouched(drBefore))
    expect(untouched((await cluster.getService(ns, 'reviews-v1'))!)).toEqual(untouched(svcBefore!))
    // The canary's Service as the manifests carry it, and its DestinationRule with the copied policy.
    const canarySvc = await cluster.getService(ns, 'reviews-v2')
    expect(canarySvc?.spec.selector).toEqual({ app: 'reviews', version: 'v2' })
    const copy = await snapshot(cluster, 'DestinationRule', ns, 'reviews-v2')
    expect(copy.spec).toEqual({ host: `reviews-v2.${ns}.svc.cluster.local`, trafficPolicy: drBefore.spec.trafficPolicy })
    // Route "jason" (not ours) still sends to reviews-v1: the old version is kept, and said so.
    expect(report.warnings.join('\n')).toMatch(
      /the old version v1 was not retired: Service reviews-v1 still serves VirtualService .*\/reviews http route "jason"/
    )
    expect((await cluster.getDeployment(ns, 'reviews-v1'))?.spec.replicas).toBe(1)
    expect(report.state?.retirement).toMatchObject({ retired: false, heldBy: [expect.stringMatching(/route "jason"$/)] })
  })

  it('rolls back on abort: the route is as it was, the canary scaled to 0, its Service and DestinationRule (ours) removed with retire: delete', async () => {
    const ns = await setup('host-abort')
    const cluster = testCluster()
    const vsBefore = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const paused = await runAction({ ...inputs(ns), steps: '20,pause,100', retire: 'delete', 'copy-traffic-policy': 'true' })
    expect(paused.report.error).toBeUndefined()
    expect(paused.report.result).toBe('paused')
    const mid = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    expect(
      mid.spec.http[1].route.map((d: { destination: { host: string }; weight: number }) => [d.destination.host.split('.')[0], d.weight])
    ).toEqual([
      ['reviews-v1', 80],
      ['reviews-v2', 20]
    ])
    expect(await cluster.getService(ns, 'reviews-v2')).toBeDefined()

    const { report } = await runAction({ command: 'abort', 'virtual-service': 'reviews', namespace: ns, retire: 'delete' })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('aborted')
    const vsAfter = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    expect(withPrimary(vsAfter, null)).toEqual(withPrimary(vsBefore, null))
    // The stable destination is back alone, at weight 100 (written explicitly).
    expect(vsAfter.spec.http[1].route).toEqual([{ ...vsBefore.spec.http[1].route[0], weight: 100 }])
    expect(await cluster.getService(ns, 'reviews-v2')).toBeUndefined()
    expect(await cluster.getIstio('DestinationRule', ns, 'reviews-v2')).toBeUndefined()
    expect((await cluster.getDeployment(ns, 'reviews-v2'))?.spec.replicas).toBe(0)
    expect(await cluster.getService(ns, 'reviews-v1')).toBeDefined()
  })

  it('a cancelled run (SIGINT) mid-step takes the canary out of the route and keeps its Service with retire: scale-down', async () => {
    const ns = await setup('host-cancel')
    const cluster = testCluster()
    const vsBefore = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    const cancel = new AbortController()
    const run = runAction({ ...inputs(ns), steps: '30,100', interval: '60s' }, { signal: cancel.signal })
    await waitFor(
      async () => {
        const vs = await snapshot(cluster, 'VirtualService', ns, 'reviews')
        return stateOf(vs)?.canaryWeight === 30
      },
      { what: `the rollout at 30 % in ${ns}` }
    )
    cancel.abort()
    const cancelled = await run
    expect(cancelled.report.result).toBe('unchanged')
    // On cancellation the canary goes to weight 0 at once (make before break: its destination stays)...
    const zero = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    expect(
      zero.spec.http[1].route.map((d: { destination: { host: string }; weight: number }) => [d.destination.host.split('.')[0], d.weight])
    ).toEqual([
      ['reviews-v1', 100],
      ['reviews-v2', 0]
    ])
    // ...and the post step (the abort command) finishes the rollback.
    const { report } = await runAction({ command: 'abort', 'virtual-service': 'reviews', namespace: ns })
    expect(report.error).toBeUndefined()
    expect(report.state?.phase).toMatch(/^(rolled-back|aborted)$/)
    const vsAfter = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    expect(vsAfter.spec.http[1].route).toEqual([{ ...vsBefore.spec.http[1].route[0], weight: 100 }])
    expect(withPrimary(vsAfter, null)).toEqual(withPrimary(vsBefore, null))
    expect(await cluster.getService(ns, 'reviews-v2')).toBeDefined()
    expect((await cluster.getDeployment(ns, 'reviews-v2'))?.spec.replicas).toBe(0)
  })

  it('drift: a hand edit of the per-version weights stops the rollout, which rolls back instead of fighting', async () => {
    const ns = await setup('host-drift')
    const cluster = testCluster()
    const run = runAction({ ...inputs(ns), steps: '20,100', interval: '60s', 'check-every': '1s' })
    await waitFor(async () => stateOf(await snapshot(cluster, 'VirtualService', ns, 'reviews'))?.canaryWeight === 20, {
      what: `the rollout at 20 % in ${ns}`
    })
    for (let attempt = 0; ; attempt++) {
      const vs = await snapshot(cluster, 'VirtualService', ns, 'reviews')
      vs.spec.http[1].route[0].weight = 50
      vs.spec.http[1].route[1].weight = 50
      try {
        await cluster.replaceIstio(vs)
        break
      } catch (err) {
        if (attempt > 5) throw err
      }
    }
    const { report } = await run
    expect(report.result).toBe('rolled-back')
    expect(report.state?.reason).toMatch(/^drift: route "primary" of VirtualService .* has canary weight 50, but this rollout last set 20/)
    const vsAfter = await snapshot(cluster, 'VirtualService', ns, 'reviews')
    expect(vsAfter.spec.http[1].route.map((d: { destination: { host: string } }) => d.destination.host.split('.')[0])).toEqual([
      'reviews-v1'
    ])
  })

  it('with the canary Service already in the cluster and no other route on reviews-v1: retires v1 and keeps both Services (not its own)', async () => {
    const ns = await createTestNamespace('host-existing')
    namespaces.push(ns)
    const vs = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http: [{ name: primary, route: [{ destination: { host: reviews-v1 } }] }]
`
    await applyManifests(ns, [versionDeployment('v1'), versionService('v1'), versionService('v2'), vs])
    await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
    const cluster = testCluster()
    const canaryBefore = await cluster.getService(ns, 'reviews-v2')
    const { report } = await runAction({
      manifests: writeManifest(versionDeployment('v2')),
      'virtual-service': 'reviews',
      namespace: ns,
      steps: '50,100',
      retire: 'delete'
    })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(report.warnings).toEqual([])
    expect((await snapshot(cluster, 'VirtualService', ns, 'reviews')).spec.http[0].route).toEqual([
      { destination: { host: 'reviews-v2' }, weight: 100 }
    ])
    expect(await cluster.getDeployment(ns, 'reviews-v1')).toBeUndefined()
    // Neither Service was made by the action: both stay as they were.
    expect(await cluster.getService(ns, 'reviews-v1')).toBeDefined()
    expect(untouched((await cluster.getService(ns, 'reviews-v2'))!)).toEqual(untouched(canaryBefore!))
  })

  describe('bad input: a clear error, nothing changed', () => {
    let ns: string
    it('sets up', async () => {
      ns = await setup('host-bad')
    })

    const cases: Array<[string, () => Record<string, string>, RegExp]> = [
      [
        'a canary Service that does not select the canary pods',
        () => inputs(ns, { manifests: canaryManifests(versionService('v2', '{ app: reviews, version: v3 }')) }),
        /^Service .*\/reviews-v2 selects "app=reviews,version=v3", which the canary pods \(labels "app=reviews,version=v2"\) do not carry/
      ],
      [
        'a canary Service that also selects the stable pods',
        () => inputs(ns, { manifests: canaryManifests(versionService('v2', '{ app: reviews }')) }),
        /^Service .*\/reviews-v2 selects "app=reviews", which the pods of Deployment "reviews-v1" .* also carry/
      ],
      [
        'no canary Service anywhere',
        () => inputs(ns, { manifests: writeManifest(versionDeployment('v2')) }),
        /^Service .*\/reviews-v2, the canary's, was not found and input 'manifests' does not carry it/
      ],
      [
        'a route without its stable Service',
        () => inputs(ns, { route: 'ghost' }),
        /^Service .*\/reviews-v0 was not found; route "ghost" \(#2\) of VirtualService .*\/reviews routes to it/
      ]
    ]
    it.each(cases)('%s', async (_what, input, message) => {
      const before = await namespaceFingerprint(ns)
      const { report } = await runAction(input())
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(message)
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    })

    it('a host the VirtualService shares with an HTTPRoute (GAMMA parent: Service reviews)', async () => {
      await applyManifests(ns, [
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews-gamma }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules: [{ backendRefs: [{ name: reviews-v1, port: 9080 }] }]
`
      ])
      const before = await namespaceFingerprint(ns)
      const { report } = await runAction(inputs(ns))
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(
        /^VirtualService .*\/reviews and HTTPRoute .*\/reviews-gamma both route host "reviews\..*\.svc\.cluster\.local"; Istio leaves the result of both undefined/
      )
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    })
  })
})
