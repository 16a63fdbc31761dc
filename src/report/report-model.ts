import { formatNumber } from '../format.js'
import { describeExposure } from '../rollout/exposure.js'
import type { CheckResult, GateEvaluation, HistoryEvent, Phase, Step, Verdict } from '../rollout/types.js'
import { cut } from './escape-markdown.js'
import type { RunReport } from './run-report.js'

/**
 * The facts every renderer of a RunReport shares, derived once and without formatting for Markdown:
 * what situation the rollout is in (from the phase while it is in flight, not from the run's
 * result), the steps with the worst value of each check, and the next thing to run. Pure.
 */

/** What the head says and which GitHub alert carries it. */
export type SituationKind =
  | 'already-stable'
  | 'dry-run'
  | 'incomplete'
  | 'halted'
  | 'initializing'
  | 'progressing'
  | 'paused'
  | 'promoting'
  | 'rolling-back'
  | 'stopped'
  | 'promoted'
  | 'rolled-back'
  | 'aborted'
  | 'failed'
  | 'status'
  | 'unchanged'

export type AlertKind = 'NOTE' | 'TIP' | 'IMPORTANT' | 'WARNING' | 'CAUTION'

export const ALERT_OF: Record<SituationKind, AlertKind> = {
  'already-stable': 'NOTE',
  'dry-run': 'NOTE',
  incomplete: 'CAUTION',
  halted: 'WARNING',
  initializing: 'NOTE',
  progressing: 'NOTE',
  paused: 'WARNING',
  promoting: 'NOTE',
  'rolling-back': 'CAUTION',
  stopped: 'CAUTION',
  promoted: 'TIP',
  'rolled-back': 'CAUTION',
  aborted: 'WARNING',
  failed: 'WARNING',
  status: 'NOTE',
  unchanged: 'NOTE'
}

const IN_FLIGHT: ReadonlySet<Phase> = new Set(['initializing', 'progressing', 'paused', 'promoting', 'rolling-back'])

/** The situation of a report: the phase decides while the rollout is in flight. */
export function situationOf(report: RunReport): SituationKind {
  const phase = report.phase ?? report.state?.phase
  // A re-run of a finished release (a dry run too): nothing was written, the state is the old rollout's.
  if (report.alreadyStable && !report.error) return 'already-stable'
  if (report.dryRun) return 'dry-run'
  if (report.error?.kind === 'RollbackIncompleteError') return 'incomplete'
  if (report.error?.kind === 'RollbackHalted' || (phase === 'paused' && report.state?.reason?.startsWith('rollback halted')))
    return 'halted'
  if (report.command === 'status') return 'status'
  if (phase && IN_FLIGHT.has(phase)) {
    // An error mid-rollout (not a pause): the run stopped; the phase says where it was left.
    if (report.error && phase !== 'paused') return 'stopped'
    return phase as SituationKind
  }
  if (report.result === 'promoted' || report.result === 'rolled-back' || report.result === 'aborted') return report.result
  if (phase === 'promoted' || phase === 'rolled-back' || phase === 'aborted') return report.error ? 'failed' : phase
  return report.error ? 'failed' : 'unchanged'
}

// A version is a label a user chose: a very long one must not push the state out of the first line.
export const LABEL_MAX = 40
// Namespace (up to 63) and VirtualService names are DNS names: shown whole unless absurd.
const NAME_MAX = 80

export function canaryName(report: RunReport): string {
  return report.state?.canary.version ?? report.canaryVersion ?? '(none)'
}

/** The version that was stable when the rollout started. */
export function previousStable(report: RunReport): string | undefined {
  return report.state?.stable.version ?? report.stableVersion
}

export function scheduleOf(report: RunReport): Step[] {
  return report.state?.schedule ?? report.rollout?.schedule ?? []
}

/** `10 → 25 → pause → 100 %`, match and mirror steps as written: `mirror:50 → 10 → 100 %`. */
export function scheduleText(schedule: readonly Step[]): string {
  return `${schedule.map((s) => (s.kind === 'pause' ? 'pause' : s.kind === 'weight' ? formatNumber(s.weight) : describeExposure(s))).join(' → ')} %`
}

