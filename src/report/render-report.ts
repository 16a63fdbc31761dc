import type { GateEvaluation, HistoryEvent, Verdict } from '../rollout/types.js'
import { codeBlock, cut, escapeMarkdown, neutraliseComments, plainLine, safeUrl } from './escape-markdown.js'
import { renderCharts } from './report-charts.js'
import {
  ALERT_OF,
  between,
  canaryName,
  canaryRequests,
  clock,
  eventLabel,
  formatCount,
  formatDelta,
  formatDuration,
  formatNumber,
  formatThreshold,
  formatValue,
  headline,
  LABEL_MAX,
  linksOf,
  nextAction,
  nextStep,
  previousStable,
  situationOf,
  stepPosition,
  stepRows,
  withUnit,
  type CheckSummary,
  type SituationKind,
  type StepRow
} from './report-model.js'
import type { RunReport } from './run-report.js'

/**
 * The pure renderers of a RunReport: Markdown for the job summary and the PR comment, one line
 * for annotations, plain text for the log. Every value that comes from users or the cluster goes
 * through escape-markdown.ts; the Markdown stays under `maxLength` (see renderReport for what goes
 * first). The facts (situation, steps, worst values, next command) come from report-model.ts.
 */

/** PR and issue comments are cut at 65,536 characters by GitHub; we stay well below. */
export const COMMENT_MAX_LENGTH = 60_000
/**
 * The job summary of a step is capped at 1 MiB (bytes). A UTF-16 code unit is at most 3 UTF-8
 * bytes, so 340,000 characters can never exceed it.
 */
export const SUMMARY_MAX_LENGTH = 340_000

export interface RenderOptions {
  /** Hidden marker (see `reportMarker`), written as the first line and never cut. */
  marker?: string
  /** Upper bound of the returned string's length; default COMMENT_MAX_LENGTH. */
  maxLength?: number
}

/** The hidden marker of the sticky PR comment of one VirtualService: `<!-- istio-canary:ns/vs -->`. */
export function reportMarker(namespace: string, virtualService: string): string {
  // Names are DNS-1123 already; the filter keeps the marker one well-formed comment whatever comes in.
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_')
  return `<!-- istio-canary:${clean(namespace)}/${clean(virtualService)} -->`
}

// ---------- small Markdown pieces ----------

/** Long unbroken runs (hostile labels, URLs) get a zero-width space every 30 characters so table cells can wrap. */
function breakable(raw: string): string {
  return raw.replace(/\S{30}(?=\S)/g, '$&\u200b')
}

const MARK: Record<Verdict, string> = { pass: '✓', fail: '✗', inconclusive: '?' }

