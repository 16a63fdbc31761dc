/** scripts/changelog.ts: the release notes are exactly one version's section of CHANGELOG.md. */
import { describe, expect, it } from '@jest/globals'
import { checkVersion, prepareRelease, releaseNotes } from '../../../scripts/changelog.js'

const text = [
  '# Changelog',
  '',
  'Intro.',
  '',
  '## [Unreleased]',
  '',
  '### Added',
  '',
  '- New thing.',
  '',
  '## [1.1.0] - 2026-05-02',
  '',
  '### Fixed',
  '',
  '- A fix.',
  '',
  '## [1.0.0] - 2026-01-10',
  '',
  '- First.',
  '',
  '[1.1.0]: https://example.invalid/compare/v1.0.0...v1.1.0',
  '[1.0.0]: https://example.invalid/releases/v1.0.0',
  ''
].join('\n')

describe('releaseNotes', () => {
  it("returns one version's section without its heading, the next section or the link references", () => {
    expect(releaseNotes(text, '1.1.0')).toBe('### Fixed\n\n- A fix.')
    expect(releaseNotes(text, '1.0.0')).toBe('- First.')
  })

  it('refuses a version with no section, or an empty one, saying what to do', () => {
    expect(() => releaseNotes(text, '1.2.0')).toThrow(
      `CHANGELOG.md has no "## [1.2.0] - YYYY-MM-DD" section: run 'bash scripts/release.sh prepare 1.2.0' first`
    )
    expect(() => releaseNotes('## [2.0.0] - 2026-01-01\n\n## [1.0.0] - 2025-01-01\n- x\n', '2.0.0')).toThrow('section for 2.0.0 is empty')
  })

  it('does not take 1.0.0 for 1.0.0-rc.1 or 11.0.0', () => {
    expect(() => releaseNotes('## [11.0.0] - 2026-01-01\n- a\n## [1.0.0-rc.1] - 2026-01-01\n- b\n', '1.0.0')).toThrow('no "## [1.0.0]')
  })
})

describe('prepareRelease', () => {
  it('moves the Unreleased entries under the dated version and leaves Unreleased empty', () => {
    const out = prepareRelease(text, '1.2.0', '2026-12-01')
    expect(out).toContain('## [Unreleased]\n\n## [1.2.0] - 2026-12-01\n\n### Added\n\n- New thing.\n\n## [1.1.0] - 2026-05-02')
    expect(releaseNotes(out, '1.2.0')).toBe('### Added\n\n- New thing.')
    expect(releaseNotes(out, '1.1.0')).toBe(releaseNotes(text, '1.1.0'))
  })

  it('works when Unreleased is the only section', () => {
    const out = prepareRelease('# Changelog\n\n## [Unreleased]\n\n- One.\n', '1.0.0', '2026-12-01')
    expect(out).toBe('# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-12-01\n\n- One.\n')
  })

  it('refuses an existing version, an empty Unreleased, a bad date or a bad version', () => {
    expect(() => prepareRelease(text, '1.1.0', '2026-12-01')).toThrow('already has a section for 1.1.0')
    expect(() => prepareRelease('## [Unreleased]\n\n## [1.0.0] - 2026-01-01\n- x\n', '1.0.1', '2026-12-01')).toThrow(
      'Unreleased section is empty'
    )
    expect(() => prepareRelease(text, '1.2.0', '1 Dec 2026')).toThrow('Date "1 Dec 2026" is not YYYY-MM-DD')
    expect(() => checkVersion('v1.2.0')).toThrow('Version "v1.2.0" is not a release version')
    expect(() => checkVersion('1.2')).toThrow()
    expect(() => checkVersion('1.2.0-beta.1')).toThrow()
  })
})
