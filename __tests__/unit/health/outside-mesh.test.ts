import { readFileSync } from 'node:fs'
import { describe, expect, it } from '@jest/globals'
import { ConfigError } from '../../../src/errors.js'
import { buildOutsideMeshProbe, parseGateConfig } from '../../../src/health/gate-config.js'
import {
  decideOutsideMesh,
  destinationSelector,
  OutsideMeshSubjectError,
  outsideMeshQueries,
  readingOf,
  shareOf,
  type OutsideMeshReading
} from '../../../src/health/outside-mesh.js'
import { parseVectorResponse, type VectorOutcome } from '../../../src/health/prometheus-client.js'
import { renderPlainLog, renderReport } from '../../../src/report/render-report.js'
import type { RunReport } from '../../../src/report/run-report.js'

const json = (body: unknown) => JSON.stringify(body)
const vectorBody = (samples: Array<[Record<string, string>, string]>) =>
  json({ status: 'success', data: { resultType: 'vector', result: samples.map(([metric, v]) => ({ metric, value: [1700000000, v] })) } })
const vec = (samples: Array<[Record<string, string>, number]>): VectorOutcome => ({
  kind: 'vector',
  samples: samples.map(([labels, value]) => ({ labels, value })),
  warnings: []
})
const unknownSource = (service: string) => ({
  source_workload_namespace: 'unknown',
  source_principal: 'unknown',
  destination_service_name: service
})

describe('outsideMeshQueries', () => {
  it('reads the receiving sidecar, counts all requests and those without a sidecar or a peer principal, per source', () => {
    const q = outsideMeshQueries({ namespace: 'shop', workload: 'reviews-v1' }, 600)
    const sel = 'reporter="destination",destination_workload_namespace="shop",destination_workload="reviews-v1"'
    expect(q.total).toBe(`sum(rate(istio_requests_total{${sel}}[600s]))`)
    expect(q.outside).toBe(
      `sum by (source_workload_namespace, source_principal, destination_service_name) (rate(istio_requests_total{${sel},source_workload="unknown",source_principal=~"unknown|"}[600s]))`
    )
  })

  it('rounds the window to whole seconds, at least one', () => {
    expect(outsideMeshQueries({ namespace: 'a', workload: 'b' }, 29.6).total).toContain('[30s]')
    expect(outsideMeshQueries({ namespace: 'a', workload: 'b' }, 0.2).total).toContain('[1s]')
  })

  it.each([
    [
      'a quote that would close the string',
      { namespace: 'shop', workload: 'x",reporter=~".*' },
      /workload "x\\",reporter=~\\"\.\*" is not a DNS-1123 name/
    ],
    ['a regex in the namespace', { namespace: 'shop|prod', workload: 'w' }, /namespace "shop\|prod" is not a DNS-1123 label/],
    ['a newline', { namespace: 'shop', workload: 'w\n}' }, /is not a DNS-1123 name/],
    ['an empty name', { namespace: '', workload: 'w' }, /namespace "" is not a DNS-1123 label/]
  ])('refuses %s instead of widening the selector', (_what, subject, message) => {
    expect(() => destinationSelector(subject)).toThrow(OutsideMeshSubjectError)
    expect(() => outsideMeshQueries(subject, 60)).toThrow(message)
  })

  it('accepts a dotted workload name as one literal value', () => {
    expect(destinationSelector({ namespace: 'shop', workload: 'reviews.v1' })).toContain('destination_workload="reviews.v1"')
  })
})

describe('parseVectorResponse', () => {
  it('keeps every series with its labels', () => {
    const out = parseVectorResponse(
      200,
      'application/json',
      vectorBody([
        [{ a: '1' }, '2.5'],
        [{ a: '2' }, 'NaN']
      ])
    )
    expect(out).toEqual({
      kind: 'vector',
      samples: [
        { labels: { a: '1' }, value: 2.5 },
        { labels: { a: '2' }, value: NaN }
      ],
      warnings: []
    })
  })

  it('an empty vector is a vector without samples, not an error', () => {
    expect(parseVectorResponse(200, 'application/json', vectorBody([]))).toEqual({ kind: 'vector', samples: [], warnings: [] })
  })

  it('passes Prometheus errors through and refuses other result types', () => {
    const bad = parseVectorResponse(400, 'application/json', json({ status: 'error', errorType: 'bad_data', error: 'parse error' }))
    expect(bad).toMatchObject({ kind: 'error', rejected: true, reason: expect.stringContaining('parse error') })
    const matrix = parseVectorResponse(200, 'application/json', json({ status: 'success', data: { resultType: 'matrix', result: [] } }))
    expect(matrix).toMatchObject({ kind: 'error', rejected: true })
    const html = parseVectorResponse(502, 'text/html', '<html>bad gateway</html>')
    expect(html).toMatchObject({ kind: 'error', reason: expect.stringContaining('HTTP 502') })
  })
})

