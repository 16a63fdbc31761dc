/**
 * Gateway API HTTPRoute: `http-route` instead of `virtual-service`. The canary is a weighted
 * backendRef in one rule of the HTTPRoute over per-version Services, on the same code path as the
 * host-level split. The fixture has both parent kinds (a Gateway, north-south; the Service
 * `reviews`, east-west / GAMMA), other rules, matches, filters, a foreign backendRef, labels and
 * annotations: everything but the weights of one rule's backendRefs is compared as stored.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { runAction, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { reviewsService, versionDeployment, versionService } from '../../support/reviews-fixtures.js'
import {
  applyManifests,
  clients,
  createTestNamespace,
  deleteNamespace,
  waitFor,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'

const objects = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: books-gateway }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP, hostname: "books.example.com" }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  parentRefs:
    - { group: "", kind: Service, name: reviews, port: 9080 }
    - { name: books-gateway, sectionName: http }
  hostnames: ["books.example.com"]
  rules:
    - name: jason
      matches: [{ headers: [{ name: end-user, value: jason }] }]
      filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { add: [{ name: x-tester, value: "yes" }] } }]
      backendRefs: [{ name: reviews-v1, port: 9080 }]
    - name: primary
      matches: [{ path: { type: PathPrefix, value: / } }]
      timeouts: { request: 10s }
      backendRefs:
        - name: reviews-v1
          port: 9080
          filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { set: [{ name: x-served-by, value: reviews }] } }]
        - { name: reviews-archive, namespace: archive, port: 9080, weight: 0 }
    - name: moved
      matches: [{ path: { type: PathPrefix, value: /old } }]
      filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /new }, statusCode: 301 } }]
`

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

async function setup(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await applyManifests(ns, [versionDeployment('v1'), reviewsService('reviews', '{ app: reviews }'), versionService('v1'), objects])
  await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
  return ns
}

function canaryManifests(selector = '{ app: reviews, version: v2 }'): string {
  return writeManifest(`${versionDeployment('v2')}---\n${versionService('v2', selector)}`)
}

function inputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return { manifests: canaryManifests(), 'http-route': 'reviews', namespace: ns, route: 'primary', ...extra }
}

async function httpRoute(ns: string): Promise<KubeObject> {
  const route = await testCluster().getIstio('HTTPRoute', ns, 'reviews')
  if (!route) throw new Error(`HTTPRoute ${ns}/reviews not found`)
  return route
}

/** The HTTPRoute without what the apiserver or the action may change, and without rule `owned`'s backendRefs. */
function untouched(route: KubeObject, owned = 1): unknown {
  const copy = structuredClone(route)
  delete copy.metadata.resourceVersion
  delete copy.metadata.generation
  delete copy.metadata.managedFields
  delete copy.metadata.annotations?.[STATE_ANNOTATION]
  // istiod (running in the local cluster) writes the route's status as it programs it.
  delete copy.status
  delete copy.spec.rules[owned].backendRefs
  return copy
}

function weights(route: KubeObject, rule = 1): Array<[string, number | undefined]> {
  return route.spec.rules[rule].backendRefs.map((b: { name: string; weight?: number }) => [b.name, b.weight])
}

