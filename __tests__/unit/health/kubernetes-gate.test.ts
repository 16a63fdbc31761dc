import { judgeCanaryPods, KubernetesGate } from '../../../src/health/kubernetes-gate.js'
import { restartCounts } from '../../../src/kube/deployment-health.js'
import type { GateContext } from '../../../src/health/health-gate.js'
import { RecordedCluster } from '../cluster/recorded-cluster.js'
import { deployment, pod } from '../cluster/snapshots.js'

const ctx: GateContext = {
  namespace: 'shop',
  host: 'reviews',
  virtualService: 'reviews',
  stable: { version: 'v1', subset: 'v1' },
  canary: { version: 'v2', subset: 'v2', deployment: 'reviews-v2' },
  canaryWeight: 10,
  stepIndex: 0,
  schedule: [{ kind: 'weight', weight: 10 }],
  windowSeconds: 60
}

describe('KubernetesGate', () => {
  it('answers bake and before-promotion, with pods-ready and restarts checks', async () => {
    const d = deployment()
    const cluster = new RecordedCluster([
      { deployment: d, pods: [pod('a', { containers: [{ restartCount: 1 }] }), pod('b')] },
      { deployment: d, pods: [pod('a', { containers: [{ restartCount: 1 }] }), pod('b')] },
      { deployment: d, pods: [pod('a', { containers: [{ restartCount: 3 }] }), pod('b', { ready: false })] }
    ])
    const gate = new KubernetesGate(cluster)
    expect(gate.name).toBe('kubernetes')
    expect(gate.moments).toEqual(['bake', 'before-promotion'])
    // First evaluation captures the baseline: the restart from before the canary got traffic does not count.
    expect((await gate.evaluate('bake', ctx)).map((c) => c.verdict)).toEqual(['pass', 'pass'])
    expect(gate.restartBaseline).toEqual({ a: 1, b: 0 })
    expect((await gate.evaluate('bake', ctx)).map((c) => c.verdict)).toEqual(['pass', 'pass'])
    const third = await gate.evaluate('before-promotion', ctx)
    expect(third.map((c) => [c.name, c.verdict])).toEqual([
      ['pods-ready', 'fail'],
      ['restarts', 'fail']
    ])
    expect(third[1].detail).toBe('a: +2 (3 total)')
    expect(cluster.requestCount).toBe(6)
  })

  it('uses a given baseline', async () => {
    const cluster = new RecordedCluster([{ deployment: deployment(), pods: [pod('a', { containers: [{ restartCount: 1 }] })] }])
    const checks = await new KubernetesGate(cluster, { baseline: { a: 0 } }).evaluate('bake', ctx)
    expect(checks[1]).toMatchObject({ name: 'restarts', verdict: 'fail' })
  })

  it('fails when the canary Deployment is gone, and is inconclusive on API errors', async () => {
    expect((await new KubernetesGate(new RecordedCluster([{}])).evaluate('bake', ctx)).map((c) => c.verdict)).toEqual(['fail', 'fail'])
    const broken = new RecordedCluster([])
    broken.getDeployment = async () => {
      throw new Error('Kubernetes API GET deployments "shop/reviews-v2" failed: network error ECONNREFUSED')
    }
    const checks = await new KubernetesGate(broken).evaluate('bake', ctx)
    expect(checks.map((c) => c.verdict)).toEqual(['inconclusive', 'inconclusive'])
    expect(checks[0].detail).toContain('ECONNREFUSED')
  })
})

describe('judgeCanaryPods', () => {
  const crashing = (restarts: number) =>
    pod('b', { ready: false, containers: [{ restartCount: restarts, waiting: { reason: 'CrashLoopBackOff' } }] })

  it.each([
    ['all ready, no restarts', [pod('a'), pod('b')], { a: 0, b: 0 }, 'pass', 'pass', 'pass'],
    ['restarts before the baseline do not count', [pod('a', { containers: [{ restartCount: 3 }] })], { a: 3 }, 'pass', 'pass', 'pass'],
    ['a pod not ready', [pod('a'), pod('b', { ready: false })], { a: 0, b: 0 }, 'fail', 'fail', 'pass'],
    ['restarts grew', [pod('a'), pod('b', { containers: [{ restartCount: 1 }] })], { a: 0, b: 0 }, 'fail', 'pass', 'fail'],
    ['crash loop', [pod('a'), crashing(4)], { a: 0, b: 2 }, 'fail', 'fail', 'fail'],
    ['a replacement pod counts all its restarts', [pod('c', { containers: [{ restartCount: 1 }] })], { a: 0 }, 'fail', 'pass', 'fail'],
    ['no pods at all', [], {}, 'fail', 'fail', 'pass']
  ])('%s -> %s', (_name, pods, baseline, verdict, ready, restarts) => {
    const j = judgeCanaryPods(pods, baseline)
    expect(j.verdict).toBe(verdict)
    expect(j.checks.map((c) => [c.name, c.verdict])).toEqual([
      ['pods-ready', ready],
      ['restarts', restarts]
    ])
  })

  it('says which pods are not ready and which restarted', () => {
    const j = judgeCanaryPods([pod('a', { containers: [{ restartCount: 2 }] }), crashing(5)], { a: 1, b: 2 })
    expect(j.checks[0]).toMatchObject({ value: 1, detail: 'not ready: b (reviews: CrashLoopBackOff)' })
    expect(j.checks[1]).toMatchObject({ value: 4, detail: 'a: +1 (2 total), b: +3 (5 total)' })
  })

  it('ignores terminating pods', () => {
    expect(judgeCanaryPods([pod('a'), pod('old', { ready: false, deleting: true })], { a: 0 }).verdict).toBe('pass')
  })

  it('restartCounts sums containers per pod', () => {
    expect(
      restartCounts([
        pod('a', {
          containers: [
            { name: 'x', restartCount: 1 },
            { name: 'y', restartCount: 2 }
          ]
        }),
        pod('b')
      ])
    ).toEqual({ a: 3, b: 0 })
  })
})
