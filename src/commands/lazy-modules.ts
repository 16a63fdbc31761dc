/**
 * Code only some runs need, or none before its first API request, in lazy chunks of the bundle: the
 * commands' lazy modules sit behind one dynamic import (lazy-barrel.ts); the rollout executor, its
 * router and a deploy's own preflight checks behind one each. Each is imported on first use and the
 * promise kept, so a process imports it once. Everything here is also loaded up front by
 * preloadLazyModules (tests that run commands in-process call it before their first test).
 */
import { loadTimeZones } from '../config/freeze-windows.js'

type CanaryCapacity = typeof import('./canary-capacity.js')
type TrafficTargets = typeof import('./traffic-targets.js')
type ServiceSplit = typeof import('./service-split.js')
type CanaryServiceInput = typeof import('../config/canary-service.js')
type VersionRule = typeof import('../rollout/version-order.js')

/** `load` called once, its promise kept. */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined
  return () => (loaded ??= load())
}

const barrel = once(() => import('./lazy-barrel.js'))

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
export const loadRolloutExecutor = once(() => import('./rollout-executor.js'))

/** The TrafficRouter of a rollout's routes, built when a run first writes a weight or dry-runs one. */
export const loadRolloutRouter = once(() => import('./rollout-router.js'))

/** A deploy's checks after its route is read (preflight starts loading them before its first request). */
export const loadDeployPreflight = once(() => import('./deploy-preflight.js'))

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
