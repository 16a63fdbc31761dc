import type { Cluster } from '../cluster/cluster.js'
import { DriftError, FencedError, RollbackIncompleteError } from '../errors.js'
import { errorText, formatNumber } from '../format.js'
import { formatDuration } from '../config/duration.js'
import type { GateContext, GateMoment, HealthGate } from '../health/health-gate.js'
import { formatPercent, type OutsideMeshProbe } from '../health/outside-mesh.js'
import type { KubeObject } from '../kube/kube-object.js'
import { describeExposure } from '../rollout/exposure.js'
import { nextAction, reduce, startPromotion, withoutExposure, type RolloutEvent } from '../rollout/planner.js'
import { effectiveMinSoak } from '../rollout/soak.js'
import type { CheckResult, GateEvaluation, JudgedMoment, OutsideMeshShare, Retirement, RolloutState } from '../rollout/types.js'
import { combine, decideAfterEvaluation, type Decision, type GatePolicy } from '../rollout/verdict.js'
import {
  backendHome,
  backendLabel,
  routeLabel,
  type RouteChange,
  type TrafficRouter,
  type WriteOptions
} from '../traffic/traffic-router.js'
import type { CanaryCapacity } from './canary-capacity.js'
import { managesCapacity } from '../rollout/capacity-record.js'
import { iso, type Clock, type Log } from './runtime.js'
import { loadCanaryCapacity } from './lazy-modules.js'

export interface ExecutorOptions {
  /** Deployments: apply, scale, retire. */
  cluster: Cluster
  /** The route and the backends: weights and state, never mesh objects. */
  router: TrafficRouter
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
  /** This run's min-soak input; the larger of it and the one the state recorded applies. 0: none. */
  minSoakSeconds: number
  gates: HealthGate[]
  policy: GatePolicy
  /** Records, per evaluation, the share of the canary's requests from callers outside the mesh. */
  outsideMesh?: OutsideMeshProbe
  /** Waits for the canary Deployment; returns a failure reason or undefined when available. */
  waitForCanary: (deadlineMs: number) => Promise<string | undefined>
  /** Called whenever the state was written (reports update the PR comment from it). */
  onProgress?: (state: RolloutState) => void
}

/**
 * Carries out what the planner decides. Traffic moves through the TrafficRouter, whose every write
 * carries the weights and the state together and is guarded (conflict: read again, decide again;
 * fenced by the lock epoch; confirmed by reading back). The executor speaks in weights and state.
 */
export class RolloutExecutor {
  /** What the rollback undid, in order, for the report. */
  readonly undone: string[] = []
  readonly warnings: string[] = []
  private state: RolloutState
  private capacityPart?: CanaryCapacity

  constructor(
    private readonly o: ExecutorOptions,
    state: RolloutState
  ) {
    this.state = state
  }

