/**
 * Proves the local test cluster is real: a real apiserver (schemas, content types, RBAC), real
 * Deployment/ReplicaSet controllers with kwok-played pods, real Prometheus over the traffic source,
 * and a backfilled Prometheus for exact values. Every assertion checks values the cluster produced.
 */
import { PatchStrategy, setHeaderOptions, type V1Deployment, type V1Pod } from '@kubernetes/client-node'
import {
  applyManifests,
  clearTraffic,
  clients,
  createTestNamespace,
  deleteNamespace,
  grantRole,
  loadTestEnv,
  POD_BEHAVIOUR_LABEL,
  promValues,
  queryPrometheus,
  readSeedScenario,
  restrictedKubeConfig,
  setTraffic,
  startBackfilledPrometheus,
  statusOf,
  toOpenMetrics,
  waitFor,
  waitForDeploymentCondition,
  withBehaviour
} from '../../support/test-cluster.js'
import { AppsV1Api, CustomObjectsApi } from '@kubernetes/client-node'

const VS = { group: 'networking.istio.io', plural: 'virtualservices' }

function deployment(name: string, extra: Partial<V1Deployment['spec']> = {}): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: `registry.example/${name}:1` }] }
      },
      ...extra
    }
  }
}

async function podsOf(namespace: string, app: string): Promise<V1Pod[]> {
  const list = await clients.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })
  return list.items
}

function readyOf(pod: V1Pod | undefined): string | undefined {
  return pod?.status?.conditions?.find((c) => c.type === 'Ready')?.status
}

let ns: string
beforeAll(async () => {
  ns = await createTestNamespace('cluster-it')
})
afterAll(async () => {
  if (ns) await deleteNamespace(ns)
})

