/**
 * Match and mirror steps through a real istiod and gRPC's proxyless xDS client (meshsim callers).
 * A header- or cookie-matched step: the callers that send the header (or the cookie) land on the
 * canary, every other caller stays on stable, with zero failed calls; the route goes with the abort.
 *
 * A mirror step: gRPC-Go's xDS client does not mirror (it reads the route's clusters, weights,
 * hash, retry and timeout, never RouteAction.request_mirror_policies), so the data plane here
 * cannot show mirrored calls. What is checked instead: the route configuration istiod pushes to the
 * caller carries the mirror policy to the canary's cluster at the step's percentage, the callers get
 * only the stable's responses, and (what gRPC does) the canary receives none of them.
 */
import { describe, expect, it } from '@jest/globals'
import {
  callerStats,
  loadTestEnv,
  readSeedScenario,
  splitOf,
  startCaller,
  startSeedScenario,
  stopCaller,
  waitFor
} from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { PROPAGATION_MS, shareOf, sleep, startSeedCaller, teardownAfterAll } from './mesh-support.js'

const { callers, meshNamespace } = teardownAfterAll()

const RPS = 60
const WINDOW_MS = 8000

function inputs(ns: string, steps: string): Record<string, string> {
  return {
    manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    steps,
    interval: '1s',
    settle: '2s'
  }
}

/** A caller that sends `headers` with every call, routed by istiod; waits until it gets answers. */
async function startHeaderCaller(ns: string, name: string, headers: Record<string, string>): Promise<void> {
  callers.push(() => stopCaller(ns, name))
  await startCaller(ns, name, { service: 'istio-service', rps: RPS, headers })
  await waitFor(
    async () => {
      const s = splitOf(await callerStats(ns, name, { since: Date.now() - 1000 }))
      return s.total >= RPS / 2 && s.failed === 0
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `caller ${ns}/${name} answered` }
  )
}

async function namespace(prefix: string): Promise<string> {
  const ns = await meshNamespace(prefix, [])
  await startSeedScenario(ns)
  return ns
}

/** Each caller's share of calls answered by v2 over the next window, after propagation. */
async function sharesNow(ns: string, names: string[]): Promise<Record<string, { percent: number; total: number; failed: number }>> {
  await sleep(PROPAGATION_MS)
  const since = Date.now()
  await sleep(WINDOW_MS)
  const until = Date.now()
  const out: Record<string, { percent: number; total: number; failed: number }> = {}
  for (const name of names) {
    const s = await shareOf(ns, name, 'istio-deployment-v2', since, until)
    out[name] = { percent: s.percent, total: s.total, failed: s.failed }
  }
  return out
}

describe('match steps move only the matching calls (istiod + proxyless gRPC)', () => {
  it('header:x-canary=always: the callers sending it land on v2, the others on v1; abort brings them back', async () => {
    const ns = await namespace('mesh-header')
    callers.push(() => stopCaller(ns, 'plain-user'))
    await startSeedCaller(ns, 'plain-user', RPS)
    await startHeaderCaller(ns, 'tester', { 'x-canary': 'always' })
    await startHeaderCaller(ns, 'other-value', { 'x-canary': 'never' })

    const { report } = await runAction(inputs(ns, 'header:x-canary=always,pause,100'))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('paused')
    const during = await sharesNow(ns, ['tester', 'other-value', 'plain-user'])
    console.log(`[mesh] header step: ${JSON.stringify(during)}`)
    expect(during.tester).toEqual({ percent: 100, total: expect.any(Number), failed: 0 })
    expect(during['other-value']).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })
    expect(during['plain-user']).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })
    for (const s of Object.values(during)) expect(s.total).toBeGreaterThan((RPS * WINDOW_MS) / 2000)

    const aborted = await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns })
    expect(aborted.report.result).toBe('aborted')
    const after = await sharesNow(ns, ['tester', 'plain-user'])
    expect(after.tester).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })
    expect(after['plain-user']).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })
  })

  it('cookie:beta=yes: a Cookie header with beta=yes among others lands on v2; beta=no and no cookie stay on v1', async () => {
    const ns = await namespace('mesh-cookie')
    await startHeaderCaller(ns, 'beta', { cookie: 'session=abc; beta=yes; theme=dark' })
    await startHeaderCaller(ns, 'not-beta', { cookie: 'session=abc; beta=no' })
    await startHeaderCaller(ns, 'lookalike', { cookie: 'notbeta=yes' })

    const { report } = await runAction(inputs(ns, 'cookie:beta=yes,pause,100'))
    expect(report.result).toBe('paused')
    const during = await sharesNow(ns, ['beta', 'not-beta', 'lookalike'])
    console.log(`[mesh] cookie step: ${JSON.stringify(during)}`)
    expect(during.beta).toEqual({ percent: 100, total: expect.any(Number), failed: 0 })
    expect(during['not-beta']).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })
    expect(during.lookalike).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })

    // The promotion's 100 % write removes the match route: everyone on v2.
    const promoted = await runAction({
      command: 'promote',
      'virtual-service': 'istio-virtualservice',
      namespace: ns,
      'version-label': 'istio-test-version'
    })
    expect(promoted.report.result).toBe('promoted')
    const after = await sharesNow(ns, ['beta', 'not-beta'])
    expect(after.beta).toEqual({ percent: 100, total: expect.any(Number), failed: 0 })
    expect(after['not-beta']).toEqual({ percent: 100, total: expect.any(Number), failed: 0 })
  })
})

