import type { Step } from '../rollout/types.js'
import { INPUT } from './inputs.js'
import { inputError } from './input-error.js'

/**
 * Parse the 'steps' input: canary weights 1..100 and the word `pause`, separated by commas and/or
 * whitespace, e.g. `10,25,pause,50,100` or `10% 25% 50% 100%`. Weights strictly increase and end at
 * 100 (the last step promotes); a pause stops the run until a promote, so it needs traffic before it
 * (not first), something left to promote after it (not after 100), and one at a time.
 */
export function parseSchedule(value: string): Step[] {
  const fail = (reason: string): never => {
    throw inputError(INPUT.steps, reason, value)
  }
  const trimmed = value.trim()
  if (trimmed === '') fail('expected canary weights ending at 100, like "10,25,50,100"')
  const tokens = trimmed.split(/\s*,\s*|\s+/)
  const steps: Step[] = []
  let last: { weight: number; position: number } | undefined
  tokens.forEach((token, i) => {
    const position = i + 1
    if (token === '') fail(`entry ${position} is empty: expected a weight from 1 to 100 or "pause"`)
    if (token.toLowerCase() === 'pause') {
      if (!last)
        fail(`pause at position ${position} comes before any traffic reaches the canary: put it after a weight, like "10,pause,100"`)
      if (steps.at(-1)?.kind === 'pause') fail(`pause at position ${position} follows another pause: one pause is enough`)
      if (last!.weight === 100) fail(`pause at position ${position} comes after 100, when nothing is left to promote`)
      steps.push({ kind: 'pause' })
      return
    }
    const m = /^(-?\d+(?:\.\d+)?)%?$/.exec(token)
    if (!m) fail(`${JSON.stringify(token)} at position ${position} is neither a weight from 1 to 100 nor "pause"`)
    const text = m![1]!
    if (text.includes('.')) fail(`weight ${text} at position ${position} must be a whole number from 1 to 100`)
    const weight = Number(text)
    if (weight < 1 || weight > 100) fail(`weight ${text} at position ${position} must be between 1 and 100`)
    if (last && weight === last.weight) {
      fail(`weight ${weight} at position ${position} repeats position ${last.position}: each weight must be higher than the one before`)
    }
    if (last && weight < last.weight) {
      fail(
        `weight ${weight} at position ${position} is lower than ${last.weight} at position ${last.position}: each weight must be higher than the one before`
      )
    }
    steps.push({ kind: 'weight', weight })
    last = { weight, position }
  })
  if (last!.weight !== 100) {
    fail(`the last weight is ${last!.weight} but must be 100: the last step promotes the canary to all traffic`)
  }
  return steps
}

/** The schedule as the reports show it: `10% → 25% → pause → 100%`. */
export function describeSchedule(steps: readonly Step[]): string {
  return steps.map((s) => (s.kind === 'pause' ? 'pause' : `${s.weight}%`)).join(' → ')
}

/** The schedule in the canonical form of the 'steps' input (`10,25,pause,100`); parseSchedule reads it back. */
export function formatSchedule(steps: readonly Step[]): string {
  return steps.map((s) => (s.kind === 'pause' ? 'pause' : String(s.weight))).join(',')
}
