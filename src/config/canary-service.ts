/**
 * The canary's Service among the manifests (per-version Services: a host-level split or an
 * HTTPRoute). Loaded only when the manifests hold a Service.
 */
import type { KubeObject } from '../kube/kube-object.js'
import { ConfigError, quote } from '../errors.js'
import { INPUT } from './inputs.js'
import { isDns1123Label } from './kube-names.js'
import { checkStringMap, isMapping, type CanaryDeploymentOptions, type ManifestDocument } from './manifests.js'

/**
 * Take the canary's Service out of the documents, when they carry one (a host-level split or an
 * HTTPRoute: one Service per version, applied before any weight points at it). At most one
 * v1 Service, with a valid name, a namespace agreeing with the input and a selector. The other
 * documents are returned for validateCanaryDeployment.
 */
export function takeCanaryService(
  docs: readonly ManifestDocument[],
  opts: Pick<CanaryDeploymentOptions, 'namespace'>
): { service?: KubeObject; rest: ManifestDocument[] } {
  const isService = (d: ManifestDocument): boolean => {
    const o = d.object as { kind?: unknown } | null
    return o !== null && typeof o === 'object' && o.kind === 'Service'
  }
  const services = docs.filter(isService)
  const rest = docs.filter((d) => !isService(d))
  if (services.length === 0) return { rest }
  if (services.length > 1) {
    throw new ConfigError(
      `Input '${INPUT.manifests}' is invalid: expected at most one Service, the canary's, found ${services.length} (${services.map((d) => `${d.file}:${d.line}`).join(', ')}).`
    )
  }
  const doc = services[0]!
  const svc = doc.object as KubeObject
  const at = `${doc.file}:${doc.line}`
  const name: unknown = svc.metadata?.name
  if (typeof name !== 'string' || !isDns1123Label(name)) {
    throw new ConfigError(`Service in ${at} is invalid: metadata.name must be a DNS-1123 label like "reviews-v2" (got ${quote(name)}).`)
  }
  const fail = (reason: string): never => {
    throw new ConfigError(`Service ${quote(name)} (${at}) is invalid: ${reason}.`)
  }
  if (svc.apiVersion !== 'v1') fail(`apiVersion is ${quote(svc.apiVersion)}, expected "v1"`)
  const namespace: unknown = svc.metadata.namespace
  if (namespace !== undefined && opts.namespace !== undefined && namespace !== opts.namespace) {
    fail(
      `metadata.namespace is ${quote(namespace)} but input '${INPUT.namespace}' is ${quote(opts.namespace)}: make them agree or remove one`
    )
  }
  const selector: unknown = svc.spec?.selector
  if (!isMapping(selector) || Object.keys(selector).length === 0) {
    fail(`spec.selector is missing: expected the labels of the canary's pods (e.g. app and version)`)
  }
  checkStringMap(selector, 'spec.selector', fail)
  return { service: svc, rest }
}
