import type { KubeObject } from '../../../src/kube/kube-object.js'
import {
  allowedDisruptions,
  checkDisruptionBudgets,
  checkQuotas,
  podUsage,
  type CanaryFootprint
} from '../../../src/rollout/capacity-check.js'

const template = (resources: Record<string, Record<string, string>> = { requests: { cpu: '250m', memory: '128Mi' } }, extra = {}) => ({
  metadata: { labels: { app: 'web', version: 'v2' } },
  spec: { containers: [{ name: 'app', image: 'web:2', resources }], ...extra }
})

const quota = (
  name: string,
  hard: Record<string, string>,
  used?: Record<string, string>,
  spec: Record<string, unknown> = {}
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ResourceQuota',
  metadata: { name, namespace: 'shop' },
  spec: { hard, ...spec },
  ...(used ? { status: { hard, used } } : {})
})

const canary = (over: Partial<CanaryFootprint> = {}): CanaryFootprint => ({
  deployment: 'web-v2',
  podTemplate: template(),
  liveReplicas: 0,
  exists: false,
  createsHpa: false,
  needs: { first: 1, peak: 4, firstWeight: 25 },
  ...over
})

describe('podUsage: what one pod takes, as the quota admission counts it', () => {
  it('sums the containers, takes the larger of them and each init container, adds the overhead', () => {
    const usage = podUsage({
      containers: [
        { resources: { requests: { cpu: '250m', memory: '100Mi' }, limits: { cpu: '1' } } },
        { resources: { requests: { cpu: '250m' } } }
      ],
      initContainers: [{ resources: { requests: { cpu: '2', memory: '10Mi' } } }],
      overhead: { cpu: '100m' }
    })
    expect(usage.requests.cpu).toBeCloseTo(2.1, 9)
    expect(usage.requests.memory).toBe(100 * 2 ** 20)
    expect(usage.limits.cpu).toBeCloseTo(1.1, 9)
  })

  it('a limit without a request is the request too (apiserver defaulting)', () => {
    expect(podUsage({ containers: [{ resources: { limits: { memory: '1Gi' } } }] }).requests.memory).toBe(2 ** 30)
  })
})

describe('checkQuotas: a ResourceQuota that cannot hold the canary is an error before any write', () => {
  it('the first step does not fit: error naming the quota, the resource, the figures and what to change', () => {
    const findings = checkQuotas([quota('compute', { 'requests.cpu': '1' }, { 'requests.cpu': '900m' })], canary())
    expect(findings).toEqual([
      {
        level: 'error',
        message:
          'ResourceQuota compute cannot hold the canary Deployment web-v2 at its first step: 1 replica(s) need 250m more requests.cpu (250m a pod), ' +
          "and the quota has 100m left of 1 (900m in use). The apiserver would refuse the pods. Raise the quota, lower the pods' requests, " +
          "or use fewer canary replicas (input 'canary-replicas'); nothing was changed."
      }
    ])
  })

  it('the first step fits but the promotion (beside the stable) does not: error at the peak', () => {
    const findings = checkQuotas([quota('pods', { pods: '10' }, { pods: '8' })], canary({ needs: { first: 1, peak: 4, firstWeight: 25 } }))
    expect(findings).toEqual([
      {
        level: 'error',
        message:
          'ResourceQuota pods cannot hold the canary Deployment web-v2 at its promotion (beside the stable version, before it leaves): 4 replica(s) need 4 more pods, ' +
          "and the quota has 2 left of 10 (8 in use). The apiserver would refuse the pods. Raise the quota, lower the pods' requests, " +
          "or use fewer canary replicas (input 'canary-replicas'); nothing was changed."
      }
    ])
  })

  it('pods the canary already runs are already in use: only the ones to add count', () => {
    expect(checkQuotas([quota('pods', { pods: '10' }, { pods: '10' })], canary({ liveReplicas: 4, exists: true }))).toEqual([])
    expect(checkQuotas([quota('pods', { pods: '10' }, { pods: '10' })], canary({ liveReplicas: 3, exists: true }))).toHaveLength(1)
  })

  it.each<[string, KubeObject, number]>([
    [
      'room for everything',
      quota('q', { pods: '20', 'requests.memory': '1Gi', 'limits.cpu': '4' }, { pods: '8', 'requests.memory': '256Mi', 'limits.cpu': '0' }),
      0
    ],
    ['exactly full at the peak still fits', quota('q', { 'requests.cpu': '2' }, { 'requests.cpu': '1' }), 0],
    ['memory short by one pod', quota('q', { 'requests.memory': '500Mi' }, { 'requests.memory': '0' }), 1],
    ['cpu written without the requests. prefix', quota('q', { cpu: '500m' }, { cpu: '0' }), 1],
    ['a count of Deployments that is full', quota('q', { 'count/deployments.apps': '3' }, { 'count/deployments.apps': '3' }), 1],
    ['storage of claims is not the pods', quota('q', { 'requests.storage': '1Gi' }, { 'requests.storage': '1Gi' }), 0],
    ['services are not the canary', quota('q', { services: '1' }, { services: '1' }), 0],
    ['an extended resource the pods do not request', quota('q', { 'requests.nvidia.com/gpu': '0' }, { 'requests.nvidia.com/gpu': '0' }), 0]
  ])('%s -> %p error(s)', (_name, q, errors) => {
    expect(checkQuotas([q], canary()).filter((f) => f.level === 'error')).toHaveLength(errors)
  })

  it('counts the HPA it will create against count/horizontalpodautoscalers.autoscaling', () => {
    const q = quota('objects', { 'count/horizontalpodautoscalers.autoscaling': '1' }, { 'count/horizontalpodautoscalers.autoscaling': '1' })
    expect(checkQuotas([q], canary())).toEqual([])
    expect(checkQuotas([q], canary({ createsHpa: true }))).toEqual([
      {
        level: 'error',
        message:
          'ResourceQuota objects allows count/horizontalpodautoscalers.autoscaling 1 and 1 are in use: the canary needs 1 more. Raise the quota or remove an unused object; nothing was changed.'
      }
    ])
  })

  it('a quota whose scope leaves the canary out is not judged', () => {
    const bestEffortOnly = quota('be', { pods: '0' }, { pods: '0' }, { scopes: ['BestEffort'] })
    expect(checkQuotas([bestEffortOnly], canary())).toEqual([])
    const other = quota(
      'prio',
      { pods: '0' },
      { pods: '0' },
      { scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['high'] }] } }
    )
    expect(checkQuotas([other], canary())).toEqual([])
    expect(checkQuotas([other], canary({ podTemplate: template(undefined, { priorityClassName: 'high' }) }))).toHaveLength(1)
  })

  it.each<[string, KubeObject, CanaryFootprint, string]>([
    [
      'usage not counted yet',
      quota('fresh', { pods: '10' }),
      canary(),
      'ResourceQuota fresh has not counted its pods usage yet (status.used is empty): whether it holds the canary was not checked'
    ],
    [
      'a compute resource the pods leave out',
      quota('mem', { 'limits.memory': '1Gi' }, { 'limits.memory': '0' }),
      canary(),
      "ResourceQuota mem limits limits.memory, which the canary's pod template does not set: the apiserver refuses its pods unless a LimitRange gives them a default"
    ],
    [
      'a scope it does not evaluate',
      quota('xns', { pods: '1' }, { pods: '1' }, { scopes: ['CrossNamespacePodAffinity'] }),
      canary(),
      "ResourceQuota xns has a scope this check does not evaluate: whether it holds the canary's 4 pod(s) was not checked"
    ]
  ])('warns when it cannot judge: %s', (_name, q, c, message) => {
    expect(checkQuotas([q], c)).toEqual([{ level: 'warning', message }])
  })
})

