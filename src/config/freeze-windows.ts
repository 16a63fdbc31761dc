/**
 * Freeze windows as the rest of the action sees them. The rules (parsing, the wall clock of a zone,
 * DST) are in freeze-window-rules.ts with the time zone library; both are loaded only by runs that
 * have freeze windows (loadTimeZones), so the others pay nothing at start-up. Without windows every
 * function here answers without them.
 */
import type { ActiveFreeze, FreezeWindow, WeekMinute } from './freeze-window-rules.js'

export type { ActiveFreeze, FreezeWindow, WeekMinute }

let rules: typeof import('./freeze-window-rules.js') | undefined

/** Loads the rules and the time zone library; call (and await) it once before the functions below meet a window. */
export async function loadTimeZones(): Promise<void> {
  rules ??= await import('./freeze-window-rules.js')
}

function loaded(): typeof import('./freeze-window-rules.js') {
  if (!rules) throw new Error('freeze windows: loadTimeZones() was not awaited before the first use')
  return rules
}

/** Parse the 'freeze-windows' input (see freeze-window-rules.ts); empty: none. */
export function parseFreezeWindows(value: string): FreezeWindow[] {
  return value.trim() === '' ? [] : loaded().parseFreezeWindows(value)
}

/** The window covering `nowMs`, if any, and the first instant after it that no window covers. */
export function activeFreeze(windows: readonly FreezeWindow[], nowMs: number): ActiveFreeze | undefined {
  return windows.length === 0 ? undefined : loaded().activeFreeze(windows, nowMs)
}

/** The refusal of a deploy or promote during a freeze, or undefined outside every window. */
export function freezeRefusal(windows: readonly FreezeWindow[], nowMs: number, command: string): string | undefined {
  return windows.length === 0 ? undefined : loaded().freezeRefusal(windows, nowMs, command)
}
