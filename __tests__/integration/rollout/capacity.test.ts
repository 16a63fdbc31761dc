/**
 * Canary capacity on the local cluster (real apiserver, Deployment, ReplicaSet, HPA, quota and
 * disruption controllers, kwok pods): replicas that follow the weight on the way up and through
 * the promotion, the rollback that scales down last, a run killed mid-scale and taken over, the
 * stable's HPA copied for the canary with the field ownership read from managedFields, and the
 * quota / disruption-budget preflight that writes nothing.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import { leaseExpiry } from '../../../src/cluster/lease-lock.js'
import { FIELD_MANAGER } from '../../../src/cluster/cluster.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { startAction } from '../../support/action-process.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { routeOf, runAction, snapshot, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import {
  applyManifests,
  createTestNamespace,
  deleteNamespace,
  readSeedScenario,
  waitFor,
  withBehaviour,
  type BehaviourOptions
} from '../../support/test-cluster.js'

const VS = 'istio-virtualservice'
const STABLE = 'istio-deployment-v1'
const CANARY = 'istio-deployment-v2'
const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((n) => deleteNamespace(n)))
})

/** The seed's starting state with `replicas` stable pods (and, optionally, objects beside it such as an HPA). */
async function seedNamespace(prefix: string, replicas: number, extra: object[] = []): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  const v1 = yaml.load(readSeedScenario('deployment-v1.yaml')) as KubeObject
  v1.spec.replicas = replicas
  await applyManifests(ns, [
    v1,
    ...['service.yaml', 'destinationrule-v1.yaml', 'virtualservice-v1.yaml'].map(readSeedScenario),
    ...extra
  ] as never)
  await waitFor(async () => Number((await testCluster().getDeployment(ns, STABLE))?.status?.availableReplicas ?? 0) >= replicas, {
    timeoutMs: 60_000,
    what: `${replicas} available replicas of ${STABLE} in ${ns}`
  })
  return ns
}

/** A version of the seed's v2 manifest: `v3` renames the Deployment and its labels. */
function canaryManifest(version = 'v2', behaviour: BehaviourOptions = {}): string {
  const d = withBehaviour(readSeedScenario('deployment-v2.yaml'), 'ready', behaviour)
  d.metadata!.name = `istio-deployment-${version}`
  d.spec!.selector.matchLabels!['istio-test-version'] = version
  d.spec!.template.metadata!.labels!['istio-test-version'] = version
  return writeManifest(yaml.dump(d))
}

function inputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    manifests: canaryManifest(),
    'virtual-service': VS,
    namespace: ns,
    'version-label': 'istio-test-version',
    'canary-replicas': 'proportional',
    ...extra
  }
}

/** What the cluster showed right after each write that moved the canary's weight (read at once, while new pods were still starting). */
interface AtWrite {
  weight: number
  phase?: string
  canaryAvailable: number
  canaryDesired: number
  stableDesired: number
}

/** onProgress hook: after every write that changed the weight (or the phase), read both Deployments. */
function watchWrites(ns: string, canary = CANARY, stable = STABLE): { onProgress: (r: RunReport) => void; seen: () => Promise<AtWrite[]> } {
  const reads: Array<Promise<AtWrite>> = []
  let last = ''
  return {
    onProgress: (r) => {
      const key = `${r.canaryWeight} ${r.phase}`
      if (key === last) return
      last = key
      const c = testCluster()
      reads.push(
        Promise.all([c.getDeployment(ns, canary), c.getDeployment(ns, stable)]).then(([cd, sd]) => ({
          weight: r.canaryWeight,
          phase: r.phase,
          canaryAvailable: Number(cd?.status?.availableReplicas ?? 0),
          canaryDesired: Number(cd?.spec?.replicas ?? 0),
          stableDesired: Number(sd?.spec?.replicas ?? 0)
        }))
      )
    },
    seen: () => Promise.all(reads)
  }
}

