import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { LeaseLock, leaseName, microTime } from '../../../src/cluster/lease-lock.js'
import { loadTimeZones } from '../../../src/config/freeze-windows.js'
import type { CommandDeps } from '../../../src/commands/command-deps.js'
import { runCommand } from '../../../src/commands/run-command.js'
import { MemoryLog, type Clock } from '../../../src/commands/runtime.js'
import { readConfig } from '../../../src/config/config.js'
import type { HealthGate } from '../../../src/health/health-gate.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { stateOf } from '../../../src/rollout/state-codec.js'
import { MemoryCluster, subsetRoutedService } from '../../support/memory-cluster.js'

// runCommand end to end over the in-memory Cluster: preflight, planCommand, the lock, the executor.
const NS = 'shop'

const passGate: HealthGate = {
  name: 'always',
  moments: ['bake'],
  preflight: async () => undefined,
  evaluate: async () => [{ name: 'always', verdict: 'pass' }]
}

function deployment(version: string): KubeObject {
  const labels = { app: 'web', version }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `web-${version}`, namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: `web:${version}` }] } }
    },
    status: { availableReplicas: 1 }
  }
}

function seed(): MemoryCluster {
  return new MemoryCluster([...subsetRoutedService(NS, { subset: 'v1', version: 'v1' }), deployment('v1')])
}

function manifestDir(version: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-unit-'))
  fs.writeFileSync(path.join(dir, 'deployment.yaml'), JSON.stringify(deployment(version)))
  return dir
}

async function run(cluster: MemoryCluster, inputs: Record<string, string>, startIso = '2026-01-01T00:00:00Z') {
  const config = readConfig({
    namespace: NS,
    'virtual-service': 'web',
    'version-label': 'version',
    settle: '0s',
    interval: '1s',
    ...inputs
  })
  let t = Date.parse(startIso)
  const clock: Clock = { now: () => t, sleep: async (ms) => void (t += ms) }
  const log = new MemoryLog()
  const deps: CommandDeps = {
    cluster,
    clock,
    log,
    signal: new AbortController().signal,
    gates: [passGate],
    policy: { failureThreshold: 1, inconclusiveLimit: 3, onNoData: 'pause' },
    checkEveryMs: 1000,
    holder: 'unit test',
    cwd: inputs.cwd ?? process.cwd(),
    makeLock: (namespace, virtualService) =>
      new LeaseLock(cluster, { namespace, virtualService, holder: 'unit test', leaseDurationSeconds: 15, now: () => new Date(t) }),
    waitForDeployment: async () => undefined
  }
  const report = await runCommand(config, deps)
  return { report, log }
}

const vs = (cluster: MemoryCluster) => cluster.get('VirtualService', NS, 'web')!

