/**
 * action.yml, the code and the README must agree: every input the code reads is declared with the
 * same default, every declared input is read, the outputs match, the README shows them all and
 * the very Role the RBAC test runs with.
 */
import { describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as yaml from 'js-yaml'
import { INPUT, INPUT_DEFAULTS } from '../../src/config/input-names.js'
import { GATE_INPUTS } from '../../src/health/gate-config.js'
import { GITHUB_INPUTS } from '../../src/report/github-config.js'
import { OUTPUTS } from '../../src/report/outputs.js'

interface ActionYml {
  name: string
  description: string
  branding: { icon: string; color: string }
  inputs: Record<string, { description: string; required?: boolean; default?: string }>
  outputs: Record<string, { description: string }>
  runs: { using: string; main: string; post?: string }
}

const action = yaml.load(fs.readFileSync('action.yml', 'utf8')) as ActionYml
const readme = fs.readFileSync('README.md', 'utf8')

describe('action.yml', () => {
  it('declares exactly the inputs the code reads', () => {
    const read = [...Object.values(INPUT), ...Object.keys(GATE_INPUTS), ...Object.keys(GITHUB_INPUTS)].sort()
    expect(Object.keys(action.inputs).sort()).toEqual(read)
  })

  it('gives each input the default the code assumes, and a description', () => {
    const defaults: Record<string, string | undefined> = { ...INPUT_DEFAULTS }
    for (const [name, spec] of Object.entries(GATE_INPUTS)) defaults[name] = (spec as { default?: string }).default
    for (const [name, spec] of Object.entries(GITHUB_INPUTS)) defaults[name] = (spec as { default?: string }).default
    for (const [name, spec] of Object.entries(action.inputs)) {
      expect([name, spec.default]).toEqual([name, defaults[name]])
      expect(spec.description.length).toBeGreaterThan(20)
    }
  })

  it('declares exactly the outputs the reporter sets', () => {
    expect(Object.keys(action.outputs).sort()).toEqual(Object.keys(OUTPUTS).sort())
  })

  it('runs on node24 from the committed bundle, with a post step for cancelled runs', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/post.js' })
    expect(fs.existsSync(action.runs.main)).toBe(true)
    expect(fs.existsSync(action.runs.post!)).toBe(true)
    expect(action.branding.icon).toBeTruthy()
  })
})

describe('README', () => {
  it('starts with the two set-up command lines: the demo and the whole test suite', () => {
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
    const lines = block.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^bash scripts\/setup\.sh && npm run demo\b/)
    expect(lines[1]).toMatch(/^bash scripts\/setup\.sh && npm test\b/)
    expect(readme.indexOf('```sh')).toBeLessThan(40)
  })

  it('is what CI runs, in a clone with nothing beside it', () => {
    const ci = fs.readFileSync('.ci/run', 'utf8')
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
    const commands = block
      .trim()
      .split('\n')
      .map((line) => line.replace(/\s*#.*$/, ''))
    expect(commands).toEqual(['bash scripts/setup.sh && npm run demo', 'bash scripts/setup.sh && npm test'])
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    for (const command of commands) expect(ci).toMatch(new RegExp(`^${escape(command)}( \\|\\| \\w+=\\$\\?)?$`, 'm'))
    // The commands run after `cd "$clone"`, a fresh clone in an empty temporary folder.
    expect(ci).toMatch(/^git .*clone .*"\$clone"$/m)
    expect(ci.indexOf('cd "$clone"')).toBeGreaterThan(ci.indexOf('clone "file://'))
    expect(ci.indexOf('cd "$clone"')).toBeLessThan(ci.indexOf(commands[0]!))
  })

  it('lists every input and output', () => {
    for (const name of [...Object.keys(action.inputs), ...Object.keys(action.outputs)]) {
      expect(readme).toContain(`| \`${name}\` |`)
    }
  })

  it('describes each input in its table row as action.yml does (the step syntax included)', () => {
    const rows = new Map(
      readme
        .split('\n')
        .map((line) => /^\| `([a-z0-9-]+)` \| [^|]*\| (.*) \|$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!.replaceAll('\\|', '|')])
    )
    for (const [name, spec] of Object.entries(action.inputs))
      expect({ name, description: rows.get(name) }).toEqual({ name, description: spec.description })
    for (const example of ['header:x-canary=always', 'cookie:beta=yes', 'mirror:50'])
      expect(action.inputs.steps!.description).toContain(example)
  })

  it('shows the very Role that the RBAC test binds', () => {
    const role = fs.readFileSync('docs/rbac.yaml', 'utf8').trim()
    expect(readme).toContain(role)
  })
})
