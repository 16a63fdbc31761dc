/**
 * Kubernetes name and label syntax, as the apiserver validates it (k8s.io/apimachinery validation),
 * so bad names fail before any write instead of halfway through a rollout.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/

/** A DNS-1123 label: namespaces, Istio subset names. At most 63 characters. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value)
}

/** A DNS-1123 subdomain: names of Deployments, VirtualServices, DestinationRules. At most 253. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value)
}

/** A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name at most 63 characters. */
export function isLabelKey(value: string): boolean {
  const slash = value.indexOf('/')
  const name = slash === -1 ? value : value.slice(slash + 1)
  if (slash !== -1 && !isDns1123Subdomain(value.slice(0, slash))) return false
  return name.length <= 63 && LABEL_NAME.test(name)
}

/** A label value. Empty is valid for Kubernetes but never a usable version, so callers reject it. */
export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && LABEL_NAME.test(value))
}

/**
 * The Istio subset name for a version when 'canary-subset' is not given: the version itself when it
 * is a DNS-1123 label (Istio requires that of subset names), else lowercased with `.` and `_` as `-`
 * (`v1.2.0` -> `v1-2-0`).
 */
export function defaultCanarySubset(version: string): string {
  if (isDns1123Label(version)) return version
  const s = version
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '')
  return s === '' ? 'canary' : s
}