describe('runCommand without a cluster', () => {
  it('deploys v2 over v1 to the end: v2 carries all traffic, v1 is retired', async () => {
    const cluster = seed()
    const { report } = await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd: manifestDir('v2'), steps: '20,50,100' })
    expect(report.error).toBeUndefined()
    expect(report).toMatchObject({ result: 'promoted', stableVersion: 'v2', canaryWeight: 100 })
    expect(vs(cluster).spec.http[0].route).toEqual([{ destination: { host: 'web', subset: 'v2' }, weight: 100 }])
    expect(cluster.get('DestinationRule', NS, 'web')!.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v2'])
    expect(cluster.get('Deployment', NS, 'web-v1')!.spec.replicas).toBe(0)
    expect(
      stateOf(vs(cluster))!
        .history.filter((e) => e.kind === 'weight')
        .map((e) => e.canaryWeight)
    ).toEqual([20, 50, 100])
    // The lock was taken (its epoch is on the state) and released.
    expect(stateOf(vs(cluster))!.epoch).toBeGreaterThan(0)
    expect(cluster.list('Lease', NS)).toEqual([])
  })

  it('pauses at a pause step; a deploy of the same version again changes nothing, and takes no lock', async () => {
    const cluster = seed()
    const cwd = manifestDir('v2')
    const first = await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd, steps: '20,pause,100' })
    expect(first.report.result).toBe('paused')
    const writes = cluster.writes.length
    const again = await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd, steps: '20,pause,100' })
    expect(again.report.result).toBe('paused')
    expect(again.log.lines).toContain('The rollout of v2 is paused at 20%; run the promote command to continue.')
    expect(cluster.writes.length).toBe(writes)
    expect(cluster.list('Lease', NS)).toEqual([])
  })

  it('refuses another version mid-rollout, before any write', async () => {
    const cluster = seed()
    await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd: manifestDir('v2'), steps: '20,pause,100' })
    const writes = cluster.writes.length
    const { report } = await run(cluster, {
      command: 'deploy',
      manifests: 'deployment.yaml',
      cwd: manifestDir('v3'),
      steps: '20,pause,100'
    })
    expect(report.error).toEqual({
      kind: 'PreflightError',
      message: expect.stringContaining(`VirtualService "${NS}/web" is mid-rollout of "v2" (phase paused, 20% canary)`)
    })
    expect(cluster.writes.length).toBe(writes)
  })

  it('promote without a rollout is refused; abort without one does nothing', async () => {
    const cluster = seed()
    const promote = await run(cluster, { command: 'promote' })
    expect(promote.report.error).toEqual({
      kind: 'PreflightError',
      message: `There is no rollout to promote on VirtualService "${NS}/web".`
    })
    const abort = await run(cluster, { command: 'abort' })
    expect(abort.report.result).toBe('unchanged')
    expect(abort.log.lines).toContain(`No rollout in progress on ${NS}/web; nothing to abort.`)
    expect(cluster.writes).toEqual([])
  })

  it('aborts a paused rollout back to v1', async () => {
    const cluster = seed()
    await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd: manifestDir('v2'), steps: '20,pause,100' })
    const { report } = await run(cluster, { command: 'abort' })
    expect(report.result).toBe('aborted')
    expect(vs(cluster).spec.http[0].route).toEqual([{ destination: { host: 'web', subset: 'v1' }, weight: 100 }])
    expect(cluster.get('DestinationRule', NS, 'web')!.spec.subsets.map((s: { name: string }) => s.name)).toEqual(['v1'])
    expect(cluster.get('Deployment', NS, 'web-v2')!.spec.replicas).toBe(0)
  })

  it('a dry run checks the first writes and changes nothing', async () => {
    const cluster = seed()
    let dryRuns = 0
    cluster.beforeReplace = () => void dryRuns++
    const { report } = await run(cluster, {
      command: 'deploy',
      manifests: 'deployment.yaml',
      cwd: manifestDir('v2'),
      steps: '20,100',
      'dry-run': 'true'
    })
    expect(report.error).toBeUndefined()
    expect(report.plan).toContain('add subset v2 (version=v2) to DestinationRule web (dry run accepted)')
    expect(dryRuns).toBe(2)
    expect(cluster.writes).toEqual([])
  })

  it('a deploy that waited for the lock into a freeze window is refused before it writes, not even a Lease', async () => {
    await loadTimeZones()
    const cluster = seed()
    // Another run holds the lock until 00:02; the freeze starts at 00:01 (2026-01-01 is a Thursday).
    const other = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: leaseName('web'), namespace: NS },
      spec: { holderIdentity: 'another run', leaseDurationSeconds: 120, renewTime: microTime(new Date('2026-01-01T00:00:00Z')) }
    }
    cluster.put(other)
    const { report, log } = await run(cluster, {
      command: 'deploy',
      manifests: 'deployment.yaml',
      cwd: manifestDir('v2'),
      steps: '20,100',
      'lock-wait': '10m',
      'freeze-windows': 'Thu 00:01 - Thu 06:00 UTC'
    })
    expect(log.lines.some((l) => l.startsWith('Waiting for the lock on VirtualService shop/web: held by "another run"'))).toBe(true)
    expect(report.result).toBe('unchanged')
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toMatch(
      /^Input 'freeze-windows' refuses this deploy: it is Thu 2026-01-01 00:0\d UTC, inside the freeze window "Thu 00:01 - Thu 06:00 UTC" \(line 1\)/
    )
    expect(cluster.writes).toEqual([])
    expect(cluster.get('Lease', NS, leaseName('web'))!.spec.holderIdentity).toBe('another run')
  })

  it('the same wait outside any window goes ahead once the lock is free', async () => {
    await loadTimeZones()
    const cluster = seed()
    cluster.put({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: leaseName('web'), namespace: NS },
      spec: { holderIdentity: 'another run', leaseDurationSeconds: 120, renewTime: microTime(new Date('2026-01-01T00:00:00Z')) }
    })
    const { report } = await run(cluster, {
      command: 'deploy',
      manifests: 'deployment.yaml',
      cwd: manifestDir('v2'),
      steps: '20,100',
      'lock-wait': '10m',
      'freeze-windows': 'Thu 06:00 - Thu 08:00 UTC'
    })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
  })
})

