import { load } from 'js-yaml'
import { ConfigError, quote } from '../errors.js'
import { COMMANDS, type Command, type Step } from '../rollout/types.js'
import { formatDuration } from './duration.js'
import { INPUT, type InputName } from './inputs.js'
import { booleanInput, choiceInput, durationInput, inputValue, optionalInput, type Inputs } from './input-reader.js'
import { inputError, missingInput } from './input-error.js'
import { isDns1123Label, isDns1123Subdomain, isLabelKey, isLabelValue } from './kube-names.js'
import { parseSchedule } from './schedule.js'
import { parseFreezeWindows, type FreezeWindow } from './freeze-windows.js'
import { parseVirtualServices, type VirtualServiceTarget } from './virtual-services.js'
import { VERSION_ORDERS, type VersionOrder } from '../rollout/types.js'
import { CANARY_REPLICAS_MODES, type CanaryReplicasMode } from '../rollout/capacity-record.js'

export { COMMANDS, type Command }
export const RETIRE_MODES = ['scale-down', 'delete', 'keep'] as const
/** What happens to the stable Deployment after a promotion. */
export type RetireMode = (typeof RETIRE_MODES)[number]
export const ON_CANCEL_MODES = ['rollback', 'freeze'] as const
/** What a cancelled run does: send all traffic back to stable, or leave the weights where they are. */
export type OnCancelMode = (typeof ON_CANCEL_MODES)[number]

/** Job time limit of GitHub-hosted runners (and the default `timeout-minutes`): 6 h. */
export const HOSTED_JOB_LIMIT_SECONDS = 6 * 3600
/** Job time limit of self-hosted runners: 5 days. */
export const SELF_HOSTED_JOB_LIMIT_SECONDS = 5 * 24 * 3600

/** The core inputs, parsed and checked. Durations are whole seconds. */
export interface Config {
  command: Command
  /** Paths or globs of the canary Deployment manifest; [] unless command is deploy. */
  manifests: string[]
  /**
   * The name of the routing object that holds the rollout state and names the lock: the first of
   * virtualServices, or with routeKind 'HTTPRoute' the Gateway API HTTPRoute (input 'http-route').
   */
  virtualService: string
  /** Every VirtualService the rollout moves in lockstep, the state holder first (input 'virtual-service'); the HTTPRoute alone with routeKind 'HTTPRoute'. */
  virtualServices: VirtualServiceTarget[]
  /** Which kind `virtualService` names: input 'virtual-service' or input 'http-route'. */
  routeKind: 'VirtualService' | 'HTTPRoute'
  /** undefined: the manifest's namespace, else the kubeconfig context's, else `default`. */
  namespace?: string
  destinationRule?: string
  /** Name of the VirtualService http route to shift; needed when it has several. */
  route?: string
  versionLabel: string
  /** undefined: the version label's value on the manifest's pod template. */
  version?: string
  /** undefined: defaultCanarySubset(version). */
  canarySubset?: string
  /** Per-version Services: the canary's; undefined: the manifests' Service, else the stable one's name with the version replaced. */
  canaryService?: string
  /** Per-version Services: give the canary host a DestinationRule with the stable host's traffic policy. */
  copyTrafficPolicy: boolean
  steps: Step[]
  intervalSeconds: number
  progressDeadlineSeconds: number
  settleSeconds: number
  retire: RetireMode
  /** Kubeconfig content; undefined: $KUBECONFIG / ~/.kube/config / in-cluster. A secret: never log it. */
  kubeconfig?: string
  dryRun: boolean
  /** With promote: go straight to 100 % instead of resuming the schedule. */
  full: boolean
  /** With deploy: a rollout of another version in progress is rolled back first instead of failing. */
  supersede: boolean
  /** With deploy: roll out again the release whose last rollout was rolled back or aborted. */
  retry: boolean
  onCancel: OnCancelMode
  lockDurationSeconds: number
  /** How long to wait for another run's lock before giving up; 0: fail at once (the default). */
  lockWaitSeconds: number
  /** Overall deadline of the run; undefined: none (the job's timeout-minutes applies). */
  timeoutSeconds?: number
  /** How the new version must compare with the stable one (deploy and promote). */
  versionOrder: VersionOrder
  /** Lets a version that is not newer than the stable one through (the report says it was a downgrade). */
  allowDowngrade: boolean
  /** Times during which deploy and promote refuse; [] when none. */
  freezeWindows: FreezeWindow[]
  /** Traffic time with gates passing the canary needs before 100 %; 0: none. */
  minSoakSeconds: number
  /** The canary's replicas: the manifest's, or following its weight (and its HPA's bounds with it). */
  canaryReplicas: CanaryReplicasMode
  /** Things worth telling the user that do not stop the run. */
  warnings: string[]
}

