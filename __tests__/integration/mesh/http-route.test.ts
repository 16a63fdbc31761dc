/**
 * An HTTPRoute rollout through the real istiod: a GAMMA HTTPRoute (parent: the Service
 * istio-service) over per-version Services, and callers whose calls go through gRPC's proxyless
 * xDS client (meshsim). istiod translates the HTTPRoute into the mesh's routes for
 * istio-service; the split is counted from the calls themselves, step by step.
 */
import { describe, expect, it } from '@jest/globals'
import { applyManifests, readSeedScenario, waitForDeploymentCondition } from '../../support/test-cluster.js'
import { writeManifest } from '../../support/rollout-harness.js'
import { callsDuring, PROPAGATION_MS, runMarked, shareOf, startSeedCaller, stepWindows, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

const RPS = 150

function versionService(version: string): string {
  return `apiVersion: v1
kind: Service
metadata: { name: istio-service-${version} }
spec:
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 80 }]
  selector: { istio-test-app: istio-test-app, istio-test-version: ${version} }
`
}

const httpRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: istio-service }
spec:
  parentRefs: [{ group: "", kind: Service, name: istio-service, port: 80 }]
  rules:
    - name: primary
      backendRefs: [{ name: istio-service-v1, port: 80 }]
`

describe('an HTTPRoute rollout through istiod (GAMMA, proxyless gRPC)', () => {
  it('splits real calls by the backendRef weights at each step and promotes v1 -> v2 with zero failed calls', async () => {
    const ns = await meshNamespace('mesh-hr', ['client'])
    await applyManifests(ns, [readSeedScenario('deployment-v1.yaml'), readSeedScenario('service.yaml'), versionService('v1'), httpRoute])
    await waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available')
    await startSeedCaller(ns, 'client', RPS)

    const { report, marks, t0, tEnd } = await runMarked(
      {
        manifests: writeManifest(`${readSeedScenario('deployment-v2.yaml')}\n---\n${versionService('v2')}`),
        'http-route': 'istio-service',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '20,50,80,100',
        interval: '12s',
        settle: '2s'
      },
      4000
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')

    const steps = stepWindows(marks)
    expect(steps.map((m) => m.weight)).toEqual([20, 50, 80])
    const observed: string[] = []
    for (const step of steps) {
      const s = await shareOf(ns, 'client', 'istio-deployment-v2', step.since, step.until)
      observed.push(`weight ${step.weight}: ${s.percent.toFixed(1)} % of ${s.total} calls to v2, ${s.failed} failed`)
      expect({ weight: step.weight, calls: s.total >= 1000, failed: s.failed }).toEqual({ weight: step.weight, calls: true, failed: 0 })
      expect(Math.abs(s.percent - step.weight)).toBeLessThanOrEqual(5)
    }
    console.log(`[mesh] HTTPRoute: ${observed.join('; ')}`)
    const last = marks.at(-1)!
    expect(last.phase).toBe('promoted')
    const after = await shareOf(ns, 'client', 'istio-deployment-v2', last.t + PROPAGATION_MS, tEnd)
    expect(after.total).toBeGreaterThan(RPS)
    expect(after.percent).toBe(100)

    const { clientWindow, ...all } = await callsDuring(ns, 'client', t0, tEnd)
    expect(all.total).toBeGreaterThan(RPS * 30)
    console.log(`[mesh] HTTPRoute rollout: ${all.total} calls, ${all.failed} failed (${clientWindow} in gRPC's route-change window)`)
    expect(all.failed - clientWindow).toBe(0)
    expect(clientWindow).toBeLessThanOrEqual(5)
  })
})
