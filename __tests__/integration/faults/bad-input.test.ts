/**
 * Bad input and bad cluster shapes (manifests, schedule, route shapes, metric checks, the rollout state, plus the sidecar
 * checks): the seed scenario (v1 live, v2 to roll out) or a variant of it, run through the real
 * command on the real apiserver. Every case must end with a clear error (naming the input or
 * object, quoting the value, saying what was expected), result 'unchanged', and zero writes: the
 * namespace fingerprint (uid + resourceVersion of every object, and the Lease watch) is the same
 * before and after.
 *
 * Cases share namespaces (none of them writes, and the fingerprint proves it); each variant lives
 * beside the seed objects under its own VirtualService / host name. Only shapes that cannot share
 * (namespace labels, a rollout in progress) get a namespace of their own.
 */
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, test } from '@jest/globals'
import * as yaml from 'js-yaml'
import { ConfigError } from '../../../src/errors.js'
import { runAction, writeManifest } from '../../support/rollout-harness.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import {
  applyManifests,
  clients,
  createTestNamespace,
  deleteNamespace,
  loadTestEnv,
  readSeedScenario,
  SEED_START_FILES,
  startSeedScenario,
  waitForDeploymentCondition
} from '../../support/test-cluster.js'

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'manifests')
const VS = 'istio-virtualservice'
const VERSION_LABEL = 'istio-test-version'

type Obj = Record<string, any>

/** The seed's v2 Deployment, optionally changed, written to a temp file: the 'manifests' input. */
function canary(change?: (d: Obj) => void): string {
  const d = yaml.load(readSeedScenario('deployment-v2.yaml')) as Obj
  change?.(d)
  return writeManifest(yaml.dump(d))
}

const virtualService = (name: string, spec: Obj): Obj => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name },
  spec: { hosts: [name], ...spec }
})
const route = (host: string, subset = 'v1', weight?: number): Obj => ({
  destination: { host, subset },
  ...(weight === undefined ? {} : { weight })
})
const destinationRule = (name: string, host: string, subsets: Array<[string, Record<string, string>]>): Obj => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name },
  spec: { host, subsets: subsets.map(([n, labels]) => ({ name: n, labels })) }
})
const service = (name: string, selector: Record<string, string>): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name },
  spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 80 }] }
})
const v1Subset: [string, Record<string, string>] = ['v1', { [VERSION_LABEL]: 'v1' }]

