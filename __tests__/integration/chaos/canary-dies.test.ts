/**
 * The canary's pods are Ready (the Deployment wait passes, traffic moves), then
 * die. The Kubernetes gate catches it during the bake, with no metrics at all, and the rollback
 * puts the canary weight to 0 before anything else changes: before the canary destination leaves
 * the route and before the DestinationRule loses the subset.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { stateOf } from '../../../src/rollout/state-codec.js'
import { runAction } from '../../support/rollout-harness.js'
import { deleteNamespace } from '../../support/test-cluster.js'
import { canaryWeightOf, expectBackOnStable, seedInputs, seedNamespace, watchObjects } from './seed-rollout.js'

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

describe('canary pods die after taking traffic', () => {
  it('the Kubernetes gate rolls back: weight 0 first, then the destination, then the subset', async () => {
    // Ready for 8 s: longer than the Deployment wait (~1-2 s), shorter than the 30 s bake.
    const s = await seedNamespace('canary-dies', { behaviour: 'fail-after', opts: { failAfter: '8s', restartInterval: '2s' } })
    namespaces.push(s.ns)
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    const drWatch = await watchObjects(s.ns, 'DestinationRule')
    const { report, log } = await runAction(seedInputs(s, { steps: '20,50,100', interval: '30s', 'check-every': '2s', settle: '1s' }))
    vsWatch.stop()
    drWatch.stop()

    expect(report.result).toBe('rolled-back')
    expect(report.error?.kind).toBe('RolledBack')
    expect(report.error?.message).toMatch(/^gates failed: 1 of 1 failed evaluations allowed, rolling back — /)
    // The reason names the check that failed, not only that something did.
    expect(report.error?.message).toMatch(/pods-ready .* fail: not ready: istio-deployment-v2-/)
    const kinds = report.state?.history.map((h) => h.kind) ?? []
    // Traffic had moved (20 %), the gates then failed during the bake, and the rollback followed.
    expect(kinds.indexOf('weight')).toBeGreaterThan(kinds.indexOf('canary-ready'))
    const failedGate = report.state?.history.find((h) => h.kind === 'gates' && h.evaluation?.verdict === 'fail')
    expect(failedGate?.canaryWeight).toBe(20)
    expect(failedGate?.evaluation?.checks.find((c) => c.name === 'pods-ready')?.verdict).toBe('fail')
    expect(log.lines.join('\n')).not.toMatch(/Weights: v1=50/)

    // The fixed order, as the undo list says and as the apiserver stored the versions.
    expect(report.undone?.slice(0, 3)).toEqual([
      'canary weight 20% → 0% (v1 100%)',
      'destination v2 removed from the route',
      'subset v2 removed from DestinationRule istio-destinationrule'
    ])
    const vsVersions = vsWatch.events.filter((e) => e.type === 'MODIFIED')
    const weightZero = vsVersions.find((e) => canaryWeightOf(e.obj) === 0 && stateOf(e.obj)?.phase === 'rolling-back')
    const destinationGone = vsVersions.find(
      (e, i) => i > 0 && canaryWeightOf(e.obj) === undefined && canaryWeightOf(vsVersions[i - 1].obj) !== undefined
    )
    const subsetGone = drWatch.events.find(
      (e) => e.type === 'MODIFIED' && !(e.obj.spec.subsets as Array<{ name: string }>).some((x) => x.name === 'v2')
    )
    expect(weightZero).toBeDefined()
    expect(destinationGone).toBeDefined()
    expect(subsetGone).toBeDefined()
    // At weight 0 the canary destination and subset were both still there (make before break, reversed).
    expect(weightZero!.obj.spec.http[0].route.map((r: { destination: { subset: string } }) => r.destination.subset)).toEqual(['v1', 'v2'])
    expect(weightZero!.at).toBeLessThan(destinationGone!.at)
    expect(destinationGone!.at).toBeLessThan(subsetGone!.at)
    console.log(
      `canary dies: weight 0 -> destination removed ${destinationGone!.at - weightZero!.at} ms -> subset removed ${subsetGone!.at - destinationGone!.at} ms later`
    )
    await expectBackOnStable(s.ns, ['rolled-back'])
  })
})
