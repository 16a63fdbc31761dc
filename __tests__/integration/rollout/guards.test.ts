/**
 * The release guards on the local cluster with the seed scenario: a deploy inside a freeze window,
 * a downgrade, and a promote to 100 % before the minimum soak are each refused with nothing
 * written (not even the lock's Lease); the same runs go ahead once the guard is satisfied, and an
 * automatic rollout holds its last weight below 100 until the soak is met.
 */
import { describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import { abortableSleep } from '../../../src/abortable-sleep.js'
import type { Clock } from '../../../src/commands/runtime.js'
import { NO_WRITES, namespaceWrites, quietFingerprint } from '../../support/namespace-fingerprint.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { readSeedScenario } from '../../support/test-cluster.js'
import { seedInputs, seedsDeletedAfterAll, view } from '../chaos/seed-rollout.js'

const seed = seedsDeletedAfterAll()

/** A clock that reads `iso` now and runs on from there in real time. */
function clockAt(iso: string): Clock {
  const offset = Date.parse(iso) - Date.now()
  return { now: () => Date.now() + offset, sleep: abortableSleep }
}

/** The seed's canary Deployment released under another version label (its own name and selector). */
function versionManifest(version: string): string {
  const doc = yaml.load(readSeedScenario('deployment-v2.yaml')) as {
    metadata: { name: string }
    spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } }
  }
  doc.metadata.name = `istio-deployment-${version.replace(/[^a-z0-9]+/g, '-')}`
  doc.spec.selector.matchLabels['istio-test-version'] = version
  doc.spec.template.metadata.labels['istio-test-version'] = version
  return writeManifest(yaml.dump(doc))
}

describe('freeze windows', () => {
  it('a deploy inside a window is refused, naming it and its end, with nothing written; status still works', async () => {
    const s = await seed('guard-freeze')
    const before = await quietFingerprint(s.ns)
    const windows = '2026-12-24 - 2027-01-02 Europe/Berlin\nFri 16:00 - Mon 08:00 Europe/Berlin'
    // Friday 2026-11-27 16:00 in Berlin: the window's first minute.
    const clock = clockAt('2026-11-27T15:00:00Z')
    const { report } = await runAction(seedInputs(s, { 'freeze-windows': windows }), { clock })
    expect(report.result).toBe('unchanged')
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toMatch(
      /^Input 'freeze-windows' refuses this deploy: it is Fri 2026-11-27 16:0\d Europe\/Berlin, inside the freeze window "Fri 16:00 - Mon 08:00 Europe\/Berlin" \(line 2\); the freeze ends Mon 2026-11-30 08:00 Europe\/Berlin \(2026-11-30T07:00:00.000Z\)\./
    )
    const status = await runAction(
      { command: 'status', 'virtual-service': 'istio-virtualservice', namespace: s.ns, 'freeze-windows': windows },
      { clock }
    )
    expect(status.report.error).toBeUndefined()
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })
})

describe('version order', () => {
  it('a semver downgrade is refused with nothing written; allow-downgrade lets it through and the report says so', async () => {
    const s = await seed('guard-downgrade')
    const up = await runAction(seedInputs(s, { manifests: versionManifest('2.0.0'), steps: '50,100' }))
    expect(up.report.error).toBeUndefined()
    expect(up.report.result).toBe('promoted')
    // v1 (the seed's stable) is no semver: not compared, and the log says so.
    expect(up.log.lines).toContain(
      'version-order: semver: the stable "v1" version is not semver (like 1.4.0 or v1.4.0-rc.1), so the versions are not compared (as with version-order: none)'
    )

    const before = await quietFingerprint(s.ns)
    const down = await runAction(seedInputs(s, { manifests: versionManifest('2.0.0-rc.1') }))
    expect(down.report.result).toBe('unchanged')
    expect(down.report.error).toEqual({
      kind: 'PreflightError',
      message:
        `Input 'version-order' is "semver": the new version "2.0.0-rc.1" is older than the stable version "2.0.0" on VirtualService "${s.ns}/istio-virtualservice", so this would be a downgrade. ` +
        `Release a higher version, or set input 'allow-downgrade' to true to roll back on purpose (or 'version-order' to none). Nothing was changed.`
    })
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)

    // Allowed on purpose: a dry run (server-side dry runs only) reports the downgrade.
    const allowed = await runAction(
      seedInputs(s, { manifests: versionManifest('2.0.0-rc.1'), 'allow-downgrade': 'true', 'dry-run': 'true' })
    )
    expect(allowed.report.error).toBeUndefined()
    expect(allowed.report.warnings).toContain(
      `downgrade: 2.0.0-rc.1 is older than the stable 2.0.0 on VirtualService "${s.ns}/istio-virtualservice"; allowed by input 'allow-downgrade'`
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })
})

