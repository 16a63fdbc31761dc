import type { GateEvaluation, HistoryEvent } from '../rollout/types.js'
import { escapeMarkdown, mermaidLabel } from './escape-markdown.js'
import { canaryName, formatDuration, formatNumber, formatThreshold, previousStable, thresholdNumber } from './report-model.js'
import type { RunReport } from './run-report.js'

/**
 * Small Mermaid `xychart-beta` charts (GitHub renders Mermaid blocks in comments and job
 * summaries): one per metric with the canary, the stable and the threshold as lines on an axis
 * fitted to the data, and the canary weight to the end of the rollout (a rollback's return to 0
 * included). The legend is Markdown under each chart: GitHub's Mermaid version is not published
 * and chart legends are recent, so colours are fixed by an init directive and named in text.
 */

/** At most this many points per chart (the newest); a longer history is summarised by the table. */
export const CHART_POINTS = 60
/** At most this many x labels; the others are left blank so labels never overlap. */
export const CHART_LABELS = 12
/** Metric charts beyond this many are left out (the table has every check). */
const MAX_METRIC_CHARTS = 3

const COLOURS = { canary: '#0969da', stable: '#bc4c00', threshold: '#cf222e', weight: '#8250df' }
const COLOUR_NAMES = { canary: 'blue', stable: 'orange', threshold: 'red', weight: 'purple' }

type Series = keyof typeof COLOURS

function init(palette: Series[]): string {
  const config = {
    xyChart: { width: 640, height: 240, titleFontSize: 14, xAxis: { labelFontSize: 12 }, yAxis: { labelFontSize: 12 } },
    themeVariables: { xyChart: { plotColorPalette: palette.map((s) => COLOURS[s]).join(', ') } }
  }
  return `%%{init: ${JSON.stringify(config)}}%%`
}

/** `+3m` from the rollout's start; `?` when a time does not parse. */
function sinceStart(at: string, start: number): string {
  const t = Date.parse(at)
  return Number.isNaN(t) || Number.isNaN(start) ? '?' : `+${formatDuration(t - start).replace(/ /g, '')}`
}

/**
 * X labels, at most CHART_LABELS of them shown: the rest become distinct invisible labels
 * (runs of zero-width spaces), because the chart merges equal categories.
 */
export function thinLabels(labels: readonly string[], max = CHART_LABELS): string[] {
  const n = labels.length
  const every = n <= max ? 1 : Math.ceil((n - 1) / (max - 1))
  const shownAt = new Set<number>()
  for (let i = 0; i < n; i += every) shownAt.add(i)
  // The last point always has its label; a shown label too close before it gives way.
  const lastMultiple = Math.floor((n - 1) / every) * every
  if (n - 1 - lastMultiple > 0 && n - 1 - lastMultiple < every / 2) shownAt.delete(lastMultiple)
  shownAt.add(n - 1)
  const seen = new Set<string>()
  return labels.map((label, i) => {
    let out = shownAt.has(i) ? label : ''
    // Equal labels would be one category: make each distinct (invisibly).
    while (seen.has(out) || out === '') out += '\u200b'
    seen.add(out)
    return out
  })
}

/** A y range around the values with a little room, on round numbers. */
export function fitAxis(values: readonly number[], opts: { floor?: number; ceiling?: number } = {}): { min: number; max: number } {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return { min: 0, max: 1 }
  let lo = Math.min(...finite)
  let hi = Math.max(...finite)
  const span = hi - lo || Math.abs(hi) * 0.1 || 1
  lo -= span * 0.15
  hi += span * 0.15
  const step = niceStep((hi - lo) / 5)
  let min = Math.floor(lo / step) * step
  let max = Math.ceil(hi / step) * step
  if (opts.floor !== undefined) min = Math.max(min, opts.floor)
  if (opts.ceiling !== undefined) max = Math.min(max, opts.ceiling)
  if (max <= min) max = min + step
  return { min: Number(min.toFixed(6)), max: Number(max.toFixed(6)) }
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw))
  const f = raw / power
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power
}

/** Each evaluation's value of a series; a missing one repeats the last known (xychart needs a number per point). */
function carry(values: ReadonlyArray<number | undefined>): { values: number[]; carried: boolean } | undefined {
  const first = values.find((v) => v !== undefined && Number.isFinite(v))
  if (first === undefined) return undefined
  let last = first
  let carried = false
  const out = values.map((v) => {
    if (v !== undefined && Number.isFinite(v)) last = v
    else carried = true
    return Number(formatNumber(last))
  })
  return { values: out, carried }
}

function block(lines: string[]): string {
  return ['```mermaid', ...lines, '```'].join('\n')
}

