/**
 * `command: plan`: what merging a release would do, shown on the pull request before anything
 * happens. Read-only against the live cluster: today's preflight in its read-only form (get and
 * list; write permissions asked of SelfSubjectAccessReview and reported, dry-run writes only where
 * they are granted), no Lease, no write. Then the Deployment against the stable one, the subset and
 * the first weights, the schedule, the release guards, and each gate with the stable version's
 * values over the last hour from Prometheus.
 */
import type { Config } from '../config/config.js'
import { formatDuration } from '../config/duration.js'
import { INPUT } from '../config/inputs.js'
import { freezeRefusal } from '../config/freeze-windows.js'
import { quote } from '../errors.js'
import type { GateContext } from '../health/health-gate.js'
import { describeThreshold, PrometheusGate, valuesFor } from '../health/prometheus-gate.js'
import { renderTemplate } from '../health/promql-template.js'
import { WebhookGate } from '../health/webhook-gate.js'
import type { KubeObject } from '../kube/kube-object.js'
import { isInFlight, newRollout } from '../rollout/planner.js'
import { deploymentDiff, reviewerWarnings, scheduleTimeline } from '../rollout/release-plan.js'
import { decideVersionOrder } from '../rollout/version-order.js'
import { renderPlan, type ReleasePlanView } from '../report/render-plan.js'
import { reportMarker } from '../report/render-report.js'
import type { RunReport } from '../report/run-report.js'
import type { CommandDeps } from './command-deps.js'
import { preflight, type Preflight } from './preflight.js'
import { rolloutRouter } from './rollout-router.js'
import { iso } from './runtime.js'

/** The stable version's gate values are read over this window: long enough to hold real traffic. */
export const PLAN_WINDOW_SECONDS = 3600

/** One check as the preview shows it: its threshold, and the stable version's value now. */
interface GatePreview {
  name: string
  threshold?: string
  unit?: string
  stableValue?: number
  /** The stable version already breaks the check's fixed bound (min or max). */
  stableFails?: boolean
  /** The query ran and returned no data for the stable version. */
  noData?: boolean
}

/**
 * Builds the plan preview of a deploy with `config`'s inputs. Never writes: not the Lease, not the
 * objects; dry-run writes only where RBAC allows them. A preflight refusal is the report's error
 * (the step fails, as the deploy would), and the preview says it first.
 */
export async function runPlan(config: Config, deps: CommandDeps): Promise<RunReport> {
  const startedAt = iso(deps.clock.now())
  const asDeploy: Config = { ...config, command: 'deploy', dryRun: false }
  let pre: Preflight | undefined
  let failure: unknown
  try {
    pre = await preflight(asDeploy, deps, { readOnly: true })
  } catch (err) {
    failure = err
  }
  const namespace = pre?.namespace ?? config.namespace ?? deps.defaultNamespace ?? 'default'
  const view: ReleasePlanView = {
    namespace,
    virtualService: config.virtualService,
    stableVersion: pre?.stable.version || undefined,
    canaryVersion: pre?.canary.version || config.version,
    // The reviewer's warning says it already: not twice.
    warnings: [...config.warnings.filter((w) => !w.startsWith(`Input '${INPUT.steps}' is "100"`)), ...(pre?.warnings ?? [])],
    reviewerWarnings: [],
    dryRuns: [],
    skipped: skippedChecks(pre),
    diff: [],
    gates: []
  }
  const flight = flightNote(pre)
  if (flight) view.warnings.push(flight)
  if (pre?.alreadyStable) {
    view.unchanged = `${pre.alreadyStable.note} A deploy of this manifest would write nothing.`
  } else if (pre && failure === undefined) {
    try {
      await previewChanges(config, deps, pre, view)
    } catch (err) {
      // A dry-run write the API server refused: the deploy's own write would fail the same way.
      failure = err
    }
  }
  view.timeline = scheduleTimeline(config.steps, {
    intervalSeconds: config.intervalSeconds,
    settleSeconds: config.settleSeconds,
    minSoakSeconds: config.minSoakSeconds
  })
  const previews = await gatePreviews(config, deps, pre, namespace)
  view.gates = previews
  view.reviewerWarnings = reviewerWarnings({
    steps: config.steps,
    gates: previews.map((g) => g.name),
    onNoData: deps.policy.onNoData,
    minRequests: deps.gates.find((g) => g instanceof PrometheusGate)?.config.minRequests,
    stableNoData: previews.filter((g) => g.noData).map((g) => g.name)
  })
  view.guards = guardLines(config, deps, pre)
  if (failure !== undefined) {
    const e = failure instanceof Error ? failure : new Error(String(failure))
    view.preflightError = { kind: e.name, message: e.message }
  }

  return planReport(config, deps, view, { startedAt, pre })
}

