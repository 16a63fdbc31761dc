import { formatDuration } from '../config/duration.js'
import type { DiffLine, Timeline } from '../rollout/release-plan.js'
import { cut, escapeMarkdown } from './escape-markdown.js'
import { COMMENT_MAX_LENGTH } from './render-report.js'

/**
 * The plan preview of a pull request: what merging would do, rendered as the sticky comment the
 * deploy run later updates in place (same marker). Pure; every value from users or the cluster
 * goes through escape-markdown.ts.
 */
export interface ReleasePlanView {
  namespace: string
  virtualService: string
  stableVersion?: string
  canaryVersion?: string
  /** The preflight as it stands now: undefined error = it would pass. */
  preflightError?: { kind: string; message: string }
  /** Set when the deploy would write nothing (the version is already stable): says why. */
  unchanged?: string
  /** The release guards as the deploy would apply them (freeze windows, version order, min-soak). */
  guards?: string[]
  /** Writes the API server accepted as dry runs (only where RBAC allowed them). */
  dryRuns?: string[]
  /** Checks a read-only plan could not make, each with why. */
  skipped?: string[]
  /** The preflight's own warnings, and the reviewer's (no gates, on-no-data skip, ...). */
  warnings: string[]
  reviewerWarnings: string[]
  deploymentName?: string
  stableDeploymentName?: string
  diff: DiffLine[]
  subset?: { destinationRule: string; name: string; labels: Record<string, string> }
  firstStep?: { stableSubset: string; canarySubset: string; weight: number }
  timeline?: Timeline
  /** Each gate with its threshold and the stable version's current value (`noData`: the query returned nothing). */
  gates: Array<{ name: string; threshold?: string; unit?: string; stableValue?: number; stableFails?: boolean; noData?: boolean }>
}

export function renderPlan(plan: ReleasePlanView, opts: { marker?: string; maxLength?: number } = {}): string {
  const e = (v: unknown, max?: number): string => escapeMarkdown(v, max)
  const where = `${e(plan.namespace)}/${e(plan.virtualService)}`
  const lines: string[] = []
  if (opts.marker) lines.push(opts.marker)
  const versions = plan.canaryVersion
    ? `${e(plan.canaryVersion)} over ${plan.stableVersion ? e(plan.stableVersion) : 'the stable version'}`
    : 'a release'
  lines.push(`### istio-canary plan: ${plan.unchanged ? 'merging changes nothing' : `merging rolls out ${versions}`} on ${where}`, '')
  if (plan.preflightError) {
    lines.push(`**Preflight would refuse it** (${e(plan.preflightError.kind)}): ${e(plan.preflightError.message, 2000)}`, '')
  } else {
    lines.push('**Preflight passes** as the cluster stands now.', '')
  }
  if (plan.unchanged) lines.push(e(plan.unchanged, 600), '')
  const warnings = [...plan.reviewerWarnings, ...plan.warnings]
  if (warnings.length > 0) {
    lines.push('#### For the reviewer', '', ...warnings.map((w) => `- ⚠️ ${e(w, 600)}`), '')
  }

  if (plan.unchanged) return finishPlan(lines, plan, opts.maxLength)

  lines.push('#### What will change', '')
  if (!plan.deploymentName && !plan.subset && !plan.firstStep) lines.push('Not known: the preflight stopped before the objects were read.')
  if (plan.deploymentName) {
    const against = plan.stableDeploymentName
      ? ` against the stable ${e(plan.stableDeploymentName)}`
      : ' (no stable Deployment found to compare with)'
    lines.push(`Deployment **${e(plan.deploymentName)}**${against}:`, '')
    if (plan.diff.length === 0) {
      lines.push('- image, env, resources, probes and replicas are the same', '')
    } else {
      lines.push('| field | stable | new |', '| --- | --- | --- |')
      for (const d of plan.diff)
        lines.push(
          `| ${e(d.field)} | ${d.stable === undefined ? '—' : `${e(d.stable, 400)}`} | ${d.canary === undefined ? '—' : e(d.canary, 400)} |`
        )
      lines.push('')
    }
  }
  if (plan.subset) {
    const labels = Object.entries(plan.subset.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')
    lines.push(`- DestinationRule ${e(plan.subset.destinationRule)}: subset **${e(plan.subset.name)}** added (${e(labels)})`)
  }
  if (plan.firstStep) {
    const f = plan.firstStep
    lines.push(
      `- VirtualService ${e(plan.virtualService)}: route weights ${e(f.stableSubset)} ${100 - f.weight} % / ${e(f.canarySubset)} ${f.weight} % at the first step`
    )
  }
  lines.push('')

  if (plan.timeline) {
    const t = plan.timeline
    lines.push('#### Schedule', '', '| at the earliest | step | bake |', '| --- | --- | --- |')
    for (const entry of t.entries) {
      const at = `+${formatDuration(entry.atSeconds)}`
      if (entry.kind === 'pause') lines.push(`| ${at} | pause | waits for a promote run |`)
      else {
        const hold = entry.soakHoldSeconds ? `, then held ${formatDuration(entry.soakHoldSeconds)} more for min-soak` : ''
        lines.push(`| ${at} | ${entry.weight} % | ${formatDuration(entry.bakeSeconds)}${hold} |`)
      }
    }
    const paused = t.pauses > 0 ? `, plus the time spent paused (${t.pauses} pause${t.pauses === 1 ? '' : 's'})` : ''
    lines.push('', `Minimum total: **${formatDuration(t.minimumSeconds)}** after the new Deployment is available${paused}.`, '')
  }

  if (plan.guards?.length) lines.push('#### Release guards', '', ...plan.guards.map((g) => `- ${e(g, 600)}`), '')

  lines.push('#### Gates', '')
  if (plan.gates.length === 0) {
    lines.push('Only the pods-ready check (always on).')
  } else {
    lines.push('| gate | threshold | stable now |', '| --- | --- | --- |')
    for (const g of plan.gates) {
      const unit = g.unit ? (g.unit === '%' ? '%' : ` ${g.unit}`) : ''
      // Without a query (a webhook, or no stable Deployment to ask about) there is nothing to show.
      const value = g.stableValue !== undefined ? `${+g.stableValue.toFixed(3)}${unit}` : g.noData ? 'no data' : '—'
      const flag = g.stableFails ? ' ❌ the stable version already fails this' : ''
      lines.push(`| ${e(g.name)} | ${e(g.threshold ?? '')} | ${e(value)}${flag} |`)
    }
  }
  return finishPlan(lines, plan, opts.maxLength)
}

/** The read-only checks (dry runs accepted, checks skipped and why), then the length limit. */
function finishPlan(lines: string[], plan: ReleasePlanView, maxLength = COMMENT_MAX_LENGTH): string {
  if (plan.dryRuns?.length || plan.skipped?.length) {
    lines.push('', '#### Read-only checks', '')
    for (const d of plan.dryRuns ?? []) lines.push(`- ✅ ${escapeMarkdown(d, 600)}`)
    for (const s of plan.skipped ?? []) lines.push(`- ⏭️ not checked: ${escapeMarkdown(s, 1000)}`)
  }
  return cut(lines.join('\n').trimEnd() + '\n', maxLength)
}