  /** The canary's replicas and HPA as the weights move; loaded when a rollout manages them (not at startup). */
  private async capacity(): Promise<CanaryCapacity> {
    if (this.capacityPart) return this.capacityPart
    const { CanaryCapacity } = await loadCanaryCapacity()
    return (this.capacityPart = new CanaryCapacity(this.o))
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
      const action = nextAction(this.state, {
        nowMs: this.o.clock.now(),
        minSoakSeconds: effectiveMinSoak(this.state, this.o.minSoakSeconds)
      })
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
          case 'soak':
            await this.soak(action.untilMs)
            break
          case 'pause':
            await this.commitState(reduce(this.state, { type: 'paused', at: this.now() }))
            this.o.log.info(
              `Paused at ${this.state.canaryWeight}% on ${this.state.canary.version}: run the promote command to continue, or abort.`
            )
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
        if (err instanceof DriftError)
          this.state = { ...this.state, history: [...this.state.history, { at: this.now(), kind: 'drift', message: err.message }] }
      }
    }
    throw new Error('internal: the rollout did not end after 1000 actions')
  }

  /** Persist `next` with the route (weights untouched). */
  private async commitState(next: RolloutState): Promise<void> {
    await this.write(next)
  }

  /** One guarded write through the router; the state as written becomes ours. */
  private async write(next: RolloutState, change?: RouteChange, opts?: WriteOptions): Promise<void> {
    this.state = await this.o.router.write(next, change, opts)
    this.o.onProgress?.(this.state)
  }

  /** The weight on the route must be the one we last wrote, once we have written one. */
  private driftGuard(): WriteOptions {
    const s = this.state
    const routed = (s.phase === 'progressing' && s.stepIndex >= 0) || s.phase === 'paused' || s.phase === 'promoting'
    if (!routed) return {}
    return { expectCanaryWeight: s.canaryWeight, ...(s.exposure ? { expectExposure: s.exposure } : {}) }
  }

  private async prepareCanary(): Promise<void> {
    const { namespace } = this.o
    if (!(await this.hold('pre-rollout'))) return
    const s = this.state
    if (!this.o.canaryManifest) throw new Error('internal: no canary manifest to apply')
    // Record the rollout before its first change: a run killed from here on (no post step) leaves
    // an in-flight state, so the next run takes over and removes the canary and its subset.
    if ((await this.o.router.readState())?.id !== s.id) await this.commitState(s)
    this.o.log.info(`Applying Deployment ${namespace}/${s.canary.deployment} (server-side apply, field manager istio-canary)`)
    await (await this.capacity()).apply(s, this.o.canaryManifest)
    // Make before break: the subset exists before any route refers to it.
    await this.o.router.addCanaryBackend(s, { [this.o.versionLabel]: s.canary.version })
    this.o.log.info(
      s.backends === 'services'
        ? `Service ${s.canary.subset} ready for the route; waiting ${this.o.settleMs / 1000}s for propagation`
        : `Subset ${s.canary.subset} added to DestinationRule ${this.o.destinationRule}; waiting ${this.o.settleMs / 1000}s for propagation`
    )
    await this.settle()
    await this.commitState(
      reduce(this.state, { type: 'canary-ready', at: this.now(), message: `Deployment ${s.canary.deployment} available` })
    )
  }

  private async shift(weight: number, stepIndex: number): Promise<void> {
    const last = stepIndex === this.state.schedule.length - 1
    if (!(await this.hold(last ? 'before-promotion' : 'before-increase', weight))) return
    // Make before break for capacity: the canary's replicas for the new weight are available first.
    if (weight > this.state.canaryWeight && managesCapacity(this.state.capacity)) await (await this.capacity()).raise(this.state, weight)
    const s = this.state
    const next = reduce(s, { type: 'shifted', at: this.now(), weight, stepIndex })
    // The write before the first shift set no weight: nothing to compare the route against yet.
    await this.write(
      next,
      { kind: 'split', canaryWeight: weight, ...(next.exposure ? { exposure: next.exposure } : {}) },
      this.driftGuard()
    )
    const exposed = next.exposure
      ? next.exposure.kind === 'mirror'
        ? `; ${next.exposure.percent}% of ${s.stable.subset}'s requests mirrored to ${s.canary.subset} (responses dropped)`
        : `; requests matching ${describeExposure(next.exposure)} go to ${s.canary.subset} (a route of their own before ${routeLabel(s)})`
      : ''
    this.o.log.info(
      `Weights: ${s.stable.subset}=${100 - weight} ${s.canary.subset}=${weight}${exposed} (step ${stepIndex + 1} of ${s.schedule.length})`
    )
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
      if ((await this.judge('bake', { final })) !== 'continue') return
    }
  }

  /**
   * The schedule's last step is 100 % but the minimum soak is not met: stay at the current weight and
   * evaluate the gates every check period, as in a bake, until `untilMs`. A failed evaluation ends
   * this call so the planner judges the soak again (it starts over after a failure); the policy's
   * rollback and pause apply as in any bake.
   */
  private async soak(untilMs: number): Promise<void> {
    const { clock, signal } = this.o
    const every = Math.max(1000, Math.min(this.o.checkEveryMs, this.o.intervalMs))
    if (untilMs > clock.now()) {
      this.o.log.info(
        `Holding at ${this.state.canaryWeight}% until the minimum soak (min-soak ${formatDuration(effectiveMinSoak(this.state, this.o.minSoakSeconds))}) is met: promotion to 100% from ${iso(untilMs)}`
      )
    }
    for (;;) {
      const now = clock.now()
      const wakeAt = untilMs > now ? Math.min(now + every, untilMs) : now + every
      await clock.sleep(wakeAt - now, signal)
      const failedBefore = this.state.failedChecks
      const decision = await this.judge('bake', { final: false })
      if (decision !== 'continue' || this.state.failedChecks > failedBefore || clock.now() >= untilMs) return
    }
  }

  /**
   * Hold an action until the gates of `moment` let it go on: true to go on, false when the verdict
   * moved the rollout to pause or rollback. No gate answering the moment means go on.
   */
  private async hold(moment: Exclude<JudgedMoment, 'bake'>, nextWeight?: number): Promise<boolean> {
    const every = Math.max(1000, Math.min(this.o.checkEveryMs, this.o.intervalMs))
    for (;;) {
      const decision = await this.judge(moment, { final: true, nextWeight })
      if (decision === 'advance') return true
      if (decision !== 'continue') return false
      await this.o.clock.sleep(every, this.o.signal)
    }
  }

  /**
   * The one route of every judged evaluation: ask the gates, decide by the verdict policy, record
   * the evaluation in the history. A bake writes every evaluation; a blocking moment's pass or
   * rollback travels with the write that follows it (the shift, or the rollback's weight 0), so
   * traffic leaves a failing canary one round trip after the gate said so.
   */
  private async judge(moment: JudgedMoment, position: { final: boolean; nextWeight?: number }): Promise<Decision> {
    // A bake also measures the share of canary requests from outside the mesh, for the report.
    const [checks, outsideMesh] = await Promise.all([
      this.evaluate(moment, position.nextWeight),
      moment === 'bake' ? this.outsideMeshShare() : undefined
    ])
    if (checks.length === 0 && moment !== 'bake') return 'advance'
    const verdict = combine(checks)
    const evaluation: GateEvaluation = {
      at: this.now(),
      ...(moment === 'bake' ? {} : { moment }),
      canaryWeight: this.state.canaryWeight,
      checks,
      verdict,
      ...(outsideMesh ? { outsideMesh } : {})
    }
    const decided = decideAfterEvaluation(
      this.o.policy,
      { failedChecks: this.state.failedChecks, inconclusiveStreak: this.state.inconclusiveStreak },
      verdict,
      { final: position.final, moment }
    )
    const event: RolloutEvent = {
      type: 'evaluated',
      at: this.now(),
      ...(moment === 'bake' ? {} : { moment }),
      evaluation,
      decision: decided.decision,
      failedChecks: decided.counters.failedChecks,
      inconclusiveStreak: decided.counters.inconclusiveStreak,
      // Name what did not pass, so the report says "success-rate 92 % (>= 99 %)", not just "gates failed".
      reason:
        verdict === 'pass'
          ? decided.reason
          : `${decided.reason} — ${checks
              .filter((c) => c.verdict !== 'pass')
              .map(describeCheck)
              .join(', ')}`
    }
    const at = moment === 'bake' ? '' : ` (${moment})`
    this.o.log.info(
      `Gates at ${this.state.canaryWeight}%${at}: ${verdict}${checks.length ? ' — ' + checks.map(describeCheck).join(', ') : ''}${outsideMesh ? `; ${describeOutsideMesh(outsideMesh)}` : ''}`
    )
    const next = reduce(this.state, event)
    const carried = decided.decision === 'rollback' || (moment !== 'bake' && decided.decision === 'advance')
    if (carried) this.state = next
    else await this.write(next, { kind: 'state' }, this.driftGuard())
    return decided.decision
  }

  private async finalizePromotion(): Promise<void> {
    const s = this.state
    if (s.phase === 'progressing') {
      await this.write(startPromotion(s, this.now()), { kind: 'state' }, this.driftGuard())
    }
    const st = this.state
    // The new version as large as the stable before the stable leaves (a resumed promotion too).
    const capacity = managesCapacity(st.capacity) ? await this.capacity() : undefined
    const stableBounds = await capacity?.stableBounds(st)
    await capacity?.raise(st, 100)
    // Break after make: the old destination leaves the route, then (after propagation) its subset.
    await this.write(st, { kind: 'remove-destination', side: 'stable' })
    this.o.log.info(`Destination ${st.stable.subset} removed from the route; ${st.canary.subset} carries 100%`)
    await this.settle()
    const retirement = await this.retireOldVersion(st)
    await capacity?.promoted(st, stableBounds)
    this.state = { ...this.state, retirement }
    await this.notify('success')
    await this.commitState(reduce(this.state, { type: 'promoted', at: this.now() }))
  }

  /**
   * A promoted rollout whose old version was kept because other routes still served it: retire it
   * now if they moved, else keep it and say so again. Writes the outcome into the state.
   */
  async finishRetirement(): Promise<RolloutState> {
    const retirement = await this.retireOldVersion(this.state)
    if (retirement.retired || !retirement.heldBy)
      this.o.log.info(
        `The old version ${retirement.version} of the rollout of ${this.state.canary.version} is no longer routed to: retired now`
      )
    await this.commitState({ ...this.state, retirement })
    return this.state
  }

  /**
   * Retire the old version after promotion (its subset, then its Deployment per `retire`), unless
   * a route other than ours still sends traffic to it anywhere we can look: then it is kept, said
   * loudly, and recorded so that a later promote run retires it once those routes moved.
   */
  async retireOldVersion(st: RolloutState): Promise<Retirement> {
    const old = {
      version: st.stable.version,
      subset: st.stable.subset,
      ...(st.stable.deployment ? { deployment: st.stable.deployment } : {})
    }
    const refs = await this.routesServing(st, st.stable.subset)
    if (refs.length > 0) {
      const message =
        `the old version ${st.stable.version} was not retired: ${backendLabel(st, st.stable.subset)} still serves ${refs.join('; ')}. ` +
        `${upper(backendLabel(st, st.stable.subset))} stays in ${backendHome(st, this.o.namespace)}${st.stable.deployment ? ` and Deployment ${st.stable.deployment} keeps running` : ''}. ` +
        `Move those routes off ${st.stable.subset} (e.g. to ${st.canary.subset}), then run the promote command again: it retires ${st.stable.version} once nothing routes to it.`
      this.o.log.warning(message)
      this.warnings.push(message)
      return { ...old, retired: false, heldBy: refs }
    }
    if ((await this.o.router.removeBackend(st.stable.subset)) === 'removed') {
      this.o.log.info(`${upper(backendLabel(st, st.stable.subset))} removed from ${backendHome(st, this.o.namespace)}`)
    }
    return { ...old, retired: await (await this.capacity()).retireStable(st, this.o.retire, this.warnings) }
  }

  /** The routes other than ours that send traffic to `subset`; a failure to look is named as one. */
  private async routesServing(s: RolloutState, subset: string): Promise<string[]> {
    try {
      const { routes, blind } = await this.o.router.routesServing(s, subset)
      if (blind && !this.warnings.includes(blind)) this.warnings.push(blind)
      return routes
    } catch (err) {
      return [`(could not list the VirtualServices of namespace ${this.o.namespace}: ${errorText(err)})`]
    }
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
      const split = await this.o.router.readRoute(s)
      const what = `${s.exposure ? describeExposure(s.exposure) : 'match route or mirror'} to ${s.canary.subset} removed`
      if (split.exposed && split.canaryWeight === 0) {
        // Matched or mirrored requests leave the canary first (their weight 0), as a weight would.
        await this.write(withoutExposure({ ...this.state, canaryWeight: 0 }), { kind: 'canary-to-zero' })
        this.undone.push(what)
        this.o.log.info(`Rollback: ${what}`)
        await this.settle(true)
      }
      if (split.canaryRouted) {
        if (split.canaryWeight !== 0) {
          // Do not send everything to a stable version that cannot serve it: halt and let a person decide.
          const broken = s.rollbackResult === 'rolled-back' ? await this.stableUnavailable() : undefined
          if (broken) {
            const reason = `rollback halted: the stable version ${s.stable.version} is unhealthy too (${broken}); traffic stays at ${split.canaryWeight}% ${s.canary.version}. Decide: run abort to move all traffic to ${s.stable.version} anyway, or promote.`
            this.o.log.error(reason)
            this.warnings.push(reason)
            await this.commitState(reduce(this.state, { type: 'halted', at: this.now(), reason }))
            return
          }
          await this.write(withoutExposure({ ...this.state, canaryWeight: 0 }), { kind: 'split', canaryWeight: 0 })
          // With a weight above 0 (someone edited the route) this write removes the exposure too.
          this.undone.push(`canary weight ${split.canaryWeight}% → 0% (${s.stable.subset} 100%)${split.exposed ? `; ${what}` : ''}`)
          this.o.log.info(`Rollback: canary weight 0, ${s.stable.subset} carries 100%`)
          await this.settle(true)
        }
        await this.write(withoutExposure({ ...this.state, canaryWeight: 0 }), { kind: 'remove-destination', side: 'canary' })
        this.undone.push(`destination ${s.canary.subset} removed from the route`)
        this.o.log.info(`Rollback: destination ${s.canary.subset} removed`)
        await this.settle(true)
      }
    } catch (err) {
      failures.push(`traffic: ${errorText(err)}`)
    }
    // A route this rollout does not own may send traffic to the canary's subset: then neither the
    // subset nor the canary's pods may go, or that route's callers get 503s.
    const foreign = await this.routesServing(s, s.canary.subset)
    if (foreign.length > 0) {
      const message =
        `ROUTES THIS ROLLOUT DOES NOT OWN STILL SEND TRAFFIC TO THE CANARY ${s.canary.version}: ${foreign.join('; ')}. ` +
        `Its ${backendLabel(s, s.canary.subset)} stays in ${backendHome(s, namespace)} and Deployment ${s.canary.deployment} keeps running, so their callers are not cut off. ` +
        `Decide for those routes: move them to ${s.stable.subset}, then remove ${backendLabel(s, s.canary.subset)} and run: kubectl -n ${namespace} scale deployment ${s.canary.deployment} --replicas=0`
      this.o.log.error(message)
      this.warnings.push(message)
      this.state = {
        ...this.state,
        retirement: { version: s.canary.version, subset: s.canary.subset, deployment: s.canary.deployment, retired: false, heldBy: foreign }
      }
    }
    if (failures.length === 0 && foreign.length === 0) {
      try {
        if ((await this.o.router.removeBackend(s.canary.subset)) === 'removed') {
          this.undone.push(`${backendLabel(s, s.canary.subset)} removed from ${backendHome(s, namespace)}`)
        }
      } catch (err) {
        failures.push(`subset: ${errorText(err)}`)
      }
    }
    if (foreign.length === 0) {
      try {
        this.undone.push(...(await (await this.capacity()).scaleDownCanary(s)))
      } catch (err) {
        failures.push(`canary Deployment: ${errorText(err)}`)
      }
    }
    if (failures.length > 0) {
      throw new RollbackIncompleteError(rollbackHelp(this.o, s, failures))
    }
    await this.notify('rollback')
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
      await this.write(next)
      return
    }
    await this.write(withoutExposure({ ...next, canaryWeight: 0 }), { kind: 'canary-to-zero' })
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
      ...(s.exposure ? { exposure: s.exposure } : {}),
      windowSeconds: Math.max(1, Math.round(Math.min(this.o.intervalMs, this.o.checkEveryMs * 2) / 1000)),
      signal: this.o.signal
    }
  }

  /** The canary's requests from outside the mesh over the evaluation window: what the weights did not decide. */
  private async outsideMeshShare(): Promise<OutsideMeshShare | undefined> {
    if (!this.o.outsideMesh) return undefined
    const ctx = this.gateContext()
    return this.o.outsideMesh.share({ namespace: ctx.namespace, workload: ctx.canary.deployment }, ctx.windowSeconds, ctx.signal)
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

  /** Event moments only notify: their answers are logged, never judged, never block. */
  private async notify(moment: 'rollback' | 'success'): Promise<void> {
    const checks = await this.evaluate(moment)
    if (checks.length > 0) this.o.log.info(`Gates notified (${moment}): ${checks.map(describeCheck).join(', ')}`)
  }
}

