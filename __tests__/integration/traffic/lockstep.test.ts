/**
 * Several VirtualServices in lockstep: the mesh VirtualService `reviews` (host reviews, for
 * sidecars) and the ingress one `reviews-gw` (its own gateway, routing to host reviews-edge, whose
 * DestinationRule is another). Every step moves both to the same weights, in the documented order
 * (raising: the state holder first; lowering and removing: the others first); both DestinationRules
 * get the canary's subset before any route names it and lose it only after no route does; nothing
 * the rollout does not own changes, byte for byte.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { Watch } from '@kubernetes/client-node'
import { CancelledError } from '../../../src/commands/runtime.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { MEMBER_ANNOTATION } from '../../../src/traffic/istio/member-marker.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { runAction, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { versionDeployment } from '../../support/reviews-fixtures.js'
import {
  applyManifests,
  createTestNamespace,
  deleteNamespace,
  kubeConfig,
  waitFor,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'

const services = `
apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Service
metadata: { name: reviews-edge }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 7, interval: 5m }
  subsets:
    - name: v1
      labels: { version: v1 }
    - name: legacy
      labels: { version: v0 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-edge
  annotations: { owner: edge-team }
spec:
  host: reviews-edge.NS.svc.cluster.local
  trafficPolicy:
    loadBalancer: { simple: LEAST_REQUEST }
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: 50 } } }
`

const meshVs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels: { team: books }
  annotations: { owner: books-team }
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
    - name: jason
      match: [{ headers: { end-user: { exact: jason } } }]
      route: [{ destination: { host: reviews, subset: legacy } }]
    - name: primary
      route:
        - destination: { host: reviews, subset: v1, port: { number: 9080 } }
      retries: { attempts: 3, perTryTimeout: 2s, retryOn: "5xx,reset" }
      timeout: 10s
`

const gatewayVs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-gw
  labels: { team: edge }
  annotations: { owner: edge-team, "example.com/ticket": "EDGE-42" }
spec:
  hosts: [reviews.example.com]
  gateways: [istio-ingress/public]
  http:
    - name: static
      match: [{ uri: { prefix: /static } }]
      rewrite: { uri: /assets }
      route: [{ destination: { host: static-assets } }]
    - name: primary
      match: [{ uri: { prefix: / } }]
      headers: { request: { set: { x-entry: edge } } }
      route:
        - destination: { host: reviews-edge, subset: v1, port: { number: 8080 } }
      retries: { attempts: 2, retryOn: gateway-error }
`

const INPUTS = { 'virtual-service': 'reviews/primary\nreviews-gw/primary', settle: '0s', interval: '1s' }

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

async function lockstepNamespace(prefix: string, extra: string[] = [meshVs, gatewayVs], edit = (s: string) => s): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await applyManifests(ns, [versionDeployment('v1'), edit(services.replace('NS', ns)), ...extra])
  await waitForDeploymentCondition(ns, 'reviews-v1', 'Available')
  return ns
}

/** The stored object without what the apiserver sets. */
function stored(obj: KubeObject): KubeObject {
  const c = structuredClone(obj)
  delete c.metadata.resourceVersion
  delete c.metadata.generation
  delete c.metadata.managedFields
  return c
}

async function objects(ns: string): Promise<Record<string, KubeObject>> {
  const c = testCluster()
  const out: Record<string, KubeObject> = {}
  for (const [kind, name] of [
    ['VirtualService', 'reviews'],
    ['VirtualService', 'reviews-gw'],
    ['DestinationRule', 'reviews'],
    ['DestinationRule', 'reviews-edge']
  ] as const) {
    const o = await c.getIstio(kind, ns, name)
    if (o) out[`${kind} ${name}`] = o
  }
  return out
}

/** Canary (v2) weight of route "primary", undefined when it has no v2 destination. */
function canaryOf(vs: KubeObject): number | undefined {
  const route = (vs.spec.http as Array<{ name?: string; route: Array<{ destination: { subset?: string }; weight?: number }> }>).find(
    (r) => r.name === 'primary'
  )!.route
  const d = route.find((x) => x.destination.subset === 'v2')
  return d ? (route.length === 1 ? 100 : (d.weight ?? 0)) : undefined
}

interface Stored {
  rv: number
  kind: string
  name: string
  obj: KubeObject
}

