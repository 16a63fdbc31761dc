import { afterAll, beforeAll, expect, test } from '@jest/globals'
import { startFakeGithub, type FakeGithub } from '../../support/fake-github.js'

// No static import of @actions/github here: it reads GITHUB_API_URL once, when first imported.
let gh: FakeGithub
const saved = process.env['GITHUB_API_URL']

beforeAll(async () => {
  gh = await startFakeGithub({ owner: 'acme', repo: 'shop', prs: [{ number: 7, headSha: 'a'.repeat(40) }] })
  process.env['GITHUB_API_URL'] = gh.url
})

afterAll(async () => {
  if (saved === undefined) delete process.env['GITHUB_API_URL']
  else process.env['GITHUB_API_URL'] = saved
  await gh.stop()
})

test("@actions/github's getOctokit sends requests to GITHUB_API_URL, with the token", async () => {
  const { getOctokit } = await import('@actions/github')
  const octokit = getOctokit('secret-token')
  const { data } = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({
    owner: 'acme',
    repo: 'shop',
    commit_sha: 'a'.repeat(40)
  })
  expect(data.map((p) => p.number)).toEqual([7])
  expect(gh.requests).toHaveLength(1)
  expect(gh.violations).toEqual([])
})

test('createGithubClient uses the configured URL even if @actions/github was loaded before GITHUB_API_URL was set', async () => {
  const { createGithubClient } = await import('../../../src/report/github-client.js')
  process.env['GITHUB_API_URL'] = 'http://127.0.0.1:9/unused'
  const octokit = await createGithubClient('secret-token', `${gh.url}/`)
  await octokit.rest.issues.listComments({ owner: 'acme', repo: 'shop', issue_number: 7 })
  expect(gh.requests.at(-1)).toMatchObject({ method: 'GET', path: '/repos/acme/shop/issues/7/comments', status: 200 })
  expect(gh.violations).toEqual([])
})

test('contextFromEnv reads the runner variables and the event file', async () => {
  const { contextFromEnv, runUrlOf } = await import('../../../src/report/github-client.js')
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const event = join(mkdtempSync(join(tmpdir(), 'event-')), 'event.json')
  writeFileSync(event, JSON.stringify({ pull_request: { number: 12 } }))
  const context = contextFromEnv({
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: event,
    GITHUB_SHA: 'b'.repeat(40),
    GITHUB_SERVER_URL: 'https://ghe.example.com',
    GITHUB_RUN_ID: '99'
  })
  expect(context).toEqual({
    repo: { owner: 'acme', repo: 'shop' },
    eventName: 'pull_request',
    sha: 'b'.repeat(40),
    payload: { pull_request: { number: 12 } },
    serverUrl: 'https://ghe.example.com',
    runId: 99
  })
  expect(runUrlOf(context!)).toBe('https://ghe.example.com/acme/shop/actions/runs/99')
  expect(contextFromEnv({})).toBeUndefined()
})
