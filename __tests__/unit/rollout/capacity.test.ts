import {
  appliesWithoutReplicas,
  canaryCapacity,
  capacityNeeds,
  managesCapacity,
  promotedBounds,
  proportionalReplicas,
  requiredReplicas,
  type CapacityInput
} from '../../../src/rollout/capacity.js'

describe('proportionalReplicas: ceil(stable × weight / 100), at least 1', () => {
  it.each<[number, number, number]>([
    // stable, weight, canary
    [10, 10, 1],
    [10, 25, 3],
    [10, 50, 5],
    [10, 100, 10],
    [8, 10, 1],
    [8, 25, 2],
    [8, 50, 4],
    [3, 34, 2],
    [3, 33, 1],
    [20, 1, 1],
    [200, 1, 2],
    [1, 1, 1],
    [1, 100, 1],
    [0, 50, 1], // a stable scaled to 0 still gets a canary that can serve
    [7, 0, 1]
  ])('stable %i at %i%% -> %i', (stable, weight, canary) => {
    expect(proportionalReplicas(stable, weight)).toBe(canary)
  })

  it('never asks for more than the stable has, never for less than 1, for every stable size and weight', () => {
    for (let stable = 1; stable <= 50; stable++) {
      let previous = 0
      for (let weight = 1; weight <= 100; weight++) {
        const n = proportionalReplicas(stable, weight)
        expect(n).toBeGreaterThanOrEqual(1)
        expect(n).toBeLessThanOrEqual(stable)
        // Its share of the pods is never below its share of the traffic.
        expect(n / stable).toBeGreaterThanOrEqual(weight / 100 - 1e-12)
        expect(n).toBeGreaterThanOrEqual(previous)
        previous = n
      }
      expect(proportionalReplicas(stable, 100)).toBe(stable)
    }
  })
})

describe('canaryCapacity: what the canary needs before it carries a weight', () => {
  const hpa = { min: 2, max: 10 }
  it.each<[string, CapacityInput, ReturnType<typeof canaryCapacity>]>([
    ['manifest, no HPA: as applied', { mode: 'manifest', weight: 50, stableReplicas: 8 }, { kind: 'as-applied' }],
    ['manifest, no HPA, at 100: still as applied', { mode: 'manifest', weight: 100, stableReplicas: 8 }, { kind: 'as-applied' }],
    ['proportional 10 % of 8', { mode: 'proportional', weight: 10, stableReplicas: 8 }, { kind: 'replicas', replicas: 1 }],
    ['proportional 50 % of 8', { mode: 'proportional', weight: 50, stableReplicas: 8 }, { kind: 'replicas', replicas: 4 }],
    [
      'proportional 100 %: as large as the stable',
      { mode: 'proportional', weight: 100, stableReplicas: 8 },
      { kind: 'replicas', replicas: 8 }
    ],
    [
      'proportional never lowers a canary that traffic is on (the stable shrank)',
      { mode: 'proportional', weight: 50, stableReplicas: 4, current: { replicas: 3 } },
      { kind: 'replicas', replicas: 3 }
    ],
    [
      'proportional raises from what it has',
      { mode: 'proportional', weight: 50, stableReplicas: 8, current: { replicas: 1 } },
      { kind: 'replicas', replicas: 4 }
    ],
    [
      'manifest + HPA: the stable bounds',
      { mode: 'manifest', weight: 10, stableReplicas: 6, stableHpa: hpa },
      { kind: 'hpa', min: 2, max: 10 }
    ],
    [
      'manifest + HPA at 100: the minimum is what the stable runs now',
      { mode: 'manifest', weight: 100, stableReplicas: 6, stableHpa: hpa },
      { kind: 'hpa', min: 6, max: 10 }
    ],
    [
      'proportional + HPA at 10 %: min from the 6 replicas the stable runs, max from its max',
      { mode: 'proportional', weight: 10, stableReplicas: 6, stableHpa: hpa },
      { kind: 'hpa', min: 1, max: 1 }
    ],
    [
      'proportional + HPA at 50 %',
      { mode: 'proportional', weight: 50, stableReplicas: 6, stableHpa: hpa },
      { kind: 'hpa', min: 3, max: 5 }
    ],
    [
      'proportional + HPA at 100 %',
      { mode: 'proportional', weight: 100, stableReplicas: 6, stableHpa: hpa },
      { kind: 'hpa', min: 6, max: 10 }
    ],
    [
      'proportional + HPA: a stable below its minimum counts as its minimum',
      { mode: 'proportional', weight: 100, stableReplicas: 1, stableHpa: hpa },
      { kind: 'hpa', min: 2, max: 10 }
    ],
    [
      'proportional + HPA: a stable above its maximum counts as its maximum',
      { mode: 'proportional', weight: 100, stableReplicas: 30, stableHpa: hpa },
      { kind: 'hpa', min: 10, max: 10 }
    ],
    [
      'proportional + HPA: bounds never go down while traffic is on the canary',
      { mode: 'proportional', weight: 50, stableReplicas: 2, stableHpa: hpa, current: { hpa: { min: 4, max: 6 } } },
      { kind: 'hpa', min: 4, max: 6 }
    ],
    [
      'an HPA with minReplicas 0 (alpha gate) still gives the canary at least 1',
      { mode: 'proportional', weight: 10, stableReplicas: 0, stableHpa: { min: 0, max: 4 } },
      { kind: 'hpa', min: 1, max: 1 }
    ]
  ])('%s', (_name, input, expected) => {
    expect(canaryCapacity(input)).toEqual(expected)
  })

  it('with an HPA, max is never below min, for every stable size and weight', () => {
    for (let stable = 0; stable <= 12; stable++)
      for (const mode of ['manifest', 'proportional'] as const)
        for (let weight = 1; weight <= 100; weight += 3) {
          const t = canaryCapacity({ mode, weight, stableReplicas: stable, stableHpa: hpa })
          if (t.kind !== 'hpa') throw new Error('expected hpa')
          expect(t.min).toBeGreaterThanOrEqual(1)
          expect(t.max).toBeGreaterThanOrEqual(t.min)
          expect(t.max).toBeLessThanOrEqual(hpa.max)
        }
  })

  it('after promotion the new version takes the stable bounds', () => {
    expect(promotedBounds({ min: 2, max: 10 })).toEqual({ min: 2, max: 10 })
    expect(promotedBounds({ min: 0, max: 0 })).toEqual({ min: 1, max: 1 })
  })

  it('the replicas to wait for: the count, the HPA minimum, or the manifest', () => {
    expect(requiredReplicas({ kind: 'as-applied' }, 3)).toBe(3)
    expect(requiredReplicas({ kind: 'replicas', replicas: 2 }, 3)).toBe(2)
    expect(requiredReplicas({ kind: 'hpa', min: 4, max: 9 }, 3)).toBe(4)
  })
})

