/**
 * TCP routes: a VirtualService `tcp` route with weighted destinations (a database here) is rolled
 * out like an http one: promotion, abort, cancellation, drift, each on the tcp route only; the
 * other tcp route, the matches, labels and annotations stay byte for byte. Checks over Istio's HTTP
 * metrics are refused for a TCP route before any write, with what to use instead.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { CancelledError } from '../../../src/commands/runtime.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { STATE_ANNOTATION } from '../../../src/rollout/state-codec.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import { runAction, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { versionDeployment } from '../../support/reviews-fixtures.js'
import {
  applyManifests,
  createTestNamespace,
  deleteNamespace,
  loadTestEnv,
  waitFor,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'

const deployment = (version: string): string => versionDeployment(version, { app: 'mysql', labelled: false })

const objects = `
apiVersion: v1
kind: Service
metadata: { name: mysql }
spec:
  selector: { app: mysql }
  ports: [{ name: tcp-mysql, port: 3306 }, { name: tcp-mysqlx, port: 33060 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: mysql }
spec:
  host: mysql
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 100, connectTimeout: 3s } } }
  subsets:
    - name: v1
      labels: { version: v1 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: mysql
  labels: { team: data }
  annotations: { owner: data-team }
spec:
  hosts: [mysql]
  tcp:
    - match: [{ port: 33060 }]
      route: [{ destination: { host: mysql-x.legacy.svc.cluster.local, port: { number: 33060 } } }]
    - match: [{ port: 3306, sourceLabels: { role: app } }]
      route:
        - destination: { host: mysql, subset: v1, port: { number: 3306 } }
`

const namespaces: string[] = []
afterAll(async () => {
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns)))
})

async function tcpNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await applyManifests(ns, [deployment('v1'), objects])
  await waitForDeploymentCondition(ns, 'mysql-v1', 'Available')
  return ns
}

const vsOf = async (ns: string): Promise<KubeObject> => (await testCluster().getIstio('VirtualService', ns, 'mysql'))!

/** Canary weight of the 3306 tcp route; undefined when it has no canary destination. */
function canaryOf(vs: KubeObject, subset = 'v2'): number | undefined {
  const route = vs.spec.tcp[1].route as Array<{ destination: { subset?: string }; weight?: number }>
  const d = route.find((x) => x.destination.subset === subset)
  return d ? (route.length === 1 ? 100 : (d.weight ?? 0)) : undefined
}

/** The object as stored, without what the apiserver sets, the state, and the 3306 route's destinations. */
function rest(vs: KubeObject): string {
  const c = structuredClone(vs)
  delete c.metadata.resourceVersion
  delete c.metadata.generation
  delete c.metadata.managedFields
  delete c.metadata.annotations?.[STATE_ANNOTATION]
  delete c.spec.tcp[1].route
  return JSON.stringify(c)
}

const INPUTS = { 'virtual-service': 'mysql', route: 'tcp:3306', settle: '0s', interval: '1s' }