/** The field-manager entries of an object that own spec.replicas. */
function replicasOwners(obj: KubeObject): Array<{ manager?: string; operation?: string; subresource?: string }> {
  return (obj.metadata.managedFields ?? [])
    .filter((m) => (m.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']?.['f:replicas'] !== undefined)
    .map((m) => ({ manager: m.manager, operation: m.operation, subresource: (m as { subresource?: string }).subresource }))
}

const hpaOf = async (ns: string, name: string): Promise<KubeObject | undefined> =>
  (await (await testCluster().capacity()).listHorizontalPodAutoscalers(ns)).find((h) => h.metadata.name === name)

describe('canary-replicas: proportional on the local cluster', () => {
  it('raises the canary before each weight increase, available before traffic moves, and promotes at the stable size', async () => {
    const ns = await seedNamespace('cap-up', 4)
    const watch = watchWrites(ns)
    // Slow pods: a weight written before the new pods were available would show them not available yet.
    const { report, log } = await runAction(inputs(ns, { steps: '25,50,100', manifests: canaryManifest('v2', { readyDelay: '1500ms' }) }), {
      onProgress: watch.onProgress
    })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    const seen = await watch.seen()
    for (const w of [25, 50, 100]) {
      const at = seen.find((s) => s.weight === w && s.phase === 'progressing')
      expect(at).toBeDefined()
      expect([w, at!.canaryAvailable]).toEqual([w, Math.max(1, Math.ceil((4 * w) / 100))])
    }
    // The promotion began with the new version as large as the old, the old still all there.
    expect(seen.find((s) => s.phase === 'promoting')).toMatchObject({ weight: 100, canaryAvailable: 4, canaryDesired: 4, stableDesired: 4 })
    const order = (re: RegExp): number => log.lines.findIndex((l) => re.test(l))
    // The new Deployment's first pod is its 25 %; then it is raised before each increase.
    for (const [replicas, weight] of [
      [2, 50],
      [4, 100]
    ]) {
      expect(order(new RegExp(`Canary ${CANARY} scaled to ${replicas} replica\\(s\\) for ${weight}%`))).toBeGreaterThanOrEqual(0)
      expect(order(new RegExp(`Canary ${CANARY} scaled to ${replicas} replica\\(s\\) for ${weight}%`))).toBeLessThan(
        order(new RegExp(`Weights: v1=${100 - weight} v2=${weight}`))
      )
    }

    const cluster = testCluster()
    const vs = await snapshot(cluster, 'VirtualService', ns, VS)
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    expect(stateOf(vs)?.capacity).toEqual({ mode: 'proportional' })
    const v2 = await cluster.getDeployment(ns, CANARY)
    expect([v2?.spec.replicas, v2?.status.availableReplicas]).toEqual([4, 4])
    expect((await cluster.getDeployment(ns, STABLE))?.spec.replicas).toBe(0)
    // The manifest is applied without spec.replicas: the apply never owns them, so a re-apply never resets them.
    const apply = (v2!.metadata.managedFields ?? []).find((m) => m.manager === FIELD_MANAGER && m.operation === 'Apply')
    expect(apply).toBeDefined()
    expect(replicasOwners(v2!)).toEqual([{ manager: FIELD_MANAGER, operation: 'Update', subresource: undefined }])
  })

  it('rolls back with the canary scaled down only after its weight is 0, its destination and its subset are gone', async () => {
    const ns = await seedNamespace('cap-back', 4)
    const first = await runAction(inputs(ns, { steps: '25,50,pause,100' }))
    expect(first.report).toMatchObject({ result: 'paused', canaryWeight: 50 })
    expect((await testCluster().getDeployment(ns, CANARY))?.spec.replicas).toBe(2)
    const aborted = await runAction({ command: 'abort', 'virtual-service': VS, namespace: ns })
    expect(aborted.report.result).toBe('aborted')
    expect(aborted.report.undone).toEqual([
      'canary weight 50% → 0% (v1 100%)',
      'destination v2 removed from the route',
      'subset v2 removed from DestinationRule istio-destinationrule',
      `Deployment ${CANARY} scaled to 0`
    ])
    const cluster = testCluster()
    expect((await cluster.getDeployment(ns, CANARY))?.spec.replicas).toBe(0)
    expect((await cluster.getDeployment(ns, STABLE))?.spec.replicas).toBe(4)
    expect(routeOf(await snapshot(cluster, 'VirtualService', ns, VS))).toEqual([
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 100 }
    ])
  })

  it('a run killed mid-scale moved no traffic; the next run takes over, rolls it back and rolls out again', async () => {
    const ns = await seedNamespace('cap-kill', 4)
    const manifest = canaryManifest('v2', { readyDelay: '5s' })
    const run = startAction(
      { ...inputs(ns, { steps: '25,50,100', manifests: manifest }), interval: '1s', settle: '0s', 'lock-duration': '15s' },
      {
        env: { GITHUB_RUN_ID: '7101' }
      }
    )
    try {
      // Killed while it waits for the second canary pod, before it may send the canary 50 %.
      await run.waitForLine(new RegExp(`Canary ${CANARY} scaled to 2 replica\\(s\\) for 50%`), 120_000)
      run.child.kill('SIGKILL')
      await run.exited
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL')
    }
    const cluster = testCluster()
    const killed = await snapshot(cluster, 'VirtualService', ns, VS)
    expect(routeOf(killed).map((d) => [d.destination.subset, d.weight])).toEqual([
      ['v1', 75],
      ['v2', 25]
    ])
    expect(stateOf(killed)?.phase).toBe('progressing')
    expect((await cluster.getDeployment(ns, CANARY))?.spec.replicas).toBe(2)

    // No post step (the runner is gone): the next run waits for the dead run's lease to expire.
    await waitFor(
      async () => {
        const lease = await cluster.getLease(ns, `istio-canary-${VS}`)
        const expiry = lease ? leaseExpiry(lease) : 0
        return expiry !== undefined && Date.now() > expiry + 5_500
      },
      { timeoutMs: 90_000, what: `the lease in ${ns} to expire` }
    )
    const watch = watchWrites(ns)
    const next = await runAction(inputs(ns, { steps: '25,50,100', manifests: manifest }), { onProgress: watch.onProgress })
    expect(next.report.error).toBeUndefined()
    expect(next.report.result).toBe('promoted')
    const history = next.report.state!.history.map((h) => h.kind)
    expect(history).toContain('started')
    expect(next.report.warnings).toEqual(expect.arrayContaining([expect.stringContaining('took over from')]))
    // The takeover's rollback scaled the canary to 0 only once its weight was 0; the new rollout raised it again, step by step.
    const seen = await watch.seen()
    const rollbackZero = seen.findIndex((s) => s.weight === 0 && s.phase === 'rolling-back')
    expect(rollbackZero).toBeGreaterThanOrEqual(0)
    expect(seen[rollbackZero]!.canaryDesired).toBeGreaterThan(0)
    for (const w of [25, 50, 100]) {
      const at = seen.find((s) => s.weight === w && s.phase === 'progressing')
      expect([w, at?.canaryAvailable]).toEqual([w, Math.max(1, Math.ceil((4 * w) / 100))])
    }
    expect((await cluster.getDeployment(ns, CANARY))?.spec.replicas).toBe(4)
    expect((await cluster.getDeployment(ns, STABLE))?.spec.replicas).toBe(0)
  })
})

describe('the stable HorizontalPodAutoscaler, copied for the canary', () => {
  const stableHpa = {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'web' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: STABLE },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 120, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } }
    }
  }

  it('gives the canary its own, moves only its bounds (the HPA controller sets spec.replicas), and removes it on rollback and retirement', async () => {
    // The HPA controller brings the stable to its minimum of 2 (it cannot read metrics here; bounds it enforces).
    const ns = await seedNamespace('cap-hpa', 2, [stableHpa])
    const watch = watchWrites(ns)
    const bounds: Array<Promise<[number, unknown]>> = []
    const { report, log } = await runAction(inputs(ns, { steps: '50,100' }), {
      onProgress: (r) => {
        watch.onProgress(r)
        if (r.phase === 'progressing' && r.canaryWeight === 50)
          bounds.push(hpaOf(ns, CANARY).then((h) => [50, { min: h?.spec.minReplicas, max: h?.spec.maxReplicas }]))
      }
    })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(log.lines).toEqual(
      expect.arrayContaining([
        expect.stringContaining(`HorizontalPodAutoscaler ${CANARY} made for the canary from web: 1..3 replicas for 50%`)
      ])
    )
    // At 50 %: half of the stable's 2 and of its maximum of 6.
    expect(await Promise.all(bounds)).toContainEqual([50, { min: 1, max: 3 }])
    // Before 100 % the HPA had raised the canary to the stable's 2 (available before the shift).
    expect((await watch.seen()).find((s) => s.weight === 100 && s.phase === 'progressing')).toMatchObject({ canaryAvailable: 2 })

    const cluster = testCluster()
    const hpa = await hpaOf(ns, CANARY)
    const stored = await hpaOf(ns, 'web')
    expect(hpa?.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'istio-canary' })
    // The stable's metrics and behaviour (as the apiserver stored them), its bounds once promoted, aimed at the new version.
    expect(hpa?.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: CANARY },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: stored?.spec.metrics,
      behavior: stored?.spec.behavior
    })
    expect(stored?.spec.behavior.scaleDown).toMatchObject(stableHpa.spec.behavior.scaleDown)
    expect((hpa!.metadata.managedFields ?? []).map((m) => [m.manager, m.operation])).toContainEqual([FIELD_MANAGER, 'Apply'])
    // The user's HPA of the old version stays; the old Deployment is retired.
    expect(await hpaOf(ns, 'web')).toBeDefined()
    expect((await cluster.getDeployment(ns, STABLE))?.spec.replicas).toBe(0)

    // Field ownership: the action only ever applied the canary (without spec.replicas) and never
    // updated it: its 2 replicas are the HPA controller's doing (through the scale subresource, which
    // the apiserver records as an owner only when the field had one before).
    const v2 = (await cluster.getDeployment(ns, CANARY))!
    expect(v2.spec.replicas).toBe(2)
    expect((v2.metadata.managedFields ?? []).filter((m) => m.manager === FIELD_MANAGER).map((m) => m.operation)).toEqual(['Apply'])
    expect(replicasOwners(v2).filter((o) => o.manager === FIELD_MANAGER)).toEqual([])
    expect(log.lines.filter((l) => l.startsWith(`Canary ${CANARY} scaled`))).toEqual([])
    expect((await hpaOf(ns, CANARY))?.status).toMatchObject({ desiredReplicas: 2, lastScaleTime: expect.any(String) })
    expect(stateOf(await snapshot(cluster, 'VirtualService', ns, VS))?.capacity).toEqual({
      mode: 'proportional',
      stableHpa: 'web',
      canaryHpa: CANARY
    })

    // v3 over v2 (whose HPA is now the action's): rolled back, its HPA goes before its replicas.
    const paused = await runAction(inputs(ns, { steps: '50,pause,100', manifests: canaryManifest('v3') }))
    expect(paused.report).toMatchObject({ result: 'paused', canaryWeight: 50 })
    expect((await hpaOf(ns, 'istio-deployment-v3'))?.spec).toMatchObject({ minReplicas: 1, maxReplicas: 3 })
    const aborted = await runAction({ command: 'abort', 'virtual-service': VS, namespace: ns })
    expect(aborted.report.result).toBe('aborted')
    expect(aborted.report.undone).toEqual([
      'canary weight 50% → 0% (v2 100%)',
      'destination v3 removed from the route',
      'subset v3 removed from DestinationRule istio-destinationrule',
      'HorizontalPodAutoscaler istio-deployment-v3 deleted',
      'Deployment istio-deployment-v3 scaled to 0'
    ])
    expect(await hpaOf(ns, 'istio-deployment-v3')).toBeUndefined()
    expect((await cluster.getDeployment(ns, 'istio-deployment-v3'))?.spec.replicas).toBe(0)
    expect(await hpaOf(ns, CANARY)).toBeDefined()

    // v4 promoted over v2: v2 is retired, and the HPA the action made for it goes with it.
    const v4 = await runAction(inputs(ns, { steps: '100', manifests: canaryManifest('v4'), 'canary-replicas': 'manifest' }))
    expect(v4.report.error).toBeUndefined()
    expect(v4.report.result).toBe('promoted')
    expect(await hpaOf(ns, CANARY)).toBeUndefined()
    expect((await cluster.getDeployment(ns, CANARY))?.spec.replicas).toBe(0)
    expect((await hpaOf(ns, 'istio-deployment-v4'))?.spec).toMatchObject({ minReplicas: 2, maxReplicas: 6 })
  })
})

