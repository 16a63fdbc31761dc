import { describe, expect, it } from '@jest/globals'
import { parseSchedule } from '../../../src/config/schedule.js'
import { scheduleTimeline } from '../../../src/rollout/release-plan.js'
import { renderPlan, type ReleasePlanView } from '../../../src/report/render-plan.js'
import { reportMarker } from '../../../src/report/render-report.js'

const plan: ReleasePlanView = {
  namespace: 'shop',
  virtualService: 'reviews',
  stableVersion: '1.4.0',
  canaryVersion: '1.5.0',
  warnings: [],
  reviewerWarnings: ['on-no-data is skip: a gate with no data counts as a pass, so a canary nobody calls is promoted.'],
  deploymentName: 'reviews-1-5-0',
  stableDeploymentName: 'reviews-1-4-0',
  diff: [
    { field: 'containers[app].image', stable: 'reviews:1.4.0', canary: 'reviews:1.5.0' },
    { field: 'containers[app].env', stable: '[{"name":"MODE","value":"a|b"}]', canary: '[{"name":"MODE","value":"c"}]' }
  ],
  subset: { destinationRule: 'reviews', name: '1-5-0', labels: { version: '1.5.0' } },
  firstStep: { stableSubset: '1-4-0', canarySubset: '1-5-0', weight: 10 },
  timeline: scheduleTimeline(parseSchedule('10,pause,50,100'), { intervalSeconds: 120, settleSeconds: 5, minSoakSeconds: 1800 }),
  gates: [
    { name: 'success-rate', threshold: '>= 99', unit: '%', stableValue: 98.5, stableFails: true },
    { name: 'latency-p99', threshold: '<= 500', unit: 'ms', stableValue: 212.3456 },
    { name: 'webhook:smoke @team', threshold: 'HTTP 2xx' }
  ]
}

describe('renderPlan', () => {
  it('renders the verdict, the reviewer warnings, the changes, the timeline and the gates', () => {
    expect(renderPlan(plan, { marker: reportMarker('shop', 'reviews') })).toMatchSnapshot()
  })

  it('starts with the marker the deploy run updates in place', () => {
    expect(renderPlan(plan, { marker: reportMarker('shop', 'reviews') }).split('\n')[0]).toBe('<!-- istio-canary:shop/reviews -->')
  })

  it('says when preflight would refuse, with its message', () => {
    const md = renderPlan({
      ...plan,
      preflightError: { kind: 'PreflightError', message: `Input 'version-order' is "semver": the new version "1.3.0" is older` }
    })
    expect(md).toContain(
      `**Preflight would refuse it** (PreflightError): Input 'version-order' is "semver": the new version "1.3.0" is older`
    )
    expect(md).not.toContain('**Preflight passes**')
  })

  it('neutralises cluster and user values (table cells, mentions)', () => {
    const md = renderPlan(plan)
    expect(md).toContain('a\\|b')
    expect(md).not.toContain('@team')
  })

  it('flags a threshold the stable version already fails', () => {
    expect(renderPlan(plan)).toContain('| success-rate | &gt;= 99 | 98\\.5% ❌ the stable version already fails this |')
  })
})
