import { describeExposure } from '../rollout/exposure.js'
import type { Exposure, RequestMatch, Step } from '../rollout/types.js'
import { INPUT } from './inputs.js'
import { inputError } from './input-error.js'

/**
 * Parse the 'steps' input: canary weights 1..100 and the word `pause`, separated by commas and/or
 * whitespace, e.g. `10,25,pause,50,100` or `10% 25% 50% 100%`. Weights strictly increase and end at
 * 100 (the last step promotes); a pause stops the run until a promote, so it needs traffic before it
 * (not first), something left to promote after it (not after 100), and one at a time.
 *
 * Before the first weight, steps may expose the canary at weight 0: `header:NAME=VALUE` (or
 * `NAME~REGEX`) and `cookie:NAME=VALUE` (or `~REGEX`) send only matching requests to it;
 * `mirror:PERCENT` copies that share of the stable's requests to it, their responses dropped.
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
    const kind = /^([a-z]+):/i.exec(token)?.[1]?.toLowerCase()
    if (kind !== undefined) {
      const exposure = parseExposure(kind, token.slice(kind.length + 1), position, token, fail)
      if (last) {
        fail(
          `${JSON.stringify(token)} at position ${position} comes after weight ${last.weight} at position ${last.position}: ` +
            `header, cookie and mirror steps come before the first weight, while no random traffic reaches the canary`
        )
      }
      steps.push(exposure)
      return
    }
    if (token.toLowerCase() === 'pause') {
      if (steps.length === 0)
        fail(`pause at position ${position} comes before any traffic reaches the canary: put it after a weight, like "10,pause,100"`)
      if (steps.at(-1)?.kind === 'pause') fail(`pause at position ${position} follows another pause: one pause is enough`)
      if (last?.weight === 100) fail(`pause at position ${position} comes after 100, when nothing is left to promote`)
      steps.push({ kind: 'pause' })
      return
    }
    const m = /^(-?\d+(?:\.\d+)?)%?$/.exec(token)
    if (!m)
      fail(
        `${JSON.stringify(token)} at position ${position} is neither a weight from 1 to 100, "pause", nor a step like "header:x-canary=always", "cookie:beta=yes" or "mirror:50"`
      )
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
  if (!last) fail('no weight follows: the schedule must end at 100, like "header:x-canary=always,100"')
  if (last!.weight !== 100) {
    fail(`the last weight is ${last!.weight} but must be 100: the last step promotes the canary to all traffic`)
  }
  return steps
}

const HEADER_NAME = /^[a-z0-9][a-z0-9_.-]*$/
// A cookie name is an RFC 6265 token; a cookie value has no space, quote, comma, semicolon or backslash.
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$/

function parseExposure(kind: string, rest: string, position: number, token: string, fail: (reason: string) => never): Exposure {
  const at = `${JSON.stringify(token)} at position ${position}`
  if (kind === 'mirror') {
    const m = /^(\d+(?:\.\d+)?)%?$/.exec(rest)
    if (!m) fail(`${at} must give a percentage of the stable's requests to mirror, like "mirror:50"`)
    const percent = Number(m![1])
    if (percent <= 0 || percent > 100) fail(`${at} mirrors ${m![1]} %, but the share must be above 0 and at most 100`)
    return { kind: 'mirror', percent }
  }
  if (kind !== 'header' && kind !== 'cookie') {
    fail(`${at} has an unknown step kind ${JSON.stringify(kind)}: expected "header:", "cookie:" or "mirror:" (or a weight, or "pause")`)
  }
  const m = /^([^=~]*)([=~])(.*)$/.exec(rest)
  if (!m)
    fail(
      `${at} must be ${kind}:NAME=VALUE (exact) or ${kind}:NAME~REGEX, like "${kind === 'header' ? 'header:x-canary=always' : 'cookie:beta=yes'}"`
    )
  const [, rawName, sign, value] = m!
  const op: RequestMatch['op'] = sign === '=' ? 'exact' : 'regex'
  const name = kind === 'header' ? rawName!.toLowerCase() : rawName!
  if (kind === 'header' && !HEADER_NAME.test(name))
    fail(`${at} names header ${JSON.stringify(rawName)}: expected letters, digits and - _ . only`)
  if (kind === 'cookie' && !COOKIE_NAME.test(name))
    fail(`${at} names cookie ${JSON.stringify(rawName)}: expected a cookie name (letters, digits, no = ; or space)`)
  if (value === '') fail(`${at} has an empty value: expected a value (or a regex after ~) to match`)
  if (op === 'exact' && kind === 'cookie' && !COOKIE_VALUE.test(value!)) {
    fail(`${at} has cookie value ${JSON.stringify(value)}: expected no quote, backslash or semicolon`)
  }
  if (op === 'regex') {
    try {
      new RegExp(value!)
    } catch (err) {
      fail(`${at} has an invalid regex ${JSON.stringify(value)} (${(err as Error).message}): expected an RE2 expression`)
    }
  }
  return { kind: 'match', match: { on: kind as RequestMatch['on'], name, op, value: value! } }
}

/** The schedule as the reports show it: `header:x-canary=always → 10% → 25% → pause → 100%`. */
export function describeSchedule(steps: readonly Step[]): string {
  return steps.map((s) => (s.kind === 'pause' ? 'pause' : s.kind === 'weight' ? `${s.weight}%` : describeExposure(s))).join(' → ')
}

/** The schedule in the canonical form of the 'steps' input (`mirror:50,10,25,pause,100`); parseSchedule reads it back. */
export function formatSchedule(steps: readonly Step[]): string {
  return steps.map((s) => (s.kind === 'pause' ? 'pause' : s.kind === 'weight' ? String(s.weight) : describeExposure(s))).join(',')
}
