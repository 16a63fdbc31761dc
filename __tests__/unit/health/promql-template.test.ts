import {
  escapePromqlRegex,
  escapePromqlString,
  invalidValue,
  parseTemplate,
  renderTemplate,
  TemplateValueError,
  type QueryTemplate,
  type TemplateValues
} from '../../../src/health/promql-template.js'

const values = (over: Partial<TemplateValues> = {}): TemplateValues => ({
  namespace: 'shop',
  workload: 'reviews-v2',
  canary_workload: 'reviews-v2',
  stable_workload: 'reviews-v1',
  version: 'v2',
  canary_version: 'v2',
  stable_version: 'v1',
  intervalSeconds: 60,
  ...over
})

function template(source: string): QueryTemplate {
  const t = parseTemplate(source)
  if ('error' in t) throw new Error(t.error)
  return t
}

describe('escaping', () => {
  it.each([
    ['plain', 'plain'],
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['line\nbreak', 'line\\nbreak'],
    ['x",namespace=~".*', 'x\\",namespace=~\\".*']
  ])('string %j -> %j', (input, expected) => {
    expect(escapePromqlString(input)).toBe(expected)
  })

  it.each([
    ['reviews-v2', 'reviews-v2'],
    ['a.b', 'a\\\\.b'], // RE2 `a\.b`, string-escaped
    ['.*', '\\\\.\\\\*'],
    ['(a|b)+[x]{2}^$?', '\\\\(a\\\\|b\\\\)\\\\+\\\\[x\\\\]\\\\{2\\\\}\\\\^\\\\$\\\\?'],
    ['a"b', 'a\\"b']
  ])('regex %j -> %j', (input, expected) => {
    expect(escapePromqlRegex(input)).toBe(expected)
  })

  it('keeps an escaped value inside its string: the closing quote is never matched early', () => {
    const hostile = 'x",namespace=~".*'
    const rendered = `up{pod="${escapePromqlString(hostile)}"}`
    // Walk the string literal as PromQL's lexer does: a backslash escapes the next character.
    let i = rendered.indexOf('"') + 1
    while (rendered[i] !== '"') i += rendered[i] === '\\' ? 2 : 1
    expect(rendered.slice(i)).toBe('"}')
  })
})

describe('value validation', () => {
  it.each([
    ['namespace', 'shop', undefined],
    ['namespace', 'Shop', 'is not a DNS-1123 label'],
    ['namespace', 'a.b', 'is not a DNS-1123 label'],
    ['namespace', 'x",namespace=~".*', 'is not a DNS-1123 label'],
    ['workload', 'reviews-v2', undefined],
    ['workload', 'reviews.v2', undefined],
    ['workload', 'x",namespace=~".*', 'is not a DNS-1123 name'],
    ['workload', '-bad', 'is not a DNS-1123 name'],
    ['stable_workload', 'a\\b', 'is not a DNS-1123 name'],
    ['version', 'v2.1_rc-1', undefined],
    ['version', 'V2', undefined],
    ['version', 'v2"', 'is not a valid label value'],
    ['version', 'a'.repeat(64), 'is not a valid label value'],
    ['canary_version', 'v2\n', 'is not a valid label value']
  ] as const)('%s %j -> %s', (placeholder, value, expected) => {
    expect(invalidValue(placeholder, value)).toBe(expected)
  })
})

describe('parseTemplate', () => {
  it('lists the placeholders used', () => {
    expect(template('sum(rate(x{ns="{{namespace}}",w=~"{{ workload_re }}"}[{{interval}}]))').placeholders).toEqual([
      'namespace',
      'workload_re',
      'interval'
    ])
  })

  it.each([
    ['x{a="{{nope}}"}', 'unknown placeholder {{nope}}; expected one of {{interval}}, {{namespace}}, {{namespace_re}}'],
    ['x{a=~"{{workload}}"}', '{{workload}} inside a regex matcher (=~ or !~) must be {{workload_re}}, which quotes regex metacharacters'],
    ['x{a!~ "{{version}}-.*"}', '{{version}} inside a regex matcher (=~ or !~) must be {{version_re}}, which quotes regex metacharacters'],
    ['x{a={{workload}}}', '{{workload}} must stand inside a double-quoted string, e.g. label="{{workload}}"'],
    ["x{a='{{workload}}'}", '{{workload}} must stand inside a double-quoted string, e.g. label="{{workload}}"'],
    ['x{a="{{interval}}"}', '{{interval}} belongs in a range selector like [{{interval}}], not in a string'],
    ['x{a={{workload_re}}}', '{{workload_re}} must stand inside a double-quoted regex string, e.g. label=~"{{workload_re}}"']
  ])('%j is refused: %s', (source, message) => {
    const t = parseTemplate(source)
    expect('error' in t && t.error.startsWith(message)).toBe(true)
    if ('error' in t) expect(t.error).toContain(message)
  })

  it('ignores placeholders in comments and understands escaped quotes in strings', () => {
    expect(template('x{a="q\\"{{workload}}"} # {{nope}} here').placeholders).toEqual(['workload'])
  })
})

describe('renderTemplate', () => {
  it('renders each side with validated, escaped values', () => {
    const t = template(
      'sum(rate(m{ns="{{namespace}}",w="{{workload}}",c="{{canary_workload}}",s="{{stable_workload}}",v="{{version}}",r=~"{{workload_re}}"}[{{interval}}]))'
    )
    expect(renderTemplate(t, values())).toBe(
      'sum(rate(m{ns="shop",w="reviews-v2",c="reviews-v2",s="reviews-v1",v="v2",r=~"reviews-v2"}[60s]))'
    )
    expect(renderTemplate(t, values({ workload: 'reviews.v1', version: 'v1' }))).toBe(
      'sum(rate(m{ns="shop",w="reviews.v1",c="reviews-v2",s="reviews-v1",v="v1",r=~"reviews\\\\.v1"}[60s]))'
    )
  })

  it('rounds the interval to whole seconds, at least 1s', () => {
    const t = template('rate(m[{{interval}}])')
    expect(renderTemplate(t, values({ intervalSeconds: 89.6 }))).toBe('rate(m[90s])')
    expect(renderTemplate(t, values({ intervalSeconds: 0.2 }))).toBe('rate(m[1s])')
  })

  it.each([
    [{ workload: 'x",namespace=~".*' }, '{{workload}} value "x\\",namespace=~\\".*" is not a DNS-1123 name'],
    [{ namespace: 'a\\b' }, '{{namespace}} value "a\\\\b" is not a DNS-1123 label'],
    [{ version: 'v"2' }, '{{version}} value "v\\"2" is not a valid label value'],
    [{ stable_workload: undefined }, '{{stable_workload}} has no value here']
  ])('refuses %j: %s', (over, message) => {
    const t = template('m{ns="{{namespace}}",w="{{workload}}",v="{{version}}",s="{{stable_workload}}"}')
    expect(() => renderTemplate(t, values(over))).toThrow(TemplateValueError)
    expect(() => renderTemplate(t, values(over))).toThrow(message)
  })
})
