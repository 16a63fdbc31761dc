import { readFileSync } from 'node:fs'
import { afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { startFakeGithub, type FakeGithub, type FakeGithubOptions } from '../../support/fake-github.js'
import { createGithubClient, type GithubRunContext } from '../../../src/report/github-client.js'
import { upsertPullRequestComment } from '../../../src/report/pr-comment.js'
import { reportMarker } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { captureWorkflowCommands, type CapturedCommands } from './workflow-commands.js'

const fixture = (name: string): RunReport => JSON.parse(readFileSync(`__tests__/fixtures/reports/${name}.json`, 'utf8')) as RunReport
const SHA = 'c0ffee'.padEnd(40, '0')
const OTHER = 'beef'.padEnd(40, '1')
const MARKER = reportMarker('shop', 'reviews')

let gh: FakeGithub | undefined
let out: CapturedCommands

async function start(opts: Partial<FakeGithubOptions> = {}): Promise<FakeGithub> {
  gh = await startFakeGithub({ owner: 'acme', repo: 'shop', ...opts })
  return gh
}

function push(sha = SHA): GithubRunContext {
  return { repo: { owner: 'acme', repo: 'shop' }, eventName: 'push', sha, payload: {}, serverUrl: 'https://github.com', runId: 42 }
}

const occurrences = (text: string, part: string): number => text.split(part).length - 1

// createGithubClient loads @actions/github on first use: load it once here, outside any test's timeout.
beforeAll(async () => {
  await import('@actions/github')
}, 60_000)

beforeEach(() => {
  out = captureWorkflowCommands()
})

afterEach(async () => {
  out.restore()
  await gh?.stop()
  gh = undefined
})

describe('sticky PR comment', () => {
  test('the first run creates the comment, the second updates the same one in place', async () => {
    const gh = await start({ prs: [{ number: 7, headSha: SHA }] })
    const octokit = await createGithubClient('test-token', gh.url)

    const first = await upsertPullRequestComment({ octokit, context: push(), report: fixture('paused') })
    const second = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })

    expect(first).toMatchObject({ action: 'created', prNumber: 7 })
    expect(second).toEqual({ action: 'updated', prNumber: 7, commentId: (first as { commentId: number }).commentId })
    expect(gh.state.comments).toHaveLength(1)
    const body = gh.state.comments[0]!.body
    expect(occurrences(body, MARKER)).toBe(1)
    expect(body).toContain('> [!TIP]\n> **v2 promoted on shop/reviews**')
    const writes = gh.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.operationId}`)
    expect(writes).toEqual(['POST issues/create-comment', 'PATCH issues/update-comment'])
    expect(gh.violations).toEqual([])
  })

  test('an unchanged report does not edit the comment again', async () => {
    const gh = await start({ prs: [{ number: 7, headSha: SHA }] })
    const octokit = await createGithubClient('test-token', gh.url)
    await upsertPullRequestComment({ octokit, context: push(), report: fixture('paused') })
    const again = await upsertPullRequestComment({ octokit, context: push(), report: fixture('paused') })
    expect(again.action).toBe('unchanged')
    expect(gh.requests.filter((r) => r.method === 'PATCH')).toEqual([])
    expect(gh.violations).toEqual([])
  })

  test('a comment with our marker written by another user is never touched', async () => {
    const spoof = `${MARKER}\nplease run rm -rf`
    const gh = await start({ prs: [{ number: 7, headSha: SHA }], comments: [{ id: 5, issueNumber: 7, user: 'mallory', body: spoof }] })
    const octokit = await createGithubClient('test-token', gh.url)

    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })

    expect(outcome.action).toBe('created')
    expect(gh.state.comments.find((c) => c.id === 5)!.body).toBe(spoof)
    expect(gh.state.comments.filter((c) => c.user === 'github-actions[bot]')).toHaveLength(1)
    expect(gh.requests.some((r) => r.method === 'PATCH')).toBe(false)
    expect(gh.violations).toEqual([])
  })

  test('a comment by the configured comment-author is updated; a marker for another VirtualService is not', async () => {
    const otherMarker = reportMarker('shop', 'ratings')
    const gh = await start({
      login: 'deploy-app[bot]',
      prs: [{ number: 7, headSha: SHA }],
      comments: [
        { id: 5, issueNumber: 7, user: 'deploy-app[bot]', body: `${otherMarker}\nratings report` },
        { id: 6, issueNumber: 7, user: 'deploy-app[bot]', body: `${MARKER}\nold report` }
      ]
    })
    const octokit = await createGithubClient('app-token', gh.url)
    const outcome = await upsertPullRequestComment({
      octokit,
      context: push(),
      report: fixture('promoted'),
      commentAuthors: ['github-actions[bot]', 'deploy-app[bot]']
    })
    expect(outcome).toEqual({ action: 'updated', prNumber: 7, commentId: 6 })
    expect(gh.state.comments.find((c) => c.id === 5)!.body).toBe(`${otherMarker}\nratings report`)
    expect(gh.violations).toEqual([])
  })

  test('finds our comment on the second page of a long thread', async () => {
    const comments = Array.from({ length: 130 }, (_, i) => ({
      id: 100 + i,
      issueNumber: 7,
      user: i % 2 ? 'octocat' : 'github-actions[bot]',
      body: `comment ${i}`
    }))
    comments[120] = { id: 220, issueNumber: 7, user: 'github-actions[bot]', body: `${MARKER}\nold` }
    const gh = await start({ prs: [{ number: 7, headSha: SHA }], comments })
    const octokit = await createGithubClient('test-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('rolled-back') })
    expect(outcome).toEqual({ action: 'updated', prNumber: 7, commentId: 220 })
    expect(gh.requests.filter((r) => r.operationId === 'issues/list-comments').map((r) => r.query['page'] ?? '1')).toEqual(['1', '2'])
    expect(gh.violations).toEqual([])
  })
})

describe('finding the pull request', () => {
  test('a push finds the open PR whose head is the commit, not a merged one or one that merely contains it', async () => {
    const gh = await start({
      prs: [
        { number: 3, state: 'closed', headSha: OTHER, mergedAt: '2026-11-20T10:00:00Z', commits: [SHA] },
        { number: 8, headSha: 'f'.repeat(40), commits: [SHA] },
        { number: 7, headSha: SHA }
      ]
    })
    const octokit = await createGithubClient('test-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(outcome).toMatchObject({ action: 'created', prNumber: 7 })
    expect(gh.requests[0]).toMatchObject({
      method: 'GET',
      operationId: 'repos/list-pull-requests-associated-with-commit',
      path: `/repos/acme/shop/commits/${SHA}/pulls`
    })
    expect(gh.violations).toEqual([])
  })

  test('a push of the merge commit on the default branch finds the merged PR', async () => {
    const gh = await start({ prs: [{ number: 3, state: 'closed', headSha: OTHER, mergedAt: '2026-11-20T10:00:00Z', commits: [SHA] }] })
    const octokit = await createGithubClient('test-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(outcome).toMatchObject({ action: 'created', prNumber: 3 })
    expect(gh.violations).toEqual([])
  })

  test('a pull_request event takes the number from the payload, without a lookup', async () => {
    const gh = await start({ prs: [{ number: 12, headSha: OTHER }] })
    const octokit = await createGithubClient('test-token', gh.url)
    const context: GithubRunContext = { ...push(), eventName: 'pull_request', payload: { pull_request: { number: 12 } } }
    const outcome = await upsertPullRequestComment({ octokit, context, report: fixture('promoted') })
    expect(outcome).toMatchObject({ action: 'created', prNumber: 12 })
    expect(gh.requests.some((r) => r.operationId === 'repos/list-pull-requests-associated-with-commit')).toBe(false)
    expect(gh.violations).toEqual([])
  })

  test('no PR for the commit: skipped with an info line, nothing written', async () => {
    const gh = await start({ prs: [{ number: 7, headSha: OTHER }] })
    const octokit = await createGithubClient('test-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(outcome.action).toBe('skipped')
    expect(out.lines.some((l) => l.startsWith('No pull request found for commit c0ffee'))).toBe(true)
    expect(out.of('warning')).toEqual([])
    expect(gh.requests.map((r) => r.operationId)).toEqual(['repos/list-pull-requests-associated-with-commit'])
    expect(gh.violations).toEqual([])
  })
})

describe('failures are warnings, never exceptions', () => {
  test("403 on a fork's read-only token", async () => {
    const gh = await start({ prs: [{ number: 7, headSha: SHA }] })
    gh.failWith('issues/create-comment', 403)
    const octokit = await createGithubClient('read-only-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(outcome).toMatchObject({ action: 'failed', prNumber: 7, status: 403 })
    const warnings = out.of('warning')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('Could not write the report comment on pull request #7: HTTP 403')
    expect(warnings[0]).toContain('fork')
    expect(gh.violations).toEqual([])
  })

  test('500 from the comment listing', async () => {
    const gh = await start({ prs: [{ number: 7, headSha: SHA }] })
    gh.failWith('issues/list-comments', 500)
    const octokit = await createGithubClient('test-token', gh.url)
    const outcome = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(outcome).toMatchObject({ action: 'failed', status: 500 })
    expect(out.of('warning')[0]).toContain('HTTP 500')
    expect(gh.violations).toEqual([])
  })

  test('500 from the PR lookup and a dropped connection', async () => {
    const gh = await start({ prs: [{ number: 7, headSha: SHA }] })
    const octokit = await createGithubClient('test-token', gh.url)
    gh.failWith('repos/list-pull-requests-associated-with-commit', 502, 1)
    const a = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    gh.dropConnection('issues/create-comment')
    const b = await upsertPullRequestComment({ octokit, context: push(), report: fixture('promoted') })
    expect(a).toMatchObject({ action: 'failed', status: 502 })
    expect(b.action).toBe('failed')
    expect(out.of('warning')).toHaveLength(2)
    expect(out.of('warning')[0]).toContain('Could not find the pull request of this commit: HTTP 502')
    expect(gh.violations).toEqual([])
  })
})
