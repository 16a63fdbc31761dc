/**
 * src/ may use @kubernetes/client-node for KubeConfig (credentials) and its types only: the
 * generated API classes, their models and their HTTP stack are what made the cold start slow.
 * Likewise @actions/github is loaded on first use only (a dynamic import), never statically.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

const ALLOWED_CLIENT_NODE = new Map([
  ['@kubernetes/client-node/dist/config.js', ['KubeConfig']],
  ['@kubernetes/client-node/dist/config_types.js', ['User', 'Cluster', 'Context']]
])

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []
  )
}

interface Import {
  file: string
  typeOnly: boolean
  names: string[]
  from: string
  dynamic: boolean
}

/** Every static `import ... from 'x'`, `export ... from 'x'` and dynamic `import('x')` of a file. */
export function importsOf(file: string, text: string): Import[] {
  const out: Import[] = []
  const stat = /(?:^|\n)\s*(import|export)\s+(type\s+)?([\s\S]*?)\s+from\s+['"]([^'"]+)['"]/g
  for (let m; (m = stat.exec(text));) {
    const names = (m[3].match(/\{([\s\S]*)\}/)?.[1] ?? m[3])
      .split(',')
      .map((n) =>
        n
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)[0]
          .trim()
      )
      .filter(Boolean)
    const allTypes =
      m[3].includes('{') &&
      m[3]
        .match(/\{([\s\S]*)\}/)![1]
        .split(',')
        .filter((n) => n.trim())
        .every((n) => /^\s*type\s/.test(n))
    out.push({ file, typeOnly: Boolean(m[2]) || allTypes, names, from: m[4], dynamic: false })
  }
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ file, typeOnly: false, names: [], from: m[1], dynamic: true })
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g))
    out.push({ file, typeOnly: false, names: [], from: m[1], dynamic: false })
  return out
}

const all = sources('src').flatMap((f) => importsOf(f, readFileSync(f, 'utf8')))

test('src/ imports nothing of client-node but KubeConfig and its types', () => {
  const cn = all.filter((i) => i.from.startsWith('@kubernetes/client-node'))
  expect(cn.length).toBeGreaterThan(0) // the check below must have something to look at
  const bad = cn.filter((i) => {
    if (i.dynamic) return true
    const allowed = ALLOWED_CLIENT_NODE.get(i.from)
    if (!allowed) return !i.typeOnly || i.from !== '@kubernetes/client-node'
    return i.names.some((n) => !allowed.includes(n))
  })
  expect(bad.map((i) => `${i.file}: ${i.names.join(', ')} from ${i.from}`)).toEqual([])
})

test('@actions/github is only ever imported dynamically (or for types)', () => {
  const gh = all.filter((i) => i.from === '@actions/github')
  expect(gh.some((i) => i.dynamic)).toBe(true)
  expect(gh.filter((i) => !i.dynamic && !i.typeOnly).map((i) => i.file)).toEqual([])
})

test('the import scanner sees a generated API class import and a static @actions/github import', () => {
  const found = importsOf(
    'x.ts',
    "import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'\nimport { getOctokit } from '@actions/github'\n"
  )
  expect(found).toEqual([
    { file: 'x.ts', typeOnly: false, names: ['CoreV1Api', 'KubeConfig'], from: '@kubernetes/client-node', dynamic: false },
    { file: 'x.ts', typeOnly: false, names: ['getOctokit'], from: '@actions/github', dynamic: false }
  ])
  expect(importsOf('y.ts', "import type { User } from '@kubernetes/client-node'")[0].typeOnly).toBe(true)
})
