/**
 * KubernetesGate: the canary's pods stay Ready and do not restart while they take traffic.
 * Needs no metrics, so it catches a crashing canary even when Prometheus has no data for it.
 */
import type { Cluster } from '../cluster/cluster.js'
import { errorText } from '../format.js'
import { isPodReady, podWhy, restartCounts, type RestartBaseline } from '../kube/deployment-health.js'
import type { KubeObject } from '../kube/kube-object.js'
import { labelSelectorQuery } from '../kube/label-selector.js'
import type { CheckResult, Verdict } from '../rollout/types.js'
import type { GateContext, GateMoment, HealthGate } from './health-gate.js'

export interface KubernetesGateOptions {
  /** Restart counts per pod to compare with; captured at the first evaluation when absent. */
  baseline?: RestartBaseline
}

export class KubernetesGate implements HealthGate {
  readonly name = 'kubernetes'
  readonly moments: readonly GateMoment[] = ['bake', 'before-promotion']
  private baseline?: RestartBaseline

  constructor(
    private readonly cluster: Cluster,
    opts: KubernetesGateOptions = {}
  ) {
    this.baseline = opts.baseline
  }

  /** The baseline in use (to persist it across runs with the rollout state, if wanted). */
  get restartBaseline(): RestartBaseline | undefined {
    return this.baseline
  }

  /** Nothing to check before the canary exists. */
  async preflight(_ctx: GateContext): Promise<void> {}

  /** 2 requests: the canary Deployment (for its selector) and its pods. */
  async evaluate(_moment: GateMoment, ctx: GateContext): Promise<CheckResult[]> {
    const { namespace } = ctx
    const name = ctx.canary.deployment
    try {
      const deployment = await this.cluster.getDeployment(namespace, name)
      if (!deployment) return failAll(`canary Deployment "${namespace}/${name}" not found`)
      const selector = labelSelectorQuery(deployment.spec?.selector)
      if (!selector) return failAll(`canary Deployment "${namespace}/${name}" has no selector`)
      const pods = await this.cluster.listPods(namespace, selector)
      this.baseline ??= restartCounts(pods)
      return judgeCanaryPods(pods, this.baseline).checks
    } catch (err) {
      const detail = `Kubernetes API error: ${errorText(err)}`
      return [
        { name: 'pods-ready', verdict: 'inconclusive', detail },
        { name: 'restarts', verdict: 'inconclusive', detail }
      ]
    }
  }
}

function failAll(detail: string): CheckResult[] {
  return [
    { name: 'pods-ready', verdict: 'fail', detail },
    { name: 'restarts', verdict: 'fail', detail }
  ]
}

export interface CanaryPodsJudgement {
  verdict: Exclude<Verdict, 'inconclusive'>
  /** `pods-ready` and `restarts`. */
  checks: CheckResult[]
}

/**
 * All canary pods Ready and no restarts since the baseline -> pass. A pod absent from the
 * baseline (a replacement) counts all its restarts.
 */
export function judgeCanaryPods(pods: KubeObject[], baselineRestarts: RestartBaseline): CanaryPodsJudgement {
  const live = pods.filter((p) => !p.metadata.deletionTimestamp)
  const notReady = live.filter((p) => !isPodReady(p))
  const readyCheck: CheckResult = {
    name: 'pods-ready',
    verdict: live.length > 0 && notReady.length === 0 ? 'pass' : 'fail',
    value: live.length - notReady.length,
    threshold: `== ${live.length} pods`,
    unit: 'pods',
    detail:
      live.length === 0
        ? 'no canary pods'
        : notReady.length > 0
          ? `not ready: ${notReady.map((p) => `${p.metadata.name}${podWhy(p)}`).join(', ')}`
          : `${live.length} of ${live.length} ready`
  }
  const now = restartCounts(live)
  const grown = Object.entries(now)
    .map(([name, count]) => ({ name, count, delta: count - (baselineRestarts[name] ?? 0) }))
    .filter((p) => p.delta > 0)
  const totalGrowth = grown.reduce((n, p) => n + p.delta, 0)
  const restartCheck: CheckResult = {
    name: 'restarts',
    verdict: grown.length === 0 ? 'pass' : 'fail',
    value: totalGrowth,
    threshold: '== 0 new',
    unit: 'restarts',
    detail: grown.length === 0 ? 'no new restarts' : grown.map((p) => `${p.name}: +${p.delta} (${p.count} total)`).join(', ')
  }
  return {
    verdict: readyCheck.verdict === 'pass' && restartCheck.verdict === 'pass' ? 'pass' : 'fail',
    checks: [readyCheck, restartCheck]
  }
}