/** Shapes that can sit beside the seed objects: each under its own VirtualService / host. */
function variants(ns: string, other: string): Obj[] {
  return [
    // two http routes, neither chosen by input 'route'
    virtualService('routes', {
      http: [
        { name: 'testers', match: [{ headers: { 'x-tester': { exact: 'yes' } } }], route: [route('istio-service')] },
        { name: 'everyone', route: [route('istio-service')] }
      ]
    }),
    // a delegating route
    virtualService('delegating', { http: [{ delegate: { name: VS, namespace: ns } }] }),
    // hosts that are not a Service of this namespace, or that Istio takes literally
    virtualService('other-ns-host', { http: [{ route: [route(`istio-service.${other}.svc.cluster.local`)] }] }),
    virtualService('partial-host', { http: [{ route: [route(`istio-service.${ns}`)] }] }),
    // the DestinationRule is for the short name's FQDN in another namespace
    virtualService('mismatch', { http: [{ route: [route('mismatch')] }] }),
    service('mismatch', { 'istio-test-app': 'istio-test-app' }),
    destinationRule('mismatch-dr', `mismatch.${other}.svc.cluster.local`, [v1Subset]),
    // the DestinationRule lives in another namespace (created there, see beforeAll)
    virtualService('far', { http: [{ route: [route('far')] }] }),
    service('far', { 'istio-test-app': 'istio-test-app' }),
    // no DestinationRule for the host; no Service for the host
    virtualService('lonely', { http: [{ route: [route('lonely')] }] }),
    service('lonely', { 'istio-test-app': 'istio-test-app' }),
    virtualService('ghost', { http: [{ route: [route('ghost')] }] }),
    destinationRule('ghost-dr', 'ghost', [v1Subset]),
    // the stable subset selects the canary pods too
    virtualService('wide', { http: [{ route: [route('wide')] }] }),
    service('wide', { 'istio-test-app': 'istio-test-app' }),
    destinationRule('wide-dr', 'wide', [['v1', { 'istio-test-app': 'istio-test-app' }]]),
    // the canary subset name is taken by a subset selecting something else
    virtualService('taken', { http: [{ route: [route('taken')] }] }),
    service('taken', { 'istio-test-app': 'istio-test-app' }),
    destinationRule('taken-dr', 'taken', [v1Subset, ['v2', { [VERSION_LABEL]: 'v9' }]]),
    // the stable subset is defined by two DestinationRules of the host
    virtualService('dup', { http: [{ route: [route('dup')] }] }),
    service('dup', { 'istio-test-app': 'istio-test-app' }),
    destinationRule('dup-a', 'dup', [v1Subset]),
    destinationRule('dup-b', 'dup.' + ns + '.svc.cluster.local', [v1Subset]),
    // a route that already splits traffic with no rollout in progress
    virtualService('split', { http: [{ route: [route('istio-service', 'v1', 50), route('istio-service', 'v2', 50)] }] }),
    // no http route at all
    virtualService('tcp-only', { tcp: [{ route: [{ destination: { host: 'istio-service', port: { number: 80 } } }] }] }),
    // a stable Deployment whose selector also selects the canary's pods
    virtualService('overlap', { http: [{ route: [route('overlap')] }] }),
    service('overlap', { tier: 'overlap' }),
    destinationRule('overlap-dr', 'overlap', [['v1', { [VERSION_LABEL]: 'old', tier: 'overlap' }]]),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'overlap-v1' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { tier: 'overlap' } },
        template: {
          metadata: { labels: { tier: 'overlap', [VERSION_LABEL]: 'old' } },
          spec: { containers: [{ name: 'web', image: 'nginx:latest' }] }
        }
      }
    }
  ]
}

/** The seed rollout's inputs; each case overrides some. */
function seedInputs(ns: string): Record<string, string> {
  return { manifests: canary(), 'virtual-service': VS, namespace: ns, 'version-label': VERSION_LABEL, steps: '50,100' }
}

interface Expected {
  kind: 'ConfigError' | 'PreflightError'
  /** Parts the message must contain: the input or object, the quoted value, what was expected. */
  says: Array<string | RegExp>
}

function expectMessage(message: string | undefined, says: Array<string | RegExp>): void {
  for (const part of says) {
    expect(message).toEqual(typeof part === 'string' ? expect.stringContaining(part) : expect.stringMatching(part))
  }
}

/** Runs the command; expects the error in the report, result 'unchanged' and not one write. */
async function expectRefused(ns: string, inputs: Record<string, string>, expected: Expected): Promise<void> {
  const before = await namespaceFingerprint(ns)
  const { report } = await runAction({ ...seedInputs(ns), ...inputs })
  expect(report.error?.kind).toBe(expected.kind)
  expectMessage(report.error?.message, expected.says)
  expect(report.result).toBe('unchanged')
  expect(await namespaceWrites(before)).toEqual(NO_WRITES)
}

