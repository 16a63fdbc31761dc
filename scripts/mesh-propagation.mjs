// Measures propagation on the local cluster's mesh: the time from a VirtualService write (the
// apiserver's answer) to the first call that istiod's new route sends to the other subset, as
// meshsim's xDS caller saw it. Flips the seed's route between 100 % v1 and 100 % v2 20 times.
//
//   npm run cluster:up && node scripts/mesh-propagation.mjs [writes=20] [rps=200]
//
// Uses the seed's manifests in examples/seed/.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const state = process.env.ISTIO_CANARY_CLUSTER_STATE ?? path.join(root, '.cluster')
const env = Object.fromEntries(
  fs
    .readFileSync(path.join(state, 'env'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
)
const seed = path.join(root, 'examples/seed')
const writes = Number(process.argv[2] ?? 20)
const rps = Number(process.argv[3] ?? 200)
const token = fs.readFileSync(path.join(state, 'admin-token'), 'utf8').trim()
const ca = fs.readFileSync(path.join(state, 'pki/apiserver.crt'))
const kubectl = (...args) =>
  execFileSync(path.join(root, '.cluster-bin/kubectl'), ['--kubeconfig', env.KUBECONFIG, ...args], { encoding: 'utf8' })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function patchRoute(ns, subset) {
  const body = JSON.stringify({ spec: { http: [{ route: [{ destination: { host: 'istio-service', subset }, weight: 100 }] }] } })
  const url = new URL(`${env.KUBE_API_URL}/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices/istio-virtualservice`)
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'PATCH', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' } },
      (res) => {
        res.resume()
        res.on('end', () => (res.statusCode === 200 ? resolve(Date.now()) : reject(new Error(`PATCH ${res.statusCode}`))))
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

const ns = `mesh-propagation-${Date.now().toString(36)}`
kubectl('create', 'namespace', ns)
kubectl('label', 'namespace', ns, 'istio-injection=enabled')
kubectl('-n', ns, 'create', 'serviceaccount', 'default')
for (const f of ['deployment-v1.yaml', 'deployment-v2.yaml', 'service.yaml', 'destinationrule-v1-v2.yaml', 'virtualservice-v1.yaml']) {
  kubectl('-n', ns, 'apply', '-f', path.join(seed, f))
}
kubectl('-n', ns, 'wait', '--for=condition=Available', '--timeout=90s', 'deployment/istio-deployment-v1', 'deployment/istio-deployment-v2')
const callerUrl = `${env.MESHSIM_URL}/callers/${ns}/probe`
let res = await fetch(callerUrl, { method: 'PUT', body: JSON.stringify({ service: 'istio-service', rps }) })
if (!res.ok) throw new Error(`starting the caller: ${await res.text()}`)
const stats = async (since) => await (await fetch(`${callerUrl}?since=${since}&entries=1`)).json()
try {
  // Warm: every call on v1.
  for (let t = Date.now(); ; await sleep(200)) {
    const s = await stats(Date.now() - 500)
    if ((s.entries ?? []).length > rps / 4 && s.entries.every((e) => e.workload === 'istio-deployment-v1')) break
    if (Date.now() - t > 30_000) throw new Error(`the caller never settled on v1: ${JSON.stringify(s.byWorkload)}`)
  }
  const delays = []
  for (let i = 0; i < writes; i++) {
    const subset = i % 2 === 0 ? 'v2' : 'v1'
    const workload = `istio-deployment-${subset}`
    const written = await patchRoute(ns, subset)
    let first
    for (const deadline = written + 30_000; !first && Date.now() < deadline; await sleep(20)) {
      first = (await stats(written)).entries?.find((e) => e.workload === workload)
    }
    if (!first) throw new Error(`write ${i + 1}: no call reached ${workload} within 30 s`)
    delays.push(first.t - written)
    await sleep(1000)
  }
  const sorted = [...delays].sort((a, b) => a - b)
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
  const total = await stats(0)
  console.log(
    `propagation over ${writes} writes at ${rps} rps: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, min ${sorted[0]} ms, max ${sorted.at(-1)} ms`
  )
  console.log(`delays (ms): ${delays.join(' ')}`)
  console.log(`calls: ${total.sent}, failed: ${total.failed} ${JSON.stringify(total.errors)}`)
} finally {
  await fetch(callerUrl, { method: 'DELETE' })
  kubectl('delete', 'namespace', ns, '--wait=false')
}
