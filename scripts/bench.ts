/**
 * npm run bench: figures, not assertions. On the local cluster, each cost next to its floor
 * measured in the same run (the machine may be shared: ratios from one run are what compare):
 *   1. cold start of dist/index.js (status, with a GitHub token and context as on a runner) to its
 *      first API request, against the floor (node + KubeConfig + one HTTPS request,
 *      scripts/bench-floor.ts), interleaved run by run; peak RSS of `status`;
 *   2. peak RSS of a whole rollout through dist/index.js with GitHub reporting (local fake GitHub);
 *   3. API requests and milliseconds per weight step, bake time and gates excluded, against the API
 *      server's own GET + PUT of the same VirtualService over the same kind of keep-alive agent,
 *      and against the step's own two requests sent raw (PUT + read-back at the written version),
 *      each floor sample taken as a step meets the API server: after the same idle and one write of
 *      the same object (on this machine a request after 300 ms of idle takes about twice as long);
 *      then the API server's own time for each of the three (its apiserver_request_duration_seconds),
 *      which the machine's load on the client side does not reach;
 *   4. the same with a VirtualService of 100 routes and a DestinationRule of 50 subsets;
 *   5. a whole seed rollout (10,25,50,100; bake 1 s; Prometheus gates): wall time minus the
 *      configured bakes and settles, API requests and Prometheus queries;
 *   6. time from a failed gate to canary weight 0 confirmed by a read-back.
 * Built on the fly by scripts/bench.mjs (esbuild) and run on Node 24.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import type { CheckResult } from '../src/rollout/types.js'
import type { GateContext, GateMoment, HealthGate } from '../src/health/health-gate.js'
import { makeCommandDeps } from '../src/commands/command-deps.js'
import { runCommand } from '../src/commands/run-command.js'
import { MemoryLog, systemClock, type Clock } from '../src/commands/runtime.js'
import { readConfig } from '../src/config/config.js'
import { parseGateConfig } from '../src/health/gate-config.js'
import type { RunReport } from '../src/report/run-report.js'
import { startFakeGithub } from '../__tests__/support/fake-github.js'
import { makeLargeDestinationRule, makeLargeService, makeLargeVirtualService } from '../__tests__/fixtures/istio/large.js'
import { testCluster, writeManifest } from '../__tests__/support/rollout-harness.js'
import {
  applyManifests,
  clearTraffic,
  createTestNamespace,
  deleteNamespace,
  kubeConfig,
  loadTestEnv,
  readSeedScenario,
  setTraffic,
  startSeedScenario,
  waitForDeploymentCondition
} from '../__tests__/support/test-cluster.js'

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

interface ProcessRun {
  started: number
  exited: number
  code: number | null
  maxRssMiB: number
  stdout: string
}

/** Runs a script like the runner runs dist/index.js; returns wall time, exit code, peak RSS (MiB). */
async function runNode(
  script: string,
  kubeconfig: string,
  inputs: Record<string, string> = {},
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<ProcessRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-bench-'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    GITHUB_OUTPUT: path.join(dir, 'out'),
    GITHUB_STEP_SUMMARY: path.join(dir, 'summary'),
    GITHUB_STATE: path.join(dir, 'state'),
    'INPUT_GITHUB-TOKEN': '',
    NODE_OPTIONS: `--import=${MAXRSS_HOOK}`,
    ...extraEnv
  }
  for (const f of ['out', 'summary', 'state']) fs.writeFileSync(path.join(dir, f), '')
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.timeOrigin + performance.now()
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr.on('data', (d) => (stderr += d))
  child.stdout.on('data', (d) => (stdout += d))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const exited = performance.timeOrigin + performance.now()
  fs.rmSync(dir, { recursive: true, force: true })
  const kb = Number(/BENCH_MAXRSS_KB=(\d+)/.exec(stderr)?.[1] ?? 0)
  return { started, exited, code, maxRssMiB: kb / 1024, stdout }
}

