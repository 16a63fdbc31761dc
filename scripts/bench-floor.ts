/**
 * The floor of `npm run bench`: what any design that keeps client-node's KubeConfig must do before
 * its first API request. Node starts, KubeConfig loads KUBECONFIG and applies its credentials, one
 * HTTPS GET /apis goes out. Bundled by scripts/bench.mjs with the same esbuild options as dist/.
 */
import https from 'node:https'
import { KubeConfig } from '@kubernetes/client-node/dist/config.js'

const kc = new KubeConfig()
kc.loadFromDefault()
const opts: https.RequestOptions = {}
await kc.applyToHTTPSOptions(opts)
const server = new URL(kc.getCurrentCluster()!.server)
https
  .get(
    {
      host: server.hostname,
      port: server.port,
      path: '/apis',
      headers: opts.headers,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized
    },
    (res) => {
      res.resume()
      res.on('end', () => process.exit(res.statusCode === 200 ? 0 : 1))
    }
  )
  .on('error', () => process.exit(2))
