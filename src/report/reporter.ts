import * as core from '@actions/core'
import { errorText } from '../format.js'
import { parseGithubConfig, ACTIONS_BOT_LOGIN, type GithubConfig } from './github-config.js'
import { contextFromEnv, createGithubClient, runLinksOf, type GithubClient, type GithubRunContext } from './github-client.js'
import type { DeploymentTarget } from './github-deployments.js'
import type { CommentOutcome } from './pr-comment.js'
import type { RunReport } from './run-report.js'

let writers: Promise<typeof import('./report-writers.js')> | undefined
/**
 * The renderers and writers of the reports, imported by the first write and kept: no report is
 * written before the run's first request, so their code is not loaded before it.
 */
export function loadReportWriters(): Promise<typeof import('./report-writers.js')> {
  return (writers ??= import('./report-writers.js'))
}

/** Where a run's report goes while it runs and when it ends. Every method is best effort. */
export interface Reporter {
  start(report: RunReport): Promise<void>
  progress(report: RunReport): Promise<void>
  finish(report: RunReport): Promise<void>
}

export interface GithubReporterOptions {
  /** Undefined when there is no token: only the job summary is written. */
  octokit?: GithubClient
  /**
   * Makes the client on first use instead (loading Octokit takes longer than the first Kubernetes
   * request: it is not loaded before it). Undefined from it: the GitHub side is off.
   */
  connect?: () => Promise<GithubClient | undefined>
  context: GithubRunContext
  config: Pick<GithubConfig, 'prComment' | 'commentAuthors' | 'deploymentEnvironment' | 'productionEnvironment'>
  /** The commit whose PR gets the comment and whose ref is deployed; default context.sha. */
  sha?: string
  /** Minimum time between two progress comments (the final one always goes out). */
  minIntervalMs?: number
  /** Clock in ms; tests pass a fake one. */
  now?: () => number
  /** Timer for the deferred progress comment; tests pass a fake one. Default setTimeout (unref'd). */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void }
  /** Write the job summary on finish (default true). */
  summary?: boolean
  /** Set the step outputs and the notice annotation on finish (default true). */
  outputs?: boolean
}

/** Progress comments at most every 10 s: GitHub's secondary rate limits punish bursts of edits. */
export const PROGRESS_INTERVAL_MS = 10_000

function realTimer(fn: () => void, ms: number): { cancel(): void } {
  const t = setTimeout(fn, ms)
  t.unref?.()
  return { cancel: () => clearTimeout(t) }
}

/**
 * The GitHub side of the reports: the sticky PR comment (updated at start, at each step, throttled
 * on the trailing edge: an update inside the interval is deferred, not dropped, so the latest state
 * goes out at most `minIntervalMs` after the previous comment, and at the end), the job summary (at the end), and optionally one GitHub Deployment per run
 * (in_progress at start, the final state at the end). Calls are serialised so a late progress
 * update can never overwrite the final comment. Nothing here throws.
 */
export class GithubReporter implements Reporter {
  private readonly now: () => number
  private readonly minInterval: number
  private queue: Promise<unknown> = Promise.resolve()
  private lastComment = Number.NEGATIVE_INFINITY
  /** The newest progress report not yet written, and the timer that will write it. */
  private pending: RunReport | undefined
  private timer: { cancel(): void } | undefined
  private deploymentId: number | undefined
  private client: Promise<GithubClient | undefined> | undefined
  private deploymentTried = false
  private finished = false
  /** The PR once found; null when there is none (no more lookups). */
  private prNumber: number | null | undefined
  /** Set after a 401/403/404: the token cannot comment, repeating it only repeats the warning. */
  private commentsDisabled = false
  /** Outcomes of the comment writes, in order (for logs and tests). */
  readonly comments: CommentOutcome[] = []

  constructor(private readonly opts: GithubReporterOptions) {
    this.now = opts.now ?? Date.now
    this.minInterval = opts.minIntervalMs ?? PROGRESS_INTERVAL_MS
  }