/** An HTTP relay in front of Prometheus that counts the queries. */
async function countingRelay(target: string): Promise<{ url: string; count: () => number; close: () => void }> {
  let n = 0
  const t = new URL(target)
  const server = http.createServer((req, res) => {
    n++
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, count: () => n, close: () => server.close() }
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
  /** When each step started (performance.now()), to pair it with the floor samples of the bake before it. */
  at: number[]
  /** Of ms, the time spent in Cluster calls. */
  apiMs: number[]
  /** CPU time of this process (user + system) during the step: independent of the machine's load. */
  cpuMs: number[]
}

/** CPU time (user + system) of this process so far, in ms. */
function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

interface Measured {
  /** Durations of every Cluster call of the run, by method. */
  byMethod: Record<string, number[]>
  inStep: Record<string, number[]>
  cost: StepCost
  report: RunReport
  rollbackMs?: number
  wallMs: number
  /** Time slept through the clock: bakes (interval) and settles, as configured. */
  bakeMs: number
  settleMs: number
  apiRequests: number
}

/** Runs a rollout in-process and measures each weight step from the previous gate commit to the weight commit. */
async function measureSteps(
  inputs: Record<string, string>,
  extraGate?: FailingGate,
  gateInputs: Record<string, string> = { 'check-every': '0' },
  floor?: FloorProbe
): Promise<Measured> {
  const config = readConfig({ settle: '0s', interval: '1s', 'check-every': '0', ...inputs })
  const gateConfig = parseGateConfig(gateInputs, {})
  const real = testCluster()
  // Time spent waiting on the Cluster port, to tell API time from the rollout's own work.
  let apiMs = 0
  const byMethod: Record<string, number[]> = {}
  /** The same, only for calls made inside a weight step (after a gate commit, before the next commit). */
  const inStep: Record<string, number[]> = {}
  const cluster = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => {
        const t0 = performance.now()
        const stepCall = marks.at(-1)?.kind === 'gates'
        const out = v.apply(target, args)
        if (out instanceof Promise)
          return out.finally(() => {
            const d = performance.now() - t0
            apiMs += d
            ;(byMethod[String(prop)] ??= []).push(d)
            if (stepCall) (inStep[String(prop)] ??= []).push(d)
            if (stepCall && process.env.BENCH_TRACE) trace.push(`${String(prop)} +${(t0 - marks.at(-1)!.t).toFixed(1)} ${d.toFixed(1)} ms`)
          })
        return out
      }
    }
  })
  const marks: Array<{ t: number; cpu: number; requests: number; apiMs: number; weight: number; kind?: string; phase?: string }> = []
  /** BENCH_TRACE=1: each call in a step, its start after the gate commit and its duration. */
  const trace: string[] = []
  let weightZeroAt: number | undefined
  let bakeMs = 0
  let settleMs = 0
  const settle = config.settleSeconds * 1000
  const clock: Clock = {
    now: systemClock.now,
    sleep: async (ms, signal) => {
      const t0 = performance.now()
      try {
        // Floor samples go into the bakes (never into a settle), so they share the load of the steps,
        // and each meets the API server as a step does: after the same stretch of idle and one write
        // of the same object (a step follows the bake's idle and the write of the gates' verdict).
        if (floor && ms >= 300 && ms !== settle) {
          // As many samples as leave at least MIN_IDLE_MS before each (one at least: a large object's takes long).
          let k = FLOOR_SAMPLES_PER_BAKE
          while (k > 1 && (ms - k * floor.sampleMs) / (k + 1) < MIN_IDLE_MS) k--
          const gap = Math.max(MIN_IDLE_MS, (ms - k * floor.sampleMs) / (k + 1))
          for (let i = 0; i < k; i++) {
            await systemClock.sleep(gap, signal)
            await floor.sample()
          }
        }
        const left = ms - (performance.now() - t0)
        if (left > 0) await systemClock.sleep(left, signal)
      } finally {
        if (settle > 0 && ms === settle) settleMs += performance.now() - t0
        else bakeMs += performance.now() - t0
      }
    }
  }
  const deps = makeCommandDeps({
    cluster,
    config,
    gateConfig,
    clock,
    log: new MemoryLog(),
    signal: new AbortController().signal,
    holder: `bench ${process.pid}`,
    cwd: root,
    onProgress: (r) => {
      const t = performance.now()
      const s = r.state
      if (!s) return
      marks.push({
        t,
        cpu: cpuMs(),
        requests: cluster.requestCount,
        apiMs,
        weight: s.canaryWeight,
        kind: s.history.at(-1)?.kind,
        phase: s.phase
      })
      if (s.phase === 'rolling-back' && s.canaryWeight === 0 && weightZeroAt === undefined) weightZeroAt = t
      if (process.env.BENCH_TRACE && marks.at(-2)?.kind === 'gates') {
        console.log(`   step to ${s.history.at(-1)?.kind} ${s.canaryWeight}: ${(t - marks.at(-2)!.t).toFixed(1)} ms: ${trace.join(', ')}`)
        trace.length = 0
      }
    }
  })
  if (extraGate) deps.gates.push(extraGate)
  const t0 = performance.now()
  const report = await runCommand(config, deps)
  const wallMs = performance.now() - t0
  const cost: StepCost = { requests: [], ms: [], at: [], apiMs: [], cpuMs: [] }
  for (let i = 1; i < marks.length; i++) {
    if (marks[i].kind === 'weight' && marks[i - 1].kind === 'gates') {
      cost.requests.push(marks[i].requests - marks[i - 1].requests)
      cost.ms.push(marks[i].t - marks[i - 1].t)
      cost.at.push(marks[i - 1].t)
      cost.apiMs.push(marks[i].apiMs - marks[i - 1].apiMs)
      cost.cpuMs.push(marks[i].cpu - marks[i - 1].cpu)
    }
  }
  const rollbackMs = extraGate && weightZeroAt !== undefined ? weightZeroAt - extraGate.failedAt : undefined
  real.close()
  return { byMethod, inStep, cost, report, rollbackMs, wallMs, bakeMs, settleMs, apiRequests: cluster.requestCount }
}

/**
 * The API server's own time for one weight step, over a keep-alive https agent with the
 * credentials applied once, on copies of the rolled-out VirtualService (same size: they carry its
 * live annotations, the rollout state included, and a weight moved back and forth, with the same
 * field manager), sampled during the bakes of the rollout so floor and step share the machine's
 * load. Two shapes, each on its own copy:
 *   - GET + PUT: the read a guarded write needs, then the write under its resourceVersion;
 *   - PUT + read-back: exactly the requests a step sends (PUT under the resourceVersion of the
 *     last read-back, then GET ?resourceVersion=<written>, answered from the watch cache).
 */
interface VsJson {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string }
  spec: { http?: Array<{ route?: Array<{ weight?: number }> }> }
}

interface FloorShape {
  times: number[]
  /** When each sample ended (performance.now()). */
  at: number[]
  /** First and second request of the pair. */
  first: number[]
  second: number[]
  cpu: number[]
}
const shape = (): FloorShape => ({ times: [], at: [], first: [], second: [], cpu: [] })

