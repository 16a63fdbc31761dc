/**
 * Code only some runs need, or none before its first API request, in lazy chunks of the bundle: the
 * commands' lazy modules sit behind one dynamic import (lazy-barrel.ts), the rollout executor behind
 * another; each is imported on first use and the promise kept, so a process imports it once.
 * Everything here is also loaded up front by preloadLazyModules (tests that run commands in-process
 * call it before their first test).
 */
import { loadTimeZones } from '../config/freeze-windows.js'

type CanaryCapacity = typeof import('./canary-capacity.js')
type TrafficTargets = typeof import('./traffic-targets.js')
type ServiceSplit = typeof import('./service-split.js')
type CanaryServiceInput = typeof import('../config/canary-service.js')
type VersionRule = typeof import('../rollout/version-order.js')

let lazy: Promise<typeof import('./lazy-barrel.js')> | undefined
let executor: Promise<typeof import('./rollout-executor.js')> | undefined
const barrel = (): Promise<typeof import('./lazy-barrel.js')> => (lazy ??= import('./lazy-barrel.js'))

/** Proportional replicas, the canary's HPA, quota and disruption-budget checks. */
export function loadCanaryCapacity(): Promise<CanaryCapacity> {
  return barrel()
}

/** Several VirtualServices in lockstep, delegates, TCP routes. */
export function loadTrafficTargets(): Promise<TrafficTargets> {
  return barrel()
}

/** Per-version Services: a host-level split and the Gateway API HTTPRoute. */
export function loadServiceSplit(): Promise<ServiceSplit> {
  return barrel()
}

/** The canary's Service among the manifests (a route over per-version Services). */
export function loadCanaryService(): Promise<CanaryServiceInput> {
  return barrel()
}

/** The version rule and semver, needed with the first version check, after the first API request. */
export function loadVersionRule(): Promise<VersionRule> {
  return barrel()
}

/**
 * The executor of a rollout's steps: every run that writes needs it, none before its preflight has
 * read the cluster, and status never.
 */
export function loadRolloutExecutor(): Promise<typeof import('./rollout-executor.js')> {
  return (executor ??= import('./rollout-executor.js'))
}

let rolloutRouter: Promise<typeof import('./rollout-router.js')> | undefined
/** The TrafficRouter of a rollout's routes, built when a run first writes a weight or dry-runs one. */
export function loadRolloutRouter(): Promise<typeof import('./rollout-router.js')> {
  return (rolloutRouter ??= import('./rollout-router.js'))
}

let deployPreflight: Promise<typeof import('./deploy-preflight.js')> | undefined
/** A deploy's checks after its route is read (preflight starts loading them before its first request). */
export function loadDeployPreflight(): Promise<typeof import('./deploy-preflight.js')> {
  return (deployPreflight ??= import('./deploy-preflight.js'))
}

/** Every lazy module of the commands at once. */
export async function preloadLazyModules(): Promise<void> {
  await Promise.all([
    loadCanaryCapacity(),
    loadTrafficTargets(),
    loadServiceSplit(),
    loadCanaryService(),
    loadVersionRule(),
    loadRolloutExecutor(),
    loadDeployPreflight(),
    loadRolloutRouter(),
    loadTimeZones()
  ])
}
