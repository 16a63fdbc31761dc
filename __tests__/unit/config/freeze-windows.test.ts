import { beforeAll, describe, expect, it } from '@jest/globals'
import { ConfigError } from '../../../src/errors.js'
import { activeFreeze, freezeRefusal, loadTimeZones, parseFreezeWindows } from '../../../src/config/freeze-windows.js'

beforeAll(loadTimeZones)

const at = (iso: string): number => Date.parse(iso)
const endOf = (windows: string, iso: string): string | undefined => {
  const f = activeFreeze(parseFreezeWindows(windows), at(iso))
  return f && new Date(f.endsAtMs).toISOString()
}

function errorOf(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('parseFreezeWindows', () => {
  it('reads weekly and date windows, one per line, skipping blank and # lines', () => {
    const windows = parseFreezeWindows(
      '\n# weekends\nFri 16:00 - Mon 08:00 Europe/Berlin\n\n  2026-12-24 - 2027-01-02 Europe/Berlin  \nsaturday 9:30 - SUNDAY 10:00 utc\n2026-05-01 12:00 - 2026-05-01 18:30 America/New_York\n'
    )
    expect(windows).toEqual([
      {
        kind: 'weekly',
        text: 'Fri 16:00 - Mon 08:00 Europe/Berlin',
        line: 3,
        zone: 'Europe/Berlin',
        start: { weekday: 5, hour: 16, minute: 0 },
        end: { weekday: 1, hour: 8, minute: 0 }
      },
      {
        kind: 'dates',
        text: '2026-12-24 - 2027-01-02 Europe/Berlin',
        line: 5,
        zone: 'Europe/Berlin',
        startMs: at('2026-12-23T23:00:00Z'),
        endMs: at('2027-01-02T23:00:00Z')
      },
      {
        kind: 'weekly',
        text: 'saturday 9:30 - SUNDAY 10:00 utc',
        line: 6,
        zone: 'UTC',
        start: { weekday: 6, hour: 9, minute: 30 },
        end: { weekday: 7, hour: 10, minute: 0 }
      },
      {
        kind: 'dates',
        text: '2026-05-01 12:00 - 2026-05-01 18:30 America/New_York',
        line: 7,
        zone: 'America/New_York',
        startMs: at('2026-05-01T16:00:00Z'),
        endMs: at('2026-05-01T22:30:00Z')
      }
    ])
  })

  it('is empty for an empty input', () => {
    expect(parseFreezeWindows('')).toEqual([])
  })

  const EXPECTED =
    'expected one window per line: a weekly range like "Fri 16:00 - Mon 08:00 Europe/Berlin", or a date range like "2026-12-24 - 2027-01-02 Europe/Berlin" (whole days, the end date included) or "2026-12-24 12:00 - 2027-01-02 08:00 UTC"'
  it.each([
    ['Fri 16:00 - Mon 08:00', `line 1: ${EXPECTED}`],
    [
      'Fri 16:00 - Mon 08:00 Europe/Berlim',
      'line 1: "Europe/Berlim" is not a time zone: expected an IANA name like "Europe/Berlin", "America/New_York" or "UTC"'
    ],
    ['Fry 16:00 - Mon 08:00 UTC', 'line 1: "Fry" is not a day of the week: expected Mon, Tue, Wed, Thu, Fri, Sat or Sun'],
    ['Fri 24:00 - Mon 08:00 UTC', 'line 1: "24:00" is not a time of day: expected 00:00 to 23:59'],
    ['Fri 16:00 - Fri 16:00 UTC', 'line 1: the window starts and ends at the same time: it would be empty, or the whole week'],
    ['2027-01-02 - 2026-12-24 UTC', 'line 1: the window ends before it starts'],
    ['2026-02-30 - 2026-03-02 UTC', 'line 1: "2026-02-30" is not a date: expected YYYY-MM-DD'],
    ['weekends', `line 1: ${EXPECTED}`]
  ])('rejects %j', (line, reason) => {
    expect(errorOf(() => parseFreezeWindows(`# first\n${line}`))).toBe(
      `Input 'freeze-windows' is invalid: ${reason.replace('line 1', 'line 2')} (got ${JSON.stringify(line)}).`
    )
  })
})

describe('activeFreeze: a weekly window, Fri 16:00 - Mon 08:00 Europe/Berlin (CET, UTC+1, in winter)', () => {
  const W = 'Fri 16:00 - Mon 08:00 Europe/Berlin'
  it.each([
    ['2026-11-27T14:59:59Z', undefined], // Fri 15:59:59: the minute before
    ['2026-11-27T15:00:00Z', '2026-11-30T07:00:00.000Z'], // Fri 16:00: the first minute
    ['2026-11-29T12:00:00Z', '2026-11-30T07:00:00.000Z'], // Sunday
    ['2026-11-30T06:59:59Z', '2026-11-30T07:00:00.000Z'], // Mon 07:59:59: the last minute
    ['2026-11-30T07:00:00Z', undefined], // Mon 08:00: open again
    ['2026-12-02T12:00:00Z', undefined] // Wednesday
  ])('at %s ends %s', (now, end) => {
    expect(endOf(W, now)).toBe(end)
  })

  it('follows the wall clock in summer (CEST, UTC+2)', () => {
    expect(endOf(W, '2026-07-03T13:59:00Z')).toBeUndefined() // Fri 15:59 CEST
    expect(endOf(W, '2026-07-03T14:00:00Z')).toBe('2026-07-06T06:00:00.000Z') // Fri 16:00 CEST -> Mon 08:00 CEST
  })
})

describe('activeFreeze across a DST change (Europe/Berlin)', () => {
  it('a window over the autumn change lasts 7 hours of real time for 6 on the wall clock', () => {
    const W = 'Sat 22:00 - Sun 04:00 Europe/Berlin' // 2026-10-25 03:00 CEST -> 02:00 CET
    expect(endOf(W, '2026-10-24T19:59:00Z')).toBeUndefined() // Sat 21:59 CEST
    expect(endOf(W, '2026-10-24T20:00:00Z')).toBe('2026-10-25T03:00:00.000Z') // Sat 22:00 CEST, first minute
    expect(endOf(W, '2026-10-25T02:59:00Z')).toBe('2026-10-25T03:00:00.000Z') // Sun 03:59 CET, last minute
    expect(endOf(W, '2026-10-25T03:00:00Z')).toBeUndefined() // Sun 04:00 CET
  })

  it('a window over the spring change lasts 5 hours of real time', () => {
    const W = 'Sat 22:00 - Sun 04:00 Europe/Berlin' // 2026-03-29 02:00 CET -> 03:00 CEST
    expect(endOf(W, '2026-03-28T20:59:00Z')).toBeUndefined() // Sat 21:59 CET
    expect(endOf(W, '2026-03-28T21:00:00Z')).toBe('2026-03-29T02:00:00.000Z') // first minute
    expect(endOf(W, '2026-03-29T01:59:00Z')).toBe('2026-03-29T02:00:00.000Z') // Sun 03:59 CEST, last minute
    expect(endOf(W, '2026-03-29T02:00:00Z')).toBeUndefined()
  })

  it('an end time the spring change skips ends the window when the clock jumps past it', () => {
    const W = 'Sat 22:00 - Sun 02:30 Europe/Berlin' // Sun 02:30 does not exist on 2026-03-29
    expect(endOf(W, '2026-03-29T00:59:00Z')).toBe('2026-03-29T01:00:00.000Z') // 01:59 CET; next minute is 03:00 CEST
    expect(endOf(W, '2026-03-29T01:00:00Z')).toBeUndefined()
  })

  it('a window on the hour the autumn change repeats covers both passes', () => {
    const W = 'Sun 02:00 - Sun 02:30 Europe/Berlin'
    expect(endOf(W, '2026-10-25T00:00:00Z')).toBe('2026-10-25T00:30:00.000Z') // 02:00 CEST
    expect(endOf(W, '2026-10-25T00:45:00Z')).toBeUndefined() // 02:45 CEST
    expect(endOf(W, '2026-10-25T01:00:00Z')).toBe('2026-10-25T01:30:00.000Z') // 02:00 CET, the second pass
    expect(endOf(W, '2026-10-25T01:29:00Z')).toBe('2026-10-25T01:30:00.000Z')
    expect(endOf(W, '2026-10-25T01:30:00Z')).toBeUndefined()
  })
})

describe('activeFreeze: a date range, whole days with the end date included', () => {
  const W = '2026-12-24 - 2027-01-02 Europe/Berlin'
  it.each([
    ['2026-12-23T22:59:00Z', undefined], // Dec 23 23:59 CET
    ['2026-12-23T23:00:00Z', '2027-01-02T23:00:00.000Z'], // Dec 24 00:00: the first minute
    ['2027-01-02T22:59:00Z', '2027-01-02T23:00:00.000Z'], // Jan 2 23:59: the last minute
    ['2027-01-02T23:00:00Z', undefined] // Jan 3 00:00
  ])('at %s ends %s', (now, end) => {
    expect(endOf(W, now)).toBe(end)
  })

  it('a date range with times ends at its end time, across the spring change', () => {
    const W2 = '2026-03-28 18:00 - 2026-03-29 12:00 Europe/Berlin'
    expect(endOf(W2, '2026-03-28T16:59:00Z')).toBeUndefined()
    expect(endOf(W2, '2026-03-28T17:00:00Z')).toBe('2026-03-29T10:00:00.000Z') // 18:00 CET -> 12:00 CEST
    expect(endOf(W2, '2026-03-29T09:59:00Z')).toBe('2026-03-29T10:00:00.000Z')
    expect(endOf(W2, '2026-03-29T10:00:00Z')).toBeUndefined()
  })
})

describe('overlapping windows', () => {
  it('the freeze lasts until no window covers the time', () => {
    const windows = 'Fri 16:00 - Mon 08:00 Europe/Berlin\n2026-12-24 - 2027-01-02 Europe/Berlin'
    // Fri Jan 1 2027 17:00: the holiday ends Sat Jan 2 24:00, then the weekend holds it to Mon Jan 4 08:00.
    expect(endOf(windows, '2027-01-01T16:00:00Z')).toBe('2027-01-04T07:00:00.000Z')
  })
})

describe('freezeRefusal', () => {
  it('names the window, its line and when the freeze ends, in the zone and in UTC', () => {
    const windows = parseFreezeWindows('2026-12-24 - 2027-01-02 Europe/Berlin\nFri 16:00 - Mon 08:00 Europe/Berlin')
    expect(freezeRefusal(windows, at('2026-11-27T15:30:00Z'), 'deploy')).toBe(
      `Input 'freeze-windows' refuses this deploy: it is Fri 2026-11-27 16:30 Europe/Berlin, inside the freeze window "Fri 16:00 - Mon 08:00 Europe/Berlin" (line 2); ` +
        `the freeze ends Mon 2026-11-30 08:00 Europe/Berlin (2026-11-30T07:00:00.000Z). Deploy and promote are refused until then; abort and status still work. Nothing was changed.`
    )
    expect(freezeRefusal(windows, at('2026-11-30T07:00:00Z'), 'promote')).toBeUndefined()
  })
})
