/**
 * Callers outside the mesh, on the local cluster with the seed scenario and the real Prometheus fed
 * by the traffic source, whose requests from a caller without a sidecar carry source_workload and
 * source_principal "unknown" (as Istio's receiving sidecar reports them). The deploy preflight warns
 * with the stable version's share (warn), refuses with nothing written (fail), or says nothing
 * (ignore); during the rollout each evaluation records the canary's share, and the report shows it.
 *
 * A real caller that bypasses xDS (meshsim's sidecar-less "plain" caller beside an xDS one) is in
 * __tests__/integration/mesh/outside-mesh-caller.test.ts.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { outsideMeshQueries } from '../../../src/health/outside-mesh.js'
import { renderPlainLog, renderReport } from '../../../src/report/render-report.js'
import { NO_WRITES, namespaceWrites, quietFingerprint } from '../../support/namespace-fingerprint.js'
import { runAction, warnedShare } from '../../support/rollout-harness.js'
import {
  clearTraffic,
  deleteNamespace,
  loadTestEnv,
  promValues,
  queryPrometheus,
  setTraffic,
  waitFor,
  type TrafficConfig
} from '../../support/test-cluster.js'
import { CANARY_DEPLOYMENT, routeOf, seedInputs, seedNamespace, STABLE_DEPLOYMENT, view, type Seed } from '../chaos/seed-rollout.js'

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(
    namespaces.flatMap((ns) => [clearTraffic(ns, STABLE_DEPLOYMENT), clearTraffic(ns, CANARY_DEPLOYMENT), deleteNamespace(ns)])
  )
})

const healthy: TrafficConfig = { rps: 40, errorRatio: 0.002, latencyMs: 60 }

async function seed(prefix: string): Promise<Seed> {
  const s = await seedNamespace(prefix)
  namespaces.push(s.ns)
  return s
}

/** Sets a workload's traffic and waits until Prometheus has a rate of it (two scrapes). */
async function traffic(ns: string, workload: string, config: TrafficConfig): Promise<void> {
  await setTraffic(ns, workload, config)
  const { total } = outsideMeshQueries({ namespace: ns, workload }, 600)
  await waitFor(async () => (promValues(await queryPrometheus(total))[0] ?? 0) > 0, {
    timeoutMs: 30_000,
    what: `a request rate of ${ns}/${workload} in Prometheus`
  })
}

function inputs(s: Seed, extra: Record<string, string> = {}): Record<string, string> {
  return seedInputs(s, {
    steps: '50,100',
    interval: '4s',
    'check-every': '2s',
    'prometheus-url': loadTestEnv().prometheusUrl,
    'success-rate': '99',
    'min-requests': '5',
    ...extra
  })
}