/**
 * Read and check the core inputs as the runner gives them (a missing input is ''). Pure: `env` is
 * only consulted for RUNNER_ENVIRONMENT (the job time limit the schedule is compared with). Throws a
 * ConfigError naming the input, quoting the value and saying what was expected.
 */
export function readConfig(inputs: Inputs, env: NodeJS.ProcessEnv = {}): Config {
  const warnings: string[] = []
  const command = choiceInput(inputs, INPUT.command, COMMANDS)
  const manifests = readManifestPatterns(inputs, command, warnings)
  const target = readTarget(inputs)
  const versions = readVersionNames(inputs)
  const steps = parseSchedule(inputValue(inputs, INPUT.steps))
  const timing = readTiming(inputs)
  const release = readReleaseRules(inputs, command, steps)
  const retire = choiceInput(inputs, INPUT.retire, RETIRE_MODES)
  const canaryReplicas = choiceInput(inputs, INPUT.canaryReplicas, CANARY_REPLICAS_MODES)
  const onCancel = choiceInput(inputs, INPUT.onCancel, ON_CANCEL_MODES)
  const kubeconfig = readKubeconfig(optionalInput(inputs, INPUT.kubeconfig))
  const dryRun = booleanInput(inputs, INPUT.dryRun)
  const flags = readCommandFlags(inputs, command, warnings)

  // A plan previews a deploy: it reads and checks the same inputs.
  const deploys = command === 'deploy' || command === 'plan'
  if (deploys && steps.length === 1) {
    warnings.push(
      `Input '${INPUT.steps}' is "100": all traffic moves to the canary at once, with no canary phase for the health gates to judge.`
    )
  }
  if (deploys || (command === 'promote' && !flags.full)) {
    warnings.push(...scheduleTimeWarnings(steps, { command: deploys ? 'deploy' : command, ...timing }, env))
  }

  return {
    command,
    manifests,
    ...target,
    ...versions,
    steps,
    ...timing,
    retire,
    canaryReplicas,
    ...(kubeconfig !== undefined && { kubeconfig }),
    dryRun,
    ...flags,
    onCancel,
    ...release,
    warnings
  }
}

/** The manifest patterns: required by deploy and plan, ignored (with a warning) by the other commands. */
function readManifestPatterns(inputs: Inputs, command: Command, warnings: string[]): string[] {
  const manifests = splitList(inputValue(inputs, INPUT.manifests))
  const deploys = command === 'deploy' || command === 'plan'
  if (deploys && manifests.length === 0) {
    throw missingInput(
      INPUT.manifests,
      `command '${command}' needs the canary Deployment's manifest: a path or glob, one per line or comma-separated, like "k8s/deployment-v2.yaml"`
    )
  }
  if (!deploys && manifests.length > 0) {
    warnings.push(`Input '${INPUT.manifests}' is ignored with command '${command}': only 'deploy' applies a manifest.`)
    return []
  }
  return manifests
}

/** A DNS-1123 subdomain input (an object name), or undefined when empty. */
function dnsNameInput(inputs: Inputs, name: InputName, what: string): string | undefined {
  const value = optionalInput(inputs, name)
  if (value !== undefined && !isDns1123Subdomain(value)) {
    throw inputError(
      name,
      `expected ${what}: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters`,
      value
    )
  }
  return value
}

