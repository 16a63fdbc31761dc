/**
 * scripts/release.sh in a scratch copy of the project with a local bare repository as `origin` and
 * a stand-in `gh` on PATH (it answers the CI query and records `release create`). Everything is
 * real git and the real bundle; nothing leaves the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = process.cwd()
let tmp: string
let work: string
let origin: string
let ghLog: string

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

function sh(cmd: string, args: string[], cwd = work, env: Record<string, string> = {}): Run {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(tmp, 'bin')}:${process.env.PATH}`, FAKE_GH_LOG: ghLog, ...env }
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function git(...args: string[]): string {
  const r = sh('git', args)
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`)
  return r.stdout.trim()
}

const release = (args: string[], env: Record<string, string> = {}): Run => sh('bash', ['scripts/release.sh', ...args], work, env)
const remoteTags = (): string => sh('git', ['ls-remote', '--tags', origin]).stdout.trim()

function commitAndPush(message: string): void {
  git('add', '-A')
  git('commit', '-qm', message)
  git('push', '-q', 'origin', 'main')
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'release-script-'))
  work = path.join(tmp, 'work')
  origin = path.join(tmp, 'origin.git')
  ghLog = path.join(tmp, 'gh.log')
  fs.mkdirSync(path.join(tmp, 'bin'))
  // gh stand-in: `run list` prints what the --jq query would ($FAKE_GH_CI, default "completed
  // success"); `release create` records its arguments and the notes file.
  fs.writeFileSync(
    path.join(tmp, 'bin', 'gh'),
    [
      '#!/usr/bin/env bash',
      'if [[ "$1 $2" == "run list" ]]; then echo "${FAKE_GH_CI-completed success}"; exit 0; fi',
      'if [[ "$1 $2" == "release create" ]]; then',
      '  echo "ARGS $*" >>"$FAKE_GH_LOG"',
      '  while [[ $# -gt 0 ]]; do if [[ "$1" == --notes-file ]]; then cat "$2" >>"$FAKE_GH_LOG"; fi; shift; done',
      '  exit 0',
      'fi',
      'echo "unexpected gh $*" >&2; exit 2'
    ].join('\n'),
    { mode: 0o755 }
  )
  fs.mkdirSync(work)
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'CHANGELOG.md', 'LICENSE', 'src', 'dist', 'scripts']) {
    fs.cpSync(path.join(root, f), path.join(work, f), { recursive: true })
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'))
  fs.writeFileSync(path.join(work, '.gitignore'), 'node_modules\n')
  // The project as of this commit, bundled fresh, with the version package.json has.
  fs.writeFileSync(
    path.join(work, 'package.json'),
    JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(work, 'package.json'), 'utf8')), version: '1.0.0' }, null, 2) + '\n'
  )
  expect(sh('npm', ['run', '--silent', 'bundle']).status).toBe(0)
  expect(sh('git', ['init', '-q', '--bare', '-b', 'main', origin], tmp).status).toBe(0)
  git('init', '-q', '-b', 'main')
  git('config', 'user.name', 'Release Test')
  git('config', 'user.email', 'release-test@example.invalid')
  git('remote', 'add', 'origin', origin)
  commitAndPush('the project')
}, 120_000)

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

describe('scripts/release.sh refuses', () => {
  it('a version that is not X.Y.Z', () => {
    const r = release(['v1.0.0'])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain("REFUSED: version 'v1.0.0' is not X.Y.Z")
  })

  it('a version that package.json does not have, and tags nothing', () => {
    const r = release(['1.0.1'])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('REFUSED: package.json says version 1.0.0, not 1.0.1')
    expect(remoteTags()).toBe('')
  })

  it('a version without a CHANGELOG section (only Unreleased)', () => {
    const r = release(['1.0.0'])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('CHANGELOG.md has no "## [1.0.0] - YYYY-MM-DD" section')
    expect(remoteTags()).toBe('')
  })

  it('a working tree with changes', () => {
    fs.appendFileSync(path.join(work, 'CHANGELOG.md'), '\n')
    try {
      const r = release(['1.0.0'])
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain('REFUSED: the working tree has changes')
    } finally {
      git('checkout', '--', 'CHANGELOG.md')
    }
  })

  it('a commit whose CI failed or is still running', () => {
    expect(release(['prepare', '1.0.0']).status).toBe(0)
    commitAndPush('Release 1.0.0')
    const red = release(['1.0.0'], { FAKE_GH_CI: 'completed failure' })
    expect(red.status).not.toBe(0)
    expect(red.stderr).toContain("ended 'failure': main must be green before a release")
    const running = release(['1.0.0'], { FAKE_GH_CI: 'in_progress ' })
    expect(running.stderr).toContain("is 'in_progress': wait for it to pass")
    const none = release(['1.0.0'], { FAKE_GH_CI: '' })
    expect(none.stderr).toContain('no ci.yml run for')
    expect(remoteTags()).toBe('')
  })

  it('a main whose dist/ is stale, and leaves dist/ as committed', () => {
    const index = path.join(work, 'dist', 'index.js')
    const fresh = fs.readFileSync(index, 'utf8')
    fs.appendFileSync(index, '// edited by hand\n')
    commitAndPush('a stale dist')
    try {
      const r = release(['1.0.0'])
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain('REFUSED: dist/ is stale')
      expect(fs.readFileSync(index, 'utf8')).toContain('// edited by hand')
      expect(git('status', '--porcelain')).toBe('')
    } finally {
      git('reset', '-q', '--hard', 'HEAD~1')
      git('push', '-q', '--force', 'origin', 'main')
    }
    expect(fs.readFileSync(index, 'utf8')).toBe(fresh)
  }, 120_000)

  it('a checkout that is not the remote main', () => {
    fs.writeFileSync(path.join(work, 'extra.txt'), 'x\n')
    git('add', 'extra.txt')
    git('commit', '-qm', 'not pushed')
    try {
      const r = release(['1.0.0'])
      expect(r.stderr).toMatch(/REFUSED: main \(\w+\) is not origin\/main/)
    } finally {
      git('reset', '-q', '--hard', 'HEAD~1')
    }
  })
})

describe('scripts/release.sh', () => {
  it('--dry-run checks everything and prints the commands without tagging, pushing or publishing', () => {
    const r = release(['--dry-run', '1.0.0'])
    expect(r.stderr).toContain('dist/ is what the sources bundle to')
    expect(r.status).toBe(0)
    const head = git('rev-parse', 'HEAD')
    expect(r.stdout).toContain(`+ git tag --annotate v1.0.0 --message istio-canary v1.0.0 ${head}    # dry run: not run`)
    expect(r.stdout).toContain('+ git push origin refs/tags/v1.0.0    # dry run: not run')
    expect(r.stdout).toMatch(/\+ gh release create v1\.0\.0 --verify-tag --title v1\.0\.0 --notes-file \S+ {4}# dry run: not run/)
    expect(r.stdout).toContain(`+ git push --force origin refs/tags/v1    # dry run: not run`)
    expect(remoteTags()).toBe('')
    expect(git('tag')).toBe('')
    expect(fs.existsSync(ghLog)).toBe(false)
  }, 120_000)

  it('tags vX.Y.Z (annotated), publishes the CHANGELOG section, and moves v1 with each release', () => {
    const first = release(['1.0.0'])
    expect(first.stderr).toContain('released v1.0.0')
    expect(first.status).toBe(0)
    const head1 = git('rev-parse', 'HEAD')
    expect(sh('git', ['cat-file', '-t', 'refs/tags/v1.0.0'], origin).stdout.trim()).toBe('tag')
    expect(sh('git', ['rev-parse', 'refs/tags/v1.0.0^{commit}', 'refs/tags/v1'], origin).stdout.trim().split('\n')).toEqual([head1, head1])
    expect(sh('git', ['cat-file', '-t', 'refs/tags/v1'], origin).stdout.trim()).toBe('commit') // a plain tag, no release
    const log = fs.readFileSync(ghLog, 'utf8')
    expect(log).toContain('ARGS release create v1.0.0 --verify-tag --title v1.0.0 --notes-file')
    const notes = spawnSync('node_modules/.bin/node', ['scripts/changelog.ts', 'notes', '1.0.0'], { cwd: work, encoding: 'utf8' }).stdout
    expect(log).toContain(notes.trim())

    expect(release(['1.0.0']).stderr).toContain('REFUSED: tag v1.0.0 already exists')

    fs.writeFileSync(
      path.join(work, 'CHANGELOG.md'),
      fs.readFileSync(path.join(work, 'CHANGELOG.md'), 'utf8').replace('## [Unreleased]\n', '## [Unreleased]\n\n### Fixed\n\n- A fix.\n')
    )
    commitAndPush('a fix')
    expect(release(['prepare', '1.0.1']).status).toBe(0)
    commitAndPush('Release 1.0.1')
    const second = release(['1.0.1'])
    expect(second.status).toBe(0)
    const head2 = git('rev-parse', 'HEAD')
    expect(
      sh('git', ['rev-parse', 'refs/tags/v1.0.1^{commit}', 'refs/tags/v1', 'refs/tags/v1.0.0^{commit}'], origin).stdout.trim().split('\n')
    ).toEqual([head2, head2, head1])
    expect(fs.readFileSync(ghLog, 'utf8')).toContain('- A fix.')
  }, 240_000)

  it('refuses a version older than the latest release', () => {
    expect(sh('npm', ['version', '1.0.2', '--no-git-tag-version']).status).toBe(0)
    commitAndPush('1.0.2')
    git('tag', 'v9.0.0')
    try {
      expect(release(['1.0.2']).stderr).toContain('REFUSED: 1.0.2 is not newer than the latest release v9.0.0')
    } finally {
      git('tag', '-d', 'v9.0.0')
    }
  })
})
