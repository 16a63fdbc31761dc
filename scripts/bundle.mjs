// Bundles the action into dist/ (committed: it is what users run). ESM output for Node 24, with
// what keeps its cold start short (the figures are in the README's Develop section):
//  - Node built-ins go through require() (the createRequire banner), not ESM imports: an ESM
//    import of node:http/https loads Node's ESM facade and its internal undici (~60 ms).
//  - client-node is used for KubeConfig only: the two imports of its config.js that only serve
//    the generated API classes (gen/index.js and undici) become stubs that throw if ever called.
//  - one js-yaml copy (ours, 4.x) also for client-node, whose KubeConfig only calls load().
//  - @actions/http-client (undici 6) is side-effect free to esbuild, so @actions/core's unused
//    OIDC client and what it pulls in are left out; @actions/github is a lazy chunk, and its
//    requests go through src/report/github-fetch.ts, so undici 6 becomes a stub there too
//    (fetch throws if ever called; ProxyAgent is inert: proxies come from Node's proxyEnv agent).
//  - the start-up path is one chunk: each lazily imported module also imports src/main.ts, see
//    oneStartupChunk below.
//  - @actions/core's modules are side-effect free to esbuild too, so its platform helpers and the
//    @actions/exec and @actions/io they import (node:assert, fs.promises) are left out.
// Then esbuild's metafile is checked against the budget below (the build fails over it), and
// dist/licenses.txt gets the licence of every package the bundle contains.
import { build } from 'esbuild'
import { builtinModules } from 'node:module'
import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeThirdPartyLicenses } from './third-party-licenses.ts'

/**
 * What Node parses and evaluates before the first API request: dist/index.js and the chunks it imports
 * statically. It includes the input catalogue's descriptions (~8 kB of string literals), kept beside
 * the names and defaults so action.yml and the README are checked against one source, and the small
 * hooks each traffic target and step kind leaves on the common path (their bodies, semver, the
 * freeze-window rules, the rollout executor and router, a deploy's own preflight checks and the
 * report renderers are lazy chunks). About 0.03 ms a kB on the bench machine. Raise it only with
 * `npm run bench` showing the cold start still within its goal against the floor.
 */
export const STARTUP_BUDGET_BYTES = 360_000
/**
 * Files in that set: each is resolved, read, compiled and linked on its own before the first request
 * (~0.7 ms a file on the bench machine; fifteen cost ~0.1x of the floor against eight). Two: the
 * entry and the one chunk oneStartupChunk makes of everything it loads.
 */
