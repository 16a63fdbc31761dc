/**
 * GatewayApiRouter over an in-memory apiserver: the weights of one rule's backendRefs and the
 * state in one guarded write, everything else carried through; 409s retried; fencing; drift.
 */
import { describe, expect, it } from '@jest/globals'
import { DriftError, FencedError } from '../../../../src/errors.js'
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../../../src/rollout/state-codec.js'
import type { RolloutState } from '../../../../src/rollout/types.js'
import { GatewayApiRouter } from '../../../../src/traffic/gateway-api/gateway-api-router.js'
import { readRuleSplit, withRuleSplit } from '../../../../src/traffic/gateway-api/http-route-transform.js'
import { hostsOfHttpRoute, sharedHost } from '../../../../src/traffic/gateway-api/http-route-topology.js'
import { VersionServices } from '../../../../src/traffic/version-services.js'
import { makeRolloutState } from '../../../fixtures/istio/rollout-state.js'
import { MemoryCluster } from '../../../support/memory-cluster.js'

const NS = 'shop'

function route(refs: unknown[], state?: RolloutState): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name: 'reviews',
      namespace: NS,
      labels: { a: 'b' },
      ...(state ? { annotations: { [STATE_ANNOTATION]: encodeState(state) } } : {})
    },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
      hostnames: ['books.example.com'],
      rules: [
        { name: 'jason', matches: [{ headers: [{ name: 'u', value: 'j' }] }], backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
        { name: 'primary', filters: [{ type: 'RequestHeaderModifier' }], backendRefs: refs }
      ]
    }
  }
}

const state = makeRolloutState({
  backends: 'services',
  destinationRule: '',
  route: { index: 1, name: 'primary' },
  stable: { version: 'v1', subset: 'reviews-v1' },
  canary: { version: 'v2', subset: 'reviews-v2', deployment: 'reviews-v2' },
  canaryWeight: 10,
  epoch: 3
})

function setup(
  refs: unknown[] = [
    { name: 'reviews-v1', port: 9080, weight: 90 },
    { name: 'reviews-v2', port: 9080, weight: 10 }
  ],
  live = state
) {
  const cluster = new MemoryCluster([route(refs, live)])
  const router = new GatewayApiRouter({
    cluster,
    namespace: NS,
    httpRoute: 'reviews',
    services: new VersionServices({ cluster, namespace: NS, copyTrafficPolicy: false, retire: 'scale-down' }),
    epoch: 3,
    now: () => '2025-01-01T01:00:00.000Z'
  })
  return { cluster, router }
}

describe('GatewayApiRouter', () => {
  it('writes the split and the state in one update and changes nothing else', async () => {
    const { cluster, router } = setup()
    const before = cluster.get('HTTPRoute', NS, 'reviews')!
    await router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 }, { expectCanaryWeight: 10 })
    const after = cluster.get('HTTPRoute', NS, 'reviews')!
    expect(after.spec.rules[1].backendRefs).toEqual([
      { name: 'reviews-v1', port: 9080, weight: 50 },
      { name: 'reviews-v2', port: 9080, weight: 50 }
    ])
    expect(stateOf(after)?.canaryWeight).toBe(50)
    const strip = (o: KubeObject) => ({ ...o.spec, rules: [o.spec.rules[0], { ...o.spec.rules[1], backendRefs: null }] })
    expect(strip(after)).toEqual(strip(before))
    expect(after.metadata.labels).toEqual(before.metadata.labels)
    expect(cluster.writes).toEqual(['HTTPRoute reviews'])
  })

  it('retries a conflicting write after reading again', async () => {
    const { cluster, router } = setup()
    let once = true
    cluster.beforeReplace = (_obj, store) => {
      if (!once) return
      once = false
      const live = store.get('HTTPRoute', NS, 'reviews')!
      store.put({ ...live, metadata: { ...live.metadata, labels: { a: 'c' } } })
    }
    await router.write({ ...state, canaryWeight: 25 }, { kind: 'split', canaryWeight: 25 })
    const after = cluster.get('HTTPRoute', NS, 'reviews')!
    expect(after.metadata.labels).toEqual({ a: 'c' })
    expect(readRuleSplit(after, 1, NS, 'reviews-v1', 'reviews-v2')).toMatchObject({ stable: 75, canary: 25 })
  })

  it('is fenced by a later epoch and stops on drift, relative weights included', async () => {
    const later = setup(undefined, { ...state, epoch: 4 })
    await expect(later.router.write(state, { kind: 'split', canaryWeight: 20 })).rejects.toThrow(FencedError)
    const drifted = setup([
      { name: 'reviews-v1', port: 9080, weight: 300 },
      { name: 'reviews-v2', port: 9080, weight: 10 }
    ])
    await expect(drifted.router.write(state, { kind: 'split', canaryWeight: 20 }, { expectCanaryWeight: 10 })).rejects.toThrow(DriftError)
  })

  it('removes a backendRef at weight 0 and names the other rules still serving a Service', async () => {
    const { cluster, router } = setup([
      { name: 'reviews-v1', port: 9080, weight: 100 },
      { name: 'reviews-v2', port: 9080, weight: 0 }
    ])
    await router.write(state, { kind: 'remove-destination', side: 'canary' })
    expect(cluster.get('HTTPRoute', NS, 'reviews')!.spec.rules[1].backendRefs).toEqual([{ name: 'reviews-v1', port: 9080, weight: 100 }])
    expect((await router.routesServing(state, 'reviews-v1')).routes).toEqual([`HTTPRoute ${NS}/reviews rule "jason"`])
  })
})

describe('HTTPRoute transforms and hosts', () => {
  it('refuses a split while a foreign backendRef carries weight', () => {
    const r = route([
      { name: 'reviews-v1', weight: 90 },
      { name: 'legacy', namespace: 'old', weight: 10 }
    ])
    expect(() => withRuleSplit(r, 1, NS, 'reviews-v1', 'reviews-v2', 10)).toThrow(/"legacy" \(weight 10\)/)
  })

  it('covers the Service parents and hostnames, and finds a VirtualService for one of them', () => {
    const r = route([])
    expect(hostsOfHttpRoute(r, NS)).toEqual([`reviews.${NS}.svc.cluster.local`, 'books.example.com'])
    const vs = (hosts: string[], ns = NS): KubeObject => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'v', namespace: ns },
      spec: { hosts }
    })
    expect(sharedHost(r, [vs(['ratings']), vs(['reviews.shop.svc.cluster.local'])], NS)?.host).toBe(`reviews.${NS}.svc.cluster.local`)
    expect(sharedHost(r, [vs(['reviews'], 'other')], NS)).toBeUndefined()
    expect(sharedHost(r, [vs(['Books.example.com'])], NS)?.host).toBe('books.example.com')
  })
})
