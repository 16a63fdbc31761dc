import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { ConflictError } from '../../../../src/errors.js'
import { STATE_ANNOTATION } from '../../../../src/rollout/state-codec.js'
import { readSplit, withoutDestination, withSplit, withState } from '../../../../src/traffic/istio/virtual-service-transform.js'
import { makeLargeVirtualService } from '../../../fixtures/istio/large.js'
import { loadFixture, loadSeed } from '../../../fixtures/istio/load-fixture.js'
import { destinationWithoutWeight, vsOutsideOwned } from './owned-paths.js'
import { thrown } from './thrown.js'

const PRIMARY = 1 // index of route "primary" in complex-virtualservice.yaml

function weights(vs: KubeObject, routeIndex: number): Array<[string, number | undefined]> {
  return vs.spec.http[routeIndex].route.map((d: { destination: { subset: string }; weight?: number }) => [d.destination.subset, d.weight])
}

describe('readSplit', () => {
  it('reads a lone destination without weight as 100 (the seed)', () => {
    expect(readSplit(loadSeed('virtualservice-v1.yaml'), 0, 'v1', 'v2')).toEqual({
      stable: 100,
      canary: 0,
      canaryPresent: false,
      stablePresent: true
    })
  })

  it('reads the seed 50/50 split', () => {
    expect(readSplit(loadSeed('virtualservice-50-50.yaml'), 0, 'v1', 'v2')).toEqual({
      stable: 50,
      canary: 50,
      canaryPresent: true,
      stablePresent: true
    })
  })

  it('reads an omitted weight beside another destination as 0, as Istio does', () => {
    const vs = loadSeed('virtualservice-50-50.yaml')
    delete vs.spec.http[0].route[1].weight
    vs.spec.http[0].route[0].weight = 100
    expect(readSplit(vs, 0, 'v1', 'v2')).toEqual({ stable: 100, canary: 0, canaryPresent: true, stablePresent: true })
  })

  it('reads a lone destination as 100 whatever its weight', () => {
    const vs = loadSeed('virtualservice-v1.yaml')
    vs.spec.http[0].route[0].weight = 30
    expect(readSplit(vs, 0, 'v1', 'v2').stable).toBe(100)
  })
})

describe('withSplit on the seed', () => {
  it('reaches the seed 50/50 manifest from the seed v1 manifest', () => {
    const v1 = loadSeed('virtualservice-v1.yaml')
    expect(withSplit(v1, 0, 'istio-service', 'v1', 'v2', 50)).toEqual(loadSeed('virtualservice-50-50.yaml'))
  })

  it('does not modify its input', () => {
    const v1 = loadSeed('virtualservice-v1.yaml')
    const before = structuredClone(v1)
    withSplit(v1, 0, 'istio-service', 'v1', 'v2', 50)
    expect(v1).toEqual(before)
  })

  it('writes both weights explicitly, 0 included', () => {
    const v1 = loadSeed('virtualservice-v1.yaml')
    expect(weights(withSplit(v1, 0, 'istio-service', 'v1', 'v2', 0), 0)).toEqual([
      ['v1', 100],
      ['v2', 0]
    ])
    expect(weights(withSplit(v1, 0, 'istio-service', 'v1', 'v2', 100), 0)).toEqual([
      ['v1', 0],
      ['v2', 100]
    ])
  })

  it('is idempotent', () => {
    const once = withSplit(loadSeed('virtualservice-v1.yaml'), 0, 'istio-service', 'v1', 'v2', 25)
    expect(withSplit(once, 0, 'istio-service', 'v1', 'v2', 25)).toEqual(once)
  })

  it('returns to the seed v1 manifest after weight 0 and withoutDestination (omitWeight)', () => {
    const v1 = loadSeed('virtualservice-v1.yaml')
    const split = withSplit(withSplit(v1, 0, 'istio-service', 'v1', 'v2', 50), 0, 'istio-service', 'v1', 'v2', 0)
    expect(withoutDestination(split, 0, 'v2', { omitWeight: true })).toEqual(v1)
  })

  it('leaves weight 100 on the remaining destination by default', () => {
    const split = withSplit(loadSeed('virtualservice-v1.yaml'), 0, 'istio-service', 'v1', 'v2', 0)
    expect(weights(withoutDestination(split, 0, 'v2'), 0)).toEqual([['v1', 100]])
  })

  it('builds the stable destination from the canary one when only the canary is left (promoting)', () => {
    const promoted = withoutDestination(withSplit(loadSeed('virtualservice-v1.yaml'), 0, 'istio-service', 'v1', 'v2', 100), 0, 'v1')
    const back = withSplit(promoted, 0, 'istio-service', 'v1', 'v2', 100)
    expect(back.spec.http[0].route).toEqual([
      { destination: { host: 'istio-service', subset: 'v2' }, weight: 100 },
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 0 }
    ])
  })

  it('builds destinations from the host when the route has neither subset', () => {
    const vs = loadSeed('virtualservice-v1.yaml')
    vs.spec.http[0].route = [
      { destination: { host: 'istio-service', subset: 'v0' }, weight: 0 },
      { destination: { host: 'istio-service', subset: 'v9' }, weight: 0 }
    ]
    expect(withSplit(vs, 0, 'istio-service', 'v1', 'v2', 10).spec.http[0].route).toEqual([
      { destination: { host: 'istio-service', subset: 'v0' }, weight: 0 },
      { destination: { host: 'istio-service', subset: 'v9' }, weight: 0 },
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 90 },
      { destination: { host: 'istio-service', subset: 'v2' }, weight: 10 }
    ])
  })

  it('gives a subset listed twice its weight once', () => {
    const vs = loadSeed('virtualservice-50-50.yaml')
    vs.spec.http[0].route.push({ destination: { host: 'istio-service', subset: 'v2' }, weight: 0 })
    expect(weights(withSplit(vs, 0, 'istio-service', 'v1', 'v2', 30), 0)).toEqual([
      ['v1', 70],
      ['v2', 30],
      ['v2', 0]
    ])
    expect(readSplit(withSplit(vs, 0, 'istio-service', 'v1', 'v2', 30), 0, 'v1', 'v2')).toEqual({
      stable: 70,
      canary: 30,
      canaryPresent: true,
      stablePresent: true
    })
  })
})

