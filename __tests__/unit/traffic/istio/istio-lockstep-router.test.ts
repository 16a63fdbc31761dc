import { DriftError, FencedError } from '../../../../src/errors.js'
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../../../src/rollout/state-codec.js'
import type { RouteMember } from '../../../../src/rollout/types.js'
import { findSubset } from '../../../../src/traffic/istio/destination-rule-transform.js'
import { IstioLockstepRouter, IstioMemberRouter } from '../../../../src/traffic/istio/istio-lockstep-router.js'
import { IstioRouter } from '../../../../src/traffic/istio/istio-router.js'
import { encodeMarker, MEMBER_ANNOTATION, markerOf } from '../../../../src/traffic/istio/member-marker.js'
import { readSplit } from '../../../../src/traffic/istio/virtual-service-transform.js'
import { makeRolloutState } from '../../../fixtures/istio/rollout-state.js'
import { MemoryCluster } from '../../../support/memory-cluster.js'

const NS = 'shop'

function virtualService(name: string, routeIndex: number, canary: number, annotations: Record<string, string> = {}): KubeObject {
  const routes: unknown[] = [{ name: 'pinned', route: [{ destination: { host: 'reviews', subset: 'v1' } }] }]
  routes[routeIndex] = {
    name: 'primary',
    route: [
      { destination: { host: 'reviews', subset: 'v1' }, weight: 100 - canary },
      { destination: { host: 'reviews', subset: 'v2' }, weight: canary }
    ]
  }
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: NS, annotations },
    spec: { hosts: ['reviews'], gateways: [name === 'reviews' ? 'mesh' : 'ingress'], http: routes }
  }
}

function destinationRule(name: string, subsets: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: NS },
    spec: { host: 'reviews', subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) }
  }
}

const member: RouteMember = {
  virtualService: 'reviews-gw',
  route: { index: 1, name: 'primary' },
  host: 'reviews',
  destinationRule: 'reviews-gw'
}
const state = makeRolloutState({
  route: { index: 0, name: 'primary' },
  host: 'reviews',
  destinationRule: 'reviews',
  canaryWeight: 10,
  epoch: 3,
  members: [member]
})

function setup(opts: { holderCanary?: number; memberCanary?: number; marker?: string } = {}) {
  const cluster = new MemoryCluster([
    virtualService('reviews', 0, opts.holderCanary ?? 10, { [STATE_ANNOTATION]: encodeState(state) }),
    virtualService('reviews-gw', 1, opts.memberCanary ?? 10, {
      team: 'edge',
      [MEMBER_ANNOTATION]: opts.marker ?? encodeMarker({ stateOn: `${NS}/reviews`, id: state.id, epoch: 3 })
    }),
    destinationRule('reviews', ['v1']),
    destinationRule('reviews-gw', ['v1'])
  ])
  let tick = 0
  const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, tick++)).toISOString()
  const holder = new IstioRouter({ cluster, namespace: NS, virtualService: 'reviews', destinationRule: 'reviews', epoch: 3, now })
  const gw = new IstioMemberRouter(
    { cluster, namespace: NS, virtualService: 'reviews-gw', destinationRule: 'reviews-gw', epoch: 3, now },
    { namespace: NS, virtualService: 'reviews' }
  )
  const router = new IstioLockstepRouter([
    { router: holder, namespace: NS },
    { router: gw, member, namespace: NS }
  ])
  const vs = (name: string) => cluster.get('VirtualService', NS, name)!
  const canaryOf = (name: string) => readSplit(vs(name), name === 'reviews' ? 0 : 1, 'v1', 'v2').canary
  cluster.writes.length = 0
  return { cluster, router, vs, canaryOf }
}

