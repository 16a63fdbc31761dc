/**
 * Make-before-break with real calls through istiod: a hand-made promotion that removes the old
 * subset before moving the route fails calls at once; one that routes to a subset the
 * DestinationRule does not have yet fails them once gRPC's xDS watch expires (15 s); the action,
 * doing the same change, fails none. And what `settle: 0s` costs, reported.
 */
import { describe, expect, it } from '@jest/globals'
import {
  applyManifests,
  callerStats,
  readSeedScenario,
  splitOf,
  startSeedScenario,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { clientWindowFailures, type Mark, recordMarks, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { meshNamespace } = teardownAfterAll()

const RPS = 100

/** A namespace with the seed scenario running; its caller 'client' is stopped after the file's tests. */
async function seedMeshNamespace(prefix: string): Promise<string> {
  const ns = await meshNamespace(prefix, ['client'])
  await startSeedScenario(ns)
  return ns
}

/** The seed's DestinationRule with only these subsets. */
function destinationRule(subsets: string[]): string {
  const all = readSeedScenario('destinationrule-v1-v2.yaml')
  const head = all.slice(0, all.indexOf('  subsets:'))
  return `${head}  subsets:\n${subsets.map((v) => `  - name: ${v}\n    labels:\n      istio-test-version: ${v}\n`).join('')}`
}

/** The seed's VirtualService sending everything to one subset. */
function routeTo(subset: string): string {
  return readSeedScenario('virtualservice-v1.yaml').replace(/subset: v1/, `subset: ${subset}`)
}

/** Calls that started in [since, until): let them finish (a second or two) before asking. */
async function failedSince(ns: string, since: number, until = Date.now()) {
  const s = splitOf(await callerStats(ns, 'client', { since, until }))
  return { total: s.total, failed: s.failed, byWorkload: s.byWorkload }
}

async function atFiftyFifty(ns: string): Promise<void> {
  await applyManifests(ns, [readSeedScenario('deployment-v2.yaml'), readSeedScenario('destinationrule-v1-v2.yaml')])
  await waitForDeploymentCondition(ns, 'istio-deployment-v2', 'Available')
  await applyManifests(ns, readSeedScenario('virtualservice-50-50.yaml'))
}

describe('make-before-break on real traffic', () => {
  it('a helper that removes the old subset before the route fails calls at once', async () => {
    const ns = await seedMeshNamespace('mesh-mbb-subset')
    await startSeedCaller(ns, 'client', RPS)
    await atFiftyFifty(ns)
    await sleep(2000)
    const t0 = Date.now()
    // Wrong order: break (drop subset v1) before make (route all to v2).
    await applyManifests(ns, destinationRule(['v2']))
    await sleep(3000)
    await applyManifests(ns, routeTo('v2'))
    await sleep(2000)
    const r = await failedSince(ns, t0, Date.now() - 1000)
    const { errors } = await callerStats(ns, 'client')
    console.log(`[mesh] subset removed before route: ${r.failed} of ${r.total} calls failed; ${JSON.stringify(errors)}`)
    expect(r.total).toBeGreaterThan(RPS * 3)
    expect(r.failed).toBeGreaterThan(RPS) // about half the calls for 3 s
  })

  it('a helper that routes to a subset before it exists fails calls once the xDS watch expires (15 s)', async () => {
    const ns = await seedMeshNamespace('mesh-mbb-route')
    await applyManifests(ns, readSeedScenario('deployment-v2.yaml'))
    await waitForDeploymentCondition(ns, 'istio-deployment-v2', 'Available')
    await startSeedCaller(ns, 'client', RPS)
    const t0 = Date.now()
    // Wrong order: make the route to v2 before the DestinationRule has subset v2.
    await applyManifests(ns, readSeedScenario('virtualservice-50-50.yaml'))
    await sleep(12_000)
    const early = await failedSince(ns, t0, t0 + 10_000)
    await sleep(10_000)
    const late = await failedSince(ns, t0 + 16_000, t0 + 20_000)
    await applyManifests(ns, readSeedScenario('destinationrule-v1-v2.yaml'))
    const { errors } = await callerStats(ns, 'client')
    console.log(
      `[mesh] route before subset: ${early.failed}/${early.total} failed in the first 10 s, ${late.failed}/${late.total} in 16-20 s; ${JSON.stringify(errors)}`
    )
    // gRPC keeps the old routes while it waits for the missing cluster ...
    expect(early.failed).toBe(0)
    // ... and then fails the share routed to it.
    expect(late.failed).toBeGreaterThan(late.total / 4)
  })

  it('the action, doing the same change, fails none; with settle 0s it is reported', async () => {
    const ns = await seedMeshNamespace('mesh-mbb-action')
    await startSeedCaller(ns, 'client', RPS)
    const t0 = Date.now()
    const marks: Mark[] = []
    const { report } = await runAction(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '50,100',
        interval: '3s',
        settle: '5s'
      },
      { onProgress: recordMarks(marks) }
    )
    const tDone = Date.now()
    await sleep(2000)
    expect(report.result).toBe('promoted')
    const r = await failedSince(ns, t0, tDone)
    expect(r.total).toBeGreaterThan(RPS * 10)
    expect(r.byWorkload['istio-deployment-v2']).toBeGreaterThan(RPS)
    // Failures in gRPC-Go's own route-change window are counted and printed; any other failure would
    // be the write order's, and there must be none.
    const { errors } = await callerStats(ns, 'client')
    const clientWindow = clientWindowFailures(errors)
    console.log(
      `[mesh] the action (settle 5s): ${r.failed} of ${r.total} calls failed; gRPC client window ${clientWindow}; ${JSON.stringify(errors)}`
    )
    expect(r.failed - clientWindow).toBe(0)
    // At most a few per route change (the promotion changes the route three times).
    expect(clientWindow).toBeLessThanOrEqual(3)

    // The same with settle 0s: the subset goes in the same breath as the route. Reported, not
    // asserted: whether calls fail depends on which of istiod's pushes the client gets first.
    const ns0 = await seedMeshNamespace('mesh-mbb-settle0')
    await startSeedCaller(ns0, 'client', RPS)
    const t1 = Date.now()
    const r0 = await runAction({
      manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
      'virtual-service': 'istio-virtualservice',
      namespace: ns0,
      'version-label': 'istio-test-version',
      steps: '50,100',
      interval: '3s',
      settle: '0s'
    })
    const tDone0 = Date.now()
    await sleep(2000)
    expect(r0.report.result).toBe('promoted')
    const f0 = await failedSince(ns0, t1, tDone0)
    const errors0 = (await callerStats(ns0, 'client')).errors
    console.log(`[mesh] settle 0s: ${f0.failed} of ${f0.total} calls failed; ${JSON.stringify(errors0)}`)
    expect(f0.total).toBeGreaterThan(RPS * 5)
  })
})