describe('transforms on a VirtualService with every field we do not own', () => {
  const vs = loadFixture('complex-virtualservice.yaml')
  const frozen = structuredClone(vs)

  it.each([0, 1, 10, 50, 99, 100])('withSplit(%i) changes only the route destinations and keeps the input', (w) => {
    const next = withSplit(vs, PRIMARY, 'reviews', 'v1', 'v2', w)
    expect(vsOutsideOwned(next, PRIMARY)).toEqual(vsOutsideOwned(vs, PRIMARY))
    expect(weights(next, PRIMARY)).toEqual([
      ['v1', 100 - w],
      ['v2', w]
    ])
    // The stable destination keeps port and headers; the canary one is its copy with another subset.
    const stable = destinationWithoutWeight(vs, PRIMARY, 'v1') as { destination: object }
    expect(destinationWithoutWeight(next, PRIMARY, 'v1')).toEqual(stable)
    expect(destinationWithoutWeight(next, PRIMARY, 'v2')).toEqual({
      ...stable,
      destination: { ...stable.destination, subset: 'v2' }
    })
    expect(vs).toEqual(frozen)
  })

  it('withoutDestination after promotion keeps everything else, including the other route on v1', () => {
    const at100 = withSplit(vs, PRIMARY, 'reviews', 'v1', 'v2', 100)
    const next = withoutDestination(at100, PRIMARY, 'v1')
    expect(vsOutsideOwned(next, PRIMARY)).toEqual(vsOutsideOwned(vs, PRIMARY))
    expect(weights(next, PRIMARY)).toEqual([['v2', 100]])
    expect(next.spec.http[3]).toEqual(frozen.spec.http[3])
    expect(vs).toEqual(frozen)
  })

  it('withoutDestination of an absent subset returns the input', () => {
    expect(withoutDestination(vs, PRIMARY, 'v7')).toBe(vs)
  })

  it('withState sets, replaces and removes only its annotation', () => {
    const set = withState(vs, STATE_ANNOTATION, '{"a":1}')
    expect(set.metadata.annotations).toEqual({ ...frozen.metadata.annotations, [STATE_ANNOTATION]: '{"a":1}' })
    const replaced = withState(set, STATE_ANNOTATION, '{"a":2}')
    expect(replaced.metadata.annotations?.[STATE_ANNOTATION]).toBe('{"a":2}')
    expect(withState(replaced, STATE_ANNOTATION, undefined)).toEqual(frozen)
    expect(vsOutsideOwned(replaced, PRIMARY)).toEqual(vsOutsideOwned(vs, PRIMARY))
    expect(vs).toEqual(frozen)
  })

  it('withState restores an object that had no annotations at all', () => {
    const seed = loadSeed('virtualservice-v1.yaml')
    const round = withState(withState(seed, STATE_ANNOTATION, '{}'), STATE_ANNOTATION, undefined)
    expect(round).toEqual(seed)
    expect(withState(seed, STATE_ANNOTATION, undefined)).toBe(seed)
  })
})

