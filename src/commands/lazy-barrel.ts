/**
 * The lazily loaded modules of the commands behind one dynamic import: one lazy root means the code
 * they share with the start-up path lands in few chunks, and few files load before the first request.
 */
export * from './canary-capacity.js'
export * from './traffic-targets.js'
export * from './service-split.js'
export * from '../config/canary-service.js'
export * from '../rollout/version-order.js'
