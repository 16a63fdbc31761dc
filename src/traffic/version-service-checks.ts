/**
 * Preflight of the per-version Service model, shared by the VirtualService host-level split and
 * the HTTPRoute: the stable Service selects the stable version's pods and never the canary's, the
 * canary's Service selects the canary's pods and never the stable's, and serves the same ports.
 * Pure: the caller reads the objects; throws PreflightError naming the object, quoting the value
 * and saying what was expected.
 */
import { PreflightError, quote } from '../errors.js'
import type { KubeObject } from '../kube/kube-object.js'
import { labelsMatch } from '../kube/label-selector.js'
import { labelString } from './istio/object-ref.js'

export interface VersionServicesInput {
  namespace: string
  versionLabel: string
  /** The route and object, for messages: `route "primary" (#1) of VirtualService shop/reviews`. */
  where: string
  stableName: string
  /** The Services of the namespace read so far, by name (the stable one and the canary's, when they exist). */
  services: Record<string, KubeObject | undefined>
  /** Input 'canary-service', when given. */
  canaryServiceInput?: string
  /** The Service the manifests carry, if any: the canary's. */
  manifestService?: KubeObject
  canaryVersion: string
  canaryDeployment: string
  canaryPodLabels: Record<string, string>
  /** Every Deployment of the namespace. */
  deployments: KubeObject[]
}

export interface VersionServicesCheck {
  stableVersion: string
  /** The one Deployment whose pods the stable Service selects (none when several or none do). */
  stableDeployment?: KubeObject
  canaryName: string
  /** The canary's Service as it will be once applied. */
  canaryService: KubeObject
  warnings: string[]
}

/**
 * The canary Service's name: input 'canary-service', else the Service of the manifests, else the
 * stable one's with the stable version replaced by the canary's (`reviews-v1` -> `reviews-v2`).
 */
export function canaryServiceName(
  input: Pick<VersionServicesInput, 'canaryServiceInput' | 'manifestService' | 'stableName' | 'where' | 'canaryVersion'>,
  stableVersion: string
): string {
  if (input.canaryServiceInput !== undefined) return input.canaryServiceInput
  if (input.manifestService) return input.manifestService.metadata.name
  if (stableVersion !== '' && input.stableName.includes(stableVersion)) return input.stableName.replace(stableVersion, input.canaryVersion)
  throw new PreflightError(
    `${input.where} routes to Service ${quote(input.stableName)}, whose name does not contain its version ${quote(stableVersion)}, ` +
      `so the canary's Service cannot be named after it; expected input 'canary-service' to name it, or the canary's Service in input 'manifests'.`
  )
}

/** The stable version a per-version Service serves: its selector's version label, else its Deployment's. */
export function stableVersionOf(service: KubeObject | undefined, versionLabel: string, deployment?: KubeObject): string | undefined {
  const selector = selectorOf(service)
  return selector[versionLabel] ?? deployment?.spec?.template?.metadata?.labels?.[versionLabel]
}

export function checkVersionServices(input: VersionServicesInput): VersionServicesCheck {
  const { namespace, versionLabel, where, stableName } = input
  const warnings: string[] = []
  const stableRef = `Service ${namespace}/${stableName}`
  const stableService = input.services[stableName]
  if (!stableService) {
    throw new PreflightError(`${stableRef} was not found; ${where} routes to it. Expected the Service of the stable version.`)
  }
  const stableSelector = selectorOf(stableService)
  if (Object.keys(stableSelector).length === 0) {
    throw new PreflightError(
      `${stableRef} has no selector, so its endpoints cannot follow one version; expected a selector that picks the stable version's pods (e.g. app and ${versionLabel}).`
    )
  }
  if (labelsMatch(stableSelector, input.canaryPodLabels)) {
    throw new PreflightError(
      `${stableRef} selects ${quote(labelString(stableSelector))}, which the canary pods (labels ${quote(labelString(input.canaryPodLabels))}) also carry: ` +
        `the canary would get the stable version's traffic. Expected a per-version Service that selects the stable version only (add ${quote(versionLabel)} to its selector), ` +
        `or route to subsets of one Service.`
    )
  }
  const others = input.deployments.filter((d) => d.metadata.name !== input.canaryDeployment)
  const stableDeployments = others.filter((d) => labelsMatch(stableSelector, podLabels(d)))
  if (stableDeployments.length > 1) {
    warnings.push(
      `several Deployments run the pods of Service ${stableName} (${stableDeployments.map((d) => d.metadata.name).join(', ')}); none will be retired after promotion`
    )
  }
  const stableDeployment = stableDeployments.length === 1 ? stableDeployments[0] : undefined
  const stableVersion = stableVersionOf(stableService, versionLabel, stableDeployment) ?? stableName

  const canaryName = canaryServiceName(input, stableVersion)
  const canaryRef = `Service ${namespace}/${canaryName}`
  if (canaryName === stableName) {
    throw new PreflightError(
      `The canary's Service ${quote(canaryName)} is the stable version's, which ${where} routes to; expected a Service of its own for the canary ` +
        `(input 'canary-service', or a Service of another name in input 'manifests').`
    )
  }
  if (input.manifestService && input.manifestService.metadata.name !== canaryName) {
    throw new PreflightError(
      `Input 'manifests' carries Service ${quote(input.manifestService.metadata.name)}, but the canary's Service is ${quote(canaryName)} (input 'canary-service'); expected them to agree.`
    )
  }
  const canaryService = input.manifestService ?? input.services[canaryName]
  if (!canaryService) {
    throw new PreflightError(
      `${canaryRef}, the canary's, was not found and input 'manifests' does not carry it; expected it in the cluster or beside the canary Deployment ` +
        `(set input 'canary-service' if it has another name).`
    )
  }
  const canarySelector = selectorOf(canaryService)
  if (Object.keys(canarySelector).length === 0 || !labelsMatch(canarySelector, input.canaryPodLabels)) {
    throw new PreflightError(
      `${canaryRef} selects ${quote(labelString(canarySelector))}, which the canary pods (labels ${quote(labelString(input.canaryPodLabels))}) do not carry: ` +
        `no traffic sent to it could reach the canary. Expected a selector that picks the canary's pods (e.g. ${versionLabel}=${input.canaryVersion}).`
    )
  }
  const alsoStable = others.find((d) => labelsMatch(canarySelector, podLabels(d)))
  if (alsoStable) {
    throw new PreflightError(
      `${canaryRef} selects ${quote(labelString(canarySelector))}, which the pods of Deployment ${quote(alsoStable.metadata.name)} (labels ${quote(labelString(podLabels(alsoStable)))}) also carry: ` +
        `the canary's share would also reach them. Expected a selector that picks the canary's pods only (add ${quote(versionLabel)} to it).`
    )
  }
  const ports = (svc: KubeObject): number[] => ((svc.spec?.ports ?? []) as Array<{ port?: number }>).map((p) => Number(p.port))
  const missing = ports(stableService).filter((p) => !ports(canaryService).includes(p))
  if (missing.length > 0) {
    throw new PreflightError(
      `${canaryRef} does not serve port ${quote(missing.join(', '))}, which ${stableRef} serves; expected the canary's Service to serve the stable one's ports, ` +
        `or the route's traffic on them would fail.`
    )
  }
  return { stableVersion, ...(stableDeployment ? { stableDeployment } : {}), canaryName, canaryService, warnings }
}

function selectorOf(service: KubeObject | undefined): Record<string, string> {
  return (service?.spec?.selector ?? {}) as Record<string, string>
}

function podLabels(d: KubeObject): Record<string, string> {
  return d.spec?.template?.metadata?.labels ?? {}
}