/** The one headline, plain (escape before it goes into Markdown). */
export function headline(report: RunReport): string {
  const where = `${cut(report.namespace, NAME_MAX)}/${cut(report.virtualService, NAME_MAX)}`
  const canary = cut(canaryName(report), LABEL_MAX)
  const stable = previousStable(report)
  const weight = `${formatNumber(report.canaryWeight)} %`
  const schedule = scheduleOf(report)
  const step = stepPosition(report)
  switch (situationOf(report)) {
    case 'already-stable':
      return `${cut(report.alreadyStable!.version, LABEL_MAX)} is already stable on ${where}; nothing to do`
    case 'dry-run': {
      if (report.command === 'deploy') {
        const over = stable ? ` over ${cut(stable, LABEL_MAX)}` : ''
        const steps = schedule.length ? ` in ${schedule.length} step${schedule.length === 1 ? '' : 's'} (${scheduleText(schedule)})` : ''
        return `dry run: would roll out ${canary}${over} on ${where}${steps}`
      }
      if (report.command === 'status') return `dry run: status of ${where}`
      return `dry run: would ${report.command} ${canary} on ${where}`
    }
    case 'incomplete':
      return `${canary} rollback INCOMPLETE on ${where}: traffic may still be split`
    case 'halted':
      return `${canary} rollback halted at ${weight} on ${where}`
    case 'initializing':
      return `${canary} starting on ${where}: readying the canary, no traffic yet`
    case 'progressing':
      return `${canary} progressing on ${where}: ${weight}${step ? `, ${step}` : ''}`
    case 'paused':
      return `${canary} paused at ${weight} on ${where}`
    case 'promoting':
      return `${canary} promoting on ${where}: ${weight}, retiring ${cut(stable ?? 'the old version', LABEL_MAX)}`
    case 'rolling-back':
      return `${canary} rolling back on ${where}`
    case 'stopped':
      return `${canary} run stopped mid-rollout on ${where} (${report.phase} at ${weight})`
    case 'promoted':
      return `${canary} promoted on ${where}`
    case 'rolled-back':
      return `${canary} rolled back on ${where}`
    case 'aborted':
      return `${canary} aborted on ${where}`
    case 'failed':
      return `${report.command} failed on ${where}, nothing changed`
    case 'status':
      return `status of ${where}: ${report.phase ?? 'no rollout'}${report.phase ? ` at ${weight}` : ''}`
    case 'unchanged':
      if (report.command === 'plan')
        return `plan: merging would roll out ${canary}${stable ? ` over ${cut(stable, LABEL_MAX)}` : ''} on ${where}`
      return report.command === 'abort' ? `nothing to abort on ${where}` : `${canary} unchanged on ${where}`
  }
}

/** `step 2 of 4` of the schedule, when a rollout is on a step. */
export function stepPosition(report: RunReport): string | undefined {
  const state = report.state
  if (!state || state.stepIndex < 0 || state.schedule.length === 0) return undefined
  return `step ${Math.min(state.stepIndex + 1, state.schedule.length)} of ${state.schedule.length}`
}

// ---------- numbers and units ----------

// The one number rule of logs, details and reports (src/format.ts).
export { formatNumber }

/** Counts with thousands separators: `12,400`. */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n)
}

/** One style everywhere: a space before the unit (`99.5 %`, `500 ms`, `3 pods`). */
export function withUnit(value: number, unit: string | undefined): string {
  const u = unit ? cut(unit, 20) : ''
  return u ? `${formatNumber(value)} ${u}` : formatNumber(value)
}

export function formatValue(check: CheckResult): string {
  return check.value === undefined ? 'no value' : withUnit(check.value, check.unit)
}

