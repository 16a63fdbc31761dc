import { formatNumber } from '../format.js'
import type { CheckResult, GateEvaluation, HistoryEvent, Step } from '../rollout/types.js'
import { codeBlock, cut, escapeMarkdown, mermaidLabel, plainLine, safeUrl } from './escape-markdown.js'
import type { RunReport } from './run-report.js'

/**
 * The pure renderers of a RunReport: Markdown for the job summary and the PR comment, one line
 * for annotations, plain text for the log. Every value that comes from users or the cluster goes
 * through escape-markdown.ts; the Markdown stays under `maxLength` by shortening the history
 * first, then the steps table, then the chart, keeping the marker and the head.
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

// ---------- facts derived from the report (shared by every renderer) ----------

/** One stretch of time at one canary weight, with the gate evaluations made during it. */
interface Segment {
  weight: number
  from: string
  to?: string
  evaluations: GateEvaluation[]
  /** Why the stretch ended early or what happened in it (paused, rollback started, ...). */
  notes: string[]
}

const WEIGHT_ENDS: ReadonlySet<HistoryEvent['kind']> = new Set(['weight', 'rollback-started', 'rolled-back', 'aborted', 'abort-requested', 'promoted', 'cancelled'])

function segmentsOf(history: readonly HistoryEvent[]): Segment[] {
  const segments: Segment[] = []
  let open: Segment | undefined
  for (const event of history) {
    if (open && WEIGHT_ENDS.has(event.kind) && open.to === undefined) {
      open.to = event.at
      if (event.kind !== 'weight') open.notes.push(eventLabel(event.kind))
    }
    if (event.kind === 'weight' && typeof event.canaryWeight === 'number') {
      open = { weight: event.canaryWeight, from: event.at, evaluations: [], notes: [] }
      segments.push(open)
    } else if (event.kind === 'gates' && event.evaluation) {
      // An evaluation belongs to the stretch at its weight (the last one opened).
      const target = [...segments].reverse().find((s) => s.weight === event.evaluation!.canaryWeight) ?? open
      target?.evaluations.push(event.evaluation)
    } else if (event.kind === 'paused' && open && open.to === undefined) {
      open.notes.push('paused')
    } else if (event.kind === 'promote-requested' && open && open.to === undefined) {
      open.notes.push('promote requested')
    }
  }
  return segments
}

function eventLabel(kind: HistoryEvent['kind']): string {
  return kind.replace(/-/g, ' ')
}

/** The canary version's name, or a neutral word when it is unknown. */
function canaryName(report: RunReport): string {
  return report.state?.canary.version ?? report.canaryVersion ?? '(none)'
}

/** The version the rollout started from (after a promotion the outputs call the canary stable). */
function stableName(report: RunReport): string | undefined {
  return report.state?.stable.version ?? report.stableVersion
}

// A version is a label; a very long one must not push the rest of the headline out of sight.
const NAME_MAX = 80

/** The headline without formatting (escape before putting it into Markdown). */
function headline(report: RunReport): string {
  const where = `${cut(report.namespace, NAME_MAX)}/${cut(report.virtualService, NAME_MAX)}`
  const canary = cut(canaryName(report), NAME_MAX)
  const prefix = report.dryRun ? 'dry run: ' : ''
  const incomplete = report.error?.kind === 'RollbackIncompleteError'
  let what: string
  if (incomplete) what = `${canary} rollback INCOMPLETE on ${where}: traffic may still be split`
  else if (report.command === 'status') what = `status of ${where}: ${report.phase ?? 'no rollout'} at ${report.canaryWeight} %`
  else
    switch (report.result) {
      case 'promoted':
        what = `${canary} promoted on ${where}`
        break
      case 'rolled-back':
        what = `${canary} rolled back on ${where}`
        break
      case 'aborted':
        what = `${canary} aborted on ${where}`
        break
      case 'paused':
        what = `${canary} paused at ${report.canaryWeight} % on ${where}`
        break
      case 'unchanged':
        what = report.error
          ? `${report.command} failed on ${where}, nothing changed`
          : report.alreadyStable
            ? `${cut(report.alreadyStable.version, NAME_MAX)} is already stable on ${where}; nothing to do`
            : `${canary} unchanged on ${where}`
        break
    }
  return `istio-canary: ${prefix}${what}`
}