export const STARTUP_FILES_BUDGET = 2
/** Never in that startup set: the generated client, any undici, Octokit. */
/** Never anywhere in dist/: Kubernetes and GitHub requests both go through Node's https. */
const FORBIDDEN_ANYWHERE = [/node_modules\/undici\//, /@kubernetes\/client-node\/node_modules\/undici\//]
const FORBIDDEN_AT_STARTUP = [
  /@kubernetes\/client-node\/dist\/gen\/(?!rxjsStub)/,
  /node_modules\/undici\//,
  /node_modules\/@octokit\//,
  /node_modules\/@actions\/github\//
]

const builtins = new Set(builtinModules.filter((m) => !m.startsWith('_')))
const clientNodeConfig = /@kubernetes[\\/]client-node[\\/]dist[\\/]config\.js$/
const inClientNode = /@kubernetes[\\/]client-node[\\/]/
const inActions = /@actions[\\/](github|http-client)[\\/]/
/** Packages whose modules only define things: esbuild may leave out any module whose exports go unused. */
const sideEffectFree = /^@actions\/(http-client|core|exec|io)(\/.*)?$/
const inSideEffectFree = /node_modules[\\/]@actions[\\/](http-client|core|exec|io)[\\/]/

/** @type {import('esbuild').Plugin} */
export const startupPlugin = {
  name: 'istio-canary-startup',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '')
      if (!builtins.has(name) || args.kind === 'require-call') return undefined
      return { path: `node:${name}`, namespace: 'builtin-require' }
    })
    b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)})`,
      loader: 'js'
    }))

    b.onResolve({ filter: /^(undici|\.\/gen\/index\.js)$/ }, (args) => {
      if (clientNodeConfig.test(args.importer)) return { path: args.path, namespace: 'kubeconfig-stub' }
      if (args.path === 'undici' && inActions.test(args.importer)) return { path: 'undici', namespace: 'github-undici-stub' }
      return undefined
    })
    b.onLoad({ filter: /.*/, namespace: 'github-undici-stub' }, () => ({
      contents:
        "export function fetch() { throw new Error('istio-canary sends GitHub requests through githubFetch: undici is not included') }\n" +
        'export class ProxyAgent {}',
      loader: 'js'
    }))
    b.onLoad({ filter: /.*/, namespace: 'kubeconfig-stub' }, (args) => {
      const names = args.path === 'undici' ? ['Agent', 'ProxyAgent'] : ['createConfiguration', 'ServerConfiguration']
      const body = names
        .map(
          (n) =>
            `export function ${n}() { throw new Error('istio-canary bundles client-node for KubeConfig only: ${n} (${args.path}) is not included') }`
        )
        .join('\n')
      return { contents: body, loader: 'js' }
    })

    b.onResolve({ filter: /^js-yaml$/ }, async (args) => {
      if (!inClientNode.test(args.importer) || args.pluginData === 'ours') return undefined
      const r = await b.resolve('js-yaml', { resolveDir: process.cwd(), kind: args.kind, pluginData: 'ours' })
      return { path: r.path }
    })

    b.onResolve({ filter: /^(@actions\/|\.)/ }, async (args) => {
      if (args.pluginData === 'hint' || args.namespace !== 'file') return undefined
      if (!sideEffectFree.test(args.path) && !(args.path.startsWith('.') && inSideEffectFree.test(args.importer))) return undefined
      const r = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: 'hint' })
      return r.errors.length > 0 ? undefined : { path: r.path, sideEffects: false }
    })
  }
}

/**
 * The start-up path in one chunk. esbuild splits code by the set of entry points that reach it and
 * counts each dynamically imported module as an entry point, so code shared by the start-up path and
 * several lazy modules would land in one chunk per such set, each a file to load before the first
 * request. A lazy module is only ever imported by code that is already running, after the whole
 * start-up graph was loaded: importing that graph's root (src/main.ts, the entry without its call)
 * from each lazy module costs nothing at run time and makes every start-up module reached by the same
 * entry points, hence one chunk. The budget check below fails a lazy module that is also imported
 * statically (it would then be part of the cycle it closes).
 */
const STARTUP_ROOT = fileURLToPath(new URL('../src/main.ts', import.meta.url))

/** @type {import('esbuild').Plugin} */
const oneStartupChunk = {
  name: 'istio-canary-one-startup-chunk',
  setup(b) {
    // Every dynamically imported module, found by a first build: a module can be loaded through a
    // static import (from another lazy module) before the dynamic import of it is resolved.
    let lazyRoots = new Set()
    b.onStart(async () => {
      const { plugins, ...options } = b.initialOptions
      const first = await build({
        ...options,
        plugins: plugins.filter((p) => p !== oneStartupChunk),
        write: false,
        metafile: true,
        logLevel: 'silent'
      })
      const root = options.absWorkingDir ?? process.cwd()
      lazyRoots = new Set(
        Object.values(first.metafile.inputs).flatMap((i) =>
          i.imports.filter((x) => x.kind === 'dynamic-import' && !x.external).map((x) => path.resolve(root, x.path))
        )
      )
    })
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      if (!lazyRoots.has(args.path)) return undefined
      const text = await readFile(args.path, 'utf8')
      return {
        contents: `import ${JSON.stringify(STARTUP_ROOT)}\n${text}`,
        loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js',
        resolveDir: path.dirname(args.path)
      }
    })
  }
}

/** The options of the dist/ build (also used by the bundle-size check). */
export const bundleOptions = {
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
  plugins: [startupPlugin, oneStartupChunk],
  logLevel: 'warning'
}

/** Output files loaded before anything runs: the entry and its static imports, transitively. */
export function startupSet(metafile, entry) {
  const seen = new Set()
  const visit = (file) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const i of metafile.outputs[file]?.imports ?? []) if (i.kind === 'import-statement' && !i.external) visit(i.path)
  }
  visit(entry)
  return [...seen]
}

/** Budget problems of a build (empty when it is within budget). */
export function checkBudget(metafile) {
  const problems = []
  const entry = Object.keys(metafile.outputs).find((f) => f.endsWith('index.js') && !f.includes('chunks'))
  const files = startupSet(metafile, entry)
  const bytes = files.reduce((n, f) => n + metafile.outputs[f].bytes, 0)
  if (bytes > STARTUP_BUDGET_BYTES) problems.push(`startup set ${bytes} B > budget ${STARTUP_BUDGET_BYTES} B (${files.join(', ')})`)
  if (files.length > STARTUP_FILES_BUDGET)
    problems.push(`startup set of ${files.length} files > budget ${STARTUP_FILES_BUDGET} (${files.join(', ')})`)
  for (const f of files) {
    for (const input of Object.keys(metafile.outputs[f].inputs)) {
      if (FORBIDDEN_AT_STARTUP.some((re) => re.test(input))) problems.push(`${input} is loaded at startup (${f})`)
    }
  }
  const startupInputs = new Set(files.flatMap((f) => Object.keys(metafile.outputs[f].inputs)))
  const entries = new Set(Object.values(bundleOptions.entryPoints))
  for (const [f, o] of Object.entries(metafile.outputs)) {
    if (o.entryPoint && !entries.has(o.entryPoint) && startupInputs.has(o.entryPoint))
      problems.push(`${o.entryPoint} is imported both lazily (${f}) and at startup`)
    for (const input of Object.keys(o.inputs))
      if (FORBIDDEN_ANYWHERE.some((re) => re.test(input))) problems.push(`${input} is bundled (${f})`)
  }
  const yamlCopies = new Set(
    Object.values(metafile.outputs).flatMap((o) =>
      Object.keys(o.inputs)
        .map((i) => i.match(/^(.*node_modules\/js-yaml)\//)?.[1])
        .filter(Boolean)
    )
  )
  if (yamlCopies.size > 1) problems.push(`${yamlCopies.size} copies of js-yaml: ${[...yamlCopies].join(', ')}`)
  return { bytes, files, problems }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await rm('dist', { recursive: true, force: true })
  const result = await build(bundleOptions)
  writeThirdPartyLicenses(result.metafile, 'dist')
  const { bytes, files, problems } = checkBudget(result.metafile)
  const total = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0)
  console.log(
    `dist/: ${total} B in all; loaded at startup: ${bytes} B in ${files.length} file(s) (budget ${STARTUP_BUDGET_BYTES} B, ${STARTUP_FILES_BUDGET} files)`
  )
  if (problems.length > 0) {
    for (const p of problems) console.error(`bundle budget: ${p}`)
    process.exit(1)
  }
}
