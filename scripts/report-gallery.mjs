// Renders every report fixture the way GitHub shows a PR comment and looks at it in a real browser:
// Markdown through markdown-it (html, linkify, breaks; GitHub alerts) with GitHub's stylesheet
// (github-markdown-css), Mermaid blocks through the local mermaid.min.js, in headless Chromium
// (Debian's package) at a 900 px and a 720 px comment column. Fails on any Mermaid syntax error and
// on anything wider than the comment column (a table or block that scrolls sideways hides content).
//
//   npm run report:gallery            check, and write PNGs to docs/reports/
//   npm run report:gallery -- --check check only (what CI runs)
//
// Nothing here reaches the network: the page is set from a string and loads local files only.
import { build } from 'esbuild'
import MarkdownIt from 'markdown-it'
import githubAlerts from 'markdown-it-github-alerts'
import { chromium } from 'playwright-core'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const require = createRequire(import.meta.url)
const args = new Set(process.argv.slice(2))
const checkOnly = args.has('--check')
const OUT = 'docs/reports'
const FIXTURES = '__tests__/fixtures/reports'
/** The Markdown column of a PR comment on a wide screen, and a narrow window or side panel. */
const WIDTHS = [900, 720]
/** Screenshots stop here: the first screens are what the review is about. */
const MAX_SHOT_HEIGHT = 3200
// Debian's chromium here; GitHub's Ubuntu runners ship Google Chrome instead.
const CHROMIUM =
  process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/google-chrome'].find((p) => existsSync(p)) || '/usr/bin/chromium'

if (!existsSync(CHROMIUM)) {
  console.error(`report:gallery: no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH.`)
  process.exit(1)
}

// The renderer is TypeScript: bundle it once into a temporary ESM module.
const work = mkdtempSync(join(tmpdir(), 'report-gallery-'))
const rendererFile = join(work, 'render-report.mjs')
await build({
  entryPoints: ['src/report/render-report.ts'],
  bundle: true,
  format: 'esm',
  platform: 'node',
  outfile: rendererFile,
  logLevel: 'warning'
})
const { renderReport, reportMarker } = await import(pathToFileURL(rendererFile).href)

const md = new MarkdownIt({ html: true, linkify: true, breaks: true })
md.use(githubAlerts)
const defaultFence = md.renderer.rules.fence
md.renderer.rules.fence = (tokens, idx, options, env, self) => {
  const token = tokens[idx]
  if (token.info.trim() === 'mermaid')
    return `<pre class="mermaid-source" hidden>${md.utils.escapeHtml(token.content)}</pre><div class="mermaid-box"></div>\n`
  return defaultFence(tokens, idx, options, env, self)
}

const css = readFileSync(require.resolve('github-markdown-css/github-markdown-light.css'), 'utf8')
const mermaidJs = require.resolve('mermaid/dist/mermaid.min.js')

function page(body, width) {
  // The comment box: 1 px border, 16 px padding around the Markdown, as on a PR timeline.
  return `<!doctype html><html><head><meta charset="utf-8"><style>${css}
body { margin: 0; background: #fff; }
.comment { width: ${width}px; margin: 8px; border: 1px solid #d0d7de; border-radius: 6px; }
.markdown-body { padding: 16px; box-sizing: border-box; overflow-x: auto; }
.mermaid-box svg { max-width: 100%; height: auto; }
</style></head><body><div class="comment"><article class="markdown-body">${body}</article></div></body></html>`
}

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort()
if (!checkOnly) mkdirSync(OUT, { recursive: true })

const problems = []
// playwright-core wants the profile directory as its own argument: a new, empty one.
const browser = await chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
  executablePath: CHROMIUM,
  headless: true,
  deviceScaleFactor: 1,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync'
  ]
})
// Nothing leaves the machine: every request a page makes is refused.
await browser.route('**/*', (route) => route.abort())
try {
  for (const name of fixtures) {
    const report = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'))
    const markdown = renderReport(report, { marker: reportMarker(report.namespace, report.virtualService) })
    const html = md.render(markdown)
    for (const width of WIDTHS) {
      const p = await browser.newPage()
      await p.setViewportSize({ width: width + 18, height: 900 })
      await p.setContent(page(html, width))
      await p.addScriptTag({ path: mermaidJs })
      const result = await p.evaluate(async () => {
        const mermaid = globalThis.mermaid
        mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' })
        const errors = []
        const sources = [...document.querySelectorAll('pre.mermaid-source')]
        for (const [i, pre] of sources.entries()) {
          const box = pre.nextElementSibling
          try {
            await mermaid.parse(pre.textContent)
            const { svg } = await mermaid.render(`chart${i}`, pre.textContent)
            box.innerHTML = svg
            if (/Syntax error/i.test(box.textContent)) errors.push(`chart ${i + 1}: Mermaid drew a syntax error`)
          } catch (error) {
            errors.push(`chart ${i + 1}: ${String(error?.message ?? error).split('\n')[0]}`)
            box.textContent = 'Mermaid error'
          }
        }
        return { errors, charts: sources.length }
      })
      for (const e of result.errors) problems.push(`${name} @${width}px: ${e}`)
      if (!checkOnly) {
        const height = await p.evaluate(() => document.body.scrollHeight)
        await p.screenshot({
          path: join(OUT, `${name}-${width}.png`),
          fullPage: true,
          clip: { x: 0, y: 0, width: width + 18, height: Math.min(height + 8, MAX_SHOT_HEIGHT) }
        })
      }
      // Overflow is checked with every <details> open: what is collapsed must fit too once expanded.
      const overflow = await p.evaluate(() => {
        for (const d of document.querySelectorAll('details')) d.open = true
        const article = document.querySelector('article')
        const found = []
        if (article.scrollWidth > article.clientWidth + 1)
          found.push(`the comment column scrolls (${article.scrollWidth} px in ${article.clientWidth} px)`)
        for (const el of article.querySelectorAll('table, pre, .markdown-alert, p, li, svg')) {
          if (el.closest('pre.mermaid-source')) continue
          if (el.scrollWidth > el.clientWidth + 1) {
            found.push(
              `a ${el.tagName.toLowerCase()} is ${el.scrollWidth} px wide in ${el.clientWidth} px: ${(el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 60)}`
            )
          }
        }
        return found
      })
      for (const o of overflow) problems.push(`${name} @${width}px: ${o}`)
      console.log(`${name} @${width}px: ${result.charts} chart(s), ${result.errors.length + overflow.length} problem(s)`)
      await p.close()
    }
  }
} finally {
  await browser.close()
  rmSync(work, { recursive: true, force: true })
}

if (problems.length) {
  console.error(`report:gallery: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  process.exit(1)
}
console.log(
  `report:gallery: ${fixtures.length} fixtures at ${WIDTHS.join(' and ')} px: no Mermaid error, nothing wider than the column${checkOnly ? '' : `; PNGs in ${OUT}/`}`
)