/** Every stored version of the namespace's VirtualServices and DestinationRules, in etcd order. */
async function watchRouting(ns: string): Promise<{ versions: () => Stored[]; stop: () => void }> {
  const seen: Stored[] = []
  const controllers = await Promise.all(
    (['virtualservices', 'destinationrules'] as const).map((plural) =>
      new Watch(kubeConfig()).watch(
        `/apis/networking.istio.io/v1/namespaces/${ns}/${plural}`,
        { allowWatchBookmarks: false },
        (type: string, obj: KubeObject) => {
          if (type === 'MODIFIED') seen.push({ rv: Number(obj.metadata.resourceVersion), kind: obj.kind, name: obj.metadata.name, obj })
        },
        () => undefined
      )
    )
  )
  return {
    versions: () => [...seen].sort((a, b) => a.rv - b.rv),
    stop: () => controllers.forEach((c) => c.abort())
  }
}

/** What callers could be routed by after each stored write: each route's canary weight, each DR's v2. */
function timeline(versions: Stored[], start: Record<string, KubeObject>): Array<Record<string, number | boolean | undefined>> {
  const now: Record<string, KubeObject> = {}
  for (const [k, o] of Object.entries(start)) now[k.split(' ')[1] + (k.startsWith('Dest') ? ':dr' : '')] = o
  const frames: Array<Record<string, number | boolean | undefined>> = []
  for (const v of versions) {
    now[v.name + (v.kind === 'DestinationRule' ? ':dr' : '')] = v.obj
    const hasV2 = (dr: KubeObject) => (dr.spec.subsets ?? []).some((s: { name: string }) => s.name === 'v2')
    frames.push({
      reviews: canaryOf(now['reviews']),
      'reviews-gw': canaryOf(now['reviews-gw']),
      'dr reviews': hasV2(now['reviews:dr']),
      'dr reviews-edge': hasV2(now['reviews-edge:dr'])
    })
  }
  return frames
}

/** No frame routes to v2 while a DestinationRule of a route naming it lacks the subset. */
function expectMakeBeforeBreak(frames: Array<Record<string, number | boolean | undefined>>): void {
  for (const f of frames) {
    if (f.reviews !== undefined) expect(f['dr reviews']).toBe(true)
    if (f['reviews-gw'] !== undefined) expect(f['dr reviews-edge']).toBe(true)
  }
}

