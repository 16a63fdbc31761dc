/** Steps that expose the canary without a weight: matching requests (a route of their own) or mirrored ones. */
import type { Exposure, RequestMatch, Step } from './types.js'

/** The canary weight a step sets: match and mirror steps keep it at 0. */
export function stepWeight(step: Step): number | undefined {
  if (step.kind === 'pause') return undefined
  return step.kind === 'weight' ? step.weight : 0
}

/** The exposure a step sets (none for weight and pause steps). */
export function exposureOf(step: Step | undefined): Exposure | undefined {
  return step?.kind === 'match' || step?.kind === 'mirror' ? step : undefined
}

/** Whether two exposures are the same (both absent included). */
export function sameExposure(a: Exposure | undefined, b: Exposure | undefined): boolean {
  if (!a || !b) return a === b
  if (a.kind === 'mirror' || b.kind === 'mirror') return a.kind === 'mirror' && b.kind === 'mirror' && a.percent === b.percent
  return a.match.on === b.match.on && a.match.name === b.match.name && a.match.op === b.match.op && a.match.value === b.match.value
}

/** A match as the schedule writes it: `header:x-canary=always`, `cookie:beta~^(yes|1)$`. */
export function describeMatch(m: RequestMatch): string {
  return `${m.on}:${m.name}${m.op === 'exact' ? '=' : '~'}${m.value}`
}

/** An exposure as the schedule writes it: `header:x-canary=always`, `mirror:50`. */
export function describeExposure(e: Exposure): string {
  return e.kind === 'mirror' ? `mirror:${e.percent}` : describeMatch(e.match)
}
