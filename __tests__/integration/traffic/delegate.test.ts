/**
 * Delegate VirtualServices: a root VirtualService (hosts, gateway; the platform team's, in its own
 * namespace) hands route "reviews" to a delegate in the application's namespace. The rollout drives
 * the delegate, named directly or followed from a root named as `root/route`; the root is never
 * written, byte for byte. Refused before any write: a root delegating to a missing VirtualService,
 * a delegate nothing delegates to, a delegate whose host resolves to another Service than the
 * DestinationRule's, a delegate in another namespace.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { CancelledError } from '../../../src/commands/runtime.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { runAction, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { versionDeployment } from '../../support/reviews-fixtures.js'
import { applyManifests, createTestNamespace, deleteNamespace, waitFor, waitForDeploymentCondition } from '../../support/test-cluster.js'

const deployment = (version: string): string => versionDeployment(version, { labelled: false })

const app = `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, annotations: { owner: books-team } }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets:
    - name: v1
      labels: { version: v1 }
`

/** The delegate: no hosts, two routes (a pinned one and the one to split). */
const delegate = (host = 'reviews') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-routes
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  http:
    - name: pinned
      match: [{ uri: { prefix: /reviews/legacy } }]
      rewrite: { uri: /legacy }
      route: [{ destination: { host: ${host}, subset: v1 } }]
    - name: primary
      match: [{ uri: { prefix: /reviews } }]
      retries: { attempts: 3, retryOn: 5xx }
      route:
        - destination: { host: ${host}, subset: v1, port: { number: 9080 } }
`

/** A root in namespace `ns` delegating route "reviews" to `target` (name, namespace). */
const root = (name: string, target: string, targetNs: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  annotations: { owner: platform-team }
spec:
  hosts: [shop.example.com]
  gateways: [istio-ingress/public]
  http:
    - name: static
      match: [{ uri: { prefix: /static } }]
      route: [{ destination: { host: static-assets.cdn.svc.cluster.local } }]
    - name: reviews
      match: [{ uri: { prefix: /reviews } }]
      headers: { request: { set: { x-entry: shop } } }
      delegate: { name: ${target}, namespace: ${targetNs} }
`

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

/** The application's namespace (Deployment, Service, DestinationRule, delegate) and the platform's (root). */
async function setup(prefix: string, opts: { delegate?: string; rootIn?: 'platform' | 'app' | 'none'; rootTarget?: string } = {}) {
  const ns = await createTestNamespace(`${prefix}-app`)
  const platform = await createTestNamespace(`${prefix}-edge`)
  namespaces.push(ns, platform)
  await applyManifests(ns, [deployment('v1'), app, opts.delegate ?? delegate()])
  const where = opts.rootIn ?? 'platform'
  if (where !== 'none') await applyManifests(where === 'app' ? ns : platform, root('shop', opts.rootTarget ?? 'reviews-routes', ns))
  await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
  return { ns, platform }
}

function stored(o: KubeObject): string {
  const c = structuredClone(o)
  delete c.metadata.resourceVersion
  delete c.metadata.generation
  delete c.metadata.managedFields
  return JSON.stringify(c)
}

const canaryOf = (vs: KubeObject, subset = 'v2'): number | undefined => {
  const route = (vs.spec.http as Array<{ name?: string; route: Array<{ destination: { subset: string }; weight?: number }> }>).find(
    (r) => r.name === 'primary'
  )!.route
  const d = route.find((x) => x.destination.subset === subset)
  return d ? (route.length === 1 ? 100 : (d.weight ?? 0)) : undefined
}

