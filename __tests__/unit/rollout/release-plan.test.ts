import { describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { parseSchedule } from '../../../src/config/schedule.js'
import { deploymentDiff, reviewerWarnings, scheduleTimeline, type ReviewFacts } from '../../../src/rollout/release-plan.js'

const deployment = (name: string, container: Record<string, unknown>, replicas?: number): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: { ...(replicas !== undefined && { replicas }), template: { spec: { containers: [{ name: 'app', ...container }] } } }
})

describe('deploymentDiff', () => {
  it('lists image, env, resources, probes and replicas that differ, nothing else', () => {
    const stable = deployment(
      'reviews-v1',
      { image: 'reviews:1.4.0', env: [{ name: 'MODE', value: 'a' }], ports: [{ containerPort: 80 }] },
      2
    )
    const canary = deployment(
      'reviews-v2',
      {
        image: 'reviews:1.5.0',
        env: [{ name: 'MODE', value: 'b' }],
        ports: [{ containerPort: 8080 }],
        resources: { limits: { cpu: '500m' } },
        readinessProbe: { httpGet: { path: '/ready', port: 80 } }
      },
      2
    )
    expect(deploymentDiff(stable, canary)).toEqual([
      { field: 'containers[app].image', stable: 'reviews:1.4.0', canary: 'reviews:1.5.0' },
      { field: 'containers[app].env', stable: '[{"name":"MODE","value":"a"}]', canary: '[{"name":"MODE","value":"b"}]' },
      { field: 'containers[app].resources', canary: '{"limits":{"cpu":"500m"}}' },
      { field: 'containers[app].readinessProbe', canary: '{"httpGet":{"path":"/ready","port":80}}' }
    ])
  })

  it('treats an omitted replica count as 1, and names a container that goes away', () => {
    const stable = deployment('a', { image: 'x:1' })
    stable.spec.template.spec.containers.push({ name: 'sidecar', image: 'log:1' })
    expect(deploymentDiff(stable, deployment('b', { image: 'x:1' }, 1))).toEqual([{ field: 'containers[sidecar]', stable: 'log:1' }])
    expect(deploymentDiff(stable, deployment('b', { image: 'x:1' }, 3))[0]).toEqual({ field: 'replicas', stable: '1', canary: '3' })
  })

  it('shows everything as new without a stable Deployment', () => {
    expect(deploymentDiff(undefined, deployment('b', { image: 'x:1' }))).toEqual([
      { field: 'replicas', canary: '1' },
      { field: 'containers[app].image', canary: 'x:1' }
    ])
  })
})

describe('scheduleTimeline', () => {
  it('each weight settles and bakes; promotion settles twice', () => {
    const t = scheduleTimeline(parseSchedule('10,50,100'), { intervalSeconds: 60, settleSeconds: 5, minSoakSeconds: 0 })
    expect(t).toEqual({
      entries: [
        { kind: 'weight', weight: 10, atSeconds: 5, bakeSeconds: 60 },
        { kind: 'weight', weight: 50, atSeconds: 70, bakeSeconds: 60 },
        { kind: 'weight', weight: 100, atSeconds: 135, bakeSeconds: 60 }
      ],
      minimumSeconds: 210,
      pauses: 0
    })
  })

  it('holds the last weight below 100 for min-soak, and counts pauses as 0', () => {
    const t = scheduleTimeline(parseSchedule('10,pause,50,100'), { intervalSeconds: 60, settleSeconds: 0, minSoakSeconds: 1800 })
    expect(t.entries).toEqual([
      { kind: 'weight', weight: 10, atSeconds: 0, bakeSeconds: 60 },
      { kind: 'pause', atSeconds: 60 },
      { kind: 'weight', weight: 50, atSeconds: 60, bakeSeconds: 60, soakHoldSeconds: 1680 },
      { kind: 'weight', weight: 100, atSeconds: 1800, bakeSeconds: 60 }
    ])
    expect(t).toMatchObject({ minimumSeconds: 1860, pauses: 1 })
  })

  it('adds no hold when the schedule already soaks long enough', () => {
    const t = scheduleTimeline(parseSchedule('10,50,100'), { intervalSeconds: 600, settleSeconds: 0, minSoakSeconds: 1200 })
    expect(t.entries.every((e) => e.kind !== 'weight' || e.soakHoldSeconds === undefined)).toBe(true)
  })
})

describe('reviewerWarnings', () => {
  const ok: ReviewFacts = { steps: parseSchedule('10,100'), gates: ['success-rate'], onNoData: 'pause', minRequests: 10, stableNoData: [] }
  it('is quiet for a well-guarded release', () => {
    expect(reviewerWarnings(ok)).toEqual([])
  })
  it.each<[string, Partial<ReviewFacts>, RegExp]>([
    ['no gates', { gates: [] }, /^No health gates are configured/],
    ['on-no-data: skip', { onNoData: 'skip' }, /^on-no-data is skip/],
    ['min-requests: 0', { minRequests: 0 }, /^min-requests is 0/],
    ['100 in one step', { steps: parseSchedule('100') }, /^The schedule reaches 100 % in one step/],
    [
      'a gate with no stable data',
      { stableNoData: ['latency-p99'] },
      /^Gate latency-p99 had no data for the stable version over the last hour/
    ]
  ])('warns about %s', (_, over, want) => {
    const w = reviewerWarnings({ ...ok, ...over })
    expect(w).toHaveLength(1)
    expect(w[0]).toMatch(want)
  })
})