describe('Gateway API HTTPRoute over per-version Services', () => {
  it('promotes reviews-v2 step by step; only the backendRefs of rule "primary" and the state change', async () => {
    const ns = await setup('hr-promote')
    const before = await httpRoute(ns)
    const seen: number[] = []
    const { report } = await runAction(
      { ...inputs(ns), steps: '10,60,100' },
      {
        onProgress: (r) => {
          if (r.state?.phase === 'progressing') seen.push(r.state.canaryWeight)
        }
      }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect([...new Set(seen)]).toEqual([0, 10, 60, 100])
    // The test namespace injects sidecars: the Service parent's callers apply the weights.
    expect(report.warnings.join('\n')).not.toMatch(/a parent of HTTPRoute/)

    const after = await httpRoute(ns)
    expect(untouched(after)).toEqual(untouched(before))
    expect(JSON.stringify(after.spec.rules[0])).toBe(JSON.stringify(before.spec.rules[0]))
    expect(JSON.stringify(after.spec.parentRefs)).toBe(JSON.stringify(before.spec.parentRefs))
    // The canary's backendRef is a copy of the stable one (port, filters); the foreign one is as it was.
    expect(after.spec.rules[1].backendRefs).toEqual([
      before.spec.rules[1].backendRefs[1],
      { ...before.spec.rules[1].backendRefs[0], name: 'reviews-v2', weight: 100 }
    ])
    expect(stateOf(after)).toMatchObject({ phase: 'promoted', backends: 'services', route: { index: 1, name: 'primary' } })
    // Rule "jason" still sends to reviews-v1: the old version is kept, and said so.
    expect(report.warnings.join('\n')).toMatch(
      /the old version v1 was not retired: Service reviews-v1 still serves HTTPRoute .*\/reviews rule "jason"/
    )
  })

  it('rolls back on abort: rule "primary" is back on reviews-v1 alone and the canary is scaled to 0', async () => {
    const ns = await setup('hr-abort')
    const cluster = testCluster()
    const before = await httpRoute(ns)
    const paused = await runAction({ ...inputs(ns), steps: '25,pause,100' })
    expect(paused.report.error).toBeUndefined()
    expect(paused.report.result).toBe('paused')
    expect(weights(await httpRoute(ns))).toEqual([
      ['reviews-v1', 75],
      ['reviews-archive', 0],
      ['reviews-v2', 25]
    ])
    const { report } = await runAction({ command: 'abort', 'http-route': 'reviews', namespace: ns })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('aborted')
    const after = await httpRoute(ns)
    expect(untouched(after)).toEqual(untouched(before))
    expect(after.spec.rules[1].backendRefs).toEqual([
      { ...before.spec.rules[1].backendRefs[0], weight: 100 },
      before.spec.rules[1].backendRefs[1]
    ])
    expect((await cluster.getDeployment(ns, 'reviews-v2'))?.spec.replicas).toBe(0)
    // retire: scale-down keeps the canary's Service.
    expect(await cluster.getService(ns, 'reviews-v2')).toBeDefined()
  })

  it('a cancelled run (SIGINT) mid-step sets the canary to 0 at once; the post step (abort) finishes the rollback', async () => {
    const ns = await setup('hr-cancel')
    const cancel = new AbortController()
    const run = runAction({ ...inputs(ns), steps: '30,100', interval: '60s' }, { signal: cancel.signal })
    await waitFor(async () => stateOf(await httpRoute(ns))?.canaryWeight === 30, { what: `the rollout at 30 % in ${ns}` })
    cancel.abort()
    const cancelled = await run
    expect(cancelled.report.result).toBe('unchanged')
    expect(weights(await httpRoute(ns))).toEqual([
      ['reviews-v1', 100],
      ['reviews-archive', 0],
      ['reviews-v2', 0]
    ])
    const { report } = await runAction({ command: 'abort', 'http-route': 'reviews', namespace: ns })
    expect(report.error).toBeUndefined()
    expect(weights(await httpRoute(ns))).toEqual([
      ['reviews-v1', 100],
      ['reviews-archive', 0]
    ])
  })

  it('drift: a hand edit of the weights stops the rollout, which rolls back instead of fighting', async () => {
    const ns = await setup('hr-drift')
    const cluster = testCluster()
    const run = runAction({ ...inputs(ns), steps: '20,100', interval: '60s', 'check-every': '1s' })
    await waitFor(async () => stateOf(await httpRoute(ns))?.canaryWeight === 20, { what: `the rollout at 20 % in ${ns}` })
    for (let attempt = 0; ; attempt++) {
      const route = await httpRoute(ns)
      route.spec.rules[1].backendRefs[0].weight = 300 // relative weights: 300/320 no longer what the rollout set
      try {
        await cluster.replaceIstio(route)
        break
      } catch (err) {
        if (attempt > 5) throw err
      }
    }
    const { report } = await run
    expect(report.result).toBe('rolled-back')
    expect(report.state?.reason).toMatch(
      /^drift: "primary" of HTTPRoute .*\/reviews has canary weight 20 \(stable 300\), but this rollout last set 20/
    )
    expect(weights(await httpRoute(ns)).map(([n]) => n)).toEqual(['reviews-v1', 'reviews-archive'])
  })

  describe('bad input: a clear error, nothing changed', () => {
    let ns: string
    it('sets up', async () => {
      ns = await setup('hr-bad')
    })
    const cases: Array<[string, () => Promise<Record<string, string>>, RegExp]> = [
      [
        'a rule without the stable backend',
        async () => inputs(ns, { route: 'moved' }),
        /^rule "moved" \(#2\) of HTTPRoute .*\/reviews has no backendRefs/
      ],
      [
        'a canary Service that does not select the canary pods',
        async () => inputs(ns, { manifests: canaryManifests('{ app: reviews, version: v3 }') }),
        /^Service .*\/reviews-v2 selects "app=reviews,version=v3", which the canary pods \(labels "app=reviews,version=v2"\) do not carry/
      ],
      [
        'a host covered by the HTTPRoute and a VirtualService',
        async () => {
          await applyManifests(ns, [
            `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: reviews-legacy }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews-v1 } }] }]
`
          ])
          return inputs(ns)
        },
        /^HTTPRoute .*\/reviews and VirtualService .*\/reviews-legacy both route host "reviews\..*\.svc\.cluster\.local"; Istio leaves the result of both undefined/
      ]
    ]
    it('warns when a Service parent is in ambient mode without a waypoint, and not once it uses one', async () => {
      const label = async (labels: Record<string, string>): Promise<void> => {
        const svc = await clients.core.readNamespacedService({ name: 'reviews', namespace: ns })
        svc.metadata!.labels = { ...svc.metadata!.labels, ...labels }
        await clients.core.replaceNamespacedService({ name: 'reviews', namespace: ns, body: svc })
      }
      await label({ 'istio.io/dataplane-mode': 'ambient' })
      const first = await runAction({ ...inputs(ns), 'dry-run': 'true' })
      expect(first.report.error).toBeUndefined()
      expect(first.report.warnings.join('\n')).toMatch(
        /Service reviews, a parent of HTTPRoute reviews, is in ambient mode but uses no waypoint .* ztunnel does not apply HTTP routes/
      )
      await label({ 'istio.io/use-waypoint': 'waypoint' })
      const second = await runAction({ ...inputs(ns), 'dry-run': 'true' })
      expect(second.report.error).toBeUndefined()
      expect(second.report.warnings.join('\n')).not.toMatch(/a parent of HTTPRoute/)
    })

    it.each(cases)('%s', async (_what, input, message) => {
      const given = await input()
      const before = await namespaceFingerprint(ns)
      const { report } = await runAction(given)
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(message)
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    })
  })
})
