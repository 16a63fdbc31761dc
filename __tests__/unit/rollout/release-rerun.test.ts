import { describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { reduce } from '../../../src/rollout/planner.js'
import { decideRedeploy, deploymentChanges, MAX_CHANGES_SHOWN, type RedeployFacts } from '../../../src/rollout/release-rerun.js'
import type { RolloutState } from '../../../src/rollout/types.js'
import { clock, events, rollout, steps } from './rollout-fixtures.js'

/** The seed's v2 Deployment as the apiserver returns it. */
function deployment(
  overrides: { image?: string; env?: Array<{ name: string; value: string }>; replicas?: number; rv?: string; generation?: number } = {}
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'reviews-v2',
      namespace: 'shop',
      uid: 'u-1',
      resourceVersion: overrides.rv ?? '100',
      generation: overrides.generation ?? 1,
      labels: { app: 'reviews' },
      annotations: { 'deployment.kubernetes.io/revision': '1' },
      managedFields: [{ manager: 'istio-canary', operation: 'Apply', time: '2025-01-01T00:00:00Z' }]
    },
    spec: {
      replicas: overrides.replicas ?? 1,
      selector: { matchLabels: { version: 'v2' } },
      template: {
        metadata: { labels: { app: 'reviews', version: 'v2' } },
        spec: {
          containers: [
            {
              name: 'app',
              image: overrides.image ?? 'reviews:2.0',
              ...(overrides.env ? { env: overrides.env } : {}),
              resources: { limits: { cpu: '500m' } }
            },
            { name: 'log-shipper', image: 'shipper:1' }
          ]
        }
      }
    },
    status: { availableReplicas: 1, observedGeneration: 1 }
  }
}

