// One plain closing line, e.g. `jest: 1012 passed, 0 failed, 1 skipped`, for a CI that reads the
// last lines of a run rather than Jest's "Tests:" table. Jest prints its own summary after the
// reporters, so .ci/run prints the line again, last, from the file named by
// ISTIO_CANARY_CLOSING_LINE_FILE.
import fs from 'node:fs'

export default class ClosingLineReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites
    const line = `jest: ${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests + results.numTodoTests} skipped`
    process.stdout.write(`\n${line}\n`)
    if (process.env.ISTIO_CANARY_CLOSING_LINE_FILE) fs.writeFileSync(process.env.ISTIO_CANARY_CLOSING_LINE_FILE, `${line}\n`)
  }
}
