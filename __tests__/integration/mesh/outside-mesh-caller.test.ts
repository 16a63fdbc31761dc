/**
 * A real caller that bypasses xDS: meshsim's "plain" caller picks a ready pod of the Service at
 * random, as kube-proxy does for a client without a sidecar, and its requests reach Prometheus as
 * Istio reports them (reporter="destination", source_workload="unknown", no principal; nothing at
 * reporter="source"). Next to it an xDS caller follows istiod's routing. The deploy preflight warns
 * with the stable version's outside-mesh share and names the source; during the 10 % step the plain
 * caller's calls reach the canary by pod count (one pod each: about half), the xDS caller's by the
 * weight; each evaluation records the canary's outside-mesh share.
 */
import { describe, expect, it } from '@jest/globals'
import { outsideMeshQueries } from '../../../src/health/outside-mesh.js'
import {
  loadTestEnv,
  promValues,
  queryPrometheus,
  readSeedScenario,
  startCaller,
  startSeedScenario,
  waitFor
} from '../../support/test-cluster.js'
import { runAction, writeManifest, warnedShare } from '../../support/rollout-harness.js'
import { type Mark, PROPAGATION_MS, recordMarks, shareOf, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

// Equal rates: the plain caller is half of the stable version's requests before the rollout.
const XDS_RPS = 50
const PLAIN_RPS = 50
const EXPECTED_STABLE_SHARE = (100 * PLAIN_RPS) / (PLAIN_RPS + XDS_RPS)
// One pod per version: kube-proxy's (and the plain caller's) pick lands on the canary half the time.
const EXPECTED_PLAIN_TO_CANARY = 50
const CANARY_WEIGHT = 10

describe('a real caller outside the mesh (no sidecar, no xDS)', () => {
  it('is warned about in preflight, reaches the canary by pod count regardless of the weight, and is counted at each step', async () => {
    const ns = await meshNamespace('mesh-outside', ['sidecar', 'plain'])
    await startSeedScenario(ns)
    await startSeedCaller(ns, 'sidecar', XDS_RPS)
    await startCaller(ns, 'plain', { service: 'istio-service', rps: PLAIN_RPS, mode: 'plain' })

    // Prometheus has the plain caller's requests as Istio reports a sidecar-less client's ...
    const { outside } = outsideMeshQueries({ namespace: ns, workload: 'istio-deployment-v1' }, 600)
    await waitFor(async () => (promValues(await queryPrometheus(outside))[0] ?? 0) > 0, {
      timeoutMs: 30_000,
      what: `outside-mesh requests of ${ns} in Prometheus`
    })
    // ... and nothing at reporter="source": such a client has no sidecar to report them.
    const bySource = await queryPrometheus(
      `count(istio_requests_total{reporter="source",destination_workload_namespace="${ns}",source_workload="plain"}) or vector(0)`
    )
    expect(promValues(bySource)[0]).toBe(0)
    const unknownAtSource = await queryPrometheus(
      `count(istio_requests_total{reporter="source",destination_workload_namespace="${ns}",source_workload="unknown"}) or vector(0)`
    )
    expect(promValues(unknownAtSource)[0]).toBe(0)
    // A few scrapes of both callers, so the rates over the preflight's window are steady.
    await sleep(5000)

    const marks: Mark[] = []
    const { report, log } = await runAction(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: `${CANARY_WEIGHT},100`,
        interval: '30s',
        settle: '2s',
        'check-every': '10s',
        'prometheus-url': loadTestEnv().prometheusUrl,
        'success-rate': '99',
        'min-requests': '5'
      },
      { onProgress: recordMarks(marks) }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    // (a) The preflight names the share (plain / (plain + xDS) of the stable's requests) and the source.
    const share = warnedShare(report.warnings)
    const warning = report.warnings.find((w) => w.includes('outside the mesh'))!
    console.log(`[mesh] outside-mesh preflight: ${warning}`)
    expect(share).toBeDefined()
    expect(Math.abs(share! - EXPECTED_STABLE_SHARE)).toBeLessThanOrEqual(10)
    expect(warning).toMatch(/req\/s from callers Istio cannot identify via Service istio-service/)
    expect(warning).toContain('Service istio-service selects the pods of both versions')
    expect(log.lines).toContain(`warning: ${warning}`)

    // (b) During the 10 % step the plain caller's calls reach the canary by pod count, the xDS caller's by the weight.
    const step = marks.find((m) => m.phase === 'progressing' && m.weight === CANARY_WEIGHT)
    expect(step).toBeDefined()
    const next = marks[marks.indexOf(step!) + 1]
    const plain = await shareOf(ns, 'plain', 'istio-deployment-v2', step!.t + PROPAGATION_MS, next.t)
    const viaXds = await shareOf(ns, 'sidecar', 'istio-deployment-v2', step!.t + PROPAGATION_MS, next.t)
    console.log(
      `[mesh] weight ${CANARY_WEIGHT}: plain caller ${plain.percent.toFixed(1)} % of ${plain.total} calls to the canary, ` +
        `xDS caller ${viaXds.percent.toFixed(1)} % of ${viaXds.total}`
    )
    expect(plain.total).toBeGreaterThan(PLAIN_RPS * 10)
    expect(viaXds.total).toBeGreaterThan(XDS_RPS * 10)
    expect(plain.failed + viaXds.failed).toBe(0)
    expect(Math.abs(plain.percent - EXPECTED_PLAIN_TO_CANARY)).toBeLessThanOrEqual(10)
    expect(Math.abs(viaXds.percent - CANARY_WEIGHT)).toBeLessThanOrEqual(10)

    // (c) Each bake evaluation at the step records the canary's outside-mesh share: above zero. (A
    // blocking moment, e.g. the check before the next shift, judges the gates only.)
    const shares = report
      .state!.history.filter((h) => h.kind === 'gates' && h.evaluation?.canaryWeight === CANARY_WEIGHT && h.evaluation.moment === undefined)
      .map((h) => h.evaluation!.outsideMesh)
    console.log(
      `[mesh] canary outside-mesh share per evaluation at ${CANARY_WEIGHT} %: ${shares.map((s) => s?.percent ?? s?.detail).join(', ')}`
    )
    expect(shares.length).toBeGreaterThanOrEqual(1)
    for (const s of shares) expect(s?.percent).toBeGreaterThan(0)
  })
})
