import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import { responseProblems, startFakeGithub, type FakeGithub } from '../../support/fake-github.js'
import { createGithubClient, type GithubRunContext } from '../../../src/report/github-client.js'
import { DESCRIPTION_MAX } from '../../../src/report/github-deployments.js'
import { createReporter, GithubReporter } from '../../../src/report/reporter.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { captureWorkflowCommands, type CapturedCommands } from './workflow-commands.js'

const fixture = (name: string): RunReport => JSON.parse(readFileSync(`__tests__/fixtures/reports/${name}.json`, 'utf8')) as RunReport
const SHA = 'c0ffee'.padEnd(40, '0')
const context: GithubRunContext = {
  repo: { owner: 'acme', repo: 'shop' },
  eventName: 'push',
  sha: SHA,
  payload: {},
  serverUrl: 'https://github.com',
  runId: 42
}
const RUN_URL = 'https://github.com/acme/shop/actions/runs/42'
const config = {
  prComment: false,
  commentAuthors: ['github-actions[bot]'],
  deploymentEnvironment: 'production',
  productionEnvironment: true
}

let gh: FakeGithub
let out: CapturedCommands
let octokit: Awaited<ReturnType<typeof createGithubClient>>

// createGithubClient loads @actions/github on first use: load it once here, outside any test's timeout.
beforeAll(async () => {
  await import('@actions/github')
}, 60_000)

beforeEach(async () => {
  out = captureWorkflowCommands()
  gh = await startFakeGithub({ owner: 'acme', repo: 'shop', prs: [{ number: 7, headSha: SHA }] })
  octokit = await createGithubClient('test-token', gh.url)
})

afterEach(async () => {
  out.restore()
  await gh.stop()
})

function reporter(extra: Partial<ConstructorParameters<typeof GithubReporter>[0]> = {}): GithubReporter {
  return new GithubReporter({ octokit, context, config, summary: false, outputs: false, ...extra })
}

describe('GitHub Deployments', () => {
  test('one deployment per run: in_progress at start, success when promoted', async () => {
    const r = reporter()
    await r.start({ ...fixture('promoted'), result: 'unchanged', phase: 'initializing' })
    await r.finish(fixture('promoted'))

    expect(gh.state.deployments).toHaveLength(1)
    const create = gh.requests.find((q) => q.operationId === 'repos/create-deployment')!
    expect(create.body).toMatchObject({
      ref: SHA,
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
      production_environment: true,
      payload: { virtualService: 'reviews', namespace: 'shop', canaryVersion: 'v2' }
    })
    expect(gh.state.statuses.map((s) => s.state)).toEqual(['in_progress', 'success'])
    for (const s of gh.state.statuses) {
      expect(s.deploymentId).toBe(r.deployment)
      expect(s.logUrl).toBe(RUN_URL)
      expect(s.description.length).toBeLessThanOrEqual(DESCRIPTION_MAX)
    }
    expect(gh.state.statuses[1]!.description).toBe('v2 promoted on shop/reviews')
    expect(gh.violations).toEqual([])
  })

  test.each([
    ['rolled-back', 'failure'],
    ['paused', 'in_progress'],
    ['preflight-failure', 'error']
  ])('a %s run ends with status %s, description within 140 characters', async (name, state) => {
    await reporter().finish(fixture(name))
    expect(gh.state.deployments).toHaveLength(1)
    expect(gh.state.statuses.map((s) => s.state)).toEqual([state])
    expect(gh.state.statuses[0]!.description.length).toBeLessThanOrEqual(DESCRIPTION_MAX)
    expect(gh.violations).toEqual([])
  })

  test('a hostile report still gives a valid status description', async () => {
    await reporter().finish(fixture('hostile'))
    expect(gh.state.statuses[0]!.description.length).toBeLessThanOrEqual(DESCRIPTION_MAX)
    expect(gh.violations).toEqual([])
  })

  test('a status run creates no deployment', async () => {
    await reporter().finish({ ...fixture('paused'), command: 'status' })
    expect(gh.requests).toEqual([])
  })

  test('403 when creating the deployment: one warning, no statuses, no throw', async () => {
    gh.failWith('repos/create-deployment', 403)
    const r = reporter()
    await r.start(fixture('paused'))
    await r.finish(fixture('promoted'))
    expect(gh.state.statuses).toEqual([])
    expect(gh.requests.filter((q) => q.operationId === 'repos/create-deployment')).toHaveLength(1)
    expect(out.of('warning')).toHaveLength(1)
    expect(out.of('warning')[0]).toContain("Could not create a GitHub deployment for environment 'production': HTTP 403")
    expect(gh.violations).toEqual([])
  })

  test('500 when setting the final status: warning, no throw', async () => {
    const r = reporter()
    await r.start(fixture('paused'))
    gh.failWith('repos/create-deployment-status', 500)
    await r.finish(fixture('promoted'))
    expect(gh.state.statuses.map((s) => s.state)).toEqual(['in_progress'])
    expect(out.of('warning')[0]).toContain('to success: HTTP 500')
    expect(gh.violations).toEqual([])
  })
})

