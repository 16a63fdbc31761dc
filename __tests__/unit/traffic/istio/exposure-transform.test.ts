import type { KubeObject } from '../../../../src/kube/kube-object.js'
import { ConflictError } from '../../../../src/errors.js'
import type { Exposure } from '../../../../src/rollout/types.js'
import {
  exposureRefusal,
  hasExposure,
  headerCondition,
  showsExposure,
  withExposure
} from '../../../../src/traffic/istio/exposure-transform.js'
import { routeIndexOf, routePosition, withSplit } from '../../../../src/traffic/istio/virtual-service-transform.js'
import { loadSeed } from '../../../fixtures/istio/load-fixture.js'
import { thrown } from './thrown.js'

const header: Exposure = { kind: 'match', match: { on: 'header', name: 'x-canary', op: 'exact', value: 'always' } }
const mirror50: Exposure = { kind: 'mirror', percent: 50 }

/** The seed at 100/0 with the canary destination at weight 0, as a match or mirror step's split leaves it. */
function seedAtZero(): KubeObject {
  return withSplit(loadSeed('virtualservice-v1.yaml'), 0, 'istio-service', 'v1', 'v2', 0)
}

/** A VirtualService with a first route the rollout does not drive, then a driven one with its own match and retries. */
function twoRoutes(): KubeObject {
  const vs = seedAtZero()
  const driven = {
    ...vs.spec.http[0],
    match: [
      { uri: { prefix: '/api' }, withoutHeaders: { 'x-debug': { exact: '1' } } },
      { uri: { prefix: '/v2' }, headers: { 'x-team': { exact: 'a' } } }
    ],
    retries: { attempts: 3 }
  }
  const other = {
    name: 'static',
    match: [{ uri: { prefix: '/static' } }],
    route: [{ destination: { host: 'istio-service', subset: 'v1' } }]
  }
  return { ...vs, spec: { ...vs.spec, http: [other, driven] } }
}

describe('withExposure: a match step', () => {
  it('inserts a route of its own before the driven one, sending only the matching requests to the canary', () => {
    const vs = withExposure(seedAtZero(), 0, 'istio-service', 'v2', header)
    expect(vs.spec.http).toHaveLength(2)
    expect(vs.spec.http[0]).toEqual({
      name: 'istio-canary-v2',
      match: [{ headers: { 'x-canary': { exact: 'always' } } }],
      route: [{ destination: { host: 'istio-service', subset: 'v2' } }]
    })
    expect(vs.spec.http[1]).toEqual(seedAtZero().spec.http[0])
  })

  it('narrows each of the driven route’s matches (withoutHeaders kept as written) and keeps its other fields, but not its mirror', () => {
    const base = twoRoutes()
    base.spec.http[1].mirror = { host: 'elsewhere', subset: 'x' }
    const vs = withExposure(base, 1, 'istio-service', 'v2', header)
    expect(vs.spec.http.map((r: { name?: string }) => r.name)).toEqual(['static', 'istio-canary-v2', undefined])
    expect(vs.spec.http[1]).toEqual({
      name: 'istio-canary-v2',
      match: [
        { uri: { prefix: '/api' }, withoutHeaders: { 'x-debug': { exact: '1' } }, headers: { 'x-canary': { exact: 'always' } } },
        { uri: { prefix: '/v2' }, headers: { 'x-team': { exact: 'a' }, 'x-canary': { exact: 'always' } } }
      ],
      retries: { attempts: 3 },
      route: [{ destination: { host: 'istio-service', subset: 'v2' } }]
    })
    expect(vs.spec.http[2]).toBe(base.spec.http[1])
  })

  it('refuses a driven route that already matches the header', () => {
    const base = twoRoutes()
    const e = thrown(() =>
      withExposure(base, 1, 'istio-service', 'v2', { kind: 'match', match: { on: 'header', name: 'x-team', op: 'exact', value: 'b' } })
    )
    expect(e).toBeInstanceOf(ConflictError)
    expect(e.message).toMatch(/already matches header "x-team"/)
  })

  it('is idempotent, replaces another match, and without an exposure removes every route of ours', () => {
    const once = withExposure(seedAtZero(), 0, 'istio-service', 'v2', header)
    expect(withExposure(once, 1, 'istio-service', 'v2', header)).toEqual(once)
    const cookie: Exposure = { kind: 'match', match: { on: 'cookie', name: 'beta', op: 'exact', value: 'yes' } }
    const replaced = withExposure(once, 1, 'istio-service', 'v2', cookie)
    expect(replaced.spec.http).toHaveLength(2)
    expect(replaced.spec.http[0].match).toEqual([{ headers: { cookie: { regex: '^(.*?[;,]\\s*)?beta=yes([;,].*)?$' } } }])
    expect(withExposure(replaced, 1, 'istio-service', 'v2', undefined).spec.http).toEqual(seedAtZero().spec.http)
  })

  it('leaves a VirtualService without anything of ours as it is (the same object)', () => {
    const vs = seedAtZero()
    expect(withExposure(vs, 0, 'istio-service', 'v2', undefined)).toBe(vs)
  })
})

