import { ConfigError } from '../../../src/errors.js'
import type { Step } from '../../../src/rollout/types.js'
import { describeSchedule, formatSchedule, parseSchedule } from '../../../src/config/schedule.js'
import { seededRandom } from '../../support/seeded-random.js'

const w = (weight: number): Step => ({ kind: 'weight', weight })
const pause: Step = { kind: 'pause' }

describe('parseSchedule', () => {
  it.each<[string, Step[]]>([
    ['10,25,50,100', [w(10), w(25), w(50), w(100)]],
    ['10 25 50 100', [w(10), w(25), w(50), w(100)]],
    ['10, 25,\n50 ,100', [w(10), w(25), w(50), w(100)]],
    ['10%,25%,100%', [w(10), w(25), w(100)]],
    ['100', [w(100)]],
    ['1,100', [w(1), w(100)]],
    ['10,pause,100', [w(10), pause, w(100)]],
    ['10 PAUSE 50 Pause 100', [w(10), pause, w(50), pause, w(100)]],
    ['  5,100  ', [w(5), w(100)]]
  ])('reads %j', (value, steps) => {
    expect(parseSchedule(value)).toEqual(steps)
  })

  it.each([
    ['10,50,120', 'weight 120 at position 3 must be between 1 and 100'],
    ['0,100', 'weight 0 at position 1 must be between 1 and 100'],
    ['-10,100', 'weight -10 at position 1 must be between 1 and 100'],
    ['10,12.5,100', 'weight 12.5 at position 2 must be a whole number from 1 to 100'],
    ['10,12.5%,100', 'weight 12.5 at position 2 must be a whole number from 1 to 100'],
    [
      '10,abc,100',
      '"abc" at position 2 is neither a weight from 1 to 100, "pause", nor a step like "header:x-canary=always", "cookie:beta=yes" or "mirror:50"'
    ],
    [
      '10,%,100',
      '"%" at position 2 is neither a weight from 1 to 100, "pause", nor a step like "header:x-canary=always", "cookie:beta=yes" or "mirror:50"'
    ],
    [
      '10,1e2',
      '"1e2" at position 2 is neither a weight from 1 to 100, "pause", nor a step like "header:x-canary=always", "cookie:beta=yes" or "mirror:50"'
    ],
    ['10,,100', 'entry 2 is empty: expected a weight from 1 to 100 or "pause"'],
    ['10,100,', 'entry 3 is empty: expected a weight from 1 to 100 or "pause"'],
    ['', 'expected canary weights ending at 100, like "10,25,50,100"'],
    ['10,50,50,100', 'weight 50 at position 3 repeats position 2: each weight must be higher than the one before'],
    ['10,pause,10,100', 'weight 10 at position 3 repeats position 1: each weight must be higher than the one before'],
    ['10,50,25,100', 'weight 25 at position 3 is lower than 50 at position 2: each weight must be higher than the one before'],
    ['10,25,50', 'the last weight is 50 but must be 100: the last step promotes the canary to all traffic'],
    ['10,pause', 'the last weight is 10 but must be 100: the last step promotes the canary to all traffic'],
    ['pause,10,100', 'pause at position 1 comes before any traffic reaches the canary: put it after a weight, like "10,pause,100"'],
    ['10,pause,pause,100', 'pause at position 3 follows another pause: one pause is enough'],
    ['10,100,pause', 'pause at position 3 comes after 100, when nothing is left to promote']
  ])('rejects %j', (value, reason) => {
    const expected = `Input 'steps' is invalid: ${reason} (got ${JSON.stringify(value)}).`
    expect(() => parseSchedule(value)).toThrow(ConfigError)
    expect(() => parseSchedule(value)).toThrow(expected)
    try {
      parseSchedule(value)
    } catch (e) {
      expect((e as Error).message).toBe(expected)
    }
  })

  it('quotes the whole value, cut when very long', () => {
    const value = `${Array.from({ length: 99 }, (_, i) => i + 1).join(',')},99`
    expect(() => parseSchedule(value)).toThrow(
      /^Input 'steps' is invalid: weight 99 at position 100 repeats position 99: .* \(got "1,2,3,.{180,}…"\)\.$/
    )
  })
})

