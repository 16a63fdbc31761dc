import { run } from './main.js'

// The entry point of `runs.main`: only calls run(), so tests can import main.ts without side effects.
process.exitCode = await run()
