import * as jsYaml from 'js-yaml'
import { CORE_SCHEMA, YAMLException, loadAll, type Type } from 'js-yaml'
import type { KubeObject } from '../kube/kube-object.js'
import { selectorMatches, type LabelSelector } from '../kube/label-selector.js'
import { ConfigError, quote } from '../errors.js'
import { INPUT } from './inputs.js'
import { invalidInput } from './input-error.js'
import { isDns1123Label, isDns1123Subdomain, isLabelKey, isLabelValue } from './kube-names.js'

/** Most nodes one document may have once YAML aliases are expanded (an alias bomb has billions). */
export const MAX_MANIFEST_NODES = 100_000

// YAML 1.2 core types (no timestamps or binary, which JSON has no room for) plus `<<` merge keys,
// which kubectl accepts.
// (@types/js-yaml does not declare the `types` export js-yaml 4 has.)
const { merge } = (jsYaml as unknown as { types: { merge: Type } }).types
const SCHEMA = CORE_SCHEMA.extend({ implicit: [merge] })

/** One non-empty YAML document of a manifest file. */
export interface ManifestDocument {
  /** The file as matched, relative to cwd when inside it. */
  file: string
  /** 1-based line where the document's content starts. */
  line: number
  /** 1-based index of the document within its file (empty documents count). */
  index: number
  /** The parsed document: plain JSON data (aliases expanded into copies). */
  object: unknown
}

/**
 * Parse every YAML document of one manifest file's text; `file` is how errors name it. Rejects with
 * a ConfigError naming file:line on malformed YAML, duplicate keys, a document over 100 000 nodes
 * after alias expansion (alias bomb), values JSON cannot carry. Empty documents are skipped. Reading
 * the file (and its size limit) is the caller's: commands/manifest-files.ts.
 */
export function parseManifest(file: string, text: string): ManifestDocument[] {
  const starts: number[] = []
  let raw: unknown[]
  try {
    raw = loadAll(text, null, {
      filename: file,
      schema: SCHEMA,
      // The root node of each document opens at depth 1: remember its line for later messages.
      listener(event, state) {
        if (event === 'open' && (state as unknown as { depth: number }).depth === 1) starts.push(state.line + 1)
      }
    })
  } catch (e) {
    if (!(e instanceof YAMLException)) throw e
    const where = e.mark ? `${file}:${e.mark.line + 1}:${e.mark.column + 1}` : file
    let reason = e.reason === 'duplicated mapping key' ? 'duplicate key (each key may appear once in a mapping)' : e.reason
    if (/quoted scalar/.test(reason)) reason += ' (a quote opened earlier is never closed)'
    // No snippet of the file: generated manifests can hold substituted secrets.
    throw new ConfigError(`Manifest ${where} is not valid YAML: ${reason}.`)
  }
  const documents: ManifestDocument[] = []
  raw.forEach((doc, i) => {
    if (doc === null || doc === undefined) return
    const line = starts[i] ?? 1
    const where = `${file}:${line}`
    documents.push({ file, line, index: i + 1, object: toJson(doc, where) })
  })
  return documents
}

/**
 * A copy of `value` as plain JSON data. js-yaml keeps an alias as a second reference to the anchored
 * node, so a small file can describe billions of nodes: count every node as if expanded, and stop
 * at the budget before anything (JSON.stringify, a deep copy) expands them for real.
 */
function toJson(value: unknown, where: string): unknown {
  let budget = MAX_MANIFEST_NODES
  const copy = (v: unknown): unknown => {
    if (--budget < 0) {
      throw new ConfigError(
        `Manifest ${where} has more than ${MAX_MANIFEST_NODES} nodes once YAML aliases (*name) are expanded: refusing it as a possible alias bomb.`
      )
    }
    if (Array.isArray(v)) return v.map(copy)
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) out[k] = copy(x)
      return out
    }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new ConfigError(`Manifest ${where} holds ${String(v)}, which Kubernetes (JSON) cannot carry: quote it if it is meant as text.`)
    }
    return v
  }
  return copy(value)
}

// ---------------------------------------------------------------------------------------------

/** The one Deployment the action applies, checked. */
export interface CanaryDeployment {
  deployment: KubeObject
  /** The value of the version label on its pod template. */
  version: string
  file: string
  /** metadata.namespace of the manifest, when it sets one. */
  namespace?: string
}

export interface CanaryDeploymentOptions {
  versionLabel: string
  /** The 'version' input, when given: the template's version label must equal it. */
  version?: string
  /** The 'namespace' input, when given: the manifest's namespace, if set, must equal it. */
  namespace?: string
}

/**
 * Check the loaded documents are exactly one apps/v1 Deployment fit to be the canary: nothing else
 * (the action applies only that Deployment), a valid name, namespace agreeing with the input, a
 * selector matching its template and keyed on the version label, the version label on the pods
 * (equal to `version` when given), replicas >= 1. Throws a ConfigError naming file:line.
 */