describe('several VirtualServices in lockstep', () => {
  it('promotes: both move to each weight, the state holder first; the canary subset is in both DestinationRules first; nothing else changes', async () => {
    const ns = await lockstepNamespace('lockstep-promote')
    const before = await objects(ns)
    const watch = await watchRouting(ns)
    const { report } = await runAction({ ...INPUTS, manifests: writeManifest(versionDeployment('v2')), namespace: ns, steps: '20,60,100' })
    watch.stop()
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    const frames = timeline(watch.versions(), before)
    expectMakeBeforeBreak(frames)
    // Only the canary's weights as the two routes show them, deduplicated: holder first on the way up.
    const weights = frames.map((f) => `${f.reviews ?? '-'}/${f['reviews-gw'] ?? '-'}`).filter((w, i, a) => i === 0 || a[i - 1] !== w)
    expect(weights).toEqual(['-/-', '20/-', '20/20', '60/20', '60/60', '100/60', '100/100'])

    const after = await objects(ns)
    const state = stateOf(after['VirtualService reviews'])!
    expect(state.phase).toBe('promoted')
    expect(state.members).toEqual([
      { virtualService: 'reviews-gw', route: { index: 1, name: 'primary' }, host: 'reviews-edge', destinationRule: 'reviews-edge' }
    ])
    // The member carries no state, and its marker is gone at the end.
    expect(after['VirtualService reviews-gw'].metadata.annotations).toEqual(before['VirtualService reviews-gw'].metadata.annotations)

    // Byte for byte: everything but the routes' destinations, the state and the subsets.
    const withoutOwned = (o: KubeObject, subsets = false): string => {
      const c = stored(o)
      delete c.metadata.annotations?.[STATE_ANNOTATION]
      if (c.kind === 'VirtualService') for (const r of c.spec.http) if (r.name === 'primary') delete r.route
      if (subsets) delete c.spec.subsets
      return JSON.stringify(c)
    }
    for (const key of Object.keys(before))
      expect(withoutOwned(after[key], key.startsWith('Dest'))).toBe(withoutOwned(before[key], key.startsWith('Dest')))
    expect(after['VirtualService reviews'].spec.http[1].route).toEqual([
      { destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } }, weight: 100 }
    ])
    expect(after['VirtualService reviews-gw'].spec.http[1].route).toEqual([
      { destination: { host: 'reviews-edge', subset: 'v2', port: { number: 8080 } }, weight: 100 }
    ])
    // v1 left both DestinationRules (no route names it any more), v2 joined both; legacy stays.
    expect(after['DestinationRule reviews'].spec.subsets).toEqual([
      { name: 'legacy', labels: { version: 'v0' } },
      { name: 'v2', labels: { version: 'v2' } }
    ])
    expect(after['DestinationRule reviews-edge'].spec.subsets).toEqual([{ name: 'v2', labels: { version: 'v2' } }])
  })

  it('rolls back (abort while paused): weight 0 on every route, the others first, before any destination or subset goes; then byte for byte as before', async () => {
    const ns = await lockstepNamespace('lockstep-abort')
    const before = await objects(ns)
    const first = await runAction({ ...INPUTS, manifests: writeManifest(versionDeployment('v2')), namespace: ns, steps: '30,pause,100' })
    expect(first.report.result).toBe('paused')
    const paused = await objects(ns)
    expect([canaryOf(paused['VirtualService reviews']), canaryOf(paused['VirtualService reviews-gw'])]).toEqual([30, 30])
    expect(JSON.parse(paused['VirtualService reviews-gw'].metadata.annotations![MEMBER_ANNOTATION])).toMatchObject({
      stateOn: `${ns}/reviews`
    })

    const watch = await watchRouting(ns)
    const { report } = await runAction({ 'virtual-service': 'reviews', command: 'abort', namespace: ns, settle: '0s' })
    watch.stop()
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('aborted')
    const frames = timeline(watch.versions(), paused)
    expectMakeBeforeBreak(frames)
    const shown = frames
      .map((f) => `${f.reviews ?? '-'}/${f['reviews-gw'] ?? '-'} ${f['dr reviews'] ? 'v2' : '--'}/${f['dr reviews-edge'] ? 'v2' : '--'}`)
      .filter((w, i, a) => i === 0 || a[i - 1] !== w)
    expect(shown).toEqual(['30/0 v2/v2', '0/0 v2/v2', '0/- v2/v2', '-/- v2/v2', '-/- --/v2', '-/- --/--'])

    const after = await objects(ns)
    // Byte for byte, but for the state and the one weight the lone stable destination now carries (100).
    const clean = (o: KubeObject): string => {
      const c = stored(o)
      delete c.metadata.annotations?.[STATE_ANNOTATION]
      if (c.kind === 'VirtualService') for (const r of c.spec.http) if (r.name === 'primary') for (const d of r.route) delete d.weight
      return JSON.stringify(c)
    }
    for (const key of Object.keys(before)) expect(clean(after[key])).toBe(clean(before[key]))
    expect(after['VirtualService reviews-gw'].spec.http[1].route).toEqual([
      { destination: { host: 'reviews-edge', subset: 'v1', port: { number: 8080 } }, weight: 100 }
    ])
    expect(stateOf(after['VirtualService reviews'])?.phase).toBe('aborted')
  })

  it('SIGINT mid-step: weight 0 on every route in the one cancellation write each; the abort run (the post step) finishes', async () => {
    const ns = await lockstepNamespace('lockstep-sigint')
    const controller = new AbortController()
    const run = runAction(
      {
        ...INPUTS,
        manifests: writeManifest(versionDeployment('v2')),
        namespace: ns,
        steps: '40,100',
        interval: '60s',
        'check-every': '2s'
      },
      { signal: controller.signal }
    )
    await waitFor(
      async () => {
        const o = await objects(ns)
        return canaryOf(o['VirtualService reviews-gw']) === 40 && stateOf(o['VirtualService reviews'])?.stepIndex === 0
      },
      { what: 'both routes at 40 %' }
    )
    controller.abort(new CancelledError('SIGINT'))
    const { report } = await run
    expect(report.error?.kind).toBe('CancelledError')
    const cancelled = await objects(ns)
    expect([canaryOf(cancelled['VirtualService reviews']), canaryOf(cancelled['VirtualService reviews-gw'])]).toEqual([0, 0])
    expect(stateOf(cancelled['VirtualService reviews'])?.phase).toBe('rolling-back')

    const post = await runAction({ 'virtual-service': 'reviews', command: 'abort', namespace: ns, settle: '0s' })
    expect(post.report.error).toBeUndefined()
    const after = await objects(ns)
    expect([canaryOf(after['VirtualService reviews']), canaryOf(after['VirtualService reviews-gw'])]).toEqual([undefined, undefined])
    expect(after['VirtualService reviews-gw'].metadata.annotations?.[MEMBER_ANNOTATION]).toBeUndefined()
    expect(after['DestinationRule reviews-edge'].spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
    expect((await testCluster().getDeployment(ns, 'reviews-v2'))?.spec.replicas).toBe(0)
  })

  it('drift on the second VirtualService is drift: the rollout rolls both back', async () => {
    const ns = await lockstepNamespace('lockstep-drift')
    const run = runAction({
      ...INPUTS,
      manifests: writeManifest(versionDeployment('v2')),
      namespace: ns,
      steps: '20,50,100',
      interval: '60s',
      'check-every': '2s'
    })
    const cluster = testCluster()
    await waitFor(async () => canaryOf((await objects(ns))['VirtualService reviews-gw']) === 20, { what: 'reviews-gw at 20 %' })
    const gw = (await cluster.getIstio('VirtualService', ns, 'reviews-gw'))!
    const route = gw.spec.http[1].route as Array<{ destination: { subset: string }; weight: number }>
    for (const d of route) d.weight = d.destination.subset === 'v2' ? 50 : 50
    await cluster.replaceIstio(gw)
    const { report } = await run
    expect(report.result).toBe('rolled-back')
    expect(report.error?.message).toMatch(
      /^drift: route "primary" of VirtualService .*\/reviews-gw has canary weight 50, but this rollout last set 20; someone else changed it$/
    )
    const after = await objects(ns)
    expect([canaryOf(after['VirtualService reviews']), canaryOf(after['VirtualService reviews-gw'])]).toEqual([undefined, undefined])
  })

  describe('bad input: refused before any write, nothing in the namespace changed', () => {
    const same = (svc: string): string => svc
    const cases: Array<[string, string[], Record<string, string>, RegExp, (s: string) => string]> = [
      [
        'a VirtualService that does not exist',
        [meshVs, gatewayVs],
        { 'virtual-service': 'reviews/primary, reviews-edge' },
        /^VirtualService "reviews-edge" was not found in namespace ".*" \(input 'virtual-service' names it\)/,
        same
      ],
      [
        'a route without the stable backend (another subset)',
        [meshVs, gatewayVs.replace(/subset: v1, port/, 'subset: edge-v1, port')],
        INPUTS,
        /route "primary" \(#1\) of VirtualService .*\/reviews-gw sends its traffic to subset "edge-v1", but route "primary" \(#1\) of VirtualService .*\/reviews to "v1"; expected every VirtualService of the rollout to route to the same stable subset/,
        (svc) =>
          svc.replace(
            '  subsets:\n    - name: v1\n      labels: { version: v1 }\n      trafficPolicy',
            '  subsets:\n    - name: edge-v1\n      labels: { version: v1 }\n      trafficPolicy'
          )
      ],
      [
        'a host covered twice for one gateway',
        [
          meshVs,
          gatewayVs
            .replace('hosts: [reviews.example.com]', 'hosts: [reviews]')
            .replace('gateways: [istio-ingress/public]', 'gateways: [mesh]')
        ],
        INPUTS,
        /VirtualService .*\/reviews and VirtualService .*\/reviews-gw both cover host "reviews\..*\.svc\.cluster\.local" for gateway "mesh"/,
        same
      ],
      [
        'a route name that the second VirtualService lacks',
        [meshVs, gatewayVs],
        { 'virtual-service': 'reviews/primary, reviews-gw/main' },
        /VirtualService .*\/reviews-gw has no http route named "main" \(input 'route'\); expected one of "static, primary"/,
        same
      ]
    ]
    it.each(cases)('%s', async (_what, vss, inputs, message, edit) => {
      const ns = await lockstepNamespace('lockstep-bad', vss, edit)
      const fingerprint = await namespaceFingerprint(ns)
      const { report } = await runAction({ ...inputs, manifests: writeManifest(versionDeployment('v2')), namespace: ns })
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(message)
      expect(await namespaceWrites(fingerprint)).toEqual(NO_WRITES)
    })
  })
})