function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`
  const h = Math.floor(m / 60)
  return m % 60 ? `${h}h ${m % 60}m` : `${h}h`
}

function between(from: string | undefined, to: string | undefined): number {
  if (!from || !to) return NaN
  return Date.parse(to) - Date.parse(from)
}

function formatValue(check: CheckResult, escape: (s: string) => string = (s) => s): string {
  if (check.value === undefined) return 'no value'
  const unit = check.unit ? (check.unit === '%' ? '%' : ` ${escape(cut(check.unit, 20))}`) : ''
  return `${formatNumber(check.value)}${unit}`
}

/** `HH:MM:SS` UTC of an ISO time, or the raw value when it does not parse. */
function clock(at: string): string {
  const t = Date.parse(at)
  return Number.isNaN(t) ? at : new Date(t).toISOString().slice(11, 19)
}

/** The key metric of the chart: the success rate when a check is named so, else the first check. */
function keyCheckName(evaluations: readonly GateEvaluation[]): string | undefined {
  const names = evaluations.flatMap((e) => e.checks.filter((c) => c.value !== undefined).map((c) => c.name))
  return names.find((n) => /success[-_ ]?rate/i.test(n)) ?? names[0]
}

function remainingSteps(report: RunReport): Array<{ index: number; step: Step }> {
  const state = report.state
  if (!state || state.phase === 'promoted') return []
  return state.schedule.map((step, index) => ({ index, step })).filter(({ index }) => index > state.stepIndex)
}

function verdictWord(v: string): string {
  return v === 'fail' ? '**fail**' : v === 'inconclusive' ? '*inconclusive*' : escapeMarkdown(v, 20)
}

// ---------- Markdown sections ----------

interface Limits {
  /** How many of the newest history events to list (Infinity: all; 0: none). */
  history: number
  /** How many rows of the steps table to keep. */
  tableRows: number
  chart: boolean
  /** Only the title, the facts and a short error: the last resort. */
  minimalHead: boolean
}

const MAX_LIST = 30

function list(items: readonly string[], ordered = false, max = MAX_LIST): string {
  const shown = items.slice(0, max).map((item, i) => `${ordered ? `${i + 1}.` : '-'} ${escapeMarkdown(item, 500)}`)
  if (items.length > max) shown.push(`${ordered ? `${max + 1}.` : '-'} … and ${items.length - max} more`)
  return shown.join('\n')
}

function renderHead(report: RunReport, minimal: boolean): string {
  const parts: string[] = [`## ${escapeMarkdown(headline(report), 400)}`]
  const stable = stableName(report)
  const facts = [
    `**Result:** ${escapeMarkdown(report.result, 40)}`,
    `**Phase:** ${report.phase ? escapeMarkdown(report.phase, 40) : 'no rollout'}`,
    `**Canary weight:** ${formatNumber(report.canaryWeight)} %`
  ]
  const promoted = report.state?.phase === 'promoted' ? ` (now stable)` : ''
  const versions = `**Versions:** stable ${stable ? escapeMarkdown(stable, 120) : '(none)'} → canary ${escapeMarkdown(canaryName(report), 120)}${promoted}`
  const run = safeUrl(report.runUrl)
  const ran = `**Run:** ${escapeMarkdown(report.command, 20)}${report.dryRun ? ' (dry run)' : ''}, ${formatDuration(between(report.startedAt, report.finishedAt))}${run ? `, [workflow run](${run})` : ''}`
  parts.push([facts.join(' · '), versions, ran].join('  \n'))

  const done = report.alreadyStable
  if (done && !report.error) {
    const made = report.state?.phase === 'promoted' && report.state.canary.version === done.version ? ' The steps below are those of the rollout that made it stable.' : ''
    parts.push(
      `${escapeMarkdown(done.version, 120)} is already stable; nothing to do: Deployment ${escapeMarkdown(done.deployment, 253)} matches the manifest, so this run changed nothing in the cluster.${made}`
    )
  }
  if (report.error) {
    parts.push(`### What went wrong`)
    parts.push(`${escapeMarkdown(report.error.kind, 80)}:`)
    parts.push(codeBlock(report.error.message, { max: minimal ? 500 : 4000 }))
  }
  const reason = report.state?.reason
  if (reason && report.result !== 'promoted' && reason !== report.error?.message) {
    parts.push(`**Reason:** ${escapeMarkdown(reason, 500)}`)
  }
  if (minimal) return parts.join('\n\n')

  if (report.undone && report.undone.length > 0) {
    parts.push(`### What was undone`)
    parts.push(list(report.undone, true))
  } else if (report.result === 'rolled-back' || report.result === 'aborted') {
    parts.push(`### What was undone`)
    parts.push('Nothing was recorded as undone.')
  }
  if (report.dryRun) {
    parts.push(`### Dry run: nothing was changed`)
    const plan = report.plan ?? []
    const shown = plan.slice(0, 200).map((l) => plainLine(l, 300))
    if (plan.length > 200) shown.push(`… and ${plan.length - 200} more`)
    parts.push(plan.length ? `Plan:\n\n${codeBlock(shown.join('\n'), { max: 20_000 })}` : 'The plan is empty.')
  }
  if (report.warnings.length > 0) {
    parts.push(`### Warnings`)
    parts.push(list(report.warnings))
  }
  return parts.join('\n\n')
}