describe('preflight: quotas and disruption budgets before any write', () => {
  it('a ResourceQuota that cannot hold the canary at its promotion: a precise error, and nothing written', async () => {
    // The stable's 2 pods are in use; 3 allowed: the first canary pod fits, the 2 of the promotion do not.
    const ns = await seedNamespace('cap-quota', 2, [
      { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'pods' }, spec: { hard: { pods: '3' } } }
    ])
    await waitFor(async () => (await (await testCluster().capacity()).listResourceQuotas(ns))[0]?.status?.used?.pods === '2', {
      what: `quota usage counted in ${ns}`
    })
    const before = await namespaceFingerprint(ns)
    const { report } = await runAction(inputs(ns, { steps: '50,100' }))
    expect(report.error).toEqual({
      kind: 'PreflightError',
      message:
        `ResourceQuota pods cannot hold the canary Deployment ${CANARY} at its promotion (beside the stable version, before it leaves): 2 replica(s) need 2 more pods, ` +
        "and the quota has 1 left of 3 (2 in use). The apiserver would refuse the pods. Raise the quota, lower the pods' requests, " +
        "or use fewer canary replicas (input 'canary-replicas'); nothing was changed."
    })
    expect(report.result).toBe('unchanged')
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })

  it('a PodDisruptionBudget that pins the small canary: a warning, and the run goes on', async () => {
    const ns = await seedNamespace('cap-pdb', 4, [
      {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: { name: 'v2-only' },
        spec: { minAvailable: 1, selector: { matchLabels: { 'istio-test-version': 'v2' } } }
      }
    ])
    const before = await namespaceFingerprint(ns)
    const dry = await runAction(inputs(ns, { steps: '25,100', 'dry-run': 'true' }))
    expect(dry.report.error).toBeUndefined()
    expect(dry.report.plan).toContain("raise the canary's replicas before each increase (stable's × weight)")
    expect(dry.report.warnings).toContain(
      "PodDisruptionBudget v2-only (minAvailable 1) selects the canary's pods and allows no disruption over 1 pod(s) (1 of the canary): " +
        'while the canary runs at that size its pods cannot be evicted, so node drains wait. The rollout itself is not blocked (scaling does not evict); ' +
        'give the budget a percentage or maxUnavailable, or start the canary larger.'
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    const run = await runAction(inputs(ns, { steps: '25,100' }))
    expect(run.report.result).toBe('promoted')
    expect(run.report.warnings).toEqual(expect.arrayContaining([expect.stringContaining('PodDisruptionBudget v2-only')]))
  })

  it.each([
    ['proportional without a stable Deployment to follow', 'proportional'],
    ['an HPA someone else pointed at the canary', 'manifest']
  ])('refuses %s, and writes nothing', async (_name, mode) => {
    const foreign = {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'theirs' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: CANARY }, minReplicas: 1, maxReplicas: 2 }
    }
    const stableHpa = {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'web' },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: STABLE }, minReplicas: 1, maxReplicas: 2 }
    }
    const ns = await seedNamespace('cap-refuse', 1, mode === 'manifest' ? [foreign, stableHpa] : [])
    if (mode === 'proportional') {
      await testCluster().deleteDeployment(ns, STABLE)
      await waitFor(async () => (await testCluster().listPods(ns, 'istio-test-version=v1')).length === 0, {
        what: `the stable pods gone in ${ns}`
      })
    } else {
      // The HPA controller has written what it will about HPAs it cannot use (no target, no metrics).
      await waitFor(
        async () => (await (await testCluster().capacity()).listHorizontalPodAutoscalers(ns)).every((h) => h.status?.conditions),
        {
          what: `HPA status in ${ns}`
        }
      )
    }
    const before = await namespaceFingerprint(ns)
    const { report } = await runAction(inputs(ns, { 'canary-replicas': mode }))
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toBe(
      mode === 'proportional'
        ? "Input 'canary-replicas' is \"proportional\", but no single Deployment of the stable version was found, so the canary's replicas have nothing to follow. Use 'manifest', or make the stable subset's labels select exactly one Deployment; nothing was changed."
        : `HorizontalPodAutoscaler "theirs" already scales the canary Deployment "${CANARY}": the action would fight it over spec.replicas. Remove it (the canary gets a copy of the stable's HPA), or use input 'canary-replicas' "manifest" without an HPA on the stable version; nothing was changed.`
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })
})
