/**
 * Preflight of a TCP route's gates: loaded only by the runs that split a TCP route.
 */
import { PreflightError } from '../errors.js'
import type { CommandDeps } from './command-deps.js'

/** A TCP route carries no HTTP requests: a check over Istio's HTTP metrics would never see data. */
export function checkTcpGates(deps: CommandDeps, where: string): void {
  const http = deps.gates.flatMap((g) => g.httpOnlyChecks?.() ?? [])
  if (http.length === 0) return
  throw new PreflightError(
    `Check ${http.join(', ')} measures HTTP requests, but ${where} is a TCP route: Istio reports no request metrics for it, so the check would never see data. ` +
      `Expected checks over Istio's TCP metrics instead, in input 'checks' (istio_tcp_connections_opened_total, istio_tcp_connections_closed_total ` +
      `with response_flags for connection errors, istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total; see the README's TCP routes)` +
      (http.some((c) => c.startsWith('min-requests')) ? `, and 'min-requests' set to 0.` : '.')
  )
}
