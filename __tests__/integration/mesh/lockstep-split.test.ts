/**
 * Two VirtualServices in lockstep on the real mesh: the seed's istio-service and a second Service
 * over the same pods (istio-service-edge, its own VirtualService and DestinationRule), each called
 * by its own xDS caller through istiod. At every step both callers' calls split by the weights,
 * and across the whole rollout, promotion and retirement of v1 included, no call fails.
 */
import { describe, expect, it } from '@jest/globals'
import {
  applyManifests,
  callerStats,
  createTestNamespace,
  deleteNamespace,
  readSeedScenario,
  splitOf,
  startCaller,
  startSeedScenario,
  stopCaller,
  waitFor
} from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { clientWindowFailures, type Mark, recordMarks, shareOf, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { callers, cleanup } = teardownAfterAll()

const RPS = 120
// Skip this much after each write: istiod's debounce (100 ms) and the push (see docs/test-cluster.md).
const PROPAGATION_MS = 1500

const edge = `
apiVersion: v1
kind: Service
metadata: { name: istio-service-edge }
spec:
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 80 }]
  selector: { istio-test-app: istio-test-app }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: istio-destinationrule-edge }
spec:
  host: istio-service-edge
  subsets:
    - name: v1
      labels: { istio-test-version: v1 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: istio-virtualservice-edge }
spec:
  hosts: [istio-service-edge]
  http:
    - route:
        - destination: { host: istio-service-edge, subset: v1 }
`

describe('several VirtualServices in lockstep on the mesh (istiod + proxyless gRPC)', () => {
  it('splits both Services by the same weights at each step and promotes with zero failed calls', async () => {
    const ns = await createTestNamespace('mesh-lockstep')
    callers.push(
      () => stopCaller(ns, 'client'),
      () => stopCaller(ns, 'edge')
    )
    cleanup.push(() => deleteNamespace(ns))
    await startSeedScenario(ns)
    await applyManifests(ns, edge)
    await startSeedCaller(ns, 'client', RPS)
    await startCaller(ns, 'edge', { service: 'istio-service-edge', rps: RPS })
    await waitFor(
      async () => {
        const s = splitOf(await callerStats(ns, 'edge', { since: Date.now() - 1000 }))
        return s.total >= RPS / 2 && s.failed === 0 && (s.byWorkload['istio-deployment-v1'] ?? 0) === s.total
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the edge caller answered by v1' }
    )

    const t0 = Date.now()
    const marks: Mark[] = []
    const { report } = await runAction(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice, istio-virtualservice-edge',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '20,50,100',
        interval: '12s',
        settle: '2s'
      },
      { onProgress: recordMarks(marks) }
    )
    await sleep(4000)
    const tEnd = Date.now()
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    const steps = marks.filter((m) => m.phase === 'progressing' && m.weight > 0 && m.weight < 100)
    expect(steps.map((m) => m.weight)).toEqual([20, 50])
    for (const step of steps) {
      const next = marks[marks.indexOf(step) + 1]
      for (const caller of ['client', 'edge']) {
        const s = await shareOf(ns, caller, 'istio-deployment-v2', step.t + PROPAGATION_MS, next.t)
        console.log(`[mesh lockstep] weight ${step.weight}, caller ${caller}: ${s.percent.toFixed(1)} % of ${s.total} calls answered by v2`)
        expect({ caller, weight: step.weight, enough: s.total >= 800, failed: s.failed }).toEqual({
          caller,
          weight: step.weight,
          enough: true,
          failed: 0
        })
        expect(Math.abs(s.percent - step.weight)).toBeLessThanOrEqual(6)
      }
    }
    const last = marks.at(-1)!
    expect(last.phase).toBe('promoted')
    for (const caller of ['client', 'edge']) {
      const after = await shareOf(ns, caller, 'istio-deployment-v2', last.t + PROPAGATION_MS, tEnd)
      expect(after.percent).toBe(100)
      const all = splitOf(await callerStats(ns, caller, { since: t0, until: tEnd }))
      const clientWindow = clientWindowFailures((await callerStats(ns, caller)).errors)
      console.log(
        `[mesh lockstep] caller ${caller}: ${all.total} calls over the rollout, ${all.failed} failed (${clientWindow} in gRPC's route-change window)`
      )
      expect(all.total).toBeGreaterThan(RPS * 20)
      expect(all.failed - clientWindow).toBe(0)
      expect(clientWindow).toBeLessThanOrEqual(5)
    }
  })
})