describe('TCP routes', () => {
  it('promotes on the tcp route only; the other tcp route, matches, labels and annotations stay as they were', async () => {
    const ns = await tcpNamespace('tcp-promote')
    const before = await vsOf(ns)
    const seen: number[] = []
    const { report } = await runAction(
      { ...INPUTS, manifests: writeManifest(deployment('v2')), namespace: ns, steps: '10,50,100' },
      { onProgress: (r) => void (r.state?.phase === 'progressing' && seen.push(r.state.canaryWeight)) }
    )
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect([...new Set(seen)]).toEqual([0, 10, 50, 100])
    const after = await vsOf(ns)
    expect(stateOf(after)?.route).toEqual({ index: 1, section: 'tcp' })
    expect(after.spec.tcp[1].route).toEqual([{ destination: { host: 'mysql', subset: 'v2', port: { number: 3306 } }, weight: 100 }])
    expect(rest(after)).toBe(rest(before))
    const dr = (await testCluster().getIstio('DestinationRule', ns, 'mysql'))!
    expect(dr.spec.subsets).toEqual([{ name: 'v2', labels: { version: 'v2' } }])
    expect((await testCluster().getDeployment(ns, 'mysql-v1'))?.spec.replicas).toBe(0)
  })

  it('aborts from a pause, is cancelled mid-step (SIGINT), and rolls back on drift, all on the tcp route', async () => {
    const ns = await tcpNamespace('tcp-back')
    const before = await vsOf(ns)
    const paused = await runAction({ ...INPUTS, manifests: writeManifest(deployment('v2')), namespace: ns, steps: '30,pause,100' })
    expect(paused.report.result).toBe('paused')
    expect(canaryOf(await vsOf(ns))).toBe(30)
    const aborted = await runAction({ 'virtual-service': 'mysql', command: 'abort', namespace: ns, settle: '0s' })
    expect(aborted.report.result).toBe('aborted')
    expect(canaryOf(await vsOf(ns))).toBeUndefined()
    expect(rest(await vsOf(ns))).toBe(rest(before))

    // SIGINT mid-step: the one cancellation write puts the tcp route's canary to 0; abort finishes.
    const controller = new AbortController()
    const slow = { ...INPUTS, namespace: ns, steps: '40,100', interval: '60s', 'check-every': '2s' }
    const run = runAction({ ...slow, manifests: writeManifest(deployment('v3')) }, { signal: controller.signal })
    await waitFor(async () => canaryOf(await vsOf(ns), 'v3') === 40, { what: 'v3 at 40 % on the tcp route' })
    controller.abort(new CancelledError('SIGINT'))
    expect((await run).report.error?.kind).toBe('CancelledError')
    expect([canaryOf(await vsOf(ns), 'v3'), stateOf(await vsOf(ns))?.phase]).toEqual([0, 'rolling-back'])
    expect((await runAction({ 'virtual-service': 'mysql', command: 'abort', namespace: ns, settle: '0s' })).report.error).toBeUndefined()
    expect(canaryOf(await vsOf(ns), 'v3')).toBeUndefined()

    // Drift: a person sets the tcp route's split by hand mid-bake.
    const drifting = runAction({ ...slow, manifests: writeManifest(deployment('v4')) })
    await waitFor(async () => canaryOf(await vsOf(ns), 'v4') === 40, { what: 'v4 at 40 % on the tcp route' })
    const live = await vsOf(ns)
    for (const d of live.spec.tcp[1].route as Array<{ weight: number }>) d.weight = 50
    await testCluster().replaceIstio(live)
    const { report } = await drifting
    expect(report.result).toBe('rolled-back')
    expect(report.error?.message).toMatch(
      /^drift: route tcp #1 of VirtualService .*\/mysql has canary weight 50, but this rollout last set 40/
    )
    expect(canaryOf(await vsOf(ns), 'v4')).toBeUndefined()
    expect(rest(await vsOf(ns))).toBe(rest(before))
  })

  describe('bad input: refused before any write, nothing changed', () => {
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      [
        'several tcp routes and no route input',
        { 'virtual-service': 'mysql' },
        /VirtualService .*\/mysql has 2 tcp routes \(#0 \(port 33060\), #1 \(port 3306\)\); which one to split is ambiguous\. Set input 'route' to "tcp:<port>"/
      ],
      ['a port no tcp route matches', { ...INPUTS, route: 'tcp:5432' }, /has no tcp route matching port "5432" \(input 'route'\)/],
      [
        'a check over HTTP metrics on a TCP route',
        { ...INPUTS, 'prometheus-url': loadTestEnv().prometheusUrl, 'success-rate': '99' },
        /^Check success-rate \(input 'success-rate'\).* measures HTTP requests, but tcp route #1 of VirtualService .*\/mysql is a TCP route.*istio_tcp_connections_closed_total/
      ]
    ]
    it.each(cases)('%s', async (_what, inputs, message) => {
      const ns = await tcpNamespace('tcp-bad')
      const fingerprint = await namespaceFingerprint(ns)
      const { report } = await runAction({ ...inputs, manifests: writeManifest(deployment('v2')), namespace: ns })
      expect(report.result).toBe('unchanged')
      expect(report.error?.message).toMatch(message)
      expect(await namespaceWrites(fingerprint)).toEqual(NO_WRITES)
    })
  })
})
