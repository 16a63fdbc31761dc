/**
 * action.yml, the code and the README must agree: every input the code reads is declared with the
 * same default, every declared input is read, the outputs match, the README shows them all and
 * the very Role the RBAC test runs with.
 */
import { describe, expect, it } from '@jest/globals'
import * as fs from 'node:fs'
import * as yaml from 'js-yaml'
import { INPUT_NAMES, inputSpec } from '../../src/config/inputs.js'
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
  it('declares exactly the inputs of the catalogue (src/config/inputs.ts), in its order', () => {
    expect(Object.keys(action.inputs)).toEqual(INPUT_NAMES)
  })

  it('declares each input as the catalogue does: description, default, required', () => {
    for (const name of INPUT_NAMES) {
      const spec = inputSpec(name)
      const declared = action.inputs[name]
      // The name rides along so a failure says which input drifted.
      expect({ name, ...declared }).toEqual({
        name,
        description: spec.description,
        required: spec.required ?? false,
        ...(spec.default !== undefined && { default: spec.default })
      })
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

  it('lists every input of the catalogue, in its order, with its default and description', () => {
    const table = /^\| input \| default \| meaning \|\n\| --- \| --- \| --- \|\n((?:\|.*\n)*)/m.exec(readme)?.[1] ?? ''
    const cell = (text: string) => text.replace(/\|/g, '\\|')
    const expected = INPUT_NAMES.map((name) => {
      const spec = inputSpec(name)
      const value = spec.default === undefined ? '  ' : ` \`${spec.default}\` `
      return `| \`${name}\` |${value}| ${cell(spec.description)} |`
    })
    expect(table.trimEnd().split('\n')).toEqual(expected)
  })

  it('lists every output', () => {
    for (const name of Object.keys(action.outputs)) expect(readme).toContain(`| \`${name}\` |`)
  })

  it('describes the step syntax with one example of each kind', () => {
    for (const example of [
      '"10,25,50,100"',
      '"10,50,pause,100"',
      '"header:x-canary=always,10,100"',
      '"cookie:beta=yes,pause,100"',
      '"mirror:50,10,100"'
    ])
      expect(inputSpec('steps').description).toContain(example)
    expect(readme).toContain('### Header, cookie and mirror steps')
  })

  it('shows the very Role that the RBAC test binds', () => {
    const role = fs.readFileSync('docs/rbac.yaml', 'utf8').trim()
    expect(readme).toContain(role)
  })
})
