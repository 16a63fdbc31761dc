/**
 * Secret leakage (no secret reaches a log, an output, a report or the cluster). Runs whose kubeconfig comes from the
 * `kubeconfig` input (the admin token inline), with a Prometheus bearer token and webhook
 * Authorization headers, wired as main.ts wires them. Every log line, the rendered report, the
 * outputs and every error message of a successful run, of preflight failures and of a rollback must
 * hold no secret in any form (as is, base64, the Authorization header value). Masking by the runner
 * is the second line of defence; the first is never printing them: the PR comment is not masked.
 * Then: main's secret registration (loadKubeConfig().secrets, gateSecrets()) covers every form.
 */
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import * as yaml from 'js-yaml'
import { KubeCluster } from '../../../src/cluster/kube-cluster.js'
import { loadKubeConfig } from '../../../src/cluster/kubeconfig.js'
import { makeCommandDeps } from '../../../src/commands/command-deps.js'
import { runCommand } from '../../../src/commands/run-command.js'
import { MemoryLog } from '../../../src/commands/runtime.js'
import { readConfig } from '../../../src/config/config.js'
import { gateSecrets, parseGateConfig } from '../../../src/health/gate-config.js'
import { outputsOf } from '../../../src/report/outputs.js'
import { renderOneLine, renderPlainLog, renderReport } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'
import { writeManifest } from '../../support/rollout-harness.js'
import { NO_WRITES, namespaceFingerprint, namespaceWrites } from '../../support/namespace-fingerprint.js'
import {
  createTestNamespace,
  deleteNamespace,
  loadTestEnv,
  readSeedScenario,
  repoRoot,
  startSeedScenario
} from '../../support/test-cluster.js'

const random = (prefix: string): string => `${prefix}-${Array.from({ length: 3 }, () => Math.random().toString(36).slice(2, 10)).join('')}`

// ---- the secrets and their derived forms ------------------------------------------------------

interface AdminConfig {
  server: string
  ca: string
  token: string
}

/** The admin user's token, server and CA, read from the cluster's kubeconfig file. */
function adminConfig(): AdminConfig {
  const file = loadTestEnv().kubeconfigPath
  const kc = yaml.load(fs.readFileSync(file, 'utf8')) as any
  const cluster = kc.clusters[0].cluster
  const caFile = path.resolve(path.dirname(file), cluster['certificate-authority'])
  return { server: cluster.server, ca: fs.readFileSync(caFile).toString('base64'), token: kc.users[0].user.token }
}

/** A self-contained kubeconfig (CA and token inline), as a workflow passes it from a secret. */
function inlineKubeconfig(admin: AdminConfig, token = admin.token): string {
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: admin.server, 'certificate-authority-data': admin.ca } }],
    users: [{ name: 'deployer', user: { token } }],
    contexts: [{ name: 'ci', context: { cluster: 'test', user: 'deployer', namespace: 'default' } }],
    'current-context': 'ci'
  })
}

/** Everything a secret can turn into on its way to a log line or a report. */
function forms(secret: string): string[] {
  return [
    secret,
    Buffer.from(secret).toString('base64'),
    Buffer.from(secret).toString('base64url'),
    `Bearer ${secret}`,
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1)
  ]
}

/** Each text that holds a form of a secret, as `<where>: <form>` (the secret itself is not shown). */
function leaks(texts: Record<string, string>, secrets: Record<string, string>): string[] {
  const found: string[] = []
  for (const [where, text] of Object.entries(texts)) {
    for (const [name, secret] of Object.entries(secrets)) {
      forms(secret).forEach((f, i) => {
        if (text.includes(f)) found.push(`${where}: ${name} (form ${i})`)
      })
    }
  }
  return found
}

/** Everything a run shows anyone: log lines, the report as Markdown and as text, the outputs, the errors. */
function shown(outcome: Outcome): Record<string, string> {
  const texts: Record<string, string> = { log: outcome.log.lines.join('\n') }
  if (outcome.thrown) texts.thrown = `${(outcome.thrown as Error).message}\n${(outcome.thrown as Error).stack ?? ''}`
  if (outcome.report) {
    const r = outcome.report
    texts.markdown = renderReport(r)
    texts.plain = renderPlainLog(r)
    texts.oneLine = renderOneLine(r)
    texts.outputs = JSON.stringify(outputsOf(r))
    texts.error = r.error?.message ?? ''
    texts.report = JSON.stringify(r)
  }
  return texts
}

