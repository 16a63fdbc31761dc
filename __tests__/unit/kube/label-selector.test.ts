import { labelsMatch, labelSelectorQuery, selectorMatches } from '../../../src/kube/label-selector.js'

describe('selectorMatches', () => {
  const stable = { app: 'web', version: 'v1' }
  const canary = { app: 'web', version: 'v2' }

  it('keyed on the version label, the canary and stable selectors are disjoint', () => {
    expect(selectorMatches({ matchLabels: canary }, stable)).toBe(false)
    expect(selectorMatches({ matchLabels: stable }, canary)).toBe(false)
    expect(selectorMatches({ matchLabels: canary }, canary)).toBe(true)
  })

  it('a stable selector without the version label selects the canary pods too', () => {
    expect(selectorMatches({ matchLabels: { app: 'web' } }, canary)).toBe(true)
  })

  it('the seed: v1 and v2 selectors do not overlap', () => {
    expect(
      selectorMatches({ matchLabels: { 'istio-test-version': 'v1' } }, { 'istio-test-app': 'istio-test-app', 'istio-test-version': 'v2' })
    ).toBe(false)
  })

  it('an empty or missing selector selects everything', () => {
    expect(selectorMatches({}, canary)).toBe(true)
    expect(selectorMatches(undefined, undefined)).toBe(true)
  })

  it.each<[string, string[] | undefined, boolean]>([
    ['In', ['v1', 'v2'], true],
    ['In', ['v1'], false],
    ['NotIn', ['v1'], true],
    ['NotIn', ['v2'], false],
    ['Exists', undefined, true],
    ['DoesNotExist', undefined, false],
    ['SomethingNew', undefined, true]
  ])('matchExpressions %s %j on version=v2 -> %s', (operator, values, expected) => {
    const expr = { key: 'version', operator, ...(values && { values }) }
    expect(selectorMatches({ matchExpressions: [expr] }, canary)).toBe(expected)
  })

  it('matchExpressions on an absent key', () => {
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, canary)).toBe(true)
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] }, canary)).toBe(true)
    expect(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] }, canary)).toBe(false)
  })
})

describe('labelSelectorQuery', () => {
  it.each([
    [{ matchLabels: { app: 'a', version: 'v2' } }, 'app=a,version=v2'],
    [
      {
        matchLabels: { app: 'a' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['x', 'y'] },
          { key: 'canary', operator: 'Exists' }
        ]
      },
      'app=a,tier in (x,y),canary'
    ],
    [
      {
        matchExpressions: [
          { key: 'old', operator: 'DoesNotExist' },
          { key: 'z', operator: 'NotIn', values: ['1'] }
        ]
      },
      '!old,z notin (1)'
    ],
    [{}, undefined],
    [undefined, undefined]
  ])('%j -> %s', (sel, text) => expect(labelSelectorQuery(sel)).toBe(text))
})

describe('labelsMatch', () => {
  it('every pair of the selector must be on the labels', () => {
    expect(labelsMatch({ app: 'web' }, { app: 'web', version: 'v1' })).toBe(true)
    expect(labelsMatch({ app: 'web', version: 'v2' }, { app: 'web', version: 'v1' })).toBe(false)
    expect(labelsMatch({ toString: 'x' }, {})).toBe(false)
  })
})