describe('the stand-in checks requests and responses against the OpenAPI description', () => {
  test('a deployment status with state "done" is flagged', async () => {
    const octokit = await createGithubClient('test-token', gh.url)
    const { data } = await octokit.rest.repos.createDeployment({ owner: 'acme', repo: 'shop', ref: SHA, required_contexts: [] })
    const refused = octokit.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
      owner: 'acme',
      repo: 'shop',
      deployment_id: (data as { id: number }).id,
      state: 'done' as never // not a state GitHub knows: the point of the test
    })
    await expect(refused).rejects.toMatchObject({ status: 422 })
    expect(gh.state.statuses).toEqual([])
    expect(gh.violations).toHaveLength(1)
    expect(gh.violations[0]).toMatch(
      /^POST \/repos\/acme\/shop\/deployments\/\d+\/statuses: request body: \/state must be equal to one of the allowed values/
    )
  })

  test('an unknown endpoint, an unrouted operation, a bad query parameter and a missing token are flagged', async () => {
    const call = (path: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${gh.url}${path}`, { ...init, headers: { authorization: 'token t', ...(init.headers ?? {}) } })
    expect((await call('/repos/acme/shop/canaries')).status).toBe(404)
    expect((await call('/repos/acme/shop/pulls/7')).status).toBe(404)
    await call('/repos/acme/shop/issues/7/comments?per_page=many')
    await fetch(`${gh.url}/repos/acme/shop/issues/7/comments`)
    expect(gh.violations).toEqual([
      'GET /repos/acme/shop/canaries: unknown endpoint (no OpenAPI path matches)',
      'GET /repos/acme/shop/pulls/7: operation pulls/get (/repos/{owner}/{repo}/pulls/{pull_number}) is not routed by the stand-in',
      expect.stringMatching(/^GET \/repos\/acme\/shop\/issues\/7\/comments: query parameter per_page="many": .*must be integer/),
      'GET /repos/acme/shop/issues/7/comments: no Authorization header'
    ])
  })

  test('responses are checked too: a comment without its user is rejected, a complete one accepted', () => {
    const good = {
      id: 1,
      node_id: 'x',
      url: 'https://api.github.example/c/1',
      html_url: 'https://github.example/c/1',
      issue_url: 'https://api.github.example/i/1',
      body: 'b',
      user: null,
      created_at: '2026-11-25T10:00:00Z',
      updated_at: '2026-11-25T10:00:00Z',
      author_association: 'NONE'
    }
    expect(responseProblems('issues/create-comment', 201, good)).toEqual([])
    const { user: _user, ...bad } = good
    expect(responseProblems('issues/create-comment', 201, bad)[0]).toContain("must have required property 'user'")
    expect(responseProblems('issues/create-comment', 201, { ...good, author_association: 'BOSS' })[0]).toContain('author_association')
  })
})

describe('GithubReporter', () => {
  test('the GitHub client is made by the first comment or deployment write, once, not when the reporter is', async () => {
    let made = 0
    const connect = async (): Promise<typeof octokit> => {
      made++
      return octokit
    }
    const r = reporter({ octokit: undefined, connect, config: { ...config, prComment: true } })
    expect(made).toBe(0)
    await r.start({ ...fixture('promoted'), result: 'unchanged', phase: 'initializing' })
    expect(made).toBe(1)
    await r.finish(fixture('promoted'))
    expect(made).toBe(1)
    expect(gh.state.deployments).toHaveLength(1)
    expect(gh.state.comments).toHaveLength(1)
    expect(gh.violations).toEqual([])

    // Neither a comment nor a deployment: never made.
    const quiet = reporter({ octokit: undefined, connect, config: { ...config, prComment: false, deploymentEnvironment: undefined } })
    await quiet.finish(fixture('promoted'))
    expect(made).toBe(1)
  })

  test('createReporter with a token: the comment goes out through the client made on first use', async () => {
    const r = await createReporter({
      inputs: { 'github-token': 'test-token', 'pr-comment': 'true' },
      env: { GITHUB_API_URL: gh.url },
      context: { ...context, eventName: 'pull_request', payload: { pull_request: { number: 7, head: { sha: SHA } } } }
    })
    expect(gh.requests).toHaveLength(0)
    await r.finish(fixture('promoted'))
    expect(gh.state.comments).toHaveLength(1)
    expect(gh.violations).toEqual([])
  })

  test('progress comments are throttled to one per 10 s; the final one always goes out and nothing comes after it', async () => {
    let now = 0
    const r = reporter({ config: { ...config, prComment: true, deploymentEnvironment: undefined }, now: () => now })
    const paused = fixture('paused')
    await r.start({ ...paused, canaryWeight: 0 })
    now = 5_000
    await r.progress({ ...paused, canaryWeight: 10 })
    now = 10_500
    await r.progress({ ...paused, canaryWeight: 25 })
    now = 11_000
    const late = r.progress({ ...paused, canaryWeight: 50 })
    await r.finish(fixture('promoted'))
    now = 30_000
    await late
    await r.progress({ ...paused, canaryWeight: 75 })

    expect(r.comments.map((c) => c.action)).toEqual(['created', 'updated', 'updated'])
    expect(gh.state.comments).toHaveLength(1)
    expect(gh.state.comments[0]!.body).toContain('v2 promoted on shop/reviews')
    expect(gh.violations).toEqual([])
  })

  test('trailing edge: an update inside the interval is deferred, not dropped; the newest goes out when the interval ends', async () => {
    let now = 0
    const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = []
    const setTimer = (fn: () => void, ms: number): { cancel(): void } => {
      const t = { fn, ms, cancelled: false }
      timers.push(t)
      return { cancel: () => (t.cancelled = true) }
    }
    const r = reporter({ config: { ...config, prComment: true, deploymentEnvironment: undefined }, now: () => now, setTimer })
    const progressing = fixture('progressing')
    await r.start({
      ...progressing,
      phase: 'initializing',
      state: { ...progressing.state!, phase: 'initializing', canaryWeight: 0 },
      canaryWeight: 0
    })
    now = 4_000
    await r.progress({ ...progressing, canaryWeight: 10, state: { ...progressing.state!, canaryWeight: 10 } })
    now = 7_000
    await r.progress(progressing)
    // Deferred, one timer, due when the interval since the last comment ends (10 s - 4 s).
    expect(r.comments.map((c) => c.action)).toEqual(['created'])
    expect(timers).toHaveLength(1)
    expect(timers[0]!.ms).toBe(6_000)
    now = 10_000
    timers[0]!.fn()
    await r.flush()
    expect(r.comments.map((c) => c.action)).toEqual(['created', 'updated'])
    // The newest state went out: 25 %, not the 10 % in between.
    expect(gh.state.comments[0]!.body).toContain('v2 progressing on shop/reviews: 25 %, step 2 of 4')

    // A deferred update never lands after the final report.
    now = 12_000
    await r.progress(progressing)
    expect(timers).toHaveLength(2)
    await r.finish(fixture('promoted'))
    expect(timers[1]!.cancelled).toBe(true)
    timers[1]!.fn()
    await r.flush()
    expect(r.comments.map((c) => c.action)).toEqual(['created', 'updated', 'updated'])
    expect(gh.state.comments[0]!.body).toContain('v2 promoted on shop/reviews')
    expect(gh.violations).toEqual([])
  })

  test('after a 403 on the comment it stops trying (one warning for the run)', async () => {
    gh.failWith('issues/create-comment', 403)
    let now = 0
    const r = reporter({ config: { ...config, prComment: true, deploymentEnvironment: undefined }, now: () => now })
    await r.start(fixture('paused'))
    now = 60_000
    await r.progress(fixture('paused'))
    await r.finish(fixture('promoted'))
    expect(gh.requests.filter((q) => q.operationId === 'issues/create-comment')).toHaveLength(1)
    expect(out.of('warning')).toHaveLength(1)
    expect(gh.violations).toEqual([])
  })

  test('finish writes outputs, the job summary, the comment and the deployment status', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reporter-'))
    const summary = join(dir, 'summary.md')
    const output = join(dir, 'output.txt')
    writeFileSync(summary, '')
    writeFileSync(output, '')
    const saved = { s: process.env['GITHUB_STEP_SUMMARY'], o: process.env['GITHUB_OUTPUT'] }
    process.env['GITHUB_STEP_SUMMARY'] = summary
    process.env['GITHUB_OUTPUT'] = output
    try {
      const r = reporter({ config: { ...config, prComment: true }, summary: true, outputs: true })
      await r.finish(fixture('rolled-back'))
    } finally {
      process.env['GITHUB_STEP_SUMMARY'] = saved.s
      process.env['GITHUB_OUTPUT'] = saved.o
      if (saved.s === undefined) delete process.env['GITHUB_STEP_SUMMARY']
      if (saved.o === undefined) delete process.env['GITHUB_OUTPUT']
    }
    const md = readFileSync(summary, 'utf8')
    expect(md).toContain('> [!CAUTION]\n> **v2 rolled back on shop/reviews**')
    const outputs = readFileSync(output, 'utf8')
    expect(outputs).toMatch(/^result<<(.+)\nrolled-back\n\1$/m)
    expect(outputs).toMatch(/^canary-weight<<(.+)\n0\n\1$/m)
    expect(gh.state.comments[0]!.body).toContain('<!-- istio-canary:shop/reviews -->')
    expect(gh.state.statuses.map((s) => s.state)).toEqual(['failure'])
    // A rollback is annotated by main's setFailed; the reporter adds no second error annotation.
    expect(out.of('error')).toEqual([])
    expect(gh.violations).toEqual([])
  })
})
