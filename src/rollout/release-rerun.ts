/**
 * A deploy of a version whose last rollout has ended: a re-run of a finished release ("Re-run all
 * jobs", a second push of the same commit) must be calm when there is nothing to do, and must not
 * send traffic to a version that was just rolled back by surprise. Pure: preflight reads the
 * cluster and passes what it saw.
 *
 * "The same release" is the same version (the value of the version label) and the same Deployment,
 * as server-side apply of the manifest would leave it (`deploymentChanges`): a new image, env or
 * resources under the same version label is a different build. The commit does not count: a new
 * commit that leaves the manifest as it was deploys the very same pods.
 */
import type { KubeObject } from '../kube/kube-object.js'
import { quote } from '../errors.js'
import type { RolloutState } from './types.js'

/** What a deploy of a version that is not mid-rollout does. */
export type RedeployDecision =
  /** Start a rollout as usual; `note` says why a re-run of a rolled-back version may go ahead. */
  | { kind: 'new-rollout'; note?: string }
  /** The version is stable and its Deployment matches the manifest: succeed without a write. */
  | { kind: 'already-stable'; note: string }
  /** Refuse in preflight, nothing written: `reason` says why and what to do. */
  | { kind: 'refuse'; reason: string }

export interface RedeployFacts {
  /** The version being deployed. */
  version: string
  versionLabel: string
  /** The manifest's Deployment name. */
  deployment: string
  /** `namespace/name` of the VirtualService, for the messages. */
  virtualService: string
  /** The version's subset is the one destination carrying all traffic on the route. */
  stable: boolean
  /** The rollout recorded on the VirtualService, when it has ended (promoted, rolled back, aborted). */
  last?: RolloutState
  /**
   * What applying the manifest would change on the live Deployment (`deploymentChanges`; for a
   * rolled-back version, compared with its scaled-down Deployment, replicas left out). Undefined
   * when that Deployment does not exist.
   */
  changes?: string[]
  /** Input 'retry': the user asks to roll out again the release that was just rolled back. */
  retry: boolean
}

/** How many changed fields a refusal lists before "… and N more". */
export const MAX_CHANGES_SHOWN = 10

/**
 * Decide what a deploy does when no rollout is in flight:
 * - the version is stable and the manifest matches its Deployment: nothing to do (a green no-op);
 * - the version is stable but the manifest differs: refuse, a new build needs a new version;
 * - the last rollout of this version was rolled back or aborted and the manifest is that same
 *   release: refuse unless input 'retry' is true; a changed manifest (the fix) starts a new rollout;
 * - anything else: a new rollout.
 */
export function decideRedeploy(f: RedeployFacts): RedeployDecision {
  const v = quote(f.version)
  if (f.stable) {
    if (f.changes?.length === 0) {
      return {
        kind: 'already-stable',
        note: `${f.version} is already stable; nothing to do (Deployment ${f.deployment} matches the manifest).`
      }
    }
    const what =
      f.changes === undefined
        ? `but its manifest's Deployment ${quote(f.deployment)} does not exist, so the manifest is not what serves ${v}`
        : `but the manifest differs from its live Deployment ${quote(f.deployment)}:\n${changeList(f.changes)}\n`
    return {
      kind: 'refuse',
      reason:
        `Version ${v} is already the stable version on VirtualService ${quote(f.virtualService)}, ${what}` +
        ` Applying it would change the pods that serve all traffic with no canary in between. ` +
        `Release it under a new version: a new ${quote(f.versionLabel)} label value on the pod template (and selector) and a new Deployment name.`
    }
  }
  const last = f.last
  if (!last || (last.phase !== 'rolled-back' && last.phase !== 'aborted') || last.canary.version !== f.version)
    return { kind: 'new-rollout' }
  const ended = `${last.phase === 'aborted' ? 'aborted' : 'rolled back'} at ${last.updatedAt}${last.reason ? ` (${last.reason})` : ''}`
  if (f.changes !== undefined && f.changes.length > 0) {
    return {
      kind: 'new-rollout',
      note: `The last rollout of ${f.version} was ${ended}; this manifest differs from that release (${f.changes.slice(0, 3).join('; ')}${f.changes.length > 3 ? '; …' : ''}), so a new rollout of it starts.`
    }
  }
  if (f.retry) return { kind: 'new-rollout', note: `Retrying ${f.version} (input 'retry'): its last rollout was ${ended}.` }
  const same =
    f.changes === undefined
      ? `its Deployment ${quote(last.canary.deployment)} no longer exists, so this manifest cannot be told apart from it`
      : `this manifest is that same release (Deployment ${quote(f.deployment)} would not change)`
  return {
    kind: 'refuse',
    reason:
      `The last rollout of ${v} on VirtualService ${quote(f.virtualService)} was ${ended}, and ${same}; ` +
      `a re-run would send it traffic again. To try the same release again, set input 'retry' to true; ` +
      `to release a fix, change the manifest (e.g. a new image) or release a new version.`
  }
}