/**
 * Each step over the floor sampled in the bake just before it (the same minute of the machine's
 * load), then the median of those ratios: steady under a load that drifts during the run, like the
 * run-by-run pairs of section 1.
 */
function pairedRatio(cost: StepCost, floor: FloorShape): number {
  const ratios: number[] = []
  for (let i = 0; i < cost.ms.length; i++) {
    const since = i > 0 ? cost.at[i - 1] : -Infinity
    const near = floor.times.filter((_, j) => floor.at[j] > since && floor.at[j] < cost.at[i])
    if (near.length > 0) ratios.push(cost.ms[i] / median(near))
  }
  return ratios.length > 0 ? median(ratios) : NaN
}

/** Floor samples in each bake, spaced so the idle before each equals the idle before the step. */
const FLOOR_SAMPLES_PER_BAKE = 3
const MIN_IDLE_MS = 200

class FloorProbe {
  /** GET + PUT (the issue's floor). */
  readonly getPut = shape()
  /** PUT + read-back GET at the written resourceVersion (the step's own requests). */
  readonly putBack = shape()
  private agent?: https.Agent
  private headers: Record<string, string> = {}
  private server!: URL
  private base = ''
  private n = 0
  private samples = 0
  /** Writes per copy: each copy's weight point moves back and forth. */
  private readonly writes = new Map<string, number>()
  /** Each copy as its last read-back showed it. */
  private readonly lastBack = new Map<string, VsJson>()
  /** Duration of the last sample (warm-up included), to space the samples of a bake. */
  sampleMs = 30
  /** The rolled-out VirtualService, read before the clock starts (refreshLive). */
  private live?: VsJson

  constructor(
    private readonly namespace: string,
    private readonly source: string,
    /** A snapshot of the rolled-out VirtualService to write instead of reading it live each sample. */
    private readonly frozen?: VsJson,
    /** Prefix of the copies' names, so several probes can work in one namespace. */
    private readonly tag = ''
  ) {}

  /** The rolled-out VirtualService as the last sample read it. */
  get lastLive(): VsJson | undefined {
    return this.live
  }

  async init(): Promise<void> {
    const kc = kubeConfig()
    const opts: https.RequestOptions = {}
    await kc.applyToHTTPSOptions(opts)
    this.server = new URL(kc.getCurrentCluster()!.server)
    this.headers = { ...(opts.headers as Record<string, string>), Accept: 'application/json' }
    this.agent = new https.Agent({
      keepAlive: true,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized
    })
    this.base = `/apis/networking.istio.io/v1/namespaces/${this.namespace}/virtualservices`
    const src = JSON.parse(await this.send('GET', `${this.base}/${this.source}`)) as {
      metadata: { name: string; labels?: Record<string, string> }
      spec: unknown
    }
    for (const suffix of ['floor', 'floor-step']) {
      const copy = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: this.copyName(suffix), labels: src.metadata.labels },
        spec: src.spec
      }
      await this.send('POST', this.base, JSON.stringify(copy))
    }
    for (const suffix of ['floor', 'floor-step']) this.lastBack.set(suffix, JSON.parse(await this.send('GET', this.path(suffix))) as VsJson)
    await this.refreshLive()
    for (let i = 0; i < 4; i++) await this.sample(false) // warm the connection and the caches
  }

  /**
   * One sample of one shape, the shapes taken in turn: first a write of the same copy and its
   * read-back, untimed (a step follows the write that records the gates' verdict), then the two
   * timed requests; then a read of the rolled-out VirtualService for the next sample's body.
   */
  async sample(record = true): Promise<void> {
    const t = performance.now()
    const getPut = this.samples++ % 2 === 0
    const copy = getPut ? 'floor' : 'floor-step'
    await this.writeBack(copy, this.next(copy, this.lastBack.get(copy)!))
    if (getPut) await this.sampleGetPut(record)
    else await this.samplePutBack(record)
    await this.refreshLive()
    this.sampleMs = performance.now() - t
  }

  /** PUT a copy and read it back at the written version. */
  private async writeBack(copy: string, body: VsJson): Promise<void> {
    const p = this.path(copy)
    const written = JSON.parse(await this.send('PUT', `${p}?fieldManager=istio-canary`, JSON.stringify(body))) as VsJson
    this.lastBack.set(copy, JSON.parse(await this.send('GET', `${p}?resourceVersion=${written.metadata.resourceVersion}`)) as VsJson)
  }

  /** Reads the rolled-out VirtualService (its state annotation grows with the history). */
  async refreshLive(): Promise<void> {
    if (this.frozen) {
      this.live = this.frozen
      return
    }
    this.live = JSON.parse(await this.send('GET', `${this.base}/${this.source}`)) as VsJson
  }

  /** The rolled-out VirtualService's annotations and spec, a weight point moved: a step's change. */
  private next(copy: string, vs: VsJson): VsJson {
    this.n++
    const w = (this.writes.get(copy) ?? 0) + 1
    this.writes.set(copy, w)
    const live = this.live!
    const out = structuredClone(vs)
    out.metadata.annotations = { ...live.metadata.annotations, 'bench.istio-canary/floor': String(this.n) }
    const spec = structuredClone(live.spec)
    const route = spec.http?.find((r) => (r.route?.length ?? 0) >= 2)?.route
    if (route) {
      const d = w % 2 === 0 ? 1 : -1
      const [a, b] = [route[0].weight ?? 0, route[1].weight ?? 0]
      if (a + d >= 0 && b - d >= 0) {
        route[0].weight = a + d
        route[1].weight = b - d
      }
    }
    out.spec = spec
    return out
  }

  async sampleGetPut(record: boolean): Promise<void> {
    const p = this.path('floor')
    const template = this.next('floor', { metadata: {}, spec: {} })
    const t0 = performance.now()
    const c0 = cpuMs()
    const vs = JSON.parse(await this.send('GET', p)) as VsJson
    const t1 = performance.now()
    vs.metadata.annotations = template.metadata.annotations
    vs.spec = template.spec
    this.lastBack.set('floor', JSON.parse(await this.send('PUT', `${p}?fieldManager=istio-canary`, JSON.stringify(vs))) as VsJson)
    if (record) this.record(this.getPut, t0, t1, c0)
  }

  async samplePutBack(record: boolean): Promise<void> {
    const p = this.path('floor-step')
    const body = this.next('floor-step', this.lastBack.get('floor-step')!)
    const t0 = performance.now()
    const c0 = cpuMs()
    const written = JSON.parse(await this.send('PUT', `${p}?fieldManager=istio-canary`, JSON.stringify(body))) as VsJson
    const t1 = performance.now()
    this.lastBack.set(
      'floor-step',
      JSON.parse(await this.send('GET', `${p}?resourceVersion=${written.metadata.resourceVersion}`)) as VsJson
    )
    if (record) this.record(this.putBack, t0, t1, c0)
  }

  private record(s: FloorShape, t0: number, t1: number, c0: number): void {
    const t2 = performance.now()
    s.first.push(t1 - t0)
    s.second.push(t2 - t1)
    s.times.push(t2 - t0)
    s.at.push(t2)
    s.cpu.push(cpuMs() - c0)
  }

  private path(suffix: string): string {
    return `${this.base}/${this.copyName(suffix)}`
  }

  copyName(suffix: string): string {
    return `${this.source}-${this.tag}${suffix}`
  }

  close(): void {
    this.agent?.destroy()
  }

  send(method: string, p: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.server.hostname,
          port: this.server.port,
          path: p,
          method,
          agent: this.agent,
          headers: { ...this.headers, ...(body ? { 'Content-Type': 'application/json' } : {}) }
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          res.on('end', () =>
            (res.statusCode ?? 0) < 300 ? resolve(text) : reject(new Error(`${method} ${p}: ${res.statusCode} ${text.slice(0, 200)}`))
          )
        }
      )
      req.on('error', reject)
      req.end(body)
    })
  }
}

