import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { PreflightError } from '../../../../src/errors.js'
import { resolveTopology, servingSubset, type TopologyInput } from '../../../../src/traffic/istio/route-topology.js'
import { parseServiceHost, sameServiceHost } from '../../../../src/traffic/istio/service-host.js'
import { makeLargeDestinationRule, makeLargeService, makeLargeVirtualService } from '../../../fixtures/istio/large.js'
import { loadFixture, loadSeed } from '../../../fixtures/istio/load-fixture.js'
import { makeRolloutState } from '../../../fixtures/istio/rollout-state.js'
import { thrown } from './thrown.js'

const NS = 'shop'
const canaryPodLabels = (): Record<string, string> => loadSeed('deployment-v2.yaml').spec.template.metadata.labels as Record<string, string>

/** The seed's starting state: v1 takes all traffic, v2 is about to be released. */
function seedInput(overrides: Partial<TopologyInput> = {}): TopologyInput {
  return {
    vs: loadSeed('virtualservice-v1.yaml', NS),
    drs: [loadSeed('destinationrule-v1.yaml', NS)],
    service: loadSeed('service.yaml', NS),
    namespace: NS,
    versionLabel: 'istio-test-version',
    canaryVersion: 'v2',
    canaryPodLabels: canaryPodLabels(),
    ...overrides
  }
}

/** The complex fixtures: route "primary" of several, version label `version`. */
function complexInput(overrides: Partial<TopologyInput> = {}): TopologyInput {
  return {
    vs: loadFixture('complex-virtualservice.yaml'),
    drs: [loadFixture('complex-destinationrule.yaml')],
    service: loadFixture('complex-service.yaml'),
    namespace: NS,
    routeName: 'primary',
    versionLabel: 'version',
    canaryVersion: 'v2',
    canaryPodLabels: { app: 'reviews', version: 'v2' },
    ...overrides
  }
}

function preflightMessage(input: TopologyInput): string {
  const err = thrown(() => resolveTopology(input))
  expect(err).toBeInstanceOf(PreflightError)
  return err.message
}

function withRoute(vs: KubeObject, index: number, route: unknown): KubeObject {
  vs.spec.http[index].route = route
  return vs
}

