import { describe, expect, it } from '@jest/globals'
import { holderIdentity } from '../../../src/main.js'

const env = {
  GITHUB_REPOSITORY: 'owner/repo',
  GITHUB_RUN_ID: '42',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_JOB: 'deploy',
  GITHUB_SERVER_URL: 'https://github.com'
}

describe('holderIdentity', () => {
  it('names the run, attempt, job and invocation, with the run URL', () => {
    expect(holderIdentity(env, 'abcd1234')).toEqual({
      holder: 'owner/repo run 42 attempt 2 job deploy invocation abcd1234 (https://github.com/owner/repo/actions/runs/42)',
      runUrl: 'https://github.com/owner/repo/actions/runs/42'
    })
    expect(holderIdentity({ ...env, RUNNER_NAME: 'GitHub Actions 7' }, 'abcd1234').holder).toContain(
      'job deploy runner GitHub Actions 7 invocation abcd1234'
    )
  })

  it('differs between two invocations with identical GitHub variables (matrix legs, two steps of one job)', () => {
    const holders = new Set(Array.from({ length: 50 }, () => holderIdentity(env).holder))
    expect(holders.size).toBe(50)
  })

  it('without GitHub variables: host, pid and invocation', () => {
    expect(holderIdentity({}, 'ff00ff00').holder).toMatch(/ pid \d+ invocation ff00ff00$/)
  })
})
