import { ConflictError, DriftError, FencedError } from '../../../../src/errors.js'
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../../../src/rollout/state-codec.js'
import type { RolloutState } from '../../../../src/rollout/types.js'
import { findSubset } from '../../../../src/traffic/istio/destination-rule-transform.js'
import { IstioRouter } from '../../../../src/traffic/istio/istio-router.js'
import { readSplit } from '../../../../src/traffic/istio/virtual-service-transform.js'
import { makeRolloutState } from '../../../fixtures/istio/rollout-state.js'
import { MemoryCluster } from '../../../support/memory-cluster.js'

const NS = 'shop'

function virtualService(dests: Array<[string, number]>, state?: RolloutState): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'web', namespace: NS, ...(state ? { annotations: { [STATE_ANNOTATION]: encodeState(state) } } : {}) },
    spec: {
      hosts: ['istio-service'],
      http: [
        { name: 'other', route: [{ destination: { host: 'istio-service', subset: 'v1' } }] },
        { name: 'main', route: dests.map(([subset, weight]) => ({ destination: { host: 'istio-service', subset }, weight })) }
      ]
    }
  }
}

function destinationRule(subsets: string[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'istio-destinationrule', namespace: NS },
    spec: { host: 'istio-service', subsets: subsets.map((name) => ({ name, labels: { version: name } })) }
  }
}

const state = makeRolloutState({ route: { index: 1, name: 'main' }, canaryWeight: 10, epoch: 3 })

function setup(
  dests: Array<[string, number]> = [
    ['v1', 90],
    ['v2', 10]
  ],
  subsets = ['v1', 'v2']
) {
  const cluster = new MemoryCluster([virtualService(dests, state), destinationRule(subsets)])
  let tick = 0
  const router = new IstioRouter({
    cluster,
    namespace: NS,
    virtualService: 'web',
    destinationRule: 'istio-destinationrule',
    epoch: 3,
    now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, tick++)).toISOString()
  })
  const vs = () => cluster.get('VirtualService', NS, 'web')!
  return { cluster, router, vs, split: () => readSplit(vs(), 1, 'v1', 'v2') }
}