describe('resolveTopology on the seed', () => {
  it('resolves the starting state', () => {
    expect(resolveTopology(seedInput())).toEqual({
      routeIndex: 0,
      host: 'istio-service',
      service: { name: 'istio-service', namespace: NS, fqdn: 'istio-service.shop.svc.cluster.local', form: 'short' },
      stableSubset: 'v1',
      stableVersion: 'v1',
      canarySubset: 'v2',
      canaryVersion: 'v2',
      destinationRuleName: 'istio-destinationrule',
      drApiVersion: 'networking.istio.io/v1alpha3',
      canarySubsetExists: false,
      resuming: false,
      currentSplit: { stable: 100, canary: 0 }
    })
  })

  it('accepts the canary subset already there with the labels we would add (a resumed run)', () => {
    const t = resolveTopology(seedInput({ drs: [loadSeed('destinationrule-v1-v2.yaml', NS)] }))
    expect(t.canarySubsetExists).toBe(true)
  })

  it('takes the canary subset name from input canarySubset', () => {
    expect(resolveTopology(seedInput({ canarySubset: 'canary' })).canarySubset).toBe('canary')
  })

  it('takes stable and canary from an unfinished rollout, and reads its split', () => {
    const t = resolveTopology(
      seedInput({
        vs: loadSeed('virtualservice-50-50.yaml', NS),
        drs: [loadSeed('destinationrule-v1-v2.yaml', NS)],
        existingState: makeRolloutState()
      })
    )
    expect(t).toMatchObject({ stableSubset: 'v1', canarySubset: 'v2', resuming: true, canarySubsetExists: true })
    expect(t.currentSplit).toEqual({ stable: 50, canary: 50 })
  })

  it('ignores a finished rollout', () => {
    const t = resolveTopology(
      seedInput({ existingState: makeRolloutState({ phase: 'promoted', stable: { version: 'v0', subset: 'v0' } }) })
    )
    expect(t).toMatchObject({ stableSubset: 'v1', resuming: false })
  })

  it('resumes a promotion whose old stable destination and subset are already gone', () => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [{ destination: { host: 'istio-service', subset: 'v2' }, weight: 100 }])
    const dr = loadSeed('destinationrule-v1-v2.yaml', NS)
    dr.spec.subsets = dr.spec.subsets.slice(1)
    const t = resolveTopology(seedInput({ vs, drs: [dr], existingState: makeRolloutState({ phase: 'promoting' }) }))
    expect(t).toMatchObject({ stableSubset: 'v1', canarySubset: 'v2', currentSplit: { stable: 0, canary: 100 } })
  })

  it.each([
    ['istio-service', 'istio-service'],
    ['istio-service', 'istio-service.shop.svc.cluster.local'],
    ['istio-service.shop.svc.cluster.local', 'istio-service'],
    ['ISTIO-SERVICE.shop.svc.cluster.local.', 'istio-service.shop.svc.cluster.local']
  ])('matches route host %p with DestinationRule host %p', (routeHost, drHost) => {
    const vs = loadSeed('virtualservice-v1.yaml', NS)
    vs.spec.http[0].route[0].destination.host = routeHost
    const dr = loadSeed('destinationrule-v1.yaml', NS)
    dr.spec.host = drHost
    const t = resolveTopology(seedInput({ vs, drs: [dr] }))
    expect(t.host).toBe(routeHost)
    expect(t.destinationRuleName).toBe('istio-destinationrule')
  })

  it('ignores DestinationRules of other namespaces', () => {
    const elsewhere = loadSeed('destinationrule-v1.yaml', 'other')
    expect(resolveTopology(seedInput({ drs: [elsewhere, loadSeed('destinationrule-v1.yaml', NS)] })).destinationRuleName).toBe(
      'istio-destinationrule'
    )
  })

  it('accepts a second DestinationRule for the host when named and its subsets do not collide', () => {
    const other = loadSeed('destinationrule-v1.yaml', NS)
    other.metadata.name = 'policy-only'
    other.spec.subsets = [{ name: 'v0', labels: { 'istio-test-version': 'v0' } }]
    const input = seedInput({ drs: [other, loadSeed('destinationrule-v1.yaml', NS)], destinationRuleName: 'istio-destinationrule' })
    expect(resolveTopology(input).destinationRuleName).toBe('istio-destinationrule')
  })
})

describe('resolveTopology on several routes', () => {
  it('finds the named route', () => {
    expect(resolveTopology(complexInput())).toMatchObject({
      routeIndex: 1,
      routeName: 'primary',
      host: 'reviews',
      stableSubset: 'v1',
      stableVersion: 'v1',
      destinationRuleName: 'reviews',
      drApiVersion: 'networking.istio.io/v1',
      currentSplit: { stable: 100, canary: 0 }
    })
  })

  it('finds the route recorded by an unfinished rollout when input route is not set', () => {
    const state = makeRolloutState({ route: { index: 1, name: 'primary' }, host: 'reviews', destinationRule: 'reviews' })
    expect(resolveTopology(complexInput({ routeName: undefined, existingState: state })).routeIndex).toBe(1)
  })

  it('works on 100 routes', () => {
    const t = resolveTopology(
      seedInput({
        vs: makeLargeVirtualService(100),
        drs: [makeLargeDestinationRule(50)],
        namespace: 'bench',
        service: makeLargeService(),
        routeName: 'route-42'
      })
    )
    expect(t).toMatchObject({ routeIndex: 42, stableSubset: 'v1', canarySubsetExists: false })
  })
})