describe('delegate VirtualServices', () => {
  it('named directly: the weights and the state are written on the delegate; the root in its own namespace is not touched', async () => {
    const { ns, platform } = await setup('deleg-child')
    const cluster = testCluster()
    const rootBefore = stored((await cluster.getIstio('VirtualService', platform, 'shop'))!)
    const before = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    const seen: number[] = []
    const { report, log } = await runAction(
      {
        'virtual-service': 'reviews-routes/primary',
        manifests: writeManifest(deployment('v2')),
        namespace: ns,
        steps: '25,100',
        settle: '0s',
        interval: '1s'
      },
      { onProgress: (r) => void (r.state?.phase === 'progressing' && seen.push(r.state.canaryWeight)) }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect([...new Set(seen)]).toEqual([0, 25, 100])
    expect(log.lines.join('\n')).toContain(
      `VirtualService ${ns}/reviews-routes is a delegate of VirtualService ${platform}/shop route "reviews"`
    )
    expect(stored((await cluster.getIstio('VirtualService', platform, 'shop'))!)).toBe(rootBefore)
    const after = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    expect(stateOf(after)?.phase).toBe('promoted')
    expect(after.spec.http[1].route).toEqual([{ destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } }, weight: 100 }])
    const rest = (o: KubeObject): string => {
      const c = JSON.parse(stored(o)) as KubeObject
      delete c.metadata.annotations?.[STATE_ANNOTATION]
      delete c.spec.http[1].route
      return JSON.stringify(c)
    }
    expect(rest(after)).toBe(rest(before))
  })

  it('named through the root (root/route): the delegation is followed; abort rolls the delegate back; the root stays byte for byte', async () => {
    const { ns } = await setup('deleg-root', {
      delegate: delegate().replace(/ {4}- name: pinned[\s\S]*?(?= {4}- name: primary)/, ''),
      rootIn: 'app'
    })
    const cluster = testCluster()
    const rootBefore = stored((await cluster.getIstio('VirtualService', ns, 'shop'))!)
    const childBefore = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    const first = await runAction({
      'virtual-service': 'shop/reviews',
      manifests: writeManifest(deployment('v2')),
      namespace: ns,
      steps: '30,pause,100',
      settle: '0s',
      interval: '1s'
    })
    expect(first.report.error).toBeUndefined()
    expect(first.report.result).toBe('paused')
    expect(first.report.virtualService).toBe('reviews-routes')
    expect(first.log.lines.join('\n')).toContain(
      `route "reviews" (#1) of VirtualService ${ns}/shop delegates to VirtualService ${ns}/reviews-routes: the weights are written there`
    )
    expect(canaryOf((await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!)).toBe(30)

    const { report } = await runAction({ 'virtual-service': 'shop/reviews', command: 'abort', namespace: ns, settle: '0s' })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('aborted')
    expect(stored((await cluster.getIstio('VirtualService', ns, 'shop'))!)).toBe(rootBefore)
    const after = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    expect(after.spec.http[0].route).toEqual([{ destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } }, weight: 100 }])
    const rest = (o: KubeObject): string => {
      const c = JSON.parse(stored(o)) as KubeObject
      delete c.metadata.annotations?.[STATE_ANNOTATION]
      delete c.spec.http[0].route
      return JSON.stringify(c)
    }
    expect(rest(after)).toBe(rest(childBefore))
  })

  it('SIGINT mid-step and drift work on the delegate as on any VirtualService', async () => {
    const { ns } = await setup('deleg-sig')
    const cluster = testCluster()
    const controller = new AbortController()
    const inputs = {
      'virtual-service': 'reviews-routes/primary',
      manifests: writeManifest(deployment('v2')),
      namespace: ns,
      steps: '40,100',
      interval: '60s',
      'check-every': '2s',
      settle: '0s'
    }
    const run = runAction(inputs, { signal: controller.signal })
    await waitFor(async () => canaryOf((await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!) === 40, {
      what: 'the delegate at 40 %'
    })
    controller.abort(new CancelledError('SIGINT'))
    expect((await run).report.error?.kind).toBe('CancelledError')
    const cancelled = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    expect([canaryOf(cancelled), stateOf(cancelled)?.phase]).toEqual([0, 'rolling-back'])
    expect(
      (await runAction({ 'virtual-service': 'reviews-routes', command: 'abort', namespace: ns, settle: '0s' })).report.error
    ).toBeUndefined()
    expect(canaryOf((await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!)).toBeUndefined()

    // Drift: someone sets the delegate's split by hand mid-bake.
    const drifting = runAction({ ...inputs, manifests: writeManifest(deployment('v3')), version: 'v3' })
    await waitFor(async () => canaryOf((await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!, 'v3') === 40, {
      what: 'v3 at 40 %'
    })
    const live = (await cluster.getIstio('VirtualService', ns, 'reviews-routes'))!
    for (const d of live.spec.http[1].route as Array<{ weight: number }>) d.weight = 50
    await cluster.replaceIstio(live)
    const { report } = await drifting
    expect(report.result).toBe('rolled-back')
    expect(report.error?.message).toMatch(
      /^drift: route "primary" of VirtualService .*\/reviews-routes has canary weight 50, but this rollout last set 40/
    )
  })

  describe('bad input: refused before any write, nothing changed', () => {
    const cases: Array<[string, Parameters<typeof setup>[1], string, RegExp]> = [
      [
        'a root delegating to a missing VirtualService',
        { rootIn: 'app', rootTarget: 'reviews-gone' },
        'shop/reviews',
        /^route "reviews" \(#1\) of VirtualService .*\/shop delegates to VirtualService ".*\/reviews-gone", which was not found/
      ],
      [
        'a delegate that no VirtualService delegates to',
        { rootIn: 'none' },
        'reviews-routes/primary',
        /^VirtualService .*\/reviews-routes has no hosts, so Istio uses it only as a delegate, but no VirtualService delegates to it/
      ],
      [
        "a delegate whose host resolves to another Service than the DestinationRule's",
        { delegate: delegate('reviews.elsewhere.svc.cluster.local') },
        'reviews-routes/primary',
        /routes to host "reviews\.elsewhere\.svc\.cluster\.local", which is not a Service of namespace/
      ],
      [
        'a root whose route has several delegate routes to choose from',
        { rootIn: 'app' },
        'shop/reviews',
        /which has 2 http routes; which one to split is ambiguous\. Name the delegate and its route in input 'virtual-service' instead: "reviews-routes\/<route>"/
      ]
    ]
    it.each(cases)('%s', async (_what, opts, target, message) => {
      const { ns, platform } = await setup('deleg-bad', opts)
      const prints = await Promise.all([namespaceFingerprint(ns), namespaceFingerprint(platform)])
      const { report } = await runAction({ 'virtual-service': target, manifests: writeManifest(deployment('v2')), namespace: ns })
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(message)
      for (const p of prints) expect(await namespaceWrites(p)).toEqual(NO_WRITES)
    })
  })
})
