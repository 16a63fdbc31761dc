// npm run bench: builds scripts/bench.ts with esbuild (dependencies stay external) and runs it on
// the Node of `npm run` (24, from the node@24 dev dependency). Starts the local cluster if needed.
import { spawnSync } from 'node:child_process'
import { build } from 'esbuild'
import { bundleOptions, startupPlugin } from './bundle.mjs'

if (spawnSync('bash', ['test-cluster/up.sh'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) process.exit(1)
if (spawnSync('npm', ['run', 'bundle'], { stdio: 'ignore' }).status !== 0) process.exit(1)
await build({
  entryPoints: ['scripts/bench.ts'],
  outfile: '.bench/out/bench.mjs', // two levels below the root, like __tests__/support/, so its paths resolve the same,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'external',
  logLevel: 'warning'
})
// The floor: node + KubeConfig + one HTTPS request, bundled like dist/ (same plugins and banner).
await build({
  ...bundleOptions,
  plugins: [startupPlugin], // no oneStartupChunk: the floor imports nothing of src/
  entryPoints: ['scripts/bench-floor.ts'],
  outdir: undefined,
  outfile: '.bench/out/floor.mjs',
  splitting: false,
  legalComments: 'none',
  metafile: false
})
await import(new URL('../.bench/out/bench.mjs', import.meta.url).href)
