/**
 * What a published action carries besides its code: the Marketplace metadata within GitHub's
 * limits, the policy files the README links to, a changelog in the "Keep a Changelog" shape that
 * agrees with package.json, and a Dependabot config that covers every dependency manifest.
 */
import { describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as yaml from 'js-yaml'
import { checkVersion, prepareRelease, releaseNotes } from '../../../scripts/changelog.js'

const action = yaml.load(fs.readFileSync('action.yml', 'utf8')) as {
  name: string
  description: string
  branding: { icon: string; color: string }
}
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }
const readme = fs.readFileSync('README.md', 'utf8')
const changelog = fs.readFileSync('CHANGELOG.md', 'utf8')

describe('Marketplace metadata (action.yml)', () => {
  it('has a short name and a description of at most 125 characters', () => {
    expect(action.name.length).toBeGreaterThan(3)
    expect(action.name.length).toBeLessThanOrEqual(40)
    expect(action.description.length).toBeLessThanOrEqual(125)
  })

  it('uses a branding colour GitHub accepts', () => {
    expect(['white', 'black', 'yellow', 'blue', 'green', 'orange', 'red', 'purple', 'gray-dark']).toContain(action.branding.color)
  })

  it('is the name the README gives as the Marketplace listing, on its first screen', () => {
    const at = readme.indexOf(`Marketplace as **${action.name}**`)
    expect(at).toBeGreaterThan(0)
    expect(readme.slice(0, at).split('\n').length).toBeLessThan(30)
  })
})

describe('policy files', () => {
  it.each(['LICENSE', 'SECURITY.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'dist/licenses.txt'])(
    '%s exists and the README links to it',
    (file) => {
      expect(fs.statSync(file).size).toBeGreaterThan(500)
      expect(readme).toContain(`](${file})`)
    }
  )
})

describe('CHANGELOG.md', () => {
  const versions = [...changelog.matchAll(/^## \[([^\]]+)\](.*)$/gm)].map((m) => [m[1], m[2]] as const)

  it('has the Keep a Changelog shape: a title, Unreleased first, then dated X.Y.Z releases, newest first', () => {
    expect(changelog.split('\n')[0]).toBe('# Changelog')
    expect(versions[0]).toEqual(['Unreleased', ''])
    const released = versions.slice(1)
    for (const [version, rest] of released) {
      expect(() => checkVersion(version)).not.toThrow()
      expect(rest).toMatch(/^ - \d{4}-\d{2}-\d{2}$/)
    }
    const sorted = [...released].map(([v]) => v).sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))
    expect(released.map(([v]) => v)).toEqual(sorted)
  })

  it("agrees with package.json: its version is released here, or is the next release's", () => {
    const newest = versions[1]?.[0]
    if (newest === undefined || newest !== pkg.version) {
      // Not released yet: the Unreleased entries become this version.
      expect(() => releaseNotes(prepareRelease(changelog, pkg.version, '2099-01-01'), pkg.version)).not.toThrow()
    } else {
      expect(releaseNotes(changelog, pkg.version).length).toBeGreaterThan(0)
    }
  })
})

describe('Dependabot', () => {
  const config = yaml.load(fs.readFileSync('.github/dependabot.yml', 'utf8')) as {
    updates: Array<{ 'package-ecosystem': string; directory?: string; directories?: string[]; schedule: { interval: string } }>
  }
  const dirs = (ecosystem: string): string[] =>
    config.updates.filter((u) => u['package-ecosystem'] === ecosystem).flatMap((u) => u.directories ?? [u.directory ?? ''])

  it('covers npm, GitHub Actions and every Go module of the local cluster, weekly', () => {
    expect(dirs('npm')).toEqual(['/'])
    expect(dirs('github-actions')).toEqual(['/'])
    const goModules = fs
      .readdirSync('test-cluster/go')
      .filter((d) => fs.existsSync(`test-cluster/go/${d}/go.mod`))
      .map((d) => `/test-cluster/go/${d}`)
    expect(goModules.length).toBeGreaterThan(0)
    expect(dirs('gomod').sort()).toEqual(goModules.sort())
    for (const u of config.updates) expect(u.schedule.interval).toBe('weekly')
  })
})
