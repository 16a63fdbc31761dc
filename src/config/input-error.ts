import yaml from 'js-yaml'
import { ConfigError, quote } from '../errors.js'

/**
 * `Input 'steps' is invalid: <reason> (got "<value>").` — the one shape of a bad-input error, for
 * every input. A value parsed from YAML is quoted as the user wrote it (`"{max-increase: 1}"`).
 */
export function inputError(input: string, reason: string, value: unknown): ConfigError {
  return new ConfigError(`Input '${input}' is invalid: ${reason} (got ${got(value)}).`)
}

/** A value as the user wrote it, quoted: `"{max-increase: 1}"`, `"99"`, `nothing`. */
export function got(value: unknown): string {
  if (value === undefined || value === null) return 'nothing'
  if (typeof value === 'string') return quote(value)
  return quote(yaml.dump(value, { flowLevel: 0, lineWidth: -1 }).trim())
}

/** A required input left empty: there is no value to quote, so say what it is for instead. */
export function missingInput(input: string, reason: string): ConfigError {
  return new ConfigError(`Input '${input}' is required: ${reason}.`)
}

/**
 * A bad input whose value is not worth quoting whole (a header of one webhook, a key of one check):
 * the reason names the part and quotes it.
 */
export function invalidInput(input: string, reason: string): ConfigError {
  return new ConfigError(`Input '${input}' is invalid: ${reason}.`)
}
