import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { AccessCheck, AccessResult, WriteOptions } from '../../../src/cluster/cluster.js'
import { LeaseLock } from '../../../src/cluster/lease-lock.js'
import type { CommandDeps } from '../../../src/commands/command-deps.js'
import { runPlan } from '../../../src/commands/plan-command.js'
import { runCommand } from '../../../src/commands/run-command.js'
import { MemoryLog } from '../../../src/commands/runtime.js'
import { readConfig } from '../../../src/config/config.js'
import { loadTimeZones } from '../../../src/config/freeze-windows.js'
import { buildGates, parseGateConfig } from '../../../src/health/gate-config.js'
import { KubernetesGate } from '../../../src/health/kubernetes-gate.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { renderOneLine } from '../../../src/report/render-report.js'
import { MemoryCluster, subsetRoutedService } from '../../support/memory-cluster.js'

// command plan over a recorded cluster state (the in-memory Cluster) and recorded Prometheus answers.
const NS = 'shop'
const NOW = Date.parse('2026-11-27T14:00:00Z') // a Friday, 15:00 in Berlin

function deployment(version: string, image: string, env: Array<{ name: string; value: string }>): KubeObject {
  const labels = { app: 'web', version }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `web-${version.replace(/\./g, '-')}`, namespace: NS },
    spec: {
      replicas: 3,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'web',
              image,
              env,
              resources: { requests: { cpu: '100m' } },
              readinessProbe: { httpGet: { path: '/ready', port: 8080 } }
            }
          ]
        }
      }
    },
    status: { availableReplicas: 3 }
  }
}

const STABLE = deployment('1.4.0', 'web:1.4.0', [{ name: 'MODE', value: 'classic' }])
const CANARY = deployment('1.5.0', 'web:1.5.0', [{ name: 'MODE', value: 'fast' }])

/** The recorded state: web 1.4.0 serving all traffic through subset 1-4-0. */
class RecordedState extends MemoryCluster {
  dryRuns: string[] = []
  /** Verbs SelfSubjectAccessReview denies. */
  denied = new Set<string>()
  override async canI(checks: AccessCheck[]): Promise<AccessResult[]> {
    return checks.map((c) => ({ ...c, allowed: !this.denied.has(c.verb) }))
  }
  override async applyDeployment(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    if (opts?.dryRun) this.dryRuns.push(`apply Deployment ${obj.metadata.name}`)
    return super.applyDeployment(obj, opts)
  }
  override async replaceIstio(obj: KubeObject, opts?: WriteOptions): Promise<KubeObject> {
    if (opts?.dryRun) this.dryRuns.push(`replace ${obj.kind} ${obj.metadata.name}`)
    return super.replaceIstio(obj, opts)
  }
}

function recordedState(): RecordedState {
  return new RecordedState([...subsetRoutedService(NS, { subset: '1-4-0', version: '1.4.0' }), STABLE])
}

function manifestDir(obj: KubeObject): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-plan-'))
  const { status: _status, ...manifest } = obj
  fs.writeFileSync(path.join(dir, 'deployment.yaml'), JSON.stringify(manifest))
  return dir
}

/** Prometheus's answers for the stable version (web-1-4-0) over the last hour, as recorded. */
function recordedPrometheus(): { fetchFn: typeof fetch; queries: string[] } {
  const queries: string[] = []
  const vector = (v?: string) => ({
    status: 'success',
    data: { resultType: 'vector', result: v === undefined ? [] : [{ metric: {}, value: [NOW / 1000, v] }] }
  })
  const fetchFn: typeof fetch = async (_url, init) => {
    const query = new URLSearchParams(String(init?.body)).get('query') ?? ''
    queries.push(query)
    const stable = query.includes('destination_workload="web-1-4-0"')
    let body = vector()
    if (stable && query.includes('histogram_quantile')) body = vector('212.3456')
    else if (stable && query.includes('response_code=~"5.."')) body = vector('98.5')
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } })
  }
  return { fetchFn, queries }
}

const GATE_INPUTS = {
  'prometheus-url': 'http://prometheus.test:9090',
  'success-rate': '99',
  'latency-p99': '500',
  'latency-p99-vs-stable': '20',
  checks: '- name: queue-depth\n  query: sum(queue_depth{namespace="{{namespace}}",workload="{{workload}}"})\n  max: 100',
  'on-no-data': 'skip',
  webhooks: '- name: smoke\n  url: http://smoke.test/run\n  moments: [before-increase, rollback]'
}