/** Where the action works: the VirtualService or HTTPRoute (one of them required), its namespace, DestinationRule and route. */
function readTarget(
  inputs: Inputs
): Pick<Config, 'virtualService' | 'virtualServices' | 'routeKind' | 'namespace' | 'destinationRule' | 'route'> {
  const httpRoute = optionalInput(inputs, INPUT.httpRoute)
  const vsInput = optionalInput(inputs, INPUT.virtualService)
  if (httpRoute !== undefined && vsInput !== undefined) {
    throw inputError(
      INPUT.httpRoute,
      `expected either '${INPUT.virtualService}' or '${INPUT.httpRoute}', not both: a host is routed by one of them (Istio leaves the result of both undefined); ` +
        `'${INPUT.virtualService}' is ${quote(vsInput)}`,
      httpRoute
    )
  }
  if (httpRoute === undefined && vsInput === undefined) {
    throw missingInput(
      INPUT.virtualService,
      `expected the name of the VirtualService whose route weights the action shifts, like "reviews" (or input '${INPUT.httpRoute}': a Gateway API HTTPRoute)`
    )
  }
  const routeKind = httpRoute !== undefined ? 'HTTPRoute' : 'VirtualService'
  const destinationRule = dnsNameInput(inputs, INPUT.destinationRule, 'the name of a DestinationRule')

  const namespace = optionalInput(inputs, INPUT.namespace)
  if (namespace !== undefined && !isDns1123Label(namespace)) {
    throw inputError(
      INPUT.namespace,
      'expected a namespace name: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
      namespace
    )
  }

  const route = optionalInput(inputs, INPUT.route)
  if (route !== undefined && (route.length > 253 || /[\u0000-\u001f\u007f]/.test(route))) {
    throw inputError(INPUT.route, 'expected the name of one http route of the VirtualService: one line, at most 253 characters', route)
  }
  const virtualServices =
    httpRoute !== undefined
      ? [{ name: dnsNameInput(inputs, INPUT.httpRoute, 'the name of an HTTPRoute')!, ...(route !== undefined && { route }) }]
      : parseVirtualServices(vsInput!, route)
  return {
    virtualService: virtualServices[0].name,
    virtualServices,
    routeKind,
    ...(namespace !== undefined && { namespace }),
    ...(destinationRule !== undefined && { destinationRule }),
    ...(virtualServices[0].route !== undefined && { route: virtualServices[0].route })
  }
}

/** How versions are told apart: the version label, the new version and its subset or Service. */
function readVersionNames(
  inputs: Inputs
): Pick<Config, 'versionLabel' | 'version' | 'canarySubset' | 'canaryService' | 'copyTrafficPolicy'> {
  const versionLabel = inputValue(inputs, INPUT.versionLabel)
  if (!isLabelKey(versionLabel)) {
    throw inputError(
      INPUT.versionLabel,
      'expected a label key like "version" or "app.kubernetes.io/version": an optional DNS prefix and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
      versionLabel
    )
  }
  const version = optionalInput(inputs, INPUT.version)
  if (version !== undefined && !isLabelValue(version)) {
    throw inputError(
      INPUT.version,
      'expected a label value like "v2" or "1.4.0": at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit',
      version
    )
  }
  const canarySubset = optionalInput(inputs, INPUT.canarySubset)
  if (canarySubset !== undefined && !isDns1123Label(canarySubset)) {
    throw inputError(
      INPUT.canarySubset,
      'expected a DestinationRule subset name (Istio requires a DNS-1123 label): lowercase letters, digits and "-", at most 63 characters',
      canarySubset
    )
  }
  const canaryService = optionalInput(inputs, INPUT.canaryService)
  if (canaryService !== undefined && !isDns1123Label(canaryService)) {
    throw inputError(
      INPUT.canaryService,
      'expected the name of a Service (a DNS-1123 label): lowercase letters, digits and "-", at most 63 characters',
      canaryService
    )
  }
  return {
    versionLabel,
    ...(version !== undefined && { version }),
    ...(canarySubset !== undefined && { canarySubset }),
    ...(canaryService !== undefined && { canaryService }),
    copyTrafficPolicy: booleanInput(inputs, INPUT.copyTrafficPolicy)
  }
}

