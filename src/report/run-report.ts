import type { Command, Phase, Result, RolloutState, Step } from '../rollout/types.js'

export type { Command }

/**
 * Everything the reports (job summary, PR comment, Deployments status, outputs) know about one run.
 * Built by the commands; rendered by pure functions.
 */
export interface RunReport {
  command: Command
  namespace: string
  virtualService: string
  /** `unchanged` also for a failed preflight (nothing in the cluster changed). */
  result: Result
  /** The phase the rollout is in after this run (absent when there is no rollout state at all). */
  phase?: Phase
  canaryWeight: number
  stableVersion?: string
  canaryVersion?: string
  /** The rollout's state as stored on the VirtualService after this run. */
  state?: RolloutState
  /** A deploy whose version is already stable, its Deployment as the manifest says: nothing was written. */
  alreadyStable?: { version: string; deployment: string }
  /** Set when the run ended in an error (preflight, rollback incomplete, ...). */
  error?: { kind: string; message: string }
  /** What was undone on failure, in order (e.g. `canary weight 0`, `destination v2 removed`). */
  undone?: string[]
  warnings: string[]
  dryRun: boolean
  /** Dry-run plan lines, e.g. `set weights v1=90 v2=10`. */
  plan?: string[]
  /** Where this run is (GITHUB_SERVER_URL/REPO/actions/runs/ID), when known. */
  runUrl?: string
  startedAt: string
  finishedAt: string
  /** Kubernetes API requests this run made (retries included). */
  apiRequests?: number
  /** What the run was configured with: the head says "step k of n", the next step's time, "failed 1 of 3". */
  rollout?: RolloutSettings
  /** Where the run lives on GitHub, for the links and the exact next command (set by the reporter). */
  links?: RunLinks
  /** Command plan: the rendered preview (with the sticky comment's marker), which the comment and summary show instead of a report. */
  preview?: { markdown: string }
}

export interface RolloutSettings {
  schedule: Step[]
  /** Bake time per weight step. */
  intervalSeconds: number
  /** Failed evaluations that trigger the rollback. */
  failureThreshold: number
}

export interface RunLinks {
  /** `https://github.com` (GitHub Enterprise: its own). */
  serverUrl?: string
  /** `owner/repo`. */
  repository?: string
  /** The workflow file of this run (`release.yml`), from GITHUB_WORKFLOW_REF. */
  workflow?: string
  /** The branch or tag the workflow ran from (`main`). */
  ref?: string
  /** This run's commit (the release's commit is `state.commit` when known). */
  sha?: string
}
