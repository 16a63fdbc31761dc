/**
 * Escaping for text that comes from users or the cluster (versions, names, check names, messages,
 * error text) before it goes into Markdown that GitHub renders in a PR comment or job summary.
 * After escaping, a value cannot ping (@mention), reference an issue, autolink, inject HTML or a
 * link/image, open or close an HTML comment (our sticky-comment marker), break a table, or start a
 * block (heading, list, quote). Pure.
 */

/** Zero-width space: breaks @mentions, #refs and autolinks without changing what a reader sees. */
export const ZWSP = '\u200b'

const DEFAULT_INLINE_MAX = 300

// Characters that turn into Markdown syntax anywhere in a line; escaped with a backslash.
const BACKSLASHED = new Set(['\\', '`', '*', '_', '[', ']', '|', '~', '$', '{', '}'])

// C0/C1 controls, line/paragraph separators, and bidi overrides (trojan-source style reordering).
const LINE_BREAKING = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const BIDI = /[\u202a-\u202e\u2066-\u2069]/g

/** Cut `text` to at most `max` characters (plus an ellipsis), never inside a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text
  let end = Math.max(0, max)
  const code = text.charCodeAt(end - 1)
  if (code >= 0xd800 && code <= 0xdbff) end -= 1
  return `${text.slice(0, end)}…`
}

/**
 * Escape one value for inline Markdown (a sentence, a list item, a table cell): newlines become
 * spaces, the value is cut to `max` characters first, then every syntax character is neutralised.
 */
export function escapeMarkdown(value: unknown, max = DEFAULT_INLINE_MAX): string {
  const raw = value === undefined || value === null ? '' : String(value)
  const flat = cut(raw.replace(BIDI, '').replace(LINE_BREAKING, ' '), max)
  let out = ''
  for (const ch of flat) {
    if (ch === '&') out += '&amp;'
    else if (ch === '<') out += '&lt;'
    else if (ch === '>') out += '&gt;'
    else if (ch === '@') out += `@${ZWSP}`
    else if (BACKSLASHED.has(ch)) out += `\\${ch}`
    else out += ch
  }
  out = out
    // #123 and GH-123 would cross-reference an issue (a timeline event in someone else's issue).
    .replace(/#(?=\d)/g, `#${ZWSP}`)
    .replace(/\b(gh)-(?=\d)/gi, `$1${ZWSP}-`)
    // Bare URLs and www. are autolinked by GitHub; a link a user controls is not ours to render.
    .replace(/:\/\//g, `:${ZWSP}//`)
    .replace(/\bwww\./gi, (m) => `${m.slice(0, 3)}${ZWSP}.`)
    // `[x](y)` cannot form since `[` is escaped; `![` likewise. A leading marker would start a block.
    .replace(/^(\s*)([-+=#!])/, '$1\\$2')
    .replace(/^(\s*\d+)([.)])/, '$1\\$2')
  return out
}

/**
 * A fenced code block that the content cannot close (the fence is longer than any backtick run
 * inside), with HTML comment openers/closers neutralised so the text can never contain our marker.
 * Long content keeps its head and says how much was cut.
 */
export function codeBlock(value: unknown, opts: { lang?: string; max?: number } = {}): string {
  const max = opts.max ?? 4000
  let text = (value === undefined || value === null ? '' : String(value))
    .replace(/\r\n?/g, '\n')
    .replace(BIDI, '')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, ' ')
  if (text.length > max) text = `${cut(text, max)}\n(${text.length - max} more characters not shown)`
  text = neutraliseComments(text)
  const longestRun = Math.max(0, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length))
  const fence = '`'.repeat(Math.max(3, longestRun + 1))
  const lang = opts.lang && /^[a-z0-9-]+$/.test(opts.lang) ? opts.lang : ''
  return `${fence}${lang}\n${text}\n${fence}`
}

/** `<!--` and `-->` can never appear in text we did not write ourselves. */
export function neutraliseComments(text: string): string {
  return text.replace(/<!--/g, `<!${ZWSP}--`).replace(/--!?>/g, (m) => `--${ZWSP}${m.slice(2)}`)
}

/**
 * A plain single line for logs and annotations (no Markdown is rendered there): control characters
 * become spaces, runs of spaces collapse, the line is cut to `max` characters.
 */
export function plainLine(value: unknown, max = 500): string {
  const raw = value === undefined || value === null ? '' : String(value)
  return cut(
    raw
      .replace(BIDI, '')
      .replace(LINE_BREAKING, ' ')
      .replace(/\s{2,}/g, ' ')
      .trim(),
    max
  )
}

/**
 * A URL we render as a link: only https (or http) URLs without characters that could end the
 * Markdown link destination or start HTML. Anything else returns undefined (the caller prints
 * escaped text instead).
 */
export function safeUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2000) return undefined
  if (!/^https?:\/\/[^\s<>()"'`\\]+$/.test(value)) return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? value : undefined
  } catch {
    return undefined
  }
}

/** Text safe inside a Mermaid string or label: letters, digits and a little punctuation. */
export function mermaidLabel(value: unknown, max = 40): string {
  const raw = value === undefined || value === null ? '' : String(value)
  return cut(raw.replace(/[^A-Za-z0-9 _:.+\-/]/g, ''), max).replace(/…$/, '')
}
