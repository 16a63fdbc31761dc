/**
 * KubernetesGate: the canary's pods stay Ready and do not restart while they take traffic.
 * Needs no metrics, so it catches a crashing canary even when Prometheus has no data for it.
 */
import type { Cluster } from '../cluster/cluster.js'
import { labelSelector } from '../cluster/deployment-waiter.js'
import { judgeCanaryPods, restartCounts, type RestartBaseline } from '../rollout/deployment-health.js'
import type { CheckResult } from '../rollout/types.js'
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
      const selector = labelSelector(deployment.spec?.selector)
      if (!selector) return failAll(`canary Deployment "${namespace}/${name}" has no selector`)
      const pods = await this.cluster.listPods(namespace, selector)
      this.baseline ??= restartCounts(pods)
      return judgeCanaryPods(pods, this.baseline).checks
    } catch (err) {
      const detail = `Kubernetes API error: ${err instanceof Error ? err.message : String(err)}`
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
