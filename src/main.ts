import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import * as os from 'node:os'
import { COMMANDS, readConfig, type Command, type Config } from './config/config.js'
import { loadTimeZones } from './config/freeze-windows.js'
import { INPUT, INPUT_NAMES, INPUTS } from './config/inputs.js'
import { KubeCluster } from './cluster/kube-cluster.js'
import { loadKubeConfig } from './cluster/kubeconfig.js'
import { makeCommandDeps } from './commands/command-deps.js'
import { runCommand } from './commands/run-command.js'
import { CancelledError, type Log } from './commands/runtime.js'
import { gateSecrets, parseGateConfig, type GateConfig } from './health/gate-config.js'
import { parseGithubConfig } from './report/github-config.js'
import { createReporter, type Reporter } from './report/reporter.js'
import type { RunReport } from './report/run-report.js'

/** State keys shared with the post step (post.ts). */
export const POST_STATE = { pending: 'pending', holder: 'holder' } as const

const coreLog: Log = {
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  error: (m) => core.error(m)
}

/** Every input the action declares, as the runner passes them (missing = ''). */
export function readInputs(): Record<string, string> {
  const inputs: Record<string, string> = {}
  for (const name of INPUT_NAMES) inputs[name] = core.getInput(name)
  return inputs
}

/**
 * Who runs this: the lock holder and the history's `by`. Unique per invocation: the legs of a
 * matrix job, and two steps of one job, share repository, run id, attempt and job, so a random
 * invocation id tells them apart (a holder identical to another run's would let both take the
 * lock). The post step does not call this: it reads the main step's identity from the saved state.
 */
export function holderIdentity(
  env: NodeJS.ProcessEnv,
  invocation: string = randomBytes(4).toString('hex')
): { holder: string; runUrl?: string } {
  if (env.GITHUB_RUN_ID && env.GITHUB_REPOSITORY) {
    const runUrl = `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
    const runner = env.RUNNER_NAME ? ` runner ${env.RUNNER_NAME}` : ''
    return {
      holder: `${env.GITHUB_REPOSITORY} run ${env.GITHUB_RUN_ID} attempt ${env.GITHUB_RUN_ATTEMPT ?? '1'} job ${env.GITHUB_JOB ?? ''}${runner} invocation ${invocation} (${runUrl})`,
      runUrl
    }
  }
  return { holder: `${os.hostname()} pid ${process.pid} invocation ${invocation}` }
}

/**
 * The action's main step: inputs -> config -> adapters -> command -> reports. Returns the exit
 * code: 0 for promoted, paused, unchanged and aborted; 1 for a rollback or an error.
 */
export async function run(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Promise<number> {
  const inputs = readInputs()
  const identity = core.getState(POST_STATE.holder)
    ? { holder: core.getState(POST_STATE.holder), runUrl: holderIdentity(env).runUrl }
    : holderIdentity(env)
  const controller = new AbortController()
  let cancelled = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (cancelled) return
    cancelled = true
    core.warning(`Received ${signal}: stopping the rollout and moving traffic back to the stable version.`)
    controller.abort(new CancelledError(signal))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let reporter: Reporter | undefined
  let report: RunReport
  try {
    let config: Config
    let gateConfig: GateConfig
    try {
      if (inputs[INPUT.freezeWindows]?.trim()) await loadTimeZones()
      config = { ...readConfig(inputs, env), ...overrides }
      gateConfig = parseGateConfig(inputs, env)
      for (const s of gateSecrets(gateConfig)) core.setSecret(s)
    } catch (err) {
      report = configFailure(inputs, err)
      reporter = await createReporter({ inputs, env, log: coreLog }).catch(() => undefined)
      await reporter?.finish(report)
      return finishRun(report)
    }
    const githubConfig = parseGithubConfig(inputs, env)
    reporter = await createReporter({ inputs, env, log: coreLog, config: githubConfig })

    const kube = loadKubeConfig({ content: config.kubeconfig, env })
    for (const s of kube.secrets) core.setSecret(s)
    const cluster = new KubeCluster(kube.kubeConfig)
    core.saveState(POST_STATE.holder, identity.holder)
    // Status and plan never write: the post step has nothing to finish for them.
    if (config.command !== 'status' && config.command !== 'plan' && !config.dryRun)
      core.saveState(POST_STATE.pending, config.onCancel === 'freeze' ? 'false' : 'true')

    let started = false
    const timeout = config.timeoutSeconds
      ? setTimeout(() => onSignal('SIGALRM' as NodeJS.Signals), config.timeoutSeconds * 1000)
      : undefined
    timeout?.unref()
    const deps = makeCommandDeps({
      cluster,
      config,
      gateConfig,
      log: coreLog,
      signal: controller.signal,
      holder: identity.holder,
      runUrl: identity.runUrl,
      commit: env.GITHUB_SHA || undefined,
      cwd: env.GITHUB_WORKSPACE ?? process.cwd(),
      defaultNamespace: kube.namespace,
      // The first write of the rollout starts the GitHub side (deployment in_progress, comment).
      onProgress: (r) => {
        void (started ? reporter?.progress(r) : reporter?.start(r))
        started = true
      }
    })
    // The plan's code is loaded only by plan runs (startup budget).
    report =
      config.command === 'plan' ? await (await import('./commands/plan-command.js')).runPlan(config, deps) : await runCommand(config, deps)
    clearTimeout(timeout)
    if (!cancelled) core.saveState(POST_STATE.pending, 'false')
    report = { ...report, apiRequests: cluster.requestCount }
    await reporter.finish(report)
    return finishRun(report)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** A report for inputs that could not even be parsed: nothing in the cluster was touched. */
function configFailure(inputs: Record<string, string>, err: unknown): RunReport {
  const e = err instanceof Error ? err : new Error(String(err))
  const now = new Date().toISOString()
  return {
    command: ((COMMANDS as readonly string[]).includes(inputs[INPUT.command]) ? inputs[INPUT.command] : INPUTS.command.default) as Command,
    namespace: inputs[INPUT.namespace] || '',
    virtualService: inputs[INPUT.virtualService] || '',
    result: 'unchanged',
    canaryWeight: 0,
    warnings: [],
    dryRun: false,
    error: { kind: e.name, message: e.message },
    startedAt: now,
    finishedAt: now
  }
}

/** Outputs are written by the reporter; here only the exit code. A pause succeeds, a rollback fails. */
function finishRun(report: RunReport): number {
  if (report.error && report.result !== 'aborted') {
    core.setFailed(report.error.message)
    return 1
  }
  if (report.result === 'rolled-back') {
    core.setFailed(`Rolled back: ${report.state?.reason ?? 'health gates failed'}`)
    return 1
  }
  return 0
}
