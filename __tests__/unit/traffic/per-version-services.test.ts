/**
 * The per-version Service model: VirtualService destinations keyed by Service host, the shared
 * Service checks, and the Services / DestinationRules the action may create and remove.
 */
import { describe, expect, it } from '@jest/globals'
import { PreflightError } from '../../../src/errors.js'
import type { KubeObject } from '../../../src/kube/kube-object.js'
import { readSplit, withoutDestination, withSplit, type DestinationKey } from '../../../src/traffic/istio/virtual-service-transform.js'
import { checkVersionServices, type VersionServicesInput } from '../../../src/traffic/version-service-checks.js'
import { VersionServices } from '../../../src/traffic/version-services.js'
import { makeRolloutState } from '../../fixtures/istio/rollout-state.js'
import { MemoryCluster } from '../../support/memory-cluster.js'

const NS = 'shop'
const BY_SERVICE: DestinationKey = { by: 'service', namespace: NS }

function vs(route: unknown[]): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: NS },
    spec: { hosts: ['reviews'], http: [{ name: 'primary', route, retries: { attempts: 3 } }] }
  }
}

describe('VirtualService destinations keyed by per-version Service', () => {
  const stable = {
    destination: { host: `reviews-v1.${NS}.svc.cluster.local`, port: { number: 9080 } },
    headers: { request: { set: { a: 'b' } } }
  }

  it('adds the canary as a copy of the stable destination with the host renamed in the same form', () => {
    const original = vs([stable])
    const next = withSplit(original, 0, 'reviews-v1', 'reviews-v1', 'reviews-v2', 10, undefined, BY_SERVICE)
    expect(next.spec.http[0].route).toEqual([
      { ...stable, weight: 90 },
      { ...stable, destination: { ...stable.destination, host: `reviews-v2.${NS}.svc.cluster.local` }, weight: 10 }
    ])
    // Everything but the destination list is carried through (the same subtree).
    expect(next.spec.http[0].retries).toBe(original.spec.http[0].retries)
    expect(readSplit(next, 0, 'reviews-v1', 'reviews-v2', undefined, BY_SERVICE)).toEqual({
      stable: 90,
      canary: 10,
      stablePresent: true,
      canaryPresent: true
    })
  })

  it('reads a short host and the FQDN as the same Service, but not a destination with a subset or in another namespace', () => {
    const route = [
      { destination: { host: 'reviews-v1' }, weight: 70 },
      { destination: { host: 'reviews-v2.shop.svc.cluster.local' }, weight: 30 },
      { destination: { host: 'reviews-v2', subset: 'x' }, weight: 0 },
      { destination: { host: 'reviews-v2.other.svc.cluster.local' }, weight: 0 }
    ]
    expect(readSplit(vs(route), 0, 'reviews-v1', 'reviews-v2', undefined, BY_SERVICE)).toEqual({
      stable: 70,
      canary: 30,
      stablePresent: true,
      canaryPresent: true
    })
  })

  it('removes the canary destination only at weight 0', () => {
    const split = withSplit(vs([stable]), 0, 'reviews-v1', 'reviews-v1', 'reviews-v2', 20, undefined, BY_SERVICE)
    expect(() => withoutDestination(split, 0, 'reviews-v2', { key: BY_SERVICE })).toThrow(/still has weight 20/)
    const zero = withSplit(split, 0, 'reviews-v1', 'reviews-v1', 'reviews-v2', 0, undefined, BY_SERVICE)
    expect(withoutDestination(zero, 0, 'reviews-v2', { key: BY_SERVICE }).spec.http[0].route).toEqual([{ ...stable, weight: 100 }])
  })
})

function svc(name: string, selector: Record<string, string>, ports = [9080]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: { selector, ports: ports.map((port) => ({ port })) }
  }
}
function deployment(name: string, labels: Record<string, string>): KubeObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS }, spec: { template: { metadata: { labels } } } }
}

