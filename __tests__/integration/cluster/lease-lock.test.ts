/** LeaseLock against the real apiserver: create races, takeover, fencing, release. */
import { KubeCluster } from '../../../src/cluster/kube-cluster.js'
import { LeaseLock } from '../../../src/cluster/lease-lock.js'
import { ConflictError, LockedError } from '../../../src/errors.js'
import { createTestNamespace, deleteNamespace, kubeConfig, waitFor } from '../../support/test-cluster.js'

let ns: string
beforeAll(async () => {
  ns = await createTestNamespace('lease-lock')
})
afterAll(async () => {
  if (ns) await deleteNamespace(ns)
})

const lock = (vs: string, holder: string, now?: () => Date) =>
  new LeaseLock(new KubeCluster(kubeConfig()), { namespace: ns, virtualService: vs, holder, leaseDurationSeconds: 30, now })

describe('LeaseLock on the apiserver', () => {
  it('second acquire -> LockedError naming the holder; the loser writes nothing', async () => {
    const a = lock('reviews', 'owner/repo run 1 attempt 1 (https://github.com/owner/repo/actions/runs/1)')
    expect(await a.acquire()).toEqual({ epoch: 0, takeover: false, resumed: false })
    const cluster = new KubeCluster(kubeConfig())
    const b = new LeaseLock(cluster, { namespace: ns, virtualService: 'reviews', holder: 'run 2', leaseDurationSeconds: 30 })
    const err = await b.acquire().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LockedError)
    expect((err as LockedError).holder).toBe('owner/repo run 1 attempt 1 (https://github.com/owner/repo/actions/runs/1)')
    expect((err as Error).message).toMatch(
      /is locked by "owner\/repo run 1 attempt 1 \(https:\/\/github.com\/owner\/repo\/actions\/runs\/1\)" until \d{4}-/
    )
    expect(cluster.requestCount).toBe(2) // the refused create and one read
    expect(await a.release()).toBe(true)
  })

  it('an expired lease is taken over with epoch + 1, and the stale holder can no longer renew', async () => {
    const stale = lock('ratings', 'run 1')
    await stale.acquire()
    await stale.renew()
    // Seen from 40 s later (30 s duration + 5 s skew margin passed): expired.
    const later = () => new Date(Date.now() + 40_000)
    const fresh = lock('ratings', 'run 2', later)
    expect(await fresh.acquire()).toEqual({ epoch: 1, takeover: true, previousHolder: 'run 1', resumed: false })
    await expect(stale.renew()).rejects.toBeInstanceOf(ConflictError)
    expect(await stale.release()).toBe(false)
    expect(fresh.held).toBe(true)
    expect(await fresh.release()).toBe(true)
  })

  it('ten concurrent acquires of an absent lease: exactly one wins', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => lock('details', `run ${i}`).acquire()))
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(9)
    for (const r of lost) expect(r.reason).toBeInstanceOf(LockedError)
  })

  it('background renewal moves renewTime and stops on release', async () => {
    const cluster = new KubeCluster(kubeConfig())
    const a = new LeaseLock(cluster, { namespace: ns, virtualService: 'productpage', holder: 'run 1', leaseDurationSeconds: 3 })
    await a.acquire()
    const first = (await cluster.getLease(ns, a.name))!.spec.renewTime
    a.startRenewing(300)
    await waitFor(async () => (await cluster.getLease(ns, a.name))!.spec.renewTime > first, { what: 'renewTime to move' })
    expect(await a.release()).toBe(true)
    expect(await cluster.getLease(ns, a.name)).toBeUndefined()
  })
})
