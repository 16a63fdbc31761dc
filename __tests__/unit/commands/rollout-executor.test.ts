import { RolloutExecutor, type ExecutorOptions } from '../../../src/commands/rollout-executor.js'
import { MemoryLog, type Clock } from '../../../src/commands/runtime.js'
import type { GateContext, GateMoment, HealthGate } from '../../../src/health/health-gate.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../../../src/rollout/state-codec.js'
import type { CheckResult, RolloutState, Verdict } from '../../../src/rollout/types.js'
import type { GatePolicy } from '../../../src/rollout/verdict.js'
import { IstioRouter } from '../../../src/traffic/istio/istio-router.js'
import { readSplit } from '../../../src/traffic/istio/virtual-service-transform.js'
import { makeRolloutState } from '../../fixtures/istio/rollout-state.js'
import { MemoryCluster } from '../../support/memory-cluster.js'

const NS = 'shop'
const T0 = Date.parse('2026-01-01T00:00:00Z')

/** A clock that moves only when slept on. */
class StepClock implements Clock {
  t = T0
  now = (): number => this.t
  sleep = async (ms: number): Promise<void> => {
    this.t += ms
  }
}

/** A gate that answers the given moments with scripted verdicts (the last one repeats). */
class ScriptedGate implements HealthGate {
  readonly name = 'webhook'
  readonly asked: GateMoment[] = []
  constructor(
    readonly moments: readonly GateMoment[],
    private readonly verdicts: Partial<Record<GateMoment, Verdict[]>>
  ) {}
  async preflight(): Promise<void> {}
  async evaluate(moment: GateMoment, _ctx: GateContext): Promise<CheckResult[]> {
    this.asked.push(moment)
    const list = this.verdicts[moment] ?? ['pass']
    const verdict = list.length > 1 ? list.shift()! : list[0]!
    return [{ name: `hook-${moment}`, verdict, ...(verdict === 'inconclusive' ? { detail: 'HTTP 503' } : {}) }]
  }
}

function deployment(name: string, version: string, replicas = 1): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: { replicas, template: { metadata: { labels: { app: 'web', version } } } },
    status: { availableReplicas: replicas }
  }
}

function world(state: RolloutState) {
  const vs: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'web', namespace: NS, annotations: { [STATE_ANNOTATION]: encodeState(state) } },
    spec: {
      hosts: ['istio-service'],
      http: [
        {
          route: [
            { destination: { host: 'istio-service', subset: 'v1' }, weight: 100 - state.canaryWeight },
            { destination: { host: 'istio-service', subset: 'v2' }, weight: state.canaryWeight }
          ]
        }
      ]
    }
  }
  const dr: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'istio-destinationrule', namespace: NS },
    spec: { host: 'istio-service', subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) }
  }
  return new MemoryCluster([vs, dr, deployment('istio-deployment-v1', 'v1'), deployment('istio-deployment-v2', 'v2')])
}

function executor(cluster: MemoryCluster, state: RolloutState, gate: HealthGate, policy: GatePolicy) {
  const clock = new StepClock()
  const log = new MemoryLog()
  const options: ExecutorOptions = {
    cluster,
    router: new IstioRouter({
      cluster,
      namespace: NS,
      virtualService: 'web',
      destinationRule: 'istio-destinationrule',
      epoch: state.epoch,
      now: () => new Date(clock.now()).toISOString()
    }),
    clock,
    log,
    signal: new AbortController().signal,
    namespace: NS,
    virtualService: 'web',
    destinationRule: 'istio-destinationrule',
    versionLabel: 'version',
    retire: 'scale-down',
    intervalMs: 60_000,
    checkEveryMs: 30_000,
    settleMs: 0,
    progressDeadlineMs: 60_000,
    minSoakSeconds: 0,
    gates: [gate],
    policy,
    waitForCanary: async () => undefined
  }
  return { run: new RolloutExecutor(options, state), log, clock }
}

