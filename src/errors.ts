/**
 * Errors the action raises on purpose. Each says what is wrong with which input or object, quotes
 * the value and says what was expected; main.ts prints `message` as it is.
 */

/** Bad input or configuration: found before any write, nothing in the cluster changed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** The cluster is not in a shape we can work with (missing object, inconsistent routes, RBAC). */
export class PreflightError extends Error {
  override readonly name = 'PreflightError'
}

/** Someone else changed what we own mid-rollout, or holds the lock. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError'
}

/** What we own on the route was changed by someone else (GitOps revert, a person). */
export class DriftError extends Error {
  override readonly name = 'DriftError'
}

/** A later lock holder has written the state: this run must stop writing. */
export class FencedError extends Error {
  override readonly name = 'FencedError'
}

/** The lock is held by another run. */
export class LockedError extends Error {
  override readonly name = 'LockedError'
  constructor(
    message: string,
    readonly holder: string
  ) {
    super(message)
  }
}

/** A rollback that could not finish: the loudest error, it says how to fix things by hand. */
export class RollbackIncompleteError extends Error {
  override readonly name = 'RollbackIncompleteError'
}

/** Quote a user value for an error message: JSON-style quotes, cut when very long. */
export function quote(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value)
  const cut = s.length > 200 ? `${s.slice(0, 200)}…` : s
  return JSON.stringify(cut)
}
