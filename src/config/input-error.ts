import { ConfigError, quote } from '../errors.js'

/** `Input 'steps' is invalid: <reason> (got "<value>").` — the one shape of a bad-input error. */
export function inputError(input: string, reason: string, value: string): ConfigError {
  return new ConfigError(`Input '${input}' is invalid: ${reason} (got ${quote(value)}).`)
}

/** A required input left empty: there is no value to quote, so say what it is for instead. */
export function missingInput(input: string, reason: string): ConfigError {
  return new ConfigError(`Input '${input}' is required: ${reason}.`)
}
