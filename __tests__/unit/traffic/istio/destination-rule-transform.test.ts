import { PreflightError } from '../../../../src/errors.js'
import { hasSubset, withoutSubset, withSubset } from '../../../../src/traffic/istio/destination-rule-transform.js'
import { makeLargeDestinationRule } from '../../../fixtures/istio/large.js'
import { loadFixture, loadSeed } from '../../../fixtures/istio/load-fixture.js'
import { drOutsideOwned } from './owned-paths.js'
import { thrown } from './thrown.js'

const LABEL = 'istio-test-version'

describe('withSubset / withoutSubset on the seed', () => {
  it('reaches the seed v1+v2 manifest from the seed v1 manifest', () => {
    const dr = loadSeed('destinationrule-v1.yaml')
    expect(withSubset(dr, 'v2', { [LABEL]: 'v2' })).toEqual(loadSeed('destinationrule-v1-v2.yaml'))
  })

  it('returns the input unchanged when the subset is there with the same labels', () => {
    const dr = loadSeed('destinationrule-v1-v2.yaml')
    expect(withSubset(dr, 'v2', { [LABEL]: 'v2' })).toBe(dr)
  })

  it('removes the canary subset back to the seed v1 manifest (rollback)', () => {
    expect(withoutSubset(loadSeed('destinationrule-v1-v2.yaml'), 'v2')).toEqual(loadSeed('destinationrule-v1.yaml'))
  })

  it('removes the old stable subset (promotion)', () => {
    const dr = withoutSubset(loadSeed('destinationrule-v1-v2.yaml'), 'v1')
    expect(dr.spec.subsets).toEqual([{ name: 'v2', labels: { [LABEL]: 'v2' } }])
  })

  it('returns the input when removing an absent subset', () => {
    const dr = loadSeed('destinationrule-v1.yaml')
    expect(withoutSubset(dr, 'v9')).toBe(dr)
  })

  it('hasSubset', () => {
    const dr = loadSeed('destinationrule-v1.yaml')
    expect([hasSubset(dr, 'v1'), hasSubset(dr, 'v2')]).toEqual([true, false])
    expect(hasSubset({ ...dr, spec: { host: 'x' } }, 'v1')).toBe(false)
  })

  it('creates the subsets list when the DestinationRule has none, and drops it again', () => {
    const dr = loadSeed('destinationrule-v1.yaml')
    delete dr.spec.subsets
    const added = withSubset(dr, 'v2', { [LABEL]: 'v2' })
    expect(added.spec.subsets).toEqual([{ name: 'v2', labels: { [LABEL]: 'v2' } }])
    expect(withoutSubset(added, 'v2')).toEqual(dr)
  })
})

describe('on a DestinationRule with policies and other subsets', () => {
  const dr = loadFixture('complex-destinationrule.yaml')
  const frozen = structuredClone(dr)

  it('withSubset keeps host, trafficPolicy, portLevelSettings and the other subsets in order', () => {
    const next = withSubset(dr, 'v2', { version: 'v2' })
    expect(drOutsideOwned(next, ['v2'])).toEqual(drOutsideOwned(dr, ['v2']))
    expect(next.spec.subsets.at(-1)).toEqual({ name: 'v2', labels: { version: 'v2' } })
    expect(dr).toEqual(frozen)
  })

  it('withoutSubset keeps everything but that subset', () => {
    const next = withoutSubset(withSubset(dr, 'v2', { version: 'v2' }), 'v1')
    expect(drOutsideOwned(next, ['v1', 'v2'])).toEqual(drOutsideOwned(dr, ['v1', 'v2']))
    expect(next.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['debug', 'v2'])
    expect(dr).toEqual(frozen)
  })

  it('does not copy the new labels object by reference', () => {
    const labels = { version: 'v2' }
    const next = withSubset(dr, 'v2', labels)
    labels.version = 'changed'
    expect(next.spec.subsets.at(-1).labels).toEqual({ version: 'v2' })
  })
})

describe('on a DestinationRule with 200 subsets', () => {
  it('adds and removes one subset and shares the rest', () => {
    const dr = makeLargeDestinationRule(200)
    const next = withoutSubset(withSubset(dr, 'v2', { [LABEL]: 'v2' }), 'v1')
    expect(drOutsideOwned(next, ['v1', 'v2'])).toEqual(drOutsideOwned(dr, ['v1', 'v2']))
    expect(next.spec.subsets[0]).toBe(dr.spec.subsets[1])
    expect(next.spec.trafficPolicy).toBe(dr.spec.trafficPolicy)
  })
})

describe('withSubset errors', () => {
  it('refuses a subset of the same name with other labels', () => {
    const dr = loadFixture('complex-destinationrule.yaml')
    const err = thrown(() => withSubset(dr, 'debug', { version: 'v2' }))
    expect(err).toBeInstanceOf(PreflightError)
    expect(err.message).toBe(
      'DestinationRule shop/reviews already has subset "debug" with labels "version=debug,track=debug"; expected labels ' +
        '"version=v2". Rename the canary subset or remove the other one.'
    )
  })
})
