import * as core from '@actions/core'
import { ACTIONS_BOT_LOGIN } from './github-config.js'
import { describeFailure, requestTimeout, statusOf, type GithubClient, type GithubRunContext } from './github-client.js'
import { COMMENT_MAX_LENGTH, renderReport, reportMarker } from './render-report.js'
import type { RunReport } from './run-report.js'

/** What happened to the sticky comment. Never an exception: commenting is best effort. */
export type CommentOutcome =
  | { action: 'created' | 'updated' | 'unchanged'; prNumber: number; commentId: number }
  | { action: 'skipped'; reason: string }
  | { action: 'failed'; reason: string; prNumber?: number; status?: number }

export interface UpsertCommentOptions {
  octokit: GithubClient
  context: GithubRunContext
  report: RunReport
  /** Default: `reportMarker(report.namespace, report.virtualService)`. */
  marker?: string
  /** Logins whose marked comments we may update; default `[github-actions[bot]]`. */
  commentAuthors?: readonly string[]
  /** The commit whose PR gets the comment; default context.sha (a promote run may pass the rollout's). */
  sha?: string
  /** Pre-rendered body (must contain the marker); default renderReport with the marker. */
  body?: string
  /** The PR when already known (skips the lookup). */
  prNumber?: number
}

const PR_EVENTS = new Set(['pull_request', 'pull_request_target', 'pull_request_review', 'pull_request_review_comment'])

/**
 * The pull request of this run: the event's PR, else the open PR whose head is the commit, else
 * the merged PR that brought the commit in. Undefined when there is none.
 */
export async function findPullRequest(octokit: GithubClient, context: GithubRunContext, sha = context.sha): Promise<number | undefined> {
  const fromEvent = context.payload.pull_request?.number
  if (PR_EVENTS.has(context.eventName) && typeof fromEvent === 'number') return fromEvent
  if (!sha) return undefined
  const { owner, repo } = context.repo
  const prs = await octokit.paginate(octokit.rest.repos.listPullRequestsAssociatedWithCommit, {
    owner,
    repo,
    commit_sha: sha,
    per_page: 100,
    ...requestTimeout()
  })
  const open = prs.find((pr) => pr.state === 'open' && pr.head.sha === sha)
  if (open) return open.number
  const merged = prs.find((pr) => pr.merged_at !== null && pr.merged_at !== undefined)
  return merged?.number
}

/**
 * Create or update the one report comment of this VirtualService on the run's pull request. It
 * only ever edits a comment that carries the marker AND was written by an allowed login, so a
 * user who pastes our marker into their own comment cannot make us overwrite it. Failures (403
 * on a fork's read-only token, 404, 5xx, network) become a warning; this never throws.
 */
export async function upsertPullRequestComment(opts: UpsertCommentOptions): Promise<CommentOutcome> {
  const { octokit, context, report } = opts
  const marker = opts.marker ?? reportMarker(report.namespace, report.virtualService)
  const authors = new Set((opts.commentAuthors ?? [ACTIONS_BOT_LOGIN]).map((a) => a.toLowerCase()))
  let prNumber: number | undefined = opts.prNumber
  try {
    prNumber ??= await findPullRequest(octokit, context, opts.sha)
  } catch (error) {
    const reason = describeFailure(error, 'Could not find the pull request of this commit')
    core.warning(reason)
    return { action: 'failed', reason, ...withStatus(error) }
  }
  if (prNumber === undefined) {
    const reason = `No pull request found for commit ${(opts.sha ?? context.sha ?? '').slice(0, 12)}; no PR comment written.`
    core.info(reason)
    return { action: 'skipped', reason }
  }
  const body = opts.body ?? renderReport(report, { marker, maxLength: COMMENT_MAX_LENGTH })
  const { owner, repo } = context.repo
  try {
    const comments = await octokit.paginate(octokit.rest.issues.listComments, {
      owner,
      repo,
      issue_number: prNumber,
      per_page: 100,
      ...requestTimeout()
    })
    const mine = comments.find((c) => (c.body ?? '').includes(marker) && authors.has((c.user?.login ?? '').toLowerCase()))
    if (mine) {
      if (mine.body === body) return { action: 'unchanged', prNumber, commentId: mine.id }
      await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body, ...requestTimeout() })
      return { action: 'updated', prNumber, commentId: mine.id }
    }
    const created = await octokit.rest.issues.createComment({ owner, repo, issue_number: prNumber, body, ...requestTimeout() })
    return { action: 'created', prNumber, commentId: created.data.id }
  } catch (error) {
    const reason = describeFailure(error, `Could not write the report comment on pull request #${prNumber}`)
    core.warning(reason)
    return { action: 'failed', reason, prNumber, ...withStatus(error) }
  }
}

function withStatus(error: unknown): { status?: number } {
  const status = statusOf(error)
  return status === undefined ? {} : { status }
}
