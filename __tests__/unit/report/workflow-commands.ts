/**
 * Captures the workflow commands (`::warning::`, `::notice::`, ...) that @actions/core writes to
 * stdout, so tests can assert what a run would show in the Actions UI.
 */
export interface CapturedCommands {
  lines: string[]
  of(command: string): string[]
  restore(): void
}

export function captureWorkflowCommands(): CapturedCommands {
  const lines: string[] = []
  const original = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    lines.push(...text.split(/\r?\n/).filter((l) => l !== ''))
    void rest
    return true
  }) as typeof process.stdout.write
  return {
    lines,
    of: (command) => lines.filter((l) => l.startsWith(`::${command}`)),
    restore: () => {
      process.stdout.write = original
    }
  }
}