  /** The id of this run's GitHub deployment, once created. */
  get deployment(): number | undefined {
    return this.deploymentId
  }

  start(started: RunReport): Promise<void> {
    const report = this.withLinks(started)
    return this.enqueue(async () => {
      await this.ensureDeployment(report)
      const target = await this.target()
      if (target && this.deploymentId !== undefined) {
        const { setDeploymentStatus, deploymentDescription } = await loadReportWriters()
        await setDeploymentStatus(target, this.deploymentId, 'in_progress', deploymentDescription(report))
      }
      await this.comment(report)
    })
  }

  /**
   * A progress update: written now when the last comment is at least the interval old, else kept
   * (only the newest) and written when the interval has passed. Resolves when the update is written
   * or deferred.
   */
  progress(update: RunReport): Promise<void> {
    const report = this.withLinks(update)
    return this.enqueue(async () => {
      if (this.finished) return
      const wait = this.lastComment + this.minInterval - this.now()
      if (wait <= 0) {
        this.dropPending()
        await this.comment(report)
        return
      }
      this.pending = report
      this.timer ??= (this.opts.setTimer ?? realTimer)(() => {
        this.timer = undefined
        void this.flush()
      }, wait)
    })
  }

  /** Write the deferred progress update now (the timer calls it; tests may too). */
  flush(): Promise<void> {
    return this.enqueue(async () => {
      const report = this.pending
      this.dropPending()
      if (report && !this.finished) await this.comment(report)
    })
  }

  private dropPending(): void {
    this.pending = undefined
    this.timer?.cancel()
    this.timer = undefined
  }

  finish(finished: RunReport): Promise<void> {
    const report = this.withLinks(finished)
    return this.enqueue(async () => {
      this.finished = true
      // The final report supersedes any deferred progress update.
      this.dropPending()
      const {
        writeOutputs,
        annotationOf,
        writeAnnotation,
        renderPlainLog,
        writeJobSummary,
        setDeploymentStatus,
        deploymentStateOf,
        deploymentDescription
      } = await loadReportWriters()
      // Outputs first: they must be set even if GitHub is slow or down.
      if (this.opts.outputs !== false) {
        writeOutputs(report)
        // Failures get their error annotation from core.setFailed in main; a second one is noise.
        if (annotationOf(report).level === 'notice') writeAnnotation(report)
        core.info(renderPlainLog(report))
      }
      if (this.opts.summary !== false) await writeJobSummary(report)
      await this.comment(report)
      await this.ensureDeployment(report)
      const target = await this.target()
      if (target && this.deploymentId !== undefined) {
        await setDeploymentStatus(target, this.deploymentId, deploymentStateOf(report), deploymentDescription(report))
      }
    })
  }

  /** The run's links (run, commit, workflow to dispatch) for the head and the next command. */
  private withLinks(report: RunReport): RunReport {
    if (!this.opts.context.repo.owner) return report
    return { ...report, links: { ...runLinksOf(this.opts.context), ...report.links } }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((error: unknown) => {
      // Every step below is best effort already; this is the net for a bug in them.
      core.warning(`Reporting failed: ${errorText(error)}`)
    })
    this.queue = run
    return run
  }

  /** The GitHub client, made by `connect` on the first call that needs it. */
  private octokit(): Promise<GithubClient | undefined> {
    if (this.opts.octokit) return Promise.resolve(this.opts.octokit)
    return (this.client ??= this.opts.connect?.() ?? Promise.resolve(undefined))
  }

  private async target(): Promise<DeploymentTarget | undefined> {
    const { context, config } = this.opts
    if (!config.deploymentEnvironment) return undefined
    const octokit = await this.octokit()
    if (!octokit) return undefined
    return { octokit, context, environment: config.deploymentEnvironment, productionEnvironment: config.productionEnvironment }
  }

  /**
   * The commit being released: given explicitly, else the one the rollout recorded (a dispatch
   * promote runs on the default branch's HEAD, not on the release), else this run's.
   */
  private releaseSha(report: RunReport): string {
    return this.opts.sha ?? report.state?.commit ?? this.opts.context.sha
  }

