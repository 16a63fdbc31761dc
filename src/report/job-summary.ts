import * as core from '@actions/core'
import { errorText } from '../format.js'
import { renderReport, SUMMARY_MAX_LENGTH } from './render-report.js'
import type { RunReport } from './run-report.js'

/**
 * Append the rendered report to this step's job summary. Runs on every run, failed preflights
 * included. Best effort: a missing GITHUB_STEP_SUMMARY (local runs) is an info line, any other
 * failure a warning; it never throws. Returns whether the summary was written.
 */
export async function writeJobSummary(report: RunReport, opts: { marker?: string } = {}): Promise<boolean> {
  if (!process.env['GITHUB_STEP_SUMMARY']) {
    core.info('GITHUB_STEP_SUMMARY is not set: no job summary written.')
    return false
  }
  try {
    const markdown = report.preview?.markdown ?? renderReport(report, { marker: opts.marker, maxLength: SUMMARY_MAX_LENGTH })
    await core.summary.addRaw(markdown, true).write()
    return true
  } catch (error) {
    core.warning(`Could not write the job summary: ${errorText(error)}`)
    return false
  } finally {
    // A failed write leaves the buffer filled; the next write must not repeat it.
    core.summary.emptyBuffer()
  }
}
