import { ESLint } from 'eslint'

// The import rules of docs/engineering.md are lint rules: a file that breaks one fails `npm run lint`.
const eslint = new ESLint({ cwd: process.cwd() })

async function restricted(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: file })
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('import boundaries', () => {
  it.each([
    ['src/rollout/x.ts', "import type { Cluster } from '../cluster/cluster.js'"],
    ['src/rollout/x.ts', "import { withSplit } from '../traffic/istio/virtual-service-transform.js'"],
    ['src/rollout/x.ts', "import { readFile } from 'node:fs/promises'"],
    ['src/rollout/x.ts', "import * as core from '@actions/core'"],
    ['src/kube/x.ts', "import type { RolloutState } from '../rollout/types.js'"],
    ['src/config/x.ts', "import type { Cluster } from '../cluster/cluster.js'"],
    ['src/config/x.ts', "import { readFile } from 'node:fs/promises'"],
    ['src/config/x.ts', "import * as core from '@actions/core'"],
    ['src/traffic/istio/x.ts', "import type { HealthGate } from '../../health/health-gate.js'"],
    ['src/report/x.ts', "import type { Cluster } from '../cluster/cluster.js'"]
  ])('%s may not: %s', async (file, line) => {
    expect(await restricted(file, `${line}\nexport {}\n`)).toHaveLength(1)
  })

  it.each([
    ['src/rollout/x.ts', "import type { KubeObject } from '../kube/kube-object.js'"],
    ['src/commands/x.ts', "import type { Cluster } from '../cluster/cluster.js'"],
    ['src/health/x.ts', "import type { RolloutState } from '../rollout/types.js'"],
    ['src/health/x.ts', "import { durationInput } from '../config/input-reader.js'"],
    ['src/commands/x.ts', "import { readFile } from 'node:fs/promises'"]
  ])('%s may: %s', async (file, line) => {
    expect(await restricted(file, `${line}\nexport {}\n`)).toEqual([])
  })
})
