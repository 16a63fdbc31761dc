/**
 * "Zero writes" as the integration tests check it: every object of every namespaced kind the
 * apiserver serves, listed through discovery (nothing hard-coded), with its uid and resourceVersion.
 * Two fingerprints of a namespace are equal only if nothing was created, changed or deleted in it.
 *
 * A fingerprint cannot see an object created and deleted in between (the lock's Lease is exactly
 * that: acquire creates it, release deletes it), so `namespaceWrites` also replays the Lease watch
 * from the first fingerprint's list resourceVersion.
 *
 *   const before = await namespaceFingerprint(ns)
 *   await runAction(...)
 *   expect(await namespaceWrites(before)).toEqual(NO_WRITES)
 */
import https from 'node:https'
import type { IncomingMessage } from 'node:http'
import { kubeConfig, waitFor } from './test-cluster.js'

/**
 * Kinds written by the cluster's own machinery, not by the action: left out of the fingerprint.
 * EndpointSlices are the endpointslice controller's view of Services and pods, updated whenever it
 * catches up with a pod's readiness.
 */
const IGNORED = new Set(['events', 'events.k8s.io/events', 'discovery.k8s.io/endpointslices'])
const SENTINEL_PREFIX = 'fingerprint-sentinel-'

export interface NamespaceFingerprint {
  namespace: string
  /** `<group/version> <Kind> <name>` -> `<uid> <resourceVersion>`. */
  objects: Record<string, string>
  /** resourceVersion of the Lease list: the watch in namespaceWrites replays from here. */
  leaseListVersion: string
}

export interface NamespaceWrites {
  added: string[]
  changed: string[]
  removed: string[]
  /** Lease watch events since the first fingerprint (`ADDED name`, `DELETED name`, ...). */
  leaseEvents: string[]
}

/** What namespaceWrites returns when nothing was written. */
export const NO_WRITES: NamespaceWrites = { added: [], changed: [], removed: [], leaseEvents: [] }

interface Resource {
  /** `v1` or `group/version`. */
  groupVersion: string
  plural: string
  kind: string
}

async function request(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
  const kc = kubeConfig()
  const server = kc.getCurrentCluster()?.server
  if (!server) throw new Error('namespace-fingerprint: the admin kubeconfig has no current cluster')
  const url = new URL(path, server)
  const opts: https.RequestOptions = { method, headers: body ? { 'content-type': 'application/json' } : {} }
  await kc.applyToHTTPSOptions(opts)
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, resolve)
    req.on('error', reject)
    req.end(body ? JSON.stringify(body) : undefined)
  })
}

