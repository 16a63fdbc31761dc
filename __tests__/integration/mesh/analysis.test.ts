/**
 * Istio's own verdict on every write: the analyzers `istioctl analyze` runs (built from the pinned
 * istio.io/istio, run by `meshsim analyze` against the live apiserver) find nothing wrong in the
 * namespace after each write of a whole rollout with its promotion, and of a rollback. First, the
 * same analysis is shown to catch a route to a subset that does not exist.
 */
import { describe, expect, it } from '@jest/globals'
import type { V1Deployment } from '@kubernetes/client-node'
import * as yaml from 'js-yaml'
import {
  type AnalysisMessage,
  analyzeNamespace,
  applyManifests,
  clients,
  ERROR_RATIO_ANNOTATION,
  loadTestEnv,
  parseManifests,
  readSeedScenario,
  startSeedScenario
} from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

// The simulated pods have no sidecar container (meshsim plays their data plane): Istio says so.
const EXPECTED_OF_SIMULATION = new Set(['IST0103'])

function problems(messages: AnalysisMessage[]): AnalysisMessage[] {
  return messages.filter((m) => m.level !== 'Info' && !EXPECTED_OF_SIMULATION.has(m.code))
}

async function revisions(ns: string): Promise<string> {
  const get = async (plural: string, name: string): Promise<string> => {
    try {
      const o = (await clients.custom.getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: ns,
        plural,
        name
      })) as {
        metadata: { resourceVersion: string }
      }
      return o.metadata.resourceVersion
    } catch {
      return 'none'
    }
  }
  return `vs=${await get('virtualservices', 'istio-virtualservice')} dr=${await get('destinationrules', 'istio-destinationrule')}`
}

/**
 * Analyzes `ns` every time its VirtualService or DestinationRule changes, until `done` resolves.
 * Returns one verdict per state seen (a write landing while an analysis runs is seen with the next).
 */
async function analyzeEveryWrite<T>(
  ns: string,
  done: Promise<T>
): Promise<{ result: T; verdicts: Array<{ state: string; problems: AnalysisMessage[]; exitCode: number }> }> {
  const verdicts: Array<{ state: string; problems: AnalysisMessage[]; exitCode: number }> = []
  let finished = false
  const result = done.finally(() => (finished = true))
  let last = ''
  for (;;) {
    const stop = finished
    const state = await revisions(ns)
    if (state !== last) {
      const a = await analyzeNamespace(ns)
      verdicts.push({ state, problems: problems(a.messages), exitCode: a.exitCode })
      last = state
    }
    if (stop) break
    await sleep(100)
  }
  return { result: await result, verdicts }
}

describe("Istio's analysis after every write", () => {
  it('catches a route to a subset the DestinationRule does not have', async () => {
    const ns = await meshNamespace('mesh-analyze-bad', [])
    await startSeedScenario(ns)
    const before = await analyzeNamespace(ns)
    expect(problems(before.messages)).toEqual([])
    await applyManifests(ns, readSeedScenario('virtualservice-50-50.yaml'))
    const after = await analyzeNamespace(ns)
    expect(after.exitCode).toBe(1)
    expect(problems(after.messages)).toEqual([
      expect.objectContaining({ code: 'IST0101', level: 'Error', message: expect.stringMatching(/subset.*v2/) })
    ])
  })

  it('is clean after each write of a whole rollout and its promotion', async () => {
    const ns = await meshNamespace('mesh-analyze-promote', [])
    await startSeedScenario(ns)
    const { result, verdicts } = await analyzeEveryWrite(
      ns,
      runAction({
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '25,50,100',
        interval: '4s',
        settle: '4s'
      })
    )
    console.log(`[mesh] analysis of a rollout and promotion: ${verdicts.length} states analyzed`)
    expect(result.report.result).toBe('promoted')
    // initial, canary subset added, 25, 50, 100, promoted (+ old subset removed): at least 5 states.
    expect(verdicts.length).toBeGreaterThanOrEqual(5)
    expect(verdicts.filter((v) => v.exitCode !== 0 || v.problems.length > 0)).toEqual([])
  })

  it('is clean after each write of a rollback', async () => {
    const ns = await meshNamespace('mesh-analyze-rollback', ['client'])
    await startSeedScenario(ns)
    await startSeedCaller(ns, 'client', 40)
    const d = parseManifests(readSeedScenario('deployment-v2.yaml'))[0] as V1Deployment
    d.spec!.template.metadata!.annotations = { [ERROR_RATIO_ANNOTATION]: '0.5' }
    const { result, verdicts } = await analyzeEveryWrite(
      ns,
      runAction({
        manifests: writeManifest(yaml.dump(d)),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '25,50,100',
        interval: '20s',
        settle: '4s',
        'check-every': '5s',
        'prometheus-url': loadTestEnv().prometheusUrl,
        'success-rate': '95',
        'min-requests': '5'
      })
    )
    console.log(`[mesh] analysis of a rollback: ${verdicts.length} states analyzed`)
    expect(result.report.result).toBe('rolled-back')
    expect(verdicts.length).toBeGreaterThanOrEqual(4)
    expect(verdicts.filter((v) => v.exitCode !== 0 || v.problems.length > 0)).toEqual([])
  })
})