/** Inputs refused while they are read, before a cluster client exists: the ConfigError is thrown. */
async function expectInputRefused(ns: string, inputs: Record<string, string>, says: Array<string | RegExp>): Promise<void> {
  const before = await namespaceFingerprint(ns)
  const err = await runAction({ ...seedInputs(ns), ...inputs }).then(
    () => undefined,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(ConfigError)
  expectMessage((err as Error).message, says)
  expect(await namespaceWrites(before)).toEqual(NO_WRITES)
}

let ns: string
let other: string

beforeAll(async () => {
  ;[ns, other] = await Promise.all([createTestNamespace('bad-input'), createTestNamespace('bad-input-other')])
  await applyManifests(ns, [...SEED_START_FILES.map(readSeedScenario), ...variants(ns, other)])
  await applyManifests(other, destinationRule('far-dr', `far.${ns}.svc.cluster.local`, [v1Subset]))
  await Promise.all([
    waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available'),
    waitForDeploymentCondition(ns, 'overlap-v1', 'Available')
  ])
})

afterAll(async () => {
  await Promise.all([deleteNamespace(ns), deleteNamespace(other)])
})

describe('the fingerprint itself', () => {
  it('sees a changed object, a new object and a Lease created and deleted in between', async () => {
    const scratch = await createTestNamespace('fingerprint')
    try {
      await applyManifests(scratch, [readSeedScenario('service.yaml'), readSeedScenario('virtualservice-v1.yaml')])
      const before = await namespaceFingerprint(scratch)
      expect(Object.keys(before.objects)).toEqual(
        expect.arrayContaining([
          'v1 Service istio-service',
          'networking.istio.io/v1 VirtualService istio-virtualservice',
          'v1 ServiceAccount default'
        ])
      )
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)

      await applyManifests(scratch, [readSeedScenario('virtualservice-50-50.yaml'), readSeedScenario('destinationrule-v1.yaml')])
      const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'passing-by', namespace: scratch } }
      await clients.objects.create(lease)
      await clients.objects.delete(lease)
      expect(await namespaceWrites(before)).toEqual({
        added: ['networking.istio.io/v1 DestinationRule istio-destinationrule'],
        changed: ['networking.istio.io/v1 VirtualService istio-virtualservice'],
        removed: [],
        leaseEvents: ['ADDED passing-by', 'DELETED passing-by']
      })
    } finally {
      await deleteNamespace(scratch)
    }
  })
})

