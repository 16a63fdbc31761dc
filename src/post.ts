import * as core from '@actions/core'
import { POST_STATE, run } from './main.js'

// The entry point of `runs.post` (post-if: always()). The main step records `pending` while it may
// leave traffic on the canary; when it was cancelled or killed before finishing, the post step
// finishes the rollback from the state on the VirtualService (the abort command resumes it).
if (core.getState(POST_STATE.pending) === 'true') {
  core.info('The main step did not finish: completing the rollback it started.')
  process.exitCode = await run(process.env, { command: 'abort', dryRun: false })
} else {
  core.debug('Nothing to finish: the main step ended cleanly.')
}
