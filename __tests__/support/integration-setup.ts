import { beforeAll, jest } from '@jest/globals'
import { preloadLazyModules } from '../../src/commands/lazy-modules.js'
import { loadKubeCapacity } from '../../src/cluster/kube-cluster.js'
import { loadReportWriters } from '../../src/report/reporter.js'

// testTimeout is a global Jest option, not a per-project one: integration tests set theirs here.
jest.setTimeout(180_000)

// The action imports some modules on first use. Jest refuses an import() from test code once another
// test of the same file has ended (it.concurrent files), so files that run commands in-process get
// them loaded before their first test; the action keeps each loaded module.
beforeAll(async () => {
  await Promise.all([preloadLazyModules(), loadKubeCapacity(), loadReportWriters()])
})
