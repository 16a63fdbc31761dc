/**
 * A local stand-in for api.github.com, reached through GITHUB_API_URL. It routes the handful of
 * endpoints the reports use and checks EVERY exchange against GitHub's published OpenAPI
 * description (@octokit/openapi, api.github.com.deref.json): the method + path must be an
 * operation of the description, path and query parameters and the JSON body must match the
 * operation's schemas, and every response it sends must match the operation's response schema for
 * that status. Anything else is recorded in `violations` (tests assert it stays empty), so the
 * stand-in cannot drift from the real API without a test noticing.
 *
 * Usable standalone (e.g. by the end-to-end test of dist/index.js):
 *   const gh = await startFakeGithub({ owner, repo, prs, comments })
 *   env.GITHUB_API_URL = gh.url
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'

// ---------- the OpenAPI description (loaded once per process, slimmed and cached on disk) ----------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Schema = { [key: string]: Json }

interface Parameter {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required?: boolean
  schema?: Schema
}

interface Operation {
  operationId: string
  parameters?: Parameter[]
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> }
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>
}

interface SlimSpec {
  version: string
  /** Every path template with its methods; full operations only for the routed ones. */
  paths: Record<string, Record<string, Operation>>
}

/** The operations the stand-in answers. Any other operation of the description: 404 + violation. */
export const ROUTED_OPERATIONS = [
  'repos/list-pull-requests-associated-with-commit',
  'issues/list-comments',
  'issues/get-comment',
  'issues/create-comment',
  'issues/update-comment',
  'repos/create-deployment',
  'repos/create-deployment-status',
  'repos/list-deployment-statuses'
] as const

export type RoutedOperation = (typeof ROUTED_OPERATIONS)[number]

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options']

function openApiDir(): string {
  // Tests and the e2e harness run from the repository root; node_modules is there.
  const dir = join(process.cwd(), 'node_modules', '@octokit', 'openapi')
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`@octokit/openapi not found under ${dir}`)
  return dir
}

let slimSpec: SlimSpec | undefined

/** The slimmed description; the 73 MB file is parsed once, then a small extract is cached in tmp. */
export function loadGithubSpec(): SlimSpec {
  if (slimSpec) return slimSpec
  const dir = openApiDir()
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
  const key = createHash('sha256')
    .update(`${version}\n${ROUTED_OPERATIONS.join(',')}\nv2`)
    .digest('hex')
    .slice(0, 16)
  const cacheDir = join(tmpdir(), 'istio-canary-test-cache')
  const cacheFile = join(cacheDir, `github-openapi-${key}.json`)
  if (existsSync(cacheFile)) {
    try {
      slimSpec = JSON.parse(readFileSync(cacheFile, 'utf8')) as SlimSpec
      return slimSpec
    } catch {
      // A torn cache file: rebuild it below.
    }
  }
  const full = JSON.parse(readFileSync(join(dir, 'generated', 'api.github.com.deref.json'), 'utf8')) as {
    paths: Record<string, Record<string, Operation>>
  }
  const routed = new Set<string>(ROUTED_OPERATIONS)
  const paths: SlimSpec['paths'] = {}
  for (const [template, item] of Object.entries(full.paths)) {
    const methods: Record<string, Operation> = {}
    for (const method of METHODS) {
      const op = item[method]
      if (!op) continue
      methods[method] = routed.has(op.operationId)
        ? { operationId: op.operationId, parameters: op.parameters, requestBody: op.requestBody, responses: op.responses }
        : { operationId: op.operationId }
    }
    paths[template] = methods
  }
  slimSpec = { version, paths }
  for (const id of routed) {
    if (!Object.values(paths).some((m) => Object.values(m).some((op) => op.operationId === id))) {
      throw new Error(`Operation ${id} is not in @octokit/openapi ${version}: update ROUTED_OPERATIONS`)
    }
  }
  mkdirSync(cacheDir, { recursive: true })
  const tmp = `${cacheFile}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(slimSpec))
  renameSync(tmp, cacheFile)
  return slimSpec
}

// ---------- schema handling ----------

const NOT_SCHEMA_KEYS = new Set(['example', 'examples', 'enum', 'default', 'const', 'description'])

/**
 * OpenAPI 3.0 `nullable: true` as JSON Schema: `anyOf: [{type: null}, schema]`. Ajv only knows
 * `nullable` beside `type`; GitHub also puts it beside allOf/anyOf, so transform everywhere.
 */
export function openApiToJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(openApiToJsonSchema)
  if (node === null || typeof node !== 'object') return node
  const out: { [key: string]: Json } = {}
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable' && typeof v === 'boolean') continue
    out[k] = NOT_SCHEMA_KEYS.has(k) ? v : k === 'properties' || k === 'patternProperties' ? mapValues(v) : openApiToJsonSchema(v)
  }
  if (node['nullable'] === true) return { anyOf: [{ type: 'null' }, out] }
  return out
}

function mapValues(v: Json): Json {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
  return Object.fromEntries(Object.entries(v).map(([k, s]) => [k, openApiToJsonSchema(s)]))
}

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv
let ajv: Ajv | undefined
const compiled = new Map<string, ValidateFunction>()

function validator(cacheKey: string, schema: Schema): ValidateFunction {
  let fn = compiled.get(cacheKey)
  if (!fn) {
    ajv ??= addFormats(new Ajv({ strict: false, allErrors: true, logger: false, validateFormats: true }))
    fn = ajv.compile(openApiToJsonSchema(schema) as object)
    compiled.set(cacheKey, fn)
  }
  return fn
}

function errorsOf(fn: ValidateFunction): string {
  return (fn.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`)
    .join('; ')
}