describe('canary capacity without a cluster', () => {
  function withStable(replicas: number, extra: KubeObject[] = []): MemoryCluster {
    const cluster = seed()
    const v1 = cluster.get('Deployment', NS, 'web-v1')!
    cluster.put({ ...v1, spec: { ...v1.spec, replicas }, status: { availableReplicas: replicas } })
    for (const o of extra) cluster.put(o)
    return cluster
  }

  it('proportional: every weight write finds the canary already that large, and the promotion finds it as large as the stable', async () => {
    const cluster = withStable(10)
    const atWrites: Array<[number | undefined, number]> = []
    cluster.beforeReplace = (obj, store) => {
      if (obj.kind !== 'VirtualService') return
      const weight = (obj.spec.http[0].route as Array<{ destination: { subset: string }; weight?: number }>).find(
        (d) => d.destination.subset === 'v2'
      )?.weight
      atWrites.push([weight, Number(store.get('Deployment', NS, 'web-v2')?.status?.availableReplicas ?? 0)])
    }
    const { report } = await run(cluster, {
      command: 'deploy',
      manifests: 'deployment.yaml',
      cwd: manifestDir('v2'),
      steps: '20,50,100',
      'canary-replicas': 'proportional'
    })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    // No weight was ever written while the canary had fewer pods than its share.
    expect(atWrites.filter(([w, available]) => w !== undefined && available < Math.ceil((10 * w) / 100))).toEqual([])
    expect(atWrites.filter(([w]) => w !== undefined).map(([w, a]) => `${w}:${a}`)).toEqual(
      expect.arrayContaining(['20:2', '50:5', '100:10'])
    )
    expect(cluster.writes.filter((w) => w.startsWith('scale Deployment'))).toEqual([
      'scale Deployment web-v2 2',
      'scale Deployment web-v2 5',
      'scale Deployment web-v2 10',
      'scale Deployment web-v1 0'
    ])
    expect(stateOf(vs(cluster))!.capacity).toEqual({ mode: 'proportional' })
  })

  it('a ResourceQuota that cannot hold the canary is refused before any write', async () => {
    const quota: KubeObject = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'pods', namespace: NS },
      spec: { hard: { pods: '10' } },
      status: { used: { pods: '10' } }
    }
    const cluster = withStable(10, [quota])
    const { report } = await run(cluster, { command: 'deploy', manifests: 'deployment.yaml', cwd: manifestDir('v2'), steps: '20,100' })
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toMatch(
      /^ResourceQuota pods cannot hold the canary Deployment web-v2 at its first step: 1 replica\(s\) need 1 more pods/
    )
    expect(cluster.writes).toEqual([])
  })
})
