import { ConfigError } from '../../../src/errors.js'
import { readBoolean } from '../../../src/config/boolean.js'
import { readConfig, splitList } from '../../../src/config/config.js'
import { INPUT, INPUTS } from '../../../src/config/inputs.js'
import { loadTimeZones } from '../../../src/config/freeze-windows.js'

beforeAll(loadTimeZones)

/** The inputs as the runner gives them: every core input present, '' when not set. */
function inputs(set: Record<string, string> = {}): Record<string, string> {
  const all: Record<string, string> = Object.fromEntries(Object.values(INPUT).map((name) => [name, '']))
  return { ...all, [INPUT.manifests]: 'k8s/deployment-v2.yaml', [INPUT.virtualService]: 'istio-virtualservice', ...set }
}

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
  - name: c
    cluster: {server: "https://127.0.0.1:6443"}
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: secret-token-value}}]
`

function errorOf(f: () => unknown): ConfigError {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return e as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('readConfig defaults', () => {
  it('fills every default for a minimal deploy', () => {
    const config = readConfig(inputs())
    expect(config).toEqual({
      command: 'deploy',
      manifests: ['k8s/deployment-v2.yaml'],
      virtualService: 'istio-virtualservice',
      versionLabel: 'version',
      steps: [
        { kind: 'weight', weight: 10 },
        { kind: 'weight', weight: 25 },
        { kind: 'weight', weight: 50 },
        { kind: 'weight', weight: 100 }
      ],
      intervalSeconds: 60,
      progressDeadlineSeconds: 600,
      settleSeconds: 5,
      retire: 'scale-down',
      dryRun: false,
      full: false,
      supersede: false,
      retry: false,
      onCancel: 'rollback',
      lockDurationSeconds: 120,
      lockWaitSeconds: 0,
      versionOrder: 'semver',
      allowDowngrade: false,
      freezeWindows: [],
      minSoakSeconds: 0,
      canaryReplicas: 'manifest',
      warnings: []
    })
  })

  it('treats missing inputs like empty ones', () => {
    expect(readConfig({ [INPUT.manifests]: 'a.yaml', [INPUT.virtualService]: 'vs' }).command).toBe('deploy')
  })

  it('documents the same defaults it applies', () => {
    const defaults = Object.fromEntries(Object.entries(INPUTS).map(([name, spec]) => [name, 'default' in spec ? spec.default : undefined]))
    expect(defaults).toMatchObject({ command: 'deploy', steps: '10,25,50,100', interval: '1m', 'lock-duration': '2m' })
  })

  it('reads every input, trimmed', () => {
    const config = readConfig(
      inputs({
        command: ' deploy ',
        manifests: ' k8s/a.yaml, k8s/{b,c}.yaml\n\n  k8s/d/*.yml \n',
        namespace: ' shop ',
        'destination-rule': ' istio-destinationrule ',
        route: ' primary ',
        'version-label': ' istio-test-version ',
        version: ' v2 ',
        'canary-subset': ' v2 ',
        steps: ' 5 pause 50 100 ',
        interval: ' 30s ',
        'progress-deadline': ' 5m ',
        settle: ' 0 ',
        retire: ' delete ',
        kubeconfig: `\n${KUBECONFIG}\n`,
        'dry-run': ' TRUE ',
        supersede: 'True',
        retry: ' true ',
        'on-cancel': 'freeze',
        'lock-duration': '15s',
        'lock-wait': '10m',
        timeout: '50m',
        'version-order': ' none ',
        'allow-downgrade': 'true',
        'freeze-windows': '\n  Fri 16:00 - Mon 08:00 Europe/Berlin \n',
        'min-soak': ' 30m ',
        'canary-replicas': ' proportional '
      })
    )
    expect(config).toEqual({
      command: 'deploy',
      manifests: ['k8s/a.yaml', 'k8s/{b,c}.yaml', 'k8s/d/*.yml'],
      virtualService: 'istio-virtualservice',
      namespace: 'shop',
      destinationRule: 'istio-destinationrule',
      route: 'primary',
      versionLabel: 'istio-test-version',
      version: 'v2',
      canarySubset: 'v2',
      steps: [{ kind: 'weight', weight: 5 }, { kind: 'pause' }, { kind: 'weight', weight: 50 }, { kind: 'weight', weight: 100 }],
      intervalSeconds: 30,
      progressDeadlineSeconds: 300,
      settleSeconds: 0,
      retire: 'delete',
      kubeconfig: KUBECONFIG.trim(),
      dryRun: true,
      full: false,
      supersede: true,
      retry: true,
      onCancel: 'freeze',
      lockDurationSeconds: 15,
      lockWaitSeconds: 600,
      timeoutSeconds: 3000,
      versionOrder: 'none',
      allowDowngrade: true,
      freezeWindows: [
        {
          kind: 'weekly',
          text: 'Fri 16:00 - Mon 08:00 Europe/Berlin',
          line: 2,
          zone: 'Europe/Berlin',
          start: { weekday: 5, hour: 16, minute: 0 },
          end: { weekday: 1, hour: 8, minute: 0 }
        }
      ],
      minSoakSeconds: 1800,
      canaryReplicas: 'proportional',
      warnings: []
    })
  })

  it.each(['promote', 'abort', 'status'])('does not need manifests for %s', (command) => {
    const config = readConfig(inputs({ command, manifests: '' }))
    expect(config.command).toBe(command)
    expect(config.manifests).toEqual([])
    expect(config.warnings).toEqual([])
  })

  it('promote with full', () => {
    expect(readConfig(inputs({ command: 'promote', manifests: '', full: 'true' })).full).toBe(true)
  })

  it('accepts a JSON kubeconfig', () => {
    const json = JSON.stringify({ apiVersion: 'v1', clusters: [], users: [], contexts: [] })
    expect(readConfig(inputs({ kubeconfig: json })).kubeconfig).toBe(json)
  })
})

describe('readConfig errors', () => {
  it.each<[string, Record<string, string>, string]>([
    [
      'an unknown command',
      { command: 'rollout' },
      `Input 'command' is invalid: expected deploy, promote, abort, status or plan (got "rollout").`
    ],
    [
      'a command in capitals',
      { command: 'Deploy' },
      `Input 'command' is invalid: expected deploy, promote, abort, status or plan (got "Deploy").`
    ],
    [
      'a VirtualService name that is not DNS-1123',
      { 'virtual-service': 'My_VS' },
      `Input 'virtual-service' is invalid: expected the name of a VirtualService: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters (got "My_VS").`
    ],
    [
      'a namespaced VirtualService name',
      { 'virtual-service': 'shop/reviews' },
      `Input 'virtual-service' is invalid: expected the name of a VirtualService: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters (got "shop/reviews").`
    ],
    [
      'a bad DestinationRule name',
      { 'destination-rule': 'dr!' },
      `Input 'destination-rule' is invalid: expected the name of a DestinationRule: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters (got "dr!").`
    ],
    [
      'a bad namespace',
      { namespace: 'team.a' },
      `Input 'namespace' is invalid: expected a namespace name: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters (got "team.a").`
    ],
    [
      'a route name over two lines',
      { route: 'a\nb' },
      `Input 'route' is invalid: expected the name of one http route of the VirtualService: one line, at most 253 characters (got "a\\nb").`
    ],
    [
      'a bad version label',
      { 'version-label': 'Example.com/version' },
      `Input 'version-label' is invalid: expected a label key like "version" or "app.kubernetes.io/version": an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (got "Example.com/version").`
    ],
    [
      'a bad version',
      { version: 'v2/beta' },
      `Input 'version' is invalid: expected a label value like "v2" or "1.4.0": at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (got "v2/beta").`
    ],
    [
      'a bad canary subset',
      { 'canary-subset': 'v1.2' },
      `Input 'canary-subset' is invalid: expected a DestinationRule subset name (Istio requires a DNS-1123 label): lowercase letters, digits and "-", at most 63 characters (got "v1.2").`
    ],
    [
      'bad steps',
      { steps: '10,50,120' },
      `Input 'steps' is invalid: weight 120 at position 3 must be between 1 and 100 (got "10,50,120").`
    ],
    ['an interval of 0', { interval: '0s' }, `Input 'interval' is invalid: must be more than 0 (got "0s").`],
    [
      'an interval in words',
      { interval: '2 minutes' },
      `Input 'interval' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "2 minutes").`
    ],
    ['a progress deadline of 0', { 'progress-deadline': '0' }, `Input 'progress-deadline' is invalid: must be more than 0 (got "0").`],
    ['a negative settle', { settle: '-1s' }, `Input 'settle' is invalid: must not be negative (got "-1s").`],
    ['a settle over an hour', { settle: '2h' }, `Input 'settle' is invalid: must be at most 1h (got "2h").`],
    ['a lock shorter than 15s', { 'lock-duration': '10s' }, `Input 'lock-duration' is invalid: must be at least 15s (got "10s").`],
    ['a lock longer than 1h', { 'lock-duration': '90m' }, `Input 'lock-duration' is invalid: must be at most 1h (got "90m").`],
    [
      'a lock of a fraction of a second',
      { 'lock-duration': '15.5s' },
      `Input 'lock-duration' is invalid: must be whole seconds (write "15s", not "15.5s") (got "15.5s").`
    ],
    [
      'a lock wait that is not a duration',
      { 'lock-wait': 'forever' },
      `Input 'lock-wait' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "forever").`
    ],
    ['a lock wait longer than the job limit', { 'lock-wait': '7h' }, `Input 'lock-wait' is invalid: must be at most 6h (got "7h").`],
    ['a timeout under a minute', { timeout: '30s' }, `Input 'timeout' is invalid: must be at least 1m (got "30s").`],
    ['a timeout over 35 days', { timeout: '1000h' }, `Input 'timeout' is invalid: must be at most 840h (35 days) (got "1000h").`],
    [
      'an unknown retire mode',
      { retire: 'scale-to-zero' },
      `Input 'retire' is invalid: expected scale-down, delete or keep (got "scale-to-zero").`
    ],
    ['an unknown on-cancel mode', { 'on-cancel': 'ignore' }, `Input 'on-cancel' is invalid: expected rollback or freeze (got "ignore").`],
    ['dry-run: yes', { 'dry-run': 'yes' }, `Input 'dry-run' is invalid: expected true or false (got "yes").`],
    ['full: 1', { command: 'promote', full: '1' }, `Input 'full' is invalid: expected true or false (got "1").`],
    ['supersede: tRUE', { supersede: 'tRUE' }, `Input 'supersede' is invalid: expected true or false (got "tRUE").`],
    [
      'an unknown version order',
      { 'version-order': 'calver' },
      `Input 'version-order' is invalid: expected semver or none (got "calver").`
    ],
    [
      'an unknown canary-replicas mode',
      { 'canary-replicas': 'hpa' },
      `Input 'canary-replicas' is invalid: expected manifest or proportional (got "hpa").`
    ],
    ['allow-downgrade: yes', { 'allow-downgrade': 'yes' }, `Input 'allow-downgrade' is invalid: expected true or false (got "yes").`],
    [
      'a freeze window without a time zone',
      { 'freeze-windows': 'Fri 16:00 - Mon 08:00' },
      `Input 'freeze-windows' is invalid: line 1: expected one window per line: a weekly range like "Fri 16:00 - Mon 08:00 Europe/Berlin", or a date range like "2026-12-24 - 2027-01-02 Europe/Berlin" (whole days, the end date included) or "2026-12-24 12:00 - 2027-01-02 08:00 UTC" (got "Fri 16:00 - Mon 08:00").`
    ],
    [
      'a min-soak in words',
      { 'min-soak': 'half an hour' },
      `Input 'min-soak' is invalid: expected a duration like "30s", "1m30s", "1.5s" or "1500ms" (got "half an hour").`
    ],
    [
      'a min-soak with no step below 100',
      { 'min-soak': '30m', steps: '100' },
      `Input 'min-soak' is invalid: 'steps' is "100": the canary gets no traffic before 100 %, so it can never soak; add a step below 100, like "10,100", or leave 'min-soak' empty (got "30m").`
    ]
  ])('rejects %s', (_, set, message) => {
    expect(errorOf(() => readConfig(inputs(set))).message).toBe(message)
  })

  it('rejects a route name over 253 characters', () => {
    expect(errorOf(() => readConfig(inputs({ route: 'r'.repeat(254) }))).message).toMatch(
      /^Input 'route' is invalid: expected the name of one http route of the VirtualService: one line, at most 253 characters \(got "r{200}…"\)\.$/
    )
  })

  it('requires manifests for deploy', () => {
    expect(errorOf(() => readConfig(inputs({ manifests: ' \n , ' }))).message).toBe(
      `Input 'manifests' is required: command 'deploy' needs the canary Deployment's manifest: a path or glob, one per line or comma-separated, like "k8s/deployment-v2.yaml".`
    )
  })

  it.each(['deploy', 'status'])('requires virtual-service (command %s)', (command) => {
    expect(errorOf(() => readConfig(inputs({ command, 'virtual-service': '  ' }))).message).toBe(
      `Input 'virtual-service' is required: expected the name of the VirtualService whose route weights the action shifts, like "reviews".`
    )
  })

  describe('kubeconfig (a credential: never quoted)', () => {
    it.each<[string, string, string]>([
      [
        'a path',
        '/home/runner/.kube/config',
        `expected the kubeconfig content (YAML), not a path: the action reads no file named by an input. Pass the content, like "kubeconfig: \${{ secrets.KUBECONFIG }}", or leave it empty to use $KUBECONFIG or ~/.kube/config`
      ],
      [
        'a relative path',
        'kubeconfig.yaml',
        `expected the kubeconfig content (YAML), not a path: the action reads no file named by an input. Pass the content, like "kubeconfig: \${{ secrets.KUBECONFIG }}", or leave it empty to use $KUBECONFIG or ~/.kube/config`
      ],
      [
        'base64',
        Buffer.from(KUBECONFIG).toString('base64'),
        'it looks base64-encoded: expected the kubeconfig content itself, so decode it before storing the secret'
      ],
      [
        'malformed YAML',
        'clusters:\n  - name: "secret-token-value\n',
        'it is not valid YAML (line 3): expected the content of a kubeconfig file'
      ],
      [
        'YAML without clusters',
        'token: secret-token-value\nuser: me\n',
        'it is not a kubeconfig: expected YAML with clusters, contexts and users'
      ],
      ['a YAML list', '- secret-token-value\n- x\n', 'it is not a kubeconfig: expected YAML with clusters, contexts and users']
    ])('rejects %s', (_, value, reason) => {
      const message = errorOf(() => readConfig(inputs({ kubeconfig: value }))).message
      expect(message).toBe(`Input 'kubeconfig' is invalid: ${reason} (value not shown: it may be a credential).`)
      expect(message).not.toContain(value.trim())
      expect(message).not.toContain('secret-token-value')
    })
  })
})