/** The canary minus stable, signed, in the check's unit (`pp` for percentages: percentage points). */
export function formatDelta(check: CheckResult): string | undefined {
  if (check.value === undefined || check.stableValue === undefined) return undefined
  const d = check.value - check.stableValue
  const unit = check.unit === '%' ? 'pp' : check.unit
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±'
  return `${sign}${withUnit(Math.abs(d), unit)}`
}

/** `>= 99` with unit `%` reads `≥ 99 %`; `<= 500 ms` stays `≤ 500 ms`. */
export function formatThreshold(check: Pick<CheckResult, 'threshold' | 'unit'>): string | undefined {
  if (!check.threshold) return undefined
  let t = check.threshold.trim().replace(/^>=/, '≥').replace(/^<=/, '≤')
  t = t.replace(/(\d)(%)$/, '$1 $2')
  if (check.unit && /^[≥≤<>=]\s*-?\d+(\.\d+)?$/.test(t)) t = `${t} ${check.unit}`
  return t
}

/** Which way a value gets worse, from the threshold: `>=` means lower is worse. */
export function worseDirection(check: Pick<CheckResult, 'threshold'>): 'lower' | 'higher' | undefined {
  const t = check.threshold?.trim() ?? ''
  if (/^(>=|>|≥)/.test(t)) return 'lower'
  if (/^(<=|<|≤)/.test(t)) return 'higher'
  return undefined
}

/** The number in a plain threshold (`>= 99`, `<= 500 ms`), for the chart's threshold line. */
export function thresholdNumber(check: Pick<CheckResult, 'threshold'>): number | undefined {
  const m = /^(?:>=|<=|>|<|≥|≤)\s*(-?\d+(?:\.\d+)?)\s*[^\d\s]*$/.exec(check.threshold?.trim() ?? '')
  return m ? Number(m[1]) : undefined
}

const VERDICT_RANK: Record<Verdict, number> = { fail: 2, inconclusive: 1, pass: 0 }

/**
 * The worst result of one check over a step's evaluations: a failure before an inconclusive result
 * before a pass; among equals the value furthest on the failing side of the threshold (or the
 * latest, when the threshold gives no direction). A result with a value beats one without at
 * the same verdict, so "730 ms, fail" is never hidden behind a later "no data".
 */
export function worstCheck(results: readonly CheckResult[]): CheckResult | undefined {
  let worst: CheckResult | undefined
  for (const r of results) {
    if (!worst) {
      worst = r
      continue
    }
    const rank = VERDICT_RANK[r.verdict] - VERDICT_RANK[worst.verdict]
    if (rank !== 0) {
      if (rank > 0) worst = r
      continue
    }
    if (r.value === undefined) continue
    if (worst.value === undefined) {
      worst = r
      continue
    }
    const dir = worseDirection(r)
    if (dir === 'lower' ? r.value <= worst.value : dir === 'higher' ? r.value >= worst.value : true) worst = r
  }
  return worst
}

// ---------- steps ----------

/** One summary per check over a step. */
export interface CheckSummary {
  name: string
  worst: CheckResult
  /** The evaluation the worst result is from (its other checks: the request count). */
  at: GateEvaluation
  evaluations: number
  failed: number
}

export type StepStatus = 'done' | 'current' | 'pending' | 'not reached' | 'planned'

/** One row of the steps table: a schedule step, or a stretch at a weight outside the schedule. */
export interface StepRow {
  /** 1-based position in the schedule; undefined for a weight the schedule does not have. */
  number?: number
  kind: 'weight' | 'pause' | 'match' | 'mirror'
  weight?: number
  /** A match or mirror step as the schedule writes it (`header:x-canary=always`, `mirror:50`); its weight is 0. */
  exposure?: string
  from?: string
  to?: string
  evaluations: GateEvaluation[]
  failedEvaluations: number
  checks: CheckSummary[]
  /** What ended the stretch or happened in it (paused, rollback started, ...). */
  notes: string[]
  status: StepStatus
}

const WEIGHT_ENDS: ReadonlySet<HistoryEvent['kind']> = new Set([
  'weight',
  'rollback-started',
  'rolled-back',
  'aborted',
  'abort-requested',
  'promoted',
  'cancelled'
])