/** An inline code span the content cannot close, without HTML comment markers; code spans wrap on GitHub. */
export function codeSpan(value: string, max = 300): string {
  const text = neutraliseComments(cut(value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' '), max))
  const longest = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length))
  const fence = '`'.repeat(longest + 1)
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text}${pad}${fence}`
}

function list(items: readonly string[], ordered = false, max = 30): string {
  const shown = items.slice(0, max).map((item, i) => `${ordered ? `${i + 1}.` : '-'} ${escapeMarkdown(item, 500)}`)
  if (items.length > max) shown.push(`${ordered ? `${max + 1}.` : '-'} … and ${items.length - max} more`)
  return shown.join('\n')
}

/** Text from elsewhere (reasons, errors) in the report's unit style: `25% v2` reads `25 % v2`. */
function unitStyle(text: string): string {
  return text.replace(/(\d)%(?=[\s),.;:]|$)/g, '$1 %')
}

/** A number and its unit never wrap apart in Markdown (`99.5 %`, `500 ms`, `4m 5s`). */
function glue(text: string): string {
  return text
    .replace(/([≥≤]) (?=\d)/g, '$1\u00a0')
    .replace(/(\d) (?=%|ms\b|pp\b|req\.|s\b|requests\b)/g, '$1\u00a0')
    .replace(/(\d+[hm]) (\d+[ms])/g, '$1\u00a0$2')
}

/** `✗ latency-p99 **730 ms** (stable 180 ms), want ≤ 500 ms, 1 of 3 failed` (escaped). */
function checkLine(summary: CheckSummary, opts: { counts?: boolean; bold?: boolean } = {}): string {
  const c = summary.worst
  const value = escapeMarkdown(formatValue(c), 60)
  let line = `${MARK[c.verdict]} ${escapeMarkdown(breakable(cut(summary.name, 60)), 80)} ${opts.bold === false ? value : `**${value}**`}`
  if (c.stableValue !== undefined) line += ` (stable ${escapeMarkdown(withUnit(c.stableValue, c.unit), 60)})`
  const threshold = formatThreshold(c)
  if (threshold) line += `, want ${escapeMarkdown(threshold, 60)}`
  if (c.value === undefined && c.detail) line += `: ${escapeMarkdown(c.detail, 80)}`
  if (opts.counts && summary.evaluations > 1 && summary.failed > 0) line += `, ${summary.failed} of ${summary.evaluations} failed`
  return glue(line)
}

/** The error as wrapping prose: kubectl commands as code spans, long text collapsed. */
function errorBody(message: string, maxLines: number): string {
  const lines = unitStyle(message)
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
  const render = (line: string): string => {
    const m = /^(.*?)(kubectl\s.*?)(?:\s+#\s*(.*))?$/.exec(line.trim())
    if (!m) return escapeMarkdown(line.trim(), 500)
    const lead = m[1] ? `${escapeMarkdown(m[1].trim(), 200)} ` : ''
    return `${lead}${codeSpan(m[2]!.trim())}${m[3] ? ` (${escapeMarkdown(m[3], 200)})` : ''}`
  }
  const shown = lines.slice(0, maxLines).map(render)
  const rest = lines.slice(maxLines)
  let out = shown.join('  \n')
  if (rest.length) {
    const restShown = rest.slice(0, 60).map(render)
    if (rest.length > 60) restShown.push(`… and ${rest.length - 60} more lines`)
    out += `\n\n<details><summary>The rest of the error (${rest.length} more lines)</summary>\n\n${restShown.join('  \n')}\n\n</details>`
  }
  return out
}

// ---------- the head: the first screenful ----------

function alertLines(report: RunReport, rows: readonly StepRow[]): string[] {
  const kind = situationOf(report)
  const lines: string[] = [`**${escapeMarkdown(headline(report), 300)}**`]
  const stable = previousStable(report)
  const canary = canaryName(report)
  const state = report.state

  const facts: string[] = []
  if (kind === 'already-stable') facts.push(`**${escapeMarkdown(report.alreadyStable!.version, LABEL_MAX)}** is stable`)
  else if (kind === 'promoted')
    facts.push(`**${escapeMarkdown(canary, LABEL_MAX)}** is stable now${stable ? ` (was ${escapeMarkdown(stable, LABEL_MAX)})` : ''}`)
  else if (stable || report.canaryVersion || state)
    facts.push(`stable **${escapeMarkdown(stable ?? '(none)', LABEL_MAX)}** → canary **${escapeMarkdown(canary, LABEL_MAX)}**`)
  if (kind !== 'dry-run' && kind !== 'failed') {
    const lastWeight = [...rows].reverse().find((r) => r.from !== undefined)?.weight
    const was = (kind === 'rolled-back' || kind === 'aborted') && lastWeight ? ` (was ${formatNumber(lastWeight)} %)` : ''
    facts.push(`canary weight **${formatNumber(report.canaryWeight)} %**${was}`)
  }
  const position = stepPosition(report)
  if (position && kind !== 'promoted' && kind !== 'progressing') facts.push(position)
  if (state && state.failedChecks > 0) {
    facts.push(`failed evaluations ${state.failedChecks}${report.rollout ? ` of ${report.rollout.failureThreshold}` : ''}`)
  } else if (state && report.rollout && IN_FLIGHT_KINDS.has(kind)) facts.push(`failed evaluations 0 of ${report.rollout.failureThreshold}`)
  if (facts.length) lines.push(glue(facts.join(' · ')))

  const next = nextStep(report)
  if (next)
    lines.push(
      next.at
        ? `Next: ${escapeMarkdown(next.what, 60)} at ~${clock(next.at)} UTC, if the gates pass`
        : `Next: ${escapeMarkdown(next.what, 60)}, if the gates pass`
    )

  // The checks that matter now: the failing ones of the latest step with evaluations, else its checks.
  const latest = [...rows].reverse().find((r) => r.checks.length > 0)
  if (latest) {
    const failing = latest.checks.filter((c) => c.failed > 0 || c.worst.verdict === 'fail')
    const shown = (failing.length ? failing : latest.checks).slice(0, 4)
    const label = failing.length
      ? `Failing at ${formatNumber(latest.weight ?? 0)} % (worst value)`
      : `Checks at ${formatNumber(latest.weight ?? 0)} % (worst value${IN_FLIGHT_KINDS.has(kind) ? ' so far' : ''})`
    lines.push(`${label}:`, ...shown.map((c) => `&nbsp;&nbsp;${checkLine(c, { counts: true })}`))
  }

  const reason = state?.reason
  // A rolled-back run's error is its reason: said here, as there is no error section for it.
  if (reason && kind !== 'promoted' && (kind === 'rolled-back' || reason !== report.error?.message))
    lines.push(`Reason: ${escapeMarkdown(unitStyle(reason), 300)}`)

  const links = linksOf(report)
  const when: string[] = [`updated ${clock(report.finishedAt)} UTC`]
  if (IN_FLIGHT_KINDS.has(kind) && state) when.push(`rollout running for ${formatDuration(between(state.startedAt, report.finishedAt))}`)
  else
    when.push(
      `${escapeMarkdown(report.command, 20)} run${report.dryRun ? ' (dry run)' : ''} took ${formatDuration(between(report.startedAt, report.finishedAt))}`
    )
  const run = safeUrl(links.run)
  if (run) when.push(`[workflow run](${run})`)
  if (links.commit) {
    const short = links.commit.sha.slice(0, 7)
    const url = safeUrl(links.commit.url)
    when.push(url ? `commit [${short}](${url})` : `commit ${short}`)
  }
  lines.push(glue(when.join(' · ').replace(/^u/, 'U')))
  return lines
}

const IN_FLIGHT_KINDS: ReadonlySet<SituationKind> = new Set([
  'initializing',
  'progressing',
  'paused',
  'promoting',
  'rolling-back',
  'halted'
])

function renderNext(report: RunReport): string {
  const next = nextAction(report)
  if (!next) return ''
  const parts = [`**What to do:** ${next.text}`]
  if (next.commands.length) parts.push(codeBlock(next.commands.join('\n'), { lang: 'sh', max: 1000 }))
  return parts.join('\n\n')
}

function renderHead(report: RunReport, rows: readonly StepRow[], minimal: boolean): string {
  const kind = situationOf(report)
  const alert = [`> [!${ALERT_OF[kind]}]`, ...alertLines(report, rows).map((l, i, all) => `> ${l}${i < all.length - 1 ? '  ' : ''}`)].join(
    '\n'
  )
  const parts: string[] = [alert]
  const done = report.alreadyStable
  if (done && kind === 'already-stable') {
    const made =
      report.state?.phase === 'promoted' && report.state.canary.version === done.version
        ? ' The steps below are those of the rollout that made it stable.'
        : ''
    parts.push(
      `${escapeMarkdown(done.version, 120)} is already stable; nothing to do: Deployment ${escapeMarkdown(done.deployment, 253)} matches the manifest, so this run changed nothing in the cluster.${made}`
    )
  }
  const next = renderNext(report)
  if (next) parts.push(next)

  if (report.error && kind !== 'rolled-back') {
    parts.push(`### What went wrong`)
    parts.push(`${escapeMarkdown(report.error.kind, 80)}: ${errorBody(report.error.message, minimal ? 3 : 12)}`)
  }
  if (minimal) return parts.join('\n\n')

  if (report.undone && report.undone.length > 0) {
    parts.push(`### What was undone`)
    parts.push(list(report.undone, true))
  } else if (kind === 'rolled-back' || kind === 'aborted') {
    parts.push(`### What was undone`)
    parts.push('Nothing was recorded as undone.')
  }
  if (report.dryRun) {
    parts.push(`### The plan (nothing was changed)`)
    const plan = report.plan ?? []
    parts.push(plan.length ? list(plan, true, 200) : 'The plan is empty.')
  }
  if (report.warnings.length > 0) {
    parts.push(`### Warnings`)
    parts.push(list(report.warnings))
  }
  return parts.join('\n\n')
}

