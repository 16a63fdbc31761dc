import { formatQuantity, parseQuantity } from '../../../src/kube/quantity.js'

describe('parseQuantity: Kubernetes quantities in base units', () => {
  it.each<[unknown, number | undefined]>([
    ['250m', 0.25],
    ['1', 1],
    ['1.5', 1.5],
    ['.5', 0.5],
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['500k', 5e5],
    ['2e3', 2000],
    ['1E', 1e18],
    ['100n', 1e-7],
    [' 3 ', 3],
    [4, 4],
    ['', undefined],
    ['1.5.2', undefined],
    ['12Mb', undefined],
    ['m', undefined],
    [undefined, undefined]
  ])('%p -> %p', (value, expected) => {
    const v = parseQuantity(value)
    if (expected === undefined) expect(v).toBeUndefined()
    else expect(v).toBeCloseTo(expected, 12)
  })
})

describe('formatQuantity: for people', () => {
  it.each<[string, number, string]>([
    ['requests.cpu', 0.75, '750m'],
    ['cpu', 2, '2'],
    ['limits.cpu', 0.1 + 0.2, '300m'],
    ['requests.memory', 384 * 2 ** 20, '384Mi'],
    ['memory', 1.5 * 2 ** 30, '1.5Gi'],
    ['requests.ephemeral-storage', 512, '512'],
    ['pods', 3, '3']
  ])('%s %p -> %s', (resource, value, expected) => {
    expect(formatQuantity(resource, value)).toBe(expected)
  })
})