describe('deploymentChanges', () => {
  it('sees no change where only the apiserver-set fields differ', () => {
    const live = deployment()
    const applied = deployment({ rv: '101', generation: 2 })
    applied.metadata.managedFields = [{ manager: 'istio-canary', operation: 'Apply', time: '2025-02-02T00:00:00Z' }]
    applied.status = { availableReplicas: 0 }
    expect(deploymentChanges(live, applied)).toEqual([])
  })

  it('names a new image, an env change and a resources change by container, shortened under the pod spec', () => {
    const live = deployment({
      env: [
        { name: 'MODE', value: 'fast' },
        { name: 'LEVEL', value: '1' }
      ]
    })
    const applied = deployment({
      image: 'reviews:2.1',
      env: [
        { name: 'LEVEL', value: '2' },
        { name: 'DEBUG', value: 'true' }
      ]
    })
    applied.spec.template.spec.containers[0].resources = { limits: { cpu: '1' } }
    expect(deploymentChanges(live, applied)).toEqual([
      'containers[app].env[MODE]: removed (was {"name":"MODE","value":"fast"})',
      'containers[app].env[LEVEL].value: "1" → "2"',
      'containers[app].env[DEBUG]: added {"name":"DEBUG","value":"true"}',
      'containers[app].image: "reviews:2.0" → "reviews:2.1"',
      'containers[app].resources.limits.cpu: "500m" → "1"'
    ])
  })

  it('leaves out the paths it is told to ignore, and shows the others with their full path', () => {
    const live = deployment({ replicas: 0 })
    const applied = deployment({ replicas: 3 })
    applied.metadata.labels = { app: 'reviews', team: 'x' }
    expect(deploymentChanges(live, applied, ['spec.replicas'])).toEqual(['metadata.labels.team: added "x"'])
    expect(deploymentChanges(live, applied)).toEqual(['metadata.labels.team: added "x"', 'spec.replicas: 0 → 3'])
  })

  it('cuts a long value', () => {
    const applied = deployment({ image: `registry.example.com/${'a'.repeat(200)}:1` })
    const [line] = deploymentChanges(deployment(), applied)
    expect(line.length).toBeLessThan(140)
    expect(line).toMatch(/^containers\[app\]\.image: "reviews:2\.0" → "registry\.example\.com\/a+…$/)
  })
})

const now = clock()
const ev = events(now)

function ended(how: 'promoted' | 'rolled-back' | 'aborted'): RolloutState {
  let s = rollout(steps(50, 100))
  s = reduce(s, ev.ready())
  s = reduce(s, ev.shifted(50, 0))
  if (how === 'promoted') {
    s = { ...s, phase: 'promoting', canaryWeight: 100 }
    return reduce(s, ev.promoted())
  }
  s = reduce(s, how === 'aborted' ? ev.abort() : ev.failed())
  return reduce(s, ev.rolledBack())
}

function facts(f: Partial<RedeployFacts>): RedeployFacts {
  return {
    version: 'v2',
    versionLabel: 'version',
    deployment: 'reviews-v2',
    virtualService: 'shop/reviews',
    stable: false,
    changes: [],
    retry: false,
    ...f
  }
}

describe('decideRedeploy', () => {
  it('a stable version whose Deployment matches the manifest: nothing to do', () => {
    const d = decideRedeploy(facts({ stable: true, last: ended('promoted') }))
    expect(d).toEqual({ kind: 'already-stable', note: 'v2 is already stable; nothing to do (Deployment reviews-v2 matches the manifest).' })
    // Without any recorded rollout (the version was stable before istio-canary came) the same.
    expect(decideRedeploy(facts({ stable: true })).kind).toBe('already-stable')
    // retry does not matter once the version is stable.
    expect(decideRedeploy(facts({ stable: true, retry: true })).kind).toBe('already-stable')
  })

  it('a stable version with a different manifest: refused, showing what differs and asking for a new version', () => {
    const changes = ['containers[app].image: "reviews:2.0" → "reviews:2.1"', 'containers[app].env[LEVEL].value: "1" → "2"']
    const d = decideRedeploy(facts({ stable: true, last: ended('promoted'), changes, retry: true }))
    expect(d.kind).toBe('refuse')
    const reason = (d as { reason: string }).reason
    expect(reason).toContain(
      'Version "v2" is already the stable version on VirtualService "shop/reviews", but the manifest differs from its live Deployment "reviews-v2":'
    )
    expect(reason).toContain(
      '\n  - containers[app].image: "reviews:2.0" → "reviews:2.1"\n  - containers[app].env[LEVEL].value: "1" → "2"\n'
    )
    expect(reason).toContain('Release it under a new version: a new "version" label value')
  })

  it('lists at most MAX_CHANGES_SHOWN changes', () => {
    const changes = Array.from({ length: MAX_CHANGES_SHOWN + 4 }, (_, i) => `metadata.labels.l${i}: added "x"`)
    const reason = (decideRedeploy(facts({ stable: true, changes })) as { reason: string }).reason
    expect(reason.match(/\n {2}- /g)).toHaveLength(MAX_CHANGES_SHOWN + 1)
    expect(reason).toContain('  - … and 4 more')
  })

  it('a stable version whose manifest names a Deployment that does not exist: refused', () => {
    const d = decideRedeploy(facts({ stable: true, changes: undefined }))
    expect(d.kind).toBe('refuse')
    expect((d as { reason: string }).reason).toMatch(/already the stable version .*Deployment "reviews-v2" does not exist/)
  })

  it.each(['rolled-back', 'aborted'] as const)('the same release again after it was %s: refused unless retry', (how) => {
    const last = ended(how)
    const d = decideRedeploy(facts({ last }))
    expect(d.kind).toBe('refuse')
    const reason = (d as { reason: string }).reason
    expect(reason).toContain(
      `The last rollout of "v2" on VirtualService "shop/reviews" was ${how === 'aborted' ? 'aborted' : 'rolled back'} at ${last.updatedAt} (${last.reason})`
    )
    expect(reason).toContain("set input 'retry' to true")
    expect(reason).toContain('change the manifest (e.g. a new image) or release a new version')
    expect(decideRedeploy(facts({ last, retry: true }))).toEqual({
      kind: 'new-rollout',
      note: expect.stringContaining("Retrying v2 (input 'retry')")
    })
  })

  it('after a rollback, a rolled-back Deployment that is gone cannot be told apart: refused unless retry', () => {
    const d = decideRedeploy(facts({ last: ended('rolled-back'), changes: undefined }))
    expect((d as { reason: string }).reason).toContain('its Deployment "reviews-v2" no longer exists')
    expect(decideRedeploy(facts({ last: ended('rolled-back'), changes: undefined, retry: true })).kind).toBe('new-rollout')
  })

  it('after a rollback, a changed manifest (the fix) is a new release: it rolls out', () => {
    const d = decideRedeploy(facts({ last: ended('rolled-back'), changes: ['containers[app].image: "reviews:2.0" → "reviews:2.0.1"'] }))
    expect(d.kind).toBe('new-rollout')
    expect((d as { note: string }).note).toContain(
      'this manifest differs from that release (containers[app].image: "reviews:2.0" → "reviews:2.0.1")'
    )
  })

  it('another version than the one rolled back, or a first release: a new rollout without a note', () => {
    expect(decideRedeploy(facts({ version: 'v3', last: ended('rolled-back') }))).toEqual({ kind: 'new-rollout' })
    expect(decideRedeploy(facts({ last: ended('promoted') }))).toEqual({ kind: 'new-rollout' })
    expect(decideRedeploy(facts({}))).toEqual({ kind: 'new-rollout' })
  })
})
