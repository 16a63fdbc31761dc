/**
 * Kubernetes Service hosts as Istio rules write them. A short name is resolved against the namespace
 * of the object that holds it, so `svc` and `svc.ns.svc.cluster.local` name the same Service. The
 * partial forms `svc.ns` and `svc.ns.svc` are parsed to the Service they look like, and flagged: Istio
 * takes them literally.
 */

/** A Service named by an Istio host. */
export interface ServiceHost {
  name: string
  namespace: string
  /** `name.namespace.svc.cluster.local`: the form two hosts are compared in. */
  fqdn: string
  /**
   * `partial` for `svc.ns` and `svc.ns.svc`: Istio expands only a name without a dot
   * (ResolveShortnameToFQDN) and takes these literally, so in a rule they name no Service.
   */
  form: 'short' | 'partial' | 'fqdn'
}

const CLUSTER_DOMAIN = 'cluster.local'

/**
 * Resolve `host` written in an object of `namespace`; undefined when the host cannot name a
 * Kubernetes Service (wildcard, IP address, external name, another cluster domain).
 */
export function parseServiceHost(host: string, namespace: string): ServiceHost | undefined {
  const h = host.trim().toLowerCase().replace(/\.$/, '')
  if (h === '' || h.includes('*') || h.includes(':') || h.includes('/')) return undefined
  const parts = h.split('.')
  if (parts.some((p) => p === '')) return undefined
  let form: ServiceHost['form']
  if (parts.length === 1) form = 'short'
  else if (parts.length === 2 || (parts.length === 3 && parts[2] === 'svc')) form = 'partial'
  else if (parts[2] === 'svc' && parts.slice(3).join('.') === CLUSTER_DOMAIN) form = 'fqdn'
  else return undefined
  const name = parts[0]
  const ns = form === 'short' ? namespace : parts[1]
  return { name, namespace: ns, fqdn: `${name}.${ns}.svc.${CLUSTER_DOMAIN}`, form }
}

/** Whether two hosts, each written in an object of the given namespace, name the same Service. */
export function sameServiceHost(a: string, aNamespace: string, b: string, bNamespace: string): boolean {
  const pa = parseServiceHost(a, aNamespace)
  const pb = parseServiceHost(b, bNamespace)
  return pa !== undefined && pb !== undefined && pa.fqdn === pb.fqdn
}
