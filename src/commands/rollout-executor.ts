import { FIELD_MANAGER, type Cluster } from '../cluster/cluster.js'
import type { KubeObject } from '../kube/kube-object.js'
import { ConflictError, RollbackIncompleteError } from '../errors.js'
import type { GateContext, GateMoment, HealthGate } from '../health/health-gate.js'
import { nextAction, reduce, startPromotion, type RolloutEvent } from '../rollout/planner.js'
import { encodeState, STATE_ANNOTATION, stateOf } from '../rollout/state-codec.js'
import type { CheckResult, GateEvaluation, RolloutState } from '../rollout/types.js'
import { combine, decideAfterEvaluation, type GatePolicy } from '../rollout/verdict.js'
import { readSplit, withoutDestination, withSplit, withState } from '../traffic/istio/virtual-service-transform.js'
import { hasSubset, withoutSubset, withSubset } from '../traffic/istio/destination-rule-transform.js'
import { errorText, formatNumber } from '../format.js'
import { iso, type Clock, type Log } from './runtime.js'

/** Raised when what we own on the route was changed by someone else (GitOps revert, a person). */
export class DriftError extends Error {
  override readonly name = 'DriftError'
}

/** Raised when a later lock holder has written the state: this run must stop writing. */
export class FencedError extends Error {
  override readonly name = 'FencedError'
}

export interface ExecutorOptions {
  cluster: Cluster
  clock: Clock
  log: Log
  /** Aborts waits and bakes on cancellation. */
  signal: AbortSignal
  namespace: string
  virtualService: string
  destinationRule: string
  versionLabel: string
  /** The canary Deployment manifest (deploy only). */
  canaryManifest?: KubeObject
  /** The old stable Deployment to retire after promotion. */
  retire: 'scale-down' | 'delete' | 'keep'
  intervalMs: number
  checkEveryMs: number
  settleMs: number
  progressDeadlineMs: number
  gates: HealthGate[]
  policy: GatePolicy
  /** Waits for the canary Deployment; returns a failure reason or undefined when available. */
  waitForCanary: (deadlineMs: number) => Promise<string | undefined>
  /** Called whenever the state was written (reports update the PR comment from it). */
  onProgress?: (state: RolloutState) => void
  /** Lease epoch of this run: every write checks that no later holder has written. */
  epoch: number
  holder: string
}

/**
 * Carries out what the planner decides, one guarded write at a time. Every VirtualService write
 * carries the weights and the state together, with the resourceVersion read just before as its
 * precondition; a conflict means read again and decide again.
 */
export class RolloutExecutor {
  /** What the rollback undid, in order, for the report. */
  readonly undone: string[] = []
  readonly warnings: string[] = []
  private state: RolloutState
  /** The VirtualService as the read-back after our last write showed it. */
  private lastReadBack?: KubeObject

  constructor(
    private readonly o: ExecutorOptions,
    state: RolloutState
  ) {
    this.state = state
  }

  get current(): RolloutState {
    return this.state
  }

  private now(): string {
    return iso(this.o.clock.now())
  }

