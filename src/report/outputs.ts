import * as core from '@actions/core'
import { renderOneLine } from './render-report.js'
import type { RunReport } from './run-report.js'

/** The step outputs, names spelled once (action.yml declares the same). */
export const OUTPUTS = {
  result: 'promoted | paused | rolled-back | aborted | unchanged',
  phase: 'The rollout phase after this run (empty when there is no rollout state)',
  'canary-weight': 'The canary weight in percent after this run',
  'stable-version': 'The stable version (empty when unknown)',
  'canary-version': 'The canary version (empty when unknown)',
  error: 'The error message when the run ended in an error (empty otherwise)',
  state: 'The rollout state as stored on the VirtualService, compact JSON (empty when there is none)',
  retired: 'true | false: whether the version taken out of service was retired (empty when none was)',
  'retire-blocked-by': 'The routes that still send traffic to the version that was kept, one per line',
  plan: 'Command plan: the plan preview as Markdown, as in the PR comment (empty for other commands)'
} as const

export type OutputName = keyof typeof OUTPUTS

/** The output values of a run (pure). */
export function outputsOf(report: RunReport): Record<OutputName, string> {
  return {
    result: report.result,
    phase: report.phase ?? '',
    'canary-weight': String(report.canaryWeight),
    'stable-version': report.stableVersion ?? '',
    'canary-version': report.canaryVersion ?? '',
    error: report.error ? `${report.error.kind}: ${report.error.message}` : '',
    state: report.state ? JSON.stringify(report.state) : '',
    retired: report.state?.retirement ? String(report.state.retirement.retired) : '',
    'retire-blocked-by': (report.state?.retirement?.heldBy ?? []).join('\n'),
    plan: report.preview?.markdown ?? ''
  }
}

/** Set every step output. */
export function writeOutputs(report: RunReport): void {
  for (const [name, value] of Object.entries(outputsOf(report))) core.setOutput(name, value)
}

/** The annotation of a run: an error when traffic went back or the run failed, else a notice. */
export function annotationOf(report: RunReport): { level: 'notice' | 'error'; title: string; message: string } {
  const failed = report.error !== undefined || report.result === 'rolled-back'
  return {
    level: failed ? 'error' : 'notice',
    title: `istio-canary ${report.command}`,
    message: renderOneLine(report)
  }
}

/**
 * Write the one-line annotation. main.ts, which calls core.setFailed with the error, may skip this
 * for runs with an error to avoid a second error annotation.
 */
export function writeAnnotation(report: RunReport): void {
  const { level, title, message } = annotationOf(report)
  if (level === 'error') core.error(message, { title })
  else core.notice(message, { title })
}