type Timing = Pick<
  Config,
  'intervalSeconds' | 'progressDeadlineSeconds' | 'settleSeconds' | 'lockDurationSeconds' | 'lockWaitSeconds' | 'timeoutSeconds'
>

/** The duration inputs of the run itself, by the one grammar and the catalogue's limits. */
function readTiming(inputs: Inputs): Timing {
  const timing = {
    intervalSeconds: durationInput(inputs, INPUT.interval),
    progressDeadlineSeconds: durationInput(inputs, INPUT.progressDeadline),
    settleSeconds: durationInput(inputs, INPUT.settle),
    lockDurationSeconds: durationInput(inputs, INPUT.lockDuration),
    lockWaitSeconds: durationInput(inputs, INPUT.lockWait)
  }
  const timeoutSeconds = durationInput(inputs, INPUT.timeout)
  return { ...timing, ...(timeoutSeconds !== undefined && { timeoutSeconds }) }
}

/** What a release must satisfy: version order, freeze windows, the minimum soak. */
function readReleaseRules(
  inputs: Inputs,
  command: Command,
  steps: readonly Step[]
): Pick<Config, 'versionOrder' | 'allowDowngrade' | 'freezeWindows' | 'minSoakSeconds'> {
  const versionOrder = choiceInput(inputs, INPUT.versionOrder, VERSION_ORDERS)
  const allowDowngrade = booleanInput(inputs, INPUT.allowDowngrade)
  // Untrimmed, so the line numbers in its errors are the user's.
  const freezeWindows = parseFreezeWindows(inputs[INPUT.freezeWindows] ?? '')
  const minSoakSeconds = durationInput(inputs, INPUT.minSoak) ?? 0
  if (minSoakSeconds > 0 && (command === 'deploy' || command === 'plan') && !steps.some((s) => s.kind === 'weight' && s.weight < 100)) {
    throw inputError(
      INPUT.minSoak,
      `'steps' is "${inputValue(inputs, INPUT.steps)}": the canary gets no traffic before 100 %, so it can never soak; add a step below 100, like "10,100", or leave 'min-soak' empty`,
      inputValue(inputs, INPUT.minSoak)
    )
  }
  return { versionOrder, allowDowngrade, freezeWindows, minSoakSeconds }
}

/**
 * The flags that only one command uses. Set with another, each is a warning, not an error: a
 * workflow_dispatch form commonly passes every input to every command.
 */
function readCommandFlags(inputs: Inputs, command: Command, warnings: string[]): Pick<Config, 'full' | 'supersede' | 'retry'> {
  const flag = (name: 'full' | 'supersede' | 'retry', only: Command, what: string): boolean => {
    if (!booleanInput(inputs, name)) return false
    // A plan previews the deploy with the deploy's flags.
    if (command === only || (only === 'deploy' && command === 'plan')) return true
    warnings.push(`Input '${name}' is ignored with command '${command}': it only ${what}.`)
    return false
  }
  return {
    full: flag(INPUT.full, 'promote', 'makes a promote go straight to 100 %'),
    supersede: flag(INPUT.supersede, 'deploy', 'lets a deploy replace a rollout in progress'),
    retry: flag(INPUT.retry, 'deploy', 'lets a deploy roll out again a release that was rolled back')
  }
}

/** Split a list input on newlines and commas (not commas inside a glob's `{a,b}`); drop empty entries. */
export function splitList(value: string): string[] {
  const items: string[] = []
  let current = ''
  let braces = 0
  for (const ch of value) {
    if (ch === '{') braces++
    if (ch === '}') braces = Math.max(0, braces - 1)
    if (ch === '\n' || ch === '\r' || (ch === ',' && braces === 0)) {
      items.push(current)
      current = ''
    } else {
      current += ch
    }
  }
  items.push(current)
  return items.map((s) => s.trim()).filter((s) => s !== '')
}

/**
 * The kubeconfig input holds the file's content. A path is refused: the action reads no file an input
 * names (and a path here usually means a secret was not expanded). Never quotes the value: it is a
 * credential.
 */
