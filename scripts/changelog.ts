/**
 * CHANGELOG.md ("Keep a Changelog" shape) for the release process:
 *
 *   node scripts/changelog.ts notes X.Y.Z [file]          # print the section of X.Y.Z (the release notes)
 *   node scripts/changelog.ts prepare X.Y.Z [date] [file]  # move Unreleased to "## [X.Y.Z] - date"
 *
 * Runs on Node 24 as plain TypeScript (type stripping): only erasable syntax here.
 */
import * as fs from 'node:fs'

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/
const HEADING = /^## +\[?([^\]\s]+)\]?(.*)$/gm

/** Throws unless `version` is a plain X.Y.Z release version (no v prefix, no pre-release). */
export function checkVersion(version: string): void {
  if (!SEMVER.test(version)) throw new Error(`Version "${version}" is not a release version: expected X.Y.Z, e.g. 1.2.3 (no leading v)`)
}

interface Section {
  name: string
  start: number // index of the heading line
  bodyStart: number
  end: number
}

function sections(text: string): Section[] {
  const found = [...text.matchAll(HEADING)]
  return found.map((m, i) => {
    // Link reference definitions ("[1.0.0]: https://...") close the last section.
    const next =
      i + 1 < found.length ? found[i + 1].index : text.search(/^\[[^\]]+\]: /m) >= 0 ? text.search(/^\[[^\]]+\]: /m) : text.length
    return { name: m[1], start: m.index, bodyStart: m.index + m[0].length, end: next }
  })
}

/** The body of the section of `version` (the release notes), trimmed; throws when absent or empty. */
export function releaseNotes(text: string, version: string): string {
  checkVersion(version)
  const section = sections(text).find((s) => s.name === version)
  if (!section)
    throw new Error(`CHANGELOG.md has no "## [${version}] - YYYY-MM-DD" section: run 'bash scripts/release.sh prepare ${version}' first`)
  const body = text.slice(section.bodyStart, section.end).trim()
  if (!body) throw new Error(`CHANGELOG.md's section for ${version} is empty: say what changed`)
  return body
}

/** The changelog with the Unreleased entries moved under "## [version] - date" and Unreleased left empty. */
export function prepareRelease(text: string, version: string, date: string): string {
  checkVersion(version)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new Error(`Date "${date}" is not YYYY-MM-DD`)
  const all = sections(text)
  if (all.some((s) => s.name === version)) throw new Error(`CHANGELOG.md already has a section for ${version}`)
  const unreleased = all.find((s) => s.name.toLowerCase() === 'unreleased')
  if (!unreleased) throw new Error('CHANGELOG.md has no "## [Unreleased]" section')
  const body = text.slice(unreleased.bodyStart, unreleased.end).trim()
  if (!body) throw new Error(`CHANGELOG.md's Unreleased section is empty: nothing to release as ${version}`)
  const after = text.slice(unreleased.end)
  return `${text.slice(0, unreleased.start)}## [Unreleased]\n\n## [${version}] - ${date}\n\n${body}\n${after ? `\n${after}` : ''}`
}

function main(args: string[]): void {
  const [command, version, ...rest] = args
  if (command === 'notes' && version) {
    process.stdout.write(`${releaseNotes(fs.readFileSync(rest[0] ?? 'CHANGELOG.md', 'utf8'), version)}\n`)
  } else if (command === 'prepare' && version) {
    const date = rest[0] ?? new Date().toISOString().slice(0, 10)
    const file = rest[1] ?? 'CHANGELOG.md'
    fs.writeFileSync(file, prepareRelease(fs.readFileSync(file, 'utf8'), version, date))
  } else {
    throw new Error('usage: node scripts/changelog.ts notes X.Y.Z [file] | prepare X.Y.Z [YYYY-MM-DD] [file]')
  }
}

if (import.meta.main) {
  try {
    main(process.argv.slice(2))
  } catch (e) {
    process.stderr.write(`changelog: ${(e as Error).message}\n`)
    process.exit(1)
  }
}
