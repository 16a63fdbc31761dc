import { inputError } from './input-error.js'

/** The longest duration any input accepts: far beyond any job (GitHub's hard limit is 35 days). */
export const MAX_DURATION_SECONDS = 35 * 24 * 3600

const EXPECTED = 'expected a duration like "30s", "1m30s", "1.5s" or "1500ms"'
const UNITS = { h: 3600, m: 60, s: 1, ms: 0.001 } as const
type Unit = keyof typeof UNITS
const ORDER: readonly Unit[] = ['h', 'm', 's', 'ms']

export interface DurationLimits {
  /** Smallest accepted value in seconds (0 allows zero). Default 0. */
  min?: number
  /** Largest accepted value in seconds. Default MAX_DURATION_SECONDS. */
  max?: number
  /** Only whole seconds (a value that ends up in a Kubernetes field of whole seconds). */
  whole?: boolean
  /** 0 is also accepted, below min: what it means (`only at the end of each step`). */
  zero?: string
}

/**
 * The one duration grammar of every input: a bare number of seconds (`90`, `1.5`), or number+unit
 * terms with units h, m, s, ms, each at most once and largest first (`1h30m`, `1m30s`, `1.5s`,
 * `1500ms`). A fraction only on the last term (`1.5m`, not `1.5m30s`). Returns seconds, or why
 * the text is not a duration.
 */
export function readDuration(text: string): { seconds: number } | { problem: string } {
  const v = text.trim()
  if (/^\d+(\.\d+)?$/.test(v)) return { seconds: Number(v) }
  if (/^-\s*\d/.test(v)) return { problem: 'must not be negative' }
  const terms = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)]
  if (v === '' || terms.map((t) => t[0]).join('') !== v) return { problem: EXPECTED }
  let seconds = 0
  let previous = -1
  for (const [i, [, n, unit]] of terms.entries()) {
    const rank = ORDER.indexOf(unit as Unit)
    if (rank <= previous) return { problem: `${EXPECTED}, with each unit once and the largest first (write "1m30s", not "30s1m")` }
    if (n!.includes('.') && i < terms.length - 1)
      return { problem: `${EXPECTED}, with a fraction only on the last unit (write "1m45s", not "1.5m15s")` }
    previous = rank
    seconds += Number(n) * UNITS[unit as Unit]
  }
  return { seconds: Math.round(seconds * 1000) / 1000 }
}

/**
 * Parse a duration input into seconds (readDuration's grammar) and check its limits; a
 * ConfigError names `input`, quotes the value and says what was expected.
 */
export function parseDuration(input: string, value: string, limits: DurationLimits = {}): number {
  const min = limits.min ?? 0
  const max = limits.max ?? MAX_DURATION_SECONDS
  const read = readDuration(value)
  if ('problem' in read) throw inputError(input, read.problem, value.trim())
  const { seconds } = read
  if (seconds === 0 && limits.zero !== undefined) return 0
  if (seconds < min) {
    const reason =
      limits.zero !== undefined
        ? `must be at least ${formatDuration(min)}, or 0 for ${limits.zero}`
        : seconds === 0 && min <= 1
          ? 'must be more than 0'
          : `must be at least ${formatDuration(min)}`
    throw inputError(input, reason, value)
  }
  if (seconds > max) {
    const days = max % 86400 === 0 && max >= 86400 ? ` (${max / 86400} days)` : ''
    throw inputError(input, `must be at most ${formatDuration(max)}${days}`, value)
  }
  if (limits.whole && !Number.isInteger(seconds)) throw inputError(input, 'must be whole seconds (write "15s", not "15.5s")', value)
  return seconds
}

/** Seconds as the shortest duration text readDuration reads back: 90 -> `1m30s`, 0.5 -> `500ms`. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const whole = Math.floor(seconds)
  const ms = Math.round((seconds - whole) * 1000)
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = whole % 60
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}${ms ? `${ms}ms` : ''}`
}
