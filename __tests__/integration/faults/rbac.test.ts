/**
 * Least privilege (the minimal Kubernetes RBAC), as the README
 * shows it: docs/rbac.yaml. The whole seed rollout (v1 -> v2, steps 50,100) runs as the cluster's
 * user "restricted" bound to exactly that Role. Then, for every verb the Role grants, a Role without
 * just that verb: the run must stop in preflight with an error naming the verb and resource, and
 * write nothing. Together: the Role is enough, and nothing in it is spare.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, test } from '@jest/globals'
import { AuthorizationV1Api, type V1PolicyRule, type V1Role } from '@kubernetes/client-node'
import * as yaml from 'js-yaml'
import { routeOf, runAction, snapshot, stateOf, testCluster, writeManifest } from '../../support/rollout-harness.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import {
  applyManifests,
  clients,
  createTestNamespace,
  deleteNamespace,
  loadTestEnv,
  readSeedScenario,
  repoRoot,
  restrictedKubeConfig,
  SEED_START_FILES,
  waitFor,
  waitForDeploymentCondition,
  withBehaviour
} from '../../support/test-cluster.js'

const USER = 'restricted'

/** The Role exactly as docs/rbac.yaml has it. */
function documentedRole(): V1Role {
  return yaml.load(fs.readFileSync(path.join(repoRoot, 'docs', 'rbac.yaml'), 'utf8')) as V1Role
}

interface Grant {
  group: string
  resource: string
  verb: string
}
const grantText = (g: Grant): string => `${g.verb} ${g.group ? `${g.group}/` : ''}${g.resource}`

/** Every (group, resource, verb) the rules grant. */
function grantsOf(rules: V1PolicyRule[]): Grant[] {
  return rules.flatMap((r) =>
    (r.apiGroups ?? []).flatMap((group) => (r.resources ?? []).flatMap((resource) => r.verbs.map((verb) => ({ group, resource, verb }))))
  )
}

/** The rules without one grant (a rule naming several resources is split so the others keep it). */
function rulesWithout(rules: V1PolicyRule[], g: Grant): V1PolicyRule[] {
  return rules.flatMap((r) => {
    if (!(r.apiGroups ?? []).includes(g.group) || !(r.resources ?? []).includes(g.resource) || !r.verbs.includes(g.verb)) return [r]
    const others = (r.resources ?? []).filter((x) => x !== g.resource)
    const verbs = r.verbs.filter((v) => v !== g.verb)
    return [...(others.length ? [{ ...r, resources: others }] : []), ...(verbs.length ? [{ ...r, resources: [g.resource], verbs }] : [])]
  })
}

/** Puts `rules` into the Role bound to "restricted" and waits until the authorizer answers by them. */
async function setRules(ns: string, rules: V1PolicyRule[], all: Grant[]): Promise<void> {
  const current = await clients.rbac.readNamespacedRole({ namespace: ns, name: 'istio-canary' })
  await clients.rbac.replaceNamespacedRole({ namespace: ns, name: 'istio-canary', body: { ...current, rules } })
  const granted = new Set(grantsOf(rules).map(grantText))
  const authz = restrictedKubeConfig().makeApiClient(AuthorizationV1Api)
  await waitFor(
    async () => {
      const answers = await Promise.all(
        all.map(async (g) => {
          const review = await authz.createSelfSubjectAccessReview({
            body: { spec: { resourceAttributes: { namespace: ns, group: g.group, resource: g.resource, verb: g.verb } } }
          })
          return (review.status?.allowed === true) === granted.has(grantText(g))
        })
      )
      return answers.every(Boolean)
    },
    { what: `the RBAC authorizer to apply the rules of Role ${ns}/istio-canary`, intervalMs: 100, timeoutMs: 15_000 }
  )
}

/** Creates the documented Role and its RoleBinding for "restricted" in the namespace. */
async function bindDocumentedRole(ns: string): Promise<void> {
  const role = documentedRole()
  await clients.rbac.createNamespacedRole({ namespace: ns, body: { ...role, metadata: { ...role.metadata, namespace: ns } } })
  await clients.rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'istio-canary' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata!.name! },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: USER }]
    }
  })
  await setRules(ns, role.rules ?? [], grantsOf(role.rules ?? []))
}

async function seed(prefix: string): Promise<string> {
  const ns = await createTestNamespace(prefix)
  await applyManifests(ns, SEED_START_FILES.map(readSeedScenario))
  await bindDocumentedRole(ns)
  await waitForDeploymentCondition(ns, 'istio-deployment-v1', 'Available')
  return ns
}

const seedInputs = (ns: string): Record<string, string> => ({
  manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
  'virtual-service': 'istio-virtualservice',
  namespace: ns,
  'version-label': 'istio-test-version',
  steps: '50,100'
})

/** An RBAC denial in a log line: the word or the status code, not three digits inside a pod's UID. */
const DENIED = /\bforbidden\b|\b403\b/i
/** Grants the action can do without: denied, preflight warns instead of refusing. */
const OPTIONAL = ['list events', 'list autoscaling/horizontalpodautoscalers', 'list resourcequotas', 'list policy/poddisruptionbudgets']

const role = documentedRole()
const documented = grantsOf(role.rules ?? [])

it('docs/rbac.yaml is a namespaced Role: no Secrets, no wildcards, no cluster-scoped objects', () => {
  expect(role.kind).toBe('Role')
  expect(role.metadata?.namespace).toBeUndefined()
  for (const g of documented) {
    expect(g.verb).not.toBe('*')
    expect(g.resource).not.toBe('*')
    expect(g.group).not.toBe('*')
    expect(g.resource).not.toBe('secrets')
  }
})

