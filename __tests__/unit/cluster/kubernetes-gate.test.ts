import { KubernetesGate } from '../../../src/health/kubernetes-gate.js'
import type { GateContext } from '../../../src/health/health-gate.js'
import { RecordedCluster } from './recorded-cluster.js'
import { deployment, pod } from './snapshots.js'

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
