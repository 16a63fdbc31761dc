import * as core from '@actions/core'
import { describeFailure, requestTimeout, runUrlOf, type GithubClient, type GithubRunContext } from './github-client.js'
import { renderOneLine } from './render-report.js'
import type { RunReport } from './run-report.js'

/** The states this action sets (a subset of what the Deployments API accepts). */
export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error' | 'inactive'

export interface DeploymentTarget {
  octokit: GithubClient
  context: GithubRunContext
  environment: string
  productionEnvironment: boolean
}

/** GitHub cuts a deployment status description at 140 characters. */
export const DESCRIPTION_MAX = 140

/** The final deployment state of a run. A paused rollout is still in progress. */
export function deploymentStateOf(report: RunReport): DeploymentState {
  if (report.error && report.result === 'unchanged') return 'error'
  switch (report.result) {
    case 'promoted':
      return 'success'
    case 'paused':
      return 'in_progress'
    case 'rolled-back':
    case 'aborted':
      return 'failure'
    case 'unchanged':
      return 'success'
  }
}

function description(text: string): string {
  return text.length <= DESCRIPTION_MAX ? text : `${text.slice(0, DESCRIPTION_MAX - 1)}…`
}

/**
 * Create one deployment for this run (ref = the commit, never auto-merged, no required
 * contexts). Returns its id, or undefined (with a warning) when GitHub refused or was unreachable.
 */
export async function createDeployment(target: DeploymentTarget, report: RunReport, ref = target.context.sha): Promise<number | undefined> {
  const { octokit, context } = target
  try {
    const res = await octokit.rest.repos.createDeployment({
      ...context.repo,
      ref,
      environment: target.environment,
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
      production_environment: target.productionEnvironment,
      description: description(
        `istio-canary ${report.command} of ${report.canaryVersion ?? 'canary'} on ${report.namespace}/${report.virtualService}`
      ),
      payload: {
        virtualService: report.virtualService,
        namespace: report.namespace,
        ...(report.canaryVersion ? { canaryVersion: report.canaryVersion } : {})
      },
      ...requestTimeout()
    })
    // 202 carries a merge message instead of a deployment (only with auto_merge, which we turn off).
    const id = (res.data as { id?: unknown }).id
    if (typeof id !== 'number') {
      core.warning(`GitHub did not create a deployment for ${target.environment}: ${JSON.stringify(res.data).slice(0, 200)}`)
      return undefined
    }
    return id
  } catch (error) {
    core.warning(describeFailure(error, `Could not create a GitHub deployment for environment '${target.environment}'`))
    return undefined
  }
}

/** Set a deployment's status (best effort: warning on failure). Returns whether it was set. */
export async function setDeploymentStatus(
  target: DeploymentTarget,
  deploymentId: number,
  state: DeploymentState,
  text: string,
  logUrl = runUrlOf(target.context)
): Promise<boolean> {
  const { octokit, context } = target
  try {
    await octokit.rest.repos.createDeploymentStatus({
      ...context.repo,
      deployment_id: deploymentId,
      state,
      description: description(text),
      environment: target.environment,
      ...(logUrl ? { log_url: logUrl } : {}),
      auto_inactive: true,
      ...requestTimeout()
    })
    return true
  } catch (error) {
    core.warning(describeFailure(error, `Could not set the status of GitHub deployment ${deploymentId} to ${state}`))
    return false
  }
}

/** The status description of a finished run (one line, ≤ 140 characters). */
export function deploymentDescription(report: RunReport): string {
  return description(renderOneLine(report, DESCRIPTION_MAX).replace(/^istio-canary: /, ''))
}