interface Stretch {
  weight: number
  /** The match or mirror step's description, when the stretch is one (weight 0). */
  exposure?: string
  from: string
  to?: string
  evaluations: GateEvaluation[]
  notes: string[]
}

export function eventLabel(kind: HistoryEvent['kind']): string {
  return kind.replace(/-/g, ' ')
}

function stretchesOf(history: readonly HistoryEvent[]): Stretch[] {
  const stretches: Stretch[] = []
  let open: Stretch | undefined
  for (const event of history) {
    if (open && WEIGHT_ENDS.has(event.kind) && open.to === undefined) {
      open.to = event.at
      if (event.kind !== 'weight') open.notes.push(eventLabel(event.kind))
    }
    if (event.kind === 'weight' && typeof event.canaryWeight === 'number') {
      // A 'weight' event of a match or mirror step carries its description (and weight 0).
      const exposure = event.canaryWeight === 0 && event.message ? { exposure: event.message } : {}
      open = { weight: event.canaryWeight, ...exposure, from: event.at, evaluations: [], notes: [] }
      stretches.push(open)
    } else if (event.kind === 'gates' && event.evaluation) {
      // An evaluation belongs to the stretch at its weight (the last one opened).
      const target = [...stretches].reverse().find((s) => s.weight === event.evaluation!.canaryWeight) ?? open
      target?.evaluations.push(event.evaluation)
    } else if (event.kind === 'paused' && open && open.to === undefined) {
      open.notes.push('paused')
    } else if (event.kind === 'promote-requested' && open && open.to === undefined) {
      open.notes.push('promote requested')
    }
  }
  return stretches
}

function summarise(evaluations: readonly GateEvaluation[]): CheckSummary[] {
  const names: string[] = []
  for (const e of evaluations) for (const c of e.checks) if (!names.includes(c.name)) names.push(c.name)
  return names.map((name) => {
    const pairs = evaluations.flatMap((e) => e.checks.filter((c) => c.name === name).map((c) => ({ c, e })))
    const worst = worstCheck(pairs.map((p) => p.c))!
    return {
      name,
      worst,
      at: pairs.find((p) => p.c === worst)!.e,
      evaluations: pairs.length,
      failed: pairs.filter((p) => p.c.verdict === 'fail').length
    }
  })
}

/**
 * The steps in schedule order: each stretch at a weight is matched to the next schedule step of
 * that weight; pause steps and steps not reached get their own rows, so the numbers are the
 * schedule's ("step 2 of 4" in the head is row 2 here).
 */
export function stepRows(report: RunReport): StepRow[] {
  const state = report.state
  const schedule = scheduleOf(report)
  const stretches = stretchesOf(state?.history ?? [])
  const rows: StepRow[] = []
  const phase = state?.phase
  const live = phase === 'progressing' || phase === 'paused' || phase === 'initializing'
  const stepIndex = state?.stepIndex ?? -1
  const unmatched = (index: number): StepRow => {
    const step = schedule[index]!
    const current = index === stepIndex && phase === 'paused' && step.kind === 'pause'
    const passed = index < stepIndex
    return {
      number: index + 1,
      kind: step.kind,
      ...(step.kind === 'weight' ? { weight: step.weight } : {}),
      ...(step.kind === 'match' || step.kind === 'mirror' ? { weight: 0, exposure: describeExposure(step) } : {}),
      evaluations: [],
      failedEvaluations: 0,
      checks: [],
      notes: current ? ['waiting for promote or abort'] : passed && step.kind === 'pause' ? ['promoted past the pause'] : [],
      status: report.dryRun ? 'planned' : current ? 'current' : passed ? 'done' : live ? 'pending' : 'not reached'
    }
  }
  let next = 0
  for (const s of stretches) {
    let index = -1
    for (let i = next; i < schedule.length; i++) {
      const step = schedule[i]!
      const same =
        step.kind === 'weight'
          ? s.exposure === undefined && step.weight === s.weight
          : step.kind !== 'pause' && s.exposure === describeExposure(step)
      if (same) {
        index = i
        break
      }
    }
    if (index >= 0) {
      for (let i = next; i < index; i++) rows.push(unmatched(i))
      next = index + 1
    }
    rows.push({
      ...(index >= 0 ? { number: index + 1 } : {}),
      kind: s.exposure === undefined ? 'weight' : s.exposure.startsWith('mirror:') ? 'mirror' : 'match',
      weight: s.weight,
      ...(s.exposure !== undefined ? { exposure: s.exposure } : {}),
      from: s.from,
      ...(s.to ? { to: s.to } : {}),
      evaluations: s.evaluations,
      failedEvaluations: s.evaluations.filter((e) => e.verdict === 'fail').length,
      checks: summarise(s.evaluations),
      notes: s.notes,
      // Paused past this step (the pause is the current step): done, though the weight stays.
      status: s.to || (index >= 0 && index < stepIndex && phase === 'paused') ? 'done' : live || phase === 'promoting' ? 'current' : 'done'
    })
  }
  for (let i = next; i < schedule.length; i++) rows.push(unmatched(i))
  return rows
}

