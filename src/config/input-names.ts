/**
 * The core input names, spelled once. action.yml, readConfig and every error message use these.
 * Gate and GitHub inputs are named by their own readers.
 */
export const INPUT = {
  command: 'command',
  manifests: 'manifests',
  virtualService: 'virtual-service',
  httpRoute: 'http-route',
  namespace: 'namespace',
  destinationRule: 'destination-rule',
  route: 'route',
  versionLabel: 'version-label',
  version: 'version',
  canarySubset: 'canary-subset',
  canaryService: 'canary-service',
  copyTrafficPolicy: 'copy-traffic-policy',
  steps: 'steps',
  interval: 'interval',
  progressDeadline: 'progress-deadline',
  settle: 'settle',
  retire: 'retire',
  kubeconfig: 'kubeconfig',
  dryRun: 'dry-run',
  full: 'full',
  supersede: 'supersede',
  retry: 'retry',
  onCancel: 'on-cancel',
  lockDuration: 'lock-duration',
  lockWait: 'lock-wait',
  timeout: 'timeout',
  versionOrder: 'version-order',
  allowDowngrade: 'allow-downgrade',
  freezeWindows: 'freeze-windows',
  minSoak: 'min-soak'
} as const

/** One of the core input names. */
export type InputName = (typeof INPUT)[keyof typeof INPUT]

/** Defaults of the inputs that have one, as the user would write them (action.yml shows the same). */
export const INPUT_DEFAULTS = {
  [INPUT.command]: 'deploy',
  [INPUT.versionLabel]: 'version',
  [INPUT.steps]: '10,25,50,100',
  [INPUT.interval]: '1m',
  [INPUT.progressDeadline]: '10m',
  [INPUT.settle]: '5s',
  [INPUT.retire]: 'scale-down',
  [INPUT.copyTrafficPolicy]: 'false',
  [INPUT.dryRun]: 'false',
  [INPUT.full]: 'false',
  [INPUT.supersede]: 'false',
  [INPUT.retry]: 'false',
  [INPUT.onCancel]: 'rollback',
  [INPUT.lockDuration]: '2m',
  [INPUT.lockWait]: '0',
  [INPUT.versionOrder]: 'semver',
  [INPUT.allowDowngrade]: 'false'
} as const satisfies Partial<Record<InputName, string>>
