import { describe, expect, it } from '@jest/globals'
import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { serviceKey, serviceReferences, subsetReferences } from '../../../../src/traffic/istio/subset-references.js'

function vs(namespace: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { namespace, name }, spec }
}
const to = (host: string, subset: string, weight?: number) => ({
  destination: { host, subset },
  ...(weight !== undefined ? { weight } : {})
})

const target = { host: 'reviews', namespace: 'shop', subset: 'v1' }
const ours = { namespace: 'shop', virtualService: 'reviews', routeIndex: 1 }

describe('serviceKey', () => {
  it.each([
    ['reviews', 'shop', 'reviews.shop'],
    ['reviews.shop', 'other', 'reviews.shop'],
    ['reviews.shop.svc', 'other', 'reviews.shop'],
    ['reviews.shop.svc.cluster.local', 'other', 'reviews.shop'],
    ['reviews.shop.svc.corp.example.', 'other', 'reviews.shop'],
    ['api.example.com', 'shop', 'api.example.com']
  ])('%s in %s is %s', (host, ns, key) => {
    expect(serviceKey(host, ns)).toBe(key)
  })
})

describe('subsetReferences', () => {
  it('finds another route of the same VirtualService, but not our own', () => {
    const v = vs('shop', 'reviews', {
      http: [
        { name: 'beta-testers', match: [{ headers: {} }], route: [to('reviews', 'v1')] },
        { name: 'primary', route: [to('reviews', 'v2', 100)] }
      ]
    })
    expect(subsetReferences([v], target, ours)).toEqual(['VirtualService shop/reviews http route "beta-testers"'])
    const onlyOurs = vs('shop', 'reviews', { http: [{ route: [to('reviews', 'v2')] }, { route: [to('reviews', 'v1')] }] })
    expect(subsetReferences([onlyOurs], target, ours)).toEqual([])
  })

  it('finds another VirtualService of the namespace, mirrors and tcp routes included', () => {
    const a = vs('shop', 'reviews-internal', {
      http: [{ route: [to('reviews.shop.svc.cluster.local', 'v2')], mirror: { host: 'reviews', subset: 'v1' } }]
    })
    const b = vs('shop', 'reviews-tcp', { tcp: [{ route: [to('reviews', 'v1')] }] })
    expect(subsetReferences([a, b], target, ours)).toEqual([
      'VirtualService shop/reviews-internal http route #0',
      'VirtualService shop/reviews-tcp tcp route #0'
    ])
  })

  it('resolves hosts in the namespace of the VirtualService that names them', () => {
    const sameNameElsewhere = vs('other', 'reviews', { http: [{ route: [to('reviews', 'v1')] }] })
    const ourHostElsewhere = vs('other', 'frontend', { http: [{ route: [to('reviews.shop.svc.cluster.local', 'v1')] }] })
    expect(subsetReferences([sameNameElsewhere, ourHostElsewhere], target, ours)).toEqual(['VirtualService other/frontend http route #0'])
  })

  it('ignores other subsets and other hosts', () => {
    const v = vs('shop', 'x', { http: [{ route: [to('reviews', 'v10'), to('ratings', 'v1')] }], tls: [{ route: [to('reviews', 'v2')] }] })
    expect(subsetReferences([v], target, ours)).toEqual([])
  })
})

describe('serviceReferences', () => {
  const service = { host: 'reviews-v1', namespace: 'shop' }

  it('finds routes and mirrors on the Service, with or without a subset, but not the excluded route', () => {
    const v = vs('shop', 'reviews', {
      http: [
        { name: 'primary', route: [{ destination: { host: 'reviews-v2' } }] },
        { name: 'old', route: [{ destination: { host: 'reviews-v1' } }] },
        { route: [to('reviews-v2', 'x')], mirror: { host: 'reviews-v1.shop.svc.cluster.local' } },
        { route: [to('reviews-v2', 'x')], mirrors: [{ destination: { host: 'reviews-v1', subset: 'any' } }] }
      ],
      tls: [{ route: [to('reviews-v1', 'v1')] }]
    })
    expect(serviceReferences([v], service, { namespace: 'shop', virtualService: 'reviews', routeIndex: 1 })).toEqual([
      'VirtualService shop/reviews http route #2',
      'VirtualService shop/reviews http route #3',
      'VirtualService shop/reviews tls route #0'
    ])
    expect(serviceReferences([v], service)).toContain('VirtualService shop/reviews http route "old"')
  })

  it('resolves short hosts in the namespace of the VirtualService that names them', () => {
    const sameNameElsewhere = vs('other', 'a', { http: [{ route: [{ destination: { host: 'reviews-v1' } }] }] })
    const ourServiceElsewhere = vs('other', 'b', { tcp: [{ route: [{ destination: { host: 'reviews-v1.shop' } }] }] })
    expect(serviceReferences([sameNameElsewhere, ourServiceElsewhere], service)).toEqual(['VirtualService other/b tcp route #0'])
  })
})
