/**
 * End to end: node dist/index.js started as the runner starts it (INPUT_* variables, GITHUB_OUTPUT,
 * GITHUB_STEP_SUMMARY, GITHUB_STATE), against the local cluster and a stand-in for api.github.com
 * that checks every request and response against GitHub's OpenAPI description. Checked through
 * the outputs, the job summary, the PR comment and the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { startAction } from '../support/action-process.js'
import { startFakeGithub, type FakeGithub } from '../support/fake-github.js'
import { routeOf, snapshot, testCluster, writeManifest } from '../support/rollout-harness.js'
import { createTestNamespace, deleteNamespace, readSeedScenario, startSeedScenario } from '../support/test-cluster.js'

const SHA = 'a'.repeat(40)

describe('dist/index.js as the runner starts it', () => {
  let ns: string
  let github: FakeGithub
  let eventFile: string
  beforeAll(async () => {
    ns = await createTestNamespace('e2e')
    await startSeedScenario(ns)
    github = await startFakeGithub({
      owner: 'shop',
      repo: 'reviews',
      prs: [{ number: 7, headSha: SHA, headRef: 'feature/**bold** @octocat' }],
      comments: [{ issueNumber: 7, user: 'octocat', body: `<!-- istio-canary:${'x'} --> not ours` }]
    })
    eventFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-event-')), 'event.json')
    fs.writeFileSync(eventFile, JSON.stringify({ ref: 'refs/heads/main', after: SHA }))
  })
  afterAll(async () => {
    await github?.stop()
    await deleteNamespace(ns)
  })

  function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      GITHUB_API_URL: github.url,
      GITHUB_REPOSITORY: 'shop/reviews',
      GITHUB_SHA: SHA,
      GITHUB_EVENT_NAME: 'push',
      GITHUB_EVENT_PATH: eventFile,
      GITHUB_SERVER_URL: 'https://github.example',
      GITHUB_RUN_ID: String(1000 + Math.floor(Math.random() * 1000)),
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'canary',
      ...extra
    }
  }

  const base = (): Record<string, string> => ({
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    interval: '1s',
    settle: '0s',
    'check-every': '0',
    'github-token': 'ghs_e2eTestToken0123456789',
    'pr-comment': 'true',
    'deployment-environment': 'production'
  })

  it('releases v2 with a pause, reports it everywhere, and a dispatch promote finishes it', async () => {
    const run = startAction(
      { ...base(), manifests: writeManifest(readSeedScenario('deployment-v2.yaml')), steps: '50,pause,100' },
      { env: runnerEnv() }
    )
    const exit = await run.exited
    expect(exit.code).toBe(0)
    expect(run.outputs()).toMatchObject({
      result: 'paused',
      phase: 'paused',
      'canary-weight': '50',
      'stable-version': 'v1',
      'canary-version': 'v2'
    })
    expect(run.summary()).toMatch(/paused/i)
    expect(run.summary()).toMatch(/50 ?%/)
    expect(run.log()).toMatch(/Weights: v1=50 v2=50/)

    // One comment of ours on PR 7 (found from the commit), carrying the marker once; octocat's untouched.
    const ours = github.state.comments.filter((c) => c.user === 'github-actions[bot]')
    expect(ours).toHaveLength(1)
    expect(ours[0].issueNumber).toBe(7)
    expect(ours[0].body.split(`<!-- istio-canary:${ns}/istio-virtualservice -->`)).toHaveLength(2)
    expect(ours[0].body).toMatch(/paused/i)
    expect(github.state.comments.find((c) => c.user === 'octocat')?.body).toBe(`<!-- istio-canary:x --> not ours`)
    const firstId = ours[0].id

    // The person's promote: a workflow_dispatch run of the promote command.
    // It runs on the default branch's HEAD, a commit no PR knows: the report still goes to the
    // release's PR, through the commit the rollout recorded.
    const promote = startAction(
      { ...base(), command: 'promote' },
      { env: runnerEnv({ GITHUB_EVENT_NAME: 'workflow_dispatch', GITHUB_SHA: 'b'.repeat(40) }) }
    )
    expect((await promote.exited).code).toBe(0)
    expect(promote.outputs()).toMatchObject({ result: 'promoted', phase: 'promoted', 'canary-weight': '100', 'stable-version': 'v2' })
    expect(promote.summary()).toMatch(/promoted/)
    const vs = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])

    // The same comment was updated in place, not a second one created.
    const after = github.state.comments.filter((c) => c.user === 'github-actions[bot]')
    expect(after.map((c) => c.id)).toEqual([firstId])
    expect(after[0].body).toMatch(/promoted/)
    expect(github.requests.some((r) => r.method === 'PATCH')).toBe(true)
    // Each run is a GitHub Deployment: the release stays in_progress while paused, the promote succeeds.
    expect(github.state.deployments.map((d) => [d.ref, d.environment])).toEqual([
      [SHA, 'production'],
      [SHA, 'production']
    ])
    const statesOf = (id: number): string[] => github.state.statuses.filter((s) => s.deploymentId === id).map((s) => s.state)
    expect(statesOf(github.state.deployments[0].id)).toEqual(['in_progress', 'in_progress'])
    expect(statesOf(github.state.deployments[1].id)).toEqual(['in_progress', 'success'])
    // The hostile branch name never reaches the comment as markup or a mention.
    expect(after[0].body).not.toMatch(/@octocat/)
    expect(github.violations).toEqual([])
  })

  it('fails a bad input with a clear error in the log, the outputs and the summary, changing nothing', async () => {
    const before = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    const run = startAction(
      { ...base(), manifests: writeManifest(readSeedScenario('deployment-v2.yaml')), steps: '10,120' },
      { env: runnerEnv() }
    )
    const exit = await run.exited
    expect(exit.code).toBe(1)
    expect(run.log()).toMatch(/::error::Input 'steps' is invalid: weight 120 at position 2 must be between 1 and 100/)
    expect(run.outputs().result).toBe('unchanged')
    expect(run.summary()).toMatch(/Input 'steps' is invalid/)
    const after = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion)
    expect(github.violations).toEqual([])
  })

  it('keeps the rollout going when GitHub refuses the comment (a fork’s read-only token)', async () => {
    github.failWith('issues/create-comment', 403)
    github.failWith('issues/update-comment', 403)
    const v3 = readSeedScenario('deployment-v2.yaml').replaceAll('v2', 'v3')
    const run = startAction({ ...base(), manifests: writeManifest(v3), steps: '100' }, { env: runnerEnv() })
    const exit = await run.exited
    expect(exit.code).toBe(0)
    expect(run.outputs().result).toBe('promoted')
    expect(run.log()).toMatch(/::warning::.*(403|comment)/i)
    expect(github.violations).toEqual([])
  })
})