/** Every row of the steps table, in order (header separately). */
function tableRows(report: RunReport): string[] {
  const history = report.state?.history ?? []
  const segments = segmentsOf(history)
  const end = report.finishedAt
  const rows: string[] = []
  segments.forEach((seg, i) => {
    const time = formatDuration(between(seg.from, seg.to ?? end)) + (seg.to ? '' : ' so far')
    const evals = seg.evaluations
    const failed = evals.filter((e) => e.verdict === 'fail').length
    const evalText = evals.length ? `${evals.length}${failed ? ` (${failed} failed)` : ''}` : '-'
    const last = evals.at(-1)
    const outside = outsideMeshNote(evals)
    const noteList = outside ? [...seg.notes, outside] : seg.notes
    const notes = noteList.length ? escapeMarkdown(noteList.join(', '), 300) : ''
    const head = [`${i + 1}`, `${formatNumber(seg.weight)} %`, time, evalText]
    const checks = last?.checks ?? []
    if (checks.length === 0) {
      rows.push(`| ${[...head, '-', '-', '-', '-', notes].join(' | ')} |`)
      return
    }
    checks.slice(0, 20).forEach((check, j) => {
      const observed = formatValue(check, (u) => escapeMarkdown(u, 20)) + (check.stableValue !== undefined ? ` (stable ${escapeMarkdown(formatNumber(check.stableValue), 30)})` : '')
      const detail = check.detail ? `: ${escapeMarkdown(check.detail, 120)}` : ''
      const cells = j === 0 ? head : ['', '', '', '']
      rows.push(
        `| ${[...cells, escapeMarkdown(check.name, 80), observed, check.threshold ? escapeMarkdown(check.threshold, 60) : '-', verdictWord(check.verdict) + detail, j === 0 ? notes : ''].join(' | ')} |`
      )
    })
  })
  for (const { index, step } of remainingSteps(report)) {
    const label = report.state?.phase === 'paused' || report.state?.phase === 'progressing' ? 'pending' : 'not reached'
    const what = step.kind === 'pause' ? 'pause' : `${formatNumber(step.weight)} %`
    rows.push(`| - | ${what} | - | - | - | - | - | - | ${label} (schedule step ${index + 1} of ${report.state!.schedule.length}) |`)
  }
  return rows
}

const TABLE_HEADER = '| Step | Canary weight | Time at weight | Evaluations | Check | Observed | Threshold | Verdict | Notes |\n|---:|---:|---|---|---|---|---|---|---|'

function renderTable(rows: readonly string[], limit: number): string {
  if (rows.length === 0) return ''
  const shown = rows.slice(0, limit)
  const omitted = rows.length - shown.length
  return [`### Steps`, '', TABLE_HEADER, ...shown, ...(omitted > 0 ? ['', `*${omitted} more rows not shown (the report was too long).*`] : [])].join('\n')
}

const CHART_POINTS = 60

