/**
 * Taking the per-VirtualService lock, and (input `lock-wait`) waiting for it while another run
 * holds it. The default fails at once naming the holder; with a wait the holder is named in the
 * log while waiting, and everything preflight judged is judged again once the lock is free,
 * because the run that held it has changed the VirtualService in the meantime.
 */
import { formatDuration } from '../config/duration.js'
import type { Config } from '../config/config.js'
import { LockedError, PreflightError } from '../errors.js'
import { freezeRefusal } from '../config/freeze-windows.js'
import { stateOf } from '../rollout/state-codec.js'
import { preflight, type Preflight } from './preflight.js'
import type { RolloutLock } from './rollout-lock.js'
import type { CommandDeps } from './command-deps.js'
import { iso } from './runtime.js'

/** How often a waiting run looks at the Lease (one GET each time). */
export const LOCK_POLL_MS = 3_000
/** How often the log repeats who holds the lock while nothing changes. */
const LOG_EVERY_MS = 60_000

export interface LockTaken {
  pre: Preflight
  lock: RolloutLock
  acquired: { epoch: number; takeover: boolean; previousHolder?: string }
}

/**
 * The refusal of a deploy or promote inside a freeze window at this instant, else undefined. Asked
 * before the lock and again after every wait for it: a run that waited may have run into a window.
 */
export function frozenNow(config: Config, deps: CommandDeps): string | undefined {
  if (config.command !== 'deploy' && config.command !== 'promote') return undefined
  return freezeRefusal(config.freezeWindows, deps.clock.now(), config.command)
}

/** Whether this command takes the lock at all (status and dry runs never write). */
function wantsWait(config: Config): boolean {
  return config.lockWaitSeconds > 0 && config.command !== 'status' && !config.dryRun
}

/**
 * Preflight; with `lock-wait`, a preflight that fails while another run holds the lock (e.g. "the
 * VirtualService is mid-rollout") waits for that run and is judged again. Throws what preflight throws.
 */
export async function preflightWaitingForLock(
  config: Config,
  deps: CommandDeps,
  deadline = deps.clock.now() + config.lockWaitSeconds * 1000
): Promise<Preflight> {
  for (;;) {
    try {
      return await preflight(config, deps)
    } catch (err) {
      if (!wantsWait(config) || !(err instanceof PreflightError)) throw err
      // The namespace preflight would use, as far as it is known without the manifest.
      const lock = deps.makeLock(config.namespace ?? deps.defaultNamespace ?? 'default', config.virtualService)
      const held = await lock.otherHolder().catch(() => undefined)
      if (!held) throw err
      deps.log.info(`Preflight: ${err.message}`)
      if (!(await waitWhileHeld(config, deps, lock, deadline))) throw err
    }
  }
}

/**
 * Takes the lock for `first` (the preflight already made). Returns the lock and the preflight that
 * holds under it (made again when the rollout state moved before we got the lock), or the error
 * that ends the run with nothing changed: LockedError, or the new preflight's error.
 */
export async function takeLock(
  config: Config,
  deps: CommandDeps,
  first: Preflight
): Promise<LockTaken | { error: unknown; pre: Preflight }> {
  const deadline = deps.clock.now() + config.lockWaitSeconds * 1000
  let pre = first
  for (let round = 0; ; round++) {
    const lock = deps.makeLock(pre.namespace, config.virtualService)
    let acquired: LockTaken['acquired']
    try {
      acquired = await lock.acquire({ epochFloor: (pre.state?.epoch ?? 0) + 1 })
    } catch (err) {
      if (!(err instanceof LockedError)) throw err
      if (!wantsWait(config)) return { error: err, pre }
      try {
        if (!(await waitWhileHeld(config, deps, lock, deadline))) {
          return {
            error: new LockedError(
              `${err.message} Waited ${formatDuration(config.lockWaitSeconds)} (input 'lock-wait') without getting it.`,
              err.holder
            ),
            pre
          }
        }
        pre = await preflightWaitingForLock(config, deps, deadline)
        // Before the Lease is written, so a run refused here writes nothing.
        const frozen = frozenNow(config, deps)
        if (frozen) return { error: new PreflightError(frozen), pre }
      } catch (waitErr) {
        return { error: waitErr, pre }
      }
      continue
    }
    // Another run may have finished (and changed the rollout state) between our preflight and the
    // lock: what preflight decided is only good for the state it saw.
    let moved: boolean
    try {
      const vs = await deps.cluster.getIstio('VirtualService', pre.namespace, config.virtualService)
      moved = JSON.stringify(vs ? stateOf(vs) : undefined) !== JSON.stringify(pre.state)
      if (moved) pre = await preflight(config, deps)
    } catch (err) {
      await lock.release().catch(() => undefined)
      return { error: err, pre }
    }
    if (moved && (pre.state?.epoch ?? 0) >= acquired.epoch && round < 3) {
      // Our epoch must be above every epoch already written: take the lock again with a higher floor.
      await lock.release().catch(() => undefined)
      continue
    }
    deps.log.info(`Lock taken: Lease ${pre.namespace}/${lock.name}, holder ${JSON.stringify(deps.holder)} (epoch ${acquired.epoch})`)
    return { pre, lock, acquired }
  }
}

/**
 * Polls the Lease until no other run holds it (true) or the deadline passes (false), naming the
 * holder in the log when it changes and once a minute. Rejects when the run is cancelled.
 */
async function waitWhileHeld(config: Config, deps: CommandDeps, lock: RolloutLock, deadline: number): Promise<boolean> {
  let lastHolder: string | undefined
  let loggedAt = 0
  for (;;) {
    const held = await lock.otherHolder()
    if (!held) return true
    const now = deps.clock.now()
    if (now >= deadline) return false
    if (held.holder !== lastHolder || now - loggedAt >= LOG_EVERY_MS) {
      deps.log.info(
        `Waiting for the lock on VirtualService ${lock.namespace}/${config.virtualService}: held by ${JSON.stringify(held.holder)} ` +
          `(Lease ${lock.namespace}/${lock.name}, until ${held.until.toISOString()} unless renewed); lock-wait ends ${iso(deadline)}.`
      )
      lastHolder = held.holder
      loggedAt = now
    }
    await deps.clock.sleep(Math.min(LOCK_POLL_MS, deadline - now), deps.signal)
  }
}
