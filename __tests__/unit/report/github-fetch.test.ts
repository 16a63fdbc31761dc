/**
 * githubFetch, the fetch Octokit uses: the GitHub reporter tests run every call through it against
 * the fake GitHub; these cover what they do not reach (redirects, headers, cancellation).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { githubFetch } from '../../../src/report/github-fetch.js'

interface Seen {
  url: string
  method: string
  authorization?: string
  body: string
}

async function server(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void
): Promise<{ url: string; seen: Seen[]; close: () => void }> {
  const seen: Seen[] = []
  const s = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const one = { url: req.url!, method: req.method!, authorization: req.headers.authorization, body }
      seen.push(one)
      handler(req, res, one)
    })
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    seen,
    close: () => {
      s.closeAllConnections()
      s.close()
    }
  }
}

test('returns status, headers (get and iteration) and the body as text or JSON; error statuses are answers, not throws', async () => {
  const gh = await server((_req, res) => {
    res.writeHead(422, { 'content-type': 'application/json; charset=utf-8', 'x-github-request-id': 'abc' })
    res.end('{"message":"Validation Failed"}')
  })
  try {
    const r = await githubFetch(`${gh.url}/repos/a/b/issues/1/comments`, {
      method: 'POST',
      headers: { authorization: 'token t' },
      body: '{"body":"x"}'
    })
    expect(r.status).toBe(422)
    expect(r.ok).toBe(false)
    expect(r.headers.get('Content-Type')).toBe('application/json; charset=utf-8')
    expect(Object.fromEntries(r.headers)).toMatchObject({ 'x-github-request-id': 'abc' })
    expect(await r.json()).toEqual({ message: 'Validation Failed' })
    expect(gh.seen[0]).toMatchObject({ method: 'POST', body: '{"body":"x"}', authorization: 'token t' })
  } finally {
    gh.close()
  }
})

test('follows a redirect; the token goes along only to the same origin', async () => {
  const other = await server((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('elsewhere'))
  const gh = await server((req, res) => {
    if (req.url === '/old') res.writeHead(301, { location: '/new' }).end()
    else if (req.url === '/new') res.writeHead(302, { location: `${other.url}/x` }).end()
  })
  try {
    const r = await githubFetch(`${gh.url}/old`, { headers: { authorization: 'token secret' } })
    expect(r.status).toBe(200)
    expect(await r.text()).toBe('elsewhere')
    expect(r.url).toBe(`${other.url}/x`)
    expect(gh.seen.map((s) => [s.url, s.authorization])).toEqual([
      ['/old', 'token secret'],
      ['/new', 'token secret']
    ])
    expect(other.seen[0].authorization).toBeUndefined()
  } finally {
    gh.close()
    other.close()
  }
})

test('a request that hangs is cancelled by its signal', async () => {
  const gh = await server(() => undefined)
  try {
    await expect(githubFetch(`${gh.url}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({ name: 'AbortError' })
  } finally {
    gh.close()
  }
})
