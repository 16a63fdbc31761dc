/**
 * Manifests of the per-version workloads the rollout and traffic tests deploy: a Deployment per
 * version (`reviews-v1`, `reviews-v2`, ...) whose pods carry `{ app, version }`, and Services over
 * them. Each test keeps its own VirtualService / HTTPRoute / DestinationRule, the objects it is about.
 */

export interface VersionDeploymentOptions {
  /** The app label, the Deployment's name prefix, its container's name and image (default reviews). */
  app?: string
  replicas?: number
  /** Whether the Deployment object itself carries `{ app }` (its pods always do). Default true. */
  labelled?: boolean
}

/** The Deployment `<app>-<version>`: pods labelled `{ app, version }`, image `example.com/<app>:<version>`. */
export function versionDeployment(
  version: string,
  { app = 'reviews', replicas = 1, labelled = true }: VersionDeploymentOptions = {}
): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}-${version}
${labelled ? `  labels: { app: ${app} }\n` : ''}spec:
  replicas: ${replicas}
  selector:
    matchLabels: { app: ${app}, version: ${version} }
  template:
    metadata:
      labels: { app: ${app}, version: ${version} }
    spec:
      containers:
        - name: ${app}
          image: example.com/${app}:${version}
`
}

/** A Service `name` labelled `{ app: reviews }`, port http 9080, over the pods `selector` (flow YAML) picks. */
export function reviewsService(name: string, selector: string): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  labels: { app: reviews }
spec:
  selector: ${selector}
  ports: [{ name: http, port: 9080 }]
`
}

/** The per-version Service `reviews-<version>` (a host-level split's destination), over that version's pods unless `selector` says otherwise. */
export function versionService(version: string, selector = `{ app: reviews, version: ${version} }`): string {
  return reviewsService(`reviews-${version}`, selector)
}