describe('bad manifests: refused in preflight, zero writes', () => {
  const fixture = (name: string): string => path.join(FIXTURES, name)
  const oversized = (): string => {
    const d = yaml.load(readSeedScenario('deployment-v2.yaml')) as Obj
    d.metadata.annotations = { padding: 'x'.repeat(1024 * 1024) }
    return writeManifest(yaml.dump(d, { lineWidth: -1 }))
  }

  test.each<[string, () => string, Array<string | RegExp>]>([
    ['bad indentation', () => fixture('malformed-indent.yaml'), [/Manifest \S*malformed-indent\.yaml:5:\d+ is not valid YAML/]],
    [
      'an unclosed quote',
      () => fixture('malformed-quote.yaml'),
      [/malformed-quote\.yaml:\d+:\d+ is not valid YAML/, 'a quote opened earlier is never closed']
    ],
    ['a duplicate key', () => fixture('duplicate-keys.yaml'), [/duplicate-keys\.yaml:12:\d+ is not valid YAML/, 'duplicate key']],
    ['an alias bomb', () => fixture('alias-bomb.yaml'), [/alias-bomb\.yaml:\d+ has more than 100000 nodes/, 'alias bomb']],
    ['a file over 1 MiB', oversized, [/Manifest \S+deployment\.yaml is too large: 1\.\d MiB, the limit is 1 MiB/]],
    ['a value JSON cannot carry (.inf)', () => fixture('infinity.yaml'), [/infinity\.yaml:1 holds Infinity/, 'quote it']],
    [
      'a document that is not an object',
      () => fixture('not-an-object.yaml'),
      [
        /not-an-object\.yaml:\d+ \(document 2\) is not a Kubernetes object/,
        'expected a mapping with apiVersion and kind',
        '(got "[\\"just\\",\\"a list\\"]")'
      ]
    ],
    [
      'a path that does not exist',
      () => '/nonexistent/deployment-v2.yaml',
      ["Input 'manifests' is invalid", '"/nonexistent/deployment-v2.yaml" does not exist']
    ],
    [
      'a glob matching nothing',
      () => path.join(os.tmpdir(), 'no-such-dir-*', '*.yaml'),
      ["Input 'manifests' is invalid: glob", 'matches no file']
    ],
    [
      'two Deployments',
      () => fixture('two-deployments.yaml'),
      ["Input 'manifests' is invalid: expected exactly one Deployment", 'found 2', 'Deployment "web-v2"', 'Deployment "worker-v2"']
    ],
    [
      'extra kinds (Service, Secret)',
      () => fixture('extra-kinds.yaml'),
      ["Input 'manifests' is invalid", 'also hold Secret "web-token"', 'apply it in a separate step']
    ],
    [
      'only a Service',
      () => fixture('only-service.yaml'),
      ["Input 'manifests' is invalid", 'found none: the files hold only Service "web"']
    ],
    [
      'no Deployment at all (comments only)',
      () => fixture('comments-only.yaml'),
      ["Input 'manifests' is invalid: expected exactly one Deployment", 'found none']
    ],
    [
      'the canary selector lacks the version label',
      () => canary((d) => (d.spec.selector.matchLabels = { 'istio-test-app': 'istio-test-app' })),
      [
        'Deployment "istio-deployment-v2"',
        'spec.selector.matchLabels must include the version label (istio-test-version: v2)',
        '"istio-test-app=istio-test-app"'
      ]
    ],
    [
      'the canary pods lack the version label',
      () =>
        canary((d) => {
          delete d.spec.template.metadata.labels[VERSION_LABEL]
        }),
      ['Deployment "istio-deployment-v2"', `must carry the version label "${VERSION_LABEL}" (input 'version-label')`]
    ],
    [
      'the canary selector does not match its own pods',
      () => canary((d) => (d.spec.selector.matchExpressions = [{ key: 'tier', operator: 'Exists' }])),
      ['Deployment "istio-deployment-v2"', 'spec.selector does not match spec.template.metadata.labels']
    ],
    [
      'a manifest in another namespace than input namespace',
      () => canary((d) => (d.metadata.namespace = 'somewhere-else')),
      ['metadata.namespace is "somewhere-else" but input \'namespace\' is']
    ]
  ])('%s', async (_name, manifest, says) => {
    await expectRefused(ns, { manifests: manifest() }, { kind: 'ConfigError', says })
  })

  it('canary pods the Service does not select', async () => {
    await expectRefused(
      ns,
      {
        manifests: canary((d) => {
          delete d.spec.template.metadata.labels['istio-test-app']
        })
      },
      {
        kind: 'PreflightError',
        says: [
          `Service ${ns}/istio-service selects "istio-test-app=istio-test-app"`,
          'the canary pods (labels "istio-test-version=v2")',
          'Expected the canary pod template to carry every label'
        ]
      }
    )
  })

  it('the stable subset selects the canary pods', async () => {
    await expectRefused(
      ns,
      { 'virtual-service': 'wide' },
      {
        kind: 'PreflightError',
        says: [
          'The stable subset "v1" of DestinationRule',
          'wide-dr',
          'selects labels "istio-test-app=istio-test-app"',
          'the canary would get stable traffic',
          'Expected the stable subset to select the stable version only'
        ]
      }
    )
  })

  it('the stable Deployment selector overlaps the canary pods', async () => {
    const manifest = canary((d) => {
      d.metadata.name = 'overlap-v2'
      d.spec.selector.matchLabels = { tier: 'overlap', [VERSION_LABEL]: 'v2' }
      d.spec.template.metadata.labels = { tier: 'overlap', [VERSION_LABEL]: 'v2' }
    })
    await expectRefused(
      ns,
      { 'virtual-service': 'overlap', manifests: manifest },
      {
        kind: 'PreflightError',
        says: [
          'Deployment "overlap-v2" and the stable Deployment "overlap-v1" select each other\'s pods',
          'stable selector "{\\"tier\\":\\"overlap\\"}"',
          'includes the "istio-test-version" label'
        ]
      }
    )
  })

  it('a canary Deployment named like the stable one', async () => {
    await expectRefused(
      ns,
      { manifests: canary((d) => (d.metadata.name = 'istio-deployment-v1')) },
      {
        kind: 'PreflightError',
        says: [
          'Deployment "istio-deployment-v1" already runs the stable version "v1" (its pods match subset "v1")',
          "rename the canary Deployment in input 'manifests'"
        ]
      }
    )
  })
})