describe('apiserver, controllers and kwok', () => {
  it('applies the seed scenario as written (v1alpha3) and the v1 Deployment becomes Available', async () => {
    const applied = await applyManifests(ns, [
      readSeedScenario('deployment-v1.yaml'),
      readSeedScenario('service.yaml'),
      readSeedScenario('destinationrule-v1.yaml'),
      readSeedScenario('virtualservice-v1.yaml')
    ])
    expect(applied.map((o) => `${o.apiVersion}/${o.kind}`)).toEqual([
      'apps/v1/Deployment',
      'v1/Service',
      'networking.istio.io/v1alpha3/DestinationRule',
      'networking.istio.io/v1alpha3/VirtualService'
    ])
    const cond = await waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available')
    expect(cond.reason).toBe('MinimumReplicasAvailable')
    const d = await clients.apps.readNamespacedDeployment({ namespace: ns, name: 'istio-deployment-v1' })
    expect(d.status?.availableReplicas).toBe(1)
    expect(d.status?.readyReplicas).toBe(1)

    const pods = await clients.core.listNamespacedPod({ namespace: ns, labelSelector: 'istio-test-version=v1' })
    expect(pods.items).toHaveLength(1)
    const pod = pods.items[0]
    expect(pod.spec?.nodeName).toMatch(/^kwok-node-/) // scheduled by the real scheduler
    expect(pod.status?.phase).toBe('Running')
    expect(readyOf(pod)).toBe('True')
    expect(pod.status?.podIP).toMatch(/^10\.244\./)
    expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet')

    // The VirtualService written as v1alpha3 is served as v1 too.
    const vs = (await clients.custom.getNamespacedCustomObject({
      ...VS,
      version: 'v1',
      namespace: ns,
      name: 'istio-virtualservice'
    })) as { apiVersion: string; spec: { hosts: string[]; http: Array<{ route: Array<{ destination: { subset: string } }> }> } }
    expect(vs.apiVersion).toBe('networking.istio.io/v1')
    expect(vs.spec.hosts).toEqual(['istio-service'])
    expect(vs.spec.http[0].route[0].destination.subset).toBe('v1')

    // Service got a ClusterIP from the configured range; a replace keeps it.
    const svc = await clients.core.readNamespacedService({ namespace: ns, name: 'istio-service' })
    expect(svc.spec?.clusterIP).toMatch(/^10\.0\.0\./)
    await applyManifests(ns, readSeedScenario('service.yaml'))
    const svc2 = await clients.core.readNamespacedService({ namespace: ns, name: 'istio-service' })
    expect(svc2.spec?.clusterIP).toBe(svc.spec?.clusterIP)
  })

  it('a crashing Deployment ends in ProgressDeadlineExceeded with CrashLoopBackOff pods', async () => {
    await applyManifests(ns, withBehaviour(deployment('crasher', { progressDeadlineSeconds: 8 }), 'crash', { restartInterval: '1s' }))
    const pod = await waitFor(
      async () => (await podsOf(ns, 'crasher')).find((p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 3),
      { timeoutMs: 30_000, what: 'crasher pod restartCount >= 3' }
    )
    expect(pod.metadata?.labels?.[POD_BEHAVIOUR_LABEL]).toBe('crash')
    expect(pod.status?.phase).toBe('Running')
    expect(readyOf(pod)).toBe('False')
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('CrashLoopBackOff')
    expect(pod.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(1)

    const cond = await waitForDeploymentCondition(ns, 'crasher', 'Progressing', 'ProgressDeadlineExceeded', { timeoutMs: 60_000 })
    expect(cond.status).toBe('False')
    const d = await clients.apps.readNamespacedDeployment({ namespace: ns, name: 'crasher' })
    expect(d.status?.availableReplicas ?? 0).toBe(0)
    expect(d.status?.unavailableReplicas).toBe(1)
  })

  it('an image pull failure shows ErrImagePull then ImagePullBackOff and stays Pending', async () => {
    await applyManifests(ns, withBehaviour(deployment('nopull'), 'image-pull-failure'))
    const seen = new Set<string>()
    await waitFor(
      async () => {
        for (const p of await podsOf(ns, 'nopull')) {
          const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason
          if (reason) seen.add(reason)
          expect(p.status?.phase).toBe('Pending')
        }
        return seen.has('ErrImagePull') && seen.has('ImagePullBackOff')
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'ErrImagePull and ImagePullBackOff' }
    )
    const [pod] = await podsOf(ns, 'nopull')
    expect(pod.status?.containerStatuses?.[0]?.image).toBe('registry.example/nopull:1')
    const d = await clients.apps.readNamespacedDeployment({ namespace: ns, name: 'nopull' })
    expect(d.status?.availableReplicas ?? 0).toBe(0)
  })

  it('fail-after pods are Ready first, then not Ready and crash-looping', async () => {
    await applyManifests(ns, withBehaviour(deployment('flaky', { replicas: 2 }), 'fail-after', { failAfter: '4s', restartInterval: '1s' }))
    await waitForDeploymentCondition(ns, 'flaky', 'Available', undefined, { timeoutMs: 30_000 })
    const ready = await clients.apps.readNamespacedDeployment({ namespace: ns, name: 'flaky' })
    expect(ready.status?.readyReplicas).toBe(2)

    const pods = await waitFor(
      async () => {
        const ps = await podsOf(ns, 'flaky')
        return (
          ps.length === 2 && ps.every((p) => readyOf(p) === 'False' && (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2) && ps
        )
      },
      { timeoutMs: 30_000, what: 'both flaky pods not Ready with restarts' }
    )
    for (const p of pods) {
      expect(p.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('CrashLoopBackOff')
      // Ready went False about `failAfter` (4s, not the 10s default) after the pod started.
      const started = new Date(p.status?.startTime ?? 0).getTime()
      const unready = new Date(p.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime ?? 0).getTime()
      expect((unready - started) / 1000).toBeGreaterThanOrEqual(3)
      expect((unready - started) / 1000).toBeLessThanOrEqual(7)
    }
    await waitFor(
      async () => {
        const d = await clients.apps.readNamespacedDeployment({ namespace: ns, name: 'flaky' })
        return (d.status?.readyReplicas ?? 0) === 0 && d.status?.conditions?.find((c) => c.type === 'Available')?.status === 'False'
      },
      { timeoutMs: 20_000, what: 'flaky Deployment to lose availability' }
    )
  })
})

describe('what the real apiserver refuses', () => {
  beforeAll(async () => {
    await applyManifests(ns, readSeedScenario('virtualservice-50-50.yaml'))
  })

  it('refuses a strategic-merge patch on a VirtualService (415) but takes a merge patch', async () => {
    const base = { ...VS, version: 'v1alpha3', namespace: ns, name: 'istio-virtualservice' }
    const err = await clients.custom
      .patchNamespacedCustomObject(
        { ...base, body: { spec: { http: [{ route: [{ destination: { host: 'istio-service', subset: 'v1' }, weight: 100 }] }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)
      )
      .then(
        () => undefined,
        (e: unknown) => e
      )
    expect(statusOf(err)).toBe(415)

    const patched = (await clients.custom.patchNamespacedCustomObject(
      {
        ...base,
        body: {
          spec: {
            http: [
              {
                route: [
                  { destination: { host: 'istio-service', subset: 'v1' }, weight: 90 },
                  { destination: { host: 'istio-service', subset: 'v2' }, weight: 10 }
                ]
              }
            ]
          }
        }
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
    )) as { spec: { http: Array<{ route: Array<{ weight: number }> }> } }
    expect(patched.spec.http[0].route.map((r) => r.weight)).toEqual([90, 10])
  })

  it.each([[50.5], ['fifty']])('refuses a non-integer weight %p (422/400) and keeps the stored weights', async (weight) => {
    const base = { ...VS, version: 'v1', namespace: ns, name: 'istio-virtualservice' }
    const before = (await clients.custom.getNamespacedCustomObject(base)) as {
      spec: { http: Array<{ route: Array<{ weight: unknown }> }> }
    }
    const err = await clients.custom
      .patchNamespacedCustomObject(
        { ...base, body: [{ op: 'replace', path: '/spec/http/0/route/0/weight', value: weight }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
      )
      .then(
        () => undefined,
        (e: unknown) => e
      )
    expect([400, 422]).toContain(statusOf(err))
    expect(String((err as { body?: unknown }).body)).toMatch(/weight/)
    const after = (await clients.custom.getNamespacedCustomObject(base)) as typeof before
    expect(after.spec.http[0].route.map((r) => r.weight)).toEqual(before.spec.http[0].route.map((r) => r.weight))
    expect(after.spec.http[0].route.every((r) => Number.isInteger(r.weight))).toBe(true)
  })

  it('denies the restricted user (403) until a Role allows it', async () => {
    expect(loadTestEnv().restrictedKubeconfigPath).not.toBe('')
    const rApps = restrictedKubeConfig().makeApiClient(AppsV1Api)
    const rCustom = restrictedKubeConfig().makeApiClient(CustomObjectsApi)
    const denied = await rApps.listNamespacedDeployment({ namespace: ns }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(statusOf(denied)).toBe(403)

    await grantRole(ns, 'restricted', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
      { apiGroups: ['networking.istio.io'], resources: ['virtualservices'], verbs: ['get'] }
    ])
    const list = await waitFor(() => rApps.listNamespacedDeployment({ namespace: ns }), { timeoutMs: 10_000, what: 'RBAC grant' })
    expect(list.items.map((d) => d.metadata?.name)).toContain('istio-deployment-v1')
    const vs = await rCustom.getNamespacedCustomObject({ ...VS, version: 'v1', namespace: ns, name: 'istio-virtualservice' })
    expect(vs).toHaveProperty('spec.hosts', ['istio-service'])
    // get was granted, patch was not
    const noPatch = await rCustom
      .patchNamespacedCustomObject(
        { ...VS, version: 'v1', namespace: ns, name: 'istio-virtualservice', body: [{ op: 'replace', path: '/spec/hosts/0', value: 'x' }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
      )
      .then(
        () => undefined,
        (e: unknown) => e
      )
    expect(statusOf(noPatch)).toBe(403)
    // and nothing outside the namespace
    const other = await rApps.listNamespacedDeployment({ namespace: 'default' }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(statusOf(other)).toBe(403)
  })
})

describe('Prometheus over the traffic source', () => {
  afterAll(async () => {
    await clearTraffic(ns, 'web-v1')
    await clearTraffic(ns, 'web-v2')
  })

  it('answers rate() queries with the error ratio, rate and p99 that were set', async () => {
    await setTraffic(ns, 'web-v1', { rps: 40, errorRatio: 0.02, latencyMs: 80, version: 'v1' })
    await setTraffic(ns, 'web-v2', { rps: 10, errorRatio: 0.3, latencyMs: 700, version: 'v2' })
    const sel = (w: string) => `reporter="destination",destination_workload_namespace="${ns}",destination_workload="${w}"`
    const ratio = (w: string) =>
      `sum(rate(istio_requests_total{${sel(w)},response_code=~"5.."}[10s])) / sum(rate(istio_requests_total{${sel(w)}}[10s]))`
    const [r1, r2] = await waitFor(
      async () => {
        const a = promValues(await queryPrometheus(ratio('web-v1')))
        const b = promValues(await queryPrometheus(ratio('web-v2')))
        return a.length === 1 && b.length === 1 && [a[0], b[0]]
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'error ratios from Prometheus' }
    )
    expect(r1).toBeCloseTo(0.02, 3)
    expect(r2).toBeCloseTo(0.3, 3)

    // rate() divides by the whole window: wait until 10 s of samples cover it.
    const rps = await waitFor(
      async () => {
        const v = promValues(await queryPrometheus(`sum(rate(istio_requests_total{${sel('web-v2')}}[10s]))`))[0]
        return v > 9 && v
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'web-v2 at ~10 rps' }
    )
    expect(rps).toBeLessThan(11)
    const p99 = promValues(
      await queryPrometheus(
        `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${sel('web-v2')}}[10s])))`
      )
    )[0]
    expect(p99).toBeCloseTo(700, 0)
    const versions = await queryPrometheus(`count by (destination_version) (istio_requests_total{destination_workload_namespace="${ns}"})`)
    expect((versions.data.result as Array<{ metric: Record<string, string> }>).map((s) => s.metric.destination_version).sort()).toEqual([
      'v1',
      'v2'
    ])

    // A new config keeps the counters monotonic and moves the ratio.
    const before = promValues(await queryPrometheus(`sum(istio_requests_total{${sel('web-v2')}})`))[0]
    await setTraffic(ns, 'web-v2', { rps: 10, errorRatio: 0.9, latencyMs: 700, version: 'v2' })
    await waitFor(
      async () => {
        const v = promValues(
          await queryPrometheus(
            `sum(rate(istio_requests_total{${sel('web-v2')},response_code="503"}[3s])) / sum(rate(istio_requests_total{${sel('web-v2')}}[3s]))`
          )
        )[0]
        return v > 0.85 && v
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'the new error ratio' }
    )
    const after = promValues(await queryPrometheus(`sum(istio_requests_total{${sel('web-v2')}})`))[0]
    expect(after).toBeGreaterThan(before)
    const resets = promValues(await queryPrometheus(`sum(resets(istio_requests_total{${sel('web-v2')}}[1m]))`))[0]
    expect(resets).toBe(0)
  })

  it('a backfilled Prometheus returns exact values at a fixed time', async () => {
    const t0 = 1_767_225_600 // 2026-01-01T00:00:00Z
    const labels = (code: string) => ({
      reporter: 'destination',
      destination_workload: 'web-v2',
      destination_workload_namespace: 'shop',
      response_code: code
    })
    const samples = (perStep: number): Array<[number, number]> => Array.from({ length: 41 }, (_, i) => [t0 + i * 15, i * perStep])
    const prom = await startBackfilledPrometheus(
      toOpenMetrics([
        { name: 'istio_requests_total', labels: labels('200'), samples: samples(135) },
        { name: 'istio_requests_total', labels: labels('503'), samples: samples(15) }
      ])
    )
    try {
      const at = t0 + 600
      const ratio = promValues(
        await prom.query('sum(rate(istio_requests_total{response_code=~"5.."}[1m])) / sum(rate(istio_requests_total[1m]))', at)
      )
      expect(ratio).toHaveLength(1)
      expect(ratio[0]).toBeCloseTo(0.1, 12)
      const raw = promValues(await prom.query('istio_requests_total{response_code="503"}', at))
      expect(raw).toEqual([40 * 15])
      const rate = promValues(await prom.query('sum(rate(istio_requests_total[1m]))', at))
      expect(rate[0]).toBeCloseTo(10, 9) // (135 + 15) per 15 s
      expect(promValues(await prom.query('istio_requests_total', t0 - 3600))).toEqual([]) // nothing before the data
    } finally {
      await prom.stop()
    }
    const gone = await fetch(`${prom.url}/-/ready`).then(
      () => 'up',
      () => 'down'
    )
    expect(gone).toBe('down')
  })
})
