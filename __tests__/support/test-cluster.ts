/**
 * Helpers for integration tests against the REAL local test cluster (test-cluster/up.sh): a real
 * kube-apiserver + controllers with kwok nodes, the Istio CRDs, a traffic source exporting Istio
 * metrics, and Prometheus. Nothing here is a mock.
 *
 * Where things come from (see loadTestEnv): ISTIO_CANARY_TEST_KUBECONFIG (+ _RESTRICTED_KUBECONFIG,
 * _PROMETHEUS_URL, _TRAFFIC_URL) for an existing cluster, else .cluster/env written by up.sh.
 * The Jest globalSetup (global-setup.ts) makes sure the cluster runs before any test.
 *
 * Typical use:
 *   const ns = await createTestNamespace('rollout')
 *   await applyManifests(ns, [readSeedScenario('deployment-v1.yaml'), readSeedScenario('service.yaml')])
 *   await waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available')
 *   await setTraffic(ns, 'istio-deployment-v2', { rps: 20, errorRatio: 0.3, latencyMs: 250, version: 'v2' })
 *   const r = await queryPrometheus('sum(rate(istio_requests_total[10s]))')
 *   ...
 *   await deleteNamespace(ns)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type V1Deployment,
  type V1DeploymentCondition,
  type V1PolicyRule
} from '@kubernetes/client-node'
import yaml from 'js-yaml'

/** Root of the repository (two levels above __tests__/support/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The seed scenario's manifests (the project's example), read as they stand. */
export const seedDir = path.join(repoRoot, 'examples', 'seed')
/** State folder written by test-cluster/up.sh. */
export const clusterStateDir = process.env.ISTIO_CANARY_CLUSTER_STATE ?? path.join(repoRoot, '.cluster')

// ------------------------------------------------------------------------------------------------
// Environment

export interface TestEnv {
  /** Admin kubeconfig (system:masters). */
  kubeconfigPath: string
  /** Kubeconfig of user "restricted" (only system:authenticated; no rights until grantRole). '' if unknown. */
  restrictedKubeconfigPath: string
  /** Prometheus scraping the traffic source every 1 s, e.g. http://127.0.0.1:41234. '' if unknown. */
  prometheusUrl: string
  /** Traffic source control API, e.g. http://127.0.0.1:41235. '' if unknown. */
  trafficUrl: string
  /** meshsim's HTTP API (callers through istiod's xDS, simulated workloads, /metrics). '' if unknown. */
  meshsimUrl: string
  /** The meshsim binary (for `meshsim analyze`). '' if unknown. */
  meshsimBin: string
  /** istiod's debug/monitoring address (/debug/connections, /debug/config_dump). '' if unknown. */
  istiodDebugUrl: string
}

function parseEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) out[m[1]] = m[2]
  }
  return out
}

let cachedEnv: TestEnv | undefined
/** Where the test cluster is. Throws a clear error when no cluster is configured or started. */
export function loadTestEnv(): TestEnv {
  if (cachedEnv) return cachedEnv
  const e = process.env
  if (e.ISTIO_CANARY_TEST_KUBECONFIG) {
    cachedEnv = {
      kubeconfigPath: e.ISTIO_CANARY_TEST_KUBECONFIG,
      restrictedKubeconfigPath: e.ISTIO_CANARY_TEST_RESTRICTED_KUBECONFIG ?? '',
      prometheusUrl: e.ISTIO_CANARY_TEST_PROMETHEUS_URL ?? '',
      trafficUrl: e.ISTIO_CANARY_TEST_TRAFFIC_URL ?? '',
      meshsimUrl: e.ISTIO_CANARY_TEST_MESHSIM_URL ?? '',
      meshsimBin: e.ISTIO_CANARY_TEST_MESHSIM_BIN ?? '',
      istiodDebugUrl: e.ISTIO_CANARY_TEST_ISTIOD_DEBUG_URL ?? ''
    }
    return cachedEnv
  }
  const envFile = path.join(clusterStateDir, 'env')
  if (!fs.existsSync(envFile)) {
    throw new Error(
      `No test cluster: ${envFile} does not exist. Start one with 'npm run cluster:up' ` +
        `(or set ISTIO_CANARY_TEST_KUBECONFIG to use an existing cluster).`
    )
  }
  const v = parseEnvFile(envFile)
  cachedEnv = {
    kubeconfigPath: v.KUBECONFIG,
    restrictedKubeconfigPath: v.KUBECONFIG_RESTRICTED ?? '',
    prometheusUrl: v.PROMETHEUS_URL ?? '',
    trafficUrl: v.TRAFFIC_URL ?? '',
    meshsimUrl: v.MESHSIM_URL ?? '',
    meshsimBin: v.MESHSIM_BIN ?? '',
    istiodDebugUrl: v.ISTIOD_DEBUG_URL ?? ''
  }
  return cachedEnv
}