describe('callers outside the mesh', () => {
  it.concurrent('warn: the preflight names the stable share and the report each step’s canary share; the rollout goes on', async () => {
    const s = await seed('outside-warn')
    await Promise.all([
      traffic(s.ns, STABLE_DEPLOYMENT, { ...healthy, version: 'v1', service: 'istio-service', outsideMeshRatio: 0.25 }),
      traffic(s.ns, CANARY_DEPLOYMENT, { ...healthy, version: 'v2', service: 'istio-service', outsideMeshRatio: 0.5 })
    ])
    const { report, log } = await runAction(inputs(s))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    // Same counters, same scrapes: the share is the configured one.
    expect(warnedShare(report.warnings)).toBeCloseTo(25, 0)
    const warning = report.warnings.find((w) => w.includes('outside the mesh'))!
    expect(warning).toContain('via Service istio-service')
    expect(warning).toContain(
      'Service istio-service selects the pods of both versions, so kube-proxy sends them to the canary by pod count, unweighted, from its first Ready pod'
    )
    expect(warning).toContain('README, "Callers outside the mesh"')
    expect(log.lines).toContain(`warning: ${warning}`)

    // Bake evaluations measure the share; a blocking moment (the check before the next shift) judges the gates only.
    const shares = report
      .state!.history.filter((h) => h.kind === 'gates' && h.evaluation?.moment === undefined)
      .map((h) => h.evaluation!.outsideMesh)
    expect(shares.length).toBeGreaterThanOrEqual(2)
    for (const share of shares) expect(share?.percent).toBeCloseTo(50, 0)
    // Figures for the closing note, not assertions.
    console.log(
      `outside-mesh: stable share warned ${warnedShare(report.warnings)} % (configured 25 %); canary shares per evaluation ${shares.map((x) => x?.percent).join(', ')} % (configured 50 %)`
    )
    const md = renderReport(report)
    // The Markdown keeps a number and its unit together with a no-break space.
    expect(md).toMatch(/\| 1 \| 50\s% \|.*outside the mesh: (49\.\d+|50(\.\d+)?)\s% of canary requests/)
    expect(md).toContain(warning.slice(0, 60))
    expect(renderPlainLog(report)).toMatch(/step 1: 50 % .*; outside the mesh: (49\.\d+|50(\.\d+)?) % of canary requests/)
  })

  it.concurrent('fail: refused in preflight with the share and the way out, and nothing written in the namespace', async () => {
    const s = await seed('outside-fail')
    await traffic(s.ns, STABLE_DEPLOYMENT, { ...healthy, version: 'v1', service: 'istio-service', outsideMeshRatio: 0.1 })
    const before = await quietFingerprint(s.ns)
    const { report } = await runAction(inputs(s, { 'outside-mesh': 'fail' }))
    expect(report.result).toBe('unchanged')
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toMatch(
      /^([\d.]+) % of the requests to the stable version v1 \(Deployment istio-deployment-v1\) in the last 10m came from outside the mesh/
    )
    expect(Number(/^([\d.]+) %/.exec(report.error!.message)![1])).toBeCloseTo(10, 0)
    expect(report.error?.message).toMatch(/input 'outside-mesh' is "fail" \(set it to "warn" to start anyway\)\. Nothing was changed\.$/)
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    expect(routeOf((await view(s.ns)).vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v1' } }])
  })

  it.concurrent('ignore: no query, no warning, no per-step share', async () => {
    const s = await seed('outside-ignore')
    await Promise.all([
      traffic(s.ns, STABLE_DEPLOYMENT, { ...healthy, version: 'v1', outsideMeshRatio: 0.3 }),
      traffic(s.ns, CANARY_DEPLOYMENT, { ...healthy, version: 'v2', outsideMeshRatio: 0.3 })
    ])
    const { report, log } = await runAction(inputs(s, { 'outside-mesh': 'ignore', steps: '100' }))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(report.warnings.join('\n')).not.toContain('outside the mesh')
    expect(log.lines.join('\n')).not.toContain('outside the mesh')
    const evaluations = report.state!.history.filter((h) => h.kind === 'gates')
    expect(evaluations.length).toBeGreaterThan(0)
    expect(evaluations.every((h) => h.evaluation!.outsideMesh === undefined)).toBe(true)
  })

  it.concurrent('only meshed callers: said in the log, no warning', async () => {
    const s = await seed('outside-none')
    await traffic(s.ns, STABLE_DEPLOYMENT, { ...healthy, version: 'v1' })
    const { report, log } = await runAction(inputs(s, { 'outside-mesh': 'fail', 'dry-run': 'true' }))
    expect(report.error).toBeUndefined()
    expect(report.warnings.join('\n')).not.toContain('outside the mesh')
    expect(
      log.lines.some((l) =>
        /^No requests from outside the mesh reached the stable version v1 \(Deployment istio-deployment-v1\) in the last 10m \([\d.]+ req\/s, all from callers with a sidecar\)\.$/.test(
          l
        )
      )
    ).toBe(true)
  })

  it.concurrent('no requests at all: inconclusive, not zero; a warning even under fail, and the dry run goes on', async () => {
    const s = await seed('outside-nodata')
    const { report } = await runAction(inputs(s, { 'outside-mesh': 'fail', 'dry-run': 'true' }))
    expect(report.error).toBeUndefined()
    expect(report.dryRun).toBe(true)
    expect(report.warnings).toContainEqual(
      expect.stringMatching(
        /^could not tell whether callers outside the mesh reach the stable version v1 \(Deployment istio-deployment-v1\): no requests were recorded at reporter="destination" in the last 10m; inconclusive, not zero/
      )
    )
  })
})
