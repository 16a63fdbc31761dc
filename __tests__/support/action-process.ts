/**
 * Runs the bundled action (dist/index.js, dist/post.js) as a child process, the way the GitHub
 * runner does: inputs as INPUT_<NAME> (upper-cased, hyphens kept), file commands through
 * GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_STATE, and, for the post step, the saved state as
 * STATE_<name>. The lock holder identity (GITHUB_REPOSITORY / RUN_ID / RUN_ATTEMPT / JOB) is the
 * same for main and post, as on a real runner.
 *
 *   (dist/ is built once for the whole run by the integration global setup)
 *   const run = startAction(inputs, { env: { GITHUB_RUN_ID: '42' } })
 *   await run.waitForLine(/Weights: v1=80 v2=20/)
 *   run.child.kill('SIGINT')
 *   await run.exited
 *   const post = run.post()                          // dist/post.js with STATE_* from the state file
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadTestEnv, repoRoot } from './test-cluster.js'

/** The Node 24 binary of the `node` dev dependency: what `runs.using: node24` runs. */
export const NODE_BIN = path.join(repoRoot, 'node_modules', '.bin', 'node')
export const MAIN_ENTRY = path.join(repoRoot, 'dist', 'index.js')
export const POST_ENTRY = path.join(repoRoot, 'dist', 'post.js')

/**
 * Checks that dist/ is there. It is built once per test run by the global setup (never by a test
 * file: a rebuild deletes dist/ for a moment, under the feet of tests running at the same time).
 */
export function bundleAction(): void {
  if (!fs.existsSync(MAIN_ENTRY) || !fs.existsSync(POST_ENTRY)) {
    throw new Error(`${MAIN_ENTRY} or ${POST_ENTRY} is missing: run 'npm run bundle' (the integration global setup does)`)
  }
}

export interface ActionProcessOptions {
  /** Extra or overriding environment (e.g. another GITHUB_RUN_ID). */
  env?: Record<string, string>
  /** Working directory and GITHUB_WORKSPACE; default: the directory of the `manifests` input, else a temp dir. */
  cwd?: string
}

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ActionProcess {
  child: ChildProcess
  /** stdout lines so far (the runner's log: core.info, ::warning:: etc.). */
  lines: string[]
  stderr: string[]
  /** When the process was started (Date.now()). */
  startedAt: number
  /** Resolves when the process exited, with the time it did. */
  exited: Promise<ExitStatus & { at: number }>
  /** The step outputs (GITHUB_OUTPUT), parsed. */
  outputs(): Record<string, string>
  /** The job summary Markdown this step wrote. */
  summary(): string
  /** The GITHUB_STATE file (core.saveState) of this step. */
  stateFile: string
  /** The environment the process got (for a later post step). */
  env: Record<string, string>
  inputs: Record<string, string>
  /** Resolves with the first stdout line (seen so far or later) matching `re`; rejects on timeout or exit. */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>
  /** The whole log, stdout then stderr. */
  log(): string
  /** Runs the post step (dist/post.js) as the runner would after this main step. */
  post(opts?: ActionProcessOptions): ActionProcess
}

/**
 * Parses a file-command file (GITHUB_OUTPUT, GITHUB_STATE): `name<<DELIMITER` heredocs as
 * @actions/core writes them, and the older single-line `name=value` form.
 */
export function parseFileCommand(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line === '') continue
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delimiter] = heredoc
      const value: string[] = []
      let closed = false
      for (i++; i < lines.length; i++) {
        if (lines[i] === delimiter) {
          closed = true
          break
        }
        value.push(lines[i])
      }
      if (!closed) throw new Error(`file command: heredoc ${name} has no closing delimiter ${delimiter}`)
      out[name] = value.join('\n')
      continue
    }
    const eq = line.indexOf('=')
    if (eq <= 0) throw new Error(`file command: unparseable line ${JSON.stringify(line)}`)
    out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

function readIfExists(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
}