function need(value: string, what: string): string {
  if (!value) throw new Error(`${what} is not known for this test cluster (set it in the environment, see loadTestEnv)`)
  return value
}

let adminKc: KubeConfig | undefined
let restrictedKc: KubeConfig | undefined
/** KubeConfig of the admin user. */
export function kubeConfig(): KubeConfig {
  if (!adminKc) {
    adminKc = new KubeConfig()
    adminKc.loadFromFile(loadTestEnv().kubeconfigPath)
  }
  return adminKc
}
/** KubeConfig of user "restricted" (no rights until grantRole). */
export function restrictedKubeConfig(): KubeConfig {
  if (!restrictedKc) {
    restrictedKc = new KubeConfig()
    restrictedKc.loadFromFile(need(loadTestEnv().restrictedKubeconfigPath, 'the restricted kubeconfig'))
  }
  return restrictedKc
}

/** Typed admin clients, made once. */
export const clients = {
  get core(): CoreV1Api {
    return kubeConfig().makeApiClient(CoreV1Api)
  },
  get apps(): AppsV1Api {
    return kubeConfig().makeApiClient(AppsV1Api)
  },
  get custom(): CustomObjectsApi {
    return kubeConfig().makeApiClient(CustomObjectsApi)
  },
  get rbac(): RbacAuthorizationV1Api {
    return kubeConfig().makeApiClient(RbacAuthorizationV1Api)
  },
  get objects(): KubernetesObjectApi {
    return KubernetesObjectApi.makeApiClient(kubeConfig())
  }
}

/** HTTP status of an error from @kubernetes/client-node (ApiException.code), else undefined. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code
  const c = (err as { code?: unknown })?.code
  return typeof c === 'number' ? c : undefined
}

// ------------------------------------------------------------------------------------------------
// Polling

export interface WaitOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number
  /** Poll every (default 250 ms). */
  intervalMs?: number
  /** Text for the timeout error ("deployment x Available"). */
  what?: string
}

/** T without the falsy values waitFor keeps polling on. */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>

/**
 * Polls `fn` until it returns a truthy value (which is returned). Errors thrown by `fn` count as
 * "not yet"; on timeout the error names `what`, the last value and the last error.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<Truthy<T>> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const intervalMs = opts.intervalMs ?? 250
  const deadline = Date.now() + timeoutMs
  let last: unknown
  let lastErr: unknown
  for (;;) {
    try {
      last = await fn()
      lastErr = undefined
      if (last) return last as Truthy<T>
    } catch (err) {
      lastErr = err
    }
    if (Date.now() >= deadline) {
      const lastText = JSON.stringify(last)?.slice(0, 500)
      const errText = lastErr ? `; last error: ${(lastErr as Error).message ?? String(lastErr)}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}; last value: ${lastText}${errText}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

// ------------------------------------------------------------------------------------------------
// Namespaces and manifests

/**
 * Creates a uniquely named namespace `<prefix>-<random>` labelled istio-injection=enabled (and
 * istio-canary.test/owned=true), with a `default` ServiceAccount (no serviceaccount controller runs).
 */
export async function createTestNamespace(prefix: string): Promise<string> {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test'
  const name = `${clean}-${Date.now().toString(36).slice(-5)}${Math.random().toString(36).slice(2, 6)}`
  await clients.core.createNamespace({
    body: { metadata: { name, labels: { 'istio-injection': 'enabled', 'istio-canary.test/owned': 'true' } } }
  })
  try {
    await clients.core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } })
  } catch (err) {
    if (statusOf(err) !== 409) throw err
  }
  return name
}

