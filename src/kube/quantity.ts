/**
 * Kubernetes resource quantities (`250m`, `1.5`, `128Mi`, `1G`, `2e3`) as numbers in base units
 * (cores, bytes), exact enough to compare a quota with what pods request.
 */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 }

/** The value of a quantity in base units; undefined when it is not one. */
export function parseQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value !== 'string') return undefined
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E)?)$/.exec(value.trim())
  if (!m) return undefined
  const n = Number(m[1])
  if (m[2]) return n * BINARY[m[2]]!
  if (m[3]) return n * 10 ** Number(m[3].slice(1))
  return n * DECIMAL[m[4] ?? '']!
}

/** A quantity for people: cores as `750m` or `2`, bytes as `384Mi` / `1.5Gi`, counts as they are. */
export function formatQuantity(resource: string, value: number): string {
  if (/cpu$/.test(resource)) {
    const milli = Math.round(value * 1000)
    return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`
  }
  if (/(memory|storage)$/.test(resource)) {
    for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
      const scaled = value / BINARY[unit]!
      if (scaled >= 1) return `${Number(scaled.toFixed(2))}${unit}`
    }
  }
  return String(Number(value.toFixed(3)))
}
