/**
 * Code-health figures of a source tree: the largest functions, the largest files, the lines of
 * src/commands/, and import cycles among our own modules. Run: `node scripts/code-figures.ts [src]`.
 * A function's size is its lines as ESLint's max-lines-per-function counts them (blank and
 * comment-only lines skipped); cycles follow every relative import, `import type` included.
 */
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

interface FunctionSize {
  name: string
  file: string
  line: number
  lines: number
}

const root = path.resolve(process.argv[2] ?? 'src')
const files = (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort()

/** Lines of `text` that hold code: not blank, not only a comment. */
function codeLines(text: string): number {
  let inBlock = false
  let count = 0
  for (const raw of text.split('\n')) {
    let line = raw.trim()
    if (inBlock) {
      const end = line.indexOf('*/')
      if (end < 0) continue
      inBlock = false
      line = line.slice(end + 2).trim()
    }
    while (line.startsWith('/*')) {
      const end = line.indexOf('*/', 2)
      if (end < 0) {
        inBlock = true
        line = ''
        break
      }
      line = line.slice(end + 2).trim()
    }
    if (line !== '' && !line.startsWith('//')) count++
  }
  return count
}

function functionName(node: ts.Node): string {
  const named = node as { name?: ts.Node }
  if (named.name && ts.isIdentifier(named.name)) return named.name.text
  const parent = node.parent
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText()
  return '(anonymous)'
}

const functions: FunctionSize[] = []
const fileLines: [string, number][] = []
const imports = new Map<string, string[]>()

for (const file of files) {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  fileLines.push([file, text.split('\n').length - (text.endsWith('\n') ? 1 : 0)])
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const deps: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      functions.push({ name: functionName(node), file, line: start + 1, lines: codeLines(node.getText(source)) })
    }
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const spec = node.moduleSpecifier.text
      if (spec.startsWith('.')) deps.push(path.normalize(path.join(path.dirname(file), spec.replace(/\.js$/, '.ts'))))
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  imports.set(file, deps)
}

/** Every elementary cycle is found at least once from its smallest file; printed once each. */
function cycles(): string[][] {
  const found = new Map<string, string[]>()
  const walk = (start: string, at: string, trail: string[]): void => {
    for (const next of imports.get(at) ?? []) {
      if (next === start) {
        const key = [...trail].sort().join(' ')
        if (!found.has(key)) found.set(key, [...trail, start])
      } else if (next > start && !trail.includes(next)) {
        walk(start, next, [...trail, next])
      }
    }
  }
  for (const file of files) walk(file, file, [file])
  return [...found.values()]
}

functions.sort((a, b) => b.lines - a.lines)
fileLines.sort((a, b) => b[1] - a[1])
const commands = fileLines.filter(([f]) => f.startsWith(`commands${path.sep}`)).reduce((sum, [, n]) => sum + n, 0)
const found = cycles()

console.log(`${files.length} files, ${fileLines.reduce((s, [, n]) => s + n, 0)} lines under ${path.relative(process.cwd(), root) || '.'}`)
console.log('largest functions (code lines, as max-lines-per-function counts):')
for (const f of functions.slice(0, 8)) console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.file}:${f.line}`)
console.log(
  `functions over 100 lines: ${functions.filter((f) => f.lines > 100).length}; over 80: ${functions.filter((f) => f.lines > 80).length}`
)
console.log('largest files (lines):')
for (const [f, n] of fileLines.slice(0, 5)) console.log(`  ${String(n).padStart(4)}  ${f}`)
console.log(`lines of commands/: ${commands}`)
console.log(`import cycles: ${found.length}`)
for (const c of found) console.log(`  ${c.join(' -> ')}`)
