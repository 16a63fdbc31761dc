/**
 * A version is only retired when no route anywhere still sends traffic to it. The seed scenario
 * (v1 stable, v2 canary on route "primary") with one more route to a subset of istio-service,
 * placed in the same VirtualService, in another VirtualService of the namespace, or in another
 * namespace: after promotion v1 keeps running (retired: false, the route named) until that route
 * moves, then a promote run retires it; an abort keeps the canary running while a foreign route
 * sends traffic to it.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { outputsOf } from '../../../src/report/outputs.js'
import { runAction, testCluster } from '../../support/rollout-harness.js'
import { applyManifests, createTestNamespace, deleteNamespace } from '../../support/test-cluster.js'
import { CANARY_DEPLOYMENT, DR, seedInputs, seedNamespace, STABLE_DEPLOYMENT, VS, type Seed } from '../chaos/seed-rollout.js'

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

type Placement = 'same VirtualService' | 'another VirtualService of the namespace' | 'another namespace'
const PLACEMENTS: Placement[] = ['same VirtualService', 'another VirtualService of the namespace', 'another namespace']

interface Fixture {
  seed: Seed
  /** Where the foreign route lives, and how the report names it. */
  where: { namespace: string; name: string; ref: string }
  /** Points the foreign route at another subset (the "move it" a user would do). */
  moveTo(subset: string): Promise<void>
}

/** The seed's VirtualService with two named routes: beta-testers (header match) and primary. */
function twoRoutes(subsetOfBeta: string): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: VS },
    spec: {
      hosts: ['istio-service'],
      http: [
        {
          name: 'beta-testers',
          match: [{ headers: { 'x-beta': { exact: 'true' } } }],
          route: [{ destination: { host: 'istio-service', subset: subsetOfBeta } }]
        },
        { name: 'primary', route: [{ destination: { host: 'istio-service', subset: 'v1' } }] }
      ]
    }
  }
}

function foreignVs(name: string, host: string, subset: string): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name },
    spec: { hosts: [`${name}.example.com`], http: [{ name: 'all', route: [{ destination: { host, subset } }] }] }
  }
}

async function fixture(placement: Placement, foreignSubset: string): Promise<Fixture> {
  const seed = await seedNamespace('retire')
  namespaces.push(seed.ns)
  const ns = seed.ns
  if (placement === 'same VirtualService') {
    await applyManifests(ns, JSON.stringify(twoRoutes(foreignSubset)))
    return {
      seed,
      where: { namespace: ns, name: VS, ref: `VirtualService ${ns}/${VS} http route "beta-testers"` },
      moveTo: async (subset) => {
        const c = testCluster()
        const vs = (await c.getIstio('VirtualService', ns, VS))!
        vs.spec.http[0].route = [{ destination: { host: 'istio-service', subset } }]
        await c.replaceIstio(vs)
      }
    }
  }
  if (placement === 'another VirtualService of the namespace') {
    await applyManifests(ns, JSON.stringify(foreignVs('internal', 'istio-service', foreignSubset)))
    return {
      seed,
      where: { namespace: ns, name: 'internal', ref: `VirtualService ${ns}/internal http route "all"` },
      moveTo: (subset) => applyManifests(ns, JSON.stringify(foreignVs('internal', 'istio-service', subset))).then(() => undefined)
    }
  }
  const other = await createTestNamespace('retire-caller')
  namespaces.push(other)
  const host = `istio-service.${ns}.svc.cluster.local`
  await applyManifests(other, JSON.stringify(foreignVs('caller', host, foreignSubset)))
  return {
    seed,
    where: { namespace: other, name: 'caller', ref: `VirtualService ${other}/caller http route "all"` },
    moveTo: (subset) => applyManifests(other, JSON.stringify(foreignVs('caller', host, subset))).then(() => undefined)
  }
}

function inputsFor(f: Fixture, placement: Placement, extra: Record<string, string> = {}): Record<string, string> {
  return seedInputs(f.seed, { steps: '50,100', ...(placement === 'same VirtualService' ? { route: 'primary' } : {}), ...extra })
}

async function objects(ns: string) {
  const c = testCluster()
  const [dr, stable, canary] = await Promise.all([
    c.getIstio('DestinationRule', ns, DR),
    c.getDeployment(ns, STABLE_DEPLOYMENT),
    c.getDeployment(ns, CANARY_DEPLOYMENT)
  ])
  return {
    subsets: (dr!.spec.subsets as Array<{ name: string }>).map((s) => s.name),
    stableReplicas: stable?.spec.replicas,
    canaryReplicas: canary?.spec.replicas
  }
}

