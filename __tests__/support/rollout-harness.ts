/**
 * Runs the action's commands in-process against the test cluster, with the same wiring as
 * main.ts (makeCommandDeps) and a log that keeps every line. For the e2e path through
 * dist/index.js see __tests__/e2e/.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { KubeCluster, type KubeClusterOptions } from '../../src/cluster/kube-cluster.js'
import type { KubeObject } from '../../src/kube/kube-object.js'
import { loadKubeConfig } from '../../src/cluster/kubeconfig.js'
import { makeCommandDeps } from '../../src/commands/command-deps.js'
import { runCommand } from '../../src/commands/run-command.js'
import { MemoryLog, type Clock } from '../../src/commands/runtime.js'
import { readConfig } from '../../src/config/config.js'
import { parseGateConfig } from '../../src/health/gate-config.js'
import type { RunReport } from '../../src/report/run-report.js'
import { stateOf } from '../../src/rollout/state-codec.js'
import { loadTestEnv } from './test-cluster.js'
import { loadTimeZones } from '../../src/config/freeze-windows.js'
import { loadVersionRule } from '../../src/commands/preflight.js'

export interface RunOptions {
  holder?: string
  signal?: AbortSignal
  kubeconfigPath?: string
  /** E.g. a short callDeadlineMs for tests that make the apiserver fail on purpose. */
  clusterOptions?: KubeClusterOptions
  onProgress?: (report: RunReport) => void
  /** The run's clock (default: the system's), e.g. one that starts at a fixed instant. */
  clock?: Clock
}

export interface RunOutcome {
  report: RunReport
  log: MemoryLog
  cluster: KubeCluster
}

/** A KubeCluster on the test cluster's admin kubeconfig (or the one given). */
export function testCluster(kubeconfigPath?: string, options?: KubeClusterOptions): KubeCluster {
  const kube = loadKubeConfig({ env: { KUBECONFIG: kubeconfigPath ?? loadTestEnv().kubeconfigPath } })
  return new KubeCluster(kube.kubeConfig, options)
}

/** Runs one command with the given inputs (as the runner would pass them) and returns its report. */
export async function runAction(inputs: Record<string, string>, opts: RunOptions = {}): Promise<RunOutcome> {
  if (inputs['freeze-windows']?.trim()) await loadTimeZones()
  // Lazily loaded in the action; loaded here while the test's code runs (Jest refuses an import() later).
  await loadVersionRule()
  const config = readConfig({ settle: '0s', interval: '1s', 'check-every': '0', ...inputs })
  const gateConfig = parseGateConfig({ 'check-every': '0', ...inputs }, process.env)
  const cluster = testCluster(opts.kubeconfigPath, opts.clusterOptions)
  const log = new MemoryLog()
  const report = await runCommand(
    config,
    makeCommandDeps({
      cluster,
      config,
      gateConfig,
      log,
      signal: opts.signal ?? new AbortController().signal,
      holder: opts.holder ?? `test ${process.pid} ${Math.random().toString(36).slice(2, 8)}`,
      cwd: inputs.cwd ?? process.cwd(),
      onProgress: opts.onProgress,
      clock: opts.clock
    })
  )
  return { report, log, cluster }
}

/** Writes manifest text to a fresh temp dir and returns its path. */
export function writeManifest(text: string, name = 'deployment.yaml'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-manifest-'))
  const file = path.join(dir, name)
  fs.writeFileSync(file, text)
  return file
}

/** The VirtualService / DestinationRule as stored, with the parts the action owns or the server sets removed. */
export async function snapshot(
  cluster: KubeCluster,
  kind: 'VirtualService' | 'DestinationRule',
  ns: string,
  name: string
): Promise<KubeObject> {
  const obj = await cluster.getIstio(kind, ns, name)
  if (!obj) throw new Error(`${kind} ${ns}/${name} not found`)
  return obj
}

export function routeOf(vs: KubeObject, index = 0): Array<{ destination: { host: string; subset?: string }; weight?: number }> {
  return vs.spec.http[index].route
}

/** The outside-mesh share (percent) of the seed's stable v1 that the deploy preflight's warning names, if it warned. */
export function warnedShare(warnings: string[]): number | undefined {
  const m = warnings
    .map((w) =>
      /^([\d.]+) % of the requests to the stable version v1 \(Deployment istio-deployment-v1\) in the last 10m came from outside the mesh/.exec(
        w
      )
    )
    .find(Boolean)
  return m ? Number(m[1]) : undefined
}

export { stateOf }
