/**
 * Jest globalSetup for the `integration` project: makes sure a real test cluster is there.
 *
 * 1. ISTIO_CANARY_TEST_KUBECONFIG set: use that cluster as it is (Prometheus / traffic source from
 *    ISTIO_CANARY_TEST_PROMETHEUS_URL / ISTIO_CANARY_TEST_TRAFFIC_URL when set).
 * 2. .cluster/env exists and its apiserver answers: reuse the running local cluster.
 * 3. Otherwise: `bash test-cluster/up.sh` (builds the binaries if needed, then starts everything).
 *
 * The cluster is left running afterwards (reuse is the point): `npm run cluster:down` stops it.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

function readyz(stateDir: string): Promise<boolean> {
  try {
    const url = fs.readFileSync(path.join(stateDir, 'api-url'), 'utf8').trim()
    const token = fs.readFileSync(path.join(stateDir, 'admin-token'), 'utf8').trim()
    const ca = fs.readFileSync(path.join(stateDir, 'pki', 'apiserver.crt'))
    return new Promise((resolve) => {
      const req = https.get(`${url}/readyz`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      })
      req.on('error', () => resolve(false))
      req.on('timeout', () => {
        req.destroy()
        resolve(false)
      })
    })
  } catch {
    return Promise.resolve(false)
  }
}

/** dist/ is what the e2e and chaos tests run: build it once, before any test file starts. */
function bundle(): void {
  const r = spawnSync('npm', ['run', 'bundle'], { cwd: root, encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error(`npm run bundle failed: ${r.error?.message ?? ''}${r.stdout}${r.stderr}`)
}

export default async function globalSetup(): Promise<void> {
  bundle()
  const external = process.env.ISTIO_CANARY_TEST_KUBECONFIG
  if (external) {
    if (!fs.existsSync(external)) throw new Error(`ISTIO_CANARY_TEST_KUBECONFIG=${external}: no such file`)
    console.log(`[integration] using the cluster of ISTIO_CANARY_TEST_KUBECONFIG=${external}`)
    return
  }
  const stateDir = process.env.ISTIO_CANARY_CLUSTER_STATE ?? path.join(root, '.cluster')
  if (fs.existsSync(path.join(stateDir, 'env')) && (await readyz(stateDir))) {
    console.log(`[integration] reusing the running test cluster (${stateDir}/env)`)
    return
  }
  console.log('[integration] starting the local test cluster: bash test-cluster/up.sh')
  const r = spawnSync('bash', [path.join(root, 'test-cluster', 'up.sh')], { cwd: root, stdio: 'inherit' })
  if (r.error || r.status !== 0) {
    throw new Error(
      `test-cluster/up.sh failed (${r.error?.message ?? `exit ${r.status}`}). See the output above and ${stateDir}/logs/. ` +
        `It needs Go >= 1.26 (test-cluster/build.sh), prometheus/promtool and curl (bash .ci/install-cluster-deps.sh); ` +
        `or set ISTIO_CANARY_TEST_KUBECONFIG to use an existing cluster.`
    )
  }
}