/** The rollout in flight the deploy would meet: resumed (same version) or rolled back first (input 'supersede'). */
function flightNote(pre: Preflight | undefined): string | undefined {
  const flight = pre?.state && isInFlight(pre.state) ? pre.state : undefined
  if (!pre || !flight) return undefined
  const where = `(${flight.phase} at ${flight.canaryWeight} %)`
  return flight.canary.version === pre.canary.version
    ? `A rollout of ${flight.canary.version} is already in progress ${where}: the deploy resumes it.`
    : `The rollout of ${flight.canary.version} in progress ${where} would be rolled back first (input 'supersede').`
}

/** The run's report: the rendered preview (with the sticky comment's marker), the versions, the error. */
function planReport(config: Config, deps: CommandDeps, view: ReleasePlanView, run: { startedAt: string; pre?: Preflight }): RunReport {
  const markdown = renderPlan(view, { marker: reportMarker(view.namespace, config.virtualService) })
  for (const w of [...view.reviewerWarnings, ...view.warnings]) deps.log.warning(w)
  for (const s of view.skipped ?? []) deps.log.info(`Not checked (read-only plan): ${s}`)
  const stable = run.pre?.alreadyStable
  return {
    command: 'plan',
    namespace: view.namespace,
    virtualService: config.virtualService,
    result: 'unchanged',
    // No state: the reports would read the last rollout's as this run's.
    canaryWeight: 0,
    stableVersion: view.stableVersion,
    canaryVersion: view.canaryVersion,
    warnings: view.warnings,
    dryRun: false,
    runUrl: deps.runUrl,
    startedAt: run.startedAt,
    finishedAt: iso(deps.clock.now()),
    rollout: { schedule: config.steps, intervalSeconds: config.intervalSeconds, failureThreshold: deps.policy.failureThreshold },
    preview: { markdown },
    ...(stable ? { alreadyStable: { version: stable.version, deployment: stable.deployment } } : {}),
    ...(view.preflightError ? { error: view.preflightError } : {})
  }
}

/**
 * The objects the deploy writes: the new Deployment against the stable one, the subset, the first
 * weights. Where RBAC allows the writes, the API server checks each as a dry run (the Deployment
 * then shows the server's defaults, as the stable one does).
 */
async function previewChanges(config: Config, deps: CommandDeps, pre: Preflight, view: ReleasePlanView): Promise<void> {
  const manifest = pre.canaryManifest
  if (!manifest) return
  const firstWeight = config.steps.find((s) => s.kind === 'weight')
  const labels = { [config.versionLabel]: pre.canary.version }
  let canary: KubeObject = manifest
  if (pre.readOnly?.writesAllowed) {
    canary = await deps.cluster.applyDeployment(manifest, { dryRun: true })
    view.dryRuns!.push(`apply Deployment ${pre.canary.deployment}: accepted by the API server (server-side dry run)`)
    const state = newRollout({
      at: iso(deps.clock.now()),
      route: pre.route,
      host: pre.host,
      destinationRule: pre.destinationRule,
      stable: pre.stable,
      canary: pre.canary,
      schedule: config.steps,
      epoch: 0,
      members: pre.members
    })
    if (pre.state && isInFlight(pre.state)) {
      view.skipped!.push(
        `the subset and the first weights as dry runs: the rollout in progress changes them first (it is resumed, or rolled back)`
      )
    } else {
      const checked = await (await rolloutRouter(config, deps, pre, 0)).dryRunStart(state, labels, firstWeight?.weight)
      if (checked.backend)
        view.dryRuns!.push(`add subset ${pre.canary.subset} to DestinationRule ${pre.destinationRule}: accepted (dry run)`)
      if (checked.route) view.dryRuns!.push(`first weights on VirtualService ${config.virtualService}: accepted (dry run)`)
    }
  } else {
    view.skipped!.push(
      `the new Deployment is compared as the manifest writes it, without the defaults the API server would fill in (that needs a dry-run apply)`
    )
  }
  const stable = pre.stable.deployment ? await deps.cluster.getDeployment(pre.namespace, pre.stable.deployment) : undefined
  view.deploymentName = pre.canary.deployment
  view.stableDeploymentName = stable ? pre.stable.deployment : undefined
  view.diff = deploymentDiff(stable, canary)
  view.subset = { destinationRule: pre.destinationRule, name: pre.canary.subset, labels }
  if (firstWeight) view.firstStep = { stableSubset: pre.stable.subset, canarySubset: pre.canary.subset, weight: firstWeight.weight }
}

