/**
 * A canary whose pods answer 30 % errors, judged on real outcomes: meshsim's workloads fail the
 * calls istiod's routing sends them, Prometheus scrapes Istio's metrics counted from those calls,
 * and the success-rate gate, at the default check-every, rolls the canary back. The failed calls
 * callers saw before the canary's weight reached 0 are counted (the exposure of a bad canary).
 */
import { describe, expect, it } from '@jest/globals'
import {
  callerStats,
  ERROR_RATIO_ANNOTATION,
  loadTestEnv,
  parseManifests,
  queryPrometheus,
  promValues,
  readSeedScenario,
  splitOf,
  startSeedScenario
} from '../../support/test-cluster.js'
import { writeManifest } from '../../support/rollout-harness.js'
import { runMarked, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'
import * as yaml from 'js-yaml'
import type { V1Deployment } from '@kubernetes/client-node'

const { meshNamespace } = teardownAfterAll()

const RPS = 50
const ERROR_RATIO = 0.3

/** The seed's v2 Deployment whose pods answer `ratio` of their calls with an error. */
function failingV2(ratio: number): string {
  const d = parseManifests(readSeedScenario('deployment-v2.yaml'))[0] as V1Deployment
  const meta = (d.spec!.template.metadata ??= {})
  meta.annotations = { ...(meta.annotations ?? {}), [ERROR_RATIO_ANNOTATION]: String(ratio) }
  return yaml.dump(d)
}

describe('a failing canary on real traffic', () => {
  it('is rolled back by the success-rate gate at the default check-every; callers saw its failures only until then', async () => {
    const ns = await meshNamespace('mesh-errors', ['client'])
    await startSeedScenario(ns)
    await startSeedCaller(ns, 'client', RPS)

    const { report, marks, t0 } = await runMarked(
      {
        manifests: writeManifest(failingV2(ERROR_RATIO)),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '10,25,50,100',
        interval: '1m',
        settle: '5s',
        'check-every': '30s',
        'prometheus-url': loadTestEnv().prometheusUrl,
        'success-rate': '99',
        'min-requests': '10'
      },
      0
    )
    expect(report.result).toBe('rolled-back')
    // Rolled back at the first step, on the success rate measured from real calls.
    expect(marks.filter((m) => m.phase === 'progressing' && m.weight > 0).map((m) => m.weight)).toEqual([10])
    const rate = report.state!.history.flatMap((h) => h.evaluation?.checks ?? []).find((c) => c.name === 'success-rate')
    expect(rate?.verdict).toBe('fail')
    expect(rate?.value).toBeGreaterThan(55)
    expect(rate?.value).toBeLessThan(85)

    const firstStep = marks.findIndex((m) => m.weight > 0)
    const atZero = marks.slice(firstStep).find((m) => m.weight === 0)!
    expect(firstStep).toBeGreaterThan(0)
    expect(atZero).toBeDefined()
    console.log(`[mesh] marks: ${marks.map((m) => `${((m.t - t0) / 1000).toFixed(1)}s ${m.phase} ${m.weight}`).join(', ')}`)
    await sleep(3000)
    const exposed = splitOf(await callerStats(ns, 'client', { since: t0, until: atZero.t + 1500 }))
    const after = splitOf(await callerStats(ns, 'client', { since: atZero.t + 1500, until: Date.now() }))
    const canaryCalls = exposed.byWorkload['istio-deployment-v2'] ?? 0
    console.log(
      `[mesh] 30 % error canary at check-every 30s: ${exposed.failed} failed calls of ${canaryCalls} sent to the canary ` +
        `(${exposed.total} in all) before its weight was 0, ${((atZero.t - t0) / 1000).toFixed(1)} s after the rollout started`
    )
    // Callers saw the canary's errors (about 30 % of its share) ...
    expect(exposed.failed).toBeGreaterThan(0)
    expect(Math.abs(exposed.failed / canaryCalls - ERROR_RATIO)).toBeLessThan(0.12)
    // ... and none once the canary's weight was 0.
    expect(after.total).toBeGreaterThan(RPS)
    expect(after.failed).toBe(0)

    // Prometheus holds Istio's metrics counted from the same calls.
    const q = await queryPrometheus(
      `sum(istio_requests_total{job="meshsim",reporter="source",destination_workload_namespace="${ns}",destination_workload="istio-deployment-v2",response_code=~"5.."})`
    )
    expect(promValues(q)[0]).toBeGreaterThan(0)
  })
})
