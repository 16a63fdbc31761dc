import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ConfigError } from '../../../src/errors.js'
import { MAX_MANIFEST_BYTES, type ManifestDocument, loadManifests, validateCanaryDeployment } from '../../../src/config/manifests.js'

const FIXTURES = path.resolve(process.cwd(), '__tests__', 'fixtures', 'manifests')
const SEED = path.resolve(process.cwd(), 'examples', 'seed')
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

  it('skips empty documents but keeps their index in the count', async () => {
    const { documents } = await load('empty-documents.yaml')
    expect(documents.map((d) => [d.index, d.line])).toEqual([[3, 5]])
  })

  it('reads a file with only comments as no documents', async () => {
    expect((await load('comments-only.yaml')).documents).toEqual([])
  })

  it('expands a glob to files only, sorted, and deduplicates files named twice', async () => {
    const loaded = await load('glob/*', 'glob/web.yaml', 'glob/*.yaml')
    expect(loaded.files).toEqual(['glob/notes.txt', 'glob/web.yaml'])
    const yamlOnly = await load('glob/*.{yaml,yml}')
    expect(yamlOnly.files).toEqual(['glob/web.yaml'])
  })

  it('resolves merge keys (<<) as kubectl does', async () => {
    const { documents } = await load('merge-keys.yaml')
    const d = documents[0]!.object as { spec: { template: { metadata: { labels: Record<string, string> } } } }
    expect(d.spec.template.metadata.labels).toEqual({ app: 'web', version: 'v2', tier: 'frontend' })
  })

  it('copies aliased nodes: changing one place leaves the other alone', async () => {
    const { documents } = await load('merge-keys.yaml')
    const d = documents[0]!.object as {
      spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } }
    }
    d.spec.selector.matchLabels.app = 'changed'
    expect(d.spec.template.metadata.labels.app).toBe('web')
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

  it('rejects bad indentation with file:line:column', async () => {
    const e = await loadError('malformed-indent.yaml')
    expect(e.message).toBe('Manifest malformed-indent.yaml:5:13 is not valid YAML: bad indentation of a mapping entry.')
  })

  it('rejects an unclosed quote with file:line:column', async () => {
    const e = await loadError('malformed-quote.yaml')
    expect(e.message).toBe(
      'Manifest malformed-quote.yaml:9:1 is not valid YAML: unexpected end of the stream within a double quoted scalar (a quote opened earlier is never closed).'
    )
  })

  it('rejects duplicate keys with the line of the second one', async () => {
    const e = await loadError('duplicate-keys.yaml')
    expect(e.message).toBe('Manifest duplicate-keys.yaml:12:9 is not valid YAML: duplicate key (each key may appear once in a mapping).')
  })

  it('never shows file content in a parse error (generated manifests can hold secrets)', async () => {
    const e = await loadError('malformed-indent.yaml')
    expect(e.message).not.toContain('namespace: shop')
  })

  it('rejects an alias bomb without expanding it', async () => {
    const e = await loadError('alias-bomb.yaml')
    expect(e.message).toBe(
      'Manifest alias-bomb.yaml:1 has more than 100000 nodes once YAML aliases (*name) are expanded: refusing it as a possible alias bomb.'
    )
  })

  it('rejects values JSON cannot carry', async () => {
    const e = await loadError('infinity.yaml')
    expect(e.message).toBe(
      'Manifest infinity.yaml:1 holds Infinity, which Kubernetes (JSON) cannot carry: quote it if it is meant as text.'
    )
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

describe('validateCanaryDeployment', () => {
  const opts = { versionLabel: 'version' }

  it('accepts the seed deployment-v2.yaml as it is', async () => {
    const loaded = await loadManifests(['deployment-v2.yaml'], { cwd: SEED })
    const canary = validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' })
    expect(canary.version).toBe('v2')
    expect(canary.file).toBe('deployment-v2.yaml')
    expect(canary.namespace).toBeUndefined()
    expect(canary.deployment.metadata.name).toBe('istio-deployment-v2')
    expect(
      validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version', version: 'v2', namespace: 'default' }).version
    ).toBe('v2')
  })

  it('accepts the seed deployment-v1.yaml as the canary of its own version', async () => {
    const loaded = await loadManifests(['deployment-v1.yaml'], { cwd: SEED })
    expect(validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' }).version).toBe('v1')
  })

  it('rejects the seed manifests as a whole: they hold more than the Deployment', async () => {
    const loaded = await loadManifests(['*.yaml'], { cwd: SEED })
    expect(() => validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' })).toThrow(
      /^Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold DestinationRule "istio-destinationrule" \(destinationrule-v1-v2\.yaml:1\), .*Service "istio-service" \(service\.yaml:1\), .*VirtualService "istio-virtualservice" \(virtualservice-v1\.yaml:1\)\. Remove them/
    )
  })

  it('returns the Deployment, its version, file and namespace', async () => {
    const canary = validateCanaryDeployment((await load('valid.yaml')).documents, { ...opts, version: 'v2', namespace: 'shop' })
    expect(canary).toMatchObject({ version: 'v2', file: 'valid.yaml', namespace: 'shop' })
    expect(canary.deployment.spec.replicas).toBe(2)
  })

  it('rejects extra kinds, listing each with file:line', async () => {
    const { documents } = await load('extra-kinds.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold Service "web" (extra-kinds.yaml:9), Secret "web-token" (extra-kinds.yaml:17). ` +
          `Remove them from 'manifests' and apply them in a separate step (the action edits the VirtualService and DestinationRule itself).`
      )
    )
  })

  it('rejects a single extra kind in the singular', async () => {
    const { documents } = await load('only-service.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      `Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold Service "web" (only-service.yaml:1). ` +
        `Remove it from 'manifests' and apply it in a separate step (the action edits the VirtualService and DestinationRule itself).`
    )
  })

  it('rejects two Deployments, listing both', async () => {
    const { documents } = await load('two-deployments.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: expected exactly one Deployment, the canary's, found 2: Deployment "web-v2" (two-deployments.yaml:1), Deployment "worker-v2" (two-deployments.yaml:9).`
      )
    )
  })

  it('rejects no Deployment', async () => {
    const { documents } = await load('comments-only.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: expected exactly one Deployment, the canary's, found none: the files hold no YAML documents.`
      )
    )
  })

  it('rejects a document that is not a Kubernetes object', async () => {
    const { documents } = await load('not-an-object.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Manifest not-an-object.yaml:9 (document 2) is not a Kubernetes object: expected a mapping with apiVersion and kind (got "[\\"just\\",\\"a list\\"]").`
      )
    )
  })

  it('rejects a selector without the version label, saying why', async () => {
    const { documents } = await load('selector-without-version.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Deployment "web-v2" (selector-without-version.yaml:1) is invalid: spec.selector.matchLabels must include the version label (version: v2) so the canary's selector cannot also select the stable's pods: ` +
          `two Deployments selecting the same pods fight over them, and a selector cannot be changed after creation (got matchLabels "app=web").`
      )
    )
  })

  /** A valid Deployment document, with `change` applied to a copy. */
  function doc(change: (d: any) => void = () => {}): ManifestDocument[] {
    const d = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web-v2' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web', version: 'v2' } },
        template: { metadata: { labels: { app: 'web', version: 'v2' } }, spec: { containers: [] } }
      }
    }
    change(d)
    return [{ file: 'k8s/web.yaml', line: 1, index: 1, object: d }]
  }
  const invalid = (reason: string) => new ConfigError(`Deployment "web-v2" (k8s/web.yaml:1) is invalid: ${reason}.`)

  it('accepts the base document', () => {
    expect(validateCanaryDeployment(doc(), opts).version).toBe('v2')
  })

  it.each<[string, (d: any) => void, string]>([
    ['an old apiVersion', (d) => (d.apiVersion = 'extensions/v1beta1'), 'apiVersion is "extensions/v1beta1", expected "apps/v1"'],
    [
      'an invalid namespace',
      (d) => (d.metadata.namespace = 'Shop'),
      'metadata.namespace "Shop" is not a valid namespace name (a DNS-1123 label)'
    ],
    [
      'replicas 0',
      (d) => (d.spec.replicas = 0),
      'spec.replicas must be a whole number of at least 1, or unset: a canary without pods never becomes ready (got "0")'
    ],
    [
      'replicas 1.5',
      (d) => (d.spec.replicas = 1.5),
      'spec.replicas must be a whole number of at least 1, or unset: a canary without pods never becomes ready (got "1.5")'
    ],
    [
      'replicas as text',
      (d) => (d.spec.replicas = '2'),
      'spec.replicas must be a whole number of at least 1, or unset: a canary without pods never becomes ready (got "2")'
    ],
    ['no selector', (d) => delete d.spec.selector, 'spec.selector is missing: expected matchLabels including the version label'],
    ['no spec at all', (d) => delete d.spec, 'spec.selector is missing: expected matchLabels including the version label'],
    [
      'labels that are not a mapping',
      (d) => (d.spec.template.metadata.labels = ['app']),
      'spec.template.metadata.labels must be a mapping of label keys to values (got "[\\"app\\"]")'
    ],
    [
      'an unquoted number as version',
      (d) => (d.spec.template.metadata.labels.version = 2),
      'spec.template.metadata.labels.version is "2", not text: quote it in YAML (version: "2")'
    ],
    [
      'a number in matchLabels',
      (d) => (d.spec.selector.matchLabels.version = 2),
      'spec.selector.matchLabels.version is "2", not text: quote it in YAML (version: "2")'
    ],
    [
      'an invalid label key',
      (d) => (d.spec.template.metadata.labels['bad key'] = 'x'),
      'spec.template.metadata.labels has the invalid label key "bad key"'
    ],
    [
      'no version label on the pods',
      (d) => delete d.spec.template.metadata.labels.version,
      `spec.template.metadata.labels must carry the version label "version" (input 'version-label'): it names the canary's pods for its DestinationRule subset (got labels "app=web")`
    ],
    [
      'an empty version label',
      (d) => (d.spec.template.metadata.labels.version = ''),
      'the version label "version" has value "", which is not a valid label value (letters, digits, "-", "_", ".", at most 63 characters)'
    ],
    [
      'an invalid version label value',
      (d) => (d.spec.template.metadata.labels.version = 'v2/beta'),
      'the version label "version" has value "v2/beta", which is not a valid label value (letters, digits, "-", "_", ".", at most 63 characters)'
    ],
    [
      'a selector on a different version',
      (d) => (d.spec.selector.matchLabels.version = 'v1'),
      `spec.selector.matchLabels must include the version label (version: v2) so the canary's selector cannot also select the stable's pods: ` +
        `two Deployments selecting the same pods fight over them, and a selector cannot be changed after creation (got matchLabels "app=web,version=v1")`
    ],
    [
      'a selector not matching the template',
      (d) => (d.spec.selector.matchLabels.app = 'api'),
      'spec.selector does not match spec.template.metadata.labels: every selector term must hold for the pod labels (got selector "app=api,version=v2", labels "app=web,version=v2")'
    ],
    [
      'a matchExpression the template fails',
      (d) => (d.spec.selector.matchExpressions = [{ key: 'tier', operator: 'Exists' }]),
      'spec.selector does not match spec.template.metadata.labels: every selector term must hold for the pod labels (got selector "app=web,version=v2", labels "app=web,version=v2")'
    ]
  ])('rejects %s', (_, change, reason) => {
    expect(() => validateCanaryDeployment(doc(change), opts)).toThrow(invalid(reason))
  })

  it('rejects a name that is not DNS-1123, quoting it', () => {
    expect(() =>
      validateCanaryDeployment(
        doc((d) => (d.metadata.name = 'Web_v2')),
        opts
      )
    ).toThrow(
      new ConfigError(
        'Deployment "Web_v2" (k8s/web.yaml:1) is invalid: metadata.name must be a DNS-1123 name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters.'
      )
    )
  })

  it('rejects a Deployment without a name', () => {
    expect(() =>
      validateCanaryDeployment(
        doc((d) => delete d.metadata.name),
        opts
      )
    ).toThrow(
      new ConfigError('Deployment in k8s/web.yaml:1 has no metadata.name: expected a name like "web-v2" (generateName is not supported).')
    )
  })

  it('rejects a version label differing from the version input', () => {
    expect(() => validateCanaryDeployment(doc(), { ...opts, version: 'v3' })).toThrow(
      invalid(`the version label "version" is "v2" but input 'version' is "v3": they must agree`)
    )
  })

  it('rejects a namespace differing from the namespace input', () => {
    expect(() =>
      validateCanaryDeployment(
        doc((d) => (d.metadata.namespace = 'shop')),
        { ...opts, namespace: 'prod' }
      )
    ).toThrow(invalid(`metadata.namespace is "shop" but input 'namespace' is "prod": make them agree or remove one`))
  })

  it('uses the configured version label, including a prefixed one', () => {
    const key = 'app.kubernetes.io/version'
    const docs = doc((d) => {
      d.spec.selector.matchLabels = { app: 'web', [key]: '1.4.0' }
      d.spec.template.metadata.labels = { app: 'web', [key]: '1.4.0' }
    })
    expect(validateCanaryDeployment(docs, { versionLabel: key }).version).toBe('1.4.0')
    expect(() => validateCanaryDeployment(docs, opts)).toThrow(/must carry the version label "version"/)
  })

  it('accepts unset replicas', () => {
    expect(
      validateCanaryDeployment(
        doc((d) => delete d.spec.replicas),
        opts
      ).version
    ).toBe('v2')
  })
})
