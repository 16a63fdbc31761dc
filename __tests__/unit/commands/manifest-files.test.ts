import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ConfigError } from '../../../src/errors.js'
import { MAX_MANIFEST_BYTES, loadManifests } from '../../../src/commands/manifest-files.js'

const FIXTURES = path.resolve(process.cwd(), '__tests__', 'fixtures', 'manifests')
const load = (...patterns: string[]) => loadManifests(patterns, { cwd: FIXTURES })

async function loadError(...patterns: string[]): Promise<ConfigError> {
  const error = await load(...patterns).then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(ConfigError)
  return error as ConfigError
}

describe('loadManifests', () => {
  it('reads a file by path, with the line where the document starts', async () => {
    const loaded = await load('valid.yaml')
    expect(loaded.files).toEqual(['valid.yaml'])
    expect(loaded.documents).toHaveLength(1)
    expect(loaded.documents[0]).toMatchObject({ file: 'valid.yaml', line: 3, index: 1 })
    expect(loaded.documents[0]!.object).toMatchObject({ kind: 'Deployment', metadata: { name: 'web-v2' } })
  })

  it('expands a glob to files only, sorted, and deduplicates files named twice', async () => {
    const loaded = await load('glob/*', 'glob/web.yaml', 'glob/*.yaml')
    expect(loaded.files).toEqual(['glob/notes.txt', 'glob/web.yaml'])
    const yamlOnly = await load('glob/*.{yaml,yml}')
    expect(yamlOnly.files).toEqual(['glob/web.yaml'])
  })

  it('rejects an empty pattern list', async () => {
    await expect(loadManifests([], { cwd: FIXTURES })).rejects.toThrow(
      new ConfigError(`Input 'manifests' is required: expected paths or globs of the canary Deployment manifest.`)
    )
  })

  it('rejects a missing file, naming the pattern and where it looked', async () => {
    const e = await loadError('valid.yaml', 'nope.yaml')
    expect(e.message).toBe(`Input 'manifests' is invalid: file "nope.yaml" does not exist (looked in ${FIXTURES}).`)
  })

  it('rejects a glob matching nothing', async () => {
    const e = await loadError('k8s/**/*.yaml')
    expect(e.message).toBe(`Input 'manifests' is invalid: glob "k8s/**/*.yaml" matches no file (looked in ${FIXTURES}).`)
  })

  it('rejects a directory, suggesting a glob', async () => {
    const e = await loadError('glob/')
    expect(e.message).toBe(`Input 'manifests' is invalid: "glob/" is a directory: name the file, or use a glob like "glob/*.yaml".`)
  })

  it('passes the parser errors through, naming the file as matched', async () => {
    const e = await loadError('glob/*.yaml', 'malformed-indent.yaml')
    expect(e.message).toBe('Manifest malformed-indent.yaml:5:13 is not valid YAML: bad indentation of a mapping entry.')
  })

  describe('with files written for the test', () => {
    let dir: string
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'istio-canary-manifests-'))
    })
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true })
    })

    it('rejects a file over 1 MiB before parsing it', async () => {
      const file = path.join(dir, 'big.yaml')
      await writeFile(file, `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n`)
      await expect(loadManifests(['big.yaml'], { cwd: dir })).rejects.toThrow(
        new ConfigError('Manifest big.yaml is too large: 1.0 MiB, the limit is 1 MiB (a Deployment manifest is a few KiB).')
      )
    })

    it('accepts a file of exactly 1 MiB', async () => {
      const file = path.join(dir, 'edge.yaml')
      const head = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n# '
      await writeFile(file, head + 'x'.repeat(MAX_MANIFEST_BYTES - head.length))
      expect((await loadManifests(['edge.yaml'], { cwd: dir })).documents).toHaveLength(1)
    })

    it('rejects patterns matching more than 100 files', async () => {
      await Promise.all(Array.from({ length: 101 }, (_, i) => writeFile(path.join(dir, `m${i}.yml`), '')))
      await expect(loadManifests(['*.yml'], { cwd: dir })).rejects.toThrow(
        new ConfigError(
          `Input 'manifests' is invalid: matches 101 files, more than 100: name the canary Deployment's manifest (got "*.yml").`
        )
      )
    })

    it('shows paths outside cwd as absolute', async () => {
      const loaded = await loadManifests([path.join(FIXTURES, 'valid.yaml')], { cwd: dir })
      expect(loaded.files).toEqual([path.join(FIXTURES, 'valid.yaml')])
    })
  })
})