describe('promotion never retires a version another route still serves', () => {
  it.each(PLACEMENTS)('route to v1 in %s: v1 kept (retired: false) until the route moves, then a promote retires it', async (placement) => {
    const f = await fixture(placement, 'v1')
    const inputs = inputsFor(f, placement)

    const deploy = await runAction(inputs)
    expect(deploy.report.error).toBeUndefined()
    expect(deploy.report.result).toBe('promoted')
    const out = outputsOf(deploy.report)
    expect(out.retired).toBe('false')
    expect(out['retire-blocked-by']).toBe(f.where.ref)
    expect(deploy.report.warnings.join('\n')).toContain(`the old version v1 was not retired: subset v1 still serves ${f.where.ref}`)
    expect(deploy.report.state?.retirement).toMatchObject({
      version: 'v1',
      subset: 'v1',
      deployment: STABLE_DEPLOYMENT,
      retired: false,
      heldBy: [f.where.ref]
    })
    // The caller's route still has pods behind it.
    expect(await objects(f.seed.ns)).toEqual({ subsets: ['v1', 'v2'], stableReplicas: 1, canaryReplicas: 1 })

    // A promote while the route still points at v1 keeps it again.
    const early = await runAction({ ...inputs, command: 'promote' })
    expect(early.report.error).toBeUndefined()
    expect(outputsOf(early.report).retired).toBe('false')
    expect((await objects(f.seed.ns)).stableReplicas).toBe(1)

    // The user moves the route to v2; the next promote retires v1.
    await f.moveTo('v2')
    const later = await runAction({ ...inputs, command: 'promote' })
    expect(later.report.error).toBeUndefined()
    expect(later.report.result).toBe('promoted')
    expect(outputsOf(later.report)).toMatchObject({ retired: 'true', 'retire-blocked-by': '' })
    expect(await objects(f.seed.ns)).toEqual({ subsets: ['v2'], stableReplicas: 0, canaryReplicas: 1 })
  })

  it('without the foreign route v1 is retired in the same run (retired: true)', async () => {
    const seed = await seedNamespace('retire-plain')
    namespaces.push(seed.ns)
    const done = await runAction(seedInputs(seed, { steps: '50,100' }))
    expect(done.report.result).toBe('promoted')
    expect(outputsOf(done.report)).toMatchObject({ retired: 'true', 'retire-blocked-by': '' })
    expect(await objects(seed.ns)).toEqual({ subsets: ['v2'], stableReplicas: 0, canaryReplicas: 1 })
  })
})

describe('a rollback never scales the canary to 0 under a route it does not own', () => {
  it.each(PLACEMENTS)('route to v2 in %s: abort moves our route back, keeps the canary and says what to do', async (placement) => {
    const f = await fixture(placement, 'v2')
    const inputs = inputsFor(f, placement, { steps: '50,pause,100' })
    const deploy = await runAction(inputs)
    expect(deploy.report.result).toBe('paused')

    const abort = await runAction({ ...inputs, command: 'abort' })
    expect(abort.report.result).toBe('aborted')
    const said = abort.report.warnings.join('\n')
    expect(said).toContain(`ROUTES THIS ROLLOUT DOES NOT OWN STILL SEND TRAFFIC TO THE CANARY v2: ${f.where.ref}`)
    expect(said).toContain(`kubectl -n ${f.seed.ns} scale deployment ${CANARY_DEPLOYMENT} --replicas=0`)
    expect(abort.log.lines.join('\n')).toMatch(/^error: ROUTES THIS ROLLOUT DOES NOT OWN/m)
    expect(outputsOf(abort.report)).toMatchObject({ retired: 'false', 'retire-blocked-by': f.where.ref })
    // Our route is back on v1 alone; the foreign route still finds v2's subset and pods.
    const vs = await testCluster().getIstio('VirtualService', f.seed.ns, VS)
    const ours = vs!.spec.http[placement === 'same VirtualService' ? 1 : 0].route
    expect(ours).toEqual(
      [{ destination: { host: 'istio-service', subset: 'v1' }, weight: 100 }].map((d) =>
        expect.objectContaining({ destination: d.destination })
      )
    )
    expect(await objects(f.seed.ns)).toEqual({ subsets: ['v1', 'v2'], stableReplicas: 1, canaryReplicas: 1 })
  })
})