let runSeq = 0
/** The environment a runner gives a JS action step, for these inputs. */
function runnerEnv(
  inputs: Record<string, string>,
  workspace: string,
  files: { output: string; summary: string; state: string },
  extra: Record<string, string>
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_STATE: files.state,
    GITHUB_REPOSITORY: 'istio-canary/chaos',
    GITHUB_RUN_ID: String(1000 + process.pid),
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'deploy',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_EVENT_NAME: 'workflow_dispatch',
    GITHUB_SHA: '0000000000000000000000000000000000000000',
    RUNNER_ENVIRONMENT: 'github-hosted',
    RUNNER_TEMP: os.tmpdir(),
    KUBECONFIG: loadTestEnv().kubeconfigPath
  }
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value
  return { ...env, ...extra }
}

function spawnStep(
  entry: string,
  inputs: Record<string, string>,
  opts: ActionProcessOptions,
  stateEnv: Record<string, string>
): ActionProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `istio-canary-step-${runSeq++}-`))
  const files = { output: path.join(dir, 'output'), summary: path.join(dir, 'summary.md'), state: path.join(dir, 'state') }
  for (const f of Object.values(files)) fs.writeFileSync(f, '')
  const manifest = inputs.manifests?.split(/[\n,]/)[0]?.trim()
  const workspace = opts.cwd ?? (manifest && path.isAbsolute(manifest) ? path.dirname(manifest) : dir)
  const env = { ...runnerEnv(inputs, workspace, files, opts.env ?? {}), ...stateEnv }
  const startedAt = Date.now()
  const child = spawn(NODE_BIN, [entry], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const stderr: string[] = []
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void }>()
  const onLines = (into: string[]) => {
    let rest = ''
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n')
      rest = parts.pop() ?? ''
      for (const l of parts) {
        into.push(l)
        if (into === lines) {
          for (const w of waiters) {
            if (w.re.test(l)) {
              waiters.delete(w)
              w.resolve(l)
            }
          }
        }
      }
    }
  }
  child.stdout!.on('data', onLines(lines))
  child.stderr!.on('data', onLines(stderr))
  const exited = new Promise<ExitStatus & { at: number }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, at: Date.now() }))
  })
  const handle: ActionProcess = {
    child,
    lines,
    stderr,
    startedAt,
    exited,
    stateFile: files.state,
    env,
    inputs,
    outputs: () => parseFileCommand(readIfExists(files.output)),
    summary: () => readIfExists(files.summary),
    log: () => [...lines, ...stderr].join('\n'),
    waitForLine(re, timeoutMs = 60_000) {
      const seen = lines.find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          re,
          resolve: (l: string) => {
            clearTimeout(timer)
            resolve(l)
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          reject(new Error(`no line matching ${re} within ${timeoutMs} ms; log:\n${handle.log().slice(-3000)}`))
        }, timeoutMs)
        waiters.add(waiter)
        void exited.then((s) => {
          if (!waiters.has(waiter)) return
          waiters.delete(waiter)
          clearTimeout(timer)
          reject(new Error(`process exited (${s.code ?? s.signal}) before a line matching ${re}; log:\n${handle.log().slice(-3000)}`))
        })
      })
    },
    post: (postOpts = {}) =>
      runPost(files.state, inputs, {
        ...postOpts,
        env: { ...stripStepFiles(env), ...(postOpts.env ?? {}) },
        cwd: postOpts.cwd ?? workspace
      })
  }
  return handle
}

function stripStepFiles(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) {
    if (k === 'GITHUB_OUTPUT' || k === 'GITHUB_STEP_SUMMARY' || k === 'GITHUB_STATE' || k.startsWith('STATE_')) continue
    out[k] = v
  }
  return out
}

/** Starts the action's main step (dist/index.js) with these inputs. */
export function startAction(inputs: Record<string, string>, opts: ActionProcessOptions = {}): ActionProcess {
  return spawnStep(MAIN_ENTRY, inputs, opts, {})
}

/**
 * Starts the post step (dist/post.js) as the runner does after the main step: every
 * `core.saveState` of the main step (its GITHUB_STATE file) becomes STATE_<name>, with the same inputs.
 */
export function runPost(stateFile: string, inputs: Record<string, string>, opts: ActionProcessOptions = {}): ActionProcess {
  const saved = parseFileCommand(readIfExists(stateFile))
  const stateEnv: Record<string, string> = {}
  for (const [name, value] of Object.entries(saved)) stateEnv[`STATE_${name}`] = value
  return spawnStep(POST_ENTRY, inputs, opts, stateEnv)
}
