/**
 * The reports the commands really build, on the real apiserver: the progress comment written
 * mid-rollout says where the rollout is (not "unchanged"), a dry run says what it would do, and
 * after a promotion the log's versions are the outputs'.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { outputsOf } from '../../../src/report/outputs.js'
import { renderPlainLog, renderReport } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { createTestNamespace, deleteNamespace, readSeedScenario, startSeedScenario } from '../../support/test-cluster.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'

describe('reports built by the commands', () => {
  let ns: string
  beforeAll(async () => {
    ns = await createTestNamespace('report')
    await startSeedScenario(ns)
  })
  afterAll(async () => {
    await deleteNamespace(ns)
  })

  const inputs = (): Record<string, string> => ({
    manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    steps: '50,100'
  })

  it('a dry run says what would happen, with both versions', async () => {
    const { report } = await runAction({ ...inputs(), 'dry-run': 'true' })
    const md = renderReport(report)
    expect(md).toContain(`**dry run: would roll out v2 over v1 on ${ns}/istio-virtualservice in 2 steps (50 → 100 %)**`)
    expect(renderPlainLog(report)).toContain('stable=v1 canary=v2')
  })

  it('the progress comment at 50 % says progressing, step 1 of 2, and the failed evaluations against the threshold', async () => {
    const progress: RunReport[] = []
    const { report } = await runAction(inputs(), { onProgress: (r) => progress.push(r) })
    expect(report.result).toBe('promoted')
    const at50 = progress.find((r) => r.state?.phase === 'progressing' && r.state.canaryWeight === 50)
    expect(at50).toBeDefined()
    const md = renderReport(at50!)
    expect(md).toContain(`> [!NOTE]\n> **v2 progressing on ${ns}/istio-virtualservice: 50 %, step 1 of 2**`)
    expect(md).toMatch(/failed evaluations 0 of \d+/)
    for (const r of progress) expect(renderReport(r)).not.toContain('unchanged on')

    const outputs = outputsOf(report)
    expect(renderPlainLog(report)).toContain(`stable=${outputs['stable-version']} canary=${outputs['canary-version']}`)
    expect(outputs['stable-version']).toBe('v2')
  })
})
