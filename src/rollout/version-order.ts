import { compare, parse } from 'semver'
import { quote } from '../errors.js'
import type { VersionOrder } from './types.js'

export { VERSION_ORDERS, type VersionOrder } from './types.js'

/** What the version rule says about releasing `canary` over `stable`. */
export type VersionOrderDecision =
  /** Newer, or not compared (order none, or a version that is not semver); `note` says why when not compared. */
  | { kind: 'ok'; note?: string }
  /** Not newer, let through by allow-downgrade: the report says so. */
  | { kind: 'downgrade'; note: string }
  | { kind: 'refuse'; reason: string }

export interface VersionOrderInput {
  stable: string
  canary: string
  order: VersionOrder
  allowDowngrade: boolean
  /** What is being released where, for the messages: `VirtualService "ns/name"`. */
  target: string
}

/**
 * Semver 2.0 precedence of the version labels (a leading `v` allowed, build metadata ignored,
 * pre-releases lower than their release). Equal precedence is not newer. Versions that do not both
 * parse as semver are not compared, and the note says so.
 */
export function decideVersionOrder(input: VersionOrderInput): VersionOrderDecision {
  const { stable, canary, order } = input
  if (order === 'none' || stable === '' || stable === canary) return { kind: 'ok' }
  const s = parse(stable)
  const c = parse(canary)
  if (!s || !c) {
    const which = [!s && `stable ${quote(stable)}`, !c && `new ${quote(canary)}`].filter(Boolean).join(' and ')
    const are = !s && !c ? 'versions are' : 'version is'
    return {
      kind: 'ok',
      note: `version-order: semver: the ${which} ${are} not semver (like 1.4.0 or v1.4.0-rc.1), so the versions are not compared (as with version-order: none)`
    }
  }
  const cmp = compare(c, s)
  if (cmp > 0) return { kind: 'ok' }
  const what =
    cmp === 0
      ? `has the same semver precedence as the stable version ${quote(stable)} (build metadata does not count)`
      : `is older than the stable version ${quote(stable)}`
  if (input.allowDowngrade) {
    return {
      kind: 'downgrade',
      note: `downgrade: ${canary} ${cmp === 0 ? 'is not newer than' : 'is older than'} the stable ${stable} on ${input.target}; allowed by input 'allow-downgrade'`
    }
  }
  return {
    kind: 'refuse',
    reason:
      `Input 'version-order' is "semver": the new version ${quote(canary)} ${what} on ${input.target}, so this would be a downgrade. ` +
      `Release a higher version, or set input 'allow-downgrade' to true to roll back on purpose (or 'version-order' to none). Nothing was changed.`
  }
}
