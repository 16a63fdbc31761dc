import { defaultCanarySubset, isDns1123Label, isDns1123Subdomain, isLabelKey, isLabelValue } from '../../../src/config/kube-names.js'

describe('Kubernetes name syntax', () => {
  it('DNS-1123 labels', () => {
    for (const ok of ['a', 'default', 'team-a', 'a1', '0', 'x'.repeat(63)]) expect(isDns1123Label(ok)).toBe(true)
    for (const bad of ['', 'A', 'a.b', '-a', 'a-', 'a_b', 'x'.repeat(64)]) expect(isDns1123Label(bad)).toBe(false)
  })

  it('DNS-1123 subdomains', () => {
    for (const ok of ['istio-deployment-v2', 'a.b.c', 'x'.repeat(253)]) expect(isDns1123Subdomain(ok)).toBe(true)
    for (const bad of ['', 'Web', 'a..b', '.a', 'a.', 'x'.repeat(254)]) expect(isDns1123Subdomain(bad)).toBe(false)
  })

  it('label keys, with and without a prefix', () => {
    for (const ok of ['version', 'istio-test-version', 'app.kubernetes.io/version', 'A_b.c', 'x'.repeat(63)])
      expect(isLabelKey(ok)).toBe(true)
    for (const bad of ['', '/version', 'Example.com/v', 'a/', 'a/b/c', '-v', 'x'.repeat(64), 'ver sion'])
      expect(isLabelKey(bad)).toBe(false)
  })

  it('label values', () => {
    for (const ok of ['', 'v2', '1.4.0', 'V_2-rc.1', 'x'.repeat(63)]) expect(isLabelValue(ok)).toBe(true)
    for (const bad of ['-v2', 'v2.', 'a b', 'a/b', 'x'.repeat(64)]) expect(isLabelValue(bad)).toBe(false)
  })

  it('default subset: the version when it is a DNS-1123 label, else a sanitized form', () => {
    expect(defaultCanarySubset('v2')).toBe('v2')
    expect(defaultCanarySubset('v1.2.0')).toBe('v1-2-0')
    expect(defaultCanarySubset('Release_7')).toBe('release-7')
    expect(defaultCanarySubset('_._')).toBe('canary')
    expect(isDns1123Label(defaultCanarySubset(`${'A'.repeat(62)}.b`))).toBe(true)
  })
})