describe('IstioLockstepRouter', () => {
  it('raises the canary on the state holder first, then on the others; the state only on the holder', async () => {
    const { cluster, router, vs, canaryOf } = setup()
    const written = await router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 }, { expectCanaryWeight: 10 })
    expect(cluster.writes).toEqual(['VirtualService reviews', 'VirtualService reviews-gw'])
    expect([canaryOf('reviews'), canaryOf('reviews-gw')]).toEqual([50, 50])
    expect(stateOf(vs('reviews'))).toEqual(written)
    expect(vs('reviews-gw').metadata.annotations?.[STATE_ANNOTATION]).toBeUndefined()
    expect(markerOf(vs('reviews-gw'))).toEqual({ stateOn: 'shop/reviews', id: state.id, epoch: 3 })
    // The member's other route and its own annotations are untouched.
    expect(vs('reviews-gw').spec.http[0]).toEqual({ name: 'pinned', route: [{ destination: { host: 'reviews', subset: 'v1' } }] })
    expect(vs('reviews-gw').metadata.annotations?.team).toBe('edge')
  })

  it('lowers the canary on the others first and on the state holder last', async () => {
    const { cluster, router, canaryOf } = setup()
    await router.write({ ...state, phase: 'rolling-back', canaryWeight: 0 }, { kind: 'canary-to-zero' })
    expect(cluster.writes).toEqual(['VirtualService reviews-gw', 'VirtualService reviews'])
    expect([canaryOf('reviews'), canaryOf('reviews-gw')]).toEqual([0, 0])
  })

  it('removes destinations on the others first too, and a state-only write touches only the holder', async () => {
    const { cluster, router, vs } = setup({ holderCanary: 0, memberCanary: 0 })
    await router.write({ ...state, phase: 'rolling-back', canaryWeight: 0 }, { kind: 'remove-destination', side: 'canary' })
    expect(cluster.writes).toEqual(['VirtualService reviews-gw', 'VirtualService reviews'])
    expect(vs('reviews-gw').spec.http[1].route).toEqual([{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }])
    cluster.writes.length = 0
    await router.write({ ...state, phase: 'rolling-back', canaryWeight: 0 })
    expect(cluster.writes).toEqual(['VirtualService reviews'])
  })

  it('takes the marker off the others when the rollout ends', async () => {
    const { router, vs } = setup()
    await router.write({ ...state, phase: 'rolled-back', canaryWeight: 0 })
    expect(markerOf(vs('reviews-gw'))).toBeUndefined()
    expect(vs('reviews-gw').metadata.annotations).toEqual({ team: 'edge' })
    expect(stateOf(vs('reviews'))?.phase).toBe('rolled-back')
  })

  it('judges drift on every VirtualService before writing any', async () => {
    const { cluster, router } = setup({ memberCanary: 30 })
    await expect(
      router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 }, { expectCanaryWeight: 10 })
    ).rejects.toThrow(
      new DriftError(
        'route "primary" of VirtualService shop/reviews-gw has canary weight 30, but this rollout last set 10; someone else changed it'
      )
    )
    expect(cluster.writes).toEqual([])
  })

  it('a member written by a later lock holder fences this run', async () => {
    const { router, canaryOf } = setup({ marker: encodeMarker({ stateOn: `${NS}/reviews`, id: state.id, epoch: 4 }) })
    await expect(router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 })).rejects.toThrow(FencedError)
    expect(canaryOf('reviews-gw')).toBe(10)
  })

  it('a member claimed by another rollout fences this run', async () => {
    const { router } = setup({ marker: encodeMarker({ stateOn: `${NS}/ratings`, id: 'x@1', epoch: 1 }) })
    await expect(router.write({ ...state, phase: 'rolling-back', canaryWeight: 0 }, { kind: 'canary-to-zero' })).rejects.toThrow(
      /claimed by the rollout recorded on VirtualService shop\/ratings/
    )
  })

  it('reads the largest canary weight of all routes', async () => {
    const { router } = setup({ holderCanary: 0, memberCanary: 30 })
    expect(await router.readRoute(state)).toEqual({ canaryWeight: 30, canaryRouted: true })
  })

  it('adds the canary subset to every DestinationRule and removes it from all', async () => {
    const { cluster, router } = setup()
    await router.addCanaryBackend(state, { version: 'v2' })
    expect(findSubset(cluster.get('DestinationRule', NS, 'reviews')!, 'v2')).toBeDefined()
    expect(findSubset(cluster.get('DestinationRule', NS, 'reviews-gw')!, 'v2')).toBeDefined()
    expect(await router.removeBackend('v2')).toBe('removed')
    expect(findSubset(cluster.get('DestinationRule', NS, 'reviews-gw')!, 'v2')).toBeUndefined()
    expect(await router.removeBackend('v2')).toBe('absent')
  })

  it("leaves every lockstep route out of the routes serving a subset, but counts a member's other routes", async () => {
    const { router } = setup()
    // reviews has only its lockstep route; reviews-gw also pins route "pinned" to v1.
    expect((await router.routesServing(state, 'v1')).routes).toEqual(['VirtualService shop/reviews-gw http route "pinned"'])
  })
})