// ---------- the steps ----------

function rowResult(row: StepRow): string {
  const parts: string[] = []
  const n = row.evaluations.length
  if (n > 0) {
    const inconclusive = row.evaluations.filter((e) => e.verdict === 'inconclusive').length
    if (row.failedEvaluations > 0) parts.push(`✗ **${row.failedEvaluations} of ${n} evaluations failed**`)
    else if (inconclusive === n) parts.push(`? ${n} inconclusive`)
    else parts.push(`✓ passed (${n} evaluation${n === 1 ? '' : 's'}${inconclusive ? `, ${inconclusive} inconclusive` : ''})`)
  }
  // A step paused at its weight (a halted rollback) is not in progress: its notes say 'paused'.
  if (row.status === 'current' && !row.notes.includes('paused')) parts.push(row.kind === 'pause' ? 'now' : 'in progress')
  if (row.status === 'pending') parts.push('pending')
  if (row.status === 'not reached') parts.push('not reached')
  if (row.status === 'planned') parts.push('planned')
  if (row.notes.length) parts.push(escapeMarkdown(row.notes.join(', '), 200))
  if (row.kind === 'mirror' && n > 0) parts.push("the canary's numbers came from mirrored requests (their responses were dropped)")
  if (row.kind === 'match' && n > 0) parts.push("the canary's numbers came from the matching requests only")
  const outside = outsideMeshNote(row.evaluations)
  if (outside) parts.push(escapeMarkdown(outside, 100))
  return parts.join('; ') || '-'
}