/** The Markdown as a reader sees it: escapes and entities undone. */
function plain(md: string): string {
  return md.replace(/\\(.)/g, '$1').replace(/&#39;/g, "'").replace(/&gt;/g, '>').replace(/&lt;/g, '<')
}

async function plan(cluster: RecordedState, inputs: Record<string, string> = {}, gateInputs: Record<string, string> = GATE_INPUTS) {
  await loadTimeZones()
  const config = readConfig({
    command: 'plan',
    manifests: 'deployment.yaml',
    namespace: NS,
    'virtual-service': 'web',
    steps: '10,pause,50,100',
    interval: '2m',
    settle: '5s',
    'min-soak': '30m',
    'freeze-windows': 'Fri 16:00 - Mon 08:00 Europe/Berlin',
    ...inputs
  })
  const gateConfig = parseGateConfig(gateInputs)
  const prometheus = recordedPrometheus()
  const log = new MemoryLog()
  const deps: CommandDeps = {
    cluster,
    clock: { now: () => NOW, sleep: async () => undefined },
    log,
    signal: new AbortController().signal,
    gates: [new KubernetesGate(cluster), ...buildGates(gateConfig, { fetch: prometheus.fetchFn })],
    policy: gateConfig.policy,
    checkEveryMs: 30_000,
    holder: 'unit test',
    cwd: inputs.cwd ?? manifestDir(CANARY),
    makeLock: (namespace, virtualService) => new LeaseLock(cluster, { namespace, virtualService, holder: 'unit test' }),
    waitForDeployment: async () => undefined
  }
  const report = await runPlan(config, deps)
  return { report, log, queries: prometheus.queries, deps }
}

describe('command plan over a recorded state', () => {
  it('renders the verdict, warnings, changes, timeline, guards and the stable values (snapshot); writes nothing', async () => {
    const cluster = recordedState()
    const { report, queries } = await plan(cluster)
    expect(report.error).toBeUndefined()
    expect(report).toMatchObject({ command: 'plan', result: 'unchanged', stableVersion: '1.4.0', canaryVersion: '1.5.0' })
    expect(report.preview!.markdown).toMatchSnapshot()
    // Dry runs only, and only because RBAC allows the writes; no write, no Lease.
    expect(cluster.dryRuns).toEqual(['apply Deployment web-1-5-0', 'replace DestinationRule web', 'replace VirtualService web'])
    expect(cluster.writes).toEqual([])
    expect(cluster.list('Lease', NS)).toEqual([])
    // The log line and the annotation say it was a plan.
    expect(renderOneLine(report)).toContain('plan: merging would roll out 1.5.0 over 1.4.0 on shop/web')
    // The stable version's values are read over the last hour.
    expect(queries.some((q) => q.includes('destination_workload="web-1-4-0"') && q.includes('[3600s]'))).toBe(true)
  })

  it('flags a threshold the stable version already fails, and a gate with no stable data', async () => {
    const { report } = await plan(recordedState())
    const md = plain(report.preview!.markdown)
    expect(md).toContain('| success-rate | >= 99 % | 98.5% ❌ the stable version already fails this |')
    expect(md).toContain('| latency-p99 | <= 500 ms | 212.346 ms |')
    expect(md).toContain('| queue-depth | <= 100 | no data |')
    // A webhook is not called by a plan: nothing to show.
    expect(md).toContain('| webhook:smoke | HTTP 2xx at before-increase | — |')
    expect(md).toContain('Gate queue-depth had no data for the stable version over the last hour')
    expect(md).toContain('on-no-data is skip')
  })

  it('with read-only credentials: no dry run at all, and the comment says which checks were skipped and why', async () => {
    const cluster = recordedState()
    for (const verb of ['create', 'update', 'patch', 'delete']) cluster.denied.add(verb)
    const { report } = await plan(cluster)
    expect(report.error).toBeUndefined()
    expect(cluster.dryRuns).toEqual([])
    expect(cluster.writes).toEqual([])
    const md = plain(report.preview!.markdown)
    expect(md).toContain('**Preflight passes**')
    expect(md).toMatch(
      /- ⏭️ not checked: the deploy's permissions: these credentials may not update networking\.istio\.io\/virtualservices web, .*patch apps\/deployments.* in namespace "shop" \(SelfSubjectAccessReview\), so no write was checked as a dry run; the deploy checks its own credentials before it writes/
    )
    expect(md).toContain('compared as the manifest writes it, without the defaults the API server would fill in')
    expect(md).toContain('| containers[web].image | web:1.4.0 | web:1.5.0 |')
  })

  it('a read the credentials may not make fails as the deploy would, with the same error, and still shows the schedule', async () => {
    const cluster = recordedState()
    cluster.denied.add('list')
    const { report } = await plan(cluster)
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toMatch(/^The Kubernetes credentials may not: list networking\.istio\.io\/destinationrules/)
    expect(report.error?.message).toContain('in namespace "shop"')
    expect(report.preview!.markdown).toContain('**Preflight would refuse it** (PreflightError): The Kubernetes credentials may not')
    expect(report.preview!.markdown).toContain('#### Schedule')
    expect(report.preview!.markdown).toContain('Not known: the preflight stopped before the objects were read.')
    expect(cluster.writes).toEqual([])
  })

  it('a downgrade is refused as the deploy would refuse it, with the same error and no dry run', async () => {
    const cluster = recordedState()
    const older = deployment('1.3.0', 'web:1.3.0', [])
    const { report } = await plan(cluster, { cwd: manifestDir(older) })
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toContain(
      `Input 'version-order' is "semver": the new version "1.3.0" is older than the stable version "1.4.0"`
    )
    expect(cluster.dryRuns).toEqual([])
    expect(cluster.writes).toEqual([])
  })

  it('inside a freeze window the guard says a deploy now would be refused, naming the window', async () => {
    const { report } = await plan(recordedState(), { 'freeze-windows': 'Fri 14:00 - Mon 08:00 Europe/Berlin' })
    expect(plain(report.preview!.markdown)).toContain(
      `- Freeze: a deploy now would be refused. Input 'freeze-windows' refuses this deploy: it is Fri 2026-11-27 15:00 Europe/Berlin, inside the freeze window "Fri 14:00 - Mon 08:00 Europe/Berlin" (line 1); the freeze ends Mon 2026-11-30 08:00 Europe/Berlin`
    )
  })

  it('the version already stable: merging would write nothing', async () => {
    const cluster = recordedState()
    const { report } = await plan(cluster, { cwd: manifestDir(STABLE) })
    expect(report.error).toBeUndefined()
    const md = plain(report.preview!.markdown)
    expect(md).toContain('### istio-canary plan: merging changes nothing on shop/web')
    expect(md).toContain(
      '1.4.0 is already stable; nothing to do (Deployment web-1-4-0 matches the manifest). A deploy of this manifest would write nothing.'
    )
    expect(md).not.toContain('#### What will change')
    expect(renderOneLine(report)).toContain('1.4.0 is already stable on shop/web; nothing to do')
    expect(cluster.writes).toEqual([])
  })

  it("a schedule of one step is said once, in the reviewer's words", async () => {
    const { report } = await plan(recordedState(), { steps: '100', 'min-soak': '' })
    const md = plain(report.preview!.markdown)
    expect(md).toContain('The schedule reaches 100 % in one step')
    expect(md).not.toContain(`Input 'steps' is "100"`)
  })

  it("takes the deploy's flags: with supersede, a rollout in flight is previewed as replaced", async () => {
    const config = readConfig({ command: 'plan', manifests: 'm.yaml', 'virtual-service': 'web', supersede: 'true', retry: 'true' })
    expect(config).toMatchObject({ supersede: true, retry: true })
    expect(config.warnings).toEqual([])
  })

  it('a rollout in flight: refused as the deploy refuses it, and with supersede previewed as rolled back first', async () => {
    const cluster = recordedState()
    const { deps } = await plan(cluster)
    const paused = await runCommand(
      readConfig({
        command: 'deploy',
        manifests: 'deployment.yaml',
        namespace: NS,
        'virtual-service': 'web',
        steps: '20,pause,100',
        settle: '0s',
        interval: '1s'
      }),
      // The in-memory cluster runs no pods: the rollout to pause is judged by no gate.
      { ...deps, gates: [] }
    )
    expect(paused.result).toBe('paused')
    const writes = cluster.writes.length
    const newer = manifestDir(deployment('1.6.0', 'web:1.6.0', []))
    const refused = await plan(cluster, { cwd: newer })
    expect(refused.report.error?.message).toContain(`VirtualService "shop/web" is mid-rollout of "1.5.0"`)
    const superseding = await plan(cluster, { cwd: newer, supersede: 'true' })
    expect(superseding.report.error).toBeUndefined()
    expect(plain(superseding.report.preview!.markdown)).toContain(
      "The rollout of 1.5.0 in progress (paused at 20 %) would be rolled back first (input 'supersede')."
    )
    expect(plain(superseding.report.preview!.markdown)).toContain('not checked: the subset and the first weights as dry runs')
    expect(cluster.writes.length).toBe(writes)
  })

  it('bad input is a ConfigError naming the input and quoting the value, before anything is read', () => {
    expect(() => readConfig({ command: 'plan', 'virtual-service': 'web' })).toThrow(
      `Input 'manifests' is required: command 'plan' needs the canary Deployment's manifest`
    )
  })
})