describe('as user "restricted" bound to exactly docs/rbac.yaml', () => {
  let ns: string
  beforeAll(async () => {
    ns = await seed('rbac-rollout')
  })
  afterAll(async () => {
    await deleteNamespace(ns)
  })

  it('the whole seed rollout v1 -> v2 (50, 100) succeeds', async () => {
    const { report, log } = await runAction(seedInputs(ns), { kubeconfigPath: loadTestEnv().restrictedKubeconfigPath })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('promoted')
    expect(report.stableVersion).toBe('v2')
    // Namespaces are cluster-scoped: the Role cannot read them, and preflight says so instead of failing.
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringContaining(`could not read namespace ${ns}`)]))
    expect(log.lines.filter((l) => DENIED.test(l))).toEqual([])

    const cluster = testCluster()
    const vs = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    expect(stateOf(vs)?.phase).toBe('promoted')
    const dr = await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')
    expect(dr.spec.subsets).toEqual([{ name: 'v2', labels: { 'istio-test-version': 'v2' } }])
    expect((await cluster.getDeployment(ns, 'istio-deployment-v1'))?.spec.replicas).toBe(0)
    expect(await cluster.getLease(ns, 'istio-canary-istio-virtualservice')).toBeUndefined()
  })

  it('then a crashing v3 is rolled back to v2, all within the Role', async () => {
    const v3 = withBehaviour(readSeedScenario('deployment-v2.yaml'), 'crash', { restartInterval: '1s' })
    v3.metadata!.name = 'istio-deployment-v3'
    v3.spec!.selector.matchLabels!['istio-test-version'] = 'v3'
    v3.spec!.template.metadata!.labels!['istio-test-version'] = 'v3'
    const { report, log } = await runAction(
      { ...seedInputs(ns), manifests: writeManifest(yaml.dump(v3)), 'progress-deadline': '4s' },
      { kubeconfigPath: loadTestEnv().restrictedKubeconfigPath }
    )
    expect(report.result).toBe('rolled-back')
    expect(report.error?.kind).toBe('RolledBack')
    expect(log.lines.filter((l) => DENIED.test(l))).toEqual([])

    const cluster = testCluster()
    const vs = await snapshot(cluster, 'VirtualService', ns, 'istio-virtualservice')
    expect(routeOf(vs)).toEqual([{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    const dr = await snapshot(cluster, 'DestinationRule', ns, 'istio-destinationrule')
    expect(dr.spec.subsets).toEqual([{ name: 'v2', labels: { 'istio-test-version': 'v2' } }])
    expect((await cluster.getDeployment(ns, 'istio-deployment-v3'))?.spec.replicas).toBe(0)
    expect(await cluster.getLease(ns, 'istio-canary-istio-virtualservice')).toBeUndefined()
  })
})

describe('as user "restricted" with one verb of docs/rbac.yaml removed', () => {
  let ns: string
  beforeAll(async () => {
    ns = await seed('rbac-missing')
  })
  afterAll(async () => {
    await deleteNamespace(ns)
  })

  test.each(documented.filter((g) => !OPTIONAL.includes(grantText(g))).map((g) => [grantText(g), g] as const))(
    'without %s: refused in preflight, zero writes',
    async (text, g) => {
      await setRules(ns, rulesWithout(role.rules ?? [], g), documented)
      const before = await namespaceFingerprint(ns)
      const { report } = await runAction(seedInputs(ns), { kubeconfigPath: loadTestEnv().restrictedKubeconfigPath })
      expect(report.error?.kind).toBe('PreflightError')
      expect(report.error?.message).toContain(`The Kubernetes credentials may not: `)
      expect(report.error?.message).toMatch(
        new RegExp(`may not: (.*, )?${text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}( [a-z0-9.-]+)?(,|\\s)`)
      )
      expect(report.error?.message).toContain(`in namespace "${ns}"`)
      expect(report.result).toBe('unchanged')
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    }
  )

  test.each(OPTIONAL)('without %s (diagnosis only): preflight warns, and a dry run writes nothing', async (text) => {
    const g = documented.find((x) => grantText(x) === text)!
    await setRules(ns, rulesWithout(role.rules ?? [], g), documented)
    const before = await namespaceFingerprint(ns)
    const { report } = await runAction({ ...seedInputs(ns), 'dry-run': 'true' }, { kubeconfigPath: loadTestEnv().restrictedKubeconfigPath })
    expect(report.error).toBeUndefined()
    expect(report.result).toBe('unchanged')
    expect(report.warnings).toEqual(
      expect.arrayContaining([expect.stringContaining(`the Kubernetes credentials may not ${text} in namespace ${ns}`)])
    )
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })

  it('retire: delete needs delete on deployments, which the Role leaves out: refused in preflight, zero writes', async () => {
    await setRules(ns, role.rules ?? [], documented)
    const before = await namespaceFingerprint(ns)
    const { report } = await runAction({ ...seedInputs(ns), retire: 'delete' }, { kubeconfigPath: loadTestEnv().restrictedKubeconfigPath })
    expect(report.error?.kind).toBe('PreflightError')
    expect(report.error?.message).toContain(`The Kubernetes credentials may not: delete apps/deployments in namespace "${ns}"`)
    expect(report.result).toBe('unchanged')
    expect(await namespaceWrites(before)).toEqual(NO_WRITES)
  })
})
