import type { getOctokit } from '@actions/github'
import { readFileSync } from 'node:fs'
import type { RunLinks } from './run-report.js'
import { githubFetch } from './github-fetch.js'

/** The Octokit the reports use (REST methods + pagination), as @actions/github builds it. */
export type GithubClient = ReturnType<typeof getOctokit>

/**
 * What the reports need of the workflow run. `@actions/github`'s `context` satisfies it; tests
 * pass a plain object.
 */
export interface GithubRunContext {
  repo: { owner: string; repo: string }
  eventName: string
  sha: string
  payload: { pull_request?: { number: number; head?: { sha?: string } }; [key: string]: unknown }
  serverUrl?: string
  runId?: number
  /** GITHUB_WORKFLOW_REF: `owner/repo/.github/workflows/release.yml@refs/heads/main`. */
  workflowRef?: string
}

/**
 * An Octokit for `apiUrl`. @actions/github (Octokit) is loaded here, on first use: a run without a
 * token never pays for it. Its requests go through githubFetch (Node's https), not undici. It
 * reads GITHUB_API_URL once, when it is first imported; passing baseUrl explicitly makes the URL
 * the one the config saw.
 */
export async function createGithubClient(token: string, apiUrl: string): Promise<GithubClient> {
  const { getOctokit } = await import('@actions/github')
  return getOctokit(token, { baseUrl: apiUrl.replace(/\/+$/, ''), request: { fetch: githubFetch } })
}

/** The URL of this workflow run, when the context knows it. */
export function runUrlOf(context: GithubRunContext): string | undefined {
  if (!context.runId || Number.isNaN(context.runId)) return undefined
  const server = (context.serverUrl ?? 'https://github.com').replace(/\/+$/, '')
  return `${server}/${context.repo.owner}/${context.repo.repo}/actions/runs/${context.runId}`
}

/**
 * What the reports link to and the next command dispatches: the server, the repository, this run's
 * commit, and the workflow file and ref from GITHUB_WORKFLOW_REF (`o/r/.github/workflows/x.yml@refs/heads/main`).
 */
export function runLinksOf(context: GithubRunContext): RunLinks {
  const links: RunLinks = { serverUrl: (context.serverUrl ?? 'https://github.com').replace(/\/+$/, '') }
  if (context.repo.owner && context.repo.repo) links.repository = `${context.repo.owner}/${context.repo.repo}`
  if (context.sha) links.sha = context.sha
  const m = /\/\.github\/workflows\/([^/@]+)@(?:refs\/(?:heads|tags)\/)?(.+)$/.exec(context.workflowRef ?? '')
  if (m) {
    links.workflow = m[1]
    links.ref = m[2]
  }
  return links
}

/** The HTTP status of an Octokit error (undefined for network errors and timeouts). */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status
  return typeof status === 'number' ? status : undefined
}

/** A short reason for a failed GitHub call, for a warning. */
export function describeFailure(error: unknown, what: string): string {
  const status = statusOf(error)
  const message = error instanceof Error ? error.message.split('\n')[0]!.slice(0, 200) : String(error).slice(0, 200)
  if (status === 403)
    return `${what}: HTTP 403 (the token lacks the permission; a pull request from a fork gets a read-only token): ${message}`
  if (status === 404) return `${what}: HTTP 404 (not found, or the token cannot see it): ${message}`
  if (status !== undefined) return `${what}: HTTP ${status}: ${message}`
  return `${what}: ${message}`
}

/** Per-request options: a GitHub call that hangs must not hold up the rollout. */
export function requestTimeout(ms = 15_000): { request: { signal: AbortSignal } } {
  return { request: { signal: AbortSignal.timeout(ms) } }
}

/**
 * The run context from the runner's environment (the same variables @actions/github reads, but
 * from `env`, so tests and main agree on one source). A missing or unreadable event file leaves
 * the payload empty.
 */
export function contextFromEnv(env: Record<string, string | undefined>): GithubRunContext | undefined {
  const [owner, repo] = (env['GITHUB_REPOSITORY'] ?? '').split('/')
  if (!owner || !repo) return undefined
  let payload: GithubRunContext['payload'] = {}
  const eventPath = env['GITHUB_EVENT_PATH']
  if (eventPath) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(eventPath, 'utf8'))
      if (parsed && typeof parsed === 'object') payload = parsed as GithubRunContext['payload']
    } catch {
      // No event file (local runs): the PR is then found from the commit.
    }
  }
  const runId = Number.parseInt(env['GITHUB_RUN_ID'] ?? '', 10)
  return {
    repo: { owner, repo },
    eventName: env['GITHUB_EVENT_NAME'] ?? '',
    sha: env['GITHUB_SHA'] ?? '',
    payload,
    serverUrl: env['GITHUB_SERVER_URL'] || 'https://github.com',
    ...(Number.isNaN(runId) ? {} : { runId }),
    ...(env['GITHUB_WORKFLOW_REF'] ? { workflowRef: env['GITHUB_WORKFLOW_REF'] } : {})
  }
}
