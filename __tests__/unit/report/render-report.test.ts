import { readFileSync } from 'node:fs'
import { describe, expect, test } from '@jest/globals'
import { codeBlock, escapeMarkdown, ZWSP } from '../../../src/report/escape-markdown.js'
import { outputsOf } from '../../../src/report/outputs.js'
import { fitAxis, thinLabels } from '../../../src/report/report-charts.js'
import { ALERT_OF, situationOf, worstCheck } from '../../../src/report/report-model.js'
import {
  COMMENT_MAX_LENGTH,
  keepOrder,
  renderOneLine,
  renderPlainLog,
  renderReport,
  reportMarker
} from '../../../src/report/render-report.js'
import { stepRows } from '../../../src/report/report-model.js'
import type { RunReport } from '../../../src/report/run-report.js'
import type { CheckResult } from '../../../src/rollout/types.js'

const FIXTURES = [
  'already-stable',
  'promoted',
  'promoting',
  'progressing',
  'paused',
  'halted',
  'rolling-back',
  'rolled-back',
  'incomplete',
  'preflight-failure',
  'dry-run',
  'hostile',
  'sixty-steps'
] as const
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
    const OUR_LINK = /\]\(https:\/\/github\.com\/acme\/shop\/(actions\/runs\/\d+|commit\/[0-9a-f]{40})\)/g
    const text = outsideCode(md)

    expect(md.length).toBeLessThanOrEqual(max)
    expect(md.startsWith(`${marker}\n`)).toBe(true)
    expect(occurrences(md, marker)).toBe(1)
    expect(occurrences(md, '<!--')).toBe(1)
    expect(occurrences(text, '-->')).toBe(1)
    // No @mention can form: every @ outside code is followed by a zero-width space.
    expect(text).not.toMatch(/@[A-Za-z0-9]/)
    // The only HTML is ours.
    for (const tag of text.match(/<[^>]*>?/g) ?? [])
      expect(['<details>', '<summary>', '</summary>', '</details>', '<br>', marker]).toContain(tag)
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
      // At most 6 columns: the table fits a 720 px column.
      expect(cells - 2).toBeLessThanOrEqual(6)
    }
  })

  test.each(FIXTURES.filter((n) => n !== 'hostile' && n !== 'sixty-steps'))(
    '%s at the comment limit shows every step weight and the whole history',
    (name) => {
      const report = fixture(name)
      const md = renderReport(report, { marker: markerOf(report) })
      for (const w of weightsOf(report)) expect(md).toMatch(new RegExp(`\\| \\d+ \\| ${w}\u00a0% \\|`))
      if (report.state) expect(md).toContain(`Every evaluation and event (${report.state.history.length}, times UTC)`)
    }
  )

  test('the hostile report is cut history first: head, steps and chart stay under the comment limit', () => {
    const report = fixture('hostile')
    const md = renderReport(report, { marker: markerOf(report) })
    expect(md).toContain('earlier events not shown (the report was too long)')
    for (const w of weightsOf(report)) expect(md).toMatch(new RegExp(`\\| \\d+ \\| ${w}\u00a0% \\|`))
    expect(md).toContain('```mermaid')
    expect(md).toContain('### What went wrong')
    expect(md).toContain('rollback INCOMPLETE')
  })

  test('when even the table does not fit, the head and the marker stay', () => {
    const report = fixture('rolled-back')
    const md = renderReport(report, { marker: markerOf(report), maxLength: 1_400 })
    expect(md).toContain('> [!CAUTION]\n> **v2 rolled back on shop/reviews**')
    expect(md).toContain('latency-p99 **730\u00a0ms**')
    expect(md).not.toContain('<details>')
    expect(md.length).toBeLessThanOrEqual(1_400)
  })

  test('a preflight failure without state renders the error as wrapping prose, the rerun command and no steps', () => {
    const md = renderReport(fixture('preflight-failure'))
    expect(md).toContain('> [!WARNING]\n> **deploy failed on shop/reviews, nothing changed**')
    expect(md).toContain('PreflightError: VirtualService')
    expect(md).not.toMatch(/```\nVirtualService/)
    expect(md).toContain('gh run rerun 123456789 -R acme/shop')
    expect(md).not.toContain('### Steps')
  })
})

describe('the head says the state, from the phase while the rollout is in flight', () => {
  const expected: Record<(typeof FIXTURES)[number], [string, string]> = {
    'already-stable': ['NOTE', 'v2 is already stable on shop/reviews; nothing to do'],
    promoted: ['TIP', 'v2 promoted on shop/reviews'],
    promoting: ['NOTE', 'v2 promoting on shop/reviews: 100 %, retiring v1'],
    progressing: ['NOTE', 'v2 progressing on shop/reviews: 25 %, step 2 of 4'],
    paused: ['WARNING', 'v2 paused at 10 % on shop/reviews'],
    halted: ['WARNING', 'v2 rollback halted at 25 % on shop/reviews'],
    'rolling-back': ['CAUTION', 'v2 rolling back on shop/reviews'],
    'rolled-back': ['CAUTION', 'v2 rolled back on shop/reviews'],
    incomplete: ['CAUTION', 'v2 rollback INCOMPLETE on shop/reviews: traffic may still be split'],
    'preflight-failure': ['WARNING', 'deploy failed on shop/reviews, nothing changed'],
    'dry-run': ['NOTE', 'dry run: would roll out v2 over v1 on shop/reviews in 4 steps (10 → 25 → 50 → 100 %)'],
    hostile: ['CAUTION', 'rollback INCOMPLETE on'],
    'sixty-steps': ['TIP', 'v2 promoted on shop/reviews']
  }
  test.each(FIXTURES)('%s', (name) => {
    const report = fixture(name)
    const [alert, title] = expected[name]
    expect(ALERT_OF[situationOf(report)]).toBe(alert)
    const md = renderReport(report, { marker: markerOf(report) })
    expect(md.startsWith(`${markerOf(report)}\n\n> [!${alert}]\n> **`)).toBe(true)
    expect(md.split('\n')[3]).toContain(escapeMarkdown(title))
    expect(md).toMatch(/Updated \d\d:\d\d UTC/)
    // Result and Phase are not repeated as separate facts any more.
    expect(md).not.toContain('**Result:**')
    expect(md).not.toMatch(/unchanged on/)
  })

  test('mid-rollout: weight, step, failed evaluations against the threshold, when the next step happens, the abort command', () => {
    const md = renderReport(fixture('progressing'))
    expect(md).toContain('canary weight **25\u00a0%** · failed evaluations 0 of 3')
    expect(md).toContain('Next: 50 % at ~10:11 UTC, if the gates pass')
    expect(md).toContain('Updated 10:08 UTC · rollout running for 8m\u00a05s')
    expect(md).toContain('gh workflow run release.yml -R acme/shop --ref main -f command=abort')
    expect(md).toContain('[workflow run](https://github.com/acme/shop/actions/runs/123456789)')
    expect(md).toContain('commit [c0ffee1](https://github.com/acme/shop/commit/c0ffee1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b)')
  })

  test('paused: the exact promote and abort commands', () => {
    const md = renderReport(fixture('paused'))
    expect(md).toContain(
      '```sh\ngh workflow run release.yml -R acme/shop --ref main -f command=promote\ngh workflow run release.yml -R acme/shop --ref main -f command=abort\n```'
    )
  })

  test('without the workflow it says what to run', () => {
    const { links: _links, ...report } = fixture('paused')
    const md = renderReport(report)
    expect(md).toContain('run this action with `command: promote`')
    expect(md).not.toContain('gh workflow run')
  })

  test('incomplete: the kubectl steps as wrapping code spans, not a fenced block', () => {
    const md = renderReport(fixture('incomplete'))
    expect(md).toContain('`kubectl -n shop scale deployment reviews-v2 --replicas=0`')
    expect(md).not.toContain('```\nROLLBACK')
    expect(md).toContain('-f command=abort')
  })

  test('a dry run names the versions in the log too; after a promotion the log and the outputs agree', () => {
    expect(renderPlainLog(fixture('dry-run'))).toContain('stable=v1 canary=v2')
    const promoted = fixture('promoted')
    const outputs = outputsOf(promoted)
    expect(renderPlainLog(promoted)).toContain(`stable=${outputs['stable-version']} canary=${outputs['canary-version']}`)
    expect(outputs['stable-version']).toBe('v2')
  })

  test('units have one style: a space before % and ms', () => {
    for (const name of FIXTURES) {
      const md = renderReport(fixture(name))
      expect(md).not.toMatch(/\d%/)
      expect(md).not.toMatch(/\dms\b/)
    }
  })
})

