import { isDeepStrictEqual } from 'node:util'
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { STATE_ANNOTATION, decodeState, encodeState } from '../../../../src/rollout/state-codec.js'
import { withoutSubset, withSubset } from '../../../../src/traffic/istio/destination-rule-transform.js'
import { readSplit, withoutDestination, withSplit, withState } from '../../../../src/traffic/istio/virtual-service-transform.js'
import { makeLargeVirtualService } from '../../../fixtures/istio/large.js'
import { loadFixture, loadSeed } from '../../../fixtures/istio/load-fixture.js'
import { makeRolloutState } from '../../../fixtures/istio/rollout-state.js'
import { drOutsideOwned, vsOutsideOwned } from './owned-paths.js'
import { seededRandom } from '../../../support/seeded-random.js'

const SEEDS = Array.from({ length: 25 }, (_, i) => 1000 + i * 7919)

interface Case {
  vs: KubeObject
  routeIndex: number
  host: string
}

const cases = (): Array<[string, Case]> => [
  ['seed', { vs: loadSeed('virtualservice-v1.yaml', 'shop'), routeIndex: 0, host: 'istio-service' }],
  ['complex', { vs: loadFixture('complex-virtualservice.yaml'), routeIndex: 1, host: 'reviews' }],
  ['large', { vs: makeLargeVirtualService(60), routeIndex: 37, host: 'istio-service' }]
]

describe.each(cases())('random weight sequences on the %s VirtualService', (_name, { vs, routeIndex, host }) => {
  const frozen = structuredClone(vs)
  const outside = vsOutsideOwned(vs, routeIndex)

  it.each(SEEDS)('seed %i: every split is integers summing to 100, and nothing else changes', (seed) => {
    const random = seededRandom(seed)
    let current = vs
    const steps = 1 + Math.floor(random() * 12)
    for (let i = 0; i < steps; i++) {
      const w = Math.floor(random() * 101)
      current = withSplit(current, routeIndex, host, 'v1', 'v2', w)
      if (random() < 0.5) {
        const state = makeRolloutState({ canaryWeight: w, stepIndex: i, updatedAt: `2025-01-01T00:${String(i).padStart(2, '0')}:00.000Z` })
        current = withState(current, STATE_ANNOTATION, encodeState(state))
        const stored = current.metadata.annotations?.[STATE_ANNOTATION] as string
        expect(decodeState(stored, 'shop/x').canaryWeight).toBe(w)
      }
      const split = readSplit(current, routeIndex, 'v1', 'v2')
      expect(Number.isInteger(split.stable) && Number.isInteger(split.canary)).toBe(true)
      expect(split.stable + split.canary).toBe(100)
      expect(split).toEqual({ stable: 100 - w, canary: w, canaryPresent: true, stablePresent: true })
      expect(current.spec.http[routeIndex].route).toHaveLength(2)
      // isDeepStrictEqual per step (fast); toEqual with its diff at the end.
      expect(isDeepStrictEqual(vsOutsideOwned(current, routeIndex), outside)).toBe(true)
    }
    // Either end: rollback (canary to 0, then removed) or promotion (stable to 0, then removed).
    const rollback = random() < 0.5
    const gone = rollback ? 'v2' : 'v1'
    const zeroed = withSplit(current, routeIndex, host, 'v1', 'v2', rollback ? 0 : 100)
    const ended = withState(withoutDestination(zeroed, routeIndex, gone), STATE_ANNOTATION, undefined)
    expect(ended.spec.http[routeIndex].route.map((d: { weight: number }) => d.weight)).toEqual([100])
    expect(ended.spec.http[routeIndex].route[0].destination.subset).toBe(rollback ? 'v1' : 'v2')
    expect(vsOutsideOwned(ended, routeIndex)).toEqual(outside)
    expect(vs).toEqual(frozen)
  })
})

describe('random subset add/remove sequences on the DestinationRule', () => {
  it.each(SEEDS)('seed %i: only the owned subsets change', (seed) => {
    const random = seededRandom(seed)
    const dr = loadFixture('complex-destinationrule.yaml')
    const frozen = structuredClone(dr)
    const names = ['v2', 'v3', 'canary']
    let current = dr
    for (let i = 0; i < 20; i++) {
      const name = names[Math.floor(random() * names.length)]
      current = random() < 0.6 ? withSubset(current, name, { version: name }) : withoutSubset(current, name)
      expect(drOutsideOwned(current, names)).toEqual(drOutsideOwned(dr, names))
      const listed = current.spec.subsets.map((s: { name: string }) => s.name)
      expect(new Set(listed).size).toBe(listed.length)
    }
    expect(dr).toEqual(frozen)
  })
})
