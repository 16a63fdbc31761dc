import { quote } from '../errors.js'
import { isInFlight, retirementPending } from './planner.js'
import type { Command, RolloutState } from './types.js'

/**
 * What a command may do, given the rollout state it finds: the preconditions of every command in
 * one pure function, beside the planner. Preflight asks it before anything is written (a refusal
 * changes nothing, not even a Lease); the command asks it again under the lock, where it also knows
 * whether the lease was taken over from a run that stopped mid-rollout.
 */

export interface CommandSituation {
  command: Command
  /** The state found on the VirtualService, if any. */
  state?: RolloutState
  /** `namespace/virtual-service`, for the messages. */
  target: string
  /** deploy: the canary version of the manifests; promote / abort: input 'version', when given. */
  version?: string
  /** Input 'full': promote straight to 100 % from any step. */
  full: boolean
  /** Input 'supersede': roll back a rollout of another version, then start this one. */
  supersede: boolean
  /** Under the lock: the lease was taken over from a run that stopped without releasing it. */
  takeover?: boolean
}

/** What to finish first, before the command itself. */
export type Recovery =
  /** A run died mid-rollout: its canary is rolled back first. */
  | 'takeover'
  /** A rollback some earlier run started: finish it, whatever was asked. */
  | 'rolling-back'
  /** Input 'supersede': roll back the other version's rollout first. */
  | 'supersede'
  /** The last rollout kept its old version for routes that still served it: retire it if they moved. */
  | 'retirement'

export type CommandPlan =
  /** Refused before any change: the message says why and what to do (a PreflightError). */
  | { kind: 'refuse'; message: string }
  /** Nothing to do; the run ends with `result`. */
  | { kind: 'nothing'; message: string; result: 'unchanged' | 'paused' }
  /**
   * Carry out `recover` first (if any), then: start a new rollout, resume the one in flight,
   * continue a paused one (promote), abort it, or stop after the recovery.
   */
  | { kind: 'run'; recover?: Recovery; then: 'start' | 'resume' | 'promote' | 'abort' | 'stop'; warnings: string[] }

/** Decide what `situation.command` does. Pure; table-tested in __tests__/unit/rollout/command-plan.test.ts. */
export function planCommand(situation: CommandSituation): CommandPlan {
  const { state, target, version } = situation
  // A plan is judged as the deploy it previews.
  const command = situation.command === 'plan' ? 'deploy' : situation.command
  const inFlight = isInFlight(state)
  const vs = `VirtualService ${quote(target)}`
  if (command === 'status') return { kind: 'nothing', message: `status of ${target}`, result: 'unchanged' }

  if (command !== 'deploy' && inFlight && version !== undefined && version !== state!.canary.version) {
    return refuse(
      `Input 'version' is ${quote(version)} but the rollout in progress on ${vs} is of ${quote(state!.canary.version)}; refusing to ${command} a different version.`
    )
  }
  // A promotion that is done but kept the old version for other routes: promote retires it now.
  if (command === 'promote' && retirementPending(state)) return { kind: 'run', recover: 'retirement', then: 'stop', warnings: [] }
  if (command === 'promote' && !inFlight) {
    return refuse(
      `There is no rollout to promote on ${vs}${state ? ` (the last one, of ${quote(state.canary.version)}, ended ${state.phase})` : ''}.`
    )
  }
  if (command === 'abort' && !inFlight) {
    return { kind: 'nothing', message: `No rollout in progress on ${target}; nothing to abort.`, result: 'unchanged' }
  }
  const otherVersion = command === 'deploy' && inFlight && state!.canary.version !== version
  if (otherVersion && !situation.supersede) {
    return refuse(
      `${vs} is mid-rollout of ${quote(state!.canary.version)} (phase ${state!.phase}, ${state!.canaryWeight}% canary). ` +
        `Promote or abort it first, or set input 'supersede' to true to roll it back and start ${quote(version)}.`
    )
  }

  const recover: Recovery | undefined = !inFlight
    ? undefined
    : situation.takeover && state!.phase !== 'paused'
      ? 'takeover'
      : state!.phase === 'rolling-back'
        ? 'rolling-back'
        : undefined
  const run = (
    then: 'start' | 'resume' | 'promote' | 'abort' | 'stop',
    r: Recovery | undefined = recover,
    warnings: string[] = []
  ): CommandPlan => ({
    kind: 'run',
    ...(r ? { recover: r } : {}),
    then,
    warnings
  })

  switch (command) {
    case 'deploy':
      // After a recovery the old rollout is over: this version starts afresh.
      if (recover) return run('start')
      if (otherVersion) return run('start', 'supersede')
      if (!inFlight) return run('start', retirementPending(state) ? 'retirement' : undefined)
      if (state!.phase === 'paused') {
        return {
          kind: 'nothing',
          message: `The rollout of ${state!.canary.version} is paused at ${state!.canaryWeight}%; run the promote command to continue.`,
          result: 'paused'
        }
      }
      return run('resume')
    case 'promote':
      if (recover) return run('stop')
      // Once the promotion began, promote finishes it.
      if (state!.phase === 'promoting') return run('resume')
      if (state!.phase !== 'paused' && !situation.full) {
        return refuse(
          `The rollout of ${quote(state!.canary.version)} on ${quote(target)} is ${state!.phase}, not paused; promote continues a paused rollout (set input 'full' to true to go straight to 100 %).`
        )
      }
      return run('promote')
    case 'abort':
      if (recover) return run('stop')
      if (state!.phase === 'promoting') {
        return run('abort', undefined, ['abort came after the promotion had begun: the promotion was finished instead'])
      }
      return run('abort')
  }
}

function refuse(message: string): CommandPlan {
  return { kind: 'refuse', message }
}
