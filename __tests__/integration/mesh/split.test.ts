/**
 * The weights the action writes move real traffic: the seed scenario as it stands, with callers
 * whose calls go through gRPC's proxyless xDS client fed by a real istiod (meshsim). The split is
 * counted from the calls themselves, step by step; and a client without xDS ignores the weights.
 */
import { describe, expect, it } from '@jest/globals'
import { applyManifests, readSeedScenario, startCaller, startSeedScenario, waitForDeploymentCondition } from '../../support/test-cluster.js'
import { writeManifest } from '../../support/rollout-harness.js'
import { callsDuring, PROPAGATION_MS, runMarked, shareOf, sleep, startSeedCaller, stepWindows, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

// Calls a step's window must hold for ±5 percentage points to be a fair test (at 50 %, one
// standard deviation of the observed share is 50/sqrt(n) = 1.3 points with n = 1500).
const RPS = 150

describe('traffic follows the weights (istiod + proxyless gRPC)', () => {
  it('splits real calls by the weights at each step, 50/50 included, and promotes v1 -> v2 with zero failed calls', async () => {
    const ns = await meshNamespace('mesh-split', ['client'])
    await startSeedScenario(ns)
    await startSeedCaller(ns, 'client', RPS)

    const { report, marks, t0, tEnd } = await runMarked(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
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
    for (const step of steps) {
      const s = await shareOf(ns, 'client', 'istio-deployment-v2', step.since, step.until)
      expect({ weight: step.weight, calls: s.total >= 1000, failed: s.failed }).toEqual({ weight: step.weight, calls: true, failed: 0 })
      console.log(`[mesh] weight ${step.weight}: ${s.percent.toFixed(1)} % of ${s.total} calls answered by v2`)
      expect(Math.abs(s.percent - step.weight)).toBeLessThanOrEqual(5)
    }
    // After the promotion every call lands on v2.
    const last = marks.at(-1)!
    expect(last.phase).toBe('promoted')
    const after = await shareOf(ns, 'client', 'istio-deployment-v2', last.t + PROPAGATION_MS, tEnd)
    expect(after.total).toBeGreaterThan(RPS)
    expect(after.percent).toBe(100)

    // Zero failed calls over the whole rollout, retirement of v1 included, but for gRPC-Go's own
    // route-change window (at most a few per route change: five here), printed when it shows.
    const { clientWindow, ...all } = await callsDuring(ns, 'client', t0, tEnd)
    expect(all.total).toBeGreaterThan(RPS * 30)
    if (all.failed) console.log(`[mesh] rollout: ${all.failed} failed calls, ${clientWindow} in gRPC's route-change window`)
    expect(all.failed - clientWindow).toBe(0)
    expect(clientWindow).toBeLessThanOrEqual(5)
  })

  it('a client without xDS (straight to the pods) ignores the weights; one through istiod follows them', async () => {
    const ns = await meshNamespace('mesh-plain', ['sidecar', 'plain'])
    await startSeedScenario(ns)
    await applyManifests(ns, [readSeedScenario('deployment-v2.yaml'), readSeedScenario('destinationrule-v1-v2.yaml')])
    await waitForDeploymentCondition(ns, 'istio-deployment-v2', 'Available')
    const vs = readSeedScenario('virtualservice-50-50.yaml')
      .replace(/weight: 50(\s+- destination:)/, 'weight: 90$1')
      .replace(/weight: 50\s*$/, 'weight: 10\n')
    expect(vs).toMatch(/weight: 90[\s\S]*weight: 10/)
    await applyManifests(ns, vs)

    await startSeedCaller(ns, 'sidecar', 100, null)
    await startCaller(ns, 'plain', { service: 'istio-service', rps: 100, mode: 'plain' })
    await sleep(2000)
    const since = Date.now()
    await sleep(10_000)
    const until = Date.now()
    const viaXds = await shareOf(ns, 'sidecar', 'istio-deployment-v2', since, until)
    const plain = await shareOf(ns, 'plain', 'istio-deployment-v2', since, until)
    expect(viaXds.failed + plain.failed).toBe(0)
    expect(viaXds.total).toBeGreaterThan(500)
    expect(plain.total).toBeGreaterThan(500)
    // 90/10 by the VirtualService through istiod; one pod each, so 50/50, without it.
    expect(Math.abs(viaXds.percent - 10)).toBeLessThanOrEqual(5)
    console.log(
      `[mesh] VirtualService 90/10: through istiod ${viaXds.percent.toFixed(1)} % to v2, plain client ${plain.percent.toFixed(1)} %`
    )
    expect(Math.abs(plain.percent - 50)).toBeLessThanOrEqual(7)
  })
})