// ---- local endpoints: a webhook and a recording proxy in front of the real Prometheus -----------

interface Endpoint {
  url: string
  authorizations: string[]
  close(): Promise<void>
}

async function listen(handler: http.RequestListener): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** The cluster's Prometheus, behind a proxy that records the Authorization header it is sent. */
async function prometheusProxy(): Promise<Endpoint> {
  const authorizations: string[] = []
  const target = loadTestEnv().prometheusUrl
  const { url, server } = await listen(async (req, res) => {
    authorizations.push(req.headers.authorization ?? '')
    const body = await readBody(req)
    const upstream = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers: req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {},
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body
    })
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' })
    res.end(Buffer.from(await upstream.arrayBuffer()))
  })
  return { url, authorizations, close: () => new Promise((r) => server.close(() => r())) }
}

/** A webhook gate: 200, or (when `fail` says so) a 500 whose body echoes the request's headers, like a careless proxy. */
async function webhook(fail: () => boolean): Promise<Endpoint> {
  const authorizations: string[] = []
  const { url, server } = await listen(async (req, res) => {
    await readBody(req)
    authorizations.push(req.headers.authorization ?? '')
    if (fail()) {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(`upstream error; request headers were: ${JSON.stringify(req.headers)}`)
    } else {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    }
  })
  return { url, authorizations, close: () => new Promise((r) => server.close(() => r())) }
}

// ---- a run wired as main.ts wires it, the kubeconfig from the input ----------------------------

interface Outcome {
  report?: RunReport
  thrown?: unknown
  log: MemoryLog
  /** What main would register with core.setSecret. */
  registered: string[]
}

async function runAsMain(inputs: Record<string, string>, env: Record<string, string>): Promise<Outcome> {
  const log = new MemoryLog()
  const registered: string[] = []
  try {
    const config = readConfig({ settle: '0s', interval: '1s', ...inputs }, env)
    const gateConfig = parseGateConfig({ 'check-every': '0', ...inputs }, env)
    registered.push(...gateSecrets(gateConfig))
    // No KUBECONFIG, no HOME: the input is the only way to the cluster.
    const kube = loadKubeConfig({ content: config.kubeconfig, env: {} })
    registered.push(...kube.secrets)
    const cluster = new KubeCluster(kube.kubeConfig)
    const report = await runCommand(
      config,
      makeCommandDeps({
        cluster,
        config,
        gateConfig,
        log,
        signal: new AbortController().signal,
        holder: `secrets-test ${process.pid}`,
        cwd: process.cwd(),
        defaultNamespace: kube.namespace
      })
    )
    return { report, log, registered }
  } catch (thrown) {
    return { thrown, log, registered }
  }
}

// ---------------------------------------------------------------------------------------------

/** The seed's v2 Deployment relabelled as another version. */
function seedVersion(version: string): any {
  const deployment = yaml.load(readSeedScenario('deployment-v2.yaml')) as any
  deployment.metadata.name = `istio-deployment-${version}`
  deployment.spec.selector.matchLabels['istio-test-version'] = version
  deployment.spec.template.metadata.labels['istio-test-version'] = version
  return deployment
}