describe('worst value per step', () => {
  const check = (verdict: CheckResult['verdict'], value?: number, threshold = '<= 500 ms'): CheckResult => ({
    name: 'latency-p99',
    verdict,
    ...(value === undefined ? {} : { value }),
    threshold,
    unit: 'ms'
  })

  test('a failure beats a later inconclusive result without a value', () => {
    expect(worstCheck([check('pass', 480), check('fail', 730), check('inconclusive')])?.value).toBe(730)
  })
  test('among failures, the one furthest past the threshold (higher is worse for <=, lower for >=)', () => {
    expect(worstCheck([check('fail', 730), check('fail', 910), check('fail', 600)])?.value).toBe(910)
    const rate = (v: number): CheckResult => ({ name: 'success-rate', verdict: 'fail', value: v, threshold: '>= 99', unit: '%' })
    expect(worstCheck([rate(97.2), rate(88.05), rate(91.4)])?.value).toBe(88.05)
  })
  test('all passing: the value closest to the threshold', () => {
    expect(worstCheck([check('pass', 240), check('pass', 260), check('pass', 250)])?.value).toBe(260)
  })
  test('the rolled-back table shows 730 ms for latency-p99 at 25 %, not the last "no value"', () => {
    const rows = stepRows(fixture('rolled-back'))
    const step2 = rows.find((r) => r.number === 2)!
    expect(step2.checks.find((c) => c.name === 'latency-p99')?.worst.value).toBe(730)
    expect(step2.checks.find((c) => c.name === 'success-rate')?.worst.value).toBe(88.05)
    expect(renderReport(fixture('rolled-back'))).toMatch(/\| 2 \| 25\u00a0% \|[^\n]*latency-p99 \*\*730\u00a0ms\*\*/)
  })
})