/** A minimal instance of a schema: every required property, nulls where allowed, formats honoured. */
export function sampleOf(schema: Json): Json {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return null
  if (schema['nullable'] === true) return null
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return schema['enum'][0]!
  if (Array.isArray(schema['allOf'])) {
    return schema['allOf'].reduce<Json>((acc, s) => deepMerge(acc, sampleOf(s)), {})
  }
  for (const key of ['anyOf', 'oneOf']) {
    const branches = schema[key]
    if (Array.isArray(branches) && branches.length > 0) {
      const nullable = branches.find((b) => b && typeof b === 'object' && !Array.isArray(b) && b['type'] === 'null')
      return nullable ? null : sampleOf(branches[0]!)
    }
  }
  const type = Array.isArray(schema['type']) ? schema['type'][0] : schema['type']
  switch (type) {
    case 'object': {
      const props = (schema['properties'] ?? {}) as Record<string, Json>
      const required = (schema['required'] ?? []) as string[]
      return Object.fromEntries(required.map((name) => [name, sampleOf(props[name] ?? {})]))
    }
    case 'array':
      return []
    case 'integer':
    case 'number':
      return typeof schema['minimum'] === 'number' ? schema['minimum'] : 1
    case 'boolean':
      return false
    case 'null':
      return null
    case 'string':
      switch (schema['format']) {
        case 'date-time':
          return '2026-11-25T10:00:00Z'
        case 'uri':
          return 'https://github.example/placeholder'
        case 'email':
          return 'someone@example.com'
        case 'uri-template':
          return 'https://github.example/placeholder{/id}'
        default:
          return 'x'
      }
    default:
      return schema['properties'] ? sampleOf({ ...schema, type: 'object' }) : null
  }
}

type SchemaObject = { [key: string]: Json }

function isObject(v: Json | undefined): v is SchemaObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v)
}