function readKubeconfig(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const notShown = '(value not shown: it may be a credential)'
  const fail = (reason: string): never => {
    throw new ConfigError(`Input '${INPUT.kubeconfig}' is invalid: ${reason} ${notShown}.`)
  }
  if (!value.includes('\n') && !value.startsWith('{')) {
    if (/^[A-Za-z0-9+/]{40,}={0,2}$/.test(value)) {
      fail('it looks base64-encoded: expected the kubeconfig content itself, so decode it before storing the secret')
    }
    fail(
      'expected the kubeconfig content (YAML), not a path: the action reads no file named by an input. ' +
        `Pass the content, like "kubeconfig: \${{ secrets.KUBECONFIG }}", or leave it empty to use $KUBECONFIG or ~/.kube/config`
    )
  }
  let doc: unknown
  try {
    doc = load(value)
  } catch (e) {
    // The parser's message can carry a fragment of the content: give only the line.
    const line = (e as { mark?: { line: number } }).mark?.line
    fail(`it is not valid YAML${line !== undefined ? ` (line ${line + 1})` : ''}: expected the content of a kubeconfig file`)
  }
  const clusters = (doc as { clusters?: unknown } | null)?.clusters
  if (doc === null || typeof doc !== 'object' || !Array.isArray(clusters)) {
    fail('it is not a kubeconfig: expected YAML with clusters, contexts and users')
  }
  return value
}

interface ScheduleTiming {
  command: Command
  intervalSeconds: number
  settleSeconds: number
  progressDeadlineSeconds: number
  timeoutSeconds?: number
}

/**
 * Warn when one run of the schedule (from its start, or a pause, to the next pause or the promotion)
 * may outlast the run's timeout or the runner's job limit: the job would be cut off mid-rollout.
 */
function scheduleTimeWarnings(steps: readonly Step[], t: ScheduleTiming, env: NodeJS.ProcessEnv): string[] {
  const segments: number[][] = [[]]
  for (const s of steps) {
    if (s.kind === 'pause') segments.push([])
    else segments.at(-1)!.push(s.kind === 'weight' ? s.weight : 0)
  }
  // A deploy runs the first segment (after the canary becomes ready); a promote the longest later one.
  const runs = t.command === 'deploy' ? [segments[0]!] : segments.slice(1)
  const withDeadline = t.command === 'deploy'
  const longest = runs.reduce((a, b) => (b.length > a.length ? b : a), [])
  if (longest.length === 0) return []
  const perStep = t.intervalSeconds + t.settleSeconds
  const total = longest.length * perStep + (withDeadline ? t.progressDeadlineSeconds : 0)
  const how =
    `${longest.length} step${longest.length === 1 ? '' : 's'} × (interval ${formatDuration(t.intervalSeconds)} + settle ${formatDuration(t.settleSeconds)})` +
    (withDeadline ? ` + progress-deadline ${formatDuration(t.progressDeadlineSeconds)}` : '')
  const span = `One ${t.command} run of the schedule can take up to ${formatDuration(total)} (${how})`
  const fix = `add a pause to 'steps', shorten 'interval' or use fewer steps`
  const warnings: string[] = []
  if (t.timeoutSeconds !== undefined && total > t.timeoutSeconds) {
    warnings.push(`${span}, longer than 'timeout' ${formatDuration(t.timeoutSeconds)}: the run would stop before promoting; ${fix}.`)
  }
  const selfHosted = env.RUNNER_ENVIRONMENT === 'self-hosted'
  const limit = selfHosted ? SELF_HOSTED_JOB_LIMIT_SECONDS : HOSTED_JOB_LIMIT_SECONDS
  if (total > limit) {
    const runner = selfHosted
      ? 'the 5-day job limit of self-hosted runners'
      : 'the 6h job limit of GitHub-hosted runners (timeout-minutes cannot raise it)'
    warnings.push(`${span}, longer than ${runner}: the job would be cut off mid-rollout; ${fix}.`)
  }
  return warnings
}