/** Sum and count of apiserver_request_duration_seconds for VirtualService requests, by verb. */
async function vsServerTime(probe: FloorProbe): Promise<Map<string, { sum: number; count: number }>> {
  const text = await probe.send('GET', '/metrics')
  const out = new Map<string, { sum: number; count: number }>()
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_duration_seconds_') || !line.includes('resource="virtualservices"')) continue
    const m = /^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/.exec(line)
    if (!m || !m[2].includes('dry_run=""')) continue
    const verb = /verb="([^"]+)"/.exec(m[2])![1]
    const e = out.get(verb) ?? { sum: 0, count: 0 }
    e[m[1] as 'sum' | 'count'] += Number(m[3])
    out.set(verb, e)
  }
  return out
}

/**
 * The API server's own time (its apiserver_request_duration_seconds, from handler start to
 * response written: no client, no network, no client-side queueing) for the step's requests and
 * for the floor's, in blocks of `n` of one shape at a time (the metric has no object name), three
 * rounds in turn. The step's requests go through the real adapter (KubeCluster.replaceIstio +
 * getIstio notOlderThan, as IstioRouter sends them); the floors' raw, as in FloorProbe.
 */
async function serverSide(
  namespace: string,
  source: string,
  live: VsJson,
  n = 20
): Promise<Record<string, { get: number; put: number; wall: number }>> {
  const probe = new FloorProbe(namespace, source, live, 'server-')
  await probe.init()
  const c = testCluster()
  const adapterName = probe.copyName('adapter')
  const src = (await c.getIstio('VirtualService', namespace, probe.copyName('floor-step')))!
  await probe.send(
    'POST',
    `/apis/networking.istio.io/v1/namespaces/${namespace}/virtualservices`,
    JSON.stringify({
      apiVersion: src.apiVersion,
      kind: src.kind,
      metadata: { name: adapterName, annotations: src.metadata.annotations },
      spec: src.spec
    })
  )
  let back = (await c.getIstio('VirtualService', namespace, adapterName))!
  let k = 0
  const adapterStep = async (): Promise<void> => {
    const body = structuredClone(back)
    body.metadata.annotations = { ...body.metadata.annotations, 'bench.istio-canary/floor': String(++k) }
    const route = (body.spec.http as Array<{ route?: Array<{ weight?: number }> }>).find((r) => (r.route?.length ?? 0) >= 2)?.route
    if (route) {
      const d = k % 2 === 0 ? 1 : -1
      if ((route[0].weight ?? 0) + d >= 0 && (route[1].weight ?? 0) - d >= 0) {
        route[0].weight = (route[0].weight ?? 0) + d
        route[1].weight = (route[1].weight ?? 0) - d
      }
    }
    const written = await c.replaceIstio(body)
    back = (await c.getIstio('VirtualService', namespace, adapterName, { notOlderThan: written.metadata.resourceVersion }))!
  }
  const shapes: Record<string, { run: () => Promise<unknown>; get: number[]; put: number[]; wall: number[] }> = {
    'step (adapter)': { run: adapterStep, get: [], put: [], wall: [] },
    'PUT + read-back': { run: () => probe.samplePutBack(false), get: [], put: [], wall: [] },
    'GET + PUT': { run: () => probe.sampleGetPut(false), get: [], put: [], wall: [] }
  }
  for (let round = 0; round < 3; round++) {
    for (const [, sh] of Object.entries(shapes)) {
      await probe.refreshLive()
      const m0 = await vsServerTime(probe)
      const walls: number[] = []
      for (let i = 0; i < n; i++) {
        const t = performance.now()
        await sh.run()
        walls.push(performance.now() - t)
        await new Promise((r) => setTimeout(r, 20))
      }
      const m1 = await vsServerTime(probe)
      const mean = (verb: string): number => {
        const a = m0.get(verb) ?? { sum: 0, count: 0 }
        const b = m1.get(verb)!
        return ((b.sum - a.sum) / (b.count - a.count)) * 1000
      }
      sh.get.push(mean('GET'))
      sh.put.push(mean('PUT'))
      sh.wall.push(median(walls))
    }
  }
  c.close()
  probe.close()
  const out: Record<string, { get: number; put: number; wall: number }> = {}
  for (const [name, sh] of Object.entries(shapes)) out[name] = { get: median(sh.get), put: median(sh.put), wall: median(sh.wall) }
  return out
}

