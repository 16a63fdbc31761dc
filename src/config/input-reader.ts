import { readBoolean } from './boolean.js'
import { parseDuration } from './duration.js'
import { inputError } from './input-error.js'
import { inputSpec, type InputName, type InputNameOfKind, type InputWithDefault } from './inputs.js'

/** The inputs as the runner gives them: a missing input is '' or absent. */
export type Inputs = Readonly<Record<string, string | undefined>>

/** An input's value, trimmed; when empty, its catalogue default, else ''. */
export function inputValue(inputs: Inputs, name: InputName): string {
  return (inputs[name] ?? '').trim() || (inputSpec(name).default ?? '')
}

/** An input's value, trimmed, or undefined when it is empty and has no default. */
export function optionalInput(inputs: Inputs, name: InputName): string | undefined {
  return inputValue(inputs, name) || undefined
}

type DurationInput = InputNameOfKind<'duration'>

/**
 * A duration input in seconds, by the one duration grammar and the catalogue's limits; undefined
 * when it is empty and has no default. Throws the ConfigError of parseDuration.
 */
export function durationInput<N extends DurationInput>(inputs: Inputs, name: N): N extends InputWithDefault ? number : number | undefined
export function durationInput(inputs: Inputs, name: DurationInput): number | undefined {
  const value = inputValue(inputs, name)
  return value === '' ? undefined : parseDuration(name, value, inputSpec(name).limits)
}

/** A boolean input by the one boolean grammar; empty takes the catalogue default (false when none). */
export function booleanInput(inputs: Inputs, name: InputNameOfKind<'boolean'>): boolean {
  const value = inputValue(inputs, name)
  return value === '' ? false : readBoolean(name, value)
}

/** A choice input: its value (or default) must be one of `allowed`, exactly as written. */
export function choiceInput<T extends string>(inputs: Inputs, name: InputNameOfKind<'choice'>, allowed: readonly T[]): T {
  const value = inputValue(inputs, name)
  if ((allowed as readonly string[]).includes(value)) return value as T
  const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed.join('')
  throw inputError(name, `expected ${list}`, value)
}