describe('no secret in any log line, report or error', () => {
  const admin = adminConfig()
  const secrets = {
    'admin token': admin.token,
    'prometheus-token': random('prom-token'),
    'webhook token (env)': random('hook-token'),
    'webhook literal header': random('hook-literal')
  }
  const env = { HOOK_TOKEN: secrets['webhook token (env)'] }
  let ns: string
  let prometheus: Endpoint
  let hook: Endpoint
  let failHook = false

  const inputs = (over: Record<string, string> = {}): Record<string, string> => ({
    kubeconfig: inlineKubeconfig(admin),
    manifests: writeManifest(readSeedScenario('deployment-v2.yaml')),
    'virtual-service': 'istio-virtualservice',
    namespace: ns,
    'version-label': 'istio-test-version',
    steps: '50,100',
    'prometheus-url': prometheus.url,
    'prometheus-token': secrets['prometheus-token'],
    'min-requests': '0',
    checks: yaml.dump([{ name: 'always-one', query: 'vector(1)', min: 1 }]),
    webhooks: yaml.dump([
      {
        name: 'approval',
        url: `${hook.url}/gate`,
        moments: ['bake'],
        retries: 0,
        headers: { Authorization: 'Bearer ${HOOK_TOKEN}', 'X-Api-Key': secrets['webhook literal header'] }
      }
    ]),
    ...over
  })

  beforeAll(async () => {
    ns = await createTestNamespace('secrets')
    ;[prometheus, hook] = await Promise.all([prometheusProxy(), webhook(() => failHook)])
    await startSeedScenario(ns)
  })
  afterAll(async () => {
    await Promise.all([prometheus?.close(), hook?.close(), deleteNamespace(ns)])
  })

  it('a successful rollout (v1 -> v2) that used every secret', async () => {
    const outcome = await runAsMain(inputs(), env)
    expect(outcome.thrown).toBeUndefined()
    expect(outcome.report?.error).toBeUndefined()
    expect(outcome.report?.result).toBe('promoted')
    // The secrets were really used: the gates got their credentials.
    expect(prometheus.authorizations).toContain(`Bearer ${secrets['prometheus-token']}`)
    expect(hook.authorizations).toContain(`Bearer ${secrets['webhook token (env)']}`)
    expect(leaks(shown(outcome), secrets)).toEqual([])
  })

  it('preflight failures: a missing VirtualService, a rejected query', async () => {
    // v2 is stable after the rollout above, and re-deploying it is a no-op that checks no query:
    // the rejected query comes with a release of a new version.
    for (const over of <Array<Record<string, string>>>[
      { 'virtual-service': 'no-such-vs' },
      {
        manifests: writeManifest(yaml.dump(seedVersion('v3'))),
        checks: yaml.dump([{ name: 'typo', query: 'sum(rat(istio_requests_total[1m]))', max: 1 }])
      }
    ]) {
      const before = await namespaceFingerprint(ns)
      const outcome = await runAsMain(inputs(over), env)
      expect(outcome.report?.error?.kind).toMatch(/PreflightError|ConfigError/)
      expect(outcome.report?.result).toBe('unchanged')
      expect(leaks(shown(outcome), secrets)).toEqual([])
      expect(await namespaceWrites(before)).toEqual(NO_WRITES)
    }
  })

  it('bad kubeconfig inputs holding the token: refused without quoting it', async () => {
    const bad = [
      // A token pasted where the kubeconfig goes.
      admin.token,
      // Its base64.
      Buffer.from(inlineKubeconfig(admin)).toString('base64'),
      // Broken YAML right after the token.
      `${inlineKubeconfig(admin)}\n  - : [unclosed ${admin.token}\n`,
      // A current-context naming no context (context names are not credentials: that one is quoted).
      inlineKubeconfig(admin).replace(/current-context: .*/, 'current-context: nowhere')
    ]
    for (const [i, kubeconfig] of bad.entries()) {
      const outcome = await runAsMain(inputs({ kubeconfig }), env)
      expect((outcome.thrown as Error | undefined)?.name ?? outcome.report?.error?.kind).toBe('ConfigError')
      expect(leaks(shown(outcome), secrets).map((l) => `case ${i}: ${l}`)).toEqual([])
    }
  })

  it('a rejected credential (401): the wrong token is not shown either', async () => {
    const wrong = random('wrong-token')
    const outcome = await runAsMain(inputs({ kubeconfig: inlineKubeconfig(admin, wrong) }), env)
    expect(outcome.report?.error?.kind).toBe('KubeApiError')
    expect(outcome.report?.error?.message).toMatch(/401|Unauthorized/)
    expect(outcome.report?.result).toBe('unchanged')
    expect(leaks(shown(outcome), { ...secrets, 'wrong token': wrong })).toEqual([])
  })

  it('a rollback: the webhook gate fails with a 500 whose body echoes the request headers', async () => {
    failHook = true
    try {
      const outcome = await runAsMain(inputs({ manifests: writeManifest(yaml.dump(seedVersion('v3'))) }), env)
      expect(outcome.report?.result).toBe('rolled-back')
      expect(outcome.report?.error?.kind).toBe('RolledBack')
      // The gate's verdict says what happened, without the echoed credentials.
      expect(JSON.stringify(outcome.report)).toContain('HTTP 500')
      expect(leaks(shown(outcome), secrets)).toEqual([])
    } finally {
      failHook = false
    }
  })
})

