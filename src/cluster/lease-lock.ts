/**
 * LeaseLock: one writer per VirtualService, as a coordination.k8s.io/v1 Lease named
 * `istio-canary-<vs>`. Every change of the Lease is a create or a resourceVersion-guarded
 * replace/delete, so two runs racing for it cannot both win. `epoch` (the Lease's
 * leaseTransitions after acquiring) is the fencing token the rollout writes next to its state.
 */
import { createHash } from 'node:crypto'
import { ConflictError, LockedError } from '../errors.js'
import type { Cluster } from './cluster.js'
import type { KubeObject } from '../kube/kube-object.js'

export interface LeaseLockOptions {
  namespace: string
  /** The VirtualService the lock guards. */
  virtualService: string
  /** Who holds it, e.g. `owner/repo run 123 attempt 1 (https://github.com/...)`. */
  holder: string
  /** How long the lock lasts without renewal (default 120 s). */
  leaseDurationSeconds?: number
  /** Clock skew tolerated before calling another holder's lease expired (default 5 s). */
  skewMarginMs?: number
  now?: () => Date
}

export interface AcquireResult {
  /** Fencing token: leaseTransitions after acquiring. */
  epoch: number
  /** The lease had expired under another holder and we took it over. */
  takeover: boolean
  /** The holder we took over from. */
  previousHolder?: string
  /** The lease was already ours (same holder identity): we carried on with it. */
  resumed: boolean
}

export interface AcquireOptions {
  /**
   * Lowest epoch a newly created Lease starts at. The rollout passes the epoch saved in the VS
   * state + 1, so a Lease deleted by release() and created again never reuses an old epoch.
   */
  epochFloor?: number
}

const PREFIX = 'istio-canary-'

/** The Lease name for a VirtualService: `istio-canary-<vs>`, cut to 63 chars with a hash suffix. */
export function leaseName(virtualService: string): string {
  const full = `${PREFIX}${virtualService}`
  if (full.length <= 63) return full
  const hash = createHash('sha256').update(virtualService).digest('hex').slice(0, 8)
  const head = full.slice(0, 63 - hash.length - 1).replace(/[-.]+$/, '')
  return `${head}-${hash}`
}

/** Lease timestamps are MicroTime: RFC 3339 with exactly six fraction digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

function parseTime(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined
  const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'))
  return Number.isFinite(t) ? t : undefined
}

/** When another holder's lease stops counting (renewTime + duration), in ms since the epoch. */
export function leaseExpiry(lease: KubeObject): number | undefined {
  const renew = parseTime(lease.spec?.renewTime) ?? parseTime(lease.spec?.acquireTime)
  const duration = Number(lease.spec?.leaseDurationSeconds)
  if (renew === undefined || !Number.isFinite(duration)) return undefined
  return renew + duration * 1000
}

export class LeaseLock {
  readonly name: string
  readonly namespace: string
  readonly holder: string
  readonly virtualService: string
  private readonly durationSeconds: number
  private readonly skewMarginMs: number
  private readonly now: () => Date
  /** The Lease as we last wrote or read it while holding it. */
  private lease?: KubeObject
  private timer?: NodeJS.Timeout
  private renewing = false

  constructor(
    private readonly cluster: Cluster,
    opts: LeaseLockOptions
  ) {
    this.name = leaseName(opts.virtualService)
    this.namespace = opts.namespace
    this.holder = opts.holder
    this.durationSeconds = opts.leaseDurationSeconds ?? 120
    this.skewMarginMs = opts.skewMarginMs ?? 5_000
    this.now = opts.now ?? (() => new Date())
    this.virtualService = opts.virtualService
  }

  /** The fencing token while held. */
  get epoch(): number | undefined {
    return this.lease ? Number(this.lease.spec?.leaseTransitions ?? 0) : undefined
  }

  get held(): boolean {
    return this.lease !== undefined
  }