/** Deletes a namespace (and, through the namespace controller, all in it). With wait, resolves once it is gone. */
export async function deleteNamespace(name: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<void> {
  try {
    await clients.core.deleteNamespace({ name, propagationPolicy: 'Background' })
  } catch (err) {
    // 404: already gone; 409: already terminating
    if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err
  }
  if (opts.wait) {
    await waitFor(
      async () => {
        try {
          await clients.core.readNamespace({ name })
          return false
        } catch (err) {
          return statusOf(err) === 404
        }
      },
      { timeoutMs: opts.timeoutMs ?? 60_000, what: `namespace ${name} to be deleted` }
    )
  }
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'PriorityClass'
])

/** Parses YAML text (multi-document) into objects; empty documents are skipped. */
export function parseManifests(text: string): KubernetesObject[] {
  return (yaml.loadAll(text) as unknown[]).filter((d): d is KubernetesObject => !!d && typeof d === 'object')
}

export type Manifests = string | KubernetesObject | Array<string | KubernetesObject>

/**
 * Create-or-replace each object in `namespace` (any kind the apiserver serves, in any served
 * version, e.g. networking.istio.io/v1alpha3 VirtualService). Accepts YAML text (multi-document),
 * objects, or a list of both. A replace keeps nothing of the old object but what the apiserver
 * keeps itself (e.g. a Service's clusterIP). Returns the objects as the apiserver stored them.
 */
export async function applyManifests(namespace: string, manifests: Manifests): Promise<KubernetesObject[]> {
  const list = Array.isArray(manifests) ? manifests : [manifests]
  const objects = list.flatMap((m) => (typeof m === 'string' ? parseManifests(m) : [structuredClone(m)]))
  const api = clients.objects
  const out: KubernetesObject[] = []
  for (const obj of objects) {
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
      throw new Error(`applyManifests: object without apiVersion/kind/metadata.name: ${JSON.stringify(obj).slice(0, 200)}`)
    }
    if (!CLUSTER_SCOPED.has(obj.kind)) obj.metadata.namespace = namespace
    try {
      out.push(await api.create(obj))
    } catch (err) {
      if (statusOf(err) !== 409) throw err
      const current = await api.read({
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace }
      })
      obj.metadata.resourceVersion = current.metadata?.resourceVersion
      out.push(await api.replace(obj))
    }
  }
  return out
}

/** Text of examples/seed/<fileName> (the seed scenario's manifests). */
export function readSeedScenario(fileName: string): string {
  return fs.readFileSync(path.join(seedDir, fileName), 'utf8')
}

/** The seed's starting state: v1 serves all traffic (Deployment, Service, DestinationRule, VirtualService). */
export const SEED_START_FILES = ['deployment-v1.yaml', 'service.yaml', 'destinationrule-v1.yaml', 'virtualservice-v1.yaml']

/** Applies the seed's starting state in `namespace` as it stands and waits until v1 is Available. */
export async function startSeedScenario(namespace: string): Promise<void> {
  await applyManifests(namespace, SEED_START_FILES.map(readSeedScenario))
  await waitForDeploymentCondition(namespace, 'istio-deployment-v1', 'Available')
}

// ------------------------------------------------------------------------------------------------
// Pod behaviour (kwok stages in test-cluster/kwok/stages.yaml)

/** Pod-template label that picks how kwok plays a pod. */
export const POD_BEHAVIOUR_LABEL = 'sim.istio-canary/behaviour'
/** Annotation: Go duration after which a `fail-after` pod stops being Ready (default 10s). */
export const FAIL_AFTER_ANNOTATION = 'sim.istio-canary/fail-after'
/** Annotation: Go duration between restarts of a crash-looping pod (default 5s). */
export const RESTART_INTERVAL_ANNOTATION = 'sim.istio-canary/restart-interval'
/** Annotation: Go duration before a pod becomes Running/Ready (default 200ms). */
export const READY_DELAY_ANNOTATION = 'sim.istio-canary/ready-delay'

/**
 * ready: Running + Ready. crash: Running, never Ready, CrashLoopBackOff, restarts grow.
 * image-pull-failure: Pending, ErrImagePull <-> ImagePullBackOff. fail-after: Ready, then after
 * `failAfter` not Ready + CrashLoopBackOff.
 */
export type PodBehaviour = 'ready' | 'crash' | 'image-pull-failure' | 'fail-after'

export interface BehaviourOptions {
  /** For fail-after: Go duration such as "3s" (default 10s). */
  failAfter?: string
  /** For crash / fail-after: Go duration between restarts (default 5s). */
  restartInterval?: string
  /** Delay before Running/Ready (default 200ms). */
  readyDelay?: string
}