  /** Drives the rollout until it is paused or ends. Failures roll back; the rollback's failure throws. */
  async run(): Promise<RolloutState> {
    for (let guard = 0; guard < 1000; guard++) {
      const action = nextAction(this.state)
      if (action.kind === 'done') return this.state
      try {
        switch (action.kind) {
          case 'prepare-canary':
            await this.prepareCanary()
            break
          case 'shift':
            await this.shift(action.weight, action.stepIndex)
            break
          case 'bake':
            await this.bake()
            break
          case 'pause':
            await this.commitState(reduce(this.state, { type: 'paused', at: this.now() }))
            this.o.log.info(`Paused at ${this.state.canaryWeight}% on ${this.state.canary.version}: run the promote command to continue, or abort.`)
            break
          case 'finalize-promotion':
            await this.finalizePromotion()
            break
          case 'rollback':
            await this.rollback()
            break
        }
      } catch (err) {
        if (this.o.signal.aborted) throw err
        if (err instanceof FencedError || err instanceof RollbackIncompleteError) throw err
        // A failed rollback, or a failure once promotion started (the old version may be gone),
        // ends the run: the next run resumes it from the state, forward.
        if (action.kind === 'rollback' || this.state.phase === 'promoting') throw err
        const reason = err instanceof DriftError ? `drift: ${err.message}` : errorText(err)
        this.o.log.error(`Rolling back: ${reason}`)
        this.state = reduce(this.state, { type: 'failed', at: this.now(), reason })
        if (err instanceof DriftError) this.state = { ...this.state, history: [...this.state.history, { at: this.now(), kind: 'drift', message: err.message }] }
      }
    }
    throw new Error('internal: the rollout did not end after 1000 actions')
  }

  /** Apply an event and persist the resulting state on the VirtualService (weights untouched). */
  private async commitState(next: RolloutState): Promise<void> {
    await this.updateVirtualService((vs) => vs, next)
  }

  /**
   * Read the VirtualService, let `edit` change what we own, and PUT it with the new state under
   * the resourceVersion just read. Retries on conflict (read again, decide again), then reads back.
   */
  async updateVirtualService(
    edit: (vs: KubeObject, live: RolloutState | undefined) => KubeObject,
    next: RolloutState,
    opts: { checkDrift?: boolean; verify?: (vs: KubeObject) => boolean } = {}
  ): Promise<KubeObject> {
    const { cluster, namespace, virtualService } = this.o
    let lastError: unknown
    // Start from our own last read-back: if anyone wrote since, its resourceVersion is stale, the
    // PUT answers 409, and the next attempt reads afresh (where drift and fencing are judged).
    let cached = this.lastReadBack
    this.lastReadBack = undefined
    for (let attempt = 1; attempt <= 5; attempt++) {
      const vs = cached ?? (await cluster.getIstio('VirtualService', namespace, virtualService))
      cached = undefined
      if (!vs) throw new Error(`VirtualService ${namespace}/${virtualService} disappeared mid-rollout`)
      const live = stateOf(vs)
      if (live && live.epoch > this.o.epoch) {
        throw new FencedError(
          `another run took over this rollout (lock epoch ${live.epoch} > ours ${this.o.epoch}); this run stops writing`
        )
      }
      if (opts.checkDrift) this.checkDrift(vs)
      const stamped: RolloutState = { ...next, epoch: this.o.epoch, updatedAt: this.now() }
      const body = withState(edit(vs, live), STATE_ANNOTATION, encodeState(stamped))
      try {
        await cluster.replaceIstio(body)
      } catch (err) {
        if (err instanceof ConflictError) {
          lastError = err
          continue
        }
        throw err
      }
      // A write counts only once a read shows it (a retried PUT may have landed twice or not at all).
      const back = await cluster.getIstio('VirtualService', namespace, virtualService)
      const backState = back ? stateOf(back) : undefined
      if (!back || backState?.updatedAt !== stamped.updatedAt || backState.epoch !== stamped.epoch || (opts.verify && !opts.verify(back))) {
        lastError = new ConflictError('read-back did not show our write')
        continue
      }
      this.state = stamped
      this.lastReadBack = back
      this.o.onProgress?.(stamped)
      return back
    }
    throw new ConflictError(
      `VirtualService ${namespace}/${virtualService} kept changing under us (5 conflicting writes): ${errorText(lastError)}`
    )
  }

