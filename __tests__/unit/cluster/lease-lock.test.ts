import { LeaseLock, leaseExpiry, leaseName, microTime } from '../../../src/cluster/lease-lock.js'
import { ConflictError, LockedError } from '../../../src/errors.js'
import { FakeClock, RecordedCluster } from './recorded-cluster.js'

const T0 = Date.parse('2026-11-25T10:00:00Z')
const lock = (cluster: RecordedCluster, holder: string, clock: FakeClock, vs = 'reviews') =>
  new LeaseLock(cluster, { namespace: 'shop', virtualService: vs, holder, leaseDurationSeconds: 60, now: clock.now })

describe('leaseName', () => {
  it('is istio-canary-<vs> when it fits', () => expect(leaseName('reviews')).toBe('istio-canary-reviews'))
  it('is cut to 63 characters with a stable hash suffix, never ending in a dash', () => {
    const long = `${'a'.repeat(40)}-${'b'.repeat(40)}`
    const n = leaseName(long)
    expect(n.length).toBeLessThanOrEqual(63)
    expect(n).toMatch(/^istio-canary-a+-?b*-[0-9a-f]{8}$/)
    expect(leaseName(long)).toBe(n)
    expect(leaseName(`${long}x`)).not.toBe(n)
  })
})

describe('microTime', () => {
  it('writes six fraction digits, as MicroTime wants', () => {
    expect(microTime(new Date('2026-11-25T10:00:00.123Z'))).toBe('2026-11-25T10:00:00.123000Z')
  })
  it('is read back by leaseExpiry', () => {
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'x' },
      spec: { renewTime: '2026-11-25T10:00:00.123456Z', leaseDurationSeconds: 60 }
    }
    expect(leaseExpiry(lease)).toBe(Date.parse('2026-11-25T10:01:00.123Z'))
  })
})

describe('LeaseLock', () => {
  it('creates the lease when absent: 1 request, epoch 0 (or the floor given)', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    const a = lock(cluster, 'run 1', clock)
    expect(await a.acquire({ epochFloor: 4 })).toEqual({ epoch: 4, takeover: false, resumed: false })
    expect(cluster.requestCount).toBe(1)
    const stored = await cluster.getLease('shop', 'istio-canary-reviews')
    expect(stored?.spec).toMatchObject({ holderIdentity: 'run 1', leaseDurationSeconds: 60, leaseTransitions: 4 })
  })

  it('refuses a second holder with a LockedError naming the holder and the expiry', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    await lock(cluster, 'owner/repo run 1 attempt 1 (https://github.com/owner/repo/actions/runs/1)', clock).acquire()
    const err = await lock(cluster, 'run 2', clock)
      .acquire()
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LockedError)
    expect((err as LockedError).holder).toBe('owner/repo run 1 attempt 1 (https://github.com/owner/repo/actions/runs/1)')
    expect((err as Error).message).toContain('until 2026-11-25T10:01:00.000Z')
    expect((err as Error).message).toContain('Lease "shop/istio-canary-reviews"')
  })

  it('resumes its own lease (same holder) without a new epoch', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    await lock(cluster, 'run 1', clock).acquire()
    clock.advance(10_000)
    expect(await lock(cluster, 'run 1', clock).acquire()).toEqual({ epoch: 0, takeover: false, resumed: true })
  })

  it('does not take over before expiry + skew margin, then takes over with epoch + 1', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    await lock(cluster, 'run 1', clock).acquire()
    clock.advance(64_000) // expired 4 s ago: within the 5 s skew margin
    await expect(lock(cluster, 'run 2', clock).acquire()).rejects.toBeInstanceOf(LockedError)
    clock.advance(2_000)
    const before = cluster.requestCount
    expect(await lock(cluster, 'run 2', clock).acquire()).toEqual({ epoch: 1, takeover: true, previousHolder: 'run 1', resumed: false })
    expect(cluster.requestCount - before).toBe(3) // create (409), get, replace
  })

  it("makes the stale holder's renew fail with ConflictError once taken over", async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    const stale = lock(cluster, 'run 1', clock)
    await stale.acquire()
    clock.advance(120_000)
    await lock(cluster, 'run 2', clock).acquire()
    const err = await stale.renew().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as Error).message).toMatch(/Lost the lock on VirtualService "shop\/reviews": now held by "run 2"/)
    expect(stale.held).toBe(false)
  })

  it('renews with one guarded replace, and survives its own RV moving (re-read, still ours)', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    const a = lock(cluster, 'run 1', clock)
    await a.acquire()
    clock.advance(20_000)
    let before = cluster.requestCount
    await a.renew()
    expect(cluster.requestCount - before).toBe(1)
    cluster.tamperLease('shop', 'istio-canary-reviews', () => {}) // e.g. our retried PUT landed twice
    before = cluster.requestCount
    await a.renew()
    expect(cluster.requestCount - before).toBe(3)
    const stored = await cluster.getLease('shop', 'istio-canary-reviews')
    expect(stored?.spec.renewTime).toBe('2026-11-25T10:00:20.000000Z')
  })

  it('releases only its own lease', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    const a = lock(cluster, 'run 1', clock)
    await a.acquire()
    expect(await a.release()).toBe(true)
    expect(await cluster.getLease('shop', 'istio-canary-reviews')).toBeUndefined()

    const b = lock(cluster, 'run 2', clock)
    await b.acquire()
    cluster.tamperLease('shop', 'istio-canary-reviews', (l) => {
      l.spec.holderIdentity = 'run 3'
      l.spec.leaseTransitions = 1
    })
    expect(await b.release()).toBe(false)
    expect((await cluster.getLease('shop', 'istio-canary-reviews'))?.spec.holderIdentity).toBe('run 3')
  })

  it('lets exactly one of ten concurrent acquires win', async () => {
    const cluster = new RecordedCluster()
    const clock = new FakeClock(T0)
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => lock(cluster, `run ${i}`, clock).acquire()))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(rejected).toHaveLength(9)
    for (const r of rejected) expect(r.reason).toBeInstanceOf(LockedError)
  })

  it('startRenewing calls onLost once the lock is taken and stops', async () => {
    const cluster = new RecordedCluster()
    let t = T0
    const now = () => new Date(t)
    const a = new LeaseLock(cluster, { namespace: 'shop', virtualService: 'reviews', holder: 'run 1', leaseDurationSeconds: 60, now })
    await a.acquire()
    cluster.tamperLease('shop', 'istio-canary-reviews', (l) => {
      l.spec.holderIdentity = 'run 2'
      l.spec.leaseTransitions = 1
    })
    const lost = await new Promise<Error>((resolve) => a.startRenewing(5, resolve))
    expect(lost).toBeInstanceOf(ConflictError)
    expect(a.held).toBe(false)
    t += 1
  })
})
