import { inputError } from './input-error.js'

/** The longest duration any input accepts: far beyond any job (GitHub's hard limit is 35 days). */
export const MAX_DURATION_SECONDS = 35 * 24 * 3600

const FORM = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/
const EXPECTED = 'expected a duration like "30s", "2m" or "1h30m"'

export interface DurationLimits {
  /** Smallest accepted value in seconds (0 allows zero). Default 0. */
  min?: number
  /** Largest accepted value in seconds. Default MAX_DURATION_SECONDS. */
  max?: number
}

/**
 * Parse a duration input into whole seconds: `90`, `90s`, `2m`, `1h30m`, `1m30s` (units in the
 * order h, m, s). Milliseconds, fractions, negatives and spaces are rejected with a ConfigError
 * naming `input`.
 */
export function parseDuration(input: string, value: string, limits: DurationLimits = {}): number {
  const min = limits.min ?? 0
  const max = limits.max ?? MAX_DURATION_SECONDS
  const v = value.trim()
  const seconds = toSeconds(input, v)
  if (seconds < min) {
    const reason = min === 1 ? 'must be more than 0' : `must be at least ${formatDuration(min)}`
    throw inputError(input, reason, value)
  }
  if (seconds > max) {
    const days = max % 86400 === 0 && max >= 86400 ? ` (${max / 86400} days)` : ''
    throw inputError(input, `must be at most ${formatDuration(max)}${days}`, value)
  }
  return seconds
}

function toSeconds(input: string, v: string): number {
  if (/^\d+$/.test(v)) return Number(v)
  if (/^-\s*\d/.test(v)) throw inputError(input, 'must not be negative', v)
  if (/^\d+(\.\d+)?ms$/.test(v)) {
    throw inputError(input, 'durations are whole seconds, milliseconds are not supported: use "1s" or more', v)
  }
  if (/^\d*\.\d+[hms]?$/.test(v) || /\d\.\d+[hm]/.test(v)) {
    throw inputError(input, `${EXPECTED}, in whole units (write "1m30s", not "1.5m")`, v)
  }
  const m = v === '' ? null : FORM.exec(v)
  if (!m) throw inputError(input, EXPECTED, v)
  const [, h = '0', mi = '0', s = '0'] = m
  return Number(h) * 3600 + Number(mi) * 60 + Number(s)
}

/** Seconds as the shortest duration text parseDuration reads back: 90 -> `1m30s`, 0 -> `0s`. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`
}