// Step 1 (10 %) is baked and done; the next action is the shift to 50 %, behind before-increase.
const atTen = makeRolloutState({
  schedule: [
    { kind: 'weight', weight: 10 },
    { kind: 'weight', weight: 50 },
    { kind: 'weight', weight: 100 }
  ],
  stepIndex: 0,
  stepDone: true,
  canaryWeight: 10,
  history: []
})
const policy = (onNoData: GatePolicy['onNoData'], failureThreshold = 1): GatePolicy => ({
  failureThreshold,
  inconclusiveLimit: 2,
  onNoData
})
const canaryWeight = (cluster: MemoryCluster) => readSplit(cluster.get('VirtualService', NS, 'web')!, 0, 'v1', 'v2').canary

describe('RolloutExecutor: an inconclusive blocking gate follows on-no-data', () => {
  it('pause: asks inconclusive-limit times, check-every apart, then pauses at the current weight', async () => {
    const cluster = world(atTen)
    const gate = new ScriptedGate(['before-increase'], { 'before-increase': ['inconclusive'] })
    const { run, clock } = executor(cluster, atTen, gate, policy('pause'))
    const ended = await run.run()
    expect(ended.phase).toBe('paused')
    expect(gate.asked).toEqual(['before-increase', 'before-increase'])
    expect(clock.t - T0).toBe(30_000)
    expect(canaryWeight(cluster)).toBe(10)
    // Both evaluations are in the history written to the VirtualService, with their moment.
    const written = stateOf(cluster.get('VirtualService', NS, 'web')!)!
    const gates = written.history.filter((e) => e.kind === 'gates')
    expect(gates.map((e) => [e.evaluation?.moment, e.evaluation?.verdict])).toEqual([
      ['before-increase', 'inconclusive'],
      ['before-increase', 'inconclusive']
    ])
    expect(written.reason).toMatch(/on-no-data: pause/)
  })

  it('skip: lets the increase go on, and says the gates were not checked', async () => {
    const cluster = world(atTen)
    const gate = new ScriptedGate(['before-increase', 'before-promotion'], { 'before-increase': ['inconclusive'] })
    const { run } = executor(cluster, atTen, gate, policy('skip'))
    const ended = await run.run()
    expect(ended.phase).toBe('promoted')
    const skipped = ended.history.filter((e) => e.kind === 'gates' && e.message?.startsWith('GATES NOT CHECKED'))
    expect(skipped.length).toBeGreaterThan(0)
  })

  it('fail: counts as a failed evaluation, and at the threshold rolls back', async () => {
    const cluster = world(atTen)
    const gate = new ScriptedGate(['before-increase'], { 'before-increase': ['inconclusive'] })
    const { run } = executor(cluster, atTen, gate, policy('fail'))
    const ended = await run.run()
    expect(ended.phase).toBe('rolled-back')
    expect(ended.reason).toMatch(
      /on-no-data: fail counts it as a failure: 1 of 1 failed evaluations allowed, rolling back — hook-before-increase/
    )
    expect(canaryWeight(cluster)).toBe(0)
    expect(run.undone).toContain('canary weight 10% → 0% (v1 100%)')
  })

  it('a failed before-promotion check below the threshold is asked again, a pass then promotes', async () => {
    const atFifty = { ...atTen, stepIndex: 1, canaryWeight: 50 }
    const cluster = world(atFifty)
    const gate = new ScriptedGate(['before-promotion', 'bake'], { 'before-promotion': ['fail', 'pass'] })
    const { run } = executor(cluster, atFifty, gate, policy('pause', 2))
    const ended = await run.run()
    expect(gate.asked.filter((m) => m === 'before-promotion')).toHaveLength(2)
    expect(ended.phase).toBe('promoted')
    expect(ended.failedChecks).toBe(1)
  })

  it('a pass is recorded and travels with the shift: one write per step', async () => {
    const cluster = world(atTen)
    const gate = new ScriptedGate(['before-increase'], {})
    const { run } = executor(cluster, atTen, gate, policy('pause'))
    await run.run()
    const history = stateOf(cluster.get('VirtualService', NS, 'web')!)!.history
    const i = history.findIndex((e) => e.kind === 'gates' && e.evaluation?.moment === 'before-increase')
    expect(history[i + 1]).toMatchObject({ kind: 'weight', canaryWeight: 50 })
  })
})