/** The canary requests behind a check's value: its own count, else the evaluation's min-requests check. */
export function canaryRequests(summary: Pick<CheckSummary, 'worst' | 'at'>): number | undefined {
  if (summary.worst.requests !== undefined) return summary.worst.requests
  if (summary.worst.name === 'min-requests') return undefined
  return summary.at.checks.find((c) => c.name === 'min-requests')?.value
}

// ---------- times ----------

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`
  const h = Math.floor(m / 60)
  return m % 60 ? `${h}h ${m % 60}m` : `${h}h`
}

export function between(from: string | undefined, to: string | undefined): number {
  if (!from || !to) return NaN
  return Date.parse(to) - Date.parse(from)
}

/** `HH:MM` UTC of an ISO time (`HH:MM:SS` with seconds), or the raw value when it does not parse. */
export function clock(at: string | undefined, seconds = false): string {
  const t = Date.parse(at ?? '')
  return Number.isNaN(t) ? (at ?? '-') : new Date(t).toISOString().slice(11, seconds ? 19 : 16)
}

/** When the next weight step is due (bake time from the current step's start), while progressing. */
export function nextStep(report: RunReport): { at?: string; what: string } | undefined {
  const state = report.state
  if (!state || state.phase !== 'progressing') return undefined
  const next = state.schedule[state.stepIndex + 1]
  if (!next) return { what: 'promotion after this step' }
  const what =
    next.kind === 'pause' ? 'a pause for promote' : next.kind === 'weight' ? `${formatNumber(next.weight)} %` : describeExposure(next)
  const interval = report.rollout?.intervalSeconds
  const start = Date.parse(state.stepStartedAt ?? '')
  if (!interval || Number.isNaN(start)) return { what }
  return { what, at: new Date(start + interval * 1000).toISOString() }
}

// ---------- links and the next command ----------

export interface Links {
  run?: string
  commit?: { sha: string; url?: string }
  /** The workflow file and ref to dispatch promote/abort with, when known. */
  workflow?: { file: string; ref?: string; repository?: string; url?: string }
}

function validRepo(repo: string | undefined): string | undefined {
  return repo && /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo) ? repo : undefined
}

function validServer(url: string | undefined): string | undefined {
  return url && /^https?:\/\/[A-Za-z0-9.-]+(:\d+)?$/.test(url.replace(/\/+$/, '')) ? url.replace(/\/+$/, '') : undefined
}

/** The run, the commit being released and the dispatchable workflow, from what the report knows. */
export function linksOf(report: RunReport): Links {
  const l = report.links ?? {}
  let server = validServer(l.serverUrl)
  let repository = validRepo(l.repository)
  // A run URL (https://github.com/owner/repo/actions/runs/1) says the server and the repository too.
  const fromRun = /^(https?:\/\/[A-Za-z0-9.-]+(?::\d+)?)\/([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)\/actions\/runs\/\d+$/.exec(report.runUrl ?? '')
  if (fromRun) {
    server ??= fromRun[1]
    repository ??= fromRun[2]
  }
  const out: Links = {}
  if (fromRun) out.run = report.runUrl
  const sha = report.state?.commit ?? l.sha
  if (sha && /^[0-9a-f]{7,40}$/i.test(sha))
    out.commit = { sha, ...(server && repository ? { url: `${server}/${repository}/commit/${sha}` } : {}) }
  if (l.workflow && /^[A-Za-z0-9_.-]+\.ya?ml$/.test(l.workflow)) {
    const ref = l.ref && /^[A-Za-z0-9_./-]+$/.test(l.ref) && l.ref.length <= 100 ? l.ref : undefined
    out.workflow = {
      file: l.workflow,
      ...(ref ? { ref } : {}),
      ...(repository ? { repository } : {}),
      ...(server && repository ? { url: `${server}/${repository}/actions/workflows/${l.workflow}` } : {})
    }
  }
  return out
}

/** `gh workflow run release.yml -R acme/shop --ref main -f command=promote`. */
export function dispatchCommand(links: Links, command: 'promote' | 'abort'): string | undefined {
  const w = links.workflow
  if (!w) return undefined
  return [
    'gh workflow run',
    w.file,
    ...(w.repository ? ['-R', w.repository] : []),
    ...(w.ref ? ['--ref', w.ref] : []),
    `-f command=${command}`
  ].join(' ')
}

/** What to do next, as a sentence and the commands to copy (already safe: built from validated parts). */
export interface NextAction {
  text: string
  commands: string[]
}

export function nextAction(report: RunReport): NextAction | undefined {
  const links = linksOf(report)
  const promote = dispatchCommand(links, 'promote')
  const abort = dispatchCommand(links, 'abort')
  const orRun = (command: string): string =>
    `run this action with \`command: ${command}\` (a workflow_dispatch like the README's promote/abort example)`
  const rerun = links.run
    ? `gh run rerun ${links.run.split('/').pop()}${links.workflow?.repository ? ` -R ${links.workflow.repository}` : ''}`
    : undefined
  switch (situationOf(report)) {
    case 'paused':
      return promote
        ? { text: 'Promote to continue the rollout, or abort to send all traffic back to stable:', commands: [promote, abort!] }
        : { text: `To continue, ${orRun('promote')}; to go back to stable, the same with \`command: abort\`.`, commands: [] }
    case 'halted':
      return abort
        ? {
            text: 'The stable version is unhealthy too, so traffic was left where it is. Restore stable, then abort (or promote if the canary is healthy):',
            commands: [abort, promote!]
          }
        : {
            text: `The stable version is unhealthy too, so traffic was left where it is. Restore stable, then ${orRun('abort')}.`,
            commands: []
          }
    case 'incomplete':
      return abort
        ? { text: 'Run abort again (it resumes the rollback where it stopped), or finish by hand with the steps below:', commands: [abort] }
        : {
            text: `${orRun('abort')} again (it resumes the rollback where it stopped), or finish by hand with the steps below.`,
            commands: []
          }
    case 'initializing':
    case 'progressing':
      return abort
        ? {
            text: 'Nothing to do: the rollout moves on by itself while the gates pass. To stop it and send all traffic back to stable:',
            commands: [abort]
          }
        : { text: `Nothing to do: the rollout moves on by itself while the gates pass. To stop it, ${orRun('abort')}.`, commands: [] }
    case 'stopped':
      return {
        text: 'The next run of this action on the same VirtualService finishes the rollback first (the post step tries already).',
        commands: abort ? [abort] : []
      }
    case 'failed':
      return rerun
        ? { text: 'Nothing changed in the cluster. Fix what the error names, then run again:', commands: [rerun] }
        : { text: 'Nothing changed in the cluster. Fix what the error names, then run again.', commands: [] }
    case 'dry-run':
      return { text: 'Nothing changed. Run again without `dry-run: true` to do it.', commands: [] }
    default:
      return undefined
  }
}