function tableRow(row: StepRow, end: string): string {
  const step = row.number !== undefined ? String(row.number) : '-'
  const weight =
    row.kind === 'pause' ? 'pause' : row.exposure !== undefined ? escapeMarkdown(row.exposure, 120) : `${formatNumber(row.weight ?? 0)} %`
  const time = row.from ? glue(formatDuration(between(row.from, row.to ?? end))) + (row.to ? '' : ' so far') : '-'
  const checks = row.checks.length
    ? row.checks
        .slice(0, 12)
        .map((c) => checkLine(c, { counts: true, bold: c.worst.verdict === 'fail' }))
        .join('<br>')
    : '-'
  return `| ${step} | ${glue(weight)} | ${time} | ${checks} | ${glue(rowResult(row))} |`
}

const TABLE_HEADER = '| Step | Weight | Time | Checks (worst value in the step) | Result |\n|---:|---:|---|---|---|'

/** Row indexes in the order they are kept when the table must be cut: failing and current first, then the newest. */
export function keepOrder(rows: readonly StepRow[]): number[] {
  const score = (r: StepRow): number => (r.failedEvaluations > 0 ? 0 : r.status === 'current' ? 1 : r.from ? 2 : 3)
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => score(a.r) - score(b.r) || b.i - a.i)
    .map(({ i }) => i)
}

/** Above this many steps, runs of passed or unreached steps fold into one summary row each. */
export const FOLD_ABOVE = 15

/**
 * The rows a long table shows: failing and current steps, the first step, the newest done steps and
 * the next pending ones; every other run of steps becomes one row ("5–52 · 9–87 % · 52 steps passed").
 */
export function foldRows(rows: readonly StepRow[]): Array<StepRow | { fold: StepRow[] }> {
  if (rows.length <= FOLD_ABOVE) return [...rows]
  const keep = new Set<number>([0])
  const done = rows.map((r, i) => ({ r, i })).filter(({ r }) => r.from !== undefined)
  for (const { i } of done.slice(-5)) keep.add(i)
  rows.forEach((r, i) => {
    if (r.failedEvaluations > 0 || r.status === 'current') keep.add(i)
  })
  rows
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.status === 'pending')
    .slice(0, 2)
    .forEach(({ i }) => keep.add(i))
  const out: Array<StepRow | { fold: StepRow[] }> = []
  let run: StepRow[] = []
  const close = (): void => {
    if (run.length === 1) out.push(run[0]!)
    else if (run.length > 1) out.push({ fold: run })
    run = []
  }
  rows.forEach((r, i) => {
    if (keep.has(i)) {
      close()
      out.push(r)
      return
    }
    // A run holds steps of one kind: passed ones, or ones not run yet.
    if (run.length && foldKind(run[0]!) !== foldKind(r)) close()
    run.push(r)
  })
  close()
  return out
}