  /** The weights on the route must be the ones we last wrote; anything else is someone else's edit. */
  private checkDrift(vs: KubeObject): void {
    const s = this.state
    if (s.phase === 'initializing' || s.phase === 'rolling-back') return
    const index = this.routeIndex(vs)
    const split = readSplit(vs, index, s.stable.subset, s.canary.subset)
    const expectCanaryDest = s.phase === 'progressing' || s.phase === 'paused' || s.phase === 'promoting'
    if (s.stepIndex < 0 && s.phase === 'progressing') return
    if (expectCanaryDest && split.canary !== s.canaryWeight) {
      throw new DriftError(
        `route ${routeLabel(s)} of VirtualService ${this.o.namespace}/${this.o.virtualService} has canary weight ${split.canary}, but this rollout last set ${s.canaryWeight}; someone else changed it`
      )
    }
  }

  private routeIndex(vs: KubeObject): number {
    const http: Array<{ name?: string }> = vs.spec?.http ?? []
    const { index, name } = this.state.route
    if (name) {
      const found = http.findIndex((r) => r.name === name)
      if (found < 0) throw new DriftError(`route "${name}" is no longer in VirtualService ${this.o.virtualService}`)
      return found
    }
    if (index >= http.length) throw new DriftError(`route ${index} is no longer in VirtualService ${this.o.virtualService}`)
    return index
  }

