/**
 * The traffic targets only some runs need, behind one dynamic `import()` so that they share one
 * lazy chunk: several VirtualServices in lockstep, delegate VirtualServices, TCP routes.
 */
export { checkMarker, checkSameMembers, resolveMembers } from './lockstep-preflight.js'
export { checkDelegatedTo, followDelegations } from './delegation.js'
export { checkTcpGates } from './tcp-preflight.js'
export { IstioLockstepRouter, IstioMemberRouter } from '../traffic/istio/istio-lockstep-router.js'