/** The object-shaped side of a schema: allOf merged, the first object branch of anyOf/oneOf. */
function objectBranch(schema: Json): SchemaObject {
  if (!isObject(schema)) return {}
  if (Array.isArray(schema['allOf'])) {
    const parts = schema['allOf'].map(objectBranch)
    return {
      type: 'object',
      properties: Object.assign({}, ...parts.map((p) => (isObject(p['properties']) ? p['properties'] : {}))),
      required: parts.flatMap((p) => (Array.isArray(p['required']) ? p['required'] : []))
    }
  }
  for (const key of ['anyOf', 'oneOf']) {
    const branches = schema[key]
    if (Array.isArray(branches)) {
      const branch = branches.find((b) => isObject(b) && (b['type'] === 'object' || b['properties'] || b['allOf']))
      if (branch) return objectBranch(branch)
    }
  }
  return schema
}

/** `data` completed to a valid instance: missing required properties sampled, at every depth. */
export function fill(schema: Json, data: Json | undefined): Json {
  if (data === undefined) return sampleOf(schema)
  if (Array.isArray(data)) {
    const items = isObject(schema) ? schema['items'] : undefined
    return items ? data.map((d) => fill(items, d)) : data
  }
  if (!isObject(data)) return data
  const s = objectBranch(schema)
  const props = isObject(s['properties']) ? s['properties'] : {}
  const out: SchemaObject = {}
  for (const name of Array.isArray(s['required']) ? (s['required'] as string[]) : []) {
    if (!(name in data)) out[name] = sampleOf(props[name] ?? {})
  }
  for (const [k, v] of Object.entries(data)) out[k] = props[k] !== undefined ? fill(props[k]!, v) : v
  return out
}

function deepMerge(base: Json, over: Json): Json {
  if (over === undefined) return base
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: { [key: string]: Json } = { ...base }
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k]!, v) : v
    return out
  }
  return over
}

/**
 * Check a response body against what the description documents for an operation and status;
 * returns the problems (empty when valid). The server runs the same check on every reply.
 */
export function responseProblems(operationId: RoutedOperation, status: number, data: unknown): string[] {
  const op = allRoutes().find((r) => r.operation.operationId === operationId)?.operation
  const schema = op?.responses?.[String(status)]?.content?.['application/json']?.schema
  if (!op || !schema) return [`status ${status} is not documented for ${operationId}`]
  const fn = validator(`${operationId}#response.${status}`, schema)
  return fn(data) ? [] : [errorsOf(fn)]
}

// ---------- the server ----------

export interface FakePullRequest {
  number: number
  state?: 'open' | 'closed'
  headSha: string
  headRef?: string
  mergedAt?: string | null
  /** Commits that list this PR (besides headSha), e.g. the merge commit on the default branch. */
  commits?: string[]
}

export interface FakeComment {
  id?: number
  issueNumber: number
  body: string
  /** Login of the author, e.g. github-actions[bot] or octocat. */
  user: string
}

export interface FakeGithubOptions {
  owner: string
  repo: string
  prs?: FakePullRequest[]
  comments?: FakeComment[]
  /** Login of the token's identity: author of the comments it creates (default github-actions[bot]). */
  login?: string
}

export interface RecordedRequest {
  method: string
  path: string
  query: Record<string, string>
  operationId?: string
  body?: unknown
  status: number
  /** The stand-in answered an injected fault, or refused an invalid request. */
  injected?: boolean
}

export interface FakeGithubState {
  comments: Array<Required<FakeComment> & { createdAt: string; updatedAt: string }>
  deployments: Array<{
    id: number
    ref: string
    environment: string
    payload: unknown
    productionEnvironment: boolean
    transientEnvironment: boolean
    description: string | null
  }>
  statuses: Array<{ id: number; deploymentId: number; state: string; description: string; logUrl: string; environment: string }>
}

export interface FakeGithub {
  /** The API root to put in GITHUB_API_URL. */
  url: string
  requests: RecordedRequest[]
  violations: string[]
  state: FakeGithubState
  /** Answer `status` to the next `times` (default: every) calls of an operation. */
  failWith(operationId: RoutedOperation, status: number, times?: number): void
  /** Drop the connection of the next `times` calls (a network error). */
  dropConnection(operationId: RoutedOperation, times?: number): void
  stop(): Promise<void>
}

