import type { DurationLimits } from './duration.js'

/** Which reader parses an input: readConfig (config/), parseGateConfig (health/) or parseGithubConfig (report/). */
export type InputGroup = 'rollout' | 'gates' | 'github'

/**
 * The grammar of an input's value. `duration`, `boolean` and `choice` are read the same way for
 * every group (input-reader.ts, over duration.ts and boolean.ts); the others by their group's reader.
 */
export type InputKind = 'text' | 'secret' | 'choice' | 'list' | 'lines' | 'schedule' | 'number' | 'yaml' | 'duration' | 'boolean'

/** One action input: what action.yml and the README declare for it, and how its value reads. */
export interface InputSpec {
  group: InputGroup
  kind: InputKind
  /** Only for kind duration: the accepted range (parseDuration's limits). */
  limits?: DurationLimits
  /** action.yml `required: true` (the runner shows it; the reader still names it when it is empty). */
  required?: boolean
  /** The value an empty input takes, as the user would write it. Absent: off or derived when empty. */
  default?: string
  description: string
}

/**
 * Every input of the action, spelled once, in the order action.yml and the README list them
 * (__tests__/unit/action-metadata.test.ts holds the three together).
 */
export const INPUTS = {
  command: {
    group: 'rollout',
    kind: 'choice',
    default: 'deploy',
    description:
      "What to do: deploy (start a rollout of the manifests' version), promote (continue a paused rollout), abort (roll back now), status (report, change nothing), plan (on a pull request: preview what deploying the manifests would do, read-only)."
  },
  manifests: {
    group: 'rollout',
    kind: 'list',
    description:
      "Path(s) or glob(s) of the new version's manifests, one per line or comma-separated, relative to the workspace. Exactly one Deployment among them (and, for a route over per-version Services, the canary's Service); nothing else is applied. Needed by deploy and plan."
  },
  'virtual-service': {
    group: 'rollout',
    kind: 'text',
    description:
      "Name of the VirtualService whose route weights move traffic, or several moved in lockstep (the mesh one and the ingress gateway's), one per line or comma-separated, each as name or name/route. A route that delegates is followed to its delegate VirtualService, where the weights are written. The first holds the rollout state and names the lock. Required unless http-route is given."
  },
  'http-route': {
    group: 'rollout',
    kind: 'text',
    description:
      'Instead of virtual-service: name of the Gateway API HTTPRoute whose rule (input route names it) moves traffic between per-version Services.'
  },
  namespace: {
    group: 'rollout',
    kind: 'text',
    description:
      "Namespace of the VirtualService, DestinationRule and Deployments. Default: the manifest's namespace, else the kubeconfig context's, else default."
  },
  'destination-rule': {
    group: 'rollout',
    kind: 'text',
    description: "Name of the DestinationRule holding the version subsets. Default: the one whose host matches the route's destination."
  },
  route: {
    group: 'rollout',
    kind: 'text',
    description:
      'Name of the http route to drive, needed when the VirtualService has several; tcp (the only tcp route) or tcp:PORT (the tcp route matching that port) for a TCP route. The default for every entry of virtual-service without its own /route. Other routes are never touched (a header or cookie step inserts a route of its own, istio-canary-<canary subset>, and removes it).'
  },
  'version-label': {
    group: 'rollout',
    kind: 'text',
    default: 'version',
    description: 'The pod label that tells versions apart (the seed uses istio-test-version).'
  },
  version: {
    group: 'rollout',
    kind: 'text',
    description:
      "The new version. Default: the manifest pod template's value of version-label. With promote/abort: refuse unless the rollout in progress is of this version."
  },
  'canary-subset': {
    group: 'rollout',
    kind: 'text',
    description: 'Name of the DestinationRule subset for the new version. Default: the version.'
  },
  'canary-service': {
    group: 'rollout',
    kind: 'text',
    description:
      "Host-level split (the route's destinations are per-version Services, no subsets): the canary's Service. Default: the Service in manifests, else the stable Service's name with the version replaced (reviews-v1 -> reviews-v2)."
  },
  'copy-traffic-policy': {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description:
      "Host-level split: give the canary's host a DestinationRule with the stable host's traffic policy (when the stable host has one and the canary's has none)."
  },
  steps: {
    group: 'rollout',
    kind: 'schedule',
    default: '10,25,50,100',
    description:
      'Canary weights in percent, increasing, ending at 100, with pause to stop for a manual promote, e.g. "10,25,50,100" or "10,50,pause,100". ' +
      'Before the first weight the canary may get, at weight 0, only the requests with a header, e.g. "header:x-canary=always,10,100", ' +
      'or a cookie, e.g. "cookie:beta=yes,pause,100" (NAME~REGEX for a regex), or a mirrored share of the stable\'s requests, responses dropped, e.g. "mirror:50,10,100".'
  },
  interval: {
    group: 'rollout',
    kind: 'duration',
    limits: { min: 1 },
    default: '1m',
    description: 'Bake time at each step before the next, e.g. 2m. Gates are evaluated during it (check-every) and at its end.'
  },
  'progress-deadline': {
    group: 'rollout',
    kind: 'duration',
    limits: { min: 1 },
    default: '10m',
    description: 'How long the new Deployment may take to become available. Crash loops and image pull failures fail earlier.'
  },
  settle: {
    group: 'rollout',
    kind: 'duration',
    limits: { max: 3600 },
    default: '5s',
    description:
      'Propagation wait after each routing write (make before break), e.g. 5s. Istio has no API that confirms config reached every proxy.'
  },
  retire: {
    group: 'rollout',
    kind: 'choice',
    default: 'scale-down',
    description: "What happens to the old version's Deployment after promotion: scale-down, delete or keep."
  },
  'canary-replicas': {
    group: 'rollout',
    kind: 'choice',
    default: 'manifest',
    description:
      "The canary's replicas: manifest (as its manifest says) or proportional (ceil of the stable's replicas x the weight, at least 1, available before each weight increase). A stable HPA is copied for the canary."
  },
  kubeconfig: {
    group: 'rollout',
    kind: 'secret',
    description: 'Kubeconfig content (from a secret). Default: KUBECONFIG, ~/.kube/config, or in-cluster. Credentials in it are masked.'
  },
  'dry-run': {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description: 'Validate everything, server-side dry-run every write, print the plan, change nothing.'
  },
  full: {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description: 'With promote: go straight to 100 % (still gated) instead of continuing the schedule.'
  },
  supersede: {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description: 'With deploy: when another version is mid-rollout, roll it back first instead of failing.'
  },
  retry: {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description:
      'With deploy: roll out again the release (same version, same manifest) whose last rollout was rolled back or aborted. Without it such a re-run is refused, so a re-run never sends a rolled-back version traffic by surprise; a changed manifest (the fix) needs no retry.'
  },
  'on-cancel': {
    group: 'rollout',
    kind: 'choice',
    default: 'rollback',
    description:
      'When the job is cancelled: rollback (canary weight 0 at once, the post step finishes) or freeze (keep the weights, mark the rollout paused).'
  },
  'lock-duration': {
    group: 'rollout',
    kind: 'duration',
    limits: { min: 15, max: 3600, whole: true },
    default: '2m',
    description:
      'Lease duration of the per-VirtualService lock; renewed while the run is alive, taken over by the next run after it expires.'
  },
  'lock-wait': {
    group: 'rollout',
    kind: 'duration',
    limits: { max: 6 * 3600 },
    default: '0',
    description:
      'How long to wait when another run holds the lock of the VirtualService (e.g. 10m for a matrix over several routes of one VirtualService), naming the holder in the log while waiting. 0 = fail at once.'
  },
  timeout: {
    group: 'rollout',
    kind: 'duration',
    limits: { min: 60 },
    description:
      "Overall deadline of the run (e.g. 50m); on expiry it behaves like a cancellation. Default: none (the job's timeout-minutes applies)."
  },
  'version-order': {
    group: 'rollout',
    kind: 'choice',
    default: 'semver',
    description:
      'How the new version must compare with the stable one for deploy and promote: semver (must be newer by semver 2.0 precedence, a leading v allowed, build metadata ignored; versions that are not both semver are not compared, and the log says so) or none.'
  },
  'allow-downgrade': {
    group: 'rollout',
    kind: 'boolean',
    default: 'false',
    description:
      'Let deploy and promote release a version that is not newer than the stable one (version-order: semver); the report says it was a downgrade.'
  },
  'freeze-windows': {
    group: 'rollout',
    kind: 'lines',
    description:
      'Times when deploy and promote refuse (abort and status always work), one per line: weekly like "Fri 16:00 - Mon 08:00 Europe/Berlin" (the end is the first minute allowed) or dates like "2026-12-24 - 2027-01-02 Europe/Berlin" (whole days, end date included). IANA time zones; DST follows the zone.'
  },
  'min-soak': {
    group: 'rollout',
    kind: 'duration',
    limits: {},
    description:
      'Minimum time the canary must serve traffic (weight above 0) with no failed gate evaluation before it goes to 100 % (e.g. 30m). A promote that comes earlier is refused with the time it is allowed; an automatic rollout keeps baking at its last weight until then. Off when empty.'
  },
  'prometheus-url': {
    group: 'gates',
    kind: 'text',
    description: 'Base URL of Prometheus (e.g. http://prometheus.istio-system:9090). Needed by every metric check.'
  },
  'prometheus-token': {
    group: 'gates',
    kind: 'secret',
    description: 'Bearer token for Prometheus (masked in logs). Not together with basic auth.'
  },
  'prometheus-username': {
    group: 'gates',
    kind: 'text',
    description: 'Basic-auth user name for Prometheus (with prometheus-password).'
  },
  'prometheus-password': {
    group: 'gates',
    kind: 'secret',
    description: 'Basic-auth password for Prometheus (masked in logs).'
  },
  'prometheus-timeout': {
    group: 'gates',
    kind: 'duration',
    limits: { min: 1, max: 300 },
    default: '10s',
    description: 'Deadline of one Prometheus query (e.g. 10s).'
  },
  reporter: {
    group: 'gates',
    kind: 'choice',
    default: 'destination',
    description: 'Istio metrics reporter to read: destination (sidecar on the canary), source, or waypoint (ambient).'
  },
  'success-rate': {
    group: 'gates',
    kind: 'number',
    description: 'Minimum canary request success rate in percent (non-5xx / all, Istio metrics), e.g. 99. Off when empty.'
  },
  'latency-p99': {
    group: 'gates',
    kind: 'number',
    description: 'Maximum canary P99 request latency in milliseconds, e.g. 500. Off when empty.'
  },
  'success-rate-vs-stable': {
    group: 'gates',
    kind: 'number',
    description: 'Maximum drop of the canary success rate below the stable one, in percentage points (e.g. 1). Off when empty.'
  },
  'latency-p99-vs-stable': {
    group: 'gates',
    kind: 'number',
    description: 'Maximum rise of the canary P99 latency over the stable one, in percent (e.g. 20). Off when empty.'
  },
  checks: {
    group: 'gates',
    kind: 'yaml',
    description:
      'Custom Prometheus checks, a YAML list of {name, query, min, max, unit, compare: {max-increase | max-increase-percent | max-decrease | max-decrease-percent}}. Placeholders: {{namespace}} {{workload}} {{canary_workload}} {{stable_workload}} {{version}} {{canary_version}} {{stable_version}} (each with a _re twin for =~), {{interval}}.'
  },
  'outside-mesh': {
    group: 'gates',
    kind: 'choice',
    default: 'warn',
    description:
      'What the deploy preflight does when Prometheus shows requests to the stable version from callers outside the mesh (no sidecar: they ignore the weights and reach the canary by pod count): warn, fail (refuse; nothing written) or ignore. Only with prometheus-url.'
  },
  'min-requests': {
    group: 'gates',
    kind: 'number',
    default: '10',
    description: 'Metric checks are inconclusive while the canary served fewer requests than this in the window (0 = off).'
  },
  'failure-threshold': {
    group: 'gates',
    kind: 'number',
    default: '1',
    description: 'Failed gate evaluations (over the whole rollout) that trigger the rollback.'
  },
  'inconclusive-limit': {
    group: 'gates',
    kind: 'number',
    default: '3',
    description: 'Consecutive inconclusive evaluations (no data, Prometheus down) after which on-no-data applies.'
  },
  'on-no-data': {
    group: 'gates',
    kind: 'choice',
    default: 'pause',
    description:
      'What inconclusive-limit inconclusive evaluations in a row mean: fail (count a failure), pause (wait for a person), or skip (treat as a pass, reported loudly).'
  },
  'check-every': {
    group: 'gates',
    kind: 'duration',
    limits: { min: 1, zero: 'only at the end of each step' },
    default: '30s',
    description: 'Evaluate the gates this often during a bake (e.g. 30s); always once at the end of each step. 0 = only at the end.'
  },
  webhooks: {
    group: 'gates',
    kind: 'yaml',
    description:
      'Webhook gates, a YAML list of {name, url, moments: [pre-rollout|before-increase|bake|before-promotion|rollback|success], timeout, retries, headers, metadata}. Header and URL values may use ${ENV_NAME}.'
  },
  'github-token': {
    group: 'github',
    kind: 'secret',
    default: '${{ github.token }}',
    description:
      'Token for the PR comment and GitHub Deployments. Needs pull-requests: write (comment) and deployments: write (only with deployment-environment). Empty: no GitHub API calls, the job summary is still written.'
  },
  'pr-comment': {
    group: 'github',
    kind: 'boolean',
    default: 'true',
    description: 'Keep one updatable comment with the report on the pull request of the commit (true or false).'
  },
  'comment-author': {
    group: 'github',
    kind: 'text',
    description:
      'Login that writes the PR comment when github-token is not the workflow GITHUB_TOKEN (e.g. my-app[bot]); only comments by this login (or github-actions[bot]) carrying the marker are updated.'
  },
  'deployment-environment': {
    group: 'github',
    kind: 'text',
    description: 'When set, record each run as a GitHub Deployment to this environment, with in_progress / success / failure statuses.'
  },
  'production-environment': {
    group: 'github',
    kind: 'boolean',
    default: 'false',
    description: 'Mark the deployment environment as a production environment (true or false).'
  }
} as const satisfies Record<string, InputSpec>

/** The name of one input of the action. */
export type InputName = keyof typeof INPUTS

/** Every input name, in catalogue order. */
export const INPUT_NAMES = Object.keys(INPUTS) as InputName[]

/** The catalogue entry of an input, widened to InputSpec (so optional fields read as such). */
export function inputSpec(name: InputName): InputSpec {
  return INPUTS[name]
}

/** Names of the inputs of one kind. */
export type InputNameOfKind<K extends InputKind> = { [N in InputName]: (typeof INPUTS)[N]['kind'] extends K ? N : never }[InputName]

/** Names of the inputs with a default: their value is never empty. */
export type InputWithDefault = { [N in InputName]: (typeof INPUTS)[N] extends { default: string } ? N : never }[InputName]

type Camel<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S

/** Input names by their camelCase key (`INPUT.virtualService` is `'virtual-service'`), derived from INPUTS. */
export const INPUT = Object.fromEntries(
  INPUT_NAMES.map((name) => [name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), name])
) as {
  readonly [N in InputName as Camel<N>]: N
}
