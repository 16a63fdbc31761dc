/**
 * The annotation on a VirtualService moved in lockstep with another one that holds the rollout
 * state: it names the state holder, the rollout and the lock epoch of its last write, so that
 * preflight refuses a second rollout over it and a stale run's write to it is fenced. Written in
 * the same update as the member's weights, removed when the rollout ends.
 */
import type { KubeObject } from '../../kube/kube-object.js'
import { PreflightError, quote } from '../../errors.js'

export const MEMBER_ANNOTATION = 'istio-canary.io/rollout-member'

/** What the marker says. */
export interface MemberMarker {
  /** `namespace/name` of the VirtualService holding the rollout state. */
  stateOn: string
  /** The rollout's id. */
  id: string
  epoch: number
}

/** The marker as annotation text. */
export function encodeMarker(m: MemberMarker): string {
  return JSON.stringify({ stateOn: m.stateOn, id: m.id, epoch: m.epoch })
}

/** The member marker of `vs`, if any; throws PreflightError when it cannot be read. */
export function markerOf(vs: KubeObject): MemberMarker | undefined {
  const value = vs.metadata.annotations?.[MEMBER_ANNOTATION]
  if (value === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(value)
  } catch {
    raw = undefined
  }
  const m = raw as Partial<MemberMarker> | undefined
  if (!m || typeof m.stateOn !== 'string' || typeof m.id !== 'string' || !Number.isInteger(m.epoch)) {
    const ns = vs.metadata.namespace
    throw new PreflightError(
      `Annotation '${MEMBER_ANNOTATION}' on VirtualService ${ns ? `${ns}/` : ''}${vs.metadata.name} is not one istio-canary can read ` +
        `(got ${quote(value)}); expected {"stateOn":"<namespace>/<name>","id":"...","epoch":<n>}. If no rollout is in progress, clear it by hand ` +
        `(kubectl ${ns ? `-n ${ns} ` : ''}annotate virtualservice ${vs.metadata.name} ${MEMBER_ANNOTATION}-), then run again.`
    )
  }
  return { stateOn: m.stateOn, id: m.id, epoch: m.epoch as number }
}
