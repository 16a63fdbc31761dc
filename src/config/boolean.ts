import { inputError } from './input-error.js'

/**
 * The one boolean grammar of every input: YAML 1.2 core booleans only, as core.getBooleanInput
 * reads them (`yes`, `on`, `1` are typos as often as they are intent).
 */
export function readBoolean(name: string, value: string): boolean {
  if (value === 'true' || value === 'True' || value === 'TRUE') return true
  if (value === 'false' || value === 'False' || value === 'FALSE') return false
  throw inputError(name, 'expected true or false', value)
}