/** A copy of a Deployment (object or YAML text) whose pod template has the behaviour label. */
export function withBehaviour(
  deployment: V1Deployment | KubernetesObject | string,
  behaviour: PodBehaviour,
  opts: BehaviourOptions = {}
): V1Deployment {
  const d = (typeof deployment === 'string' ? parseManifests(deployment)[0] : structuredClone(deployment)) as V1Deployment
  if (!d?.spec?.template) throw new Error('withBehaviour: not a Deployment with spec.template')
  const meta = (d.spec.template.metadata ??= {})
  meta.labels = { ...(meta.labels ?? {}), [POD_BEHAVIOUR_LABEL]: behaviour }
  const ann: Record<string, string> = { ...(meta.annotations ?? {}) }
  if (opts.failAfter) ann[FAIL_AFTER_ANNOTATION] = opts.failAfter
  if (opts.restartInterval) ann[RESTART_INTERVAL_ANNOTATION] = opts.restartInterval
  if (opts.readyDelay) ann[READY_DELAY_ANNOTATION] = opts.readyDelay
  if (Object.keys(ann).length) meta.annotations = ann
  return d
}

// ------------------------------------------------------------------------------------------------
// Deployments, RBAC

/**
 * Waits until Deployment ns/name has a condition of `type`: with `reason`, one with that reason
 * (any status); without, one with status "True" (or opts.status). Returns the condition.
 *   waitForDeploymentCondition(ns, 'web', 'Available')
 *   waitForDeploymentCondition(ns, 'web', 'Progressing', 'ProgressDeadlineExceeded')
 */
export async function waitForDeploymentCondition(
  namespace: string,
  name: string,
  type: string,
  reason?: string,
  opts: WaitOptions & { status?: 'True' | 'False' | 'Unknown' } = {}
): Promise<V1DeploymentCondition> {
  const status = opts.status ?? (reason ? undefined : 'True')
  return waitFor(
    async () => {
      const d = await clients.apps.readNamespacedDeployment({ name, namespace })
      return d.status?.conditions?.find(
        (c) => c.type === type && (reason === undefined || c.reason === reason) && (status === undefined || c.status === status)
      )
    },
    {
      timeoutMs: 90_000,
      what: `deployment ${namespace}/${name} condition ${type}${reason ? `/${reason}` : ''}${status ? `=${status}` : ''}`,
      ...opts
    }
  )
}

let roleSeq = 0
/**
 * Gives `user` (e.g. "restricted") the `rules` in `namespace` through a new Role + RoleBinding.
 * RBAC takes effect within a moment; poll (waitFor) for the first allowed call.
 */