/** Requests the workload's pods received (meshsim's reporter="destination" counter). */
async function receivedBy(ns: string, workload: string): Promise<number> {
  const text = await (await fetch(`${loadTestEnv().meshsimUrl}/metrics`)).text()
  let n = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue
    if (!line.includes('reporter="destination"')) continue
    if (!line.includes(`destination_workload="${workload}"`) || !line.includes(`destination_workload_namespace="${ns}"`)) continue
    n += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return n
}

/** Every object under `value` that has key `key` (depth-first). */
function objectsWith(value: unknown, key: string, out: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (Array.isArray(value)) for (const v of value) objectsWith(v, key, out)
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>
    if (key in o) out.push(o)
    for (const v of Object.values(o)) objectsWith(v, key, out)
  }
  return out
}

/**
 * The route configurations of the seed's service in namespace `ns` that istiod pushed to meshsim's
 * xDS clients (one connection per meshsim client, not per caller), from istiod's debug config_dump.
 */
async function routeConfigsOf(ns: string): Promise<unknown[]> {
  const debug = loadTestEnv().istiodDebugUrl
  const conns = (await (await fetch(`${debug}/debug/connections`)).json()) as { clients?: Array<{ connectionId: string }> }
  const host = `istio-service.${ns}.svc.cluster.local`
  const found: unknown[] = []
  for (const c of conns.clients ?? []) {
    const dump: unknown = await (await fetch(`${debug}/debug/config_dump?proxyID=${encodeURIComponent(c.connectionId)}`)).json()
    found.push(...objectsWith(dump, 'virtualHosts').filter((rc) => JSON.stringify(rc).includes(host)))
  }
  if (found.length === 0) throw new Error(`no xDS client of istiod has a route configuration for ${host}`)
  return found
}

/** The mirror policies in the route configurations of `ns`. */
async function mirrorPoliciesOf(ns: string): Promise<Array<Record<string, unknown>>> {
  return objectsWith(await routeConfigsOf(ns), 'requestMirrorPolicies').flatMap(
    (o) => o.requestMirrorPolicies as Array<Record<string, unknown>>
  )
}

describe('mirror steps (istiod + proxyless gRPC)', () => {
  it('istiod pushes the mirror policy to the canary at the percentage; callers get only v1; gRPC mirrors nothing', async () => {
    const ns = await namespace('mesh-mirror')
    callers.push(() => stopCaller(ns, 'client'))
    await startSeedCaller(ns, 'client', RPS)

    const { report } = await runAction(inputs(ns, 'mirror:50,pause,100'))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('paused')
    const v2Before = await receivedBy(ns, 'istio-deployment-v2')
    const during = await sharesNow(ns, ['client'])
    const v2After = await receivedBy(ns, 'istio-deployment-v2')
    expect(during.client).toEqual({ percent: 0, total: expect.any(Number), failed: 0 })

    const cluster = `outbound|80|v2|istio-service.${ns}.svc.cluster.local`
    let policies: Array<Record<string, unknown>> = []
    await waitFor(
      async () => {
        policies = await mirrorPoliciesOf(ns)
        return policies.length > 0
      },
      { timeoutMs: 10_000, intervalMs: 250, what: `a mirror policy in the route config of ${ns}/client` }
    )
    expect(policies).toHaveLength(1)
    const fraction = (policies[0].runtimeFraction as { defaultValue: { numerator?: number; denominator?: string } }).defaultValue
    const scale = fraction.denominator === 'MILLION' ? 10_000 : fraction.denominator === 'TEN_THOUSAND' ? 100 : 1
    expect({ cluster: policies[0].cluster, percent: (fraction.numerator ?? 0) / scale }).toEqual({ cluster, percent: 50 })
    console.log(
      `[mesh] mirror:50: xDS mirror policy ${JSON.stringify(policies[0])}; v2 received ${v2After - v2Before} calls of ${during.client.total} (gRPC does not mirror)`
    )
    expect(v2After - v2Before).toBe(0)

    // The abort's first write removes the mirror: istiod's next push has none.
    expect((await runAction({ command: 'abort', 'virtual-service': 'istio-virtualservice', namespace: ns })).report.result).toBe('aborted')
    await waitFor(async () => (await mirrorPoliciesOf(ns)).length === 0, {
      timeoutMs: 10_000,
      intervalMs: 250,
      what: `no mirror policy in the route config of ${ns}/client`
    })
  })
})
