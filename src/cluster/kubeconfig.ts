/**
 * Where the action's Kubernetes credentials come from, and which of their strings must be masked
 * in logs. The `kubeconfig` input wins; else KUBECONFIG, ~/.kube/config, then in-cluster.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node/dist/config.js'
import type { User } from '@kubernetes/client-node/dist/config_types.js'
import { ConfigError } from '../errors.js'

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig
  /** Every credential string (and derived form) to register with core.setSecret before any log. */
  secrets: string[]
  /** The current context's namespace, when it names one. */
  namespace?: string
  context?: string
  /** Where the config came from: `input`, a file path, or `in-cluster`. */
  source: string
}

export interface LoadKubeConfigOptions {
  /** Kubeconfig YAML from the action input (usually a secret). */
  content?: string
  env: Record<string, string | undefined>
}

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/** Build the KubeConfig and collect the secrets it holds. Throws ConfigError when none is found. */
export function loadKubeConfig(opts: LoadKubeConfigOptions): LoadedKubeConfig {
  const kc = new KubeConfig()
  let source = 'input'
  const secrets: string[] = []
  try {
    if (opts.content !== undefined && opts.content.trim() !== '') {
      kc.loadFromString(opts.content)
      source = 'input'
    } else if (opts.env.KUBECONFIG) {
      const files = opts.env.KUBECONFIG.split(path.delimiter).filter(Boolean)
      source = `KUBECONFIG=${files.join(path.delimiter)}`
      kc.loadFromFile(files[0])
      for (const file of files.slice(1)) {
        const more = new KubeConfig()
        more.loadFromFile(file)
        kc.mergeConfig(more)
      }
      source = files.join(path.delimiter)
    } else if (opts.env.HOME && existsSync(path.join(opts.env.HOME, '.kube', 'config'))) {
      source = path.join(opts.env.HOME, '.kube', 'config')
      kc.loadFromFile(source)
    } else if (opts.env.KUBERNETES_SERVICE_HOST) {
      kc.loadFromCluster()
      source = 'in-cluster'
      if (existsSync(SA_TOKEN)) secrets.push(readFileSync(SA_TOKEN, 'utf8').trim())
    } else {
      throw new ConfigError(
        "Input 'kubeconfig' is empty and no KUBECONFIG, ~/.kube/config or in-cluster service account was found: " + 'expected a kubeconfig.'
      )
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err
    // The parser's message can quote the document: say only what failed.
    const code = (err as { code?: unknown })?.code
    const why = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'
    throw new ConfigError(
      `The kubeconfig from ${source === 'input' ? "input 'kubeconfig'" : source} could not be loaded (${why}): expected a readable kubeconfig YAML document.`
    )
  }
  for (const user of kc.getUsers()) secrets.push(...userSecrets(user))
  const context = kc.getCurrentContext() || undefined
  if (!context || !kc.getContextObject(context)) {
    throw new ConfigError(`Input 'kubeconfig' has no usable current-context (got ${JSON.stringify(context ?? '')}).`)
  }
  return {
    kubeConfig: kc,
    secrets: unique(secrets),
    namespace: kc.getContextObject(context)?.namespace,
    context,
    source
  }
}

/** The secret strings of one kubeconfig user, including derived forms (decoded key PEM and its lines). */
export function userSecrets(user: Partial<User>): string[] {
  const out: string[] = []
  const add = (v: unknown) => {
    if (typeof v === 'string' && v.trim().length >= 4) out.push(v.trim())
  }
  add(user.token)
  add(user.password)
  // Basic auth goes over the wire as base64(user:password): mask that form too.
  if (typeof user.username === 'string' && typeof user.password === 'string' && user.password) {
    add(Buffer.from(`${user.username}:${user.password}`).toString('base64'))
  }
  if (user.keyData) {
    add(user.keyData)
    const pem = Buffer.from(user.keyData, 'base64').toString('utf8')
    add(pem)
    // Masking is per exact string: a log line showing one PEM line must still be masked.
    for (const line of pem.split(/\r?\n/)) if (!line.startsWith('-----') && line.trim().length >= 16) add(line)
  }
  const ap = user.authProvider as { config?: Record<string, unknown> } | undefined
  for (const key of ['access-token', 'refresh-token', 'id-token', 'client-secret']) add(ap?.config?.[key])
  const exec = user.exec as { env?: Array<{ name?: string; value?: string }> } | undefined
  // Exec plugin env often carries plain settings (AWS_PROFILE=prod): mask only credential-looking names.
  for (const e of exec?.env ?? []) if (/token|secret|password|key|credential/i.test(e.name ?? '')) add(e.value)
  return out
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)]
}