describe('bad schedule and durations: refused while the inputs are read, zero writes', () => {
  test.each<[string, Record<string, string>, Array<string | RegExp>]>([
    [
      'a weight above 100',
      { steps: '10,50,120' },
      ["Input 'steps' is invalid: weight 120 at position 3 must be between 1 and 100", '(got "10,50,120")']
    ],
    [
      'a negative weight',
      { steps: '-10,100' },
      ["Input 'steps' is invalid: weight -10 at position 1 must be between 1 and 100", '(got "-10,100")']
    ],
    [
      'a fractional weight',
      { steps: '10.5,100' },
      ["Input 'steps' is invalid: weight 10.5 at position 1 must be a whole number", '(got "10.5,100")']
    ],
    ['not ending at 100', { steps: '10,50' }, ["Input 'steps' is invalid: the last weight is 50 but must be 100", '(got "10,50")']],
    ['going down', { steps: '50,10,100' }, ["Input 'steps' is invalid: weight 10 at position 2 is lower than 50", '(got "50,10,100")']],
    [
      'a repeated weight',
      { steps: '10,10,100' },
      ["Input 'steps' is invalid: weight 10 at position 2 repeats position 1", '(got "10,10,100")']
    ],
    [
      'a pause first',
      { steps: 'pause,100' },
      ["Input 'steps' is invalid: pause at position 1 comes before any traffic", '(got "pause,100")']
    ],
    [
      'a word',
      { steps: '10,half,100' },
      ["Input 'steps' is invalid", '"half" at position 2 is neither a weight from 1 to 100, "pause", nor a step like']
    ],
    [
      'an unknown step kind',
      { steps: 'canary:x-a=1,100' },
      ["Input 'steps' is invalid", 'unknown step kind "canary": expected "header:", "cookie:" or "mirror:"', '(got "canary:x-a=1,100")']
    ],
    [
      'a mirror over 100',
      { steps: 'mirror:150,100' },
      [
        "Input 'steps' is invalid",
        '"mirror:150" at position 1 mirrors 150 %, but the share must be above 0 and at most 100',
        '(got "mirror:150,100")'
      ]
    ],
    [
      'a header step after 100 %',
      { steps: '10,100,header:x-canary=always' },
      [
        "Input 'steps' is invalid",
        '"header:x-canary=always" at position 3 comes after weight 100 at position 2: header, cookie and mirror steps come before the first weight',
        '(got "10,100,header:x-canary=always")'
      ]
    ],
    [
      'interval with its units out of order',
      { interval: '30s1m' },
      ["Input 'interval' is invalid", 'each unit once and the largest first', '(got "30s1m")']
    ],
    [
      'interval with a fraction before a smaller unit',
      { interval: '1.5m15s' },
      ["Input 'interval' is invalid", 'a fraction only on the last unit', '(got "1.5m15s")']
    ],
    ['a negative interval', { interval: '-5s' }, ["Input 'interval' is invalid: must not be negative", '(got "-5s")']],
    ['interval under a second', { interval: '500ms' }, ["Input 'interval' is invalid: must be at least 1s", '(got "500ms")']],
    [
      'a lock of a fraction of a second',
      { 'lock-duration': '15.5s' },
      ["Input 'lock-duration' is invalid: must be whole seconds", '(got "15.5s")']
    ],
    ['interval as a word', { interval: 'soon' }, ["Input 'interval' is invalid: expected a duration like", '(got "soon")']],
    ['a zero interval', { interval: '0' }, ["Input 'interval' is invalid: must be more than 0", '(got "0")']],
    [
      'a zero progress deadline',
      { 'progress-deadline': '0s' },
      ["Input 'progress-deadline' is invalid: must be more than 0", '(got "0s")']
    ],
    ['a settle time over an hour', { settle: '2h' }, ["Input 'settle' is invalid: must be at most 1h", '(got "2h")']],
    ['a lock shorter than 15s', { 'lock-duration': '5s' }, ["Input 'lock-duration' is invalid: must be at least 15s", '(got "5s")']],
    ['a timeout under a minute', { timeout: '30s' }, ["Input 'timeout' is invalid: must be at least 1m", '(got "30s")']],
    ['check-every under a second', { 'check-every': '200ms' }, ["Input 'check-every' is invalid", '(got "200ms")']]
  ])('%s', async (_name, inputs, says) => {
    await expectInputRefused(ns, inputs, says)
  })

  it('a schedule longer than the job limit warns, and a dry run of it writes nothing', async () => {
    const before = await namespaceFingerprint(ns)
    const { report, log } = await runAction({ ...seedInputs(ns), steps: '10,25,50,100', interval: '2h', 'dry-run': 'true' })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('unchanged')
    expect(report.warnings).toEqual(
      expect.arrayContaining([expect.stringContaining('longer than the 6h job limit of GitHub-hosted runners')])
    )
    expect(log.lines.join('\n')).toContain('[dry-run] set weights v1=90 v2=10')
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })
})