describe('cut for length', () => {
  test('the failing step is kept before passing and pending ones', () => {
    const rows = stepRows(fixture('rolled-back'))
    expect(rows.map((r) => r.number)).toEqual([1, 2, 3, 4])
    expect(keepOrder(rows)[0]).toBe(1)
  })

  test('at every size the headline and the failing checks stay; the charts go before any step row', () => {
    const report = fixture('rolled-back')
    const full = renderReport(report, { marker: markerOf(report) })
    let sawCutTable = false
    for (let max = full.length; max >= 1_200; max -= 100) {
      const md = renderReport(report, { marker: markerOf(report), maxLength: max })
      expect(md.length).toBeLessThanOrEqual(max)
      expect(md).toContain('**v2 rolled back on shop/reviews**')
      expect(md).toContain('latency-p99 **730\u00a0ms**')
      const rowsShown = (md.match(/^\| \d \| /gm) ?? []).length
      if (md.includes('### Steps') && rowsShown < 4) {
        sawCutTable = true
        expect(md).not.toContain('```mermaid')
        expect(md).toMatch(/\| 2 \| 25\u00a0% \|/)
      }
    }
    expect(sawCutTable).toBe(true)
  })

  test('when only a few rows fit, step 1 (passed) goes before step 2 (failed)', () => {
    const report = fixture('rolled-back')
    const full = renderReport(report, { marker: markerOf(report) })
    let found = false
    for (let max = full.length; max > 800; max -= 50) {
      const md = renderReport(report, { marker: markerOf(report), maxLength: max })
      if (md.includes('### Steps') && !/\| 1 \| 10\u00a0% \|/.test(md)) {
        expect(md).toMatch(/\| 2 \| 25\u00a0% \|/)
        found = true
        break
      }
    }
    expect(found).toBe(true)
  })

  test('the next command survives the hardest cut', () => {
    const report = fixture('incomplete')
    const md = renderReport(report, { marker: markerOf(report), maxLength: 1_500 })
    expect(md.length).toBeLessThanOrEqual(1_500)
    expect(md).toContain('rollback INCOMPLETE')
    expect(md).toContain('-f command=abort')
  })
})