const header = (name: string, value: string, op: 'exact' | 'regex' = 'exact'): Step => ({
  kind: 'match',
  match: { on: 'header', name, op, value }
})
const cookie = (name: string, value: string, op: 'exact' | 'regex' = 'exact'): Step => ({
  kind: 'match',
  match: { on: 'cookie', name, op, value }
})
const mirror = (percent: number): Step => ({ kind: 'mirror', percent })

describe('parseSchedule: header, cookie and mirror steps', () => {
  it.each<[string, Step[]]>([
    ['header:x-canary=always,10,100', [header('x-canary', 'always'), w(10), w(100)]],
    ['header:X-Canary=always 100', [header('x-canary', 'always'), w(100)]],
    ['header:x-user~^(ann|bob)$,100', [header('x-user', '^(ann|bob)$', 'regex'), w(100)]],
    ['cookie:beta=yes,pause,50,100', [cookie('beta', 'yes'), pause, w(50), w(100)]],
    ['cookie:group~a|b,100', [cookie('group', 'a|b', 'regex'), w(100)]],
    ['mirror:50,100', [mirror(50), w(100)]],
    ['mirror:12.5%,mirror:100,10,100', [mirror(12.5), mirror(100), w(10), w(100)]],
    ['header:x-canary=always,mirror:50,pause,10,100', [header('x-canary', 'always'), mirror(50), pause, w(10), w(100)]],
    ['Header:x-a=b=c,100', [header('x-a', 'b=c'), w(100)]]
  ])('reads %j', (value, steps) => {
    expect(parseSchedule(value)).toEqual(steps)
    expect(parseSchedule(formatSchedule(steps))).toEqual(steps)
  })

  it.each([
    [
      'canary:x=1,100',
      '"canary:x=1" at position 1 has an unknown step kind "canary": expected "header:", "cookie:" or "mirror:" (or a weight, or "pause")'
    ],
    ['mirror:120,100', `"mirror:120" at position 1 mirrors 120 %, but the share must be above 0 and at most 100`],
    ['mirror:0,100', `"mirror:0" at position 1 mirrors 0 %, but the share must be above 0 and at most 100`],
    ['mirror:half,100', `"mirror:half" at position 1 must give a percentage of the stable's requests to mirror, like "mirror:50"`],
    [
      '10,100,header:x-canary=always',
      '"header:x-canary=always" at position 3 comes after weight 100 at position 2: header, cookie and mirror steps come before the first weight, while no random traffic reaches the canary'
    ],
    [
      '10,mirror:50,100',
      '"mirror:50" at position 2 comes after weight 10 at position 1: header, cookie and mirror steps come before the first weight, while no random traffic reaches the canary'
    ],
    ['header:x-canary=always', 'no weight follows: the schedule must end at 100, like "header:x-canary=always,100"'],
    [
      'header:x-canary,100',
      '"header:x-canary" at position 1 must be header:NAME=VALUE (exact) or header:NAME~REGEX, like "header:x-canary=always"'
    ],
    ['header:x-canary=,100', '"header:x-canary=" at position 1 has an empty value: expected a value (or a regex after ~) to match'],
    ['header:x/y=1,100', '"header:x/y=1" at position 1 names header "x/y": expected letters, digits and - _ . only'],
    ['cookie:a;b=1,100', '"cookie:a;b=1" at position 1 names cookie "a;b": expected a cookie name (letters, digits, no = ; or space)'],
    ['header:x~(,100', '"header:x~(" at position 1 has an invalid regex "(" ('],
    ['pause,header:x=1,100', 'pause at position 1 comes before any traffic reaches the canary']
  ])('rejects %j', (value, reason) => {
    expect(() => parseSchedule(value)).toThrow(ConfigError)
    expect(() => parseSchedule(value)).toThrow(`Input 'steps' is invalid: ${reason}`)
    expect(() => parseSchedule(value)).toThrow(`(got ${JSON.stringify(value)}).`)
  })

  it('describes them as written', () => {
    const steps = [header('x-canary', 'always'), mirror(50), w(10), w(100)]
    expect(describeSchedule(steps)).toBe('header:x-canary=always → mirror:50 → 10% → 100%')
    expect(formatSchedule(steps)).toBe('header:x-canary=always,mirror:50,10,100')
  })
})

