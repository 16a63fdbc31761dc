/** How numbers and errors read in logs, check details and reports: one rule each. */

/**
 * A number for people: 4 decimals below 1, 2 below 100, 1 from there on, without trailing
 * zeros (0.0123, 99.95, 80, 1234.6).
 */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 4
  return String(Number(n.toFixed(digits)))
}

/** The message of anything thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