  /**
   * Take the lock. Throws LockedError (naming holder and expiry) when another run holds a live
   * lease. Requests: 1 when the lease is absent; 3 for a takeover or resume.
   */
  async acquire(opts: AcquireOptions = {}): Promise<AcquireResult> {
    for (let round = 0; round < 3; round++) {
      const now = this.now()
      try {
        this.lease = await this.cluster.createLease(this.body(now, Math.max(0, opts.epochFloor ?? 0)))
        return { epoch: this.epoch!, takeover: false, resumed: false }
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err
      }
      const current = await this.cluster.getLease(this.namespace, this.name)
      if (!current) continue // released between our create and our read: try again
      const holder = String(current.spec?.holderIdentity ?? '')
      const expiry = leaseExpiry(current)
      const expired = holder === '' || expiry === undefined || expiry < now.getTime() - this.skewMarginMs
      if (holder !== this.holder && !expired) {
        throw new LockedError(
          `VirtualService ${JSON.stringify(`${this.namespace}/${this.virtualService}`)} is locked by ${JSON.stringify(holder)} ` +
            `until ${new Date(expiry!).toISOString()} (Lease ${JSON.stringify(`${this.namespace}/${this.name}`)}): ` +
            'another rollout is in progress; wait for it to finish or expire.',
          holder
        )
      }
      const ours = holder === this.holder
      const transitions = Number(current.spec?.leaseTransitions ?? 0)
      const next: KubeObject = {
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: this.holder,
          leaseDurationSeconds: this.durationSeconds,
          renewTime: microTime(now),
          ...(ours ? {} : { acquireTime: microTime(now), leaseTransitions: transitions + 1 })
        }
      }
      try {
        this.lease = await this.cluster.replaceLease(next)
      } catch (err) {
        if (err instanceof ConflictError) continue // someone else moved first: look again
        throw err
      }
      return ours
        ? { epoch: this.epoch!, takeover: false, resumed: true }
        : { epoch: this.epoch!, takeover: holder !== '', previousHolder: holder || undefined, resumed: false }
    }
    throw new ConflictError(
      `Lease ${JSON.stringify(`${this.namespace}/${this.name}`)} kept changing while we tried to acquire it: try again.`
    )
  }

  /**
   * Who else holds the lock now (1 request): the holder and when its lease runs out, or undefined
   * when the Lease is absent, expired or ours (acquire would not be refused for it).
   */
  async otherHolder(): Promise<{ holder: string; until: Date } | undefined> {
    const current = await this.cluster.getLease(this.namespace, this.name)
    if (!current) return undefined
    const holder = String(current.spec?.holderIdentity ?? '')
    const expiry = leaseExpiry(current)
    if (holder === '' || holder === this.holder || expiry === undefined || expiry < this.now().getTime() - this.skewMarginMs)
      return undefined
    return { holder, until: new Date(expiry) }
  }

  /**
   * Extend the lease (1 request). Throws ConflictError when someone else took it: we lost the
   * lock and must stop writing.
   */
  async renew(): Promise<void> {
    if (!this.lease) throw new ConflictError(`Lease ${JSON.stringify(this.name)} is not held: acquire it first.`)
    for (let round = 0; round < 2; round++) {
      const next: KubeObject = { ...this.lease, spec: { ...this.lease.spec, renewTime: microTime(this.now()) } }
      try {
        this.lease = await this.cluster.replaceLease(next)
        return
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err
      }
      // The resourceVersion moved: still ours (e.g. our own retried write landed) or lost?
      const current = await this.cluster.getLease(this.namespace, this.name)
      if (!current || current.spec?.holderIdentity !== this.holder || Number(current.spec?.leaseTransitions ?? 0) !== this.epoch) {
        this.lease = undefined
        this.stop()
        const by = current ? `now held by ${JSON.stringify(current.spec?.holderIdentity ?? '')}` : 'the Lease was deleted'
        throw new ConflictError(
          `Lost the lock on VirtualService ${JSON.stringify(`${this.namespace}/${this.virtualService}`)}: ${by}. ` +
            'Stop writing: another run owns the rollout.'
        )
      }
      this.lease = current
    }
    throw new ConflictError(`Lease ${JSON.stringify(`${this.namespace}/${this.name}`)} kept changing while we renewed it.`)
  }

  /**
   * Renew in the background every `intervalMs` (default a third of the duration). The timer is
   * unref'd: it never keeps the process alive. `onLost` is called once when the lock is lost (or
   * could not be renewed before it expired); renewing then stops.
   */
  startRenewing(intervalMs = (this.durationSeconds * 1000) / 3, onLost?: (err: Error) => void): void {
    this.stop()
    let lastOk = this.now().getTime()
    const tick = async () => {
      if (!this.lease) return
      this.renewing = true
      try {
        await this.renew()
        lastOk = this.now().getTime()
      } catch (err) {
        const lost = err instanceof ConflictError || this.now().getTime() - lastOk >= this.durationSeconds * 1000
        if (lost) {
          this.stop()
          onLost?.(err instanceof Error ? err : new Error(String(err)))
          return
        }
        // A transient failure: the next tick tries again while the lease still runs.
      } finally {
        this.renewing = false
      }
      if (this.timer) schedule()
    }
    const schedule = () => {
      this.timer = setTimeout(() => void tick(), intervalMs)
      this.timer.unref()
    }
    schedule()
  }

  /** Stop background renewal. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }

  /**
   * Delete the lease if it is still ours (guarded by resourceVersion). Returns false when it was
   * not ours any more (nothing deleted).
   */
  async release(): Promise<boolean> {
    this.stop()
    if (!this.lease) return false
    for (let round = 0; round < 2; round++) {
      try {
        await this.cluster.deleteLease(this.namespace, this.name, this.lease.metadata.resourceVersion)
        this.lease = undefined
        return true
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err
      }
      const current = await this.cluster.getLease(this.namespace, this.name)
      if (!current || current.spec?.holderIdentity !== this.holder || Number(current.spec?.leaseTransitions ?? 0) !== this.epoch) {
        this.lease = undefined
        return false
      }
      this.lease = current
    }
    return false
  }

  /** True while a background renewal request is in flight (for tests and shutdown). */
  get renewInFlight(): boolean {
    return this.renewing
  }

  private body(now: Date, epoch: number): KubeObject {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'istio-canary' },
        annotations: { 'istio-canary/virtual-service': this.virtualService }
      },
      spec: {
        holderIdentity: this.holder,
        leaseDurationSeconds: this.durationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: epoch
      }
    }
  }
}