describe('describeSchedule / formatSchedule', () => {
  it('shows percentages and pauses with arrows', () => {
    expect(describeSchedule([w(10), w(25), pause, w(100)])).toBe('10% → 25% → pause → 100%')
    expect(describeSchedule([w(100)])).toBe('100%')
  })

  it('formats in the canonical input form', () => {
    expect(formatSchedule([w(10), pause, w(100)])).toBe('10,pause,100')
  })
})

/** A seeded PRNG, so a failing case can be replayed from its seed. */
const prng = seededRandom

/** A random valid schedule: increasing weights ending at 100, single pauses between weights. */
function randomSchedule(rand: () => number): Step[] {
  const weights = new Set<number>([100])
  const n = Math.floor(rand() * 8)
  for (let i = 0; i < n; i++) weights.add(1 + Math.floor(rand() * 99))
  const steps: Step[] = []
  for (const weight of [...weights].sort((a, b) => a - b)) {
    if (steps.length > 0 && steps.at(-1)!.kind === 'weight' && rand() < 0.3) steps.push(pause)
    steps.push(w(weight))
  }
  return steps
}

/** Write a schedule the way users might: mixed separators and optional `%`. */
function writeLoosely(steps: Step[], rand: () => number): string {
  const seps = [',', ' ', ', ', '\n', ' , ']
  return steps
    .map((s) => (s.kind === 'pause' ? 'pause' : `${(s as { weight: number }).weight}${rand() < 0.3 ? '%' : ''}`))
    .reduce((acc, tok, i) => (i === 0 ? tok : acc + seps[Math.floor(rand() * seps.length)]! + tok), '')
}

describe('schedule properties (seeded)', () => {
  const SEED = 20240611
  const CASES = 500

  it('random valid schedules round-trip through format/parse and describe', () => {
    const rand = prng(SEED)
    for (let i = 0; i < CASES; i++) {
      const steps = randomSchedule(rand)
      expect(parseSchedule(formatSchedule(steps))).toEqual(steps)
      const loose = writeLoosely(steps, rand)
      const parsed = parseSchedule(loose)
      expect(parsed).toEqual(steps)
      expect(describeSchedule(parsed).split(' → ')).toEqual(
        steps.map((s) => (s.kind === 'pause' ? 'pause' : `${(s as { weight: number }).weight}%`))
      )
    }
  })

  /** Break a valid schedule in one of the ways the rules forbid. */
  const breakers: Array<[string, (s: Step[], rand: () => number) => Step[] | string]> = [
    ['weight over 100', (s, r) => s.map((x) => (x.kind === 'weight' && x.weight === 100 ? w(101 + Math.floor(r() * 1000)) : x))],
    ['weight 0 or negative', (s, r) => [w(-Math.floor(r() * 50)), ...s]],
    [
      'not ending at 100',
      (s) =>
        s
          .slice(
            0,
            s.findIndex((x) => x.kind === 'weight' && x.weight === 100)
          )
          .concat(s.length > 1 ? [] : [w(50)])
    ],
    ['duplicate', (s) => [s[0]!, ...s]],
    [
      'decreasing',
      (s, r) => {
        const high = 2 + Math.floor(r() * 98)
        return [w(high), w(1 + Math.floor(r() * (high - 1))), ...s]
      }
    ],
    ['pause first', (s) => [pause, ...s]],
    ['pause after 100', (s) => [...s, pause]],
    ['two pauses', (s) => [w(1), pause, pause, ...s.filter((x) => x.kind === 'weight' && x.weight > 1)]],
    ['fraction', (s) => formatSchedule(s).replace(/\d+$/, '99.5') + ',100'],
    ['garbage token', (s) => `${formatSchedule(s)},x`]
  ]

  it('random invalid schedules always throw a ConfigError naming steps', () => {
    const rand = prng(SEED + 1)
    for (let i = 0; i < CASES; i++) {
      const [label, breakIt] = breakers[i % breakers.length]!
      const broken = breakIt(randomSchedule(rand), rand)
      const value = typeof broken === 'string' ? broken : formatSchedule(broken)
      let error: unknown
      try {
        parseSchedule(value)
      } catch (e) {
        error = e
      }
      if (!(error instanceof ConfigError)) throw new Error(`case ${i} (${label}): ${JSON.stringify(value)} was accepted`)
      expect(error.message).toMatch(/^Input 'steps' is invalid: .+ \(got ".*"\)\.$/s)
    }
  })
})
