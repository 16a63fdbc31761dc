import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { ConfigError } from '../../../src/errors.js'
import { type ManifestDocument, parseManifest, validateCanaryDeployment } from '../../../src/config/manifests.js'

const FIXTURES = path.resolve(process.cwd(), '__tests__', 'fixtures', 'manifests')
const SEED = path.resolve(process.cwd(), 'examples', 'seed')

/** Documents of files in `dir`, parsed from their text (reading them is the test's here, the adapter's in the action). */
function parseFiles(dir: string, files: string[]): { documents: ManifestDocument[] } {
  return { documents: files.flatMap((file) => parseManifest(file, readFileSync(path.join(dir, file), 'utf8'))) }
}
const load = (...files: string[]) => parseFiles(FIXTURES, files)
const seed = (...files: string[]) => parseFiles(SEED, files)

function loadError(file: string): ConfigError {
  try {
    load(file)
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return e as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('parseManifest', () => {
  it('skips empty documents but keeps their index in the count', () => {
    const { documents } = load('empty-documents.yaml')
    expect(documents.map((d) => [d.index, d.line])).toEqual([[3, 5]])
  })

  it('reads a file with only comments as no documents', () => {
    expect(load('comments-only.yaml').documents).toEqual([])
  })

  it('resolves merge keys (<<) as kubectl does', () => {
    const { documents } = load('merge-keys.yaml')
    const d = documents[0]!.object as { spec: { template: { metadata: { labels: Record<string, string> } } } }
    expect(d.spec.template.metadata.labels).toEqual({ app: 'web', version: 'v2', tier: 'frontend' })
  })

  it('copies aliased nodes: changing one place leaves the other alone', () => {
    const { documents } = load('merge-keys.yaml')
    const d = documents[0]!.object as {
      spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } }
    }
    d.spec.selector.matchLabels.app = 'changed'
    expect(d.spec.template.metadata.labels.app).toBe('web')
  })

  it('rejects bad indentation with file:line:column', () => {
    const e = loadError('malformed-indent.yaml')
    expect(e.message).toBe('Manifest malformed-indent.yaml:5:13 is not valid YAML: bad indentation of a mapping entry.')
  })

  it('rejects an unclosed quote with file:line:column', () => {
    const e = loadError('malformed-quote.yaml')
    expect(e.message).toBe(
      'Manifest malformed-quote.yaml:9:1 is not valid YAML: unexpected end of the stream within a double quoted scalar (a quote opened earlier is never closed).'
    )
  })

  it('rejects duplicate keys with the line of the second one', () => {
    const e = loadError('duplicate-keys.yaml')
    expect(e.message).toBe('Manifest duplicate-keys.yaml:12:9 is not valid YAML: duplicate key (each key may appear once in a mapping).')
  })

  it('never shows file content in a parse error (generated manifests can hold secrets)', () => {
    const e = loadError('malformed-indent.yaml')
    expect(e.message).not.toContain('namespace: shop')
  })

  it('rejects an alias bomb without expanding it', () => {
    const e = loadError('alias-bomb.yaml')
    expect(e.message).toBe(
      'Manifest alias-bomb.yaml:1 has more than 100000 nodes once YAML aliases (*name) are expanded: refusing it as a possible alias bomb.'
    )
  })

  it('rejects values JSON cannot carry', () => {
    const e = loadError('infinity.yaml')
    expect(e.message).toBe(
      'Manifest infinity.yaml:1 holds Infinity, which Kubernetes (JSON) cannot carry: quote it if it is meant as text.'
    )
  })

  it.each([
    [
      'a document per ---, with the line its content starts',
      'a: 1\n---\n\n# c\nb: 2\n',
      [
        [1, 1],
        [2, 5]
      ]
    ],
    ['nothing for an empty text', '', []],
    ['no document for a lone ---', '---\n', []]
  ])('reads %s', (_what, text, expected) => {
    expect(parseManifest('m.yaml', text).map((d) => [d.index, d.line])).toEqual(expected)
  })

  it.each([
    ['a: 1\na: 2\n', 'Manifest k8s/m.yaml:2:1 is not valid YAML: duplicate key (each key may appear once in a mapping).'],
    ['a: .inf\n', 'Manifest k8s/m.yaml:1 holds Infinity, which Kubernetes (JSON) cannot carry: quote it if it is meant as text.'],
    ['a: [1, 2\n', 'Manifest k8s/m.yaml:2:1 is not valid YAML: unexpected end of the stream within a flow collection.']
  ])('names the file it is given in errors: %j', (text, message) => {
    expect(() => parseManifest('k8s/m.yaml', text)).toThrow(new ConfigError(message))
  })
})

