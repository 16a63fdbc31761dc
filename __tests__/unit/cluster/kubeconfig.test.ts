import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadKubeConfig } from '../../../src/cluster/kubeconfig.js'
import { ConfigError } from '../../../src/errors.js'

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'kubeconfig-secrets.yaml')
const content = fs.readFileSync(fixture, 'utf8')
const keyB64 = /client-key-data: (\S+)/.exec(content)![1]
const keyPem = Buffer.from(keyB64, 'base64').toString('utf8')
const certB64 = /client-certificate-data: (\S+)/.exec(content)![1]

describe('loadKubeConfig secrets', () => {
  const loaded = loadKubeConfig({ content, env: {} })

  it.each([
    ['token', 'tok-3f9a1c0d2e4b5a6978877665544332211'],
    ['password', 's3cr3t-pass-word'],
    ['client-key-data (base64)', keyB64],
    ['client-key-data (decoded PEM)', keyPem.trim()],
    ['auth-provider id-token', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.sig'],
    ['auth-provider refresh-token', 'refresh-token-abc-123'],
    ['auth-provider client-secret', 'oidc-client-secret-123']
  ])('masks the %s', (_what, secret) => {
    expect(loaded.secrets).toContain(secret)
  })

  it('masks each body line of the decoded key, so a partial PEM in a log is masked too', () => {
    const bodyLines = keyPem.split('\n').filter((l) => l && !l.startsWith('-----'))
    expect(bodyLines.length).toBeGreaterThan(0)
    for (const line of bodyLines) expect(loaded.secrets).toContain(line)
  })

  it('does not mask public values (certificate, user names, server)', () => {
    expect(loaded.secrets).not.toContain(certB64)
    expect(loaded.secrets).not.toContain('admin')
    expect(loaded.secrets).not.toContain('https://127.0.0.1:6443')
    expect(loaded.secrets).not.toContain('kubernetes')
  })

  it("returns the current context's namespace and where the config came from", () => {
    expect(loaded.namespace).toBe('shop')
    expect(loaded.context).toBe('ci')
    expect(loaded.source).toBe('input')
    expect(loaded.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443')
  })
})

describe('loadKubeConfig sources', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kc-'))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('reads KUBECONFIG when there is no input', () => {
    const file = path.join(dir, 'config')
    fs.writeFileSync(file, content)
    const loaded = loadKubeConfig({ env: { KUBECONFIG: file } })
    expect(loaded.source).toBe(file)
    expect(loaded.secrets).toContain('s3cr3t-pass-word')
  })

  it('reads ~/.kube/config when KUBECONFIG is unset', () => {
    fs.mkdirSync(path.join(dir, '.kube'), { recursive: true })
    fs.writeFileSync(path.join(dir, '.kube', 'config'), content.replace('namespace: shop', 'namespace: home'))
    const loaded = loadKubeConfig({ env: { HOME: dir } })
    expect(loaded.namespace).toBe('home')
  })

  it('names the missing KUBECONFIG file', () => {
    expect(() => loadKubeConfig({ env: { KUBECONFIG: path.join(dir, 'missing') } })).toThrow(
      `The kubeconfig from KUBECONFIG=${path.join(dir, 'missing')} could not be loaded (ENOENT)`
    )
  })

  it('prefers the input over KUBECONFIG', () => {
    const loaded = loadKubeConfig({ content, env: { KUBECONFIG: '/nonexistent/config' } })
    expect(loaded.source).toBe('input')
  })

  it('fails with a ConfigError when nothing is found', () => {
    expect(() => loadKubeConfig({ env: { HOME: path.join(dir, 'empty') } })).toThrow(ConfigError)
  })

  it('fails with a ConfigError that does not echo the document when it is not YAML', () => {
    const bad = 'users: [ token: tok-should-not-appear'
    let err: unknown
    try {
      loadKubeConfig({ content: bad, env: {} })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).not.toContain('tok-should-not-appear')
  })
})
