import { errorText, formatNumber } from '../../src/format.js'

describe('formatNumber', () => {
  it.each([
    [80, '80'],
    [99.95, '99.95'],
    [99.956, '99.96'],
    [0.0123456, '0.0123'],
    [1234.56, '1234.6'],
    [-0.5, '-0.5'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity']
  ])('%p -> %s', (n, text) => expect(formatNumber(n)).toBe(text))
})

describe('errorText', () => {
  it('takes the message of an Error and the text of anything else', () => {
    expect(errorText(new TypeError('boom'))).toBe('boom')
    expect(errorText('plain')).toBe('plain')
    expect(errorText(42)).toBe('42')
  })
})