function changeList(changes: readonly string[]): string {
  const shown = changes.slice(0, MAX_CHANGES_SHOWN).map((c) => `  - ${c}`)
  if (changes.length > MAX_CHANGES_SHOWN) shown.push(`  - … and ${changes.length - MAX_CHANGES_SHOWN} more`)
  return shown.join('\n')
}

/** Set by the apiserver on every write, not by the manifest: never a difference. */
const SERVER_METADATA = ['managedFields', 'resourceVersion', 'generation'] as const

/**
 * What a server-side apply would change on a Deployment: `live` as stored, `applied` as a dry-run
 * apply of the manifest returned it. A dry run starts from the live object and changes only the
 * fields the manifest sets (or that our field manager set before and the manifest drops), so every
 * difference between the two is a field the apply would write; managedFields, resourceVersion,
 * generation and status are the apiserver's and are left out, as is every path in `ignore`
 * (dot-separated, e.g. `spec.replicas`). One readable line per changed field, paths under the pod
 * spec shortened (`containers[app].image: "app:1" → "app:2"`); lists of named items are compared
 * by name.
 */
export function deploymentChanges(live: KubeObject, applied: KubeObject, ignore: readonly string[] = []): string[] {
  const out: string[] = []
  walk(comparable(live), comparable(applied), [], new Set(ignore), out)
  return out
}

function comparable(obj: KubeObject): Record<string, unknown> {
  const { status: _status, metadata, ...rest } = obj
  const meta: Record<string, unknown> = { ...metadata }
  for (const key of SERVER_METADATA) delete meta[key]
  return { ...rest, metadata: meta }
}

type Json = unknown

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A list whose items are objects with distinct string names (containers, env, volumes, ports with names). */
function namedItems(v: Json): Map<string, Json> | undefined {
  if (!Array.isArray(v)) return undefined
  const byName = new Map<string, Json>()
  for (const item of v) {
    if (!isObject(item) || typeof item.name !== 'string' || byName.has(item.name)) return undefined
    byName.set(item.name, item)
  }
  return byName
}

function equal(a: Json, b: Json): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]))
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    return [...keys].every((k) => equal(a[k], b[k]))
  }
  return false
}

function walk(a: Json, b: Json, path: string[], ignore: ReadonlySet<string>, out: string[]): void {
  if (ignore.has(path.join('.')) || equal(a, b)) return
  if (isObject(a) && isObject(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) walk(a[key], b[key], [...path, key], ignore, out)
    return
  }
  const named = [namedItems(a), namedItems(b)]
  if (named[0] && named[1]) {
    const [before, after] = named
    const names = [...before.keys(), ...[...after.keys()].filter((n) => !before.has(n))]
    // Compare by name, skipping the `name` field itself: `env[MODE].value`, not `env[0].name`.
    for (const name of names) walk(before.get(name), after.get(name), [...path, `[${name}]`], ignore, out)
    return
  }
  out.push(changeLine(path, a, b))
}

const POD_SPEC = 'spec.template.spec.'

function changeLine(path: string[], before: Json, after: Json): string {
  let p = path.join('.').replace(/\.\[/g, '[')
  if (p.startsWith(POD_SPEC)) p = p.slice(POD_SPEC.length)
  if (before === undefined) return `${p}: added ${short(after)}`
  if (after === undefined) return `${p}: removed (was ${short(before)})`
  return `${p}: ${short(before)} → ${short(after)}`
}

function short(v: Json): string {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 80 ? `${s.slice(0, 79)}…` : s
}
