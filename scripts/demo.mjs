// npm run demo: a real canary rollout on the local cluster, run exactly as the GitHub runner runs
// the action (node dist/index.js, inputs as INPUT_* variables, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY).
//   1. the seed article's release, v1 -> v2 (v1alpha3 objects, label istio-test-version), through
//      10, 25, 50, 100 with Prometheus gates fed by the traffic source;
//   2. a second release, v3, whose pods crash: rolled back, no traffic ever reaches it.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const seed = path.join(root, 'examples', 'seed')
const kubectlBin = path.join(root, '.cluster-bin', 'kubectl')

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? 'pipe' : 'inherit', encoding: 'utf8', input: opts.input })
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr ?? ''}`)
  }
  return r.stdout ?? ''
}

function step(title) {
  console.log(`\n\x1b[1m== ${title}\x1b[0m`)
}

if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) sh('npm', ['run', 'bundle'])
step('Local cluster (kube-apiserver, controller-manager, kwok, Prometheus, traffic source)')
sh('bash', [path.join(root, 'test-cluster', 'up.sh')])
const env = Object.fromEntries(
  fs
    .readFileSync(path.join(root, '.cluster', 'env'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
)
const kubectl = (args, opts) => sh(kubectlBin, ['--kubeconfig', env.KUBECONFIG, ...args], opts)

const ns = `demo-${Date.now().toString(36)}`
step(`The seed's starting state in namespace ${ns}: v1 serves 100 %`)
kubectl(['create', 'namespace', ns])
kubectl(['label', 'namespace', ns, 'istio-injection=enabled'])
kubectl(['-n', ns, 'create', 'serviceaccount', 'default'], { allowFail: true, quiet: true })
for (const f of ['deployment-v1.yaml', 'service.yaml', 'destinationrule-v1.yaml', 'virtualservice-v1.yaml']) {
  kubectl(['-n', ns, 'apply', '-f', path.join(seed, f)])
}
kubectl(['-n', ns, 'rollout', 'status', 'deployment/istio-deployment-v1', '--timeout=60s'])

// Istio-style request metrics for both versions: healthy, 50 req/s, p99 80 ms.
for (const workload of ['istio-deployment-v1', 'istio-deployment-v2', 'istio-deployment-v3']) {
  await fetch(`${env.TRAFFIC_URL}/workloads/${ns}/${workload}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rps: 50, errorRatio: 0.001, latencyMs: 80, service: 'istio-service' })
  })
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'istio-canary-demo-'))
/** Runs dist/index.js as the runner does; prints its log lines; returns outputs and the summary. */
async function runAction(name, inputs) {
  const files = {
    output: path.join(work, `${name}.output`),
    summary: path.join(work, `${name}.md`),
    state: path.join(work, `${name}.state`)
  }
  for (const f of Object.values(files)) fs.writeFileSync(f, '')
  const childEnv = {
    ...process.env,
    KUBECONFIG: env.KUBECONFIG,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_STATE: files.state,
    GITHUB_WORKSPACE: work,
    'INPUT_GITHUB-TOKEN': ''
  }
  for (const [k, v] of Object.entries(inputs)) childEnv[`INPUT_${k.toUpperCase()}`] = v
  const child = spawn(process.execPath, [path.join(root, 'dist', 'index.js')], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  const started = Date.now()
  const print = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim() || line.startsWith('::set-output') || line.startsWith('::add-mask')) continue
      const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5)
      console.log(`  ${t}s  ${line.replace(/^::(notice|error|warning)[^:]*::/, (m, level) => `[${level}] `)}`)
    }
  }
  child.stdout.on('data', print)
  child.stderr.on('data', print)
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)))
  const outputs = {}
  const text = fs.readFileSync(files.output, 'utf8')
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1]] = m[3]
  return { code, outputs, summary: files.summary }
}

const common = {
  'virtual-service': 'istio-virtualservice',
  namespace: ns,
  'version-label': 'istio-test-version',
  steps: '10,25,50,100',
  interval: '6s',
  'check-every': '3s',
  settle: '1s',
  'prometheus-url': env.PROMETHEUS_URL,
  'success-rate': '99',
  'latency-p99': '500',
  'min-requests': '5'
}

step('Release 1: v1 -> v2 through 10, 25, 50, 100 with success-rate >= 99 % and p99 <= 500 ms')
const first = await runAction('release-v2', { ...common, manifests: path.join(seed, 'deployment-v2.yaml') })
console.log(
  `  exit ${first.code}; outputs: result=${first.outputs.result} phase=${first.outputs.phase} canary-weight=${first.outputs['canary-weight']} stable-version=${first.outputs['stable-version']}`
)
console.log(`  job summary (what GitHub shows): ${first.summary}`)
kubectl(['-n', ns, 'get', 'virtualservice', 'istio-virtualservice', '-o', 'jsonpath={.spec.http[0].route}{"\\n"}'])

step('Release 2: v3, whose pods crash (CrashLoopBackOff): rolled back before any traffic reaches it')
const v3 = fs
  .readFileSync(path.join(seed, 'deployment-v2.yaml'), 'utf8')
  .replaceAll('v2', 'v3')
  .replace('  replicas: 1\n', '  replicas: 1\n  progressDeadlineSeconds: 15\n')
  .replace(
    '        istio-test-version: v3\n    spec:',
    '        istio-test-version: v3\n        sim.istio-canary/behaviour: crash\n    spec:'
  )
const v3File = path.join(work, 'deployment-v3.yaml')
fs.writeFileSync(v3File, v3)
const second = await runAction('release-v3', { ...common, manifests: v3File, 'progress-deadline': '1m' })
console.log(
  `  exit ${second.code} (a rollback fails the step); outputs: result=${second.outputs.result} stable-version=${second.outputs['stable-version']}`
)
console.log(`  job summary: ${second.summary}`)
kubectl(['-n', ns, 'get', 'virtualservice', 'istio-virtualservice', '-o', 'jsonpath={.spec.http[0].route}{"\\n"}'])
kubectl(['-n', ns, 'get', 'deployments'])

step('Done')
console.log(`  The cluster keeps running (namespace ${ns}); stop it with: npm run cluster:down`)
const ok = first.outputs.result === 'promoted' && second.outputs.result === 'rolled-back'
process.exitCode = ok ? 0 : 1
