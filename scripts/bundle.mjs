// Bundles the action into dist/ (committed: it is what users run). ESM output for Node 24 with a
// createRequire banner so CommonJS dependencies bundled inside can still require Node built-ins.
// Then writes dist/licenses.txt: the licence of every package the bundle contains (from the
// metafile), so the third-party notices always match what dist/ ships.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { writeThirdPartyLicenses } from './third-party-licenses.ts'

await rm('dist', { recursive: true, force: true })
const result = await build({
  entryPoints: { index: 'src/index.ts', post: 'src/post.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  legalComments: 'external', // folded into dist/licenses.txt below
  metafile: true,
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: "import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);" },
  logLevel: 'warning'
})
writeThirdPartyLicenses(result.metafile, 'dist')
