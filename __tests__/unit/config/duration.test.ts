import { ConfigError } from '../../../src/errors.js'
import { MAX_DURATION_SECONDS, formatDuration, parseDuration } from '../../../src/config/duration.js'

describe('parseDuration', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['2m', 120],
    ['1h30m', 5400],
    ['1m30s', 90],
    ['1h0m5s', 3605],
    ['0', 0],
    ['0s', 0],
    [' 45s ', 45],
    ['840h', MAX_DURATION_SECONDS],
    ['1.5s', 1.5],
    ['1500ms', 1.5],
    ['1s500ms', 1.5],
    ['1.5m', 90],
    ['2.5', 2.5],
    ['500ms', 0.5]
  ])('reads %j as %d seconds', (value, seconds) => {
    expect(parseDuration('interval', value)).toBe(seconds)
  })

  const EXPECTED = 'expected a duration like "30s", "1m30s", "1.5s" or "1500ms"'
  it.each([
    ['2 minutes', EXPECTED],
    ['', EXPECTED],
    ['1m 30s', EXPECTED],
    ['1d', EXPECTED],
    ['5M', EXPECTED],
    ['1.5.2s', EXPECTED],
    ['30s1m', `${EXPECTED}, with each unit once and the largest first (write "1m30s", not "30s1m")`],
    ['1s1s', `${EXPECTED}, with each unit once and the largest first (write "1m30s", not "30s1m")`],
    ['1.5m15s', `${EXPECTED}, with a fraction only on the last unit (write "1m45s", not "1.5m15s")`],
    ['-5s', 'must not be negative'],
    ['-1', 'must not be negative']
  ])('rejects %j', (value, reason) => {
    expect(() => parseDuration('interval', value)).toThrow(
      new ConfigError(`Input 'interval' is invalid: ${reason} (got ${JSON.stringify(value.trim())}).`)
    )
  })

  it('reads what formatDuration writes', () => {
    for (const seconds of [0, 0.5, 1.5, 59, 90, 3600, 5400.25]) expect(parseDuration('interval', formatDuration(seconds))).toBe(seconds)
  })

  it('names the input in the error and throws a ConfigError', () => {
    expect(() => parseDuration('progress-deadline', 'soon')).toThrow(ConfigError)
    expect(() => parseDuration('progress-deadline', 'soon')).toThrow(
      `Input 'progress-deadline' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "soon").`
    )
  })

  it('rejects zero when the caller asks for at least 1s', () => {
    expect(() => parseDuration('interval', '0s', { min: 1 })).toThrow(`Input 'interval' is invalid: must be more than 0 (got "0s").`)
    expect(parseDuration('interval', '1s', { min: 1 })).toBe(1)
  })

  it('rejects values under a minimum', () => {
    expect(() => parseDuration('lock-duration', '10s', { min: 15 })).toThrow(
      `Input 'lock-duration' is invalid: must be at least 15s (got "10s").`
    )
  })

  it('rejects huge values and overflow (more than 35 days)', () => {
    expect(() => parseDuration('timeout', '841h')).toThrow(`Input 'timeout' is invalid: must be at most 840h (35 days) (got "841h").`)
    expect(() => parseDuration('timeout', '9'.repeat(400))).toThrow(
      /^Input 'timeout' is invalid: must be at most 840h \(35 days\) \(got "9{200}…"\)\.$/
    )
  })

  it('rejects values over a caller maximum', () => {
    expect(() => parseDuration('settle', '2h', { max: 3600 })).toThrow(`Input 'settle' is invalid: must be at most 1h (got "2h").`)
  })
})

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [90, '1m30s'],
    [3600, '1h'],
    [3661, '1h1m1s']
  ])('formats %d as %j', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text)
  })

  it('round-trips through parseDuration', () => {
    for (let s = 0; s < 100_000; s += 977) expect(parseDuration('interval', formatDuration(s))).toBe(s)
  })
})