describe('allowedDisruptions: the disruption controller rounding', () => {
  const pdb = (spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: 'b' },
    spec
  })
  it.each<[Record<string, unknown>, number, number]>([
    [{ minAvailable: 1 }, 1, 0],
    [{ minAvailable: 1 }, 2, 1],
    [{ minAvailable: 2 }, 1, -1],
    [{ minAvailable: '50%' }, 1, 0],
    [{ minAvailable: '50%' }, 4, 2],
    [{ maxUnavailable: 0 }, 5, 0],
    [{ maxUnavailable: '10%' }, 3, 1],
    [{ maxUnavailable: '0%' }, 3, 0]
  ])('%p over %i pods -> %i', (spec, pods, allowed) => {
    expect(allowedDisruptions(pdb(spec), pods)).toBe(allowed)
  })
})

describe('checkDisruptionBudgets: warnings, never errors (scaling does not evict)', () => {
  const pdb = (name: string, selector: unknown, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name },
    spec: { selector, ...spec }
  })
  const canaryPods = { deployment: 'web-v2', podLabels: { app: 'web', version: 'v2' }, first: 1 }
  const stable = { podLabels: { app: 'web', version: 'v1' }, replicas: 4 }

  it('a budget over the small canary alone that allows no disruption', () => {
    expect(checkDisruptionBudgets([pdb('v2-only', { matchLabels: { version: 'v2' } }, { minAvailable: 1 })], canaryPods, stable)).toEqual([
      {
        level: 'warning',
        message:
          "PodDisruptionBudget v2-only (minAvailable 1) selects the canary's pods and allows no disruption over 1 pod(s) (1 of the canary): " +
          'while the canary runs at that size its pods cannot be evicted, so node drains wait. The rollout itself is not blocked (scaling does not evict); ' +
          'give the budget a percentage or maxUnavailable, or start the canary larger.'
      }
    ])
  })

  it.each<[string, KubeObject[], number]>([
    ['an app-wide budget that the stable pods keep satisfied', [pdb('app', { matchLabels: { app: 'web' } }, { minAvailable: 3 })], 0],
    ['an app-wide budget that all pods are needed for', [pdb('app', { matchLabels: { app: 'web' } }, { minAvailable: 5 })], 1],
    ['a budget over the stable only', [pdb('v1', { matchLabels: { version: 'v1' } }, { maxUnavailable: 0 })], 0],
    ['maxUnavailable 1 over the canary', [pdb('v2', { matchLabels: { version: 'v2' } }, { maxUnavailable: 1 })], 0],
    ['a budget without a selector selects nothing', [pdb('none', undefined, { minAvailable: 10 })], 0],
    ['an empty selector selects every pod', [pdb('all', {}, { maxUnavailable: 0 })], 1]
  ])('%s -> %p warning(s)', (_name, pdbs, warnings) => {
    const findings = checkDisruptionBudgets(pdbs, canaryPods, stable)
    expect(findings.every((f) => f.level === 'warning')).toBe(true)
    expect(findings).toHaveLength(warnings)
  })

  it('several budgets over the canary pods: the eviction API refuses such pods', () => {
    const findings = checkDisruptionBudgets(
      [
        pdb('app', { matchLabels: { app: 'web' } }, { maxUnavailable: 1 }),
        pdb('v2', { matchLabels: { version: 'v2' } }, { maxUnavailable: 1 })
      ],
      canaryPods,
      stable
    )
    expect(findings).toEqual([
      {
        level: 'warning',
        message:
          "PodDisruptionBudgets app, v2 all select the canary's pods: the eviction API refuses to evict a pod under more than one budget, so node drains would fail on them."
      }
    ])
  })
})
