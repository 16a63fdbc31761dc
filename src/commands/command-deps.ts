import type { Cluster } from '../cluster/cluster.js'
import { waitForDeployment } from '../cluster/deployment-waiter.js'
import { LeaseLock } from '../cluster/lease-lock.js'
import type { Config } from '../config/config.js'
import { buildGates, buildOutsideMeshProbe, type GateConfig } from '../health/gate-config.js'
import { KubernetesGate } from '../health/kubernetes-gate.js'
import type { CommandDeps } from './run-command.js'
import { systemClock, type Clock, type Log } from './runtime.js'

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
    checkEveryMs: (gateConfig.checkEverySeconds > 0 ? Math.min(gateConfig.checkEverySeconds, config.intervalSeconds) : config.intervalSeconds) * 1000,
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