describe('resolveTopology errors: the route', () => {
  it('several routes and no input route', () => {
    expect(preflightMessage(complexInput({ routeName: undefined }))).toBe(
      'VirtualService shop/reviews has 4 http routes (route "debug" (#0), route "primary" (#1), route "legacy" (#2), ' +
        `route "catch-all" (#3)); which one to split is ambiguous. Set input 'route' to the name of one of them (give the route a name if it has none).`
    )
  })

  it('a route name that does not exist', () => {
    expect(preflightMessage(complexInput({ routeName: 'main' }))).toBe(
      `VirtualService shop/reviews has no http route named "main" (input 'route'); expected one of "debug, primary, legacy, catch-all".`
    )
  })

  it('a route name on a VirtualService whose routes have no names', () => {
    expect(preflightMessage(seedInput({ routeName: 'main' }))).toBe(
      `VirtualService shop/istio-virtualservice has no http route named "main" (input 'route'); none of its 1 http routes has a name.`
    )
  })

  it('no http routes', () => {
    const vs = loadSeed('virtualservice-v1.yaml', NS)
    delete vs.spec.http
    expect(preflightMessage(seedInput({ vs }))).toBe(
      `VirtualService shop/istio-virtualservice has no http routes; expected at least one 'http' route to split (or a 'tcp' route).`
    )
  })

  it('a delegating route', () => {
    const vs = loadSeed('virtualservice-v1.yaml', NS)
    vs.spec.http[0] = { name: 'main', delegate: { name: 'reviews-delegate', namespace: NS } }
    expect(preflightMessage(seedInput({ vs }))).toBe(
      'route "main" (#0) of VirtualService shop/istio-virtualservice delegates to VirtualService "shop/reviews-delegate"; ' +
        `expected a route with a 'route' destination list. ` +
        `Name the delegate VirtualService in input 'virtual-service' (or this route, as root/route, to follow the delegation).`
    )
  })

  it('a route without destinations (redirect)', () => {
    expect(preflightMessage(complexInput({ routeName: 'legacy' }))).toBe(
      `route "legacy" (#2) of VirtualService shop/reviews has no 'route' destinations (it may redirect or return a direct ` +
        `response); expected a route whose 'route' list sends traffic to a subset of one service.`
    )
  })

  it('a destination without a subset', () => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [{ destination: { host: 'istio-service' } }])
    expect(preflightMessage(seedInput({ vs }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice sends traffic to host "istio-service" without a subset; ' +
        `expected every destination of the route to name a DestinationRule subset (the stable version's), since the canary is routed by subset.`
    )
  })

  it('a destination without a host', () => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [{ destination: { subset: 'v1' } }])
    expect(preflightMessage(seedInput({ vs }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice has a destination without a host; expected every destination to name a host.'
    )
  })

  it('destinations on several hosts', () => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 90 },
      { destination: { host: 'other-service', subset: 'v1' }, weight: 10 }
    ])
    expect(preflightMessage(seedInput({ vs }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice routes to several hosts ("istio-service, other-service"); ' +
        'splitting a route with other hosts is not supported: expected every destination on host "istio-service". ' +
        'Move the other hosts to their own route.'
    )
  })

  it.each(['istio-service.other', 'istio-service.other.svc.cluster.local', 'api.example.com.', '*.example.com'])(
    'a host outside the namespace: %p',
    (host) => {
      const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [{ destination: { host, subset: 'v1' } }])
      expect(preflightMessage(seedInput({ vs }))).toBe(
        `route #0 of VirtualService shop/istio-virtualservice routes to host ${JSON.stringify(host)}, which is not a Service of ` +
          'namespace "shop"; expected "<service>", "<service>.shop" or "<service>.shop.svc.cluster.local".'
      )
    }
  )

  it.each(['istio-service.shop', 'istio-service.shop.svc'])('a partial host Istio takes literally: %p', (host) => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [{ destination: { host, subset: 'v1' } }])
    expect(preflightMessage(seedInput({ vs }))).toBe(
      `route #0 of VirtualService shop/istio-virtualservice routes to host ${JSON.stringify(host)}, which Istio takes ` +
        'literally (it expands only names without a dot), so it names no Service; expected "istio-service" or ' +
        '"istio-service.shop.svc.cluster.local".'
    )
  })

  it('a split already in place with no rollout recorded', () => {
    expect(preflightMessage(seedInput({ vs: loadSeed('virtualservice-50-50.yaml', NS) }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice already splits traffic ("v1=50, v2=50") and no rollout is in ' +
        "progress on it; expected one destination carrying all traffic. Set the stable subset's weight to 100 and the " +
        'others to 0 by hand, then run again.'
    )
  })

  it('no destination with weight', () => {
    const vs = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 0 },
      { destination: { host: 'istio-service', subset: 'v0' } }
    ])
    expect(preflightMessage(seedInput({ vs }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice gives no destination a weight above 0 ("v1=0, v0=unset"); ' +
        'expected one destination carrying all traffic.'
    )
  })
})

