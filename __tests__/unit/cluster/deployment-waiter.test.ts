import { waitForDeployment } from '../../../src/cluster/deployment-waiter.js'
import { FakeClock, RecordedCluster } from './recorded-cluster.js'
import { deployment, event, pod } from './snapshots.js'

const T0 = Date.parse('2026-11-25T10:00:00Z')

describe('waitForDeployment over recorded snapshots', () => {
  it('polls until the rollout is complete: 2 requests per poll', async () => {
    const cluster = new RecordedCluster([
      { deployment: deployment({ generation: 2, observedGeneration: 1 }), pods: [] },
      { deployment: deployment({ generation: 2, updated: 1, total: 1, available: 0 }), pods: [pod('a', { ready: false })] },
      { deployment: deployment({ generation: 2, available: 1 }), pods: [pod('a'), pod('b', { ready: false })] },
      { deployment: deployment({ generation: 2 }), pods: [pod('a'), pod('b')] }
    ])
    const clock = new FakeClock(T0)
    const r = await waitForDeployment(cluster, 'shop', 'reviews-v2', { deadlineMs: 60_000, now: clock.now, sleep: clock.sleep })
    expect(r).toEqual({ state: 'ready', polls: 4 })
    expect(clock.sleeps).toEqual([1000, 1000, 1000])
    expect(cluster.requestCount).toBe(8)
    expect(cluster.calls[1]).toBe('listPods shop app=reviews,version=v2')
  })

  it("fails fast on an image pull failure and adds the pod's last Warning event", async () => {
    const pulling = pod('reviews-v2-x', { containers: [{ waiting: { reason: 'ErrImagePull', message: 'not found' } }] })
    const cluster = new RecordedCluster(
      [
        {
          deployment: deployment({ updated: 2, available: 0 }),
          pods: [pod('reviews-v2-x', { ready: false, containers: [{ ready: false }] })]
        },
        { deployment: deployment({ updated: 2, available: 0 }), pods: [pulling] }
      ],
      [event('reviews-v2-x', 'Failed', 'Failed to pull image "reviews:nope": manifest unknown')]
    )
    const clock = new FakeClock(T0)
    const r = await waitForDeployment(cluster, 'shop', 'reviews-v2', { deadlineMs: 600_000, now: clock.now, sleep: clock.sleep })
    expect(r.state).toBe('failed')
    expect(r.polls).toBe(2)
    expect(r.reason).toBe(
      'pod "reviews-v2-x" container "reviews": ErrImagePull: not found; ' +
        'last event on pod "reviews-v2-x": Failed: Failed to pull image "reviews:nope": manifest unknown'
    )
    expect(cluster.calls.at(-1)).toBe('listEvents shop reviews-v2-x')
  })

  it('fails with CrashLoopBackOff once a container restarted twice', async () => {
    const cluster = new RecordedCluster([
      { deployment: deployment({ available: 0 }), pods: [pod('a', { containers: [{ ready: false, restartCount: 1 }] })] },
      { deployment: deployment({ available: 0 }), pods: [pod('a', { containers: [{ ready: false, restartCount: 2 }] })] }
    ])
    const clock = new FakeClock(T0)
    const r = await waitForDeployment(cluster, 'shop', 'reviews-v2', { deadlineMs: 600_000, now: clock.now, sleep: clock.sleep })
    expect(r.state).toBe('failed')
    expect(r.reason).toMatch(/^pod "a" container "reviews": CrashLoopBackOff: restarted 2 times/)
  })

  it('turns the deadline into failed with "progress deadline of 10m0s exceeded" and the last progress', async () => {
    const cluster = new RecordedCluster([{ deployment: deployment({ available: 1 }), pods: [pod('a'), pod('b', { ready: false })] }])
    const clock = new FakeClock(T0)
    const r = await waitForDeployment(cluster, 'shop', 'reviews-v2', {
      deadlineMs: 600_000,
      pollMs: 5000,
      now: clock.now,
      sleep: clock.sleep
    })
    expect(r.state).toBe('failed')
    expect(r.reason).toBe('progress deadline of 10m0s exceeded: 1 of 2 updated replicas are available')
    expect(r.polls).toBe(121)
    expect(clock.now().getTime() - T0).toBe(600_000)
  })

  it('keeps polling while the Deployment does not exist yet, and says so at the deadline', async () => {
    const cluster = new RecordedCluster([{}])
    const clock = new FakeClock(T0)
    const r = await waitForDeployment(cluster, 'shop', 'reviews-v2', { deadlineMs: 3000, now: clock.now, sleep: clock.sleep })
    expect(r).toEqual({ state: 'failed', reason: 'progress deadline of 3s exceeded: Deployment "shop/reviews-v2" not found', polls: 4 })
  })

  it("stops with the signal's reason when cancelled", async () => {
    const cluster = new RecordedCluster([{ deployment: deployment({ available: 0 }), pods: [] }])
    const clock = new FakeClock(T0)
    const controller = new AbortController()
    const sleep = async (ms: number, signal?: AbortSignal) => {
      await clock.sleep(ms, signal)
      if (clock.sleeps.length === 2) controller.abort(new Error('cancelled by the runner'))
    }
    await expect(
      waitForDeployment(cluster, 'shop', 'reviews-v2', { deadlineMs: 60_000, now: clock.now, sleep, signal: controller.signal })
    ).rejects.toThrow('cancelled by the runner')
    expect(cluster.requestCount).toBe(4)
  })
})