/** One check in a log line: `success-rate 99.9 % (>= 99 %) pass`, with the reason when it did not pass. */
export function describeCheck(c: CheckResult): string {
  const unit = c.unit ? (c.unit === '%' ? '%' : ` ${c.unit}`) : ''
  const value = c.value === undefined ? 'no value' : `${formatNumber(c.value)}${unit}`
  const threshold = c.threshold ? ` (${c.threshold})` : ''
  const detail = c.verdict !== 'pass' && c.detail ? `: ${c.detail}` : ''
  return `${c.name} ${value}${threshold} ${c.verdict}${detail}`
}

/** The per-step outside-mesh figure in a log line: `outside the mesh: 12.5 % of canary requests`. */
export function describeOutsideMesh(share: OutsideMeshShare): string {
  return share.percent === undefined
    ? `outside the mesh: unknown (${share.detail ?? 'no data'})`
    : `outside the mesh: ${formatPercent(share.percent)} of canary requests`
}

function rollbackHelp(o: ExecutorOptions, s: RolloutState, failures: string[]): string {
  const { routing, clearState } = o.router.manualRollback(s)
  const steps = [...routing, `kubectl -n ${o.namespace} scale deployment ${s.canary.deployment} --replicas=0`, clearState]
  return [
    `ROLLBACK INCOMPLETE: traffic may still be split between ${s.stable.subset} and ${s.canary.subset} on ${o.router.name}.`,
    `What failed: ${failures.join('; ')}.`,
    `Run the abort command again (it resumes the rollback where it stopped), or by hand:`,
    ...steps.map((step, i) => `  ${i + 1}. ${step}`)
  ].join('\n')
}

function upper(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
