/**
 * command plan on the local cluster, through dist/index.js as the runner starts it: the real
 * apiserver, the real Prometheus fed by the traffic source, and the GitHub stand-in that checks
 * every exchange against GitHub's OpenAPI description. The plan writes nothing (namespace
 * fingerprint and Lease watch), puts one comment on the pull request with the stable version's
 * real gate values, and the deploy run of the merge commit later updates that same comment. With
 * a read-only Role (docs/rbac-plan.yaml) it makes no dry run and says what it skipped. A bad input
 * fails with the usual precise error, nothing written.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { AuthorizationV1Api, type V1Role } from '@kubernetes/client-node'
import * as yaml from 'js-yaml'
import { startAction } from '../../support/action-process.js'
import { startFakeGithub, type FakeGithub } from '../../support/fake-github.js'
import { NO_WRITES, namespaceWrites, quietFingerprint } from '../../support/namespace-fingerprint.js'
import { writeManifest } from '../../support/rollout-harness.js'
import {
  clearTraffic,
  createTestNamespace,
  deleteNamespace,
  grantRole,
  loadTestEnv,
  promValues,
  queryPrometheus,
  readSeedScenario,
  repoRoot,
  restrictedKubeConfig,
  setTraffic,
  startSeedScenario,
  waitFor
} from '../../support/test-cluster.js'

const HEAD = 'c'.repeat(40)
const MERGE = 'd'.repeat(40)
const PR = 12
const VS = 'istio-virtualservice'
const STABLE = 'istio-deployment-v1'

const namespaces: string[] = []
let github: FakeGithub
let eventFile: string
let prometheusUrl: string

beforeAll(async () => {
  prometheusUrl = loadTestEnv().prometheusUrl
  // The pull request as it is once merged: the plan run knows it from its event, the deploy run
  // finds it from the merge commit.
  github = await startFakeGithub({
    owner: 'shop',
    repo: 'reviews',
    prs: [{ number: PR, headSha: HEAD, state: 'closed', mergedAt: '2026-11-30T07:30:00Z', commits: [MERGE] }]
  })
  eventFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-event-')), 'event.json')
  fs.writeFileSync(eventFile, JSON.stringify({ number: PR, pull_request: { number: PR, head: { sha: HEAD } } }))
})

afterAll(async () => {
  await github?.stop()
  await Promise.all(namespaces.flatMap((ns) => [clearTraffic(ns, STABLE), deleteNamespace(ns)]))
})

/** The seed scenario (v1 stable) with the stable version serving real traffic: 2 % errors, 60 ms p99. */
async function seedWithTraffic(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await startSeedScenario(ns)
  await setTraffic(ns, STABLE, { rps: 40, errorRatio: 0.02, latencyMs: 60 })
  const sel = `reporter="destination",destination_workload_namespace="${ns}",destination_workload="${STABLE}"`
  await waitFor(async () => promValues(await queryPrometheus(`sum(rate(istio_requests_total{${sel}}[3600s]))`)).some((v) => v > 0), {
    what: `Prometheus to have the stable version's requests in ${ns}`,
    timeoutMs: 60_000
  })
  return ns
}

function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITHUB_API_URL: github.url,
    GITHUB_REPOSITORY: 'shop/reviews',
    GITHUB_SERVER_URL: 'https://github.example',
    GITHUB_RUN_ID: String(2000 + Math.floor(Math.random() * 1000)),
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventFile,
    // A pull_request run's GITHUB_SHA is the test merge commit, which no PR lists.
    GITHUB_SHA: 'e'.repeat(40),
    ...extra
  }
}

/** The seed's v2 as a real release changes it: a new image, an env var, two replicas, a readiness probe. */
function releaseManifest(): string {
  const doc = yaml.load(readSeedScenario('deployment-v2.yaml')) as {
    spec: { replicas: number; template: { spec: { containers: Array<Record<string, unknown>> } } }
  }
  doc.spec.replicas = 2
  Object.assign(doc.spec.template.spec.containers[0], {
    image: 'nginx:1.27',
    env: [{ name: 'MODE', value: 'fast' }],
    readinessProbe: { httpGet: { path: '/', port: 80 } }
  })
  return writeManifest(yaml.dump(doc))
}

function inputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    command: 'plan',
    manifests: releaseManifest(),
    'virtual-service': VS,
    namespace: ns,
    'version-label': 'istio-test-version',
    steps: '10,50,100',
    interval: '1s',
    settle: '0s',
    'check-every': '0',
    'prometheus-url': prometheusUrl,
    'success-rate': '99',
    'latency-p99': '500',
    'github-token': 'ghs_planTestToken0123456789',
    'pr-comment': 'true',
    ...extra
  }
}

/** Markdown as a reader sees it: escapes and entities undone. */
function plain(md: string): string {
  return md
    .replace(/\\(.)/g, '$1')
    .replace(/&#39;/g, "'")
    .replace(/&gt;/g, '>')
    .replace(/&lt;/g, '<')
    .replace(/&quot;/g, '"')
}

const ours = (): FakeGithub['state']['comments'] =>
  github.state.comments.filter((c) => c.issueNumber === PR && c.user === 'github-actions[bot]')

describe('command plan on the pull request', () => {
  it('writes nothing, comments the plan with the stable version’s real gate values, and the deploy later updates that comment', async () => {
    const ns = await seedWithTraffic('plan')
    const before = await quietFingerprint(ns)
    // Even with a deployment environment set, a plan creates no GitHub Deployment.
    // A freeze window far away: the rules load lazily in dist/ too, and the plan says none covers now.
    const planned = inputs(ns, { 'freeze-windows': '2099-12-24 - 2099-12-26 Europe/Berlin' })
    const run = startAction({ ...planned, 'deployment-environment': 'production' }, { env: runnerEnv() })
    const exit = await run.exited
    expect(run.log()).not.toMatch(/::error::/)
    expect(exit.code).toBe(0)
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)

    const comments = ours()
    expect(comments).toHaveLength(1)
    const body = comments[0].body
    expect(body.split(`<!-- istio-canary:${ns}/${VS} -->`)).toHaveLength(2)
    const md = plain(body)
    expect(md).toContain(`### istio-canary plan: merging rolls out v2 over v1 on ${ns}/${VS}`)
    expect(md).toContain('**Preflight passes** as the cluster stands now.')
    // The Deployment against the stable one, as the API server would store it (its dry run fills in the probe's defaults).
    expect(md).toContain('| replicas | 1 | 2 |')
    expect(md).toContain('| containers[nginx-container].image | nginx:latest | nginx:1.27 |')
    expect(md).toContain('| containers[nginx-container].env | — | [{"name":"MODE","value":"fast"}] |')
    expect(md).toMatch(/\| containers\[nginx-container\]\.readinessProbe \| — \| \{.*"timeoutSeconds":1.*\} \|/)
    expect(md).not.toContain('containers[nginx-container].resources')
    expect(md).toMatch(/- DestinationRule istio-destinationrule: subset \*\*v2\*\* added \(istio-test-version=v2\)/)
    expect(md).toContain('- VirtualService istio-virtualservice: route weights v1 90 % / v2 10 % at the first step')
    expect(md).toContain('Minimum total: **')
    // The stable version serves 2 % errors: 98 %, below the 99 % threshold, flagged before the release.
    const success = /\| success-rate \| >= 99 % \| ([\d.]+)% ❌ the stable version already fails this \|/.exec(md)
    expect(success).not.toBeNull()
    expect(Number(success![1])).toBeGreaterThan(97)
    expect(Number(success![1])).toBeLessThan(99)
    expect(md).toMatch(/\| latency-p99 \| <= 500 ms \| [\d.]+ ms \|/)
    expect(md).toContain(`- Freeze: no window of input 'freeze-windows' covers now (1 configured); a deploy now may go ahead.`)
    // The admin credentials may write: the writes were checked as dry runs, nothing stored.
    expect(md).toContain('- ✅ apply Deployment istio-deployment-v2: accepted by the API server (server-side dry run)')

    expect(run.outputs()).toMatchObject({ result: 'unchanged', 'stable-version': 'v1', 'canary-version': 'v2', error: '' })
    expect(run.outputs().plan).toBe(body)
    expect(run.summary()).toContain(body.trim())
    expect(github.state.deployments).toEqual([])

    // Merged: the release run of the merge commit replaces the plan with its report, in place.
    const deploy = startAction(
      { ...planned, command: 'deploy', steps: '50,100', 'prometheus-url': '', 'success-rate': '', 'latency-p99': '' },
      { env: runnerEnv({ GITHUB_EVENT_NAME: 'push', GITHUB_SHA: MERGE, GITHUB_EVENT_PATH: '' }) }
    )
    expect((await deploy.exited).code).toBe(0)
    expect(deploy.outputs().result).toBe('promoted')
    const after = ours()
    expect(after.map((c) => c.id)).toEqual([comments[0].id])
    expect(after[0].body).not.toContain('istio-canary plan')
    expect(after[0].body).toMatch(/promoted/)
    expect(github.violations).toEqual([])
  })

  it('with the read-only Role of docs/rbac-plan.yaml: no dry run, and the comment lists what it skipped and why', async () => {
    const ns = await seedWithTraffic('plan-ro')
    const role = yaml.load(fs.readFileSync(path.join(repoRoot, 'docs', 'rbac-plan.yaml'), 'utf8')) as V1Role
    await grantRole(ns, 'restricted', role.rules ?? [])
    const authz = restrictedKubeConfig().makeApiClient(AuthorizationV1Api)
    await waitFor(
      async () =>
        (
          await authz.createSelfSubjectAccessReview({
            body: {
              spec: { resourceAttributes: { namespace: ns, group: 'networking.istio.io', resource: 'destinationrules', verb: 'list' } }
            }
          })
        ).status?.allowed === true,
      { what: 'the plan Role to take effect', intervalMs: 100, timeoutMs: 15_000 }
    )
    const before = await quietFingerprint(ns)
    const run = startAction(inputs(ns, { 'pr-comment': 'false', 'github-token': '' }), {
      env: runnerEnv({ KUBECONFIG: loadTestEnv().restrictedKubeconfigPath })
    })
    const exit = await run.exited
    expect(run.log()).not.toMatch(/::error::/)
    expect(exit.code).toBe(0)
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    const md = plain(run.outputs().plan)
    expect(md).toContain('**Preflight passes** as the cluster stands now.')
    expect(md).not.toContain('✅')
    expect(md).toMatch(
      new RegExp(
        `- ⏭️ not checked: the deploy's permissions: these credentials may not update networking\\.istio\\.io/virtualservices ${VS}, .*create apps/deployments.* in namespace "${ns}" \\(SelfSubjectAccessReview\\), so no write was checked as a dry run`
      )
    )
    expect(md).toContain('compared as the manifest writes it, without the defaults the API server would fill in')
    // The stable values come from Prometheus all the same.
    expect(md).toMatch(/\| success-rate \| >= 99 % \| [\d.]+% ❌/)
  })

  it('a bad input fails with the precise error in the outputs and the comment; nothing written', async () => {
    const ns = await seedWithTraffic('plan-bad')
    const before = await quietFingerprint(ns)
    const run = startAction(inputs(ns, { 'virtual-service': 'no-such-route' }), { env: runnerEnv() })
    expect((await run.exited).code).toBe(1)
    const message = `VirtualService "no-such-route" was not found in namespace "${ns}" (input 'virtual-service').`
    expect(run.outputs().error).toContain(`PreflightError: ${message}`)
    expect(run.log()).toContain(`::error::${message}`)
    const comment = github.state.comments.find((c) => c.body.includes(`<!-- istio-canary:${ns}/no-such-route -->`))
    expect(plain(comment!.body)).toContain(`**Preflight would refuse it** (PreflightError): ${message}`)

    const config = startAction(inputs(ns, { steps: '10,120' }), { env: runnerEnv() })
    expect((await config.exited).code).toBe(1)
    expect(config.outputs().error).toBe(
      `ConfigError: Input 'steps' is invalid: weight 120 at position 2 must be between 1 and 100 (got "10,120").`
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    expect(github.violations).toEqual([])
  })
})
