/**
 * The bundle's startup budget, checked in CI: builds dist/ in memory with the options of
 * scripts/bundle.mjs and reads esbuild's metafile. What dist/index.js loads before its first API
 * request must stay under STARTUP_BUDGET_BYTES, without the generated client-node classes, any
 * undici or Octokit, and with one js-yaml. (Bytes, not milliseconds: time is for `npm run bench`.)
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { build, type Metafile } from 'esbuild'

interface BundleModule {
  bundleOptions: Parameters<typeof build>[0]
  STARTUP_BUDGET_BYTES: number
  STARTUP_FILES_BUDGET: number
  checkBudget(m: Metafile): { bytes: number; files: string[]; problems: string[] }
}

let mod: BundleModule
let metafile: Metafile

beforeAll(async () => {
  mod = (await import(pathToFileURL(path.resolve('scripts/bundle.mjs')).href)) as BundleModule
  const result = await build({ ...mod.bundleOptions, write: false, outdir: 'dist', logLevel: 'silent' })
  metafile = result.metafile!
}, 60_000)

test('dist/index.js loads less than the budget at startup, none of the excluded packages, one js-yaml', () => {
  const { bytes, problems } = mod.checkBudget(metafile)
  expect(problems).toEqual([])
  expect(bytes).toBeLessThanOrEqual(mod.STARTUP_BUDGET_BYTES)
})

test('the budget check fails a start-up set split into more files than its budget', () => {
  const entry = Object.keys(metafile.outputs).find((f) => /(^|\/)index\.js$/.test(f) && !f.includes('chunks'))!
  const extra = Object.fromEntries(
    Array.from({ length: mod.STARTUP_FILES_BUDGET }, (_, i) => [
      `dist/chunks/split-${i}.js`,
      { bytes: 10, inputs: {}, imports: [], exports: [] }
    ])
  )
  const split: Metafile = {
    ...metafile,
    outputs: {
      ...metafile.outputs,
      ...extra,
      [entry]: {
        ...metafile.outputs[entry],
        imports: [...metafile.outputs[entry].imports, ...Object.keys(extra).map((path) => ({ path, kind: 'import-statement' as const }))]
      }
    }
  }
  expect(mod.checkBudget(metafile).problems).toEqual([])
  expect(mod.checkBudget(split).problems.some((p) => p.startsWith('startup set of'))).toBe(true)
})

test('the start-up set is the entry and one chunk; the budget check fails a lazy module also imported at startup', () => {
  const { files } = mod.checkBudget(metafile)
  expect(files).toHaveLength(2)
  const entry = Object.keys(metafile.outputs).find((f) => /(^|\/)index\.js$/.test(f) && !f.includes('chunks'))!
  const [lazyFile, lazy] = Object.entries(metafile.outputs).find(([, o]) => o.entryPoint === 'src/commands/lazy-barrel.ts')!
  expect(files).not.toContain(lazyFile)
  const both: Metafile = {
    ...metafile,
    outputs: {
      ...metafile.outputs,
      [entry]: { ...metafile.outputs[entry], inputs: { ...metafile.outputs[entry].inputs, [lazy.entryPoint!]: { bytesInOutput: 1 } } }
    }
  }
  expect(mod.checkBudget(both).problems).toContain(`src/commands/lazy-barrel.ts is imported both lazily (${lazyFile}) and at startup`)
})

test('@actions/github and Octokit are in a chunk loaded on first use', () => {
  const lazy = Object.entries(metafile.outputs).filter(([, o]) =>
    Object.keys(o.inputs).some((i) => i.includes('node_modules/@actions/github/'))
  )
  expect(lazy).toHaveLength(1)
  const { files } = mod.checkBudget(metafile)
  expect(files).not.toContain(lazy[0][0])
})

test('the budget check fails a bundle that loads the generated client at startup', () => {
  const entry = Object.keys(metafile.outputs).find((f) => /(^|\/)index\.js$/.test(f) && !f.includes('chunks'))!
  const bloated: Metafile = {
    ...metafile,
    outputs: {
      ...metafile.outputs,
      [entry]: {
        ...metafile.outputs[entry],
        bytes: mod.STARTUP_BUDGET_BYTES + 1,
        inputs: {
          ...metafile.outputs[entry].inputs,
          'node_modules/@kubernetes/client-node/dist/gen/apis/CoreV1Api.js': { bytesInOutput: 1 }
        }
      }
    }
  }
  const { problems } = mod.checkBudget(bloated)
  expect(problems.some((p) => p.startsWith('startup set'))).toBe(true)
  expect(problems.some((p) => p.includes('CoreV1Api.js is loaded at startup'))).toBe(true)
})