/** KubeCluster.getIstio against a raw GET of the same object over a keep-alive agent, interleaved. */
/**
 * What idle does to the API server's answer on this machine: the same raw PUT + read-back of a copy,
 * right after another write of it and after 300 ms of idle (interleaved, median of 15 each).
 */
async function idlePenalty(namespace: string, source: string, live: VsJson): Promise<{ warm: number; idle: number }> {
  const probe = new FloorProbe(namespace, source, live, 'idle-')
  await probe.init()
  const warm: number[] = []
  const idle: number[] = []
  for (let i = 0; i < 15; i++) {
    await probe.samplePutBack(false)
    let t = performance.now()
    await probe.samplePutBack(false)
    warm.push(performance.now() - t)
    await new Promise((r) => setTimeout(r, 300))
    t = performance.now()
    await probe.samplePutBack(false)
    idle.push(performance.now() - t)
  }
  probe.close()
  return { warm: median(warm), idle: median(idle) }
}

async function clientOverhead(namespace: string): Promise<{ ours: number; raw: number }> {
  const kc = kubeConfig()
  const opts: https.RequestOptions = {}
  await kc.applyToHTTPSOptions(opts)
  const server = new URL(kc.getCurrentCluster()!.server)
  const agent = new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key })
  const p = `/apis/networking.istio.io/v1/namespaces/${namespace}/virtualservices/istio-virtualservice`
  const raw = (): Promise<void> =>
    new Promise((resolve, reject) => {
      https
        .get(
          {
            host: server.hostname,
            port: server.port,
            path: p,
            agent,
            headers: { ...(opts.headers as Record<string, string>), Accept: 'application/json' }
          },
          (res) => {
            let t = ''
            res.setEncoding('utf8')
            res.on('data', (c: string) => (t += c))
            res.on('end', () => {
              JSON.parse(t)
              resolve()
            })
          }
        )
        .on('error', reject)
    })
  const cluster = testCluster()
  await cluster.getIstio('VirtualService', namespace, 'istio-virtualservice')
  await raw()
  const ours: number[] = []
  const rawTimes: number[] = []
  for (let i = 0; i < 60; i++) {
    let t = performance.now()
    await raw()
    rawTimes.push(performance.now() - t)
    t = performance.now()
    await cluster.getIstio('VirtualService', namespace, 'istio-virtualservice')
    ours.push(performance.now() - t)
  }
  cluster.close()
  agent.destroy()
  return { ours: median(ours), raw: median(rawTimes) }
}

function seedInputs(ns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    ...extra
  }
}

/** BENCH_SECTIONS=3,4 runs only those sections (default: all). */
const only = new Set((process.env.BENCH_SECTIONS ?? '1,2,3,4,5,6').split(',').map((x) => x.trim()))