describe('resolveTopology errors: an unfinished rollout', () => {
  it('input route names another route than the one in progress', () => {
    const state = makeRolloutState({ route: { index: 1, name: 'primary' }, host: 'reviews', destinationRule: 'reviews' })
    expect(preflightMessage(complexInput({ routeName: 'catch-all', existingState: state }))).toBe(
      'Rollout "v2@2025-01-01T00:00:00.000Z" on VirtualService shop/reviews is in progress on route "primary" (#1), not on ' +
        `route "catch-all" (#3); expected input 'route' to name the route in progress. Finish or abort that rollout first.`
    )
  })

  it('the recorded route name is gone', () => {
    const state = makeRolloutState({ route: { index: 1, name: 'main' } })
    expect(preflightMessage(complexInput({ routeName: undefined, existingState: state }))).toBe(
      'VirtualService shop/reviews has no http route named "main" (recorded by rollout "v2@2025-01-01T00:00:00.000Z"); ' +
        'expected one of "debug, primary, legacy, catch-all".'
    )
  })

  it('the recorded route index is gone', () => {
    const state = makeRolloutState({ route: { index: 4 } })
    expect(preflightMessage(seedInput({ existingState: state }))).toBe(
      'VirtualService shop/istio-virtualservice has 1 http routes, but rollout "v2@2025-01-01T00:00:00.000Z" recorded ' +
        'route #4; expected the route it left. Restore the route, or clear the state annotation and start again.'
    )
  })

  it('the route no longer has either subset', () => {
    const state = makeRolloutState({ stable: { version: 'v0', subset: 'v0' }, canary: { version: 'v9', subset: 'v9', deployment: 'd' } })
    expect(preflightMessage(seedInput({ existingState: state }))).toBe(
      'route #0 of VirtualService shop/istio-virtualservice has no destination for subset "v0" or "v9", yet the rollout ' +
        '"v2@2025-01-01T00:00:00.000Z" recorded on it is in phase "progressing"; expected the route it left. The route was ' +
        'changed by hand: restore it, or clear the state annotation and start again.'
    )
  })
})