async function apiJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  // A 429 (the API server busy, or a CRD's storage still starting) asks to come back: do so, a few times.
  for (let attempt = 1; ; attempt++) {
    const res = await request(method, path, body)
    let text = ''
    for await (const chunk of res) text += chunk
    if (res.statusCode === 429 && attempt < 10) {
      await new Promise((r) => setTimeout(r, 1000 * Math.min(Number(res.headers['retry-after']) || 1, 5)))
      continue
    }
    if ((res.statusCode ?? 0) >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`)
    return JSON.parse(text) as T
  }
}

function basePath(groupVersion: string): string {
  return groupVersion.includes('/') ? `/apis/${groupVersion}` : `/api/${groupVersion}`
}

let discovered: Promise<Resource[]> | undefined
/** Every namespaced, listable resource in its group's preferred version (discovery, once per process). */
function namespacedResources(): Promise<Resource[]> {
  discovered ??= (async () => {
    const groupVersions = ['v1']
    const apis = await apiJson<{ groups: Array<{ preferredVersion: { groupVersion: string } }> }>('GET', '/apis')
    for (const g of apis.groups) groupVersions.push(g.preferredVersion.groupVersion)
    const out: Resource[] = []
    await Promise.all(
      groupVersions.map(async (gv) => {
        const list = await apiJson<{ resources: Array<{ name: string; kind: string; namespaced: boolean; verbs: string[] }> }>(
          'GET',
          basePath(gv)
        )
        for (const r of list.resources) {
          if (!r.namespaced || r.name.includes('/') || !r.verbs.includes('list')) continue
          const group = gv.includes('/') ? gv.split('/')[0] : ''
          if (IGNORED.has(group ? `${group}/${r.name}` : r.name)) continue
          out.push({ groupVersion: gv, plural: r.name, kind: r.kind })
        }
      })
    )
    return out.sort((a, b) => `${a.groupVersion}/${a.plural}`.localeCompare(`${b.groupVersion}/${b.plural}`))
  })()
  return discovered
}

/** Every object of the namespace (all namespaced kinds but Events) with its uid and resourceVersion. */
export async function namespaceFingerprint(namespace: string): Promise<NamespaceFingerprint> {
  const resources = await namespacedResources()
  const objects: Record<string, string> = {}
  let leaseListVersion = ''
  await Promise.all(
    resources.map(async (r) => {
      const list = await apiJson<{
        metadata: { resourceVersion: string }
        items: Array<{ metadata: { name: string; uid: string; resourceVersion: string } }>
      }>('GET', `${basePath(r.groupVersion)}/namespaces/${namespace}/${r.plural}`)
      if (r.groupVersion === 'coordination.k8s.io/v1' && r.plural === 'leases') leaseListVersion = list.metadata.resourceVersion
      for (const item of list.items)
        objects[`${r.groupVersion} ${r.kind} ${item.metadata.name}`] = `${item.metadata.uid} ${item.metadata.resourceVersion}`
    })
  )
  if (!leaseListVersion) throw new Error('namespace-fingerprint: the apiserver does not serve coordination.k8s.io/v1 leases')
  return { namespace, objects: Object.fromEntries(Object.entries(objects).sort()), leaseListVersion }
}

/**
 * Lease events in the namespace since `fromVersion`. The watch replays history from that version;
 * a sentinel Lease created afterwards marks the end of the replay (watch events come in order).
 */
async function leaseEventsSince(namespace: string, fromVersion: string): Promise<string[]> {
  const sentinel = `${SENTINEL_PREFIX}${Math.random().toString(36).slice(2, 10)}`
  const res = await request(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?watch=1&resourceVersion=${fromVersion}&timeoutSeconds=30`
  )
  if (res.statusCode !== 200) throw new Error(`watch leases in ${namespace}: HTTP ${res.statusCode}`)
  const events: string[] = []
  const done = new Promise<void>((resolve, reject) => {
    let buffer = ''
    res.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8')
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (!line) continue
        const ev = JSON.parse(line) as { type: string; object: { kind?: string; metadata?: { name?: string }; message?: string } }
        if (ev.type === 'ERROR') {
          reject(new Error(`watch leases in ${namespace} from ${fromVersion}: ${ev.object.message ?? JSON.stringify(ev.object)}`))
          return
        }
        const name = ev.object.metadata?.name ?? '?'
        if (name === sentinel) {
          resolve()
          return
        }
        // An earlier check's sentinel (its DELETE may land after that check's replay ended).
        if (name.startsWith(SENTINEL_PREFIX)) continue
        events.push(`${ev.type} ${name}`)
      }
    })
    res.on('end', () => reject(new Error(`watch leases in ${namespace} ended before the sentinel arrived`)))
    res.on('error', reject)
  })
  try {
    await apiJson('POST', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: sentinel }
    })
    await done
  } finally {
    res.destroy()
    await apiJson('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${sentinel}`).catch(() => undefined)
  }
  return events
}

/** What was written in the namespace since `before`: objects added, changed, removed, and Lease events. */
export async function namespaceWrites(before: NamespaceFingerprint): Promise<NamespaceWrites> {
  const leaseEvents = await leaseEventsSince(before.namespace, before.leaseListVersion)
  const after = await namespaceFingerprint(before.namespace)
  const added = Object.keys(after.objects).filter((k) => !(k in before.objects))
  const removed = Object.keys(before.objects).filter((k) => !(k in after.objects))
  const changed = Object.keys(after.objects).filter((k) => k in before.objects && before.objects[k] !== after.objects[k])
  return { added, changed, removed, leaseEvents }
}

/**
 * The namespace's fingerprint once the controllers are done with the last run (old pods gone,
 * statuses written): two fingerprints a second apart agree. "Nothing written" is judged from here.
 */
export async function quietFingerprint(ns: string): Promise<NamespaceFingerprint> {
  let last = await namespaceFingerprint(ns)
  return waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 1000))
      const next = await namespaceFingerprint(ns)
      const quiet = JSON.stringify(next.objects) === JSON.stringify(last.objects)
      last = next
      return quiet && next
    },
    { timeoutMs: 60_000, intervalMs: 0, what: `namespace ${ns} to be quiet` }
  )
}
