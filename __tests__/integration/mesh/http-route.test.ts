/**
 * An HTTPRoute rollout through the real istiod: a GAMMA HTTPRoute (parent: the Service
 * istio-service) over per-version Services, and callers whose calls go through gRPC's proxyless
 * xDS client (meshsim). istiod translates the HTTPRoute into the mesh's routes for
 * istio-service; the split is counted from the calls themselves, step by step.
 */
import { describe, expect, it } from '@jest/globals'
import {
  applyManifests,
  callerStats,
  createTestNamespace,
  deleteNamespace,
  readSeedScenario,
  splitOf,
  stopCaller,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { clientWindowFailures, type Mark, recordMarks, shareOf, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { callers, cleanup } = teardownAfterAll()

const RPS = 150
const PROPAGATION_MS = 1500

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
    const ns = await createTestNamespace('mesh-hr')
    callers.push(() => stopCaller(ns, 'client'))
    cleanup.push(() => deleteNamespace(ns))
    await applyManifests(ns, [readSeedScenario('deployment-v1.yaml'), readSeedScenario('service.yaml'), versionService('v1'), httpRoute])
    await waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available')
    await startSeedCaller(ns, 'client', RPS)

    const t0 = Date.now()
    const marks: Mark[] = []
    const { report } = await runAction(
      {
        manifests: writeManifest(`${readSeedScenario('deployment-v2.yaml')}\n---\n${versionService('v2')}`),
        'http-route': 'istio-service',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '20,50,80,100',
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
    expect(steps.map((m) => m.weight)).toEqual([20, 50, 80])
    const observed: string[] = []
    for (const step of steps) {
      const next = marks[marks.indexOf(step) + 1]
      const s = await shareOf(ns, 'client', 'istio-deployment-v2', step.t + PROPAGATION_MS, next.t)
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

    const all = splitOf(await callerStats(ns, 'client', { since: t0, until: tEnd }))
    expect(all.total).toBeGreaterThan(RPS * 30)
    const clientWindow = clientWindowFailures((await callerStats(ns, 'client')).errors)
    console.log(`[mesh] HTTPRoute rollout: ${all.total} calls, ${all.failed} failed (${clientWindow} in gRPC's route-change window)`)
    expect(all.failed - clientWindow).toBe(0)
    expect(clientWindow).toBeLessThanOrEqual(5)
  })
})