interface Route {
  template: string
  method: string
  operation: Operation
  regex: RegExp
  names: string[]
}

let routes: Route[] | undefined

function allRoutes(): Route[] {
  if (routes) return routes
  const spec = loadGithubSpec()
  routes = []
  for (const [template, methods] of Object.entries(spec.paths)) {
    const names: string[] = []
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name: string) => {
      names.push(name)
      return '([^/]+)'
    })
    const regex = new RegExp(`^${pattern}$`)
    for (const [method, operation] of Object.entries(methods))
      routes.push({ template, method: method.toUpperCase(), operation, regex, names })
  }
  // Literal segments beat parameters (e.g. /issues/comments/{id} before /issues/{number}/comments).
  routes.sort((a, b) => b.template.replace(/\{[^}]+\}/g, '').length - a.template.replace(/\{[^}]+\}/g, '').length)
  return routes
}

function coerce(value: string, schema: Schema | undefined): Json {
  const type = schema?.['type']
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(value)) return Number(value)
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true'
  return value
}

const BASIC_ERROR_DOCS = 'https://docs.github.com/rest'

/** Start the stand-in on 127.0.0.1 with a free port. */
export async function startFakeGithub(opts: FakeGithubOptions): Promise<FakeGithub> {
  allRoutes()
  const requests: RecordedRequest[] = []
  const violations: string[] = []
  const failures = new Map<string, { status: number; times: number }>()
  const drops = new Map<string, number>()
  const prs = (opts.prs ?? []).map((p) => ({ state: 'open' as const, mergedAt: null, headRef: `branch-${p.number}`, commits: [], ...p }))
  let nextId = 1000
  const login = opts.login ?? 'github-actions[bot]'
  const state: FakeGithubState = {
    comments: (opts.comments ?? []).map((c) => ({
      id: c.id ?? ++nextId,
      issueNumber: c.issueNumber,
      body: c.body,
      user: c.user,
      createdAt: '2026-11-25T09:00:00Z',
      updatedAt: '2026-11-25T09:00:00Z'
    })),
    deployments: [],
    statuses: []
  }
  let base = ''

  const user = (login: string): Json => ({
    login,
    id: login.length * 1000 + 7,
    node_id: `U_${login}`,
    avatar_url: `https://avatars.example.com/u/${encodeURIComponent(login)}`,
    gravatar_id: '',
    url: `${base}/users/${encodeURIComponent(login)}`,
    html_url: `https://github.example/${encodeURIComponent(login)}`,
    type: login.endsWith('[bot]') ? 'Bot' : 'User',
    site_admin: false
  })

  const schemaFor = (op: Operation, status: number): Schema | undefined =>
    op.responses?.[String(status)]?.content?.['application/json']?.schema

  const shape = (op: Operation, status: number, data: Json, itemOf = false): Json => {
    const schema = schemaFor(op, status)
    if (!schema) return data
    const target = itemOf ? ((schema['items'] ?? {}) as Json) : schema
    return fill(target, data)
  }

  const commentJson = (c: FakeGithubState['comments'][number]): Json => ({
    id: c.id,
    node_id: `IC_${c.id}`,
    url: `${base}/repos/${opts.owner}/${opts.repo}/issues/comments/${c.id}`,
    html_url: `https://github.example/${opts.owner}/${opts.repo}/pull/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: `${base}/repos/${opts.owner}/${opts.repo}/issues/${c.issueNumber}`,
    body: c.body,
    user: user(c.user),
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    author_association: c.user.endsWith('[bot]') ? 'NONE' : 'MEMBER'
  })

  const prJson = (p: (typeof prs)[number]): Json => ({
    number: p.number,
    id: p.number * 10,
    node_id: `PR_${p.number}`,
    state: p.state,
    title: `PR ${p.number}`,
    locked: false,
    merged_at: p.mergedAt,
    url: `${base}/repos/${opts.owner}/${opts.repo}/pulls/${p.number}`,
    html_url: `https://github.example/${opts.owner}/${opts.repo}/pull/${p.number}`,
    head: { sha: p.headSha, ref: p.headRef, label: `${opts.owner}:${p.headRef}` },
    base: { sha: 'b'.repeat(40), ref: 'main', label: `${opts.owner}:main` }
  })

  type Reply = { status: number; data?: Json; headers?: Record<string, string> }

  const notFound = (): Reply => ({ status: 404, data: { message: 'Not Found', documentation_url: BASIC_ERROR_DOCS, status: '404' } })

  const paginate = (items: Json[], query: Record<string, string>, path: string): Reply => {
    const perPage = Math.min(100, Number(query['per_page'] ?? 30) || 30)
    const page = Math.max(1, Number(query['page'] ?? 1) || 1)
    const slice = items.slice((page - 1) * perPage, page * perPage)
    const headers: Record<string, string> = {}
    if (page * perPage < items.length) {
      const next = new URL(`${base}${path}`)
      for (const [k, v] of Object.entries(query)) next.searchParams.set(k, v)
      next.searchParams.set('page', String(page + 1))
      next.searchParams.set('per_page', String(perPage))
      headers['link'] = `<${next.toString()}>; rel="next"`
    }
    return { status: 200, data: slice, headers }
  }

  const handle = (route: Route, params: Record<string, Json>, query: Record<string, string>, body: Json, path: string): Reply => {
    if (params['owner'] !== opts.owner || params['repo'] !== opts.repo) return notFound()
    const op = route.operation
    switch (op.operationId as RoutedOperation) {
      case 'repos/list-pull-requests-associated-with-commit': {
        const sha = String(params['commit_sha'])
        const found = prs.filter((p) => p.headSha === sha || p.commits.includes(sha)).map((p) => shape(op, 200, prJson(p), true))
        return paginate(found, query, path)
      }
      case 'issues/list-comments': {
        const number = params['issue_number']
        if (!prs.some((p) => p.number === number)) return notFound()
        const items = state.comments.filter((c) => c.issueNumber === number).map((c) => shape(op, 200, commentJson(c), true))
        return paginate(items, query, path)
      }
      case 'issues/get-comment': {
        const c = state.comments.find((x) => x.id === params['comment_id'])
        return c ? { status: 200, data: shape(op, 200, commentJson(c)) } : notFound()
      }
      case 'issues/create-comment': {
        const number = params['issue_number'] as number
        if (!prs.some((p) => p.number === number)) return notFound()
        const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
        const c = {
          id: ++nextId,
          issueNumber: number,
          body: String((body as { body?: unknown })?.body ?? ''),
          user: login,
          createdAt: now,
          updatedAt: now
        }
        state.comments.push(c)
        return { status: 201, data: shape(op, 201, commentJson(c)) }
      }
      case 'issues/update-comment': {
        const c = state.comments.find((x) => x.id === params['comment_id'])
        if (!c) return notFound()
        // GitHub would let a maintainer's token do it; the action must never edit someone else's comment.
        if (c.user !== login) {
          violations.push(`PATCH ${path}: edits comment ${c.id} written by ${c.user}, not by the token's identity ${login}`)
          return notFound()
        }
        c.body = String((body as { body?: unknown })?.body ?? '')
        c.updatedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
        return { status: 200, data: shape(op, 200, commentJson(c)) }
      }
      case 'repos/create-deployment': {
        const b = (body ?? {}) as Record<string, Json>
        const id = ++nextId
        const environment = String(b['environment'] ?? 'production')
        const d = {
          id,
          ref: String(b['ref']),
          environment,
          payload: b['payload'] ?? {},
          productionEnvironment: b['production_environment'] === true,
          transientEnvironment: b['transient_environment'] === true,
          description: typeof b['description'] === 'string' ? b['description'] : null
        }
        state.deployments.push(d)
        return {
          status: 201,
          data: shape(op, 201, {
            id,
            node_id: `DE_${id}`,
            url: `${base}/repos/${opts.owner}/${opts.repo}/deployments/${id}`,
            statuses_url: `${base}/repos/${opts.owner}/${opts.repo}/deployments/${id}/statuses`,
            repository_url: `${base}/repos/${opts.owner}/${opts.repo}`,
            sha: /^[0-9a-f]{40}$/.test(d.ref) ? d.ref : 'a'.repeat(40),
            ref: d.ref,
            task: 'deploy',
            payload: d.payload,
            environment,
            description: d.description,
            creator: user('github-actions[bot]'),
            created_at: '2026-11-25T10:00:00Z',
            updated_at: '2026-11-25T10:00:00Z',
            transient_environment: d.transientEnvironment,
            production_environment: d.productionEnvironment
          })
        }
      }
      case 'repos/create-deployment-status': {
        const deploymentId = params['deployment_id'] as number
        const d = state.deployments.find((x) => x.id === deploymentId)
        if (!d) return notFound()
        const b = (body ?? {}) as Record<string, Json>
        const id = ++nextId
        const s = {
          id,
          deploymentId,
          state: String(b['state']),
          description: String(b['description'] ?? ''),
          logUrl: String(b['log_url'] ?? ''),
          environment: String(b['environment'] ?? d.environment)
        }
        state.statuses.push(s)
        return { status: 201, data: shape(op, 201, statusJson(s)) }
      }
      case 'repos/list-deployment-statuses': {
        const deploymentId = params['deployment_id'] as number
        if (!state.deployments.some((x) => x.id === deploymentId)) return notFound()
        const items = state.statuses.filter((s) => s.deploymentId === deploymentId).map((s) => shape(op, 200, statusJson(s), true))
        return paginate(items.reverse(), query, path)
      }
    }
  }

  const statusJson = (s: FakeGithubState['statuses'][number]): Json => ({
    id: s.id,
    node_id: `DES_${s.id}`,
    state: s.state,
    description: s.description,
    environment: s.environment,
    ...(s.logUrl ? { log_url: s.logUrl, target_url: s.logUrl } : {}),
    url: `${base}/repos/${opts.owner}/${opts.repo}/deployments/${s.deploymentId}/statuses/${s.id}`,
    deployment_url: `${base}/repos/${opts.owner}/${opts.repo}/deployments/${s.deploymentId}`,
    repository_url: `${base}/repos/${opts.owner}/${opts.repo}`,
    creator: user('github-actions[bot]'),
    created_at: '2026-11-25T10:00:00Z',
    updated_at: '2026-11-25T10:00:00Z'
  })

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = (req.method ?? 'GET').toUpperCase()
    const path = url.pathname
    const query = Object.fromEntries(url.searchParams)
    const record: RecordedRequest = { method, path, query, status: 0 }
    requests.push(record)
    let requestViolations = 0
    const flag = (msg: string): void => {
      requestViolations += 1
      violations.push(`${method} ${path}: ${msg}`)
    }
    const send = (reply: Reply): void => {
      record.status = reply.status
      const text = reply.data === undefined ? '' : JSON.stringify(reply.data)
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...(reply.headers ?? {}) })
      res.end(text)
    }

    let body: Json = null
    if (raw !== '') {
      try {
        body = JSON.parse(raw) as Json
        record.body = body
      } catch {
        flag('request body is not JSON')
      }
    }
    const matches = allRoutes().filter((r) => r.regex.test(path))
    const route = matches.find((r) => r.method === method)
    if (!route) {
      flag(
        matches.length
          ? `method not allowed by the OpenAPI description (${matches.map((m) => m.method).join(', ')})`
          : 'unknown endpoint (no OpenAPI path matches)'
      )
      return send(notFound())
    }
    const op = route.operation
    record.operationId = op.operationId
    if (!op.responses) {
      flag(`operation ${op.operationId} (${route.template}) is not routed by the stand-in`)
      return send(notFound())
    }
    if (!/^(token|Bearer) \S+$/.test(String(req.headers['authorization'] ?? ''))) {
      violations.push(`${method} ${path}: no Authorization header`)
    }

    // Path and query parameters.
    const values = route.regex.exec(path)!.slice(1)
    const params: Record<string, Json> = {}
    const declared = op.parameters ?? []
    route.names.forEach((name, i) => {
      const p = declared.find((d) => d.in === 'path' && d.name === name)
      const value = coerce(decodeURIComponent(values[i]!), p?.schema)
      params[name] = value
      if (p?.schema) {
        const fn = validator(`${op.operationId}#path.${name}`, p.schema)
        if (!fn(value)) flag(`path parameter ${name}=${JSON.stringify(value)}: ${errorsOf(fn)}`)
      }
    })
    for (const [name, rawValue] of Object.entries(query)) {
      const p = declared.find((d) => d.in === 'query' && d.name === name)
      if (!p) {
        flag(`unknown query parameter ${name}`)
        continue
      }
      if (p.schema) {
        const fn = validator(`${op.operationId}#query.${name}`, p.schema)
        if (!fn(coerce(rawValue, p.schema))) flag(`query parameter ${name}=${JSON.stringify(rawValue)}: ${errorsOf(fn)}`)
      }
    }
    for (const p of declared) if (p.required && p.in === 'query' && !(p.name in query)) flag(`missing required query parameter ${p.name}`)

    // Request body.
    const bodySchema = op.requestBody?.content?.['application/json']?.schema
    if (bodySchema) {
      if (raw === '' && op.requestBody?.required) flag('missing request body')
      else if (raw !== '') {
        const fn = validator(`${op.operationId}#request`, bodySchema)
        if (!fn(body)) flag(`request body: ${errorsOf(fn)}`)
      }
    } else if (raw !== '' && method !== 'GET') flag('request body on an operation that takes none')

    const drop = drops.get(op.operationId) ?? 0
    if (drop > 0) {
      drops.set(op.operationId, drop - 1)
      record.status = -1
      record.injected = true
      req.socket.destroy()
      return
    }

    let reply: Reply
    const failure = failures.get(op.operationId)
    if (failure && failure.times > 0) {
      failure.times -= 1
      record.injected = true
      reply = {
        status: failure.status,
        data: { message: `injected HTTP ${failure.status}`, documentation_url: BASIC_ERROR_DOCS, status: String(failure.status) }
      }
    } else if (requestViolations > 0) {
      // GitHub refuses an invalid request with 422 (or 400); it does not carry it out.
      const status = op.responses['422'] ? 422 : 400
      const schema = schemaFor(op, status)
      const data: Json = { message: 'Validation Failed', documentation_url: BASIC_ERROR_DOCS, status: String(status) }
      reply = { status, data: schema ? fill(schema, data) : data }
      record.injected = true
    } else {
      reply = handle(route, params, query, body, path)
    }

    // Every response we send must be one the operation documents.
    const documented = op.responses[String(reply.status)]
    if (!documented) {
      // Injected faults stand for what the description leaves out (403 "Resource not accessible by integration", outages).
      if (!record.injected) flag(`response status ${reply.status} is not documented for ${op.operationId}`)
    } else {
      const schema = documented.content?.['application/json']?.schema
      if (schema) {
        const fn = validator(`${op.operationId}#response.${reply.status}`, schema)
        if (!fn(reply.data ?? null)) flag(`response ${reply.status} does not match the schema: ${errorsOf(fn)}`)
      }
    }
    send(reply)
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      violations.push(`stand-in crashed: ${error instanceof Error ? error.stack : String(error)}`)
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url: base,
    requests,
    violations,
    state,
    failWith(operationId, status, times = Number.POSITIVE_INFINITY) {
      failures.set(operationId, { status, times })
    },
    dropConnection(operationId, times = 1) {
      drops.set(operationId, times)
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      })
  }
}