  private async ensureDeployment(report: RunReport): Promise<void> {
    // A status or plan run looks, it does not deploy.
    if (this.deploymentTried || report.command === 'status' || report.command === 'plan') return
    const target = await this.target()
    if (!target) return
    this.deploymentTried = true
    const { createDeployment } = await loadReportWriters()
    this.deploymentId = await createDeployment(target, report, this.releaseSha(report))
  }

  private async comment(report: RunReport): Promise<void> {
    const { context, config } = this.opts
    if (!config.prComment || this.commentsDisabled || this.prNumber === null) return
    // Without a VirtualService name (a config error) there is no sticky comment to key on.
    if (!report.namespace || !report.virtualService) return
    const octokit = await this.octokit()
    if (!octokit) return
    const { upsertPullRequestComment, reportMarker } = await loadReportWriters()
    this.lastComment = this.now()
    const outcome = await upsertPullRequestComment({
      octokit,
      context,
      report,
      marker: reportMarker(report.namespace, report.virtualService),
      commentAuthors: config.commentAuthors,
      ...(this.releaseSha(report) ? { sha: this.releaseSha(report) } : {}),
      ...(this.prNumber ? { prNumber: this.prNumber } : {}),
      // A plan's preview carries the same marker: the deploy's report later replaces it in place.
      ...(report.preview ? { body: report.preview.markdown } : {})
    })
    this.comments.push(outcome)
    if (outcome.action === 'skipped') this.prNumber = null
    else if (outcome.prNumber !== undefined) this.prNumber = outcome.prNumber
    if (outcome.action === 'failed' && [401, 403, 404].includes(outcome.status ?? 0)) this.commentsDisabled = true
  }
}

export interface CreateReporterOptions {
  /** Raw inputs as core.getInput returns them. */
  inputs: Record<string, string | undefined>
  env: Record<string, string | undefined>
  /** Unused for now: the reports log through @actions/core like every step command. */
  log?: unknown
  /** Parsed already (main); when absent, parsed here, and a bad value only disables the PR side. */
  config?: GithubConfig
  /** Tests pass these; main lets them come from the environment. */
  context?: GithubRunContext
  octokit?: GithubClient
  now?: () => number
}

/**
 * The reporter of a run, from the inputs and the environment: no token or no repository in the
 * environment means summary and outputs only. Octokit is loaded by the first comment or deployment
 * write (the run's first write to the cluster, or its end), not here. Never throws.
 */
export async function createReporter(opts: CreateReporterOptions): Promise<Reporter> {
  let config = opts.config
  if (!config) {
    try {
      config = parseGithubConfig(opts.inputs, opts.env)
    } catch (error) {
      core.warning(`PR comment and deployments are off: ${errorText(error)}`)
    }
  }
  const effective: GithubConfig = config ?? {
    token: '',
    prComment: false,
    commentAuthors: [ACTIONS_BOT_LOGIN],
    productionEnvironment: false,
    apiUrl: 'https://api.github.com'
  }
  const context = opts.context ?? contextFromEnv(opts.env)
  const octokit = opts.octokit
  const connect =
    !octokit && context && effective.token && (effective.prComment || effective.deploymentEnvironment)
      ? () =>
          createGithubClient(effective.token, effective.apiUrl).catch((error: unknown) => {
            core.warning(`PR comment and deployments are off: ${errorText(error)}`)
            return undefined
          })
      : undefined
  if (!context) {
    return new GithubReporter({
      context: { repo: { owner: '', repo: '' }, eventName: '', sha: '', payload: {} },
      config: { ...effective, prComment: false },
      ...(opts.now ? { now: opts.now } : {})
    })
  }
  return new GithubReporter({
    ...(octokit ? { octokit } : {}),
    ...(connect ? { connect } : {}),
    context,
    config: effective,
    ...(opts.now ? { now: opts.now } : {})
  })
}
