import * as Luxon from 'luxon'
import { quote } from '../errors.js'
import { INPUT } from './inputs.js'
import { inputError } from './input-error.js'

/**
 * A time during which deploy and promote refuse. Wall-clock times in an IANA time zone; the time
 * zone database and DST come from luxon (the Intl API), never from our own arithmetic.
 */
export type FreezeWindow =
  /** Every week from `start` to `end` (minutes since Monday 00:00, local time); wraps over Sunday night when end < start. */
  | { kind: 'weekly'; text: string; line: number; zone: string; start: WeekMinute; end: WeekMinute }
  /** Once, from `startMs` (inclusive) to `endMs` (exclusive), both resolved in `zone`. */
  | { kind: 'dates'; text: string; line: number; zone: string; startMs: number; endMs: number }

/** A wall-clock time of the week: ISO weekday (1 = Monday) and time. */
export interface WeekMinute {
  weekday: number
  hour: number
  minute: number
}

// Loaded with luxon only by runs that have freeze windows (freeze-windows.ts): the others pay nothing.
function tz(): typeof Luxon {
  return Luxon
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
const FULL_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']
const EXPECTED =
  'expected one window per line: a weekly range like "Fri 16:00 - Mon 08:00 Europe/Berlin", or a date range like ' +
  '"2026-12-24 - 2027-01-02 Europe/Berlin" (whole days, the end date included) or "2026-12-24 12:00 - 2027-01-02 08:00 UTC"'

const TIME = '(\\d{1,2}):(\\d{2})'
const WEEKLY = new RegExp(`^([A-Za-z]+)\\s+${TIME}\\s*-\\s*([A-Za-z]+)\\s+${TIME}\\s+(\\S+)$`)
const DATES = new RegExp(`^(\\d{4}-\\d{2}-\\d{2})(?:\\s+${TIME})?\\s+-\\s+(\\d{4}-\\d{2}-\\d{2})(?:\\s+${TIME})?\\s+(\\S+)$`)

/**
 * Parse the 'freeze-windows' input: one window per line, blank lines and `#` comment lines ignored.
 * A weekly window's end is the first minute allowed again (`Fri 16:00 - Mon 08:00`: frozen from
 * Friday 16:00 through Monday 07:59). A date range without times covers whole days, its end date
 * included; with times, the end time is the first minute allowed again.
 */
export function parseFreezeWindows(value: string): FreezeWindow[] {
  const windows: FreezeWindow[] = []
  value.split(/\r?\n/).forEach((raw, i) => {
    const text = raw.trim()
    if (text === '' || text.startsWith('#')) return
    windows.push(parseWindow(text, i + 1))
  })
  return windows
}

function parseWindow(text: string, line: number): FreezeWindow {
  const fail = (reason: string): never => {
    throw inputError(INPUT.freezeWindows, `line ${line}: ${reason}`, text)
  }
  const zoneOf = (zone: string): string => {
    if (zone.toUpperCase() === 'UTC') return 'UTC'
    if (!tz().IANAZone.isValidZone(zone))
      fail(`${quote(zone)} is not a time zone: expected an IANA name like "Europe/Berlin", "America/New_York" or "UTC"`)
    return zone
  }
  const time = (h: string, m: string): { hour: number; minute: number } => {
    const hour = Number(h)
    const minute = Number(m)
    if (hour > 23 || minute > 59) fail(`${quote(`${h}:${m}`)} is not a time of day: expected 00:00 to 23:59`)
    return { hour, minute }
  }
  const weekly = WEEKLY.exec(text)
  if (weekly) {
    const [, d1, h1, m1, d2, h2, m2, z] = weekly as unknown as string[]
    const day = (d: string): number => {
      const i = Math.max(DAYS.indexOf(d.toLowerCase()), FULL_DAYS.indexOf(d.toLowerCase()))
      if (i < 0) fail(`${quote(d)} is not a day of the week: expected Mon, Tue, Wed, Thu, Fri, Sat or Sun`)
      return i + 1
    }
    const start = { weekday: day(d1!), ...time(h1!, m1!) }
    const end = { weekday: day(d2!), ...time(h2!, m2!) }
    if (weekMinutes(start) === weekMinutes(end)) fail('the window starts and ends at the same time: it would be empty, or the whole week')
    return { kind: 'weekly', text, line, zone: zoneOf(z!), start, end }
  }
  const dates = DATES.exec(text)
  if (dates) {
    const [, day1, h1, m1, day2, h2, m2, z] = dates as unknown as Array<string | undefined>
    const zone = zoneOf(z!)
    const at = (day: string, h: string | undefined, m: string | undefined, endOfRange: boolean): number => {
      const d = tz().DateTime.fromISO(day!, { zone })
      if (!d.isValid) fail(`${quote(day)} is not a date: expected YYYY-MM-DD`)
      // A bare end date is frozen through the whole day: the window ends when the next day starts.
      if (h === undefined) return (endOfRange ? d.plus({ days: 1 }) : d).toMillis()
      return d.set(time(h, m!)).toMillis()
    }
    const startMs = at(day1!, h1, m1, false)
    const endMs = at(day2!, h2, m2, true)
    if (endMs <= startMs) fail('the window ends before it starts')
    return { kind: 'dates', text, line, zone, startMs, endMs }
  }
  return fail(EXPECTED)
}

function weekMinutes(w: WeekMinute): number {
  return (w.weekday - 1) * 1440 + w.hour * 60 + w.minute
}

/** Whether the wall clock of `w`'s zone at `ms` is inside weekly window `w`. */
function insideWeekly(w: Extract<FreezeWindow, { kind: 'weekly' }>, ms: number): boolean {
  const local = tz().DateTime.fromMillis(ms, { zone: w.zone })
  const m = weekMinutes({ weekday: local.weekday, hour: local.hour, minute: local.minute })
  const s = weekMinutes(w.start)
  const e = weekMinutes(w.end)
  return s < e ? m >= s && m < e : m >= s || m < e
}

const MINUTE = 60_000

/** When `w` ends if it is active at `nowMs`, else undefined. */
function activeUntil(w: FreezeWindow, nowMs: number): number | undefined {
  if (w.kind === 'dates') return nowMs >= w.startMs && nowMs < w.endMs ? w.endMs : undefined
  if (!insideWeekly(w, nowMs)) return undefined
  // The next time the wall clock shows the end time: calendar days, so DST moves the instant, not the time.
  const local = tz().DateTime.fromMillis(nowMs, { zone: w.zone })
  const daysAhead = (w.end.weekday - local.weekday + 7) % 7
  const day = daysAhead === 0 ? local : local.startOf('day').plus({ days: daysAhead })
  let end = day.set({ hour: w.end.hour, minute: w.end.minute, second: 0, millisecond: 0 }).toMillis()
  if (end <= nowMs) end = tz().DateTime.fromMillis(end, { zone: w.zone }).plus({ weeks: 1 }).toMillis()
  // An end time the DST change skips (or repeats) lands off the wall time: settle on the first minute
  // the zone's clock is outside the window, a few steps around luxon's answer.
  for (let i = 0; i < 24 * 60 && insideWeekly(w, end); i++) end += MINUTE
  for (let i = 0; i < 24 * 60 && end - MINUTE > nowMs && !insideWeekly(w, end - MINUTE); i++) end -= MINUTE
  return end
}

/** The freeze in force at an instant: the window, and when deploys are allowed again (overlapping windows followed). */
export interface ActiveFreeze {
  window: FreezeWindow
  /** The first instant no window covers. */
  endsAtMs: number
}

/** The window covering `nowMs`, if any, and the first instant after it that no window covers. */
export function activeFreeze(windows: readonly FreezeWindow[], nowMs: number): ActiveFreeze | undefined {
  const first = windows.find((w) => activeUntil(w, nowMs) !== undefined)
  if (!first) return undefined
  let t = nowMs
  // Each hop moves past one window's end; more hops than windows would mean they cover all time.
  for (let hop = 0; hop <= windows.length; hop++) {
    const ends = windows.map((w) => activeUntil(w, t)).filter((e): e is number => e !== undefined)
    if (ends.length === 0) break
    t = Math.max(...ends)
  }
  return { window: first, endsAtMs: t }
}

/** An instant as a reader in the window's zone sees it: `Mon 2026-11-30 08:00 Europe/Berlin`. */
export function formatInZone(ms: number, zone: string): string {
  return `${tz().DateTime.fromMillis(ms, { zone }).toFormat('ccc yyyy-LL-dd HH:mm', { locale: 'en' })} ${zone}`
}

/**
 * The refusal of a deploy or promote during a freeze, or undefined outside every window. Abort and
 * status never ask: they must always work.
 */
export function freezeRefusal(windows: readonly FreezeWindow[], nowMs: number, command: string): string | undefined {
  const freeze = activeFreeze(windows, nowMs)
  if (!freeze) return undefined
  const { window: w, endsAtMs } = freeze
  const until = `${formatInZone(endsAtMs, w.zone)} (${new Date(endsAtMs).toISOString()})`
  return (
    `Input '${INPUT.freezeWindows}' refuses this ${command}: it is ${formatInZone(nowMs, w.zone)}, inside the freeze window ${quote(w.text)} (line ${w.line}); ` +
    `the freeze ends ${until}. Deploy and promote are refused until then; abort and status still work. Nothing was changed.`
  )
}