function foldKind(r: StepRow): string {
  return r.from !== undefined || r.status === 'done' ? 'done' : r.status
}

function foldRow(fold: readonly StepRow[], end: string): string {
  const first = fold[0]!
  const last = fold.at(-1)!
  const steps = `${first.number ?? '-'}–${last.number ?? '-'}`
  const weights = fold.filter((r) => r.weight !== undefined).map((r) => r.weight!)
  const range = weights.length ? `${formatNumber(Math.min(...weights))}–${formatNumber(Math.max(...weights))}\u00a0%` : 'pause'
  if (foldKind(first) !== 'done') {
    return `| ${steps} | ${range} | - | - | ${fold.length} steps ${first.status} |`
  }
  const time = fold.reduce((sum, r) => sum + (between(r.from, r.to ?? end) || 0), 0)
  const evaluations = fold.reduce((sum, r) => sum + r.evaluations.length, 0)
  return `| ${steps} | ${range} | ${glue(formatDuration(time))} | ${fold.length} steps, ${evaluations} evaluations: every check in the side-by-side table below | ✓ passed |`
}

function renderTable(report: RunReport, rows: readonly StepRow[], limit: number): string {
  if (rows.length === 0 || limit <= 0)
    return rows.length ? `*The steps table (${rows.length} steps) was left out: the report was too long.*` : ''
  const keep = new Set(keepOrder(rows).slice(0, limit))
  const kept = rows.filter((_, i) => keep.has(i))
  const omitted = rows.length - kept.length
  const shown = omitted === 0 ? foldRows(rows) : kept
  return [
    `### Steps`,
    '',
    TABLE_HEADER,
    ...shown.map((r) => ('fold' in r ? foldRow(r.fold, report.finishedAt) : tableRow(r, report.finishedAt))),
    ...(omitted > 0 ? ['', `*${omitted} passing or pending steps not shown (the report was too long).*`] : [])
  ].join('\n')
}

/** Canary and stable side by side, with the difference and the requests behind each value. */
function renderSideBySide(rows: readonly StepRow[]): string {
  const lines: string[] = []
  for (const row of rows) {
    for (const c of row.checks.slice(0, 12)) {
      const w = c.worst
      const req = canaryRequests(c)
      const canary = `${escapeMarkdown(formatValue(w), 60)}${req !== undefined ? `<br>${formatCount(req)} req.` : ''}`
      const stable =
        w.stableValue !== undefined
          ? `${escapeMarkdown(withUnit(w.stableValue, w.unit), 60)}${w.stableRequests !== undefined ? `<br>${formatCount(w.stableRequests)} req.` : ''}`
          : '-'
      const threshold = formatThreshold(w)
      lines.push(
        `| ${row.number ?? '-'} | ${MARK[w.verdict]} ${escapeMarkdown(breakable(cut(c.name, 60)), 80)} | ${canary} | ${stable} | ${escapeMarkdown(formatDelta(w) ?? '-', 40)} | ${threshold ? escapeMarkdown(threshold, 60) : '-'} |`
      )
    }
  }
  if (lines.length === 0) return ''
  return [
    '<details><summary>Canary and stable side by side (worst value per step, with the requests behind it)</summary>',
    '',
    '| Step | Check | Canary | Stable | Difference | Threshold |',
    '|---:|---|---:|---:|---:|---|',
    ...lines,
    '',
    '</details>'
  ].join('\n')
}

// ---------- history ----------

/** The step's share of canary requests from outside the mesh (its last evaluation with a figure): the part the weights did not decide. */
function outsideMeshNote(evaluations: readonly GateEvaluation[]): string | undefined {
  const share = [...evaluations].reverse().find((e) => e.outsideMesh?.percent !== undefined)?.outsideMesh ?? evaluations.at(-1)?.outsideMesh
  if (!share) return undefined
  if (share.percent === undefined) return 'outside the mesh: unknown'
  // A small share must never read as 0.
  const percent = share.percent > 0 && share.percent < 0.01 ? '< 0.01' : formatNumber(share.percent)
  return `outside the mesh: ${percent} % of canary requests`
}