  private async prepareCanary(): Promise<void> {
    const { cluster, namespace } = this.o
    const s = this.state
    await this.gate('pre-rollout')
    if (!this.o.canaryManifest) throw new Error('internal: no canary manifest to apply')
    // Record the rollout before its first change: a run killed from here on (no post step) leaves
    // an in-flight state, so the next run takes over and removes the canary and its subset.
    if (stateOf(await this.getVs())?.id !== s.id) await this.commitState(s)
    this.o.log.info(`Applying Deployment ${namespace}/${s.canary.deployment} (server-side apply, field manager istio-canary)`)
    await this.restoreScaledDownReplicas(this.o.canaryManifest)
    await cluster.applyDeployment(this.o.canaryManifest)
    const failure = await this.o.waitForCanary(this.o.progressDeadlineMs)
    if (failure) throw new Error(`canary Deployment ${s.canary.deployment} did not become available: ${failure}`)
    // Make before break: the subset exists before any route refers to it.
    await this.updateDestinationRule((dr) =>
      hasSubset(dr, s.canary.subset) ? dr : withSubset(dr, s.canary.subset, { [this.o.versionLabel]: s.canary.version })
    )
    this.o.log.info(`Subset ${s.canary.subset} added to DestinationRule ${this.o.destinationRule}; waiting ${this.o.settleMs / 1000}s for propagation`)
    await this.settle()
    await this.commitState(reduce(this.state, { type: 'canary-ready', at: this.now(), message: `Deployment ${s.canary.deployment} available` }))
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
      this.o.log.info(`Deployment ${manifest.metadata.name} was scaled to ${live.spec?.replicas} by an earlier run: scaled back to ${wanted} before applying`)
    }
  }

  private async shift(weight: number, stepIndex: number): Promise<void> {
    const s = this.state
    const last = stepIndex === s.schedule.length - 1
    await this.gate(last ? 'before-promotion' : 'before-increase', weight)
    const next = reduce(s, { type: 'shifted', at: this.now(), weight, stepIndex })
    await this.updateVirtualService(
      (vs) => withSplit(vs, this.routeIndex(vs), s.host, s.stable.subset, s.canary.subset, weight),
      next,
      { checkDrift: true, verify: (vs) => readSplit(vs, this.routeIndex(vs), s.stable.subset, s.canary.subset).canary === weight }
    )
    this.o.log.info(`Weights: ${s.stable.subset}=${100 - weight} ${s.canary.subset}=${weight} (step ${stepIndex + 1} of ${s.schedule.length})`)
    await this.settle()
  }

  /** Bake at the current weight, evaluating the gates every check-every, until the policy decides. */
  private async bake(): Promise<void> {
    const { clock, signal } = this.o
    const start = Date.parse(this.state.stepStartedAt ?? this.now())
    const end = start + this.o.intervalMs
    const every = Math.max(1000, Math.min(this.o.checkEveryMs, this.o.intervalMs))
    let first = true
    for (;;) {
      const now = clock.now()
      let wakeAt = Math.min(now + every, end)
      // Past the bake time (a resumed run, or a failed evaluation below the threshold): evaluate
      // at once on entry, then a full period apart, never in a tight loop.
      if (wakeAt <= now) wakeAt = first ? now : now + every
      const final = wakeAt >= end
      if (wakeAt > now) await clock.sleep(wakeAt - now, signal)
      first = false
      const checks = await this.evaluate('bake')
      const verdict = combine(checks)
      const evaluation: GateEvaluation = { at: this.now(), canaryWeight: this.state.canaryWeight, checks, verdict }
      const decided = decideAfterEvaluation(
        this.o.policy,
        { failedChecks: this.state.failedChecks, inconclusiveStreak: this.state.inconclusiveStreak },
        verdict,
        { final }
      )
      const event: RolloutEvent = {
        type: 'evaluated',
        at: this.now(),
        evaluation,
        decision: decided.decision,
        failedChecks: decided.counters.failedChecks,
        inconclusiveStreak: decided.counters.inconclusiveStreak,
        // Name what did not pass, so the report says "success-rate 92 % (>= 99 %)", not just "gates failed".
        reason: verdict === 'pass' ? decided.reason : `${decided.reason} — ${checks.filter((c) => c.verdict !== 'pass').map(describeCheck).join(', ')}`
      }
      this.o.log.info(`Gates at ${this.state.canaryWeight}%: ${verdict}${checks.length ? ' — ' + checks.map(describeCheck).join(', ') : ''}`)
      if (decided.decision === 'rollback') {
        // No write of its own: the verdict travels with the first rollback write (weight 0), so
        // traffic leaves the failing canary one round trip after the gate said so.
        this.state = reduce(this.state, event)
        return
      }
      await this.updateVirtualService((vs) => vs, reduce(this.state, event), { checkDrift: true })
      if (decided.decision !== 'continue') return
    }
  }

  private async finalizePromotion(): Promise<void> {
    const s = this.state
    const { namespace } = this.o
    if (s.phase === 'progressing') {
      await this.updateVirtualService((vs) => vs, startPromotion(s, this.now()), { checkDrift: true })
    }
    const st = this.state
    // Break after make: the old destination leaves the route, then (after propagation) its subset.
    await this.updateVirtualService(
      (vs) => withoutDestination(vs, this.routeIndex(vs), st.stable.subset),
      st,
      { verify: (vs) => !routeHasSubset(vs, this.routeIndex(vs), st.stable.subset) }
    )
    this.o.log.info(`Destination ${st.stable.subset} removed from the route; ${st.canary.subset} carries 100%`)
    await this.settle()
    if (subsetReferencedElsewhere(await this.getVs(), st.stable.subset)) {
      this.warnings.push(`subset ${st.stable.subset} is still referenced by another route; it was left in the DestinationRule`)
    } else {
      await this.updateDestinationRule((dr) => withoutSubset(dr, st.stable.subset))
      this.o.log.info(`Subset ${st.stable.subset} removed from DestinationRule ${this.o.destinationRule}`)
    }
    if (st.stable.deployment && st.stable.deployment !== st.canary.deployment) {
      if (this.o.retire === 'scale-down') {
        await this.o.cluster.scaleDeployment(namespace, st.stable.deployment, 0)
        this.o.log.info(`Deployment ${st.stable.deployment} scaled to 0 (retire: scale-down)`)
      } else if (this.o.retire === 'delete') {
        await this.o.cluster.deleteDeployment(namespace, st.stable.deployment)
        this.o.log.info(`Deployment ${st.stable.deployment} deleted (retire: delete)`)
      }
    } else if (!st.stable.deployment) {
      this.warnings.push(`no Deployment of the old version ${st.stable.version} was found to retire`)
    }
    await this.gate('success')
    await this.commitState(reduce(this.state, { type: 'promoted', at: this.now() }))
  }

  /**
   * The fixed rollback order, each step confirmed by reading back and each re-entrant, so the post
   * step or the next run can finish what a cancelled run started: canary weight 0 -> wait ->
   * canary destination removed -> wait -> canary subset removed -> canary scaled to zero.
   */
  async rollback(): Promise<void> {
    const s = this.state
    const { namespace } = this.o
    const failures: string[] = []
    try {
      const vs = await this.getVs()
      const index = this.routeIndex(vs)
      if (routeHasSubset(vs, index, s.canary.subset)) {
        const split = readSplit(vs, index, s.stable.subset, s.canary.subset)
        if (split.canary !== 0) {
          // Do not send everything to a stable version that cannot serve it (matrix row 16).
          const broken = s.rollbackResult === 'rolled-back' ? await this.stableUnavailable() : undefined
          if (broken) {
            const reason = `rollback halted: the stable version ${s.stable.version} is unhealthy too (${broken}); traffic stays at ${split.canary}% ${s.canary.version}. Decide: run abort to move all traffic to ${s.stable.version} anyway, or promote.`
            this.o.log.error(reason)
            this.warnings.push(reason)
            await this.commitState(reduce(this.state, { type: 'halted', at: this.now(), reason }))
            return
          }
          await this.updateVirtualService(
            (v) => withSplit(v, this.routeIndex(v), s.host, s.stable.subset, s.canary.subset, 0),
            { ...this.state, canaryWeight: 0 },
            { verify: (v) => readSplit(v, this.routeIndex(v), s.stable.subset, s.canary.subset).canary === 0 }
          )
          this.undone.push(`canary weight ${split.canary}% → 0% (${s.stable.subset} 100%)`)
          this.o.log.info(`Rollback: canary weight 0, ${s.stable.subset} carries 100%`)
          await this.settle(true)
        }
        await this.updateVirtualService(
          (v) => withoutDestination(v, this.routeIndex(v), s.canary.subset),
          { ...this.state, canaryWeight: 0 },
          { verify: (v) => !routeHasSubset(v, this.routeIndex(v), s.canary.subset) }
        )
        this.undone.push(`destination ${s.canary.subset} removed from the route`)
        this.o.log.info(`Rollback: destination ${s.canary.subset} removed`)
        await this.settle(true)
      }
    } catch (err) {
      failures.push(`traffic: ${errorText(err)}`)
    }
    if (failures.length === 0) {
      try {
        const vs = await this.getVs()
        if (subsetReferencedElsewhere(vs, s.canary.subset)) {
          this.warnings.push(`subset ${s.canary.subset} is referenced by another route; it was left in the DestinationRule`)
        } else {
          const dr = await this.o.cluster.getIstio('DestinationRule', namespace, this.o.destinationRule)
          if (dr && hasSubset(dr, s.canary.subset)) {
            await this.updateDestinationRule((d) => withoutSubset(d, s.canary.subset))
            this.undone.push(`subset ${s.canary.subset} removed from DestinationRule ${this.o.destinationRule}`)
          }
        }
      } catch (err) {
        failures.push(`subset: ${errorText(err)}`)
      }
    }
    try {
      const dep = await this.o.cluster.getDeployment(namespace, s.canary.deployment)
      if (dep && (dep.spec?.replicas ?? 1) !== 0 && s.canary.deployment !== s.stable.deployment) {
        await this.o.cluster.scaleDeployment(namespace, s.canary.deployment, 0)
        this.undone.push(`Deployment ${s.canary.deployment} scaled to 0`)
      }
    } catch (err) {
      failures.push(`canary Deployment: ${errorText(err)}`)
    }
    if (failures.length > 0) {
      throw new RollbackIncompleteError(rollbackHelp(this.o, s, failures))
    }
    await this.gate('rollback')
    await this.commitState(reduce(this.state, { type: 'rolled-back', at: this.now() }))
  }

  /**
   * The cancellation path (SIGINT/SIGTERM): one guarded write that puts the canary weight to 0 and
   * marks the state rolling-back (or, with on-cancel: freeze, only marks it paused), so the post
   * step or the next run finishes the rest. Must fit in the runner's 7.5 s before SIGTERM.
   */
  async cancel(freeze: boolean): Promise<void> {
    const s = this.state
    const next = reduce(s, { type: 'cancelled', at: this.now(), freeze })
    if (next === s) return
    if (freeze || s.phase === 'initializing' || s.stepIndex < 0) {
      await this.updateVirtualService((vs) => vs, next)
      return
    }
    await this.updateVirtualService(
      (vs) => {
        const index = this.routeIndex(vs)
        return routeHasSubset(vs, index, s.canary.subset) ? withSplit(vs, index, s.host, s.stable.subset, s.canary.subset, 0) : vs
      },
      { ...next, canaryWeight: 0 },
      { verify: (vs) => !routeHasSubset(vs, this.routeIndex(vs), s.canary.subset) || readSplit(vs, this.routeIndex(vs), s.stable.subset, s.canary.subset).canary === 0 }
    )
    this.undone.push(`canary weight ${s.canaryWeight}% → 0% on cancellation`)
  }

  /** Why the stable Deployment could not take all traffic, or undefined when it can (or is unknown). */
  private async stableUnavailable(): Promise<string | undefined> {
    const name = this.state.stable.deployment
    if (!name) return undefined
    const dep = await this.o.cluster.getDeployment(this.o.namespace, name)
    if (!dep) return `Deployment ${name} is gone`
    const available = Number(dep.status?.availableReplicas ?? 0)
    return available > 0 ? undefined : `Deployment ${name} has no available replicas (${Number(dep.spec?.replicas ?? 1)} desired)`
  }

  private async getVs(): Promise<KubeObject> {
    const vs = await this.o.cluster.getIstio('VirtualService', this.o.namespace, this.o.virtualService)
    if (!vs) throw new Error(`VirtualService ${this.o.namespace}/${this.o.virtualService} not found`)
    return vs
  }

  /** Guarded read-modify-write of the DestinationRule; fenced by the state on the VirtualService. */
  private async updateDestinationRule(edit: (dr: KubeObject) => KubeObject): Promise<void> {
    const { cluster, namespace, destinationRule } = this.o
    for (let attempt = 1; attempt <= 5; attempt++) {
      const live = stateOf(await this.getVs())
      if (live && live.epoch > this.o.epoch) throw new FencedError(`another run took over this rollout (lock epoch ${live.epoch}); this run stops writing`)
      const dr = await cluster.getIstio('DestinationRule', namespace, destinationRule)
      if (!dr) throw new Error(`DestinationRule ${namespace}/${destinationRule} disappeared mid-rollout`)
      const next = edit(dr)
      if (JSON.stringify(next.spec) === JSON.stringify(dr.spec)) return
      try {
        await cluster.replaceIstio(next)
        return
      } catch (err) {
        if (err instanceof ConflictError) continue
        throw err
      }
    }
    throw new ConflictError(`DestinationRule ${namespace}/${destinationRule} kept changing under us (5 conflicting writes)`)
  }

  /** Propagation wait after a routing write (no distribution-tracking API since Istio 1.23). */
  private async settle(evenWhenCancelled = false): Promise<void> {
    if (this.o.settleMs <= 0) return
    await this.o.clock.sleep(this.o.settleMs, evenWhenCancelled ? undefined : this.o.signal)
  }

  private gateContext(nextWeight?: number): GateContext {
    const s = this.state
    return {
      namespace: this.o.namespace,
      host: s.host,
      virtualService: this.o.virtualService,
      stable: s.stable,
      canary: s.canary,
      canaryWeight: s.canaryWeight,
      nextWeight,
      stepIndex: s.stepIndex,
      schedule: s.schedule,
      windowSeconds: Math.max(1, Math.round(Math.min(this.o.intervalMs, this.o.checkEveryMs * 2) / 1000)),
      signal: this.o.signal
    }
  }

  private async evaluate(moment: GateMoment, nextWeight?: number): Promise<CheckResult[]> {
    const ctx = this.gateContext(nextWeight)
    const results: CheckResult[] = []
    for (const gate of this.o.gates) {
      if (!gate.moments.includes(moment)) continue
      try {
        results.push(...(await gate.evaluate(moment, ctx)))
      } catch (err) {
        if (this.o.signal.aborted) throw err
        results.push({ name: gate.name, verdict: 'inconclusive', detail: `gate error: ${errorText(err)}` })
      }
    }
    return results
  }

  /** Blocking moments fail the rollout on a failed check; event moments never block. */
  private async gate(moment: GateMoment, nextWeight?: number): Promise<void> {
    const checks = await this.evaluate(moment, nextWeight)
    if (checks.length === 0) return
    if (moment === 'rollback' || moment === 'success') return
    const verdict = combine(checks)
    if (verdict === 'pass') return
    const failed = checks.filter((c) => c.verdict !== 'pass').map(describeCheck).join('; ')
    throw new Error(`${moment} gate did not pass: ${failed}`)
  }
}