describe('VirtualService / DestinationRule / Service shapes: refused in preflight, zero writes', () => {
  test.each<[string, Record<string, string>, Array<string | RegExp>]>([
    [
      'canary subset equal to the stable subset',
      { 'canary-subset': 'v1' },
      ['The canary subset "v1" is the stable subset', "set input 'canary-subset'"]
    ],
    [
      'canary subset name taken by another subset',
      { 'virtual-service': 'taken' },
      [
        'taken-dr',
        'already has a subset "v2" with labels "istio-test-version=v9"',
        'expected no such subset, or one with labels "istio-test-version=v2"',
        "Set input 'canary-subset' to an unused name"
      ]
    ],
    [
      'two DestinationRules for the host',
      { 'virtual-service': 'dup' },
      ['Several DestinationRules in namespace "NS" are for host', '"dup-a, dup-b"', "set input 'destination-rule'"]
    ],
    [
      'the stable subset duplicated in another DestinationRule',
      { 'virtual-service': 'dup', 'destination-rule': 'dup-a' },
      [
        'dup-b',
        'also defines host',
        'with subset "v1"',
        'Istio keeps only the first definition',
        'Expected the subset in one DestinationRule only'
      ]
    ],
    [
      'several http routes, no route input',
      { 'virtual-service': 'routes' },
      ['has 2 http routes', 'testers', 'everyone', "ambiguous. Set input 'route'"]
    ],
    [
      'a route input naming no route',
      { 'virtual-service': 'routes', route: 'nobody' },
      ['has no http route named "nobody" (input \'route\')', 'expected one of "testers, everyone"']
    ],
    [
      'a route delegating to a VirtualService with hosts (not a delegate)',
      { 'virtual-service': 'delegating' },
      [`delegates to VirtualService "NS/${VS}"`, 'which has hosts of its own', "expected a delegate VirtualService without 'hosts'"]
    ],
    [
      'a host in another namespace',
      { 'virtual-service': 'other-ns-host' },
      ['routes to host "istio-service.OTHER.svc.cluster.local", which is not a Service of namespace "NS"', 'expected "<service>"']
    ],
    [
      'a partial host Istio takes literally',
      { 'virtual-service': 'partial-host' },
      ['routes to host "istio-service.NS", which Istio takes literally', 'expected "istio-service" or "istio-service.NS.svc.cluster.local"']
    ],
    [
      'the DestinationRule is for the FQDN in another namespace',
      { 'virtual-service': 'mismatch' },
      [
        'No DestinationRule in namespace "NS" is for host "mismatch" ("mismatch.NS.svc.cluster.local")',
        "Create it, or set input 'destination-rule'"
      ]
    ],
    [
      'the DestinationRule lives in another namespace',
      { 'virtual-service': 'far' },
      ['No DestinationRule in namespace "NS" is for host "far"']
    ],
    [
      'input destination-rule names a rule for another host',
      { 'destination-rule': 'mismatch-dr' },
      [
        'mismatch-dr',
        'is for host "mismatch.OTHER.svc.cluster.local"',
        'routes to host "istio-service"',
        'expected a DestinationRule for "istio-service.NS.svc.cluster.local"'
      ]
    ],
    [
      'the VirtualService is missing',
      { 'virtual-service': 'no-such-vs' },
      ['VirtualService "no-such-vs" was not found in namespace "NS" (input \'virtual-service\')', 'Create it first']
    ],
    [
      'no DestinationRule for the host',
      { 'virtual-service': 'lonely' },
      ['No DestinationRule in namespace "NS" is for host "lonely"', 'expected one defining its subsets']
    ],
    [
      'input destination-rule names a missing rule',
      { 'destination-rule': 'no-such-dr' },
      ["DestinationRule NS/no-such-dr (input 'destination-rule') was not found", 'expected one of', 'istio-destinationrule']
    ],
    ['the Service is missing', { 'virtual-service': 'ghost' }, ['Service NS/ghost was not found', 'the route host "ghost" names it']],
    [
      'a route already split with no rollout in progress',
      { 'virtual-service': 'split' },
      ['already splits traffic ("v1=50, v2=50")', 'no rollout is in progress on it', 'expected one destination carrying all traffic']
    ],
    [
      'a VirtualService whose only route is a tcp route without subsets',
      { 'virtual-service': 'tcp-only' },
      ['tcp route #0 of VirtualService NS/tcp-only sends traffic to host "istio-service" without a subset', 'expected every destination']
    ]
  ])('%s', async (_name, inputs, says) => {
    const fill = (s: string | RegExp) => (typeof s === 'string' ? s.replaceAll('OTHER', other).replaceAll('NS', ns) : s)
    await expectRefused(ns, inputs, { kind: 'PreflightError', says: says.map(fill) })
  })
})

