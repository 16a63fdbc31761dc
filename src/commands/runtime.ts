/** The runtime the commands need besides the cluster: time, logging, cancellation. */
import { abortableSleep } from '../abortable-sleep.js'

export interface Clock {
  now(): number
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export interface Log {
  info(message: string): void
  warning(message: string): void
  error(message: string): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: abortableSleep
}

/** A log that keeps every line (tests, and the scan that no secret reaches the log). */
export class MemoryLog implements Log {
  readonly lines: string[] = []
  info(message: string): void {
    this.lines.push(message)
  }
  warning(message: string): void {
    this.lines.push(`warning: ${message}`)
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`)
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString()
}

/** The reason a run was cancelled (SIGINT/SIGTERM), carried by the abort signal. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError'
  constructor(readonly signalName: string) {
    super(`run cancelled (${signalName})`)
  }
}