export function routeHasSubset(vs: KubeObject, index: number, subset: string): boolean {
  const route: Array<{ destination?: { subset?: string } }> = vs.spec?.http?.[index]?.route ?? []
  return route.some((d) => d.destination?.subset === subset)
}

/** Whether any route other than ours (or any other kind of route) still refers to the subset. */
function subsetReferencedElsewhere(vs: KubeObject, subset: string): boolean {
  const text = JSON.stringify({ http: vs.spec?.http ?? [], tcp: vs.spec?.tcp ?? [], tls: vs.spec?.tls ?? [] })
  return text.includes(`"subset":${JSON.stringify(subset)}`)
}

function routeLabel(s: RolloutState): string {
  return s.route.name ? `"${s.route.name}"` : `#${s.route.index}`
}

/** One check in a log line: `success-rate 99.9 % (>= 99 %) pass`, with the reason when it did not pass. */
export function describeCheck(c: CheckResult): string {
  const unit = c.unit ? (c.unit === '%' ? '%' : ` ${c.unit}`) : ''
  const value = c.value === undefined ? 'no value' : `${formatNumber(c.value)}${unit}`
  const threshold = c.threshold ? ` (${c.threshold})` : ''
  const detail = c.verdict !== 'pass' && c.detail ? `: ${c.detail}` : ''
  return `${c.name} ${value}${threshold} ${c.verdict}${detail}`
}

function rollbackHelp(o: ExecutorOptions, s: RolloutState, failures: string[]): string {
  const ns = o.namespace
  return [
    `ROLLBACK INCOMPLETE: traffic may still be split between ${s.stable.subset} and ${s.canary.subset} on VirtualService ${ns}/${o.virtualService}.`,
    `What failed: ${failures.join('; ')}.`,
    `Run the abort command again (it resumes the rollback where it stopped), or by hand:`,
    `  1. kubectl -n ${ns} edit virtualservice ${o.virtualService}   # route ${routeLabel(s)}: ${s.stable.subset} weight 100, remove the ${s.canary.subset} destination`,
    `  2. wait a few seconds, then: kubectl -n ${ns} edit destinationrule ${o.destinationRule}   # remove subset ${s.canary.subset}`,
    `  3. kubectl -n ${ns} scale deployment ${s.canary.deployment} --replicas=0`,
    `  4. kubectl -n ${ns} annotate virtualservice ${o.virtualService} ${STATE_ANNOTATION}-   # clears the rollout state`
  ].join('\n')
}

