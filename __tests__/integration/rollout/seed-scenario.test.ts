/**
 * The seed article's release, as it stands: v1alpha3 objects, the custom label
 * istio-test-version, a route whose single destination has no weight. v1 -> v2 through 50/50
 * (the article's hand-made virtualservice-50-50.yaml) to 100, on the real apiserver and
 * Deployment controller.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { createTestNamespace, deleteNamespace, readSeedScenario, startSeedScenario } from '../../support/test-cluster.js'
import { routeOf, runAction, snapshot, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'

describe('the seed scenario as it stands', () => {
  let ns: string
  beforeAll(async () => {
    ns = await createTestNamespace('seed')
    await startSeedScenario(ns)
  })
  afterAll(async () => {
    await deleteNamespace(ns)
  })

  it('rolls v1 to v2 through the article’s 50/50 split to 100 %, then retires v1', async () => {
    const cluster = testCluster()
    const before = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
    expect(before.apiVersion).toBe('networking.istio.io/v1')
    const at50: KubeObject[] = []
    const { report, log } = await runAction(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '50,100'
      },
      {
        onProgress: (r) => {
          if (r.state?.canaryWeight === 50 && r.state.phase === 'progressing' && at50.length === 0) {
            at50.push({} as KubeObject)
            void snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice').then((vs) => (at50[0] = vs))
          }
        }
      }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(report.stableVersion).toBe('v2')

    // At 50 % the route is exactly the article's hand-made split.
    const article = yaml.load(readSeedScenario('virtualservice-50-50.yaml')) as KubeObject
    expect(routeOf(at50[0])).toEqual(article.spec.http[0].route)

    const vs = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    expect(vs.spec.hosts).toEqual(before.spec.hosts)
    const state = stateOf(vs)
    expect(state?.phase).toBe('promoted')
    expect(state?.history.map((h) => h.kind)).toEqual(expect.arrayContaining(['started', 'canary-ready', 'weight', 'gates', 'promoted']))

    const dr = await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')
    expect(dr.spec.subsets).toEqual([{ name: 'v2', labels: { 'istio-test-version': 'v2' } }])
    expect(dr.spec.trafficPolicy).toEqual({ loadBalancer: { simple: 'RANDOM' } })

    const v1 = await cluster.getDeployment(ns, 'istio-deployment-v1')
    const v2 = await cluster.getDeployment(ns, 'istio-deployment-v2')
    expect(v1?.spec.replicas).toBe(0)
    expect(v2?.status?.availableReplicas).toBe(1)
    expect(log.lines.join('\n')).toMatch(/Weights: v1=50 v2=50/)
  })
})