describe('on a VirtualService with 100 routes', () => {
  it('copies only the route it changes and shares the others', () => {
    const vs = makeLargeVirtualService(100)
    const next = withSplit(vs, 50, 'istio-service', 'v1', 'v2', 10)
    expect(vsOutsideOwned(next, 50)).toEqual(vsOutsideOwned(vs, 50))
    expect(next.spec.http[49]).toBe(vs.spec.http[49])
    expect(next.spec.http[50]).not.toBe(vs.spec.http[50])
    expect(weights(next, 50)).toEqual([
      ['v1', 90],
      ['v2', 10]
    ])
  })
})

describe('transform errors', () => {
  const seed = loadSeed('virtualservice-v1.yaml', 'shop')

  it.each([
    [101, 'Canary weight "101" is invalid: expected an integer between 0 and 100.'],
    [-1, 'Canary weight "-1" is invalid: expected an integer between 0 and 100.'],
    [2.5, 'Canary weight "2.5" is invalid: expected an integer between 0 and 100.'],
    [Number.NaN, 'Canary weight "NaN" is invalid: expected an integer between 0 and 100.']
  ])('withSplit rejects weight %p', (w, message) => {
    const err = thrown(() => withSplit(seed, 0, 'istio-service', 'v1', 'v2', w))
    expect(err).toBeInstanceOf(RangeError)
    expect(err.message).toBe(message)
  })

  it('withSplit rejects equal subsets', () => {
    expect(thrown(() => withSplit(seed, 0, 'istio-service', 'v1', 'v1', 5)).message).toBe(
      'Stable and canary subsets must differ (both are "v1").'
    )
  })

  it('rejects a route index that does not exist', () => {
    expect(thrown(() => withSplit(seed, 3, 'istio-service', 'v1', 'v2', 5)).message).toBe(
      'VirtualService shop/istio-virtualservice has no http route #3 (it has 1).'
    )
    expect(thrown(() => readSplit(seed, -1, 'v1', 'v2')).message).toBe(
      'VirtualService shop/istio-virtualservice has no http route #-1 (it has 1).'
    )
  })

  it('rejects a route without a destination list', () => {
    const vs = loadFixture('complex-virtualservice.yaml')
    expect(thrown(() => withSplit(vs, 2, 'reviews', 'v1', 'v2', 5)).message).toBe(
      `route "legacy" (#2) of VirtualService shop/reviews has no 'route' destination list.`
    )
  })

  it('withSplit refuses when another destination still carries traffic (ConflictError)', () => {
    const vs = loadSeed('virtualservice-50-50.yaml', 'shop')
    const err = thrown(() => withSplit(vs, 0, 'istio-service', 'v1', 'v3', 10))
    expect(err).toBeInstanceOf(ConflictError)
    expect(err.message).toBe(
      'route #0 of VirtualService shop/istio-virtualservice sends traffic to "v2" (weight 50) besides subsets "v1" and "v3": ' +
        "expected only those two to carry weight. Someone changed the route; set the other destinations' weight to 0 or remove them."
    )
  })

  it('withoutDestination refuses to remove a destination that still has weight', () => {
    const vs = loadSeed('virtualservice-50-50.yaml', 'shop')
    expect(thrown(() => withoutDestination(vs, 0, 'v2')).message).toBe(
      'Cannot remove subset "v2" from route #0 of VirtualService shop/istio-virtualservice: it still has weight 50; ' +
        'expected weight 0 (set the weight to 0 and wait for propagation before removing the destination).'
    )
  })

  it('withoutDestination refuses to remove the last destination', () => {
    expect(thrown(() => withoutDestination(seed, 0, 'v1')).message).toBe(
      'Cannot remove subset "v1" from route #0 of VirtualService shop/istio-virtualservice: it is the only destination, the route needs one.'
    )
  })
})
