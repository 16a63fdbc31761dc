/**
 * githubFetch honours HTTP_PROXY / HTTPS_PROXY / NO_PROXY (Node's agent proxyEnv), as a self-hosted
 * runner sets them. Its own file: githubFetch makes its agents once, from the environment of its
 * first request.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY }
let proxy: http.Server
const seen: string[] = []

beforeAll(async () => {
  proxy = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    res.writeHead(200, { 'content-type': 'text/plain' }).end('via proxy')
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  process.env.NO_PROXY = 'bypass.test'
})
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  proxy.closeAllConnections()
  proxy.close()
})

test('requests go to the proxy from HTTP_PROXY; hosts in NO_PROXY do not', async () => {
  const { githubFetch } = await import('../../../src/report/github-fetch.js')
  const r = await githubFetch('http://api.github.test/repos/a/b', { headers: { authorization: 'token t' } })
  expect(await r.text()).toBe('via proxy')
  expect(seen).toEqual(['GET http://api.github.test/repos/a/b'])
  await expect(githubFetch('http://bypass.test:1/x', { signal: AbortSignal.timeout(2000) })).rejects.toThrow()
  expect(seen).toHaveLength(1)
})
