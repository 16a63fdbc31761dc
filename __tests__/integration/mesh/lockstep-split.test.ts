/**
 * Two VirtualServices in lockstep on the real mesh: the seed's istio-service and a second Service
 * over the same pods (istio-service-edge, its own VirtualService and DestinationRule), each called
 * by its own xDS caller through istiod. At every step both callers' calls split by the weights,
 * and across the whole rollout, promotion and retirement of v1 included, no call fails.
 */
import { describe, expect, it } from '@jest/globals'
import { applyManifests, readSeedScenario, startSeedScenario } from '../../support/test-cluster.js'
import { writeManifest } from '../../support/rollout-harness.js'
import { callsDuring, PROPAGATION_MS, runMarked, shareOf, startSeedCaller, stepWindows, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

const RPS = 120

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
    const ns = await meshNamespace('mesh-lockstep', ['client', 'edge'])
    await startSeedScenario(ns)
    await applyManifests(ns, edge)
    await startSeedCaller(ns, 'client', RPS)
    await startSeedCaller(ns, 'edge', RPS, 'istio-deployment-v1', 'istio-service-edge')

    const { report, marks, t0, tEnd } = await runMarked(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice, istio-virtualservice-edge',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '20,50,100',
        interval: '12s',
        settle: '2s'
      },
      4000
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    const steps = stepWindows(marks)
    expect(steps.map((m) => m.weight)).toEqual([20, 50])
    for (const step of steps) {
      for (const caller of ['client', 'edge']) {
        const s = await shareOf(ns, caller, 'istio-deployment-v2', step.since, step.until)
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
      const { clientWindow, ...all } = await callsDuring(ns, caller, t0, tEnd)
      console.log(
        `[mesh lockstep] caller ${caller}: ${all.total} calls over the rollout, ${all.failed} failed (${clientWindow} in gRPC's route-change window)`
      )
      expect(all.total).toBeGreaterThan(RPS * 20)
      expect(all.failed - clientWindow).toBe(0)
      expect(clientWindow).toBeLessThanOrEqual(5)
    }
  })
})
