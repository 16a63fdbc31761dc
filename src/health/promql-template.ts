/**
 * PromQL query templates: `{{placeholder}}` substitution that can never widen a selector.
 *
 * Values are validated first (DNS-1123 for names, the label-value charset for versions, `<n>s` for
 * the interval) and escaped as well, for the double-quoted PromQL string they land in: `\`, `"` and
 * newlines for `=`/`!=` matchers; the `_re` variants also quote RE2 metacharacters, for `=~`/`!~`.
 * Where a placeholder may stand is checked when the template is parsed, so a name placeholder cannot
 * sit unquoted in a regex matcher (`a.b` would match `axb`) nor outside a string.
 */

/** Placeholders that take a name or version value. Each has a `_re` twin for regex matchers. */
export const VALUE_PLACEHOLDERS = [
  'namespace',
  'workload',
  'canary_workload',
  'stable_workload',
  'version',
  'canary_version',
  'stable_version'
] as const

export type ValuePlaceholder = (typeof VALUE_PLACEHOLDERS)[number]

/** What a template is rendered with. `workload`/`version` are the side being queried. */
export type TemplateValues = Record<ValuePlaceholder, string | undefined> & { intervalSeconds: number }

/** A parsed, position-checked template. */
export interface QueryTemplate {
  source: string
  /** Placeholders used, without braces (`workload`, `workload_re`, `interval`). */
  placeholders: string[]
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** Escape a value for inside a double-quoted PromQL string (Go escaping). */
export function escapePromqlString(value: string): string {
  return value.replace(/[\\"\n\r\t]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n'
      case '\r':
        return '\\r'
      case '\t':
        return '\\t'
      default:
        return `\\${c}`
    }
  })
}

/** Quote RE2 metacharacters (matchers are fully anchored), then escape for the PromQL string. */
export function escapePromqlRegex(value: string): string {
  return escapePromqlString(value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&'))
}

function allowedPlaceholders(): Set<string> {
  const names = new Set<string>(['interval'])
  for (const p of VALUE_PLACEHOLDERS) {
    names.add(p)
    names.add(`${p}_re`)
  }
  return names
}

const ALLOWED = allowedPlaceholders()

type Where = 'outside' | 'string' | 'regex-string' | 'other-string'

/** Where each placeholder occurrence stands: outside strings, in a `"…"` string, or in a regex matcher's. */
function placeholderPositions(source: string): Array<{ name: string; where: Where }> {
  const found: Array<{ name: string; where: Where }> = []
  let i = 0
  let quote: string | undefined
  let where: Where = 'outside'
  while (i < source.length) {
    const c = source[i]
    if (source.startsWith('{{', i)) {
      const m = /^\{\{\s*([A-Za-z0-9_]+)\s*\}\}/.exec(source.slice(i))
      if (m) {
        found.push({ name: m[1], where: quote ? where : 'outside' })
        i += m[0].length
        continue
      }
    }
    if (quote) {
      if (c === '\\' && quote !== '`') {
        i += 2
        continue
      }
      if (c === quote) quote = undefined
      i++
      continue
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c
      const before = source.slice(0, i).trimEnd()
      const regex = before.endsWith('=~') || before.endsWith('!~')
      where = c === '"' ? (regex ? 'regex-string' : 'string') : 'other-string'
    } else if (c === '#') {
      // A PromQL comment runs to the end of the line.
      const nl = source.indexOf('\n', i)
      i = nl === -1 ? source.length : nl
      continue
    }
    i++
  }
  return found
}

/**
 * Parse a template; returns a reason string for the first misuse instead of a template.
 * `label` names the check in messages.
 */
export function parseTemplate(source: string): QueryTemplate | { error: string } {
  const names = new Set<string>()
  for (const { name, where } of placeholderPositions(source)) {
    if (!ALLOWED.has(name)) {
      return {
        error: `unknown placeholder {{${name}}}; expected one of ${[...ALLOWED].map((n) => `{{${n}}}`).join(', ')}`
      }
    }
    if (name === 'interval') {
      if (where !== 'outside') return { error: '{{interval}} belongs in a range selector like [{{interval}}], not in a string' }
    } else if (name.endsWith('_re')) {
      if (where !== 'regex-string' && where !== 'string') {
        return { error: `{{${name}}} must stand inside a double-quoted regex string, e.g. label=~"{{${name}}}"` }
      }
    } else if (where === 'regex-string') {
      return { error: `{{${name}}} inside a regex matcher (=~ or !~) must be {{${name}_re}}, which quotes regex metacharacters` }
    } else if (where !== 'string') {
      return { error: `{{${name}}} must stand inside a double-quoted string, e.g. label="{{${name}}}"` }
    }
    names.add(name)
  }
  return { source, placeholders: [...names] }
}

/** Check one value before it goes into a query; returns the reason it is refused, if it is. */
export function invalidValue(placeholder: ValuePlaceholder, value: string): string | undefined {
  if (placeholder === 'namespace') {
    return DNS1123_LABEL.test(value) && value.length <= 63 ? undefined : 'is not a DNS-1123 label'
  }
  if (placeholder.endsWith('workload')) {
    return DNS1123_SUBDOMAIN.test(value) && value.length <= 253 ? undefined : 'is not a DNS-1123 name'
  }
  return LABEL_VALUE.test(value) && value.length <= 63 ? undefined : 'is not a valid label value'
}

/** Thrown by renderTemplate when a value is missing or refused. */
export class TemplateValueError extends Error {
  override readonly name = 'TemplateValueError'
}

/** Substitute every placeholder, validating and escaping each value. */
export function renderTemplate(template: QueryTemplate, values: TemplateValues): string {
  return template.source.replace(PLACEHOLDER, (_all, name: string) => {
    if (name === 'interval') {
      const seconds = Math.max(1, Math.round(values.intervalSeconds))
      if (!Number.isFinite(seconds)) throw new TemplateValueError(`interval ${values.intervalSeconds} is not a number of seconds`)
      return `${seconds}s`
    }
    const regex = name.endsWith('_re')
    const key = (regex ? name.slice(0, -3) : name) as ValuePlaceholder
    const value = values[key]
    if (value === undefined || value === '') throw new TemplateValueError(`{{${name}}} has no value here`)
    const why = invalidValue(key, value)
    if (why) throw new TemplateValueError(`{{${name}}} value ${JSON.stringify(value)} ${why}`)
    return regex ? escapePromqlRegex(value) : escapePromqlString(value)
  })
}
