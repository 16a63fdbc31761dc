/**
 * npm run bench: figures, not assertions. On the local cluster:
 *   1. cold start of dist/index.js to its first API request, and the process's peak memory;
 *   2. peak memory of a whole rollout run through dist/index.js;
 *   3. API requests and milliseconds per weight step, bake time and gates excluded;
 *   4. time from a failed gate to canary weight 0 confirmed by a read-back;
 *   5. how the per-step cost grows with a VirtualService of 100 routes and a DestinationRule of
 *      50 subsets.
 * Built on the fly by scripts/bench.mjs (esbuild) and run on Node 24.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import type { CheckResult } from '../src/rollout/types.js'
import type { GateContext, GateMoment, HealthGate } from '../src/health/health-gate.js'
import { makeCommandDeps } from '../src/commands/command-deps.js'
import { runCommand } from '../src/commands/run-command.js'
import { MemoryLog } from '../src/commands/runtime.js'
import { readConfig } from '../src/config/config.js'
import { parseGateConfig } from '../src/health/gate-config.js'
import type { RunReport } from '../src/report/run-report.js'
import { makeLargeDestinationRule, makeLargeService, makeLargeVirtualService } from '../__tests__/fixtures/istio/large.js'
import { testCluster, writeManifest } from '../__tests__/support/rollout-harness.js'
import { applyManifests, createTestNamespace, deleteNamespace, loadTestEnv, readSeedScenario, startSeedScenario, waitForDeploymentCondition } from '../__tests__/support/test-cluster.js'

const root = process.cwd()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n: number, digits = 1): string => n.toFixed(digits)

async function seedNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  await startSeedScenario(ns)
  return ns
}

/** A TCP relay in front of the apiserver that notes when the first connection arrives. */
async function firstRequestProbe(target: URL): Promise<{ port: number; first: () => number | undefined; close: () => void }> {
  let first: number | undefined
  const server = net.createServer((socket) => {
    first ??= performance.timeOrigin + performance.now()
    const upstream = net.connect(Number(target.port), target.hostname)
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    first: () => first,
    close: () => server.close()
  }
}

const MAXRSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('BENCH_MAXRSS_KB='+process.resourceUsage().maxRSS+'\\n'))`

/** Runs dist/index.js like the runner; returns wall time, exit code, peak RSS (MiB). */
async function runDist(inputs: Record<string, string>, kubeconfig: string): Promise<{ started: number; exited: number; code: number | null; maxRssMiB: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-bench-'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    GITHUB_OUTPUT: path.join(dir, 'out'),
    GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
    GITHUB_STATE: path.join(dir, 'state'),
    'INPUT_GITHUB-TOKEN': '',
    NODE_OPTIONS: `--import=${MAXRSS_HOOK}`
  }
  for (const f of ['out', 'summary', 'state']) fs.writeFileSync(path.join(dir, f), '')
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.timeOrigin + performance.now()
  const child = spawn(process.execPath, [path.join(root, 'dist', 'index.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.resume()
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const exited = performance.timeOrigin + performance.now()
  const kb = Number(/BENCH_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0)
  return { started, exited, code, maxRssMiB: kb / 1024 }
}

class FailingGate implements HealthGate {
  readonly name = 'bench-failing'
  readonly moments: readonly GateMoment[] = ['bake']
  failedAt = 0
  async preflight(_ctx: GateContext): Promise<void> {}
  async evaluate(_moment: GateMoment, ctx: GateContext): Promise<CheckResult[]> {
    if (ctx.canaryWeight < 25) return [{ name: 'bench', verdict: 'pass', value: 1 }]
    this.failedAt = performance.now()
    return [{ name: 'bench', verdict: 'fail', value: 0, threshold: '>= 1', detail: 'failing on purpose' }]
  }
}

interface StepCost {
  requests: number[]
  ms: number[]
}

/** Runs a rollout in-process and measures each weight step from the previous gate commit to the weight commit. */
async function measureSteps(inputs: Record<string, string>, extraGate?: FailingGate): Promise<{ cost: StepCost; report: RunReport; rollbackMs?: number }> {
  const config = readConfig({ settle: '0s', interval: '1s', 'check-every': '0', ...inputs })
  const gateConfig = parseGateConfig({ 'check-every': '0' }, {})
  const cluster = testCluster()
  const marks: Array<{ t: number; requests: number; weight: number; kind?: string; phase?: string }> = []
  let weightZeroAt: number | undefined
  const deps = makeCommandDeps({
    cluster,
    config,
    gateConfig,
    log: new MemoryLog(),
    signal: new AbortController().signal,
    holder: `bench ${process.pid}`,
    cwd: root,
    onProgress: (r) => {
      const t = performance.now()
      const s = r.state
      if (!s) return
      marks.push({ t, requests: cluster.requestCount, weight: s.canaryWeight, kind: s.history.at(-1)?.kind, phase: s.phase })
      if (s.phase === 'rolling-back' && s.canaryWeight === 0 && weightZeroAt === undefined) weightZeroAt = t
    }
  })
  if (extraGate) deps.gates.push(extraGate)
  const report = await runCommand(config, deps)
  const cost: StepCost = { requests: [], ms: [] }
  for (let i = 1; i < marks.length; i++) {
    if (marks[i].kind === 'weight' && marks[i - 1].kind === 'gates') {
      cost.requests.push(marks[i].requests - marks[i - 1].requests)
      cost.ms.push(marks[i].t - marks[i - 1].t)
    }
  }
  const rollbackMs = extraGate && weightZeroAt !== undefined ? weightZeroAt - extraGate.failedAt : undefined
  return { cost, report, rollbackMs }
}

async function main(): Promise<void> {
  const env = loadTestEnv()
  console.log(`istio-canary bench — node ${process.version}, ${os.cpus().length} cores, ${new Date().toISOString()}`)
  const namespaces: string[] = []
  try {
    // 1. Cold start to the first API request.
    const kc = fs.readFileSync(env.kubeconfigPath, 'utf8')
    const apiserver = new URL(/server: (\S+)/.exec(kc)![1])
    const probeStarts: number[] = []
    const probeRss: number[] = []
    for (let i = 0; i < 7; i++) {
      const probe = await firstRequestProbe(apiserver)
      const file = path.join(os.tmpdir(), `istio-canary-bench-kubeconfig-${process.pid}`)
      fs.writeFileSync(file, kc.replace(/server: \S+/, `server: https://127.0.0.1:${probe.port}`))
      const r = await runDist({ command: 'status', 'virtual-service': 'bench-none', namespace: 'default' }, file)
      probe.close()
      if (r.code !== 1 && r.code !== 0) throw new Error(`status run exited ${r.code}`)
      const first = probe.first()
      if (first === undefined) throw new Error('dist/index.js made no API request')
      probeStarts.push(first - r.started)
      probeRss.push(r.maxRssMiB)
    }
    console.log(`\n1. cold start of dist/index.js to its first API request (status command, 7 runs)`)
    console.log(`   median ${fmt(median(probeStarts))} ms, min ${fmt(Math.min(...probeStarts))} ms, max ${fmt(Math.max(...probeStarts))} ms   (target < 100 ms)`)
    console.log(`   peak RSS of those runs: median ${fmt(median(probeRss))} MiB`)

    // 2. Peak memory of a whole rollout through dist/index.js.
    const ns = await seedNamespace('bench-mem')
    namespaces.push(ns)
    const whole = await runDist(
      {
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'istio-virtualservice',
        namespace: ns,
        'version-label': 'istio-test-version',
        steps: '10,50,100',
        interval: '1s',
        settle: '0s',
        'check-every': '0'
      },
      env.kubeconfigPath
    )
    console.log(`\n2. a whole rollout (seed v1 -> v2, steps 10,50,100, 1 s bake) through dist/index.js`)
    console.log(`   exit ${whole.code}, wall ${fmt((whole.exited - whole.started) / 1000, 2)} s, peak RSS ${fmt(whole.maxRssMiB)} MiB   (target < 100 MiB)`)

    // 3. Per-step cost on the seed.
    const ns3 = await seedNamespace('bench-step')
    namespaces.push(ns3)
    const steps = await measureSteps({
      manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
      'virtual-service': 'istio-virtualservice',
      namespace: ns3,
      'version-label': 'istio-test-version',
      steps: '10,20,30,40,50,60,70,80,90,100'
    })
    if (steps.report.result !== 'promoted') throw new Error(`step bench ended ${steps.report.result}: ${steps.report.error?.message}`)
    console.log(`\n3. one weight step, bake and gates excluded (seed VirtualService, ${steps.cost.ms.length} steps)`)
    console.log(`   API requests: median ${median(steps.cost.requests)}, max ${Math.max(...steps.cost.requests)} (guarded PUT + read-back GET; the read-back of the last write is the base of the next)   (target <= 3)`)
    console.log(`   time: median ${fmt(median(steps.cost.ms))} ms, max ${fmt(Math.max(...steps.cost.ms))} ms   (target < 20 ms)`)
    console.log(`   whole run: ${steps.report.apiRequests ?? 'n/a'} API requests`)

    // 4. Failed gate -> weight 0 confirmed.
    const rollbacks: number[] = []
    for (let i = 0; i < 5; i++) {
      const ns4 = await seedNamespace('bench-rb')
      namespaces.push(ns4)
      const gate = new FailingGate()
      const r = await measureSteps(
        {
          manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
          'virtual-service': 'istio-virtualservice',
          namespace: ns4,
          'version-label': 'istio-test-version',
          steps: '10,25,100'
        },
        gate
      )
      if (r.report.result !== 'rolled-back' || r.rollbackMs === undefined) throw new Error(`rollback bench ended ${r.report.result}`)
      rollbacks.push(r.rollbackMs)
    }
    console.log(`\n4. a failed gate at 25 % to canary weight 0 confirmed by read-back (5 runs)`)
    console.log(`   median ${fmt(median(rollbacks))} ms, max ${fmt(Math.max(...rollbacks))} ms   (target < 100 ms)`)

    // 5. Scaling with a large VirtualService and DestinationRule.
    for (const [routes, subsets] of [
      [1, 1],
      [100, 50]
    ]) {
      const ns5 = await createTestNamespace(`bench-large-${routes}`)
      namespaces.push(ns5)
      const strip = <T extends { metadata: { namespace?: string; resourceVersion?: string } }>(o: T): T => {
        delete o.metadata.namespace
        delete o.metadata.resourceVersion
        return o
      }
      await applyManifests(ns5, [
        readSeedScenario('deployment-v1.yaml'),
        // The generators type their objects as the action's KubeObject (string timestamps).
        ...[makeLargeService(), makeLargeDestinationRule(subsets), makeLargeVirtualService(routes)].map((o) => JSON.stringify(strip(o)))
      ])
      await waitForDeploymentCondition(ns5, 'istio-deployment-v1', 'Available')
      const vsBytes = JSON.stringify(await testCluster().getIstio('VirtualService', ns5, 'large')).length
      const r = await measureSteps({
        manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
        'virtual-service': 'large',
        namespace: ns5,
        route: `route-${Math.floor(routes / 2)}`,
        'version-label': 'istio-test-version',
        steps: '10,20,30,40,50,60,70,80,90,100'
      })
      if (r.report.result !== 'promoted') throw new Error(`large bench ended ${r.report.result}: ${r.report.error?.message}`)
      console.log(`\n5. per step with ${routes} route(s) and ${subsets} subset(s) (VirtualService ${fmt(vsBytes / 1024)} KiB)`)
      console.log(`   requests median ${median(r.cost.requests)}, time median ${fmt(median(r.cost.ms))} ms, max ${fmt(Math.max(...r.cost.ms))} ms`)
    }
  } finally {
    await Promise.all(namespaces.map((n) => deleteNamespace(n).catch(() => undefined)))
  }
}

await main()