describe('who sets the replicas', () => {
  it.each<[string, Parameters<typeof appliesWithoutReplicas>, boolean]>([
    ['manifest, no HPA: the manifest (today)', ['manifest', false], false],
    ['proportional: the action, so the apply leaves them out', ['proportional', false], true],
    ['an HPA: the HPA, so the apply leaves them out', ['manifest', true], true],
    ['proportional with an HPA', ['proportional', true], true]
  ])('%s', (_name, args, expected) => {
    expect(appliesWithoutReplicas(...args)).toBe(expected)
  })

  it.each<[string, Parameters<typeof managesCapacity>[0], boolean]>([
    ['no record (a rollout from before this input)', undefined, false],
    ['manifest without an HPA', { mode: 'manifest' }, false],
    ['manifest with the stable HPA copied', { mode: 'manifest', stableHpa: 'web', canaryHpa: 'web-v2' }, true],
    ['proportional', { mode: 'proportional' }, true]
  ])('the executor manages capacity: %s', (_name, record, expected) => {
    expect(managesCapacity(record)).toBe(expected)
  })
})

describe('capacityNeeds: the canary over the whole schedule, for preflight', () => {
  it.each<[string, Parameters<typeof capacityNeeds>[0], ReturnType<typeof capacityNeeds>]>([
    [
      'proportional over 10,25,50,100 of 8',
      { mode: 'proportional', weights: [10, 25, 50, 100], stableReplicas: 8, manifestReplicas: 3 },
      { first: 1, peak: 8, firstWeight: 10 }
    ],
    [
      'manifest: the manifest throughout',
      { mode: 'manifest', weights: [10, 100], stableReplicas: 8, manifestReplicas: 3 },
      { first: 3, peak: 3, firstWeight: 10 }
    ],
    [
      'manifest with an HPA: its minimum, then the stable replicas at 100',
      { mode: 'manifest', weights: [20, 100], stableReplicas: 5, stableHpa: { min: 2, max: 8 }, manifestReplicas: 1 },
      { first: 2, peak: 5, firstWeight: 20 }
    ],
    [
      'straight to 100',
      { mode: 'proportional', weights: [100], stableReplicas: 4, manifestReplicas: 1 },
      { first: 4, peak: 4, firstWeight: 100 }
    ]
  ])('%s', (_name, input, expected) => {
    expect(capacityNeeds(input)).toEqual(expected)
  })
})
