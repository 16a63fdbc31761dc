import { goDuration, judgeDeployment } from '../../../src/kube/deployment-health.js'
import { deployment, event, pod } from '../cluster/snapshots.js'

const now = new Date('2026-11-25T10:00:00Z')

describe('judgeDeployment', () => {
  it.each([
    ['all replicas updated and available', deployment(), [pod('a'), pod('b')], 'ready', undefined],
    ['zero replicas', deployment({ replicas: 0 }), [], 'ready', undefined],
    [
      'spec change not observed yet',
      deployment({ generation: 3, observedGeneration: 2 }),
      [pod('a')],
      'progressing',
      /spec update to be observed/
    ],
    ['1 of 2 updated', deployment({ updated: 1, total: 1 }), [pod('a')], 'progressing', /1 out of 2 new replicas have been updated/],
    [
      'old replicas pending termination',
      deployment({ updated: 2, total: 3 }),
      [pod('a'), pod('b')],
      'progressing',
      /1 old replicas are pending termination/
    ],
    [
      'updated but not available',
      deployment({ available: 1 }),
      [pod('a'), pod('b', { ready: false })],
      'progressing',
      /1 of 2 updated replicas are available/
    ],
    [
      'unschedulable pod named in the progress reason',
      deployment({ available: 1 }),
      [pod('a'), pod('b', { ready: false, unschedulable: '0/3 nodes are available' })],
      'progressing',
      /pod "b" Unschedulable for 2m0s: 0\/3 nodes are available/
    ]
  ])('%s -> %s', (_name, d, pods, state, reason) => {
    const j = judgeDeployment(d, pods, [], now)
    expect(j.state).toBe(state)
    if (reason) expect(j.reason).toMatch(reason)
    else expect(j.reason).toBeUndefined()
  })

  it.each([
    ['ErrImagePull', 'rpc error: code = NotFound desc = failed to pull and unpack image "reviews:nope"'],
    ['ImagePullBackOff', 'Back-off pulling image "reviews:nope"'],
    ['InvalidImageName', 'Failed to apply default image tag "Reviews:UPPER"'],
    ['CreateContainerConfigError', 'secret "db-password" not found'],
    ['CrashLoopBackOff', 'back-off 10s restarting failed container=reviews']
  ])('fails early on a container waiting with %s, naming pod, container, reason and message', (reason, message) => {
    const d = deployment({ available: 0 })
    const j = judgeDeployment(d, [pod('a'), pod('reviews-v2-7d9-x', { containers: [{ waiting: { reason, message } }] })], [], now)
    expect(j.state).toBe('failed')
    expect(j.reason).toContain('pod "reviews-v2-7d9-x"')
    expect(j.reason).toContain('container "reviews"')
    expect(j.reason).toContain(reason)
    expect(j.reason).toContain(message)
  })

  it('fails on a container restarted twice even before the kubelet says CrashLoopBackOff', () => {
    const j = judgeDeployment(
      deployment({ available: 1 }),
      [pod('a'), pod('b', { containers: [{ restartCount: 2, ready: false, lastTerminated: { reason: 'Error', exitCode: 137 } }] })],
      [],
      now
    )
    expect(j).toEqual({
      state: 'failed',
      reason: 'pod "b" container "reviews": CrashLoopBackOff: restarted 2 times (last exit: Error, code 137)'
    })
  })

  it('does not fail on one restart', () => {
    const j = judgeDeployment(
      deployment({ available: 1 }),
      [pod('a'), pod('b', { containers: [{ restartCount: 1, ready: false }] })],
      [],
      now
    )
    expect(j.state).toBe('progressing')
  })

  it('fails on ProgressDeadlineExceeded with the deadline as kubectl prints it', () => {
    const d = deployment({
      available: 0,
      progressDeadlineSeconds: 90,
      conditions: [
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "reviews-v2-7d9" has timed out progressing.'
        }
      ]
    })
    const j = judgeDeployment(d, [pod('a', { ready: false })], [], now)
    expect(j.state).toBe('failed')
    expect(j.reason).toMatch(
      /^Deployment "shop\/reviews-v2" exceeded its progress deadline of 1m30s \(ProgressDeadlineExceeded\): ReplicaSet "reviews-v2-7d9" has timed out progressing\./
    )
  })

  it('fails on ReplicaFailure (pods cannot be created, e.g. quota)', () => {
    const d = deployment({
      available: 0,
      updated: 0,
      conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "x" is forbidden: exceeded quota' }]
    })
    expect(judgeDeployment(d, [], [], now)).toEqual({
      state: 'failed',
      reason: 'Deployment "shop/reviews-v2" cannot create pods (FailedCreate): pods "x" is forbidden: exceeded quota'
    })
  })

  it('fails on an image-pull Warning event about a current pod', () => {
    const j = judgeDeployment(
      deployment({ available: 0 }),
      [pod('a', { ready: false, containers: [{ ready: false }] })],
      [event('a', 'Failed', 'Failed to pull image "reviews:nope": not found')],
      now
    )
    expect(j).toEqual({ state: 'failed', reason: 'pod "a": Failed: Failed to pull image "reviews:nope": not found' })
  })

  it('ignores events about other pods and Normal events', () => {
    const j = judgeDeployment(
      deployment({ available: 1 }),
      [pod('a'), pod('b', { ready: false })],
      [event('gone', 'Failed', 'ErrImagePull'), event('b', 'Pulling', 'Pulling image "reviews:2.0"', 'Normal')],
      now
    )
    expect(j.state).toBe('progressing')
  })

  it('ignores crashing pods that are terminating or run an older image', () => {
    const crash = { containers: [{ waiting: { reason: 'CrashLoopBackOff' }, restartCount: 5 }] }
    const j = judgeDeployment(
      deployment({ updated: 2, total: 2, available: 1 }),
      [
        pod('new-a'),
        pod('new-b', { ready: false }),
        pod('old', { ...crash, image: 'reviews:1.9' }),
        pod('dying', { ...crash, deleting: true })
      ],
      [],
      now
    )
    expect(j.state).toBe('progressing')
  })

  it('checks init containers too', () => {
    const p = pod('a', { ready: false, containers: [{ ready: false }] })
    p.status.initContainerStatuses = [
      { name: 'migrate', restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message: 'configmap "x" not found' } } }
    ]
    const j = judgeDeployment(deployment({ available: 0 }), [p], [], now)
    expect(j.reason).toBe('pod "a" container "migrate": CreateContainerConfigError: configmap "x" not found')
  })
})

describe('goDuration', () => {
  it.each([
    [600, '10m0s'],
    [90, '1m30s'],
    [5, '5s'],
    [3661, '1h1m1s']
  ])('%i s -> %s', (s, text) => expect(goDuration(s)).toBe(text))
})
