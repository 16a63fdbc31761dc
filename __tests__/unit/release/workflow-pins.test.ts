/**
 * Supply chain: every third-party action in our workflows (and in the example workflows users
 * copy) is pinned to a full commit SHA, with the version it stands for in a comment
 * (`uses: actions/checkout@<40 hex> # v7.0.1`), which is what Dependabot updates.
 */
import { describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as yaml from 'js-yaml'

/** This action itself, which the examples reference the way users do (by major tag or SHA). */
const SELF = /^[\w.-]+\/istio-canary@/

const USES_LINE = /^\s*(?:-\s+)?uses:\s*['"]?([^'"\s#]+)['"]?\s*(?:#\s*(.*))?$/

/** Each `uses:` of a workflow that is not pinned as required, with the reason. */
export function pinProblems(text: string, allowSelf = false): string[] {
  const problems: string[] = []
  text.split('\n').forEach((line, i) => {
    const m = USES_LINE.exec(line)
    if (!m) return
    const [, ref, comment] = m
    const where = `line ${i + 1}: ${ref}`
    if (ref.startsWith('./')) return
    if (ref.startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(ref)) problems.push(`${where} (a docker image needs an @sha256: digest)`)
      return
    }
    if (allowSelf && SELF.test(ref)) return
    const at = ref.lastIndexOf('@')
    if (at < 0 || !/^[0-9a-f]{40}$/.test(ref.slice(at + 1))) problems.push(`${where} (not pinned to a full commit SHA)`)
    else if (!comment || !/^v?\d+(\.\d+){0,2}\b/.test(comment.trim())) problems.push(`${where} (no "# vX.Y.Z" comment naming the version)`)
  })
  return problems
}

/** Every `uses:` value in a parsed workflow: job steps and reusable-workflow jobs. */
function usesInYaml(text: string): string[] {
  const doc = yaml.load(text) as { jobs?: Record<string, { uses?: string; steps?: Array<{ uses?: string }> }> }
  return Object.values(doc.jobs ?? {}).flatMap((job) => [job.uses, ...(job.steps ?? []).map((s) => s.uses)].filter((u): u is string => !!u))
}

const files = [
  ...fs.readdirSync('.github/workflows').map((f) => path.join('.github/workflows', f)),
  ...fs.readdirSync('docs/examples').map((f) => path.join('docs/examples', f))
].filter((f) => /\.ya?ml$/.test(f))

describe('workflow action pins', () => {
  it.each(files)('%s pins every third-party action to a commit SHA with its version', (file) => {
    const text = fs.readFileSync(file, 'utf8')
    expect(pinProblems(text, file.startsWith('docs/'))).toEqual([])
    // The line scan sees every uses: the YAML has (no flow-style step escapes it).
    const scanned = text.split('\n').filter((l) => USES_LINE.test(l)).length
    expect(scanned).toBe(usesInYaml(text).length)
  })

  it('finds the workflows', () => {
    expect(files).toEqual(expect.arrayContaining(['.github/workflows/ci.yml', '.github/workflows/release.yml']))
  })

  it('flags a tag, a short SHA, a branch, a missing version comment and an undigested image', () => {
    const sha = 'b'.repeat(40)
    const text = [
      'steps:',
      '  - uses: actions/checkout@v4',
      '  - uses: actions/checkout@v4 # pin to a SHA',
      '  - uses: actions/setup-node@1234567',
      '  - uses: owner/repo/sub@main',
      `  - uses: actions/setup-go@${sha}`,
      `  - uses: actions/setup-go@${sha} # pin`,
      '  - uses: docker://alpine:3.20',
      `  - uses: actions/cache@${sha} # v4.2.0`,
      `    uses: 'actions/cache@${sha}' # v4`,
      '  - uses: ./',
      '  - uses: ./.github/actions/local',
      `  - uses: docker://alpine@sha256:${'c'.repeat(64)}`,
      '  - uses: your-org/istio-canary@v1'
    ].join('\n')
    expect(pinProblems(text, true)).toEqual([
      'line 2: actions/checkout@v4 (not pinned to a full commit SHA)',
      'line 3: actions/checkout@v4 (not pinned to a full commit SHA)',
      'line 4: actions/setup-node@1234567 (not pinned to a full commit SHA)',
      'line 5: owner/repo/sub@main (not pinned to a full commit SHA)',
      `line 6: actions/setup-go@${sha} (no "# vX.Y.Z" comment naming the version)`,
      `line 7: actions/setup-go@${sha} (no "# vX.Y.Z" comment naming the version)`,
      'line 8: docker://alpine:3.20 (a docker image needs an @sha256: digest)'
    ])
    expect(pinProblems('  - uses: your-org/istio-canary@v1', false)).toHaveLength(1)
  })
})
