import * as core from '@actions/core'
import { promises as fs } from 'node:fs'
import { EOL } from 'node:os'
import { errorText } from '../format.js'
import { renderReport, SUMMARY_MAX_LENGTH } from './render-report.js'
import type { RunReport } from './run-report.js'

/**
 * Append the rendered report to this step's job summary. Runs on every run, failed preflights
 * included. Best effort: a missing GITHUB_STEP_SUMMARY (local runs) is an info line, any other
 * failure a warning; it never throws. Returns whether the summary was written.
 *
 * Appends to the file itself, as core.summary.addRaw(markdown, true).write() does: @actions/core's
 * summary module loads node:fs/promises when it is evaluated, before the first API request.
 */
export async function writeJobSummary(report: RunReport, opts: { marker?: string } = {}): Promise<boolean> {
  const file = process.env['GITHUB_STEP_SUMMARY']
  if (!file) {
    core.info('GITHUB_STEP_SUMMARY is not set: no job summary written.')
    return false
  }
  try {
    const markdown = report.preview?.markdown ?? renderReport(report, { marker: opts.marker, maxLength: SUMMARY_MAX_LENGTH })
    await fs.appendFile(file, markdown + EOL, { encoding: 'utf8' })
    return true
  } catch (error) {
    core.warning(`Could not write the job summary: ${errorText(error)}`)
    return false
  }
}
