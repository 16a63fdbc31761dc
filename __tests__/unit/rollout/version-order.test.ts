import { describe, expect, it } from '@jest/globals'
import { decideVersionOrder, type VersionOrderDecision } from '../../../src/rollout/version-order.js'

const target = 'VirtualService "shop/reviews"'
const decide = (stable: string, canary: string, opts: { order?: 'semver' | 'none'; allowDowngrade?: boolean } = {}): VersionOrderDecision =>
  decideVersionOrder({ stable, canary, order: opts.order ?? 'semver', allowDowngrade: opts.allowDowngrade ?? false, target })

describe('version-order: semver', () => {
  it.each([
    ['1.4.0', '1.4.1'],
    ['1.4.9', '1.10.0'], // numeric, not text, order
    ['v1.4.0', '1.5.0'], // a leading v on either side
    ['1.4.0', 'v2.0.0'],
    ['1.4.0-rc.1', '1.4.0'], // the release beats its pre-release
    ['1.4.0-alpha', '1.4.0-alpha.1'],
    ['1.4.0-alpha.1', '1.4.0-alpha.beta'], // numeric identifiers are lower than alphanumeric ones
    ['1.4.0-beta.2', '1.4.0-beta.11'],
    ['1.4.0-rc.1', '1.4.0-rc.1.1'],
    ['1.3.9', '1.4.0-rc.1'] // a pre-release of a higher version is newer
  ])('lets %s -> %s through: newer', (stable, canary) => {
    expect(decide(stable, canary)).toEqual({ kind: 'ok' })
  })

  it.each([
    ['1.4.1', '1.4.0', 'is older than the stable version "1.4.1"'],
    ['1.10.0', '1.9.0', 'is older than the stable version "1.10.0"'],
    ['1.4.0', '1.4.0-rc.1', 'is older than the stable version "1.4.0"'],
    ['1.4.0-beta.11', '1.4.0-beta.2', 'is older than the stable version "1.4.0-beta.11"'],
    ['v2.0.0', '1.9.9', 'is older than the stable version "v2.0.0"'],
    // Build metadata does not count: the same precedence is not newer.
    [
      '1.4.0+build.1',
      '1.4.0+build.2',
      'has the same semver precedence as the stable version "1.4.0+build.1" (build metadata does not count)'
    ],
    ['v1.4.0', '1.4.0', 'has the same semver precedence as the stable version "v1.4.0" (build metadata does not count)']
  ])('refuses %s -> %s', (stable, canary, what) => {
    expect(decide(stable, canary)).toEqual({
      kind: 'refuse',
      reason:
        `Input 'version-order' is "semver": the new version "${canary}" ${what} on ${target}, so this would be a downgrade. ` +
        `Release a higher version, or set input 'allow-downgrade' to true to roll back on purpose (or 'version-order' to none). Nothing was changed.`
    })
  })

  it('lets a downgrade through with allow-downgrade, saying so for the report', () => {
    expect(decide('1.4.1', '1.4.0', { allowDowngrade: true })).toEqual({
      kind: 'downgrade',
      note: `downgrade: 1.4.0 is older than the stable 1.4.1 on ${target}; allowed by input 'allow-downgrade'`
    })
    expect(decide('1.4.0+a', '1.4.0+b', { allowDowngrade: true })).toEqual({
      kind: 'downgrade',
      note: `downgrade: 1.4.0+b is not newer than the stable 1.4.0+a on ${target}; allowed by input 'allow-downgrade'`
    })
  })

  it('lets a newer version through with allow-downgrade too (nothing to say)', () => {
    expect(decide('1.4.0', '1.5.0', { allowDowngrade: true })).toEqual({ kind: 'ok' })
  })

  it.each([
    ['v1', 'v2', 'the stable "v1" and new "v2" versions are not semver'],
    ['1.4.0', 'green', 'the new "green" version is not semver'],
    ['2024-05-01', '1.0.0', 'the stable "2024-05-01" version is not semver'],
    ['1.4', '1.5', 'the stable "1.4" and new "1.5" versions are not semver'] // two numbers are not semver
  ])('does not compare %s -> %s, and says so', (stable, canary, which) => {
    expect(decide(stable, canary)).toEqual({
      kind: 'ok',
      note: `version-order: semver: ${which} (like 1.4.0 or v1.4.0-rc.1), so the versions are not compared (as with version-order: none)`
    })
  })

  it('has nothing to compare without a stable version, or for the same version (a re-run)', () => {
    expect(decide('', '1.0.0')).toEqual({ kind: 'ok' })
    expect(decide('1.0.0', '1.0.0')).toEqual({ kind: 'ok' })
  })
})

describe('version-order: none', () => {
  it('lets anything through without a note', () => {
    expect(decide('2.0.0', '1.0.0', { order: 'none' })).toEqual({ kind: 'ok' })
    expect(decide('v1', 'v2', { order: 'none' })).toEqual({ kind: 'ok' })
  })
})
