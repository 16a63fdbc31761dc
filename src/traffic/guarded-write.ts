/**
 * The one guarded write loop every router writes through: read the object, let the caller decide
 * the body from what it read (changing only the fields it owns), PUT under the resourceVersion
 * read, and on 409 or a read-back that does not show the write, read again and decide again. A
 * write counts only once a read shows it (a retried PUT may have landed twice or not at all).
 */
import type { Cluster, MeshKind } from '../cluster/cluster.js'
import { ConflictError } from '../errors.js'
import { errorText } from '../format.js'
import type { KubeObject } from '../kube/kube-object.js'

export interface GuardedWrite {
  cluster: Cluster
  kind: MeshKind
  namespace: string
  name: string
  /** Conflicting writes in a row before giving up. */
  attempts: number
  /** Pause before attempt `attempt` (> 1); none when undefined. */
  pause?: (attempt: number) => Promise<void>
  /** The object as it is now (it may fence: throw when another run owns it). */
  read: () => Promise<KubeObject | undefined>
  /** The body to write (none: nothing to write) and how to recognise it on the read-back. */
  decide: (live: KubeObject) => { body?: KubeObject; confirm: (back: KubeObject) => boolean }
}

/** Runs the loop; returns the object as the confirming read-back (or the read, when nothing was written) showed it. */
export async function guardedWrite(o: GuardedWrite): Promise<KubeObject> {
  let lastError: unknown
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    if (attempt > 1) await o.pause?.(attempt)
    const live = await o.read()
    if (!live) throw new Error(`${o.kind} ${o.namespace}/${o.name} disappeared mid-rollout`)
    const { body, confirm } = o.decide(live)
    if (!body) return live
    let written: KubeObject
    try {
      written = await o.cluster.replaceIstio(body)
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err
      lastError = err
      continue
    }
    // The read asks for the written resourceVersion or newer: never older than our write, and
    // the API server may answer from its watch cache instead of a quorum read of etcd. A later
    // write by someone else that this read misses still fails our next PUT (409: read afresh).
    const back = await o.cluster.getIstio(o.kind, o.namespace, o.name, { notOlderThan: written.metadata.resourceVersion })
    if (back && confirm(back)) return back
    lastError = new ConflictError('read-back did not show our write')
  }
  throw new ConflictError(
    `${o.kind} ${o.namespace}/${o.name} kept changing under us (${o.attempts} conflicting writes): ${errorText(lastError)}`
  )
}