/** Canary weight (bars) per gate evaluation, with the key metric (line) beside it. */
function renderChart(report: RunReport): string {
  const history = report.state?.history ?? []
  const start = Date.parse(report.state?.startedAt ?? report.startedAt)
  type Point = { at: string; weight: number; metric?: number }
  let points: Point[]
  const evaluations = history.filter((e) => e.kind === 'gates' && e.evaluation).map((e) => e.evaluation!)
  const key = keyCheckName(evaluations)
  if (evaluations.length > 0) {
    points = evaluations.map((e) => ({ at: e.at, weight: e.canaryWeight, metric: e.checks.find((c) => c.name === key)?.value }))
  } else {
    points = history.filter((e) => e.kind === 'weight' && typeof e.canaryWeight === 'number').map((e) => ({ at: e.at, weight: e.canaryWeight! }))
  }
  points = points.filter((p) => Number.isFinite(p.weight)).slice(-CHART_POINTS)
  if (points.length === 0) return ''
  const labels = points.map((p) => {
    const t = Date.parse(p.at)
    return `"+${Number.isNaN(t) || Number.isNaN(start) ? '?' : formatDuration(t - start).replace(/ /g, '')}"`
  })
  const hasMetric = key !== undefined && points.some((p) => p.metric !== undefined && Number.isFinite(p.metric))
  let carried = false
  let metrics: number[] = []
  if (hasMetric) {
    // xychart-beta needs a number per category: an evaluation without a value repeats the last one.
    let last = points.find((p) => p.metric !== undefined && Number.isFinite(p.metric))!.metric!
    metrics = points.map((p) => {
      if (p.metric !== undefined && Number.isFinite(p.metric)) last = p.metric
      else carried = true
      return Number(formatNumber(last))
    })
  }
  const top = Math.max(100, ...metrics.map((m) => Math.ceil(m)))
  const bottom = Math.min(0, ...metrics.map((m) => Math.floor(m)))
  const keyCheck = evaluations.flatMap((e) => e.checks).find((c) => c.name === key)
  const unitLabel = keyCheck?.unit === '%' ? 'percent' : mermaidLabel(keyCheck?.unit ?? '', 10)
  const metricLabel = hasMetric ? `${mermaidLabel(key)}${unitLabel ? ` (${unitLabel})` : ''}` : ''
  const lines = [
    '```mermaid',
    'xychart-beta',
    `    title "Canary weight${hasMetric ? ` and ${metricLabel}` : ''}"`,
    `    x-axis [${labels.join(', ')}]`,
    `    y-axis "Percent${hasMetric && unitLabel && unitLabel !== 'percent' ? ` / ${unitLabel}` : ''}" ${bottom} --> ${top}`,
    `    bar [${points.map((p) => formatNumber(p.weight)).join(', ')}]`,
    ...(hasMetric ? [`    line [${metrics.join(', ')}]`] : []),
    '```'
  ]
  const caption =
    `Bars: canary weight at each ${evaluations.length ? 'gate evaluation' : 'weight change'}` +
    (hasMetric ? `; line: ${escapeMarkdown(key, 80)}${carried ? ' (an evaluation without a value repeats the previous one)' : ''}` : '') +
    '. Times are since the start of the rollout.'
  return [`### Canary weight over time`, '', lines.join('\n'), '', caption].join('\n')
}

/** The step's share of canary requests from outside the mesh (its last evaluation with a figure): the part the weights did not decide. */
function outsideMeshNote(evaluations: readonly GateEvaluation[]): string | undefined {
  const share = [...evaluations].reverse().find((e) => e.outsideMesh?.percent !== undefined)?.outsideMesh ?? evaluations.at(-1)?.outsideMesh
  if (!share) return undefined
  if (share.percent === undefined) return 'outside the mesh: unknown'
  // A small share must never read as 0.
  const percent = share.percent > 0 && share.percent < 0.01 ? '< 0.01' : formatNumber(share.percent)
  return `outside the mesh: ${percent} % of canary requests`
}

function checksSummary(evaluation: GateEvaluation): string {
  return evaluation.checks
    .slice(0, 10)
    .map((c) => `${c.name} ${formatValue(c)}${c.threshold ? ` (${c.threshold})` : ''} ${c.verdict}${c.detail ? `: ${c.detail}` : ''}`)
    .join('; ')
}

function historyRow(event: HistoryEvent): string {
  const weight = typeof event.canaryWeight === 'number' ? `${formatNumber(event.canaryWeight)} %` : '-'
  const parts: string[] = []
  if (event.evaluation) parts.push(`${event.evaluation.verdict}: ${checksSummary(event.evaluation)}`)
  if (event.message) parts.push(event.message)
  const details = parts.length ? escapeMarkdown(parts.join(' — '), 400) : ''
  const byUrl = safeUrl(event.by)
  const by = byUrl ? `[run](${byUrl})` : event.by ? escapeMarkdown(event.by, 100) : ''
  return `| ${escapeMarkdown(clock(event.at), 40)} | ${escapeMarkdown(eventLabel(event.kind), 30)} | ${weight} | ${details} | ${by} |`
}

function renderHistory(report: RunReport, limit: number): string {
  const history = report.state?.history ?? []
  if (history.length === 0) return ''
  if (limit <= 0) return `*The full history (${history.length} events) was left out: the report was too long.*`
  const shown = history.slice(Math.max(0, history.length - limit))
  const omitted = history.length - shown.length
  return [
    `<details><summary>Full history (${history.length} events, times UTC)</summary>`,
    '',
    ...(omitted > 0 ? [`*${omitted} earlier events not shown (the report was too long).*`, ''] : []),
    '| Time | Event | Weight | Details | By |',
    '|---|---|---:|---|---|',
    ...shown.map(historyRow),
    '',
    '</details>'
  ].join('\n')
}

