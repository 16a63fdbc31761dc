/**
 * The ordering rules, read off the wire: every request the action sends to the real apiserver
 * passes through the fault proxy, whose log is the call log. And a
 * rollback the apiserver will not let finish says so loudly, with what to run by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startFaultProxy, type FaultProxy, type ProxyRequestLog } from '../../support/fault-proxy.js'
import { routeOf, runAction, snapshot, testCluster, writeManifest } from '../../support/rollout-harness.js'
import {
  createTestNamespace,
  deleteNamespace,
  kubeConfig,
  loadTestEnv,
  readSeedScenario,
  startSeedScenario
} from '../../support/test-cluster.js'

let proxy: FaultProxy
let proxiedKubeconfig: string
const namespaces: string[] = []

beforeAll(async () => {
  const upstream = kubeConfig().getCurrentCluster()
  if (!upstream) throw new Error('the test kubeconfig has no current cluster')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ordering-'))
  let caFile = upstream.caFile
  if (!caFile && upstream.caData) {
    caFile = path.join(dir, 'ca.crt')
    fs.writeFileSync(caFile, Buffer.from(upstream.caData, 'base64'))
  }
  proxy = await startFaultProxy({ target: upstream.server, caFile, insecure: upstream.skipTLSVerify })
  proxiedKubeconfig = path.join(dir, 'kubeconfig')
  fs.writeFileSync(proxiedKubeconfig, proxy.kubeconfigFor(loadTestEnv().kubeconfigPath))
})
afterAll(async () => {
  await proxy?.stop()
  await Promise.all(namespaces.map((n) => deleteNamespace(n)))
})

async function seedNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  namespaces.push(ns)
  await startSeedScenario(ns)
  return ns
}

/** The writes of one namespace, in order, as `METHOD kind` with their arrival times. */
function writes(ns: string): Array<{ what: string; at: number }> {
  return proxy.requests
    .filter((r: ProxyRequestLog) => r.method !== 'GET' && r.path.includes(`/namespaces/${ns}/`))
    .filter((r) => !r.path.includes('selfsubjectaccessreviews'))
    .map((r) => ({ what: `${r.method} ${/\/namespaces\/[^/]+\/([a-z]+)/.exec(r.path)?.[1] ?? r.path}`, at: r.at }))
}

const SETTLE_MS = 1500

describe('ordering on the wire', () => {
  it('adds the subset a settle before any weight moves, and removes the old one a settle after its destination left', async () => {
    const ns = await seedNamespace('order')
    proxy.clearLog()
    const { report } = await runAction(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '50,100',
        settle: '2s'
      },
      { kubeconfigPath: proxiedKubeconfig }
    )
    expect(report.result).toBe('promoted')
    const w = writes(ns)
    const kinds = w.map((x) => x.what)
    // Lease first and last; the canary applied before the DestinationRule is touched.
    expect(kinds[0]).toBe('POST leases')
    expect(kinds.at(-1)).toBe('DELETE leases')
    const apply = kinds.indexOf('PATCH deployments')
    const subsetAdded = kinds.indexOf('PUT destinationrules')
    const subsetRemoved = kinds.lastIndexOf('PUT destinationrules')
    expect(apply).toBeGreaterThan(0)
    expect(subsetAdded).toBeGreaterThan(apply)
    expect(subsetRemoved).toBeGreaterThan(subsetAdded)
    // Make before break: after the subset is added, the next VirtualService write (canary ready,
    // no weight yet) and the first weight come at least one settle later.
    const nextVs = w.findIndex((x, i) => i > subsetAdded && x.what === 'PUT virtualservices')
    expect(w[nextVs].at - w[subsetAdded].at).toBeGreaterThanOrEqual(SETTLE_MS)
    // Break after make: the old subset goes at least one settle after the last route write before it.
    const lastVsBefore = w
      .slice(0, subsetRemoved)
      .map((x) => x.what)
      .lastIndexOf('PUT virtualservices')
    expect(w[subsetRemoved].at - w[lastVsBefore].at).toBeGreaterThanOrEqual(SETTLE_MS)
    // The old Deployment is scaled down only after its subset left.
    expect(kinds.lastIndexOf('PATCH deployments')).toBeGreaterThan(subsetRemoved)
  })

  it('says loudly that traffic may still be split, and how to fix it by hand, when the rollback cannot finish', async () => {
    const ns = await seedNamespace('stuck')
    const first = await runAction({
      manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
      'virtual-service': 'istio-virtualservice',
      namespace: ns,
      'version-label': 'istio-test-version',
      steps: '30,pause,100'
    })
    expect(first.report.result).toBe('paused')
    // The DestinationRule refuses every write (a validation webhook down, say), for the whole run.
    const rule = proxy.addRule({
      match: { method: 'PUT', pathRegex: `/namespaces/${ns}/destinationrules/` },
      times: Infinity,
      action: { kind: 'status', status: 503 }
    })
    try {
      const { report } = await runAction(
        { command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns, settle: '0s' },
        { kubeconfigPath: proxiedKubeconfig, clusterOptions: { callDeadlineMs: 2000, minBackoffMs: 50 } }
      )
      expect(report.error?.kind).toBe('RollbackIncompleteError')
      expect(report.error?.message).toMatch(/^ROLLBACK INCOMPLETE: traffic may still be split between v1 and v2/)
      expect(report.error?.message).toMatch(/kubectl -n \S+ edit destinationrule istio-destinationrule\s+# remove subset v2/)
      expect(report.error?.message).toMatch(/kubectl -n \S+ scale deployment istio-deployment-v2 --replicas=0/)
      expect(rule.hits).toBeGreaterThan(1)
      // What could be done was done: no traffic on v2 any more.
      const vs = await snapshot(testCluster(), 'VirtualService', ns, 'istio-virtualservice')
      expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v1' }, weight: 100 }])
    } finally {
      proxy.clearRules()
    }
    // Once the apiserver accepts writes again, running abort again finishes the rollback.
    const again = await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns, settle: '0s' })
    expect(again.report.error).toBeUndefined()
    expect(['aborted', 'rolled-back']).toContain(again.report.result)
    const dr = await snapshot(testCluster(), 'DestinationRule', ns, 'istio-destinationrule')
    expect(dr.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
  })
})
