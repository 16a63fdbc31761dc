import { readFileSync } from 'node:fs'
import { describe, expect, test } from '@jest/globals'
import { codeBlock, escapeMarkdown, ZWSP } from '../../../src/report/escape-markdown.js'
import { COMMENT_MAX_LENGTH, renderOneLine, renderPlainLog, renderReport, reportMarker } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'

const FIXTURES = ['promoted', 'rolled-back', 'paused', 'preflight-failure', 'dry-run', 'hostile'] as const
const fixture = (name: string): RunReport => JSON.parse(readFileSync(`__tests__/fixtures/reports/${name}.json`, 'utf8')) as RunReport
const markerOf = (r: RunReport): string => reportMarker(r.namespace, r.virtualService)

/** The Markdown outside fenced code blocks and inline code spans: what GitHub parses for mentions, links, HTML. */
function outsideCode(md: string): string {
  const lines: string[] = []
  let fence: string | undefined
  for (const line of md.split('\n')) {
    const m = /^(`{3,})/.exec(line)
    if (fence) {
      if (m && m[1]!.length >= fence.length && line.trim() === m[1]) fence = undefined
      continue
    }
    if (m) {
      fence = m[1]
      continue
    }
    lines.push(line.replace(/\\`/g, '').replace(/(`+)(?:(?!\1).)+\1/g, ''))
  }
  return lines.join('\n')
}

const occurrences = (text: string, part: string): number => text.split(part).length - 1
const weightsOf = (r: RunReport): number[] => (r.state?.history ?? []).filter((e) => e.kind === 'weight').map((e) => e.canaryWeight!)

describe('renderReport snapshots', () => {
  test.each(FIXTURES)('%s', (name) => {
    const report = fixture(name)
    expect(renderReport(report, { marker: markerOf(report) })).toMatchSnapshot()
    expect(renderOneLine(report)).toMatchSnapshot()
    expect(renderPlainLog(report)).toMatchSnapshot()
  })
})

describe('renderReport properties', () => {
  const sizes = [COMMENT_MAX_LENGTH, 20_000, 5_000, 1_500, 400]
  const cases = FIXTURES.flatMap((name) => sizes.map((max) => [name, max] as const))

  test.each(cases)('%s at maxLength %d: bounded, marker once, no pings, HTML, links or broken tables', (name, max) => {
    const report = fixture(name)
    const marker = markerOf(report)
    const md = renderReport(report, { marker, maxLength: max })
    const OUR_LINK = /\]\(https:\/\/github\.com\/acme\/shop\/actions\/runs\/\d+\)/g
    const text = outsideCode(md)

    expect(md.length).toBeLessThanOrEqual(max)
    expect(md.startsWith(`${marker}\n`)).toBe(true)
    expect(occurrences(md, marker)).toBe(1)
    expect(occurrences(md, '<!--')).toBe(1)
    expect(occurrences(text, '-->')).toBe(1)
    // No @mention can form: every @ outside code is followed by a zero-width space.
    expect(text).not.toMatch(/@[A-Za-z0-9]/)
    // The only HTML is ours.
    for (const tag of text.match(/<[^>]*>?/g) ?? []) expect(['<details>', '<summary>', '</summary>', '</details>', marker]).toContain(tag)
    // The only links are ours, to https run URLs.
    const withoutOurLinks = text.replace(OUR_LINK, '')
    expect(withoutOurLinks).not.toMatch(/(^|[^\\])\]\(/m)
    expect(withoutOurLinks).not.toMatch(/!\[/)
    expect(withoutOurLinks).not.toMatch(/https?:\/\//)
    // Every table row has as many cells as its header.
    const rows = text.split('\n').filter((l) => l.startsWith('|'))
    let width = 0
    for (const row of rows) {
      const cells = row.replace(/\\\|/g, '').split('|').length
      if (/^\|[-:|]+\|$/.test(row)) continue
      if (row.startsWith('| Step |') || row.startsWith('| Time |')) width = cells
      expect(cells).toBe(width)
    }
  })

  test.each(FIXTURES.filter((n) => n !== 'hostile'))('%s at the comment limit shows every step weight and the whole history', (name) => {
    const report = fixture(name)
    const md = renderReport(report, { marker: markerOf(report) })
    for (const w of weightsOf(report)) expect(md).toMatch(new RegExp(`\\| \\d+ \\| ${w} % \\|`))
    if (report.state) expect(md).toContain(`Full history (${report.state.history.length} events`)
  })

  test('the hostile report is cut history first: head, steps and chart stay under the comment limit', () => {
    const report = fixture('hostile')
    const md = renderReport(report, { marker: markerOf(report) })
    expect(md).toContain('earlier events not shown (the report was too long)')
    for (const w of weightsOf(report)) expect(md).toMatch(new RegExp(`\\| \\d+ \\| ${w} % \\|`))
    expect(md).toContain('```mermaid')
    expect(md).toContain('### What went wrong')
    expect(md).toContain('rollback INCOMPLETE')
  })

  test('when even the table does not fit, the head and the marker stay', () => {
    const report = fixture('rolled-back')
    const md = renderReport(report, { marker: markerOf(report), maxLength: 900 })
    expect(md).toContain('## istio-canary: v2 rolled back on shop/reviews')
    expect(md).not.toContain('<details>')
    expect(md.length).toBeLessThanOrEqual(900)
  })

  test('the chart plots the canary weight per evaluation and the success rate beside it', () => {
    const md = renderReport(fixture('rolled-back'))
    expect(md).toContain('    bar [10, 10, 25, 25, 25]\n    line [99.7, 99.5, 97.2, 91.4, 88.05]')
    expect(md).toContain('title "Canary weight and success-rate (percent)"')
  })

  test('a preflight failure without state renders the error and no steps', () => {
    const md = renderReport(fixture('preflight-failure'))
    expect(md).toContain('## istio-canary: deploy failed on shop/reviews, nothing changed')
    expect(md).toContain('PreflightError:')
    expect(md).not.toContain('### Steps')
  })
})

describe('escaping', () => {
  test.each([
    ['@octocat', `@${ZWSP}octocat`],
    ['a|b', 'a\\|b'],
    ['<!-- x -->', '&lt;!-- x --&gt;'],
    ['[x](https://e.example)', `\\[x\\](https:${ZWSP}//e.example)`],
    ['line1\nline2', 'line1 line2'],
    ['#12 fixed', `\\#${ZWSP}12 fixed`],
    ['- item', '\\- item'],
    ['1. first', '1\\. first'],
    ['`code` *b* _i_ ~s~ $m$', '\\`code\\` \\*b\\* \\_i\\_ \\~s\\~ \\$m\\$'],
    ['see www.evil.example', `see www${ZWSP}.evil.example`]
  ])('escapeMarkdown(%j)', (input, expected) => {
    expect(escapeMarkdown(input)).toBe(expected)
  })

  test('escapeMarkdown cuts long values', () => {
    expect(escapeMarkdown('x'.repeat(1000), 10)).toBe(`${'x'.repeat(10)}…`)
  })

  test('a code block cannot be closed by its content and never contains a comment marker', () => {
    const block = codeBlock('a\n```\n<!-- m -->\n````')
    expect(block.startsWith('`````\n')).toBe(true)
    expect(block.endsWith('\n`````')).toBe(true)
    expect(block).not.toContain('<!--')
    expect(block).not.toContain('-->')
  })

  test('the marker of hostile names stays one well-formed comment', () => {
    expect(reportMarker('shop', 'x --> <b>')).toBe('<!-- istio-canary:shop/x_--___b_ -->')
  })
})

describe('a re-run of a release that is already stable', () => {
  const promoted = fixture('promoted')
  const rerun: RunReport = {
    ...promoted,
    result: 'unchanged',
    warnings: [],
    alreadyStable: { version: 'v2', deployment: 'reviews-v2' },
    startedAt: '2026-11-26T08:00:00.000Z',
    finishedAt: '2026-11-26T08:00:01.000Z'
  }

  test('says the version is already stable and that there is nothing to do, in the head and the one line', () => {
    const md = renderReport(rerun, { marker: markerOf(rerun) })
    expect(md).toContain('## istio-canary: v2 is already stable on shop/reviews; nothing to do\n')
    expect(md).toContain(
      'v2 is already stable; nothing to do: Deployment reviews-v2 matches the manifest, so this run changed nothing in the cluster. The steps below are those of the rollout that made it stable.'
    )
    expect(renderOneLine(rerun)).toBe('istio-canary: v2 is already stable on shop/reviews; nothing to do')
  })

  test('a plain unchanged run, or one with an error, does not claim it', () => {
    const { alreadyStable: _, ...plain } = rerun
    expect(renderReport(plain)).not.toContain('already stable')
    const failed = { ...rerun, error: { kind: 'PreflightError', message: 'no' } }
    expect(renderReport(failed)).not.toContain('already stable')
  })

  test('without the rollout that made it stable, the steps are not attributed to one', () => {
    const { state: _, ...noState } = rerun
    const md = renderReport({ ...noState, phase: undefined, canaryWeight: 0 })
    expect(md).toContain('v2 is already stable; nothing to do: Deployment reviews-v2 matches the manifest, so this run changed nothing in the cluster.\n')
    expect(md).not.toContain('The steps below')
  })
})
