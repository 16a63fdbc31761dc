/**
 * Deploying a version again once its rollout has ended, on the local cluster with the seed
 * scenario: a re-run of a promoted release is a green no-op that writes nothing, a new build under
 * the stable version label is refused with what differs, and the release that was just rolled back
 * or aborted goes out again only with retry: true or a changed manifest (the fix).
 */
import { describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import { createGithubClient } from '../../../src/report/github-client.js'
import { upsertPullRequestComment } from '../../../src/report/pr-comment.js'
import { renderReport } from '../../../src/report/render-report.js'
import { startFakeGithub } from '../../support/fake-github.js'
import { NO_WRITES, namespaceWrites, quietFingerprint } from '../../support/namespace-fingerprint.js'
import { runAction, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { readSeedScenario, withBehaviour } from '../../support/test-cluster.js'
import { CANARY_DEPLOYMENT, LEASE, routeOf, seedInputs, seedsDeletedAfterAll, view } from '../chaos/seed-rollout.js'

const seed = seedsDeletedAfterAll()

/** The seed's v2 manifest with edits to its one container (a new build under the same version label). */
function v2With(edit: (container: Record<string, unknown>) => void): string {
  const doc = yaml.load(readSeedScenario('deployment-v2.yaml')) as {
    spec: { template: { spec: { containers: Array<Record<string, unknown>> } } }
  }
  edit(doc.spec.template.spec.containers[0]!)
  return writeManifest(yaml.dump(doc))
}

describe('deploying a version again after its rollout ended', () => {
  it('a re-run of the promoted release succeeds as unchanged and writes nothing; a new build under v2 is refused with what differs', async () => {
    const s = await seed('rerun-stable')
    const first = await runAction(seedInputs(s, { steps: '50,100' }))
    expect(first.report.error).toBeUndefined()
    expect(first.report.result).toBe('promoted')

    const before = await quietFingerprint(s.ns)
    const again = await runAction(seedInputs(s, { steps: '50,100' }))
    expect(again.report.error).toBeUndefined()
    expect(again.report).toMatchObject({
      result: 'unchanged',
      phase: 'promoted',
      stableVersion: 'v2',
      alreadyStable: { version: 'v2', deployment: CANARY_DEPLOYMENT }
    })
    // Not one write: every object's resourceVersion as it was, and no Lease created and deleted in between.
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    expect(await testCluster().getLease(s.ns, LEASE)).toBeUndefined()
    expect(again.log.lines.join('\n')).toContain('v2 is already stable; nothing to do')

    // The job summary and the PR comment say so.
    const md = renderReport(again.report)
    expect(md).toContain('> [!NOTE]\n> **v2 is already stable on')
    expect(md).toContain('v2 is already stable; nothing to do')
    const sha = 'a1'.repeat(20)
    const gh = await startFakeGithub({ owner: 'acme', repo: 'shop', prs: [{ number: 3, headSha: sha }] })
    try {
      const context = { repo: { owner: 'acme', repo: 'shop' }, eventName: 'push', sha, payload: {} }
      const outcome = await upsertPullRequestComment({
        octokit: await createGithubClient('test-token', gh.url),
        context,
        report: again.report
      })
      expect(outcome).toMatchObject({ action: 'created', prNumber: 3 })
      expect(gh.state.comments[0]!.body).toContain('v2 is already stable; nothing to do')
      expect(gh.violations).toEqual([])
    } finally {
      await gh.stop()
    }

    // The same version label on a different build: refused in preflight, naming what differs.
    const changed = v2With((c) => {
      c.image = 'nginx:1.27'
      c.env = [{ name: 'MODE', value: 'fast' }]
      c.resources = { limits: { cpu: '500m' } }
    })
    const refused = await runAction({ ...seedInputs(s), manifests: changed })
    expect(refused.report.result).toBe('unchanged')
    expect(refused.report.error?.kind).toBe('PreflightError')
    const message = refused.report.error?.message ?? ''
    expect(message).toContain(
      `Version "v2" is already the stable version on VirtualService "${s.ns}/istio-virtualservice", but the manifest differs from its live Deployment "${CANARY_DEPLOYMENT}":`
    )
    expect(message).toContain('  - containers[nginx-container].image: "nginx:latest" → "nginx:1.27"')
    expect(message).toContain('  - containers[nginx-container].env: added [{"name":"MODE","value":"fast"}]')
    expect(message).toContain('  - containers[nginx-container].resources.limits: added {"cpu":"500m"}')
    expect(message).toContain('Release it under a new version')
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })

  it('a version that was stable before any rollout (the seed v1) is a no-op too', async () => {
    const s = await seed('rerun-seed-v1')
    const before = await quietFingerprint(s.ns)
    const v1 = writeManifest(readSeedScenario('deployment-v1.yaml'))
    const { report } = await runAction({ ...seedInputs(s), manifests: v1 })
    expect(report.error).toBeUndefined()
    expect(report).toMatchObject({ result: 'unchanged', alreadyStable: { version: 'v1', deployment: 'istio-deployment-v1' } })
    // A dry run says the same, and has no plan to show.
    const dry = await runAction({ ...seedInputs(s), manifests: v1, 'dry-run': 'true' })
    expect(dry.report).toMatchObject({ result: 'unchanged', dryRun: true, alreadyStable: { version: 'v1' } })
    expect(dry.report.plan).toBeUndefined()
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })

  it('the release that was just rolled back is refused, and its fix (a changed manifest) rolls out without retry', async () => {
    const s = await seed('rerun-rolled-back')
    const crashing = withBehaviour(readSeedScenario('deployment-v2.yaml'), 'crash')
    crashing.spec!.progressDeadlineSeconds = 8
    const broken = writeManifest(yaml.dump(crashing))
    const first = await runAction({ ...seedInputs(s), manifests: broken, 'progress-deadline': '30s' })
    expect(first.report.result).toBe('rolled-back')

    const before = await quietFingerprint(s.ns)
    const rerun = await runAction({ ...seedInputs(s), manifests: broken, 'progress-deadline': '30s' })
    expect(rerun.report.result).toBe('unchanged')
    expect(rerun.report.error?.kind).toBe('PreflightError')
    expect(rerun.report.error?.message).toMatch(
      new RegExp(
        `^The last rollout of "v2" on VirtualService "${s.ns}/istio-virtualservice" was rolled back at \\S+ \\(canary Deployment ${CANARY_DEPLOYMENT} did not become available: .*\\), and this manifest is that same release`
      )
    )
    expect(rerun.report.error?.message).toContain(
      "To try the same release again, set input 'retry' to true; to release a fix, change the manifest"
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)

    // The fix: the same version label, a manifest that differs from the rolled-back Deployment.
    const fixed = await runAction(seedInputs(s, { steps: '50,100' }))
    expect(fixed.report.error).toBeUndefined()
    expect(fixed.report.result).toBe('promoted')
    expect(fixed.log.lines.join('\n')).toMatch(
      /The last rollout of v2 was rolled back at .*; this manifest differs from that release \(.*sim\.istio-canary\/behaviour/
    )
    expect(routeOf((await view(s.ns)).vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
  })

  it('the release that was just aborted is refused, and retry: true rolls it out again', async () => {
    const s = await seed('rerun-aborted')
    expect((await runAction(seedInputs(s, { steps: '20,pause,100' }))).report.result).toBe('paused')
    const aborted = await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: s.ns })
    expect(aborted.report.result).toBe('aborted')

    const before = await quietFingerprint(s.ns)
    const rerun = await runAction(seedInputs(s, { steps: '20,pause,100' }))
    expect(rerun.report.result).toBe('unchanged')
    expect(rerun.report.error?.message).toMatch(
      /^The last rollout of "v2" on VirtualService ".*" was aborted at \S+ \(aborted by request\), and this manifest is that same release .*set input 'retry' to true/
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)

    const retried = await runAction(seedInputs(s, { steps: '50,100', retry: 'true' }))
    expect(retried.report.error).toBeUndefined()
    expect(retried.report.result).toBe('promoted')
    expect(retried.log.lines.join('\n')).toContain("Retrying v2 (input 'retry'): its last rollout was aborted at")
    expect(routeOf((await view(s.ns)).vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
  })
})