async function main(): Promise<void> {
  const env = loadTestEnv()
  const [l1, l5] = os.loadavg()
  console.log(
    `istio-canary bench — node ${process.version}, ${os.cpus().length} cores, load average ${fmt(l1, 2)} (1 min) ${fmt(l5, 2)} (5 min), ${new Date().toISOString()}`
  )
  const namespaces: string[] = []
  const dist = path.join(root, 'dist', 'index.js')
  const floorScript = path.join(root, '.bench', 'out', 'floor.mjs')
  try {
    // 1. Cold start to the first API request, next to the floor, interleaved run by run.
    if (only.has('1')) {
      const kc = fs.readFileSync(env.kubeconfigPath, 'utf8')
      const apiserver = new URL(/server: (\S+)/.exec(kc)![1])
      const ours: number[] = []
      const floor: number[] = []
      const ratios: number[] = []
      const oursRss: number[] = []
      const floorRss: number[] = []
      const RUNS = 15
      // As a workflow runs it: the github-token input defaults to the job's token, and the runner
      // sets the repository and the commit, so the reporter is ready to comment (here on a local fake GitHub).
      const gh1 = await startFakeGithub({ owner: 'acme', repo: 'shop', prs: [] })
      const runner = {
        'INPUT_GITHUB-TOKEN': 'bench-token',
        GITHUB_REPOSITORY: 'acme/shop',
        GITHUB_SHA: 'be4c4'.padEnd(40, '0'),
        GITHUB_EVENT_NAME: 'push',
        GITHUB_RUN_ID: '1',
        GITHUB_API_URL: gh1.url,
        GITHUB_SERVER_URL: 'https://github.example'
      }
      try {
        for (let i = 0; i < RUNS; i++) {
          const pair: number[] = []
          for (const which of i % 2 === 0 ? ['floor', 'ours'] : ['ours', 'floor']) {
            const probe = await firstRequestProbe(apiserver)
            const file = path.join(os.tmpdir(), `istio-canary-bench-kubeconfig-${process.pid}`)
            fs.writeFileSync(file, kc.replace(/server: \S+/, `server: https://127.0.0.1:${probe.port}`))
            const r =
              which === 'ours'
                ? await runNode(dist, file, { command: 'status', 'virtual-service': 'bench-none', namespace: 'default' }, runner)
                : await runNode(floorScript, file)
            probe.close()
            if (which === 'ours' && r.code !== 1 && r.code !== 0) throw new Error(`status run exited ${r.code}`)
            if (which === 'floor' && r.code !== 0) throw new Error(`floor run exited ${r.code}`)
            const first = probe.first()
            if (first === undefined) throw new Error(`${which} made no API request`)
            ;(which === 'ours' ? ours : floor).push(first - r.started)
            ;(which === 'ours' ? oursRss : floorRss).push(r.maxRssMiB)
            pair[which === 'ours' ? 0 : 1] = first - r.started
          }
          ratios.push(pair[0] / pair[1])
        }
      } finally {
        await gh1.stop()
      }
      console.log(
        `\n1. cold start to the first API request (${RUNS} runs each, interleaved; status with a GitHub token and context, as on a runner)`
      )
      console.log(`   floor (node + KubeConfig + one HTTPS request): median ${fmt(median(floor))} ms, min ${fmt(Math.min(...floor))} ms`)
      console.log(`   dist/index.js status:                          median ${fmt(median(ours))} ms, min ${fmt(Math.min(...ours))} ms`)
      console.log(
        `   ratio to the floor: ${fmt(median(ratios), 2)}x median of run-by-run pairs (goal <= 1.25x); ` +
          `${fmt(median(ours) / median(floor), 2)}x of the medians, ${fmt(Math.min(...ours) / Math.min(...floor), 2)}x of the minimums`
      )
      console.log(`   peak RSS: status median ${fmt(median(oursRss))} MiB (goal <= 70 MiB); floor ${fmt(median(floorRss))} MiB`)
    }

    // 2. Peak memory of a whole rollout through dist/index.js, without and with GitHub reporting.
    if (only.has('2')) {
      console.log(`\n2. a whole rollout (seed v1 -> v2, steps 10,50,100, 1 s bake) through dist/index.js`)
      for (const github of [false, true]) {
        const ns2 = await seedNamespace('bench-mem')
        namespaces.push(ns2)
        const sha = 'be4c4'.padEnd(40, '0')
        const gh = github ? await startFakeGithub({ owner: 'acme', repo: 'shop', prs: [{ number: 7, headSha: sha }] }) : undefined
        let whole: ProcessRun
        try {
          whole = await runNode(
            dist,
            env.kubeconfigPath,
            {
              ...seedInputs(ns2, { steps: '10,50,100', interval: '1s', settle: '0s', 'check-every': '0' }),
              'pr-comment': 'true',
              'deployment-environment': 'bench'
            },
            gh
              ? {
                  'INPUT_GITHUB-TOKEN': 'bench-token',
                  GITHUB_REPOSITORY: 'acme/shop',
                  GITHUB_SHA: sha,
                  GITHUB_EVENT_NAME: 'push',
                  GITHUB_RUN_ID: '1',
                  GITHUB_API_URL: gh.url,
                  GITHUB_SERVER_URL: 'https://github.example'
                }
              : {}
          )
        } finally {
          await gh?.stop()
        }
        const ghCalls = gh?.requests.length ?? 0
        console.log(
          `   ${gh ? 'with PR comment + GitHub Deployment' : 'no GitHub token'}: exit ${whole.code}, wall ${fmt((whole.exited - whole.started) / 1000, 2)} s, ` +
            `${ghCalls} GitHub API requests, peak RSS ${fmt(whole.maxRssMiB)} MiB${gh ? '   (goal <= 80 MiB)' : ''}`
        )
        if (whole.code !== 0 || (gh && ghCalls === 0))
          console.log(`   (!) the run did not promote or made no GitHub request:\n${whole.stdout.split('\n').slice(-8).join('\n')}`)
      }
    }

    // 3 and 4. Per-step cost against the API server's own GET + PUT of the same VirtualService.
    if (only.has('3')) {
      const ns3 = await seedNamespace('bench-step')
      namespaces.push(ns3)
      const probe3 = new FloorProbe(ns3, 'istio-virtualservice')
      await probe3.init()
      // 19 steps: under a shared machine's load, medians of 9 swing too much.
      const steps = await measureSteps(
        seedInputs(ns3, { steps: Array.from({ length: 20 }, (_, i) => 5 * (i + 1)).join(',') }),
        undefined,
        undefined,
        probe3
      )
      probe3.close()
      if (steps.report.result !== 'promoted') throw new Error(`step bench ended ${steps.report.result}: ${steps.report.error?.message}`)
      const floor3 = median(probe3.getPut.times)
      const shape3 = median(probe3.putBack.times)
      const step3 = median(steps.cost.ms)
      console.log(`\n3. one weight step, bake and gates excluded (seed VirtualService, ${steps.cost.ms.length} steps)`)
      console.log(`   API requests: median ${median(steps.cost.requests)}, max ${Math.max(...steps.cost.requests)}   (goal <= 2)`)
      console.log(
        `   time: median ${fmt(step3)} ms, max ${fmt(Math.max(...steps.cost.ms))} ms; floors (median of ${probe3.getPut.times.length} each, sampled during the bakes, each after the idle and the write a step follows): ` +
          `GET + PUT ${fmt(floor3)} ms -> ratio ${fmt(step3 / floor3, 2)}x (goal <= 1.2x); the step's own requests raw (PUT + read-back GET at the written version) ${fmt(shape3)} ms -> ${fmt(step3 / shape3, 2)}x`
      )
      console.log(
        `   each step over the floor of the bake before it, median: ${fmt(pairedRatio(steps.cost, probe3.getPut), 2)}x GET + PUT (goal <= 1.2x), ` +
          `${fmt(pairedRatio(steps.cost, probe3.putBack), 2)}x PUT + read-back`
      )
      console.log(`   of the step time, waiting on the Cluster port: median ${fmt(median(steps.cost.apiMs))} ms`)
      console.log(
        `   one call, whole run: replaceIstio ${fmt(median(steps.byMethod.replaceIstio ?? [0]))} ms, getIstio ${fmt(median(steps.byMethod.getIstio ?? [0]))} ms; ` +
          `in the weight steps only: replaceIstio ${fmt(median(steps.inStep.replaceIstio ?? [0]))} ms, getIstio ${fmt(median(steps.inStep.getIstio ?? [0]))} ms`
      )
      console.log(
        `   floors, each request (medians): GET + PUT: GET ${fmt(median(probe3.getPut.first))} ms, PUT ${fmt(median(probe3.getPut.second))} ms; ` +
          `PUT + read-back: PUT ${fmt(median(probe3.putBack.first))} ms, read-back GET ${fmt(median(probe3.putBack.second))} ms`
      )
      console.log(
        `   CPU of this process (load-independent): step median ${fmt(median(steps.cost.cpuMs), 2)} ms, floor GET + PUT ${fmt(median(probe3.getPut.cpu), 2)} ms, ` +
          `PUT + read-back ${fmt(median(probe3.putBack.cpu), 2)} ms`
      )
      const srv = await serverSide(ns3, 'istio-virtualservice', probe3.lastLive!)
      console.log(
        `   the API server's own time (apiserver_request_duration_seconds, VirtualService GET/PUT, mean per request; blocks of 20, median of 3 rounds):`
      )
      for (const [name, r] of Object.entries(srv)) {
        const server = name === 'GET + PUT' ? r.get + r.put : r.put + r.get
        console.log(
          `     ${name.padEnd(16)} server PUT ${fmt(r.put, 2)} ms + GET ${fmt(r.get, 2)} ms = ${fmt(server, 2)} ms; wall at the client ${fmt(r.wall, 2)} ms`
        )
      }
      const srvStep = srv['step (adapter)']
      const srvFloor = srv['GET + PUT']
      console.log(
        `     server time of the step's requests / of the floor's: ${fmt((srvStep.put + srvStep.get) / (srvFloor.put + srvFloor.get), 2)}x; ` +
          `step wall in the rollout / (server time of its requests + the floor's client-side share (wall - server)): ` +
          `${fmt(step3 / (srvStep.put + srvStep.get + (srvFloor.wall - srvFloor.put - srvFloor.get)), 2)}x`
      )
      const penalty = await idlePenalty(ns3, 'istio-virtualservice', probe3.lastLive!)
      console.log(
        `   why the floors follow the same idle as the steps: a raw PUT + read-back right after another write ${fmt(penalty.warm)} ms, ` +
          `after 300 ms of idle ${fmt(penalty.idle)} ms (${fmt(penalty.idle / penalty.warm, 2)}x; median of 15 each, interleaved)`
      )
      const overhead = await clientOverhead(ns3)
      console.log(
        `   the adapter alone: the same GET of the VirtualService through KubeCluster ${fmt(overhead.ours, 2)} ms vs a raw keep-alive request ` +
          `${fmt(overhead.raw, 2)} ms (median of 60, interleaved): ${fmt(overhead.ours / overhead.raw, 2)}x`
      )
      console.log(`   whole run: ${steps.apiRequests} API requests`)
    }

    if (only.has('4')) {
      for (const [routes, subsets] of [
        [1, 1],
        [100, 50]
      ]) {
        const ns4 = await createTestNamespace(`bench-large-${routes}`)
        namespaces.push(ns4)
        const strip = <T extends { metadata: { namespace?: string; resourceVersion?: string } }>(o: T): T => {
          delete o.metadata.namespace
          delete o.metadata.resourceVersion
          return o
        }
        await applyManifests(ns4, [
          readSeedScenario('deployment-v1.yaml'),
          // The generators type their objects as the action's KubeObject (string timestamps).
          ...[makeLargeService(), makeLargeDestinationRule(subsets), makeLargeVirtualService(routes)].map((o) => JSON.stringify(strip(o)))
        ])
        await waitForDeploymentCondition(ns4, 'istio-deployment-v1', 'Available')
        const c = testCluster()
        const vsBytes = JSON.stringify(await c.getIstio('VirtualService', ns4, 'large')).length
        c.close()
        const probe = new FloorProbe(ns4, 'large')
        await probe.init()
        const r = await measureSteps(
          {
            ...seedInputs(ns4, { steps: Array.from({ length: 20 }, (_, i) => 5 * (i + 1)).join(',') }),
            'virtual-service': 'large',
            route: `route-${Math.floor(routes / 2)}`
          },
          undefined,
          undefined,
          probe
        )
        probe.close()
        if (r.report.result !== 'promoted') throw new Error(`large bench ended ${r.report.result}: ${r.report.error?.message}`)
        const f = median(probe.getPut.times)
        const fs2 = median(probe.putBack.times)
        console.log(`\n4. per step with ${routes} route(s) and ${subsets} subset(s) (VirtualService ${fmt(vsBytes / 1024)} KiB)`)
        console.log(
          `   requests median ${median(r.cost.requests)}, time median ${fmt(median(r.cost.ms))} ms, max ${fmt(Math.max(...r.cost.ms))} ms; ` +
            `floor GET + PUT ${fmt(f)} ms; ratio ${fmt(median(r.cost.ms) / f, 2)}x   (goal <= 1.2x), paired with the bake before each step ${fmt(pairedRatio(r.cost, probe.getPut), 2)}x; ` +
            `the step's own requests raw (PUT + read-back) ${fmt(fs2)} ms -> ${fmt(median(r.cost.ms) / fs2, 2)}x; waiting on the Cluster port ${fmt(median(r.cost.apiMs))} ms; ` +
            `CPU step ${fmt(median(r.cost.cpuMs), 2)} ms vs floor ${fmt(median(probe.getPut.cpu), 2)} ms`
        )
        if (routes > 1) {
          const srv = await serverSide(ns4, 'large', probe.lastLive!, 5)
          const step = srv['step (adapter)']
          const floor = srv['GET + PUT']
          console.log(
            `   the API server's own time (blocks of 5): step's requests PUT ${fmt(step.put)} + GET ${fmt(step.get)} ms, ` +
              `floor's GET ${fmt(floor.get)} + PUT ${fmt(floor.put)} ms: ${fmt((step.put + step.get) / (floor.put + floor.get), 2)}x`
          )
        }
      }
    }

    // 5. A whole seed rollout: what is ours besides the configured waits. With a 1 s bake the
    // Prometheus gates cannot judge (their rate window is the bake), so they run in a second
    // rollout with a 5 s bake.
    if (only.has('5')) {
      for (const [bake, gated] of [
        ['1s', false],
        ['5s', true]
      ] as const) {
        const ns5 = await seedNamespace('bench-seed')
        namespaces.push(ns5)
        const healthy = { rps: 40, errorRatio: 0.002, latencyMs: 60 }
        const prom = gated ? await countingRelay(env.prometheusUrl) : undefined
        try {
          if (gated) {
            await setTraffic(ns5, 'istio-deployment-v1', healthy)
            await setTraffic(ns5, 'istio-deployment-v2', healthy)
          }
          const gateInputs = prom
            ? { 'prometheus-url': prom.url, 'success-rate': '99', 'latency-p99': '500', 'min-requests': '5', 'check-every': '0' }
            : undefined
          const r = await measureSteps(
            { ...seedInputs(ns5, { steps: '10,25,50,100' }), interval: bake, settle: '2s' },
            undefined,
            gateInputs
          )
          const ours5 = r.wallMs - r.bakeMs - r.settleMs
          console.log(
            `\n5. a whole seed rollout (10,25,50,100; bake ${bake}, settle 2s; ${gated ? 'success-rate and latency-p99 gates on Prometheus' : 'no metric gates'})`
          )
          console.log(
            `   result ${r.report.result}${r.report.result === 'promoted' ? '' : ` (${r.report.state?.reason ?? r.report.error?.message})`}, ` +
              `wall ${fmt(r.wallMs / 1000, 2)} s - bakes ${fmt(r.bakeMs / 1000, 2)} s - settles ${fmt(r.settleMs / 1000, 2)} s = ${fmt(ours5)} ms ` +
              `(includes waiting for the canary Deployment to be ready)`
          )
          const calls = Object.entries(r.byMethod)
            .sort((a, b) => b[1].length - a[1].length)
            .map(([m, xs]) => `${m} ${xs.length} (${fmt(xs.reduce((a, b) => a + b, 0))} ms)`)
            .join(', ')
          console.log(`   ${r.apiRequests} API requests, ${prom?.count() ?? 0} Prometheus queries; Cluster calls: ${calls}`)
        } finally {
          prom?.close()
          if (gated) {
            await clearTraffic(ns5, 'istio-deployment-v1').catch(() => undefined)
            await clearTraffic(ns5, 'istio-deployment-v2').catch(() => undefined)
          }
        }
      }
    }

    // 6. Failed gate -> weight 0 confirmed.
    if (only.has('6')) {
      const rollbacks: number[] = []
      for (let i = 0; i < 3; i++) {
        const ns6 = await seedNamespace('bench-rb')
        namespaces.push(ns6)
        const gate = new FailingGate()
        const r = await measureSteps(seedInputs(ns6, { steps: '10,25,100' }), gate)
        if (r.report.result !== 'rolled-back' || r.rollbackMs === undefined) throw new Error(`rollback bench ended ${r.report.result}`)
        rollbacks.push(r.rollbackMs)
      }
      console.log(`\n6. a failed gate at 25 % to canary weight 0 confirmed by read-back (3 runs)`)
      console.log(`   median ${fmt(median(rollbacks))} ms, max ${fmt(Math.max(...rollbacks))} ms   (goal < 100 ms)`)
    }
  } finally {
    await Promise.all(namespaces.map((n) => deleteNamespace(n).catch(() => undefined)))
  }
}

await main()