describe('readingOf', () => {
  const total = (rps: number) => vec([[{}, rps]])

  it('no series, or zero requests, is unknown: not zero', () => {
    expect(readingOf(vec([]), vec([]), 600)).toEqual({
      kind: 'unknown',
      windowSeconds: 600,
      reason: 'no requests were recorded at reporter="destination" in the last 10m'
    })
    expect(readingOf(total(0), vec([]), 90)).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('in the last 90s') })
  })

  it('a Prometheus error on either query is unknown, with its reason', () => {
    const err: VectorOutcome = { kind: 'error', reason: 'timed out after 10s', warnings: [] }
    expect(readingOf(err, vec([]), 600)).toMatchObject({ kind: 'unknown', reason: expect.stringContaining('timed out after 10s') })
    expect(readingOf(total(5), err, 600)).toMatchObject({
      kind: 'unknown',
      reason: expect.stringContaining('from outside the mesh: timed out')
    })
  })

  it('requests but none from outside the mesh is a measured zero', () => {
    expect(readingOf(total(40), vec([]), 600)).toEqual({
      kind: 'measured',
      windowSeconds: 600,
      totalRps: 40,
      outsideRps: 0,
      percent: 0,
      sources: []
    })
  })

  it('adds up the sources, largest first, and gives the share in percent', () => {
    const r = readingOf(
      total(40),
      vec([
        [unknownSource('istio-service'), 2],
        [{ source_workload_namespace: 'batch', source_principal: 'unknown', destination_service_name: 'istio-service' }, 8],
        [unknownSource('other'), 0]
      ]),
      600
    )
    expect(r).toMatchObject({ kind: 'measured', outsideRps: 10, percent: 25 })
    expect(r.kind === 'measured' && r.sources.map((s) => [s.namespace, s.rps])).toEqual([
      ['batch', 8],
      ['unknown', 2]
    ])
  })

  it('never says more than 100 % (the two queries read the counters a moment apart)', () => {
    expect(readingOf(total(10), vec([[unknownSource('s'), 10.2]]), 600)).toMatchObject({ percent: 100 })
  })
})

describe('decideOutsideMesh', () => {
  const facts = { stableVersion: 'v1', stableWorkload: 'istio-deployment-v1', service: { name: 'istio-service', selectsCanary: true } }
  const measured = (outsideRps: number, totalRps = 40): OutsideMeshReading => ({
    kind: 'measured',
    windowSeconds: 600,
    totalRps,
    outsideRps,
    percent: (outsideRps / totalRps) * 100,
    sources: outsideRps > 0 ? [{ namespace: 'unknown', principal: 'unknown', service: 'istio-service', rps: outsideRps }] : []
  })
  const unknown: OutsideMeshReading = {
    kind: 'unknown',
    windowSeconds: 600,
    reason: 'no requests were recorded at reporter="destination" in the last 10m'
  }

  it('warn: names the share, the rate, the source, what those callers do and where the docs say what to do', () => {
    const d = decideOutsideMesh('warn', measured(10), facts)
    expect(d.level).toBe('warning')
    const message = d.level === 'warning' ? d.message : ''
    expect(message).toContain(
      '25 % of the requests to the stable version v1 (Deployment istio-deployment-v1) in the last 10m came from outside the mesh'
    )
    expect(message).toContain('10 of 40 req/s')
    expect(message).toContain('10 req/s from callers Istio cannot identify via Service istio-service')
    expect(message).toContain(
      'Service istio-service selects the pods of both versions, so kube-proxy sends them to the canary by pod count, unweighted, from its first Ready pod'
    )
    expect(message).toContain('PeerAuthentication mode STRICT')
    expect(message).toContain('README, "Callers outside the mesh"')
  })

  it('fail: refuses with the same explanation, naming the input and saying nothing was changed', () => {
    const d = decideOutsideMesh('fail', measured(0.5), facts)
    expect(d.level).toBe('refuse')
    expect(d.level === 'refuse' && d.message).toMatch(
      /1\.25 % of the requests .* input 'outside-mesh' is "fail" \(set it to "warn" to start anyway\)\. Nothing was changed\.$/
    )
  })

  it('ignore decides nothing, whatever the reading', () => {
    expect(decideOutsideMesh('ignore', measured(10), facts)).toEqual({ level: 'none' })
    expect(decideOutsideMesh('ignore', unknown, facts)).toEqual({ level: 'none' })
  })

  it('a measured zero is said, not warned', () => {
    expect(decideOutsideMesh('fail', measured(0), facts)).toEqual({
      level: 'info',
      message:
        'No requests from outside the mesh reached the stable version v1 (Deployment istio-deployment-v1) in the last 10m (40 req/s, all from callers with a sidecar).'
    })
  })

  it('no data is a warning that says inconclusive, also under fail', () => {
    for (const policy of ['warn', 'fail'] as const) {
      const d = decideOutsideMesh(policy, unknown, facts)
      expect(d.level).toBe('warning')
      expect(d.level === 'warning' && d.message).toMatch(
        /^could not tell whether callers outside the mesh reach the stable version v1 .*inconclusive, not zero/
      )
    }
  })

  it('says when the Service of the route leaves the canary out, and when the Service is not known', () => {
    const other = decideOutsideMesh('warn', measured(4), { ...facts, service: { name: 'istio-service', selectsCanary: false } })
    expect(other.level === 'warning' && other.message).toContain("Service istio-service does not select the canary's pods")
    const none = decideOutsideMesh('warn', measured(4), { stableVersion: 'v1' })
    expect(none.level === 'warning' && none.message).toContain('the requests to the stable version v1 in the last 10m')
    expect(none.level === 'warning' && none.message).toContain('wherever a Service selects its pods')
  })

  it('names a source namespace when Istio knows it, and a tiny share is never 0 %', () => {
    const reading: OutsideMeshReading = {
      kind: 'measured',
      windowSeconds: 600,
      totalRps: 100000,
      outsideRps: 0.005,
      percent: 0.000005,
      sources: [{ namespace: 'batch', principal: 'unknown', service: 'istio-service', rps: 0.005 }]
    }
    const d = decideOutsideMesh('warn', reading, facts)
    expect(d.level === 'warning' && d.message).toMatch(/^< 0\.01 % of the requests/)
    expect(d.level === 'warning' && d.message).toContain('from namespace batch via Service istio-service')
  })
})