describe('resolveTopology errors: the DestinationRule', () => {
  it('none for the host', () => {
    expect(preflightMessage(seedInput({ drs: [loadFixture('complex-destinationrule.yaml')] }))).toBe(
      'No DestinationRule in namespace "shop" is for host "istio-service" ("istio-service.shop.svc.cluster.local"), which ' +
        `route #0 of VirtualService shop/istio-virtualservice routes to; expected one defining its subsets. Create it, or set input 'destination-rule'.`
    )
  })

  it('a DestinationRule host Istio takes literally', () => {
    const dr = loadSeed('destinationrule-v1.yaml', NS)
    dr.spec.host = 'istio-service.shop'
    expect(preflightMessage(seedInput({ drs: [dr] }))).toBe(
      'DestinationRule shop/istio-destinationrule is for host "istio-service.shop", which Istio takes literally (it ' +
        'expands only names without a dot), so its subsets do not apply to Service shop/istio-service; expected host ' +
        '"istio-service" or "istio-service.shop.svc.cluster.local".'
    )
  })

  it('several for the host', () => {
    const second = loadSeed('destinationrule-v1.yaml', NS)
    second.metadata.name = 'istio-destinationrule-2'
    expect(preflightMessage(seedInput({ drs: [loadSeed('destinationrule-v1.yaml', NS), second] }))).toBe(
      'Several DestinationRules in namespace "shop" are for host "istio-service.shop.svc.cluster.local" ' +
        `("istio-destinationrule, istio-destinationrule-2"); set input 'destination-rule' to the one holding the subsets.`
    )
  })

  it('the named one does not exist', () => {
    expect(preflightMessage(seedInput({ destinationRuleName: 'nope' }))).toBe(
      `DestinationRule shop/nope (input 'destination-rule') was not found; expected one of "istio-destinationrule" in namespace "shop".`
    )
    expect(preflightMessage(seedInput({ destinationRuleName: 'nope', drs: [] }))).toBe(
      `DestinationRule shop/nope (input 'destination-rule') was not found; expected a DestinationRule in namespace "shop", which has none.`
    )
  })

  it('the named one is for another host', () => {
    expect(preflightMessage(seedInput({ destinationRuleName: 'reviews', drs: [loadFixture('complex-destinationrule.yaml')] }))).toBe(
      'DestinationRule shop/reviews is for host "reviews.shop.svc.cluster.local", but route #0 of VirtualService ' +
        'shop/istio-virtualservice routes to host "istio-service"; expected a DestinationRule for "istio-service.shop.svc.cluster.local".'
    )
  })

  it('another DestinationRule for the host defines the same subset', () => {
    const other = loadSeed('destinationrule-v1-v2.yaml', NS)
    other.metadata.name = 'legacy-rule'
    other.spec.subsets = other.spec.subsets.slice(1)
    const input = seedInput({ drs: [loadSeed('destinationrule-v1.yaml', NS), other], destinationRuleName: 'istio-destinationrule' })
    expect(preflightMessage(input)).toBe(
      'DestinationRule shop/legacy-rule also defines host "istio-service" with subset "v2", like DestinationRule ' +
        'shop/istio-destinationrule; Istio keeps only the first definition of a subset. Expected the subset in one DestinationRule only.'
    )
  })

  it('the stable subset is missing', () => {
    const dr = loadSeed('destinationrule-v1.yaml', NS)
    dr.spec.subsets = [{ name: 'v0', labels: { 'istio-test-version': 'v0' } }]
    expect(preflightMessage(seedInput({ drs: [dr] }))).toBe(
      'DestinationRule shop/istio-destinationrule has no subset "v1", which route #0 of VirtualService ' +
        'shop/istio-virtualservice routes to; expected it among "v0".'
    )
  })

  it('the stable subset also selects the canary pods', () => {
    const dr = loadSeed('destinationrule-v1.yaml', NS)
    dr.spec.subsets[0].labels = { 'istio-test-app': 'istio-test-app' }
    expect(preflightMessage(seedInput({ drs: [dr] }))).toBe(
      'The stable subset "v1" of DestinationRule shop/istio-destinationrule selects labels "istio-test-app=istio-test-app", ' +
        'which the canary pods (labels "istio-test-app=istio-test-app,istio-test-version=v2") also carry: the canary would ' +
        'get stable traffic. Expected the stable subset to select the stable version only (e.g. istio-test-version=v1).'
    )
  })

  it('the canary pods lack the version label', () => {
    expect(preflightMessage(seedInput({ canaryPodLabels: { 'istio-test-app': 'istio-test-app', version: 'v2' } }))).toBe(
      `The canary pods' labels "istio-test-app=istio-test-app,version=v2" lack "istio-test-version=v2": the canary subset ` +
        `"v2" would select no canary pod. Expected the Deployment's pod template to carry label "istio-test-version" with value "v2".`
    )
  })

  it('the canary subset name is taken by a subset with other labels', () => {
    expect(preflightMessage(complexInput({ canarySubset: 'debug' }))).toBe(
      'DestinationRule shop/reviews already has a subset "debug" with labels "version=debug,track=debug"; expected no such ' +
        `subset, or one with labels "version=v2" (a rollout being resumed). Set input 'canary-subset' to an unused name.`
    )
  })

  it('the canary subset is the stable subset', () => {
    expect(preflightMessage(seedInput({ canarySubset: 'v1' }))).toBe(
      'The canary subset "v1" is the stable subset of route #0 of VirtualService shop/istio-virtualservice; expected a new ' +
        `subset name (set input 'canary-subset', or release a version other than "v2").`
    )
  })
})

