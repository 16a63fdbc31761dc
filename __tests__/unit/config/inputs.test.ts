/**
 * Every duration, boolean and choice input, whichever reader owns it, reads by config's one grammar
 * and the catalogue's limits: the edges (`1.5s`, `1500ms`, `30s1m`, `yes`, `Deploy`) behave the same everywhere.
 */
import { ConfigError } from '../../../src/errors.js'
import { readConfig } from '../../../src/config/config.js'
import { INPUT, INPUT_NAMES, INPUTS, inputSpec, type InputNameOfKind } from '../../../src/config/inputs.js'
import { booleanInput, durationInput, inputValue } from '../../../src/config/input-reader.js'
import { parseGateConfig } from '../../../src/health/gate-config.js'
import { parseGithubConfig } from '../../../src/report/github-config.js'

const DEPLOY = { [INPUT.manifests]: 'k8s/deployment-v2.yaml', [INPUT.virtualService]: 'reviews' }
const PROMETHEUS = { 'prometheus-url': 'http://prometheus:9090', 'success-rate': '99' }

/** Each duration input read through the reader that owns it, from otherwise valid inputs. */
const READ_DURATION: Record<InputNameOfKind<'duration'>, (value: string) => number | undefined> = {
  interval: (v) => readConfig({ ...DEPLOY, interval: v }).intervalSeconds,
  'progress-deadline': (v) => readConfig({ ...DEPLOY, 'progress-deadline': v }).progressDeadlineSeconds,
  settle: (v) => readConfig({ ...DEPLOY, settle: v }).settleSeconds,
  'lock-duration': (v) => readConfig({ ...DEPLOY, 'lock-duration': v }).lockDurationSeconds,
  'lock-wait': (v) => readConfig({ ...DEPLOY, 'lock-wait': v }).lockWaitSeconds,
  timeout: (v) => readConfig({ ...DEPLOY, timeout: v }).timeoutSeconds,
  'min-soak': (v) => readConfig({ ...DEPLOY, 'min-soak': v }).minSoakSeconds,
  'prometheus-timeout': (v) => parseGateConfig({ ...PROMETHEUS, 'prometheus-timeout': v }).prometheus?.timeoutSeconds,
  'check-every': (v) => parseGateConfig({ 'check-every': v }).checkEverySeconds
}

/** Each boolean input read through the reader that owns it. */
const READ_BOOLEAN: Record<InputNameOfKind<'boolean'>, (value: string) => boolean> = {
  'dry-run': (v) => readConfig({ ...DEPLOY, 'dry-run': v }).dryRun,
  full: (v) => readConfig({ [INPUT.virtualService]: 'reviews', command: 'promote', full: v }).full,
  supersede: (v) => readConfig({ ...DEPLOY, supersede: v }).supersede,
  retry: (v) => readConfig({ ...DEPLOY, retry: v }).retry,
  'allow-downgrade': (v) => readConfig({ ...DEPLOY, 'allow-downgrade': v }).allowDowngrade,
  'pr-comment': (v) => parseGithubConfig({ 'pr-comment': v }, {}).prComment,
  'production-environment': (v) => parseGithubConfig({ 'production-environment': v }, {}).productionEnvironment
}

/** Each choice input read through the reader that owns it, and what it accepts. */
const READ_CHOICE: Record<InputNameOfKind<'choice'>, [(value: string) => unknown, string]> = {
  command: [(v) => readConfig({ ...DEPLOY, command: v }).command, 'deploy, promote, abort, status or plan'],
  retire: [(v) => readConfig({ ...DEPLOY, retire: v }).retire, 'scale-down, delete or keep'],
  'canary-replicas': [(v) => readConfig({ ...DEPLOY, 'canary-replicas': v }).canaryReplicas, 'manifest or proportional'],
  'on-cancel': [(v) => readConfig({ ...DEPLOY, 'on-cancel': v }).onCancel, 'rollback or freeze'],
  'version-order': [(v) => readConfig({ ...DEPLOY, 'version-order': v }).versionOrder, 'semver or none'],
  reporter: [(v) => parseGateConfig({ ...PROMETHEUS, reporter: v }).prometheus?.reporter, 'destination, source or waypoint'],
  'outside-mesh': [(v) => parseGateConfig({ ...PROMETHEUS, 'outside-mesh': v }).prometheus?.outsideMesh, 'warn, fail or ignore'],
  'on-no-data': [(v) => parseGateConfig({ 'on-no-data': v }).policy.onNoData, 'fail, pause or skip']
}