describe('long tables fold', () => {
  test('60 steps: the first, the newest five and a summary row for the 54 passed between', () => {
    const md = renderReport(fixture('sixty-steps'))
    const rows = md.split('### Steps')[1]!.split('\n\n')[1]!.split('\n').slice(2)
    expect(rows).toHaveLength(7)
    expect(rows[0]).toMatch(/^\| 1 \| 2\u00a0% \|/)
    expect(rows[1]).toMatch(/^\| 2–55 \| 3–92\u00a0% \| 1h\u00a048m \| 54 steps, 54 evaluations/)
    expect(rows[6]).toMatch(/^\| 60 \| 100\u00a0% \|/)
  })

  test('a failing step in the middle is never folded away', () => {
    const report = fixture('sixty-steps')
    const history = report.state!.history.map((e) =>
      e.evaluation?.canaryWeight === 50
        ? {
            ...e,
            evaluation: {
              ...e.evaluation,
              verdict: 'fail' as const,
              checks: e.evaluation.checks.map((c) => ({ ...c, verdict: 'fail' as const }))
            }
          }
        : e
    )
    const md = renderReport({ ...report, state: { ...report.state!, history } })
    expect(md).toMatch(/\| 30 \| 50\u00a0% \|[^\n]*1 of 1 evaluations failed/)
    expect(md).toMatch(/\| 2–29 \|/)
    expect(md).toMatch(/\| 31–55 \|/)
  })
})

describe('charts', () => {
  test('one chart per metric: canary, stable and threshold lines on an axis fitted to the data', () => {
    const md = renderReport(fixture('promoted'))
    const chart = md.split('```mermaid\n')[1]!.split('```')[0]!
    expect(chart).toContain('title "success-rate (percent)"')
    const lines = chart.split('\n').filter((l) => l.trim().startsWith('line ['))
    expect(lines).toHaveLength(3)
    expect(lines[2]).toMatch(/line \[99(, 99)+\]/)
    const axis = /y-axis "percent" ([\d.]+) --> ([\d.]+)/.exec(chart)!
    expect(Number(axis[1])).toBeGreaterThan(90)
    expect(Number(axis[2])).toBeLessThanOrEqual(100)
    expect(md).toContain('Lines: blue: canary v2 · orange: stable v1 · red: threshold ≥ 99 %')
  })

  test('a long weight chart keeps its start and its end (weight changes, not the newest 60 points)', () => {
    const md = renderReport(fixture('sixty-steps'))
    const bars = /title "Canary weight \(percent\)"[\s\S]*?bar \[([^\]]*)\]/.exec(md)![1]!.split(', ').map(Number)
    expect(bars.length).toBeLessThanOrEqual(60)
    expect(bars[0]).toBe(2)
    expect(bars.at(-1)).toBe(100)
  })

  test('a metric that never moved and never failed gets no chart', () => {
    const md = renderReport(fixture('promoted'))
    expect(md).toContain('pods-ready')
    expect(md).not.toContain('title "pods-ready')
  })

  test('the weight chart runs to the end: the rollback back to 0', () => {
    const md = renderReport(fixture('rolled-back'))
    expect(md).toMatch(/title "Canary weight \(percent\)"[\s\S]*bar \[10, 10, 10, 25, 25, 25, 25, 25, 0\]/)
  })

  test('a 60-step history shows at most 12 x labels, all categories distinct', () => {
    const labels = thinLabels(Array.from({ length: 60 }, (_, i) => `+${i}m`))
    const shown = labels.filter((l) => l.replace(/\u200b/g, '') !== '')
    expect(shown.length).toBeLessThanOrEqual(12)
    expect(shown.length).toBeGreaterThanOrEqual(8)
    expect(shown.at(-1)).toBe('+59m')
    expect(new Set(labels).size).toBe(60)
    const md = renderReport(fixture('sixty-steps'))
    for (const axis of md.match(/x-axis \[.*\]/g) ?? []) expect((axis.match(/"\+/g) ?? []).length).toBeLessThanOrEqual(12)
  })

  test('fitAxis leaves room around the data and stays in bounds', () => {
    expect(fitAxis([99.8, 99.95, 99], { floor: 0, ceiling: 100 })).toEqual({ min: 98.5, max: 100 })
    expect(fitAxis([180, 730, 500], { floor: 0 })).toEqual({ min: 0, max: 1000 })
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
    expect(md).toContain('> [!NOTE]\n> **v2 is already stable on shop/reviews; nothing to do**')
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
    expect(md).toContain(
      'v2 is already stable; nothing to do: Deployment reviews-v2 matches the manifest, so this run changed nothing in the cluster.\n'
    )
    expect(md).not.toContain('The steps below')
  })
})