function metricChart(report: RunReport, name: string, evaluations: readonly GateEvaluation[], start: number): string | undefined {
  const results = evaluations.map((e) => e.checks.find((c) => c.name === name))
  const canary = carry(results.map((c) => c?.value))
  if (!canary) return undefined
  // A value that never moved and never failed (pods-ready 3 of 3) draws a flat line: the table says it.
  if (canary.values.every((v) => v === canary.values[0]) && !results.some((c) => c?.verdict === 'fail')) return undefined
  const stable = carry(results.map((c) => c?.stableValue))
  const sample = results.find((c) => c !== undefined)!
  const limit = thresholdNumber(sample)
  const series: Series[] = ['canary', ...(stable ? (['stable'] as const) : []), ...(limit !== undefined ? (['threshold'] as const) : [])]
  const unit = sample.unit
  const percent = unit === '%'
  const axis = fitAxis(
    [...canary.values, ...(stable?.values ?? []), ...(limit !== undefined ? [limit] : [])],
    percent ? { floor: 0, ceiling: 100 } : { floor: 0 }
  )
  const labels = thinLabels(evaluations.map((e) => sinceStart(e.at, start)))
  const unitLabel = unit ? mermaidLabel(unit === '%' ? 'percent' : unit, 12) : ''
  const chart = block([
    init(series),
    'xychart-beta',
    `    title "${mermaidLabel(name, 40)}${unitLabel ? ` (${unitLabel})` : ''}"`,
    `    x-axis [${labels.map((l) => `"${l}"`).join(', ')}]`,
    `    y-axis "${unitLabel || 'value'}" ${axis.min} --> ${axis.max}`,
    `    line [${canary.values.join(', ')}]`,
    ...(stable ? [`    line [${stable.values.join(', ')}]`] : []),
    ...(limit !== undefined ? [`    line [${canary.values.map(() => limit).join(', ')}]`] : [])
  ])
  const legend = [
    `${COLOUR_NAMES.canary}: canary ${escapeMarkdown(canaryName(report), 40)}`,
    ...(stable ? [`${COLOUR_NAMES.stable}: stable ${escapeMarkdown(previousStable(report) ?? '', 40)}`] : []),
    ...(limit !== undefined ? [`${COLOUR_NAMES.threshold}: threshold ${escapeMarkdown(formatThreshold(sample) ?? '', 40)}`] : [])
  ].join(' · ')
  const notes = canary.carried || stable?.carried ? ' An evaluation without a value repeats the previous one.' : ''
  return `${chart}\n\n**${escapeMarkdown(name, 80)}** at each evaluation. Lines: ${legend}.${notes}`
}

/** The canary weight at each change, evaluation and end event, to the end (rollback to 0 included). */
function weightPoints(history: readonly HistoryEvent[]): Array<{ at: string; weight: number; kind: string }> {
  const points: Array<{ at: string; weight: number; kind: string }> = []
  for (const e of history) {
    if (e.kind === 'rolled-back' || e.kind === 'aborted') points.push({ at: e.at, weight: 0, kind: e.kind })
    else if (e.kind === 'promoted') points.push({ at: e.at, weight: 100, kind: e.kind })
    else if (
      (e.kind === 'weight' || e.kind === 'gates' || e.kind === 'rollback-started' || e.kind === 'paused') &&
      typeof e.canaryWeight === 'number'
    )
      points.push({ at: e.at, weight: e.canaryWeight, kind: e.kind })
  }
  return points.filter((p) => Number.isFinite(p.weight))
}

/** At most `max` points: evaluations (same weight) go first, then an even sample keeping the first and the last. */
function fewer<T extends { kind: string }>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return [...points]
  const changes = points.filter((p) => p.kind !== 'gates')
  if (changes.length <= max) return changes
  return Array.from({ length: max }, (_, i) => changes[Math.round((i * (changes.length - 1)) / (max - 1))]!)
}

function weightChart(history: readonly HistoryEvent[], start: number): string | undefined {
  const points = fewer(weightPoints(history), CHART_POINTS)
  if (points.length < 2) return undefined
  const labels = thinLabels(points.map((p) => sinceStart(p.at, start)))
  const chart = block([
    init(['weight']),
    'xychart-beta',
    '    title "Canary weight (percent)"',
    `    x-axis [${labels.map((l) => `"${l}"`).join(', ')}]`,
    '    y-axis "percent" 0 --> 100',
    `    bar [${points.map((p) => formatNumber(p.weight)).join(', ')}]`
  ])
  return `${chart}\n\n**Canary weight** at each change${points.some((p) => p.kind === 'gates') ? ' and evaluation' : ''}, from the start to the end of the rollout.`
}

/** The metrics worth a chart: every check with values, failing ones first, at most MAX_METRIC_CHARTS. */
function chartedMetrics(evaluations: readonly GateEvaluation[]): string[] {
  const names: string[] = []
  const failing = new Set<string>()
  for (const e of evaluations)
    for (const c of e.checks) {
      if (c.value === undefined || c.name === 'min-requests') continue
      if (!names.includes(c.name)) names.push(c.name)
      if (c.verdict === 'fail') failing.add(c.name)
    }
  return [...names.filter((n) => failing.has(n)), ...names.filter((n) => !failing.has(n))].slice(0, MAX_METRIC_CHARTS)
}

/** The charts section, or '' when there is nothing to draw. */
export function renderCharts(report: RunReport): string {
  const history = report.state?.history ?? []
  const start = Date.parse(report.state?.startedAt ?? report.startedAt)
  const evaluations = history
    .filter((e) => e.kind === 'gates' && e.evaluation)
    .map((e) => e.evaluation!)
    .slice(-CHART_POINTS)
  const charts = chartedMetrics(evaluations)
    .map((name) => metricChart(report, name, evaluations, start))
    .filter((c): c is string => c !== undefined)
  const weight = weightChart(history, start)
  if (weight) charts.push(weight)
  if (charts.length === 0) return ''
  return ['### Charts', '', 'Times are since the start of the rollout.', '', charts.join('\n\n')].join('\n')
}
