/**
 * Every way a user can give the action Kubernetes credentials still works now that the requests
 * go through Node's https (KubeConfig only applies the credentials): against the real local
 * kube-apiserver, the user it authenticates is asked back with a SelfSubjectReview.
 *
 * Basic auth: kube-apiserver dropped it (1.19), so that test checks the exact header the action
 * sends at a local HTTPS proxy, which then forwards the request with the admin token.
 */
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'
import { KubeCluster } from '../../../src/cluster/kube-cluster.js'
import { loadKubeConfig } from '../../../src/cluster/kubeconfig.js'
import { KubeHttpClient } from '../../../src/cluster/kube-http-client.js'
import { clients, clusterStateDir, createTestNamespace, deleteNamespace, loadTestEnv } from '../../support/test-cluster.js'
import { selfSignedCert } from '../../support/fault-proxy.js'

let ns: string
let apiUrl: URL
let caFile: string
let adminToken: string
let tmp: string
const closers: Array<() => void> = []

beforeAll(async () => {
  ns = await createTestNamespace('auth')
  const kc = fs.readFileSync(loadTestEnv().kubeconfigPath, 'utf8')
  apiUrl = new URL(/server: (\S+)/.exec(kc)![1])
  caFile = /certificate-authority: (\S+)/.exec(kc)![1]
  adminToken = /token: (\S+)/.exec(kc)![1]
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-auth-'))
})
afterAll(async () => {
  for (const c of closers) c()
  fs.rmSync(tmp, { recursive: true, force: true })
  if (ns) await deleteNamespace(ns)
})

/** A kubeconfig document for the test cluster with the given user (and cluster extras). */
function kubeconfigYaml(user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: apiUrl.origin, 'certificate-authority': caFile, ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: ns } }],
    'current-context': 'x'
  })
}

/** Through the action's own loader, as the `kubeconfig` input. */
function fromInput(yaml: string): KubeConfig {
  return loadKubeConfig({ content: yaml, env: {} }).kubeConfig
}

/** Who the API server says we are. */
async function whoAmI(kc: KubeConfig): Promise<string> {
  const client = new KubeHttpClient(kc)
  try {
    const review = await client.request<{ status: { userInfo: { username: string } } }>({
      method: 'POST',
      path: '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }
    })
    return review.status.userInfo.username
  } finally {
    client.close()
  }
}

/** The Cluster port works with these credentials: discovery (authenticated users only) and an access review. */
async function portWorks(kc: KubeConfig): Promise<void> {
  const cluster = new KubeCluster(kc, { callDeadlineMs: 10_000 })
  expect(await cluster.istioVersion()).toBe('v1')
  const [access] = await cluster.canI([{ verb: 'get', group: 'networking.istio.io', resource: 'virtualservices', namespace: ns }])
  expect(typeof access.allowed).toBe('boolean')
  cluster.close()
}

test('bearer token (token:)', async () => {
  const kc = fromInput(kubeconfigYaml({ token: adminToken }))
  expect(await whoAmI(kc)).toBe('admin')
  await portWorks(kc)
})

test('a token file (token-file:) and the in-cluster service account (token and CA files, re-read by KubeConfig)', async () => {
  await clients.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'deployer' } } })
  const tr = await clients.core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: 'deployer',
    body: { spec: { audiences: [], expirationSeconds: 600 } }
  })
  const token = String(tr.status?.token)
  const tokenFile = path.join(tmp, 'sa-token')
  fs.writeFileSync(tokenFile, token)
  const fromFile = fromInput(kubeconfigYaml({ 'token-file': tokenFile }))
  expect(await whoAmI(fromFile)).toBe(`system:serviceaccount:${ns}:deployer`)

  // In a pod: /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace} and KUBERNETES_SERVICE_*.
  const root = path.join(tmp, 'pod')
  const saDir = path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount')
  fs.mkdirSync(saDir, { recursive: true })
  fs.writeFileSync(path.join(saDir, 'token'), token)
  fs.copyFileSync(caFile, path.join(saDir, 'ca.crt'))
  fs.writeFileSync(path.join(saDir, 'namespace'), ns)
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT }
  process.env.KUBERNETES_SERVICE_HOST = apiUrl.hostname
  process.env.KUBERNETES_SERVICE_PORT = apiUrl.port
  const inCluster = new KubeConfig()
  try {
    inCluster.loadFromCluster(root)
  } finally {
    for (const [k, v] of [
      ['KUBERNETES_SERVICE_HOST', saved.host],
      ['KUBERNETES_SERVICE_PORT', saved.port]
    ] as const) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  expect(inCluster.getCurrentUser()?.authProvider?.name).toBe('tokenFile')
  expect(await whoAmI(inCluster)).toBe(`system:serviceaccount:${ns}:deployer`)
  await portWorks(inCluster)
})