describe('validateCanaryDeployment', () => {
  const opts = { versionLabel: 'version' }

  it('accepts the seed deployment-v2.yaml as it is', () => {
    const loaded = seed('deployment-v2.yaml')
    const canary = validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' })
    expect(canary.version).toBe('v2')
    expect(canary.file).toBe('deployment-v2.yaml')
    expect(canary.namespace).toBeUndefined()
    expect(canary.deployment.metadata.name).toBe('istio-deployment-v2')
    expect(
      validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version', version: 'v2', namespace: 'default' }).version
    ).toBe('v2')
  })

  it('accepts the seed deployment-v1.yaml as the canary of its own version', () => {
    const loaded = seed('deployment-v1.yaml')
    expect(validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' }).version).toBe('v1')
  })

  it('rejects the seed manifests as a whole: they hold more than the Deployment', () => {
    const loaded = seed(
      ...readdirSync(SEED)
        .filter((f) => f.endsWith('.yaml'))
        .sort()
    )
    expect(() => validateCanaryDeployment(loaded.documents, { versionLabel: 'istio-test-version' })).toThrow(
      /^Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold DestinationRule "istio-destinationrule" \(destinationrule-v1-v2\.yaml:1\), .*Service "istio-service" \(service\.yaml:1\), .*VirtualService "istio-virtualservice" \(virtualservice-v1\.yaml:1\)\. Remove them/
    )
  })

  it('returns the Deployment, its version, file and namespace', () => {
    const canary = validateCanaryDeployment(load('valid.yaml').documents, { ...opts, version: 'v2', namespace: 'shop' })
    expect(canary).toMatchObject({ version: 'v2', file: 'valid.yaml', namespace: 'shop' })
    expect(canary.deployment.spec.replicas).toBe(2)
  })

  it('rejects extra kinds, listing each with file:line', () => {
    const { documents } = load('extra-kinds.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold Service "web" (extra-kinds.yaml:9), Secret "web-token" (extra-kinds.yaml:17). ` +
          `Remove them from 'manifests' and apply them in a separate step (the action edits the VirtualService and DestinationRule itself).`
      )
    )
  })

  it('rejects a single extra kind in the singular', () => {
    const { documents } = load('only-service.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      `Input 'manifests' is invalid: the action applies only the canary Deployment, but the manifests also hold Service "web" (only-service.yaml:1). ` +
        `Remove it from 'manifests' and apply it in a separate step (the action edits the VirtualService and DestinationRule itself).`
    )
  })

  it('rejects two Deployments, listing both', () => {
    const { documents } = load('two-deployments.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: expected exactly one Deployment, the canary's, found 2: Deployment "web-v2" (two-deployments.yaml:1), Deployment "worker-v2" (two-deployments.yaml:9).`
      )
    )
  })

  it('rejects no Deployment', () => {
    const { documents } = load('comments-only.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Input 'manifests' is invalid: expected exactly one Deployment, the canary's, found none: the files hold no YAML documents.`
      )
    )
  })

  it('rejects a document that is not a Kubernetes object', () => {
    const { documents } = load('not-an-object.yaml')
    expect(() => validateCanaryDeployment(documents, opts)).toThrow(
      new ConfigError(
        `Manifest not-an-object.yaml:9 (document 2) is not a Kubernetes object: expected a mapping with apiVersion and kind (got "[\\"just\\",\\"a list\\"]").`
      )
    )
  })

  it('rejects a selector without the version label, saying why', () => {
    const { documents } = load('selector-without-version.yaml')
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