describe('IstioRouter.write', () => {
  it('moves the weights and the state in one write, on the named route only, stamped with our epoch', async () => {
    const { cluster, router, vs, split } = setup()
    const written = await router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 })
    expect(split()).toMatchObject({ stable: 50, canary: 50 })
    expect(vs().spec.http[0]).toEqual({ name: 'other', route: [{ destination: { host: 'istio-service', subset: 'v1' } }] })
    expect(stateOf(vs())).toEqual(written)
    expect(written.epoch).toBe(3)
    expect(cluster.writes).toEqual(['VirtualService web'])
  })

  it('confirms each write by a read not older than the write itself, and starts the next write from that read', async () => {
    const { cluster, router, vs } = setup()
    await router.write({ ...state, canaryWeight: 20 }, { kind: 'split', canaryWeight: 20 })
    const first = vs().metadata.resourceVersion
    await router.write({ ...state, canaryWeight: 30 }, { kind: 'split', canaryWeight: 30 })
    // The first write reads the VirtualService (latest), each write is read back at its own resourceVersion or newer.
    expect(cluster.istioReads).toEqual([
      'VirtualService web',
      `VirtualService web >=${first}`,
      `VirtualService web >=${vs().metadata.resourceVersion}`
    ])
  })

  it('does not count a write whose read-back shows a later writer instead: reads afresh and writes again', async () => {
    const { cluster, router, split, vs } = setup()
    let interfered = false
    const get = cluster.getIstio.bind(cluster)
    cluster.getIstio = async (kind, namespace, name, opts) => {
      // Someone else writes the old weights back between our PUT and its read-back.
      if (opts?.notOlderThan && !interfered) {
        interfered = true
        cluster.put(
          virtualService(
            [
              ['v1', 90],
              ['v2', 10]
            ],
            state
          )
        )
      }
      return get(kind, namespace, name, opts)
    }
    await router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 })
    expect(split()).toMatchObject({ stable: 50, canary: 50 })
    expect(stateOf(vs())?.canaryWeight).toBe(50)
    expect(cluster.writes).toEqual(['VirtualService web', 'VirtualService web'])
  })

  it('on a conflict reads again and writes again', async () => {
    const { cluster, router, split } = setup()
    let interfered = false
    cluster.beforeReplace = (obj, store) => {
      if (interfered) return
      interfered = true
      // Someone else adds a label: our resourceVersion is stale.
      store.put({ ...store.get('VirtualService', NS, 'web')!, metadata: { ...obj.metadata, labels: { team: 'x' } } })
    }
    await router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 })
    expect(split().canary).toBe(50)
    expect(cluster.get('VirtualService', NS, 'web')!.metadata.labels).toEqual({ team: 'x' })
  })

  it('gives up after five conflicts in a row', async () => {
    const { cluster, router } = setup()
    cluster.beforeReplace = (obj, store) => void store.put(store.get('VirtualService', NS, 'web')!)
    await expect(router.write(state)).rejects.toThrow(ConflictError)
    await expect(router.write(state)).rejects.toThrow('VirtualService shop/web kept changing under us (5 conflicting writes)')
  })

  it('stops writing once a later lock holder has written the state (fencing)', async () => {
    const { cluster, router, split } = setup()
    cluster.put(
      virtualService(
        [
          ['v1', 90],
          ['v2', 10]
        ],
        { ...state, epoch: 4 }
      )
    )
    await expect(router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 })).rejects.toThrow(FencedError)
    expect(split().canary).toBe(10)
  })

  it('refuses to write over weights someone else changed (drift)', async () => {
    const { cluster, router } = setup()
    cluster.put(
      virtualService(
        [
          ['v1', 100],
          ['v2', 0]
        ],
        state
      )
    )
    await expect(
      router.write({ ...state, canaryWeight: 50 }, { kind: 'split', canaryWeight: 50 }, { expectCanaryWeight: 10 })
    ).rejects.toThrow(
      new DriftError('route "main" of VirtualService shop/web has canary weight 0, but this rollout last set 10; someone else changed it')
    )
  })

  it('finds the route by name wherever it moved, and calls a vanished route drift', async () => {
    const { cluster, router } = setup()
    const moved = virtualService(
      [
        ['v1', 90],
        ['v2', 10]
      ],
      state
    )
    moved.spec.http.reverse()
    cluster.put(moved)
    await router.write({ ...state, canaryWeight: 20 }, { kind: 'split', canaryWeight: 20 })
    expect(readSplit(cluster.get('VirtualService', NS, 'web')!, 0, 'v1', 'v2').canary).toBe(20)
    moved.spec.http = [moved.spec.http[1]]
    cluster.put(moved)
    await expect(router.write(state, { kind: 'state' }, { expectCanaryWeight: 20 })).rejects.toThrow(
      new DriftError('route "main" is no longer in VirtualService web')
    )
  })

  it('removes a destination, and takes the canary to zero only where it is still routed', async () => {
    const { router, split } = setup()
    await router.write(state, { kind: 'canary-to-zero' })
    expect(split()).toMatchObject({ stable: 100, canary: 0, canaryPresent: true })
    await router.write(state, { kind: 'remove-destination', side: 'canary' })
    expect(split()).toMatchObject({ stable: 100, canaryPresent: false })
    await router.write(state, { kind: 'canary-to-zero' })
    expect(split()).toMatchObject({ stable: 100, canaryPresent: false })
    expect(await router.readRoute(state)).toEqual({ canaryWeight: 0, canaryRouted: false })
  })
})

describe('IstioRouter backends', () => {
  it('adds the canary subset once, and confirms it by reading back', async () => {
    const { cluster, router } = setup([['v1', 100]], ['v1'])
    await router.addCanaryBackend(state, { version: 'v2' })
    await router.addCanaryBackend(state, { version: 'v2' })
    expect(findSubset(cluster.get('DestinationRule', NS, 'istio-destinationrule')!, 'v2')).toEqual({
      name: 'v2',
      labels: { version: 'v2' }
    })
    expect(cluster.writes).toEqual(['DestinationRule istio-destinationrule'])
  })

  it('retries a DestinationRule write that conflicts', async () => {
    const { cluster, router } = setup([['v1', 100]], ['v1'])
    let n = 0
    cluster.beforeReplace = (obj, store) => {
      if (n++ === 0) store.put(store.get('DestinationRule', NS, 'istio-destinationrule')!)
    }
    await router.addCanaryBackend(state, { version: 'v2' })
    expect(findSubset(cluster.get('DestinationRule', NS, 'istio-destinationrule')!, 'v2')).toBeDefined()
  })

  it('is fenced on the DestinationRule too', async () => {
    const { cluster, router } = setup([['v1', 100]], ['v1'])
    cluster.put(virtualService([['v1', 100]], { ...state, epoch: 9 }))
    await expect(router.addCanaryBackend(state, { version: 'v2' })).rejects.toThrow(FencedError)
  })

  it('removes a subset, and says when there was none; names the other routes that still serve one', async () => {
    const { cluster, router } = setup([['v1', 100]], ['v1', 'v2'])
    expect(await router.removeBackend('v2')).toBe('removed')
    expect(await router.removeBackend('v2')).toBe('absent')
    expect(cluster.get('DestinationRule', NS, 'istio-destinationrule')!.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
    // Route "other" of the same VirtualService sends traffic to v1; our own route "main" does not count.
    expect((await router.routesServing(state, 'v1')).routes).toHaveLength(1)
    expect((await router.routesServing(state, 'v2')).routes).toEqual([])
  })
})