test('an exec credential plugin (EKS/GKE style), run once and its token reused', async () => {
  const restrictedToken = fs.readFileSync(path.join(clusterStateDir, 'restricted-token'), 'utf8').trim()
  const calls = path.join(tmp, 'exec-calls')
  const plugin = path.join(tmp, 'plugin.cjs')
  fs.writeFileSync(
    plugin,
    `require('node:fs').appendFileSync(${JSON.stringify(calls)}, 'x');
     process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential',
       status: { token: process.env.PLUGIN_TOKEN } }))`
  )
  const kc = fromInput(
    kubeconfigYaml({
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: process.execPath,
        args: [plugin],
        env: [{ name: 'PLUGIN_TOKEN', value: restrictedToken }],
        interactiveMode: 'Never'
      }
    })
  )
  expect(await whoAmI(kc)).toBe('restricted')
  await portWorks(kc)
  expect(fs.readFileSync(calls, 'utf8')).toBe('x')
})

test('a client certificate and key (files, and inline -data)', async () => {
  const pki = path.join(clusterStateDir, 'pki')
  const files = fromInput(
    kubeconfigYaml({ 'client-certificate': path.join(pki, 'client.crt'), 'client-key': path.join(pki, 'client.key') })
  )
  expect(await whoAmI(files)).toBe('cert-user')
  await portWorks(files)
  const b64 = (f: string) => fs.readFileSync(path.join(pki, f)).toString('base64')
  const inline = fromInput(kubeconfigYaml({ 'client-certificate-data': b64('client.crt'), 'client-key-data': b64('client.key') }))
  expect(await whoAmI(inline)).toBe('cert-user')
})

test('basic auth: the action sends "Authorization: Basic base64(user:password)" (checked at a local proxy)', async () => {
  const { key, cert } = selfSignedCert()
  const seen: string[] = []
  const upstreamCa = fs.readFileSync(caFile)
  const proxy = https.createServer({ key, cert }, (req, res) => {
    seen.push(req.headers.authorization ?? '')
    const ok = req.headers.authorization === `Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401, message: 'Unauthorized' })
      )
      return
    }
    const headers = { ...req.headers, authorization: `Bearer ${adminToken}`, host: apiUrl.host }
    const up = https.request(
      { host: apiUrl.hostname, port: apiUrl.port, method: req.method, path: req.url, headers, ca: upstreamCa, agent: false },
      (r) => {
        res.writeHead(r.statusCode!, r.headers)
        r.pipe(res)
      }
    )
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  closers.push(() => {
    proxy.closeAllConnections()
    proxy.close()
  })
  const port = (proxy.address() as AddressInfo).port
  const kc = fromInput(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'c', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': Buffer.from(cert).toString('base64') } }
      ],
      users: [{ name: 'u', user: { username: 'alice', password: 's3cr:et' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x'
    })
  )
  expect(await whoAmI(kc)).toBe('admin')
  await portWorks(kc)
  expect(seen.length).toBeGreaterThanOrEqual(3)
  expect(new Set(seen)).toEqual(new Set([`Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`]))
})

test('proxy-url: through an HTTP CONNECT proxy on loopback, one tunnel kept alive for several requests', async () => {
  const connects: string[] = []
  const proxy = http.createServer((_req, res) => res.writeHead(405).end())
  proxy.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    const up = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length) up.write(head)
      up.pipe(socket).pipe(up)
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  closers.push(() => {
    proxy.closeAllConnections()
    proxy.close()
  })
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  const kc = fromInput(kubeconfigYaml({ token: adminToken }, { 'proxy-url': proxyUrl }))
  expect(await whoAmI(kc)).toBe('admin')
  const cluster = new KubeCluster(kc)
  expect(await cluster.istioVersion()).toBe('v1')
  expect(await cluster.getNamespace(ns)).toMatchObject({ kind: 'Namespace', metadata: { name: ns } })
  expect(await cluster.getLease(ns, 'none')).toBeUndefined()
  cluster.close()
  expect(connects.every((c) => c === apiUrl.host)).toBe(true)
  // whoAmI's client closed its tunnel; the cluster's three requests shared one more.
  expect(connects).toHaveLength(2)
})

test('the CONNECT proxy is really in the path: with it stopped, requests fail', async () => {
  const closed = http.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const kc = fromInput(kubeconfigYaml({ token: adminToken }, { 'proxy-url': `http://127.0.0.1:${port}` }))
  const cluster = new KubeCluster(kc, { callDeadlineMs: 300, minBackoffMs: 20 })
  await expect(cluster.istioVersion()).rejects.toThrow(/network error ECONNREFUSED/)
})