describe('readConfig warnings', () => {
  it('ignores manifests for commands other than deploy, saying so', () => {
    const config = readConfig(inputs({ command: 'abort' }))
    expect(config.manifests).toEqual([])
    expect(config.warnings).toEqual([`Input 'manifests' is ignored with command 'abort': only 'deploy' applies a manifest.`])
  })

  it('ignores full except with promote', () => {
    const config = readConfig(inputs({ full: 'true' }))
    expect(config.full).toBe(false)
    expect(config.warnings).toEqual([`Input 'full' is ignored with command 'deploy': it only makes a promote go straight to 100 %.`])
  })

  it('ignores supersede except with deploy', () => {
    const config = readConfig(inputs({ command: 'status', manifests: '', supersede: 'true' }))
    expect(config.supersede).toBe(false)
    expect(config.warnings).toEqual([
      `Input 'supersede' is ignored with command 'status': it only lets a deploy replace a rollout in progress.`
    ])
  })

  it('ignores retry except with deploy', () => {
    const config = readConfig(inputs({ command: 'promote', manifests: '', retry: 'true' }))
    expect(config.retry).toBe(false)
    expect(config.warnings).toEqual([
      `Input 'retry' is ignored with command 'promote': it only lets a deploy roll out again a release that was rolled back.`
    ])
    expect(() => readConfig(inputs({ retry: 'yes' }))).toThrow(`Input 'retry' is invalid: expected true or false (got "yes").`)
  })

  it('warns about a schedule of 100 alone', () => {
    expect(readConfig(inputs({ steps: '100' })).warnings).toEqual([
      `Input 'steps' is "100": all traffic moves to the canary at once, with no canary phase for the health gates to judge.`
    ])
  })

  it('warns when a deploy can outlast the 6h job limit of hosted runners', () => {
    const config = readConfig(inputs({ steps: '10,20,30,40,50,60,70,80,90,100', interval: '40m' }), { RUNNER_ENVIRONMENT: 'github-hosted' })
    expect(config.warnings).toEqual([
      `One deploy run of the schedule can take up to 6h50m50s (10 steps × (interval 40m + settle 5s) + progress-deadline 10m), longer than the 6h job limit of GitHub-hosted runners (timeout-minutes cannot raise it): ` +
        `the job would be cut off mid-rollout; add a pause to 'steps', shorten 'interval' or use fewer steps.`
    ])
  })

  it('does not hold self-hosted runners to 6h, only to their 5 days', () => {
    const set = { steps: '10,20,30,40,50,60,70,80,90,100', interval: '40m' }
    expect(readConfig(inputs(set), { RUNNER_ENVIRONMENT: 'self-hosted' }).warnings).toEqual([])
    expect(readConfig(inputs({ ...set, interval: '13h' }), { RUNNER_ENVIRONMENT: 'self-hosted' }).warnings).toEqual([
      `One deploy run of the schedule can take up to 130h10m50s (10 steps × (interval 13h + settle 5s) + progress-deadline 10m), longer than the 5-day job limit of self-hosted runners: ` +
        `the job would be cut off mid-rollout; add a pause to 'steps', shorten 'interval' or use fewer steps.`
    ])
  })

  it('a pause splits the schedule into runs: only the longest run counts', () => {
    const set = { steps: '10,20,30,40,pause,50,60,70,80,90,100', interval: '1h' }
    expect(readConfig(inputs(set)).warnings).toEqual([])
    expect(readConfig(inputs({ ...set, command: 'promote', manifests: '' })).warnings).toEqual([
      `One promote run of the schedule can take up to 6h30s (6 steps × (interval 1h + settle 5s)), longer than the 6h job limit of GitHub-hosted runners (timeout-minutes cannot raise it): ` +
        `the job would be cut off mid-rollout; add a pause to 'steps', shorten 'interval' or use fewer steps.`
    ])
    expect(readConfig(inputs({ ...set, command: 'promote', manifests: '', full: 'true' })).warnings).toEqual([])
  })

  it('warns when the schedule outlasts the timeout input', () => {
    expect(readConfig(inputs({ timeout: '10m' })).warnings).toEqual([
      `One deploy run of the schedule can take up to 14m20s (4 steps × (interval 1m + settle 5s) + progress-deadline 10m), longer than 'timeout' 10m: ` +
        `the run would stop before promoting; add a pause to 'steps', shorten 'interval' or use fewer steps.`
    ])
  })
})

describe('readBoolean', () => {
  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    ['false', false],
    ['False', false],
    ['FALSE', false]
  ])('reads %j', (value, expected) => {
    expect(readBoolean('dry-run', value)).toBe(expected)
  })

  it.each(['yes', 'no', 'on', '1', '0', 'tRue', ''])('rejects %j', (value) => {
    expect(() => readBoolean('dry-run', value)).toThrow(
      new ConfigError(`Input 'dry-run' is invalid: expected true or false (got ${JSON.stringify(value)}).`)
    )
  })
})

describe('splitList', () => {
  it('splits on newlines and commas outside braces, dropping empty entries', () => {
    expect(splitList('a.yaml,\n b/{x,y}.yaml \r\n,, c/*.yml')).toEqual(['a.yaml', 'b/{x,y}.yaml', 'c/*.yml'])
    expect(splitList('')).toEqual([])
  })
})