describe('checkVersionServices', () => {
  const base = (over: Partial<VersionServicesInput> = {}): VersionServicesInput => ({
    namespace: NS,
    versionLabel: 'version',
    where: 'route "primary" (#0) of VirtualService shop/reviews',
    stableName: 'reviews-v1',
    services: {
      'reviews-v1': svc('reviews-v1', { app: 'reviews', version: 'v1' }),
      'reviews-v2': svc('reviews-v2', { app: 'reviews', version: 'v2' })
    },
    canaryVersion: 'v2',
    canaryDeployment: 'reviews-v2',
    canaryPodLabels: { app: 'reviews', version: 'v2' },
    deployments: [deployment('reviews-v1', { app: 'reviews', version: 'v1' })],
    ...over
  })

  it('names the canary Service after the stable one, finds the stable Deployment and version', () => {
    const r = checkVersionServices(base())
    expect({ canary: r.canaryName, version: r.stableVersion, deployment: r.stableDeployment?.metadata.name }).toEqual({
      canary: 'reviews-v2',
      version: 'v1',
      deployment: 'reviews-v1'
    })
  })

  it.each<[string, Partial<VersionServicesInput>, RegExp]>([
    [
      'the stable Service selects the canary pods',
      { services: { 'reviews-v1': svc('reviews-v1', { app: 'reviews' }) } },
      /selects "app=reviews", which the canary pods .* also carry/
    ],
    [
      'the canary Service selects no canary pod',
      {
        services: {
          'reviews-v1': svc('reviews-v1', { app: 'reviews', version: 'v1' }),
          'reviews-v2': svc('reviews-v2', { app: 'reviews', version: 'v3' })
        }
      },
      /reviews-v2 selects "app=reviews,version=v3", which the canary pods .* do not carry/
    ],
    [
      'the canary Service lacks a port of the stable one',
      {
        services: {
          'reviews-v1': svc('reviews-v1', { app: 'reviews', version: 'v1' }, [9080, 9090]),
          'reviews-v2': svc('reviews-v2', { app: 'reviews', version: 'v2' })
        }
      },
      /does not serve port "9090"/
    ],
    ['the stable Service is missing', { services: {} }, /^Service shop\/reviews-v1 was not found/],
    [
      'a stable name without the version and no canary-service',
      { stableName: 'web-stable', services: { 'web-stable': svc('web-stable', { app: 'web', version: 'v1' }) } },
      /input 'canary-service'/
    ],
    ['the canary Service is the stable one', { canaryServiceInput: 'reviews-v1' }, /is the stable version's/]
  ])('refuses when %s', (_what, over, message) => {
    expect(() => checkVersionServices(base(over))).toThrow(PreflightError)
    expect(() => checkVersionServices(base(over))).toThrow(message)
  })
})

describe('VersionServices', () => {
  const state = makeRolloutState({
    backends: 'services',
    destinationRule: '',
    stable: { version: 'v1', subset: 'reviews-v1' },
    canary: { version: 'v2', subset: 'reviews-v2', deployment: 'reviews-v2' }
  })
  const stableDr: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews-v1', namespace: NS },
    spec: { host: 'reviews-v1', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }
  }

  it('applies the canary Service and copies the traffic policy; with retire: delete removes only what it made', async () => {
    const cluster = new MemoryCluster([stableDr, svc('reviews-v1', { app: 'reviews', version: 'v1' })])
    const services = new VersionServices({
      cluster,
      namespace: NS,
      canaryService: svc('reviews-v2', { app: 'reviews', version: 'v2' }),
      copyTrafficPolicy: true,
      retire: 'delete'
    })
    await services.addCanary(state)
    expect(cluster.get('DestinationRule', NS, 'reviews-v2')?.spec).toEqual({
      host: `reviews-v2.${NS}.svc.cluster.local`,
      trafficPolicy: stableDr.spec.trafficPolicy
    })
    expect(await services.remove('reviews-v1')).toBe('absent')
    expect(cluster.get('Service', NS, 'reviews-v1')).toBeDefined()
    expect(await services.remove('reviews-v2')).toBe('removed')
    expect(cluster.get('Service', NS, 'reviews-v2')).toBeUndefined()
    expect(cluster.get('DestinationRule', NS, 'reviews-v2')).toBeUndefined()
  })

  it('keeps everything with retire: scale-down, and respects a DestinationRule the canary host already has', async () => {
    const own: KubeObject = { ...stableDr, metadata: { name: 'mine', namespace: NS }, spec: { host: 'reviews-v2' } }
    const cluster = new MemoryCluster([stableDr, own])
    const services = new VersionServices({
      cluster,
      namespace: NS,
      canaryService: svc('reviews-v2', { app: 'reviews', version: 'v2' }),
      copyTrafficPolicy: true,
      retire: 'scale-down'
    })
    await services.addCanary(state)
    expect(
      cluster
        .list('DestinationRule', NS)
        .map((d) => d.metadata.name)
        .sort()
    ).toEqual(['mine', 'reviews-v1'])
    expect(await services.remove('reviews-v2')).toBe('absent')
    expect(cluster.get('Service', NS, 'reviews-v2')).toBeDefined()
  })
})
