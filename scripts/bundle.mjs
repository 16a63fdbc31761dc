// Bundles the action into dist/ (committed: it is what users run). ESM output for Node 24 with a
// createRequire banner so CommonJS dependencies bundled inside can still require Node built-ins.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'

await rm('dist', { recursive: true, force: true })
await build({
  entryPoints: { index: 'src/index.ts', post: 'src/post.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: "import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);" },
  logLevel: 'warning'
})