describe('minimum soak', () => {
  it('a promote to 100 % before the soak is refused with when it is allowed, nothing written; at that time it goes ahead', async () => {
    const s = await seed('guard-soak-manual')
    // The deploy records its min-soak in the rollout state: a promote run without the input keeps it.
    const paused = await runAction(seedInputs(s, { steps: '20,pause,100', 'min-soak': '30m' }))
    expect(paused.report.result).toBe('paused')
    expect(paused.report.state?.minSoakSeconds).toBe(1800)
    const firstTraffic = Date.parse(paused.report.state!.history.find((e) => e.kind === 'weight')!.at)

    const before = await quietFingerprint(s.ns)
    const promote = { command: 'promote', 'virtual-service': 'istio-virtualservice', namespace: s.ns }
    const early = await runAction(promote)
    expect(early.report.result).toBe('unchanged')
    expect(early.report.error?.kind).toBe('PreflightError')
    const allowedFrom = new Date(firstTraffic + 30 * 60_000).toISOString()
    expect(early.report.error?.message).toMatch(
      new RegExp(
        `^Input 'min-soak' is "30m": promoting "v2" to 100 % \\(the next step\\) needs the canary to have served traffic with its gates passing for that long; it has soaked [\\dhms]+ since ${paused.report.state!.history.find((e) => e.kind === 'weight')!.at.replace(/\./g, '\\.')}\\. Promotion to 100 % is allowed from ${allowedFrom.replace(/\./g, '\\.')} \\(in [\\dhms]+\\)\\. Nothing was changed\\.$`
      )
    )
    // 'full' is refused the same way.
    const full = await runAction({ ...promote, full: 'true', 'min-soak': '10m' })
    expect(full.report.error?.message).toContain('promoting "v2" to 100 % (input \'full\')')
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)

    // At the first allowed instant the same promote goes ahead.
    const onTime = await runAction(promote, { clock: clockAt(allowedFrom) })
    expect(onTime.report.error).toBeUndefined()
    expect(onTime.report.result).toBe('promoted')
  })

  it('an automatic rollout holds its last weight below 100 until the soak is met', async () => {
    const s = await seed('guard-soak-auto')
    const { report, log } = await runAction(seedInputs(s, { steps: '20,100', 'min-soak': '5s' }))
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    const history = report.state!.history
    const at = (w: number): number => Date.parse(history.find((e) => e.kind === 'weight' && e.canaryWeight === w)!.at)
    // The schedule alone would shift after one 1s bake; the soak held 20 % for at least 5s.
    expect(at(100) - at(20)).toBeGreaterThanOrEqual(5000)
    expect(log.lines.some((l) => l.startsWith('Holding at 20% until the minimum soak (min-soak 5s) is met: promotion to 100% from '))).toBe(
      true
    )
    expect(history.filter((e) => e.kind === 'gates' && e.canaryWeight === 20).length).toBeGreaterThan(1)
    expect((await view(s.ns)).state?.phase).toBe('promoted')
  })
})