describe('resolveTopology errors: the Service', () => {
  it('missing', () => {
    expect(preflightMessage(seedInput({ service: undefined }))).toBe(
      'Service shop/istio-service was not found; the route host "istio-service" names it. Expected the Service that selects the pods of every version.'
    )
  })

  it('without a selector', () => {
    const service = loadSeed('service.yaml', NS)
    delete service.spec.selector
    expect(preflightMessage(seedInput({ service }))).toBe(
      'Service shop/istio-service has no selector, so its endpoints do not follow the canary pods; expected a selector ' +
        'that matches the pods of every version (e.g. the app label).'
    )
  })

  it('not selecting the canary pods', () => {
    const service = loadSeed('service.yaml', NS)
    service.spec.selector = { 'istio-test-app': 'istio-test-app', 'istio-test-version': 'v1' }
    expect(preflightMessage(seedInput({ service }))).toBe(
      'Service shop/istio-service selects "istio-test-app=istio-test-app,istio-test-version=v1", which the canary pods ' +
        '(labels "istio-test-app=istio-test-app,istio-test-version=v2") do not carry: no traffic could reach them. Expected ' +
        'the canary pod template to carry every label of the Service selector.'
    )
  })
})

describe('servingSubset', () => {
  it('names the one destination carrying all traffic on the only route, or on the named one', () => {
    expect(servingSubset(loadSeed('virtualservice-v1.yaml', NS), NS)).toBe('v1')
    expect(servingSubset(loadFixture('complex-virtualservice.yaml'), NS, 'primary')).toBe('v1')
  })

  it('is undefined where resolveTopology would refuse: a split, an ambiguous or missing route', () => {
    expect(servingSubset(loadSeed('virtualservice-50-50.yaml', NS), NS)).toBeUndefined()
    expect(servingSubset(loadFixture('complex-virtualservice.yaml'), NS)).toBeUndefined()
    expect(servingSubset(loadSeed('virtualservice-v1.yaml', NS), NS, 'nope')).toBeUndefined()
    const allZero = withRoute(loadSeed('virtualservice-v1.yaml', NS), 0, [
      { destination: { host: 'istio-service', subset: 'v1' }, weight: 0 },
      { destination: { host: 'istio-service', subset: 'v2' }, weight: 0 }
    ])
    expect(servingSubset(allZero, NS)).toBeUndefined()
  })
})

describe('service hosts', () => {
  it.each([
    ['reviews', 'shop', 'reviews.shop.svc.cluster.local'],
    ['reviews.prod', 'shop', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod.svc', 'shop', 'reviews.prod.svc.cluster.local'],
    ['Reviews.Prod.svc.cluster.local.', 'shop', 'reviews.prod.svc.cluster.local']
  ])('%p in namespace %p is %p', (host, ns, fqdn) => {
    expect(parseServiceHost(host, ns)?.fqdn).toBe(fqdn)
  })

  it('flags the partial forms', () => {
    expect(
      ['reviews', 'reviews.shop', 'reviews.shop.svc', 'reviews.shop.svc.cluster.local'].map((h) => parseServiceHost(h, 'shop')?.form)
    ).toEqual(['short', 'partial', 'partial', 'fqdn'])
  })

  it.each(['*', '*.shop.svc.cluster.local', '10.0.0.1', 'api.example.com', 'reviews.shop.svc.other.domain', '', 'a..b'])(
    '%p is not a Service host',
    (host) => {
      expect(parseServiceHost(host, 'shop')).toBeUndefined()
    }
  )

  it('compares hosts written in different namespaces', () => {
    expect(sameServiceHost('reviews', 'shop', 'reviews.shop.svc.cluster.local', 'other')).toBe(true)
    expect(sameServiceHost('reviews', 'shop', 'reviews', 'other')).toBe(false)
  })
})