export async function grantRole(namespace: string, user: string, rules: V1PolicyRule[]): Promise<{ role: string; binding: string }> {
  const role = `test-grant-${user}-${Date.now().toString(36)}-${roleSeq++}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-')
  await clients.rbac.createNamespacedRole({ namespace, body: { metadata: { name: role }, rules } })
  await clients.rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }]
    }
  })
  return { role, binding: role }
}

// ------------------------------------------------------------------------------------------------
// Traffic source and Prometheus

export interface TrafficConfig {
  /** Requests per second. */
  rps: number
  /** Fraction of requests answered with a 5xx (0..1). */
  errorRatio: number
  /** p99 latency in ms (histogram_quantile(0.99, ...) returns it). */
  latencyMs: number
  /** destination_version / destination_canonical_revision label. */
  version?: string
  /** Reporter label values to emit; default ['destination', 'source']. */
  reporters?: Array<'destination' | 'source' | 'waypoint'>
  /** destination_service_name (default: the workload name). */
  service?: string
  /** Status code of the errors (default 503). */
  errorCode?: number
  /**
   * Fraction of the requests (0..1) from a caller without a sidecar: reported by the destination
   * only, with source_workload and source_principal "unknown" (default 0).
   */
  outsideMeshRatio?: number
}

async function trafficCall(method: string, pathPart: string, body?: unknown): Promise<Response> {
  const url = `${need(loadTestEnv().trafficUrl, 'the traffic source URL')}${pathPart}`
  return fetch(url, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined
  })
}

/**
 * Makes the traffic source export Istio metrics for destination_workload `workload` in `namespace`
 * at these rates (counters stay monotonic when a config changes). Prometheus sees it within ~1-2 s.
 */
export async function setTraffic(namespace: string, workload: string, config: TrafficConfig): Promise<void> {
  const res = await trafficCall('PUT', `/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(workload)}`, config)
  if (!res.ok) throw new Error(`setTraffic ${namespace}/${workload}: ${res.status} ${await res.text()}`)
}

/** Removes a workload from the traffic source (its series disappear). Missing is not an error. */
export async function clearTraffic(namespace: string, workload: string): Promise<void> {
  const res = await trafficCall('DELETE', `/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(workload)}`)
  if (!res.ok && res.status !== 404) throw new Error(`clearTraffic ${namespace}/${workload}: ${res.status} ${await res.text()}`)
}

export interface PromResponse {
  status: 'success' | 'error'
  data: { resultType: 'vector' | 'matrix' | 'scalar' | 'string'; result: any }
  error?: string
  errorType?: string
  warnings?: string[]
}

/**
 * Instant query (GET /api/v1/query) against the cluster's Prometheus (or `baseUrl`). `time` is a
 * Date or unix seconds. Returns the parsed JSON; throws on an HTTP or PromQL error.
 */
export async function queryPrometheus(promql: string, time?: Date | number, baseUrl?: string): Promise<PromResponse> {
  const base = baseUrl ?? need(loadTestEnv().prometheusUrl, 'the Prometheus URL')
  const params = new URLSearchParams({ query: promql })
  if (time !== undefined) params.set('time', String(time instanceof Date ? time.getTime() / 1000 : time))
  const res = await fetch(`${base}/api/v1/query?${params}`)
  const body = (await res.json()) as PromResponse
  if (!res.ok || body.status !== 'success') {
    throw new Error(`Prometheus query failed (${res.status}): ${body.errorType ?? ''} ${body.error ?? ''} for ${promql}`)
  }
  return body
}

/** The numbers of a vector/scalar result: [] when empty. */
export function promValues(r: PromResponse): number[] {
  if (r.data.resultType === 'scalar') return [Number(r.data.result[1])]
  if (r.data.resultType === 'vector') return (r.data.result as Array<{ value: [number, string] }>).map((s) => Number(s.value[1]))
  throw new Error(`promValues: unsupported result type ${r.data.resultType}`)
}

// ------------------------------------------------------------------------------------------------
// Backfilled Prometheus (exact data at fixed times)

export interface OpenMetricsSeries {
  /** Sample name as stored, e.g. "istio_requests_total" or "istio_request_duration_milliseconds_bucket". */
  name: string
  labels?: Record<string, string>
  /** [unix seconds, value] pairs. */
  samples: Array<[number, number]>
}

/**
 * OpenMetrics text (with `# EOF`) for promtool from plain series. Names ending in _total are typed
 * as counters; others as unknown. Samples are sorted by time.
 */
export function toOpenMetrics(series: OpenMetricsSeries[]): string {
  const families = new Map<string, { type: string; lines: string[] }>()
  for (const s of series) {
    const isCounter = s.name.endsWith('_total')
    const family = isCounter ? s.name.slice(0, -'_total'.length) : s.name
    const f = families.get(family) ?? { type: isCounter ? 'counter' : 'unknown', lines: [] }
    families.set(family, f)
    const lbl = Object.entries(s.labels ?? {})
      .map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      .join(',')
    for (const [t, v] of [...s.samples].sort((a, b) => a[0] - b[0])) f.lines.push(`${s.name}${lbl ? `{${lbl}}` : ''} ${v} ${t}`)
  }
  let out = ''
  for (const [name, f] of families) out += `# TYPE ${name} ${f.type}\n${f.lines.join('\n')}\n`
  return `${out}# EOF\n`
}

export interface BackfilledPrometheus {
  url: string
  pid: number
  dataDir: string
  /** queryPrometheus against this instance. */
  query(promql: string, time?: Date | number): Promise<PromResponse>
  /** Stops the process (by PID) and removes its data. */
  stop(): Promise<void>
}

/** A loopback port nobody listens on (free now: a server may take it, a client gets a refusal). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

const backfilled = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of backfilled) c.kill('SIGKILL')
})

/**
 * Writes `openMetricsText` (OpenMetrics with explicit timestamps; `# EOF` added if missing), turns
 * it into TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, and starts a separate
 * Prometheus on that data (retention 100 years, no scraping). Query it at the samples' times.
 */