/** The outcome of a read: the value, or the error's message. */
function outcome(read: () => unknown): unknown {
  try {
    return read()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
}

/** What each duration input makes of a second and a half: the seconds, or why its limits refuse it. */
const ONE_AND_A_HALF: Record<InputNameOfKind<'duration'>, number | string> = {
  interval: 1.5,
  'progress-deadline': 1.5,
  settle: 1.5,
  'lock-duration': 'must be at least 15s',
  'lock-wait': 1.5,
  timeout: 'must be at least 1m',
  'min-soak': 1.5,
  'prometheus-timeout': 1.5,
  'check-every': 1.5
}

const durations = Object.keys(READ_DURATION) as InputNameOfKind<'duration'>[]
const booleans = Object.keys(READ_BOOLEAN) as InputNameOfKind<'boolean'>[]

describe('the input catalogue', () => {
  it('has a reader table entry for every duration and boolean input (the Record types make a new one a compile error)', () => {
    expect(durations.sort()).toEqual(INPUT_NAMES.filter((n) => INPUTS[n].kind === 'duration').sort())
    expect(booleans.sort()).toEqual(INPUT_NAMES.filter((n) => INPUTS[n].kind === 'boolean').sort())
    expect(Object.keys(READ_CHOICE).sort()).toEqual(INPUT_NAMES.filter((n) => INPUTS[n].kind === 'choice').sort())
  })

  it('keys INPUT by the camelCase of each name', () => {
    expect(INPUT.virtualService).toBe('virtual-service')
    expect(INPUT.latencyP99VsStable).toBe('latency-p99-vs-stable')
    expect(Object.values(INPUT)).toEqual(INPUT_NAMES)
  })

  it('gives limits only to durations, and every default reads by its own grammar', () => {
    for (const name of INPUT_NAMES) {
      const spec = inputSpec(name)
      expect([name, spec.limits !== undefined]).toEqual([name, spec.kind === 'duration'])
    }
    for (const name of durations)
      expect([name, typeof durationInput({}, name)]).toEqual([name, inputSpec(name).default ? 'number' : 'undefined'])
    for (const name of booleans) expect(['true', 'false']).toContain(inputSpec(name).default)
  })

  it('takes the default for an empty or missing input, and trims', () => {
    expect(inputValue({}, 'interval')).toBe('1m')
    expect(inputValue({ interval: '  ' }, 'interval')).toBe('1m')
    expect(inputValue({ interval: ' 2m ' }, 'interval')).toBe('2m')
    expect(inputValue({}, 'timeout')).toBe('')
    expect(booleanInput({}, 'pr-comment')).toBe(true)
  })
})

describe.each(durations)('duration input %s', (name) => {
  const read = READ_DURATION[name]

  it('reads 1.5s and 1500ms alike: a second and a half, or the same refusal', () => {
    const expected = ONE_AND_A_HALF[name]
    expect(outcome(() => read('1.5s'))).toBe(
      typeof expected === 'number' ? expected : `Input '${name}' is invalid: ${expected} (got "1.5s").`
    )
    expect(outcome(() => read('1500ms'))).toBe(
      typeof expected === 'number' ? expected : `Input '${name}' is invalid: ${expected} (got "1500ms").`
    )
  })

  it('refuses 30s1m, naming the input and the order', () => {
    expect(outcome(() => read('30s1m'))).toBe(
      `Input '${name}' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms", with each unit once and the largest first (write "1m30s", not "30s1m") (got "30s1m").`
    )
  })

  it('reads 1m30s as 90 seconds', () => {
    expect(read('1m30s')).toBe(90)
  })

  it('refuses a word', () => {
    expect(outcome(() => read('soon'))).toBe(
      `Input '${name}' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "soon").`
    )
  })
})

describe.each(Object.keys(READ_CHOICE) as InputNameOfKind<'choice'>[])('choice input %s', (name) => {
  const [read, expected] = READ_CHOICE[name]

  it('reads its default, and every value it lists, as written', () => {
    expect(read('')).toBe(inputSpec(name).default)
    for (const value of expected.split(/, | or /)) expect(read(value)).toBe(value)
  })

  it.each(['nonsense', 'Deploy', 'WARN'])('refuses %j, naming the input and the choices', (value) => {
    expect(outcome(() => read(value))).toBe(`Input '${name}' is invalid: expected ${expected} (got "${value}").`)
  })
})

describe.each(booleans)('boolean input %s', (name) => {
  const read = READ_BOOLEAN[name]

  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['FALSE', false]
  ])('reads %j', (value, expected) => {
    expect(read(value)).toBe(expected)
  })

  it.each(['yes', 'on', '1', 'no'])('refuses %j, naming the input', (value) => {
    expect(outcome(() => read(value))).toBe(`Input '${name}' is invalid: expected true or false (got "${value}").`)
  })
})
