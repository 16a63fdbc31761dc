/**
 * Input 'virtual-service': one VirtualService, or several moved in lockstep, one per line or
 * comma-separated. Each entry is `name` or `name/route` (the http route to split in it); an entry
 * without a route takes input 'route', which stays what it was for a single VirtualService. The
 * first entry holds the rollout state and names the lock.
 */
import { inputError } from './input-error.js'
import { INPUT } from './inputs.js'
import { isDns1123Subdomain } from './kube-names.js'

/** One VirtualService of the rollout and the route to split in it (undefined: the only one). */
export interface VirtualServiceTarget {
  name: string
  route?: string
}

/** Parse input 'virtual-service' (already trimmed, non-empty); `route` is input 'route'. */
export function parseVirtualServices(value: string, route?: string): VirtualServiceTarget[] {
  const entries = value
    .split(/[\n,]/)
    .map((e) => e.trim())
    .filter((e) => e !== '')
  const targets: VirtualServiceTarget[] = []
  for (const entry of entries) {
    const slash = entry.indexOf('/')
    const name = (slash < 0 ? entry : entry.slice(0, slash)).trim()
    const own = slash < 0 ? undefined : entry.slice(slash + 1).trim()
    if (!isDns1123Subdomain(name)) {
      throw inputError(
        INPUT.virtualService,
        `entry ${JSON.stringify(entry)} does not start with a VirtualService name: expected "name" or "name/route" per line or comma, ` +
          `the name in lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters`,
        value
      )
    }
    if (own !== undefined && (own === '' || own.length > 253)) {
      throw inputError(
        INPUT.virtualService,
        `entry ${JSON.stringify(entry)} names no route after "/": expected "name/route", the route the name of one http route of that VirtualService (at most 253 characters)`,
        value
      )
    }
    if (targets.some((t) => t.name === name)) {
      throw inputError(
        INPUT.virtualService,
        `VirtualService ${JSON.stringify(name)} is named twice: expected each VirtualService once (split one route per VirtualService)`,
        value
      )
    }
    const r = own ?? route
    targets.push(r === undefined ? { name } : { name, route: r })
  }
  return targets
}
