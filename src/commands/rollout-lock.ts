/** What the commands need of the lock (LeaseLock in src/cluster/ is the implementation). */
export interface RolloutLock {
  /**
   * Takes the lock or throws LockedError naming the holder. `epoch` fences every later write;
   * `epochFloor` keeps it above any epoch already written into the rollout state.
   */
  acquire(opts?: { epochFloor?: number }): Promise<{ epoch: number; takeover: boolean; previousHolder?: string }>
  /** Renews in the background until release; `onLost` is called if another run took it. */
  startRenewing(intervalMs?: number, onLost?: (err: Error) => void): void
  release(): Promise<unknown>
  /** Another run's live hold on the lock (holder, lease end), or undefined when acquire would not be refused. */
  otherHolder(): Promise<{ holder: string; until: Date } | undefined>
  /** The Lease as `namespace/name`, for the log. */
  readonly namespace: string
  readonly name: string
}