describe('Istio sidecar', () => {
  it('a Deployment opting out of injection is refused', async () => {
    const manifest = canary((d) => (d.spec.template.metadata.annotations = { 'sidecar.istio.io/inject': 'false' }))
    await expectRefused(
      ns,
      { manifests: manifest },
      {
        kind: 'PreflightError',
        says: ['Deployment "istio-deployment-v2" opts out of the Istio sidecar (sidecar.istio.io/inject: "false")', 'Remove the opt-out']
      }
    )
  })

  it('a namespace without sidecar injection is refused', async () => {
    const bare = await createTestNamespace('bad-input-no-sidecar')
    try {
      await clients.core.patchNamespace({ name: bare, body: [{ op: 'remove', path: '/metadata/labels/istio-injection' }] })
      await startSeedScenario(bare)
      await expectRefused(
        bare,
        {},
        {
          kind: 'PreflightError',
          says: [
            `namespace "${bare}" has neither the label istio-injection=enabled nor istio.io/rev`,
            'The pods of Deployment "istio-deployment-v2" will not get the Istio sidecar',
            `kubectl label namespace ${bare} istio-injection=enabled`
          ]
        }
      )
    } finally {
      await deleteNamespace(bare)
    }
  })
})

describe('metric checks', () => {
  const prometheus = (): Record<string, string> => ({ 'prometheus-url': loadTestEnv().prometheusUrl })

  it('a query typo is caught by the Prometheus dry-run in preflight', async () => {
    const checks = yaml.dump([
      { name: 'error-budget', query: 'sum(rat(istio_requests_total{destination_workload="{{workload}}"}[{{interval}}]))', max: 1 }
    ])
    await expectRefused(
      ns,
      { ...prometheus(), checks },
      {
        kind: 'ConfigError',
        says: [
          'Input \'checks\' is invalid: check "error-budget" was rejected by Prometheus',
          'rat',
          'destination_workload=\\"istio-deployment-v2\\"'
        ]
      }
    )
  })

  test.each([
    ['a double quote', 'v2",namespace=~".*'],
    ['a backslash', 'v2\\'],
    ['a regex', '.*'],
    ['a closing brace', 'v2}']
  ])('a version label value with %s never reaches PromQL', async (_what, value) => {
    const manifest = canary((d) => {
      d.spec.selector.matchLabels[VERSION_LABEL] = value
      d.spec.template.metadata.labels[VERSION_LABEL] = value
    })
    await expectRefused(
      ns,
      { ...prometheus(), 'success-rate': '99', manifests: manifest },
      {
        kind: 'ConfigError',
        says: [
          'Deployment "istio-deployment-v2"',
          `the version label "${VERSION_LABEL}" has value ${JSON.stringify(value)}, which is not a valid label value`
        ]
      }
    )
  })

  it('a hostile version input is refused as the inputs are read', async () => {
    await expectInputRefused(ns, { ...prometheus(), 'success-rate': '99', version: 'v2",namespace=~".*' }, [
      "Input 'version' is invalid: expected a label value",
      '(got "v2\\",namespace=~\\".*")'
    ])
  })

  it('a template with a placeholder outside a string is refused as the inputs are read', async () => {
    const checks = yaml.dump([{ name: 'raw', query: 'sum(rate(istio_requests_total{destination_workload={{workload}}}[1m]))', max: 1 }])
    await expectInputRefused(ns, { ...prometheus(), checks }, ['Input \'checks\' is invalid: check "raw"', '{{workload}}'])
  })
})

