/** Kubernetes label selectors: matching and the query-string form, written once. */

/** A Kubernetes label selector (matchLabels and/or matchExpressions). */
export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>
}

/**
 * True when `selector` selects pods labelled `labels`, with Kubernetes semantics (all terms must
 * hold). An empty or missing selector selects everything; an unknown operator is treated as
 * matching, so that an overlap check errs on the safe side.
 */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {}
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (!Object.hasOwn(l, k) || l[k] !== v) return false
  for (const e of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key)
    const inValues = has && (e.values ?? []).includes(l[e.key]!)
    switch (e.operator) {
      case 'In':
        if (!inValues) return false
        break
      case 'NotIn':
        if (inValues) return false
        break
      case 'Exists':
        if (!has) return false
        break
      case 'DoesNotExist':
        if (has) return false
        break
    }
  }
  return true
}

/** Whether a plain label map (a Service selector, a subset's labels) selects `labels`. */
export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return selectorMatches({ matchLabels: selector }, labels)
}

/** A label selector object as the `labelSelector` query string; undefined when it selects nothing. */
export function labelSelectorQuery(selector: LabelSelector | undefined): string | undefined {
  if (!selector) return undefined
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',')
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`)
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`)
    else if (e.operator === 'Exists') parts.push(e.key)
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`)
  }
  return parts.length > 0 ? parts.join(',') : undefined
}