/** Each configured gate's checks, with the stable version's values over the last hour where a gate can read them. */
async function gatePreviews(config: Config, deps: CommandDeps, pre: Preflight | undefined, namespace: string): Promise<GatePreview[]> {
  const ctx: GateContext = {
    namespace,
    host: pre?.host ?? '',
    virtualService: config.virtualService,
    // Without a preflight there is no stable Deployment: thresholds only, nothing queried.
    stable: pre && !pre.alreadyStable ? pre.stable : { version: '', subset: '' },
    canary: pre?.canary ?? { version: config.version ?? '', subset: '', deployment: '' },
    canaryWeight: 0,
    stepIndex: -1,
    schedule: config.steps,
    windowSeconds: PLAN_WINDOW_SECONDS,
    signal: deps.signal
  }
  const rows: GatePreview[] = []
  for (const gate of deps.gates) {
    if (gate instanceof PrometheusGate) rows.push(...(await stableReadings(gate, ctx)))
    // A webhook is not called: a plan has no side effects. Event-only webhooks judge nothing.
    const judged = gate.moments.filter((m) => m !== 'rollback' && m !== 'success')
    if (gate instanceof WebhookGate && judged.length) rows.push({ name: gate.name, threshold: `HTTP 2xx at ${judged.join(', ')}` })
  }
  return rows
}

/**
 * Each metric check's threshold and the stable version's value over the context's window. A fixed
 * bound the stable already breaks is flagged; a comparison with the stable version cannot be
 * judged before there is a canary, so it shows the value only.
 */
async function stableReadings(gate: PrometheusGate, ctx: GateContext): Promise<GatePreview[]> {
  return Promise.all(
    gate.config.checks.map(async (check): Promise<GatePreview> => {
      const row: GatePreview = { name: check.name, threshold: describeThreshold(check), ...(check.unit ? { unit: check.unit } : {}) }
      if (!ctx.stable.deployment) return row
      let expr: string
      try {
        expr = renderTemplate(check.template, valuesFor(ctx, 'stable'))
      } catch {
        return row
      }
      const outcome = await gate.client.query(expr, { signal: ctx.signal })
      if (outcome.kind === 'no-data') return { ...row, noData: true }
      if (outcome.kind !== 'value') return row
      const v = outcome.value
      const fails = (check.min !== undefined && v < check.min) || (check.max !== undefined && v > check.max)
      return { ...row, stableValue: v, ...(fails ? { stableFails: true } : {}) }
    })
  )
}

/** What the read-only preflight could not check, and why. */
function skippedChecks(pre: Preflight | undefined): string[] {
  const notes = pre?.readOnly
  if (!notes) return []
  const out: string[] = []
  if (notes.uncompared) {
    const { version, deployment } = notes.uncompared
    out.push(
      `whether the manifest of ${quote(version)}, already the stable version, matches its live Deployment ${quote(deployment)} (a deploy would then do nothing, or refuse a changed build under the same version): ` +
        `that comparison is a server-side dry-run apply, and these credentials may not patch deployments`
    )
  }
  if (notes.denied.length > 0) {
    const dryRuns = notes.writesAllowed ? '' : ', so no write was checked as a dry run'
    out.push(
      `the deploy's permissions: these credentials may not ${notes.denied.join(', ')} in namespace ${quote(pre.namespace)} ` +
        `(SelfSubjectAccessReview)${dryRuns}; the deploy checks its own credentials before it writes`
    )
  }
  return out
}

/** What the deploy's release guards would do with this release, as things stand now. */
function guardLines(config: Config, deps: CommandDeps, pre: Preflight | undefined): string[] {
  const lines: string[] = []
  const now = deps.clock.now()
  if (config.freezeWindows.length > 0) {
    const frozen = freezeRefusal(config.freezeWindows, now, 'deploy')
    lines.push(
      frozen
        ? `Freeze: a deploy now would be refused. ${frozen}`
        : `Freeze: no window of input 'freeze-windows' covers now (${config.freezeWindows.length} configured); a deploy now may go ahead.`
    )
  }
  if (pre && !pre.alreadyStable && pre.stable.version) {
    const decision = decideVersionOrder({
      stable: pre.stable.version,
      canary: pre.canary.version,
      order: config.versionOrder,
      allowDowngrade: config.allowDowngrade,
      target: `VirtualService ${quote(`${pre.namespace}/${config.virtualService}`)}`
    })
    // The decision's own words name the input; only the plain "newer" needs saying here.
    if (decision.kind === 'refuse') lines.push(`Version order: a deploy would be refused. ${decision.reason}`)
    else if (decision.kind === 'downgrade') lines.push(`Version order: ${decision.note}`)
    else lines.push(decision.note ?? `version-order: ${config.versionOrder}: ${pre.canary.version} is newer than ${pre.stable.version}.`)
  }
  if (config.minSoakSeconds > 0) {
    lines.push(
      `Minimum soak: no promotion to 100 % before the canary has served traffic for ${formatDuration(config.minSoakSeconds)} with its gates passing ` +
        `(automatic or by promote; the schedule above includes the hold).`
    )
  }
  return lines
}
