/**
 * Drift: mid-rollout another writer (a GitOps revert, a person) changes the
 * route the rollout owns. The next guarded write sees it, the rollout stops and rolls back to
 * stable instead of writing its weights again, and the report says drift.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { ConflictError } from '../../../src/errors.js'
import { renderReport } from '../../../src/report/render-report.js'
import { runAction, stateOf, testCluster } from '../../support/rollout-harness.js'
import { applyManifests, deleteNamespace, readSeedScenario, waitFor } from '../../support/test-cluster.js'
import { canaryWeightOf, expectBackOnStable, seedInputs, seedNamespace, view, watchObjects, type Route } from './seed-rollout.js'

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

/** A foreign write; returns the resourceVersion it produced. */
type ForeignEdit = (ns: string) => Promise<string>

/** Replaces the route of the live VirtualService (GET + PUT, again on a 409 from our own writes). */
async function setRoute(ns: string, route: Route): Promise<string> {
  const cluster = testCluster()
  for (let attempt = 0; ; attempt++) {
    const vs = (await view(ns)).vs
    const next = structuredClone(vs)
    next.spec.http[0].route = route
    try {
      return (await cluster.replaceIstio(next)).metadata.resourceVersion ?? ''
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt > 5) throw err
    }
  }
}

const EDITS: Array<[string, ForeignEdit]> = [
  // GitOps re-applies the VirtualService from git: v1 only, and our state annotation gone with it.
  [
    'a GitOps revert to the manifest in git (v1 only, no state)',
    async (ns) => (await applyManifests(ns, readSeedScenario('virtualservice-v1.yaml')))[0].metadata!.resourceVersion!
  ],
  // Someone sets the split to 100/0, keeping both destinations.
  [
    'a person setting v1=100 v2=0',
    (ns) =>
      setRoute(ns, [
        { destination: { host: 'istio-service', subset: 'v1' }, weight: 100 },
        { destination: { host: 'istio-service', subset: 'v2' }, weight: 0 }
      ])
  ],
  // Someone pushes more traffic to the canary than the rollout decided.
  [
    'a person setting v1=50 v2=50',
    (ns) =>
      setRoute(ns, [
        { destination: { host: 'istio-service', subset: 'v1' }, weight: 50 },
        { destination: { host: 'istio-service', subset: 'v2' }, weight: 50 }
      ])
  ]
]

describe('drift: someone else changes the route mid-rollout', () => {
  it.concurrent.each(EDITS)('%s: the rollout stops and rolls back, it does not fight', async (_what, edit) => {
    const s = await seedNamespace('drift')
    namespaces.push(s.ns)
    // A long bake with an evaluation (and so a guarded write) every 2 s.
    const run = runAction(seedInputs(s, { steps: '20,50,100', interval: '60s', 'check-every': '2s', settle: '1s' }))
    await waitFor(
      async () => {
        const v = await view(s.ns)
        return canaryWeightOf(v.vs) === 20 && v.state?.phase === 'progressing' && v.state.stepIndex === 0
      },
      { what: `the rollout baking at 20 % in ${s.ns}` }
    )
    const vsWatch = await watchObjects(s.ns, 'VirtualService')
    const foreignRv = await edit(s.ns)

    const { report, log } = await run
    vsWatch.stop()
    expect(report.result).toBe('rolled-back')
    expect(report.error?.kind).toBe('RolledBack')
    expect(report.error?.message).toMatch(
      /^drift: route #0 of VirtualService .* has canary weight (0|50), but this rollout last set 20; someone else changed it$/
    )
    expect(log.lines.join('\n')).toMatch(/Rolling back: drift:/)
    expect(report.state?.history.map((h) => h.kind)).toEqual(expect.arrayContaining(['drift', 'rollback-started', 'rolled-back']))
    const markdown = renderReport(report)
    expect(markdown).toContain('rolled back on')
    expect(markdown).toMatch(/drift: route #\u200b?0/)

    // Not fighting: after the foreign edit, no version of the route gives the canary more than
    // the foreign writer did, and none goes back to the rollout's own 20 %.
    const modified = vsWatch.events.filter((e) => e.type === 'MODIFIED')
    const at = modified.findIndex((e) => e.obj.metadata.resourceVersion === foreignRv)
    expect(at).toBeGreaterThanOrEqual(0)
    const foreign = canaryWeightOf(modified[at].obj) ?? 0
    const versions = modified.slice(at + 1).map((e) => canaryWeightOf(e.obj))
    expect(versions.length).toBeGreaterThan(0)
    expect(versions.every((w) => w === undefined || w === 0 || w <= foreign)).toBe(true)
    expect(versions).not.toContain(20)
    const v = await expectBackOnStable(s.ns, ['rolled-back'])
    expect(stateOf(v.vs)?.reason).toMatch(/^drift:/)
    console.log(
      `drift (${_what}): canary weight ${foreign} set by the edit, then by the rollout: ${versions.map((w) => w ?? '-').join(' -> ')}; undone: ${report.undone?.join('; ') || 'nothing'}`
    )
  })
})