describe('promote and deploy against the rollout state', () => {
  it('a promote with no rollout is refused', async () => {
    await expectRefused(
      ns,
      { command: 'promote', manifests: '' },
      {
        kind: 'PreflightError',
        says: [`There is no rollout to promote on VirtualService "${ns}/${VS}".`]
      }
    )
  })

  // Regression: "nothing to abort" was decided under the lock, so a Lease was created and deleted.
  it('an abort with no rollout changes nothing, not even a Lease', async () => {
    const before = await namespaceFingerprint(ns)
    const { report, log } = await runAction({ ...seedInputs(ns), command: 'abort', manifests: '' })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('unchanged')
    expect(log.lines).toContain(`No rollout in progress on ${ns}/${VS}; nothing to abort.`)
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })

  describe('with a rollout paused at 50 %', () => {
    let paused: string
    beforeAll(async () => {
      paused = await createTestNamespace('bad-input-paused')
      await startSeedScenario(paused)
      const { report } = await runAction({ ...seedInputs(paused), steps: '50,pause,100' })
      expect(report.error).toBeUndefined()
      expect(report.result).toBe('paused')
    })
    afterAll(async () => {
      await deleteNamespace(paused)
    })

    it('a promote of a different version is refused', async () => {
      await expectRefused(
        paused,
        { command: 'promote', manifests: '', version: 'v3' },
        {
          kind: 'PreflightError',
          says: [
            `Input 'version' is "v3" but the rollout in progress on VirtualService "${paused}/${VS}" is of "v2"`,
            'refusing to promote a different version'
          ]
        }
      )
    })

    it('an abort naming a different version is refused', async () => {
      await expectRefused(
        paused,
        { command: 'abort', manifests: '', version: 'v3' },
        {
          kind: 'PreflightError',
          says: [
            `Input 'version' is "v3" but the rollout in progress on VirtualService "${paused}/${VS}" is of "v2"`,
            'refusing to abort a different version'
          ]
        }
      )
    })

    it('a deploy of another version without supersede is refused', async () => {
      const manifest = canary((d) => {
        d.metadata.name = 'istio-deployment-v3'
        d.spec.selector.matchLabels[VERSION_LABEL] = 'v3'
        d.spec.template.metadata.labels[VERSION_LABEL] = 'v3'
      })
      await expectRefused(
        paused,
        { manifests: manifest },
        {
          kind: 'PreflightError',
          says: [
            `VirtualService "${paused}/${VS}" is mid-rollout of "v2" (phase paused, 50% canary)`,
            "set input 'supersede' to true",
            'start "v3"'
          ]
        }
      )
    })
  })
})
