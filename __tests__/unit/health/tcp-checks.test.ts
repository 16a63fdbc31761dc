import * as fs from 'node:fs'
import { buildGates, parseGateConfig } from '../../../src/health/gate-config.js'

const PROM = { 'prometheus-url': 'http://prometheus:9090' }

/** The `checks` of the README's TCP example, as a user would paste them. */
function readmeTcpChecks(): string {
  const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('### TCP routes'))
  const block = section.slice(section.indexOf('```yaml'), section.indexOf('```', section.indexOf('```yaml') + 3))
  const lines = block.split('\n')
  expect(block).toMatch(/min-requests: 0 /)
  const start = lines.findIndex((l) => l.trim() === 'checks: |')
  const indent = lines[start + 1].search(/\S/)
  return lines
    .slice(start + 1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.slice(indent))
    .join('\n')
}

const httpOnly = (inputs: Record<string, string>): string[] =>
  buildGates(parseGateConfig({ ...PROM, ...inputs }, {})).flatMap((g) => g.httpOnlyChecks?.() ?? [])

describe('checks for a TCP route', () => {
  it("the README's TCP checks parse and count no HTTP request", () => {
    const checks = readmeTcpChecks()
    expect(parseGateConfig({ ...PROM, checks }, {}).prometheus!.checks.map((c) => c.name)).toEqual([
      'connection-errors',
      'connections-opened'
    ])
    expect(httpOnly({ checks, 'min-requests': '0' })).toEqual([])
  })

  it('names every check over the HTTP metrics: built-in ones, min-requests, and custom ones', () => {
    expect(
      httpOnly({
        'success-rate': '99',
        'latency-p99-vs-stable': '20',
        'min-requests': '10',
        checks: '- name: http-errors\n  query: sum(rate(istio_requests_total{response_code=~"5.."}[{{interval}}]))\n  max: 1'
      })
    ).toEqual([
      "success-rate (input 'success-rate')",
      "latency-p99-vs-stable (input 'latency-p99-vs-stable')",
      "http-errors (input 'checks')",
      "min-requests (input 'min-requests')"
    ])
  })
})
