/**
 * A clone stands alone: nothing committed reads a folder beside the checkout, the seed scenario
 * is the project's own example, and the CRDs the local cluster serves are pinned beside the other
 * component versions (test-cluster/build.sh copies them from those modules).
 */
import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as yaml from 'js-yaml'

const root = process.cwd()

/** Tracked files (what a clone gets). */
function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean)
}

describe('a clone stands alone', () => {
  it('no tracked file refers to a shared folder beside the checkout', () => {
    // Built from parts so that this file does not match itself.
    const outside = new RegExp(['\\.\\./shared\\b', '\\bshared/(seed|k8s|docs)\\b', 'ISTIO_CANARY_' + 'SHARED'].join('|'))
    const files = trackedFiles()
    expect(files).toContain('test-cluster/up.sh')
    const hits: string[] = []
    for (const file of files) {
      if (file === 'package-lock.json' || !fs.existsSync(file)) continue
      const text = fs.readFileSync(path.join(root, file), 'utf8')
      text.split('\n').forEach((line, i) => {
        if (outside.test(line)) hits.push(`${file}:${i + 1}: ${line.trim().slice(0, 120)}`)
      })
    }
    expect(hits).toEqual([])
  })

  it('carries the seed scenario in examples/seed/, as the article wrote it', () => {
    const dir = path.join(root, 'examples', 'seed')
    const read = (file: string) =>
      yaml.load(fs.readFileSync(path.join(dir, file), 'utf8')) as {
        apiVersion: string
        kind: string
        metadata: { name: string }
        spec: Record<string, any>
      }
    const objects = Object.fromEntries(
      [
        'deployment-v1',
        'deployment-v2',
        'service',
        'destinationrule-v1',
        'destinationrule-v1-v2',
        'virtualservice-v1',
        'virtualservice-50-50'
      ].map((name) => [name, read(`${name}.yaml`)])
    )
    expect(Object.fromEntries(Object.entries(objects).map(([f, o]) => [f, `${o.apiVersion} ${o.kind} ${o.metadata.name}`]))).toEqual({
      'deployment-v1': 'apps/v1 Deployment istio-deployment-v1',
      'deployment-v2': 'apps/v1 Deployment istio-deployment-v2',
      service: 'v1 Service istio-service',
      'destinationrule-v1': 'networking.istio.io/v1alpha3 DestinationRule istio-destinationrule',
      'destinationrule-v1-v2': 'networking.istio.io/v1alpha3 DestinationRule istio-destinationrule',
      'virtualservice-v1': 'networking.istio.io/v1alpha3 VirtualService istio-virtualservice',
      'virtualservice-50-50': 'networking.istio.io/v1alpha3 VirtualService istio-virtualservice'
    })
    expect(objects['deployment-v1']!.spec.template.metadata.labels['istio-test-version']).toBe('v1')
    expect(objects['deployment-v2']!.spec.template.metadata.labels['istio-test-version']).toBe('v2')
  })

  it('pins the Istio and Gateway API versions whose CRDs the local cluster serves', () => {
    const pins = Object.fromEntries(
      fs
        .readFileSync(path.join(root, 'test-cluster', 'versions.env'), 'utf8')
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
    )
    expect(pins.ISTIO_VERSION).toMatch(/^v\d+\.\d+\.\d+(-\S+)?$/)
    expect(pins.ISTIO_API_VERSION).toMatch(/^v1\.\d+\.\d+(-\S+)?$/)
    expect(pins.GATEWAY_API_VERSION).toMatch(/^v1\.\d+\.\d+$/)
    const build = fs.readFileSync(path.join(root, 'test-cluster', 'build.sh'), 'utf8')
    expect(build).toContain('istio.io/api@$ISTIO_API_VERSION')
    expect(build).toContain('sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION')
  })
})