function outsideMeshText(evaluations: readonly GateEvaluation[]): string {
  const outside = outsideMeshNote(evaluations)
  return outside ? `; ${outside}` : ''
}

function checksSummary(evaluation: GateEvaluation): string {
  return evaluation.checks
    .slice(0, 10)
    .map((c) => {
      const t = formatThreshold(c)
      const stable = c.stableValue !== undefined ? `, stable ${withUnit(c.stableValue, c.unit)}` : ''
      return `${MARK[c.verdict]} ${c.name} ${formatValue(c)}${stable}${t ? ` (${t})` : ''}${c.detail && c.value === undefined ? `: ${c.detail}` : ''}`
    })
    .join('; ')
}

function historyRow(event: HistoryEvent): string {
  const weight = typeof event.canaryWeight === 'number' ? `${formatNumber(event.canaryWeight)} %` : '-'
  const parts: string[] = []
  if (event.evaluation) parts.push(`${event.evaluation.verdict}: ${checksSummary(event.evaluation)}`)
  if (event.message) parts.push(event.message)
  const details = parts.length ? escapeMarkdown(breakable(cut(unitStyle(parts.join(' — ')), 400)), 500) : ''
  const byUrl = safeUrl(event.by)
  const by = byUrl ? ` ([run](${byUrl}))` : event.by ? ` (by ${escapeMarkdown(event.by, 100)})` : ''
  return `| ${escapeMarkdown(clock(event.at, true), 40)} | ${escapeMarkdown(eventLabel(event.kind), 30)} | ${weight} | ${details}${by} |`
}

function renderHistory(report: RunReport, limit: number): string {
  const history = report.state?.history ?? []
  if (history.length === 0) return ''
  if (limit <= 0) return `*The full history (${history.length} events) was left out: the report was too long.*`
  const shown = history.slice(Math.max(0, history.length - limit))
  const omitted = history.length - shown.length
  return [
    `<details><summary>Every evaluation and event (${history.length}, times UTC)</summary>`,
    '',
    ...(omitted > 0 ? [`*${omitted} earlier events not shown (the report was too long).*`, ''] : []),
    '| Time | Event | Weight | Details |',
    '|---|---|---:|---|',
    ...shown.map(historyRow),
    '',
    '</details>'
  ].join('\n')
}

// ---------- assembly and cutting ----------

interface Limits {
  /** How many of the newest history events to list (Infinity: all; 0: none). */
  history: number
  charts: boolean
  sideBySide: boolean
  /** How many rows of the steps table to keep (failing and current first). */
  tableRows: number
  /** Only the alert, the next command and a short error: the last resort. */
  minimalHead: boolean
}

function assemble(report: RunReport, marker: string | undefined, rows: readonly StepRow[], limits: Limits): string {
  const sections = [
    marker ?? '',
    renderHead(report, rows, limits.minimalHead),
    limits.minimalHead ? '' : renderTable(report, rows, limits.tableRows),
    limits.minimalHead || !limits.sideBySide ? '' : renderSideBySide(rows),
    limits.minimalHead || !limits.charts ? '' : renderCharts(report),
    limits.minimalHead ? '' : renderHistory(report, limits.history)
  ]
  return `${sections.filter((s) => s !== '').join('\n\n')}\n`
}

/**
 * The report as GitHub Markdown (job summary, PR comment). Pure. The result never exceeds
 * `maxLength`. What goes first when it must be cut: the older history, the charts, the side-by-side
 * table, then passing and pending steps (failing and current steps stay longest); the alert with
 * the headline, the failing checks and the next command stays, and so does the marker.
 */