describe("main's secret registration covers every form that goes on the wire", () => {
  /** A form is masked when a registered secret occurs in it (masking replaces substrings). */
  const masked = (registered: string[], form: string): boolean => registered.some((s) => form.includes(s))

  it('loadKubeConfig: the token, the bearer header, client key (base64, PEM and each PEM line), password, OIDC tokens', () => {
    const text = fs.readFileSync(path.join(repoRoot, '__tests__', 'unit', 'cluster', 'fixtures', 'kubeconfig-secrets.yaml'), 'utf8')
    const { secrets } = loadKubeConfig({ content: text, env: {} })
    const users = (yaml.load(text) as any).users as Array<{ user: any }>
    const deployer = users[0].user
    const pem = Buffer.from(deployer['client-key-data'], 'base64').toString('utf8')
    const wire = [
      deployer.token,
      `Bearer ${deployer.token}`,
      deployer['client-key-data'],
      pem,
      ...pem.split('\n').filter((l) => l && !l.startsWith('-----')),
      users[1].user.password,
      users[2].user['auth-provider'].config['id-token'],
      `Bearer ${users[2].user['auth-provider'].config['id-token']}`,
      users[2].user['auth-provider'].config['refresh-token'],
      users[2].user['auth-provider'].config['client-secret']
    ]
    expect(wire.filter((f) => !masked(secrets, f))).toEqual([])
  })

  it('loadKubeConfig: the inline admin kubeconfig of the runs above', () => {
    const admin = adminConfig()
    const { secrets } = loadKubeConfig({ content: inlineKubeconfig(admin), env: {} })
    expect(secrets).toContain(admin.token)
    expect(masked(secrets, `Bearer ${admin.token}`)).toBe(true)
  })

  it('gateSecrets: Prometheus bearer token, webhook headers from ${ENV} and literal ones', () => {
    const token = random('prom')
    const hookToken = random('hook')
    const literal = random('literal')
    const config = parseGateConfig(
      {
        'prometheus-url': 'http://prometheus:9090',
        'prometheus-token': token,
        'success-rate': '99',
        webhooks: yaml.dump([
          {
            name: 'a',
            url: 'https://hooks.example/${HOOK_PATH_TOKEN}',
            moments: ['bake'],
            headers: { Authorization: 'Bearer ${HOOK}', 'X-Key': literal }
          }
        ])
      },
      { HOOK: hookToken, HOOK_PATH_TOKEN: 'path-secret-0123456789' }
    )
    const registered = gateSecrets(config)
    const wire = [
      token,
      `Bearer ${token}`,
      hookToken,
      `Bearer ${hookToken}`,
      literal,
      'path-secret-0123456789',
      'https://hooks.example/path-secret-0123456789'
    ]
    expect(wire.filter((f) => !masked(registered, f))).toEqual([])
  })

  it('gateSecrets: Prometheus basic auth, the password and the header value', () => {
    const password = random('pw')
    const config = parseGateConfig({
      'prometheus-url': 'http://prometheus:9090',
      'prometheus-username': 'ci',
      'prometheus-password': password,
      'success-rate': '99'
    })
    const header = Buffer.from(`ci:${password}`).toString('base64')
    expect([password, header, `Basic ${header}`].filter((f) => !masked(gateSecrets(config), f))).toEqual([])
  })
})