describe('shareOf', () => {
  it('keeps a compact figure, or why there is none', () => {
    expect(shareOf({ kind: 'measured', windowSeconds: 6, totalRps: 30, outsideRps: 10, percent: 33.33333, sources: [] })).toEqual({
      percent: 33.33,
      rps: 10
    })
    expect(shareOf({ kind: 'unknown', windowSeconds: 6, reason: 'no requests' })).toEqual({ detail: 'no requests' })
  })
})

describe("input 'outside-mesh'", () => {
  const PROM = { 'prometheus-url': 'http://prometheus:9090', 'success-rate': '99' }

  it('defaults to warn, and ignore builds no probe', () => {
    expect(parseGateConfig(PROM).prometheus?.outsideMesh).toBe('warn')
    expect(buildOutsideMeshProbe(parseGateConfig(PROM))?.policy).toBe('warn')
    expect(buildOutsideMeshProbe(parseGateConfig({ ...PROM, 'outside-mesh': 'fail' }))?.policy).toBe('fail')
    expect(buildOutsideMeshProbe(parseGateConfig({ ...PROM, 'outside-mesh': 'ignore' }))).toBeUndefined()
    expect(buildOutsideMeshProbe(parseGateConfig({}))).toBeUndefined()
  })

  it('refuses an unknown value, naming the input and quoting it', () => {
    expect(() => parseGateConfig({ ...PROM, 'outside-mesh': 'Refuse' })).toThrow(
      new ConfigError(`Input 'outside-mesh' is invalid: expected warn, fail or ignore (got "Refuse").`)
    )
  })

  it('fail without a Prometheus to ask is an error, not a silent pass', () => {
    expect(() => parseGateConfig({ 'outside-mesh': 'fail' })).toThrow(/Input 'outside-mesh' is "fail" but 'prometheus-url' is not set/)
    expect(parseGateConfig({ 'outside-mesh': 'warn' }).prometheus).toBeUndefined()
  })
})

describe('the report', () => {
  const promoted = (): RunReport => JSON.parse(readFileSync('__tests__/fixtures/reports/promoted.json', 'utf8')) as RunReport

  it("shows each step's share of canary requests from outside the mesh beside its checks", () => {
    const report = promoted()
    const evaluations = report.state!.history.filter((e) => e.kind === 'gates').map((e) => e.evaluation!)
    evaluations.forEach((e, i) => {
      e.outsideMesh = i < 2 ? { percent: 12.5, rps: 5 } : i === 2 ? { detail: 'no requests were recorded' } : { percent: 0, rps: 0 }
    })
    const md = renderReport(report)
    const rows = md.split('\n').filter((l) => /^\| \d+ \|/.test(l))
    // The Markdown keeps a number and its unit together with a no-break space.
    expect(rows[0]).toMatch(/outside the mesh: 12\.5\s% of canary requests/)
    expect(rows[1]).toMatch(/outside the mesh: 0\s% of canary requests/)
    expect(renderPlainLog(report)).toMatch(/step 1: 10 % .*; outside the mesh: 12\.5 % of canary requests/)
  })

  it('says nothing about it when no evaluation measured it', () => {
    expect(renderReport(promoted())).not.toContain('outside the mesh')
  })
})