export function renderReport(report: RunReport, opts: RenderOptions = {}): string {
  const max = opts.maxLength ?? COMMENT_MAX_LENGTH
  const marker = opts.marker
  const rows = stepRows(report)
  const historyLength = report.state?.history.length ?? 0
  const full: Limits = { history: Infinity, charts: true, sideBySide: true, tableRows: Infinity, minimalHead: false }
  let text = assemble(report, marker, rows, full)
  if (text.length <= max) return text
  for (let h = Math.floor(historyLength / 2); ; h = Math.floor(h / 2)) {
    text = assemble(report, marker, rows, { ...full, history: h })
    if (text.length <= max) return text
    if (h === 0) break
  }
  const lean: Limits = { ...full, history: 0, charts: false }
  for (const limits of [lean, { ...lean, sideBySide: false }]) {
    text = assemble(report, marker, rows, limits)
    if (text.length <= max) return text
  }
  for (let t = rows.length - 1; t >= 1; t = t > 8 ? Math.floor(t / 2) : t - 1) {
    text = assemble(report, marker, rows, { ...lean, sideBySide: false, tableRows: t })
    if (text.length <= max) return text
  }
  text = assemble(report, marker, rows, { ...lean, sideBySide: false, tableRows: 0, minimalHead: true })
  if (text.length <= max) return text
  // Last resort: the head cut hard; the marker (first line) survives whenever it fits at all.
  const note = '\n\n*(report cut: too long)*\n'
  return `${text.slice(0, Math.max(0, max - note.length))}${note}`.slice(0, max)
}

/** One plain line for `::notice` / `::error` annotations and the deployment status description. */
export function renderOneLine(report: RunReport, max = 300): string {
  const parts = [`istio-canary: ${headline(report)}`]
  const kind = situationOf(report)
  if (report.error && kind !== 'rolled-back') parts.push(`${report.error.kind}: ${report.error.message}`)
  else if (kind === 'rolled-back' || kind === 'aborted') {
    if (report.state?.reason) parts.push(report.state.reason)
    const latest = [...stepRows(report)].reverse().find((r) => r.checks.length > 0)
    const failing = latest?.checks.filter((c) => c.worst.verdict === 'fail') ?? []
    if (failing.length)
      parts.push(
        `worst: ${failing.map((c) => `${c.name} ${formatValue(c.worst)}${formatThreshold(c.worst) ? ` (want ${formatThreshold(c.worst)})` : ''}`).join(', ')}`
      )
  } else if ((kind === 'paused' || kind === 'halted') && report.state?.reason) parts.push(report.state.reason)
  return plainLine(parts.join(' — '), max)
}

/** The report as plain text lines for the step log (no Markdown). Versions as the outputs say them. */
export function renderPlainLog(report: RunReport): string {
  const lines = [renderOneLine(report, 500)]
  const stable = report.stableVersion ?? previousStable(report)
  const canary = report.canaryVersion ?? canaryName(report)
  lines.push(
    `result=${report.result} phase=${report.phase ?? 'none'} canary-weight=${report.canaryWeight} stable=${plainLine(stable ?? '-', 100)} canary=${plainLine(canary, 100)}`
  )
  for (const row of stepRows(report)) {
    if (!row.from) continue
    const checks = row.checks.map((c) => `${c.name} ${formatValue(c.worst)} ${c.worst.verdict}`).join(', ')
    const evals = row.evaluations.length ? `, ${row.failedEvaluations} of ${row.evaluations.length} evaluations failed` : ''
    lines.push(
      `  step ${row.number ?? '-'}: ${row.exposure !== undefined ? `${plainLine(row.exposure, 120)}${row.kind === 'mirror' ? ' (mirrored requests)' : ''}` : `${formatNumber(row.weight ?? 0)} %`} for ${formatDuration(between(row.from, row.to ?? report.finishedAt))}${evals}${checks ? `; worst: ${plainLine(checks, 300)}` : ''}${outsideMeshText(row.evaluations)}`
    )
  }
  for (const u of report.undone ?? []) lines.push(`  undone: ${plainLine(u, 200)}`)
  for (const w of report.warnings) lines.push(`  warning: ${plainLine(w, 300)}`)
  if (report.dryRun) for (const p of report.plan ?? []) lines.push(`  plan: ${plainLine(p, 300)}`)
  const next = nextAction(report)
  for (const c of next?.commands ?? []) lines.push(`  next: ${plainLine(c, 300)}`)
  if (report.runUrl) lines.push(`  run: ${plainLine(report.runUrl, 300)}`)
  return lines.join('\n')
}