export async function startBackfilledPrometheus(openMetricsText: string): Promise<BackfilledPrometheus> {
  const base = fs.existsSync(clusterStateDir) ? clusterStateDir : os.tmpdir()
  const dir = fs.mkdtempSync(path.join(base, 'backfill-'))
  const dataDir = path.join(dir, 'data')
  const input = path.join(dir, 'input.om')
  const text = /# EOF\s*$/.test(openMetricsText) ? openMetricsText : `${openMetricsText.replace(/\n?$/, '\n')}# EOF\n`
  fs.writeFileSync(input, text)
  const tool = spawnSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', input, dataDir], { encoding: 'utf8' })
  if (tool.error || tool.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw new Error(`promtool create-blocks-from openmetrics failed: ${tool.error?.message ?? ''}${tool.stderr ?? ''}${tool.stdout ?? ''}`)
  }
  const config = path.join(dir, 'prometheus.yml')
  fs.writeFileSync(config, 'global:\n  scrape_interval: 1m\nscrape_configs: []\n')
  const port = await freePort()
  const logFile = fs.openSync(path.join(dir, 'prometheus.log'), 'w')
  const child = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=36500d',
      '--log.level=warn'
    ],
    { stdio: ['ignore', logFile, logFile], detached: false }
  )
  fs.closeSync(logFile)
  backfilled.add(child)
  const url = `http://127.0.0.1:${port}`
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      process.kill(child.pid, 'SIGTERM')
      const t = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    }
    backfilled.delete(child)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`prometheus exited: ${fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-500)}`)
        const r = await fetch(`${url}/-/ready`)
        return r.ok
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `backfilled prometheus at ${url}` }
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { url, pid: child.pid!, dataDir, query: (q, time) => queryPrometheus(q, time, url), stop }
}

// ------------------------------------------------------------------------------------------------
// Restartable copies of the cluster's own processes (API server, Prometheus)

/**
 * A second instance of one of the local cluster's processes, started by the test with the very
 * command line of the one up.sh started (read from /proc/<pid>/cmdline), but on its own port (and,
 * for Prometheus, its own data folder). The test stops and starts it by PID as it likes: the
 * shared instance, and every test file running beside this one, never notice. A second
 * kube-apiserver on the same etcd is a real API server of the same cluster: same objects, same
 * watches, same admission.
 */
export interface RestartableProcess {
  /** The PID of the running process (undefined while stopped). */
  readonly pid: number | undefined
  /** https://127.0.0.1:PORT (apiserver) or http://127.0.0.1:PORT (Prometheus). */
  url: string
  /** For the apiserver: an admin kubeconfig pointing at this instance. */
  kubeconfigPath: string
  /** SIGTERM (or `signal`) by PID; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again with the same arguments (same port); resolves once it is ready. */
  start(): Promise<void>
  /** Stops it for good and removes what it wrote. */
  close(): Promise<void>
}

/** The running process up.sh recorded under `name` in .cluster/pids, with its argv. */
function clusterProcess(name: string): { pid: number; argv: string[] } {
  const pids = path.join(clusterStateDir, 'pids')
  if (!fs.existsSync(pids))
    throw new Error(`${pids} does not exist: this needs the local cluster of test-cluster/up.sh (not ISTIO_CANARY_TEST_KUBECONFIG)`)
  const line = fs
    .readFileSync(pids, 'utf8')
    .split('\n')
    .reverse()
    .find((l) => l.split(' ')[0] === name)
  const pid = Number(line?.split(' ')[1])
  if (!pid) throw new Error(`no ${name} in ${pids}`)
  const argv = fs
    .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .filter((a, i, all) => a !== '' || i < all.length - 1)
  return { pid, argv }
}

/** argv with `--flag value` or `--flag=value` set to `value`. */
function withFlag(argv: string[], flag: string, value: string): string[] {
  const out = [...argv]
  for (let i = 0; i < out.length; i++) {
    if (out[i] === flag) {
      out[i + 1] = value
      return out
    }
    if (out[i].startsWith(`${flag}=`)) {
      out[i] = `${flag}=${value}`
      return out
    }
  }
  return [...out, flag, value]
}

const restartable = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of restartable) c.kill('SIGKILL')
})