function assemble(report: RunReport, marker: string | undefined, rows: readonly string[], limits: Limits): string {
  const sections = [
    marker ?? '',
    renderHead(report, limits.minimalHead),
    limits.minimalHead ? '' : renderTable(rows, limits.tableRows),
    limits.chart && !limits.minimalHead ? renderChart(report) : '',
    limits.minimalHead ? '' : renderHistory(report, limits.history)
  ]
  return `${sections.filter((s) => s !== '').join('\n\n')}\n`
}

/**
 * The report as GitHub Markdown (job summary, PR comment). Pure. The result never exceeds
 * `maxLength`: the history is shortened first, then the steps table, then the chart goes, then
 * only the head is kept; the marker always stays.
 */
export function renderReport(report: RunReport, opts: RenderOptions = {}): string {
  const max = opts.maxLength ?? COMMENT_MAX_LENGTH
  const marker = opts.marker
  const rows = tableRows(report)
  const historyLength = report.state?.history.length ?? 0
  const full: Limits = { history: Infinity, tableRows: Infinity, chart: true, minimalHead: false }
  let text = assemble(report, marker, rows, full)
  if (text.length <= max) return text
  // Shorten the history (newest events stay), then the table, then drop the chart.
  for (let h = Math.floor(historyLength / 2); ; h = Math.floor(h / 2)) {
    text = assemble(report, marker, rows, { ...full, history: h })
    if (text.length <= max) return text
    if (h === 0) break
  }
  for (let t = Math.floor(rows.length / 2); ; t = Math.floor(t / 2)) {
    text = assemble(report, marker, rows, { ...full, history: 0, tableRows: t })
    if (text.length <= max) return text
    if (t === 0) break
  }
  for (const limits of [
    { ...full, history: 0, tableRows: 0, chart: false },
    { ...full, history: 0, tableRows: 0, chart: false, minimalHead: true }
  ]) {
    text = assemble(report, marker, rows, limits)
    if (text.length <= max) return text
  }
  // Last resort: the head cut hard; the marker (first line) survives whenever it fits at all.
  const note = '\n\n*(report cut: too long)*\n'
  return `${text.slice(0, Math.max(0, max - note.length))}${note}`.slice(0, max)
}

/** One plain line for `::notice` / `::error` annotations and the deployment status description. */
export function renderOneLine(report: RunReport, max = 300): string {
  const parts = [headline(report)]
  const history = report.state?.history ?? []
  const lastEval = [...history].reverse().find((e) => e.kind === 'gates' && e.evaluation)?.evaluation
  if (report.error) parts.push(`${report.error.kind}: ${report.error.message}`)
  else if (report.result === 'rolled-back' || report.result === 'aborted') {
    if (report.state?.reason) parts.push(report.state.reason)
    const failing = lastEval?.checks.filter((c) => c.verdict === 'fail') ?? []
    if (failing.length) parts.push(failing.map((c) => `${c.name} ${formatValue(c)}${c.threshold ? ` (want ${c.threshold})` : ''}`).join(', '))
  } else if (report.result === 'paused' && report.state?.reason) parts.push(report.state.reason)
  return plainLine(parts.join(' — '), max)
}

/** The report as plain text lines for the step log (no Markdown). */
export function renderPlainLog(report: RunReport): string {
  const lines = [renderOneLine(report, 500)]
  const stable = stableName(report)
  lines.push(`result=${report.result} phase=${report.phase ?? 'none'} canary-weight=${report.canaryWeight} stable=${plainLine(stable ?? '-', 100)} canary=${plainLine(canaryName(report), 100)}`)
  for (const [i, seg] of segmentsOf(report.state?.history ?? []).entries()) {
    const last = seg.evaluations.at(-1)
    const checks = last ? ` ${plainLine(checksSummary(last), 300)}` : ''
    const outside = outsideMeshNote(seg.evaluations)
    lines.push(`  step ${i + 1}: ${seg.weight} % for ${formatDuration(between(seg.from, seg.to ?? report.finishedAt))}${checks}${outside ? `; ${outside}` : ''}`)
  }
  for (const u of report.undone ?? []) lines.push(`  undone: ${plainLine(u, 200)}`)
  for (const w of report.warnings) lines.push(`  warning: ${plainLine(w, 300)}`)
  if (report.dryRun) for (const p of report.plan ?? []) lines.push(`  plan: ${plainLine(p, 300)}`)
  if (report.runUrl) lines.push(`  run: ${plainLine(report.runUrl, 300)}`)
  return lines.join('\n')
}
