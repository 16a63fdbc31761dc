import type { Cluster } from '../cluster/cluster.js'
import { waitForDeployment } from '../cluster/deployment-waiter.js'
import { LeaseLock } from '../cluster/lease-lock.js'
import type { Config } from '../config/config.js'
import { buildGates, buildOutsideMeshProbe, type GateConfig } from '../health/gate-config.js'
import { KubernetesGate } from '../health/kubernetes-gate.js'
import type { HealthGate } from '../health/health-gate.js'
import type { OutsideMeshProbe } from '../health/outside-mesh.js'
import type { RunReport } from '../report/run-report.js'
import type { GatePolicy } from '../rollout/verdict.js'
import type { RolloutExecutor } from './rollout-executor.js'
import type { RolloutLock } from './rollout-lock.js'
import { systemClock, type Clock, type Log } from './runtime.js'

/** The ports and settings every command runs with. */
export interface CommandDeps {
  cluster: Cluster
  clock: Clock
  log: Log
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal
  gates: HealthGate[]
  policy: GatePolicy
  /** Measures requests from callers outside the mesh (Prometheus configured, input 'outside-mesh' not ignore). */
  outsideMesh?: OutsideMeshProbe
  checkEveryMs: number
  /** Who runs this (run URL or `host pid`), recorded as the lock holder and in the history. */
  holder: string
  runUrl?: string
  /** The commit this run was started for (GITHUB_SHA), recorded as the release's commit. */
  commit?: string
  cwd: string
  /** The kubeconfig context's namespace, used when neither the input nor the manifest names one. */
  defaultNamespace?: string
  makeLock: (namespace: string, virtualService: string) => RolloutLock
  /** Waits for a Deployment; returns a failure reason, or undefined once it is available. */
  waitForDeployment: (namespace: string, name: string, deadlineMs: number, signal: AbortSignal) => Promise<string | undefined>
  /** Called with a fresh report whenever the state was written. */
  onProgress?: (report: RunReport) => void
  /** Lets the cancellation handler reach the running executor. */
  onExecutor?: (executor: RolloutExecutor | undefined) => void
}

export interface CommandDepsInput {
  cluster: Cluster
  config: Config
  gateConfig: GateConfig
  log: Log
  signal: AbortSignal
  holder: string
  runUrl?: string
  commit?: string
  cwd: string
  defaultNamespace?: string
  clock?: Clock
  onProgress?: CommandDeps['onProgress']
  onExecutor?: CommandDeps['onExecutor']
}

/** The real adapters behind the command ports: one place, used by main.ts and the tests alike. */
export function makeCommandDeps(input: CommandDepsInput): CommandDeps {
  const { cluster, config, gateConfig } = input
  return {
    cluster,
    clock: input.clock ?? systemClock,
    log: input.log,
    signal: input.signal,
    // The Kubernetes gate needs no metrics: a crashing canary is caught even without Prometheus.
    gates: [new KubernetesGate(cluster), ...buildGates(gateConfig)],
    policy: gateConfig.policy,
    outsideMesh: buildOutsideMeshProbe(gateConfig),
    checkEveryMs:
      (gateConfig.checkEverySeconds > 0 ? Math.min(gateConfig.checkEverySeconds, config.intervalSeconds) : config.intervalSeconds) * 1000,
    holder: input.holder,
    runUrl: input.runUrl,
    commit: input.commit,
    cwd: input.cwd,
    defaultNamespace: input.defaultNamespace,
    makeLock: (namespace, virtualService) =>
      new LeaseLock(cluster, { namespace, virtualService, holder: input.holder, leaseDurationSeconds: config.lockDurationSeconds }),
    waitForDeployment: async (namespace, name, deadlineMs, signal) => {
      const r = await waitForDeployment(cluster, namespace, name, { deadlineMs, signal })
      return r.state === 'ready' ? undefined : (r.reason ?? r.state)
    },
    onProgress: input.onProgress,
    onExecutor: input.onExecutor
  }
}