async function startRestartable(
  argv: string[],
  dir: string,
  ready: () => Promise<boolean>,
  extra: { url: string; kubeconfigPath: string }
): Promise<RestartableProcess> {
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const launch = async (): Promise<void> => {
    const log = fs.openSync(path.join(dir, 'process.log'), 'a')
    child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log, log] })
    fs.closeSync(log)
    restartable.add(child)
    const c = child
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    await waitFor(
      async () => (c.exitCode !== null ? Promise.reject(new Error(`${argv[0]} exited (${c.exitCode}); see ${dir}/process.log`)) : ready()),
      {
        what: `${path.basename(argv[0])} at ${extra.url} to be ready`,
        timeoutMs: 90_000,
        intervalMs: 200
      }
    )
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    process.kill(child.pid!, signal)
    await exited
    restartable.delete(child)
    child = undefined
  }
  await launch()
  return {
    get pid() {
      return child?.pid
    },
    ...extra,
    stop,
    start: launch,
    close: async () => {
      await stop('SIGKILL')
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A second kube-apiserver of the local cluster (same etcd, same flags, its own port). */
export async function startRestartableApiserver(): Promise<RestartableProcess> {
  const { argv } = clusterProcess('kube-apiserver')
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(clusterStateDir, 'apiserver-'))
  const url = `https://127.0.0.1:${port}`
  const kubeconfigPath = path.join(dir, 'kubeconfig')
  const admin = fs.readFileSync(loadTestEnv().kubeconfigPath, 'utf8').replace(/server: \S+/, `server: ${url}`)
  fs.writeFileSync(kubeconfigPath, admin, { mode: 0o600 })
  const ca = fs.readFileSync(path.join(clusterStateDir, 'pki', 'apiserver.crt'))
  const token = fs.readFileSync(path.join(clusterStateDir, 'admin-token'), 'utf8').trim()
  const ready = () => fetchOk(`${url}/readyz`, { ca, token })
  return startRestartable(withFlag(argv, '--secure-port', String(port)), dir, ready, { url, kubeconfigPath })
}

/** A second Prometheus of the local cluster (same scrape config, its own port and data). */
export async function startRestartablePrometheus(): Promise<RestartableProcess> {
  const { argv } = clusterProcess('prometheus')
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(clusterStateDir, 'prometheus-'))
  const url = `http://127.0.0.1:${port}`
  const args = withFlag(withFlag(argv, '--web.listen-address', `127.0.0.1:${port}`), '--storage.tsdb.path', path.join(dir, 'data'))
  const ready = async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true
  return startRestartable(args, dir, ready, { url, kubeconfigPath: '' })
}

function fetchOk(url: string, o: { ca: Buffer; token: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: o.ca, headers: { authorization: `Bearer ${o.token}` }, timeout: 2000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
  })
}

// ------------------------------------------------------------------------------------------------
// The mesh: istiod + meshsim (test-cluster/go/istio/meshsim)
//
// Every Ready pod of a namespace labelled istio-injection=enabled is played by meshsim: a gRPC
// server that answers as that pod. Callers send real RPCs at a bounded rate, either through gRPC's
// proxyless xDS client fed by istiod (mode "xds": VirtualService weights, DestinationRule subsets
// and endpoints decide where each call lands) or to a random ready pod of the Service (mode
// "plain": no sidecar). Their outcomes are counted as Istio's metrics (reporter="source" for what
// callers saw, "destination" for what workloads answered) and kept per call for exact splits. A
// plain caller, having no sidecar, reports nothing at "source" and is source_workload="unknown" at
// "destination".

/** Pod annotation: fraction of calls a simulated workload answers with an error (0..1). */
export const ERROR_RATIO_ANNOTATION = 'sim.istio-canary/error-ratio'
/** Pod annotation: HTTP-like code of those errors (default 500; 503 is retried by Istio's default policy). */
export const ERROR_CODE_ANNOTATION = 'sim.istio-canary/error-code'
/** Pod annotation: Go duration added to every call ("250ms"). */
export const LATENCY_ANNOTATION = 'sim.istio-canary/latency'

export interface CallerConfig {
  /** Service name in the caller's namespace. */
  service: string
  /** Service port (default 80). */
  port?: number
  /** Calls per second (0 < rps <= 500). */
  rps: number
  /** 'xds' (default): through istiod's routing; 'plain': a random ready pod, no sidecar. */
  mode?: 'xds' | 'plain'
  /** Per-call deadline (default 2000). */
  timeoutMs?: number
  /** Request headers (gRPC metadata) sent with every call, e.g. `{ 'x-canary': 'always' }`. */
  headers?: Record<string, string>
}