export function validateCanaryDeployment(docs: readonly ManifestDocument[], opts: CanaryDeploymentOptions): CanaryDeployment {
  const describe = (d: ManifestDocument): string => {
    const o = d.object as { kind?: unknown; metadata?: { name?: unknown } }
    const kind = typeof o?.kind === 'string' ? o.kind : 'object without kind'
    const name = typeof o?.metadata?.name === 'string' ? ` ${quote(o.metadata.name)}` : ''
    return `${kind}${name} (${d.file}:${d.line})`
  }
  for (const d of docs) {
    const o = d.object as { apiVersion?: unknown; kind?: unknown }
    if (o === null || typeof o !== 'object' || Array.isArray(o) || typeof o.kind !== 'string' || typeof o.apiVersion !== 'string') {
      throw new ConfigError(
        `Manifest ${d.file}:${d.line} (document ${d.index}) is not a Kubernetes object: expected a mapping with apiVersion and kind (got ${quote(d.object)}).`
      )
    }
  }
  const isDeployment = (d: ManifestDocument): boolean => (d.object as KubeObject).kind === 'Deployment'
  const others = docs.filter((d) => !isDeployment(d))
  if (others.length > 0) {
    throw invalidInput(
      INPUT.manifests,
      `the action applies only the canary Deployment, but the manifests also hold ${others.map(describe).join(', ')}. ` +
        `Remove ${others.length === 1 ? 'it' : 'them'} from '${INPUT.manifests}' and apply ${others.length === 1 ? 'it' : 'them'} in a separate step (the action edits the VirtualService and DestinationRule itself)`
    )
  }
  const deployments = docs.filter(isDeployment)
  if (deployments.length !== 1) {
    // With no other kinds present, none means the files held no documents at all.
    const found =
      deployments.length === 0 ? 'none: the files hold no YAML documents' : `${deployments.length}: ${deployments.map(describe).join(', ')}`
    throw invalidInput(INPUT.manifests, `expected exactly one Deployment, the canary's, found ${found}`)
  }
  return checkDeployment(deployments[0]!, opts)
}

function checkDeployment(doc: ManifestDocument, opts: CanaryDeploymentOptions): CanaryDeployment {
  const d = doc.object as KubeObject
  const at = `${doc.file}:${doc.line}`
  const name: unknown = d.metadata?.name
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(`Deployment in ${at} has no metadata.name: expected a name like "web-v2" (generateName is not supported).`)
  }
  const fail = (reason: string): never => {
    throw new ConfigError(`Deployment ${quote(name)} (${at}) is invalid: ${reason}.`)
  }
  if (d.apiVersion !== 'apps/v1') fail(`apiVersion is ${quote(d.apiVersion)}, expected "apps/v1"`)
  if (!isDns1123Subdomain(name))
    fail(
      'metadata.name must be a DNS-1123 name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters'
    )
  const namespace: unknown = d.metadata.namespace
  if (namespace !== undefined) {
    if (typeof namespace !== 'string' || !isDns1123Label(namespace)) {
      fail(`metadata.namespace ${quote(namespace)} is not a valid namespace name (a DNS-1123 label)`)
    }
    if (opts.namespace !== undefined && opts.namespace !== namespace) {
      fail(
        `metadata.namespace is ${quote(namespace)} but input '${INPUT.namespace}' is ${quote(opts.namespace)}: make them agree or remove one`
      )
    }
  }
  const spec: Record<string, unknown> = isMapping(d.spec) ? d.spec : {}
  if (spec.replicas !== undefined && spec.replicas !== null && !(Number.isInteger(spec.replicas) && (spec.replicas as number) >= 1)) {
    fail(
      `spec.replicas must be a whole number of at least 1, or unset: a canary without pods never becomes ready (got ${quote(spec.replicas)})`
    )
  }
  const selector = spec.selector
  if (!isMapping(selector)) fail('spec.selector is missing: expected matchLabels including the version label')
  const sel = selector as Record<string, unknown>
  const template = isMapping(spec.template) ? spec.template : {}
  const templateLabels = (isMapping(template.metadata) ? template.metadata.labels : undefined) ?? {}
  checkStringMap(templateLabels, 'spec.template.metadata.labels', fail)
  if (sel.matchLabels !== undefined) checkStringMap(sel.matchLabels, 'spec.selector.matchLabels', fail)
  const labels = templateLabels as Record<string, string>
  const matchLabels = (sel.matchLabels ?? {}) as Record<string, string>

  const key = opts.versionLabel
  const version = labels[key]
  if (version === undefined) {
    fail(
      `spec.template.metadata.labels must carry the version label ${quote(key)} (input '${INPUT.versionLabel}'): it names the canary's pods for its DestinationRule subset (got labels ${quote(formatLabels(labels))})`
    )
  }
  if (version === '' || !isLabelValue(version!)) {
    fail(
      `the version label ${quote(key)} has value ${quote(version)}, which is not a valid label value (letters, digits, "-", "_", ".", at most 63 characters)`
    )
  }
  if (opts.version !== undefined && version !== opts.version) {
    fail(`the version label ${quote(key)} is ${quote(version)} but input '${INPUT.version}' is ${quote(opts.version)}: they must agree`)
  }
  if (matchLabels[key] !== version) {
    fail(
      `spec.selector.matchLabels must include the version label (${key}: ${version}) so the canary's selector cannot also select the stable's pods: ` +
        `two Deployments selecting the same pods fight over them, and a selector cannot be changed after creation (got matchLabels ${quote(formatLabels(matchLabels))})`
    )
  }
  if (!selectorMatches(sel as LabelSelector, labels)) {
    fail(
      `spec.selector does not match spec.template.metadata.labels: every selector term must hold for the pod labels (got selector ${quote(formatLabels(matchLabels))}, labels ${quote(formatLabels(labels))})`
    )
  }
  return { deployment: d, version: version!, file: doc.file, ...(namespace !== undefined ? { namespace: namespace as string } : {}) }
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function checkStringMap(v: unknown, field: string, fail: (reason: string) => never): void {
  if (!isMapping(v)) fail(`${field} must be a mapping of label keys to values (got ${quote(v)})`)
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!isLabelKey(k)) fail(`${field} has the invalid label key ${quote(k)}`)
    if (typeof x !== 'string') fail(`${field}.${k} is ${quote(x)}, not text: quote it in YAML (${k}: "${String(x)}")`)
  }
}

/** Labels as `a=b,c=d`, the form kubectl shows. */
function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
}
