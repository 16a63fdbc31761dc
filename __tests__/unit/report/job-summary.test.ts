import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { EOL, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, test } from '@jest/globals'
import { writeJobSummary } from '../../../src/report/job-summary.js'
import { renderReport, SUMMARY_MAX_LENGTH } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { captureWorkflowCommands, type CapturedCommands } from './workflow-commands.js'

const report: RunReport = {
  command: 'status',
  namespace: 'shop',
  virtualService: 'reviews',
  result: 'unchanged',
  canaryWeight: 0,
  warnings: [],
  dryRun: false,
  startedAt: '2026-11-30T08:00:00.000Z',
  finishedAt: '2026-11-30T08:00:01.000Z'
}

let saved: string | undefined
let captured: CapturedCommands
beforeEach(() => {
  saved = process.env['GITHUB_STEP_SUMMARY']
  captured = captureWorkflowCommands()
})
afterEach(() => {
  captured.restore()
  if (saved === undefined) delete process.env['GITHUB_STEP_SUMMARY']
  else process.env['GITHUB_STEP_SUMMARY'] = saved
})

test('appends the rendered report and a line end after what earlier steps wrote', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'summary-')), 'summary.md')
  writeFileSync(file, '# an earlier step\n')
  process.env['GITHUB_STEP_SUMMARY'] = file
  await expect(writeJobSummary(report)).resolves.toBe(true)
  await expect(writeJobSummary(report)).resolves.toBe(true)
  const md = renderReport(report, { maxLength: SUMMARY_MAX_LENGTH })
  expect(readFileSync(file, 'utf8')).toBe(`# an earlier step\n${md}${EOL}${md}${EOL}`)
})

test('without GITHUB_STEP_SUMMARY it writes nothing and says so', async () => {
  delete process.env['GITHUB_STEP_SUMMARY']
  await expect(writeJobSummary(report)).resolves.toBe(false)
  expect(captured.lines).toContain('GITHUB_STEP_SUMMARY is not set: no job summary written.')
})

test('a summary path it cannot write is a warning, not a failure', async () => {
  process.env['GITHUB_STEP_SUMMARY'] = mkdtempSync(join(tmpdir(), 'summary-dir-'))
  await expect(writeJobSummary(report)).resolves.toBe(false)
  expect(captured.of('warning').join('\n')).toMatch(/^::warning::Could not write the job summary: .*EISDIR/)
})