export interface CallEntry {
  /** Start, unix ms. */
  t: number
  ms: number
  /** HTTP-like response_code. */
  code: number
  /** gRPC status code. */
  grpc: number
  /** Envoy-like response_flags ("-", "NR", "NC", "UH", "UF", "UT"). */
  flags: string
  pod?: string
  workload?: string
  version?: string
}

export interface CallerStats {
  namespace: string
  name: string
  target: string
  sent: number
  failed: number
  dropped: number
  errors: Record<string, number>
  /** workload ('' = no workload answered) -> response_code -> calls in [since, until). */
  byWorkload: Record<string, Record<string, number>>
  entries?: CallEntry[]
}

async function meshsimCall(method: string, pathPart: string, body?: unknown): Promise<Response> {
  const url = `${need(loadTestEnv().meshsimUrl, 'the meshsim URL')}${pathPart}`
  return fetch(url, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined
  })
}

/** Starts (or restarts, with fresh counters) caller `name` in `namespace`. */
export async function startCaller(namespace: string, name: string, config: CallerConfig): Promise<void> {
  const res = await meshsimCall('PUT', `/callers/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, config)
  if (!res.ok) throw new Error(`startCaller ${namespace}/${name}: ${res.status} ${await res.text()}`)
}

/** Stops a caller. Missing is not an error. */
export async function stopCaller(namespace: string, name: string): Promise<void> {
  const res = await meshsimCall('DELETE', `/callers/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`)
  if (!res.ok && res.status !== 404) throw new Error(`stopCaller ${namespace}/${name}: ${res.status} ${await res.text()}`)
}

/** A caller's totals, and its calls that started in [since, until) (unix ms; 0 = open). */
export async function callerStats(
  namespace: string,
  name: string,
  opts: { since?: number; until?: number; entries?: boolean } = {}
): Promise<CallerStats> {
  const q = new URLSearchParams({ since: String(opts.since ?? 0), until: String(opts.until ?? 0), entries: opts.entries ? '1' : '0' })
  const res = await meshsimCall('GET', `/callers/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}?${q}`)
  if (!res.ok) throw new Error(`callerStats ${namespace}/${name}: ${res.status} ${await res.text()}`)
  return (await res.json()) as CallerStats
}

/** Calls answered by each workload (any code) and calls that failed (code >= 500 or no workload). */
export function splitOf(stats: Pick<CallerStats, 'byWorkload'>): { total: number; failed: number; byWorkload: Record<string, number> } {
  let total = 0
  let failed = 0
  const byWorkload: Record<string, number> = {}
  for (const [workload, codes] of Object.entries(stats.byWorkload)) {
    for (const [code, n] of Object.entries(codes)) {
      total += n
      if (workload === '' || Number(code) >= 500) failed += n
      if (workload !== '') byWorkload[workload] = (byWorkload[workload] ?? 0) + n
    }
  }
  return { total, failed, byWorkload }
}

/** The pods meshsim plays right now (ns/pod -> listener). */
export async function meshWorkloads(): Promise<Array<{ pod: string; namespace: string; workload: string; ip: string; listen: string }>> {
  const res = await meshsimCall('GET', '/workloads')
  if (!res.ok) throw new Error(`meshWorkloads: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { workloads: Array<{ pod: string; namespace: string; workload: string; ip: string; listen: string }> })
    .workloads
}

export interface AnalysisMessage {
  code: string
  level: 'Error' | 'Warning' | 'Info'
  origin?: string
  message: string
}

/**
 * Istio's own verdict on a namespace: the analyzers `istioctl analyze` runs (built from the pinned
 * istio.io/istio), against the live apiserver. Returns every message and the exit code (1 when
 * one is an Error).
 */
export async function analyzeNamespace(namespace: string): Promise<{ messages: AnalysisMessage[]; exitCode: number; stderr: string }> {
  const env = loadTestEnv()
  const args = ['analyze', '--kubeconfig', env.kubeconfigPath, '--namespace', namespace, '--output', 'json']
  const child = spawn(need(env.meshsimBin, 'the meshsim binary'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve(code ?? -1))
  })
  if (exitCode !== 0 && exitCode !== 1) throw new Error(`meshsim analyze ${namespace} failed (exit ${exitCode}): ${stderr}`)
  const out = JSON.parse(stdout) as { messages: AnalysisMessage[] }
  return { messages: out.messages, exitCode, stderr }
}
