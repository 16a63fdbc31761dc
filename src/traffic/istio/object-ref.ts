import type { KubeObject } from '../../kube/kube-object.js'

/** `Kind namespace/name` for error messages; the namespace falls back to the one we work in. */
export function objectRef(obj: Pick<KubeObject, 'kind' | 'metadata'>, namespace?: string): string {
  const ns = obj.metadata.namespace ?? namespace
  return `${obj.kind} ${ns ? `${ns}/` : ''}${obj.metadata.name}`
}

/** `route "name" (#i)` or `route #i`, as error messages name an http route; `tcp route #i` for a TCP one. */
export function routeRef(route: { name?: unknown } | undefined, index: number, section: 'http' | 'tcp' = 'http'): string {
  if (section === 'tcp') return `tcp route #${index}`
  return typeof route?.name === 'string' ? `route "${route.name}" (#${index})` : `route #${index}`
}

/** Labels as a selector string, `a=1,b=2`: the form kubectl takes, and short to quote. */
export function labelString(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
}
