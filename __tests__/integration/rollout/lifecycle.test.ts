/**
 * The rollout's life on the real cluster: a crashing canary never gets traffic, a pause is
 * continued by a promote from a second run, an abort mid-rollout brings everything back, and a
 * dry run changes nothing.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import {
  clients,
  createTestNamespace,
  deleteNamespace,
  readSeedScenario,
  withBehaviour,
  startSeedScenario
} from '../../support/test-cluster.js'
import { routeOf, runAction, snapshot, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((n) => deleteNamespace(n)))
})

/** A namespace with the seed's starting state: v1 serving 100 %. */
async function seedNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await startSeedScenario(ns)
  return ns
}

function seedInputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    ...extra
  }
}

async function expectBackOnV1(ns: string): Promise<void> {
  const cluster = testCluster()
  const vs = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
  expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v1' }, weight: 100 }])
  const dr = await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')
  expect(dr.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
  const v2 = await cluster.getDeployment(ns, 'istio-deployment-v2')
  expect(v2?.spec.replicas).toBe(0)
  expect(await cluster.getLease(ns, 'istio-canary-istio-virtualservice')).toBeUndefined()
}

describe('rollout lifecycle on the local cluster', () => {
  it('rolls back a crashing canary before any traffic reaches it', async () => {
    const ns = await seedNamespace('crash')
    const crashing = withBehaviour(readSeedScenario('deployment-v2.yaml'), 'crash')
    crashing.spec!.progressDeadlineSeconds = 8
    const { report } = await runAction({ ...seedInputs(ns), manifests: writeManifest(yaml.dump(crashing)), 'progress-deadline': '30s' })
    expect(report.result).toBe('rolled-back')
    expect(report.error?.message).toMatch(/did not become available: .*(CrashLoopBackOff|ProgressDeadlineExceeded)/)
    const state = report.state!
    expect(state.phase).toBe('rolled-back')
    // Never any traffic: no weight event in the history, and the route never named v2.
    expect(state.history.filter((h) => h.kind === 'weight')).toEqual([])
    const vs = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v1' } }])
    const dr = await snapshot(testCluster(), 'DestinationRule', ns, 'istio-destinationrule')
    expect(dr.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
    expect((await testCluster().getDeployment(ns, 'istio-deployment-v2'))?.spec.replicas).toBe(0)
  })

  it('pauses at a pause step, and a second run promotes', async () => {
    const ns = await seedNamespace('pause')
    const first = await runAction(seedInputs(ns, { steps: '25,pause,100' }))
    expect(first.report.result).toBe('paused')
    expect(first.report.canaryWeight).toBe(25)
    const paused = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(paused).map((d) => [d.destination.subset, d.weight])).toEqual([
      ['v1', 75],
      ['v2', 25]
    ])
    expect(stateOf(paused)?.phase).toBe('paused')
    // The lock is released while paused: a person may take days to decide.
    expect(await testCluster().getLease(ns, 'istio-canary-istio-virtualservice')).toBeUndefined()

    const status = await runAction({ command: 'status', 'virtual-service': 'istio-virtualservice', namespace: ns })
    expect(status.report).toMatchObject({ result: 'unchanged', phase: 'paused', canaryWeight: 25, canaryVersion: 'v2' })
    const afterStatus = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(afterStatus.metadata.resourceVersion).toBe(paused.metadata.resourceVersion)

    const second = await runAction({
      command: 'promote',
      'virtual-service': 'istio-virtualservice',
      namespace: ns,
      'version-label': 'istio-test-version'
    })
    expect(second.report.error).toBeUndefined()
    expect(second.report.result).toBe('promoted')
    const vs = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    expect(stateOf(vs)?.history.map((h) => h.kind)).toEqual(expect.arrayContaining(['paused', 'promote-requested', 'promoted']))
  })

  it('aborts a paused rollout back to 100 % stable, and a second abort changes nothing', async () => {
    const ns = await seedNamespace('abort')
    const first = await runAction(seedInputs(ns, { steps: '10,50,pause,100' }))
    expect(first.report).toMatchObject({ result: 'paused', canaryWeight: 50 })
    const aborted = await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns })
    expect(aborted.report.result).toBe('aborted')
    expect(aborted.report.undone).toEqual([
      'canary weight 50% → 0% (v1 100%)',
      'destination v2 removed from the route',
      'subset v2 removed from DestinationRule istio-destinationrule',
      'Deployment istio-deployment-v2 scaled to 0'
    ])
    await expectBackOnV1(ns)
    const before = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    const again = await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns })
    expect(again.report.result).toBe('unchanged')
    expect((await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')).metadata.resourceVersion).toBe(
      before.metadata.resourceVersion
    )
  })

  it('refuses a second version while one is mid-rollout, and supersedes it when asked', async () => {
    const ns = await seedNamespace('supersede')
    expect((await runAction(seedInputs(ns, { steps: '30,pause,100' }))).report.result).toBe('paused')
    const v3 = readSeedScenario('deployment-v2.yaml').replaceAll('v2', 'v3')
    const refused = await runAction({ ...seedInputs(ns), manifests: writeManifest(v3) })
    expect(refused.report.result).toBe('unchanged')
    expect(refused.report.error?.message).toMatch(/mid-rollout of "v2".*set input 'supersede' to true/)
    const superseded = await runAction({ ...seedInputs(ns, { steps: '50,100', supersede: 'true' }), manifests: writeManifest(v3) })
    expect(superseded.report.error).toBeUndefined()
    expect(superseded.report.result).toBe('promoted')
    expect(superseded.report.undone).toContain('Deployment istio-deployment-v2 scaled to 0')
    const vs = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v3' }, weight: 100 }])
  })

  it('warns in preflight when a GitOps controller also writes the VirtualService', async () => {
    const ns = await seedNamespace('gitops')
    // Flux's kustomize-controller re-applies the VirtualService: its field manager shows in managedFields.
    const vs = await clients.objects.read({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'istio-virtualservice', namespace: ns }
    })
    vs.metadata!.labels = { ...vs.metadata!.labels, 'kustomize.toolkit.fluxcd.io/name': 'apps' }
    await clients.objects.replace(vs, undefined, undefined, 'kustomize-controller')
    const { report } = await runAction(seedInputs(ns, { 'dry-run': 'true' }))
    expect(report.error).toBeUndefined()
    expect(report.warnings.join('\n')).toMatch(
      /also managed by kustomize-controller; configure it to ignore \.spec\.http\[\]\.route\[\]\.weight/
    )
  })

  it('dry-run validates every write with the API server and changes nothing', async () => {
    const ns = await seedNamespace('dryrun')
    const cluster = testCluster()
    const vsBefore = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
    const drBefore = await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')
    const { report } = await runAction(seedInputs(ns, { 'dry-run': 'true' }))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('unchanged')
    expect(report.plan?.join('\n')).toMatch(/set weights v1=90 v2=10/)
    expect((await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')).metadata.resourceVersion).toBe(
      vsBefore.metadata.resourceVersion
    )
    expect((await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')).metadata.resourceVersion).toBe(
      drBefore.metadata.resourceVersion
    )
    expect(await cluster.getDeployment(ns, 'istio-deployment-v2')).toBeUndefined()
  })
})