describe('withExposure: a mirror step', () => {
  it('mirrors from the driven route to the canary at the percentage, and removes only its own mirror', () => {
    const vs = withExposure(seedAtZero(), 0, 'istio-service', 'v2', mirror50)
    expect(vs.spec.http[0].mirror).toEqual({ host: 'istio-service', subset: 'v2' })
    expect(vs.spec.http[0].mirrorPercentage).toEqual({ value: 50 })
    const removed = withExposure(vs, 0, 'istio-service', 'v2', undefined)
    expect(removed.spec.http).toEqual(seedAtZero().spec.http)
    // A mirror to another subset is someone else's: kept without a mirror step, refused with one.
    const theirs = seedAtZero()
    theirs.spec.http[0].mirror = { host: 'istio-service', subset: 'v1' }
    expect(withExposure(theirs, 0, 'istio-service', 'v2', undefined)).toBe(theirs)
    expect(thrown(() => withExposure(theirs, 0, 'istio-service', 'v2', mirror50)).message).toMatch(
      /already mirrors to .*expected no mirror of its own/
    )
    expect(exposureRefusal(theirs, 0, 'istio-service', 'v2', [header, mirror50])).toMatch(/already mirrors/)
    expect(exposureRefusal(seedAtZero(), 0, 'istio-service', 'v2', [header, mirror50])).toBeUndefined()
  })

  it('a match step removes a mirror step’s mirror, and the other way round', () => {
    const mirrored = withExposure(seedAtZero(), 0, 'istio-service', 'v2', mirror50)
    const matched = withExposure(mirrored, 0, 'istio-service', 'v2', header)
    expect(matched.spec.http[1].mirror).toBeUndefined()
    expect(hasExposure(matched, 1, 'v2')).toBe(true)
    const back = withExposure(matched, 1, 'istio-service', 'v2', mirror50)
    expect(back.spec.http).toHaveLength(1)
    expect(back.spec.http[0].mirrorPercentage).toEqual({ value: 50 })
  })
})

describe('showsExposure', () => {
  it('compares regardless of the key order the apiserver returns', () => {
    const vs = withExposure(seedAtZero(), 0, 'istio-service', 'v2', header)
    const reordered = JSON.parse(
      JSON.stringify(vs, (_k, v: unknown) =>
        v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v
      )
    )
    expect(showsExposure(reordered, 1, 'istio-service', 'v2', header)).toBe(true)
    expect(showsExposure(reordered, 1, 'istio-service', 'v2', undefined)).toBe(false)
    expect(showsExposure(seedAtZero(), 0, 'istio-service', 'v2', header)).toBe(false)
    expect(showsExposure(seedAtZero(), 0, 'istio-service', 'v2', undefined)).toBe(true)
  })
})

describe('headerCondition', () => {
  it.each<[Exposure & { kind: 'match' }, string, object]>([
    [{ kind: 'match', match: { on: 'header', name: 'x-user', op: 'regex', value: '^(ann|bob)$' } }, 'x-user', { regex: '^(ann|bob)$' }],
    [
      { kind: 'match', match: { on: 'cookie', name: 'a.b', op: 'exact', value: 'x+y' } },
      'cookie',
      { regex: '^(.*?[;,]\\s*)?a\\.b=x\\+y([;,].*)?$' }
    ],
    [
      { kind: 'match', match: { on: 'cookie', name: 'grp', op: 'regex', value: 'a|b' } },
      'cookie',
      { regex: '^(.*?[;,]\\s*)?grp=(?:a|b)([;,].*)?$' }
    ]
  ])('%j', (e, name, condition) => {
    expect(headerCondition(e.match)).toEqual({ header: name, condition })
  })

  it('the cookie regex matches the cookie wherever it stands, and no cookie that only ends with its name', () => {
    const { condition } = headerCondition({ on: 'cookie', name: 'beta', op: 'exact', value: 'yes' })
    const re = new RegExp((condition as { regex: string }).regex)
    expect(['beta=yes', 'a=1; beta=yes', 'a=1;beta=yes; c=2', 'a=1, beta=yes'].map((c) => re.test(c))).toEqual([true, true, true, true])
    expect(['notbeta=yes', 'beta=no', 'beta=yesno', 'a=beta=yes'].map((c) => re.test(c))).toEqual([false, false, false, false])
  })
})

describe('routes recorded by position skip the routes of ours', () => {
  it('finds the driven route behind an inserted match route, and records its position without it', () => {
    const vs = withExposure(seedAtZero(), 0, 'istio-service', 'v2', header)
    expect(routeIndexOf(vs, { index: 0 })).toBe(1)
    expect(routePosition(vs, 1)).toBe(0)
    expect(routeIndexOf(vs, { index: 1 })).toBe(-1)
  })
})
