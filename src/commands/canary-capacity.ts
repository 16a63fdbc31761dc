import { FIELD_MANAGER, type CapacityApi, type Cluster } from '../cluster/cluster.js'
import { boundsOf, canaryHpaFrom, isManagedByUs, scalesDeployment } from '../kube/horizontal-pod-autoscaler.js'
import type { KubeObject } from '../kube/kube-object.js'
import {
  canaryCapacity,
  managesCapacity,
  promotedBounds,
  requiredReplicas,
  type CapacityTarget,
  type HpaBounds
} from '../rollout/capacity.js'
import type { RolloutState } from '../rollout/types.js'
import type { Clock, Log } from './runtime.js'

export interface CanaryCapacityOptions {
  cluster: Cluster
  namespace: string
  clock: Clock
  log: Log
  signal: AbortSignal
  progressDeadlineMs: number
  /** The canary's manifest (its spec.replicas, 1 when it has none). */
  canaryManifest?: KubeObject
  /** Waits for the canary Deployment (failure reason, or undefined once available). */
  waitForCanary: (deadlineMs: number) => Promise<string | undefined>
}

/**
 * The replicas of the two versions, in a lazy chunk (loaded after the first API requests): the
 * canary's apply, its capacity (rollout/capacity.ts decides it) raised before each weight
 * increase and available before traffic moves; on promotion the new version's HPA takes the
 * stable's bounds; on rollback and retirement the HPA the action made goes.
 *
 * Field ownership: the action never fights an HPA over .spec.replicas. Without an HPA it sets the
 * canary's replicas with a patch of its own (the manifest is then applied without them, so a
 * re-apply never resets them). With one, it writes .spec.replicas only once, before the canary's
 * HPA exists (only when the new Deployment has fewer than the HPA's minimum); from then on it moves
 * the HPA's minReplicas and maxReplicas, and the HPA controller sets the replicas.
 */
export class CanaryCapacity {
  // Loaded by the executor only when a rollout manages capacity (dynamic import: outside the startup bundle).
  constructor(private readonly o: CanaryCapacityOptions) {}

  private capacityApi?: Promise<CapacityApi>
  private api(): Promise<CapacityApi> {
    return (this.capacityApi ??= this.o.cluster.capacity())
  }

  /** Apply the canary's manifest and wait until it has what its first step needs (as its manifest says, by default). */
  async apply(state: RolloutState, manifest: KubeObject): Promise<void> {
    const { cluster } = this.o
    if (!managesCapacity(state.capacity)) {
      await this.restoreScaledDownReplicas(manifest)
      await cluster.applyDeployment(manifest)
      const failure = await this.o.waitForCanary(this.o.progressDeadlineMs)
      if (failure) throw new Error(`canary Deployment ${state.canary.deployment} did not become available: ${failure}`)
      return
    }
    // The replicas are the action's (or the HPA's) to set: applied, they would be reset by every re-apply.
    const { replicas: _r, ...spec } = manifest.spec ?? {}
    await cluster.applyDeployment({ ...manifest, spec })
    const first = state.schedule.find((step) => step.kind === 'weight')
    await this.raise(state, first?.kind === 'weight' ? first.weight : 100)
  }

