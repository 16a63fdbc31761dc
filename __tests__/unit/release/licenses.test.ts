/**
 * The project's own licence and the third-party licences of what dist/ bundles: LICENSE agrees
 * with package.json, and dist/licenses.txt names exactly the packages the bundle is built from.
 */
import { describe, expect, it } from '@jest/globals'
import { build, type BuildOptions } from 'esbuild'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  bundledPackageDirs,
  licenseProblem,
  readPackageLicense,
  renderLicenses,
  writeThirdPartyLicenses,
  type PackageLicense
} from '../../../scripts/third-party-licenses.js'

const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { license: string }

const mit = (name: string, version = '1.0.0'): PackageLicense => ({
  name,
  version,
  license: 'MIT',
  repository: '',
  files: [['LICENSE', `MIT License\n\nCopyright (c) ${name} authors`]]
})

describe('LICENSE', () => {
  it('is the MIT licence package.json declares, with a holder and a year', () => {
    const text = fs.readFileSync('LICENSE', 'utf8')
    expect(pkg.license).toBe('MIT')
    expect(text.split('\n')[0]).toBe('MIT License')
    expect(text).toMatch(/^Copyright \(c\) 20\d\d \S.+$/m)
    expect(text).toContain('THE SOFTWARE IS PROVIDED "AS IS"')
  })
})

describe('bundledPackageDirs', () => {
  it('finds scoped, plain and nested packages once each, and skips the project sources', () => {
    const inputs = [
      'src/main.ts',
      'node_modules/@actions/core/lib/core.js',
      'node_modules/@actions/core/lib/summary.js',
      'node_modules/ws/lib/websocket.js',
      'node_modules/@kubernetes/client-node/node_modules/undici/index.js',
      'node_modules/@actions/github/node_modules/@actions/http-client/lib/index.js'
    ]
    expect(bundledPackageDirs(inputs)).toEqual([
      'node_modules/@actions/core',
      'node_modules/@actions/github/node_modules/@actions/http-client',
      'node_modules/@kubernetes/client-node/node_modules/undici',
      'node_modules/ws'
    ])
  })
})

describe('renderLicenses', () => {
  it('lists each name@version once with its licence text, then the kept legal comments', () => {
    const text = renderLicenses([mit('b'), mit('a'), mit('b'), mit('a', '2.0.0')], 'a/x.js:\n  /*! a. MIT */')
    expect(text).toContain('3 packages:')
    expect(text.indexOf('  a 1.0.0')).toBeLessThan(text.indexOf('  a 2.0.0'))
    expect(text.indexOf('  a 2.0.0')).toBeLessThan(text.indexOf('  b 1.0.0'))
    expect(text.match(/^b 1\.0\.0 \(MIT\)$/gm)).toHaveLength(1)
    expect(text).toContain('Copyright (c) b authors')
    expect(text).toContain('/*! a. MIT */')
  })

  it('refuses a licence outside the allowed list, naming the package and the licence', () => {
    expect(() => renderLicenses([mit('ok'), { ...mit('copyleft', '3.1.0'), license: 'GPL-3.0-only' }], '')).toThrow(
      /copyleft@3\.1\.0 is licensed "GPL-3\.0-only"/
    )
  })

  it('accepts a dual licence when one option is allowed', () => {
    expect(licenseProblem({ ...mit('dual'), license: '(MIT OR GPL-3.0-or-later)' })).toBeUndefined()
  })

  it('refuses a notice licence without its text, but not a public-domain dedication', () => {
    expect(licenseProblem({ ...mit('bare'), files: [] })).toMatch(/bare@1\.0\.0 \(MIT\) has no LICENSE file/)
    expect(licenseProblem({ ...mit('pd'), license: 'Unlicense', files: [] })).toBeUndefined()
    expect(licenseProblem({ ...mit('none'), license: '' })).toMatch(/declares no licence/)
  })
})

describe('writeThirdPartyLicenses', () => {
  it('reads real package directories and folds the legal comment files in', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'licenses-'))
    try {
      fs.writeFileSync(path.join(out, 'index.js.LEGAL.txt'), 'Bundled license information:\n\nws/lib/x.js:\n  /*! ws. MIT */\n')
      const file = writeThirdPartyLicenses({ inputs: { 'node_modules/ws/index.js': {}, 'node_modules/once/once.js': {} } }, out)
      const text = fs.readFileSync(file, 'utf8')
      expect(text).toContain(`ws ${readPackageLicense('node_modules/ws').version} (MIT)`)
      expect(text).toContain(`once ${readPackageLicense('node_modules/once').version} (ISC)`)
      expect(text).toContain('/*! ws. MIT */')
      expect(fs.existsSync(path.join(out, 'index.js.LEGAL.txt'))).toBe(false)
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  })
})

describe('dist/licenses.txt', () => {
  it('names exactly the packages the action bundle is built from', async () => {
    // The options of scripts/bundle.mjs itself (its plugins decide what is bundled).
    const { bundleOptions } = (await import(pathToFileURL(path.resolve('scripts/bundle.mjs')).href)) as { bundleOptions: BuildOptions }
    const result = await build({ ...bundleOptions, outdir: path.join(os.tmpdir(), 'unused'), write: false, logLevel: 'silent' })
    const want = [
      ...new Set(
        bundledPackageDirs(Object.keys(result.metafile!.inputs))
          .map(readPackageLicense)
          .map((p) => `${p.name} ${p.version}`)
      )
    ].sort()
    const text = fs.readFileSync('dist/licenses.txt', 'utf8')
    const listed = [...text.matchAll(/^ {2}(\S+ \S+) +\S+$/gm)].map((m) => m[1]).sort()
    expect(listed).toEqual(want)
  }, 60_000) // esbuild resolves the whole dependency graph: seconds on a busy machine
})