  /**
   * A rollback (or a retirement) scaled this Deployment to 0 with a plain patch, so our Update
   * manager owns spec.replicas: a non-forced apply of the manifest would conflict with it, and a
   * manifest without replicas would leave it at 0. Put the wanted count back the same way first.
   */
  private async restoreScaledDownReplicas(manifest: KubeObject): Promise<void> {
    const { cluster, namespace } = this.o
    const live = await cluster.getDeployment(namespace, manifest.metadata.name)
    if (!live) return
    const wanted = Number(manifest.spec?.replicas ?? 1)
    const ownedByOurPatch = (live.metadata.managedFields ?? []).some((m) => {
      const spec = (m.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']
      return m.manager === FIELD_MANAGER && m.operation === 'Update' && spec?.['f:replicas'] !== undefined
    })
    if (ownedByOurPatch && live.spec?.replicas !== wanted) {
      await cluster.scaleDeployment(namespace, manifest.metadata.name, wanted)
      this.o.log.info(
        `Deployment ${manifest.metadata.name} was scaled to ${live.spec?.replicas} by an earlier run: scaled back to ${wanted} before applying`
      )
    }
  }

  /** Raise the canary to what `weight` needs and wait until that many replicas are available. */
  async raise(state: RolloutState, weight: number): Promise<void> {
    if (!managesCapacity(state.capacity)) return
    const { cluster, namespace, log } = this.o
    const cap = state.capacity!
    const canary = state.canary.deployment
    const [stable, live, hpas] = await Promise.all([
      state.stable.deployment ? cluster.getDeployment(namespace, state.stable.deployment) : undefined,
      cluster.getDeployment(namespace, canary),
      cap.stableHpa ? (await this.api()).listHorizontalPodAutoscalers(namespace) : Promise.resolve([] as KubeObject[])
    ])
    if (!live) throw new Error(`canary Deployment ${canary} is gone`)
    const stableHpa = cap.stableHpa ? hpas.find((h) => h.metadata.name === cap.stableHpa) : undefined
    const canaryHpa = cap.canaryHpa ? hpas.find((h) => h.metadata.name === cap.canaryHpa && scalesDeployment(h, canary)) : undefined
    if (cap.stableHpa && !stableHpa && !canaryHpa) {
      throw new Error(`HorizontalPodAutoscaler ${cap.stableHpa} of the stable version is gone, so the canary's cannot be made from it`)
    }
    const target: CapacityTarget = canaryCapacity({
      mode: cap.mode,
      weight,
      stableReplicas: Number(stable?.spec?.replicas ?? 1),
      stableHpa: stableHpa ? boundsOf(stableHpa) : canaryHpa ? boundsOf(canaryHpa) : undefined,
      current: { replicas: Number(live.spec?.replicas ?? 1), ...(canaryHpa ? { hpa: boundsOf(canaryHpa) } : {}) }
    })
    if (target.kind === 'replicas' && Number(live.spec?.replicas ?? 1) !== target.replicas) {
      await cluster.scaleDeployment(namespace, canary, target.replicas)
      log.info(`Canary ${canary} scaled to ${target.replicas} replica(s) for ${weight}% (canary-replicas: ${cap.mode})`)
    }
    if (target.kind === 'hpa') {
      if (!canaryHpa) {
        // The only write of .spec.replicas under an HPA: before the canary's HPA exists.
        if (Number(live.spec?.replicas ?? 1) < target.min) await cluster.scaleDeployment(namespace, canary, target.min)
        await this.applyHpa(state, stableHpa!, target)
        log.info(
          `HorizontalPodAutoscaler ${cap.canaryHpa} made for the canary from ${cap.stableHpa}: ${target.min}..${target.max} replicas for ${weight}%`
        )
      } else if (boundsOf(canaryHpa).min !== target.min || boundsOf(canaryHpa).max !== target.max) {
        await this.applyHpa(state, stableHpa ?? canaryHpa, target)
        log.info(`HorizontalPodAutoscaler ${cap.canaryHpa} raised to ${target.min}..${target.max} replicas for ${weight}%`)
      }
    }
    await this.waitAvailable(canary, requiredReplicas(target, Number(this.o.canaryManifest?.spec?.replicas ?? 1)), weight)
  }

  /**
   * Retire the old version after promotion per input 'retire' (an HPA the action made for it goes
   * first, or it would scale it back up); whether it was retired.
   */
  async retireStable(st: RolloutState, retire: 'scale-down' | 'delete' | 'keep', warnings: string[]): Promise<boolean> {
    const { cluster, namespace, log } = this.o
    const name = st.stable.deployment
    if (!name) {
      warnings.push(`no Deployment of the old version ${st.stable.version} was found to retire`)
      return false
    }
    if (name === st.canary.deployment || retire === 'keep') return false
    if (st.capacity?.stableHpa) await this.removeHpaOf(name)
    if (retire === 'scale-down') {
      await cluster.scaleDeployment(namespace, name, 0)
      log.info(`Deployment ${name} scaled to 0 (retire: scale-down)`)
    } else {
      if (await cluster.getDeployment(namespace, name)) await cluster.deleteDeployment(namespace, name)
      log.info(`Deployment ${name} deleted (retire: delete)`)
    }
    return true
  }

  /** The rollback's last step, once the canary's weight is 0 and its subset gone: its HPA, then its replicas. What it undid. */
  async scaleDownCanary(s: RolloutState): Promise<string[]> {
    const { cluster, namespace } = this.o
    const undone: string[] = []
    // The canary's HPA goes before its replicas, so nothing scales it back up.
    const removed = s.capacity?.canaryHpa ? await this.removeHpaOf(s.canary.deployment) : undefined
    if (removed) undone.push(removed)
    const dep = await cluster.getDeployment(namespace, s.canary.deployment)
    if (dep && (dep.spec?.replicas ?? 1) !== 0 && s.canary.deployment !== s.stable.deployment) {
      await cluster.scaleDeployment(namespace, s.canary.deployment, 0)
      undone.push(`Deployment ${s.canary.deployment} scaled to 0`)
    }
    return undone
  }

  /** After promotion the new version's HPA takes the stable's bounds (read before the stable's HPA may go). */
  async promoted(state: RolloutState, stableBounds: HpaBounds | undefined): Promise<void> {
    const cap = state.capacity
    if (!cap?.canaryHpa || !stableBounds) return
    const hpa = (await (await this.api()).listHorizontalPodAutoscalers(this.o.namespace)).find((h) => h.metadata.name === cap.canaryHpa)
    if (!hpa || !isManagedByUs(hpa)) return
    const bounds = promotedBounds(stableBounds)
    await this.applyHpa(state, hpa, bounds)
    this.o.log.info(
      `HorizontalPodAutoscaler ${cap.canaryHpa} of the new stable version takes the old one's bounds: ${bounds.min}..${bounds.max}`
    )
  }

  /** The stable's HPA bounds now, when the rollout copies one. */
  async stableBounds(state: RolloutState): Promise<HpaBounds | undefined> {
    const name = state.capacity?.stableHpa
    if (!name) return undefined
    const hpa = (await (await this.api()).listHorizontalPodAutoscalers(this.o.namespace)).find((h) => h.metadata.name === name)
    return hpa ? boundsOf(hpa) : undefined
  }

  /**
   * Removes the HPA the action made for `deployment` (the canary on rollback, the old version on
   * retirement), before its replicas go to 0: nothing then scales it back. An HPA someone else made
   * stays (it stops scaling a Deployment at 0 replicas); says what it did.
   */
  async removeHpaOf(deployment: string): Promise<string | undefined> {
    const { namespace } = this.o
    let hpas: KubeObject[]
    try {
      hpas = await (await this.api()).listHorizontalPodAutoscalers(namespace)
    } catch (err) {
      // Without `list` on HPAs (a Role from before this feature) there is none of ours to find.
      this.o.log.warning(`Could not list the HorizontalPodAutoscalers of ${namespace}: ${err instanceof Error ? err.message : String(err)}`)
      return undefined
    }
    const mine = hpas.find((h) => scalesDeployment(h, deployment) && isManagedByUs(h))
    if (mine) {
      await (await this.api()).deleteHorizontalPodAutoscaler(namespace, mine.metadata.name)
      this.o.log.info(`HorizontalPodAutoscaler ${mine.metadata.name} of ${deployment} deleted`)
      return `HorizontalPodAutoscaler ${mine.metadata.name} deleted`
    }
    const theirs = hpas.find((h) => scalesDeployment(h, deployment))
    if (theirs)
      this.o.log.info(
        `HorizontalPodAutoscaler ${theirs.metadata.name} of ${deployment} is not the action's: left in place (an HPA does not scale a Deployment at 0 replicas)`
      )
    return undefined
  }

  private async applyHpa(state: RolloutState, from: KubeObject, bounds: { min: number; max: number }): Promise<void> {
    await (
      await this.api()
    ).applyHorizontalPodAutoscaler(
      canaryHpaFrom(from, {
        name: state.capacity!.canaryHpa!,
        namespace: this.o.namespace,
        deployment: state.canary.deployment,
        min: bounds.min,
        max: bounds.max
      })
    )
  }

  /** Make before break for capacity: `replicas` of the canary available before traffic moves. */
  private async waitAvailable(canary: string, replicas: number, weight: number): Promise<void> {
    const { clock, cluster, namespace } = this.o
    const deadline = clock.now() + this.o.progressDeadlineMs
    for (;;) {
      const failure = await this.o.waitForCanary(Math.max(1000, deadline - clock.now()))
      if (failure) throw new Error(`canary Deployment ${canary} did not reach ${replicas} available replica(s) for ${weight}%: ${failure}`)
      const live = await cluster.getDeployment(namespace, canary)
      const available = Number(live?.status?.availableReplicas ?? 0)
      if (Number(live?.spec?.replicas ?? 0) >= replicas && available >= replicas) return
      if (clock.now() >= deadline) {
        throw new Error(
          `canary Deployment ${canary} did not reach ${replicas} available replica(s) for ${weight}% within the progress deadline ` +
            `(${available} available of ${live?.spec?.replicas ?? 0} desired); with an HPA, its controller sets the replicas`
        )
      }
      await clock.sleep(1000, this.o.signal)
    }
  }
}

// One lazy chunk for all of canary capacity: preflight's checks load with it.
export { preflightCapacity, requireHpaRights } from './capacity-preflight.js'
