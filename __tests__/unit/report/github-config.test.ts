import { describe, expect, test } from '@jest/globals'
import { ConfigError } from '../../../src/errors.js'
import { INPUT_NAMES, INPUTS } from '../../../src/config/inputs.js'
import { parseGithubConfig } from '../../../src/report/github-config.js'

describe('parseGithubConfig', () => {
  test('defaults: comment on, no deployments, github-actions[bot] as the only author, public API', () => {
    expect(parseGithubConfig({ 'github-token': 'ghs_x' }, {})).toEqual({
      token: 'ghs_x',
      prComment: true,
      commentAuthors: ['github-actions[bot]'],
      productionEnvironment: false,
      apiUrl: 'https://api.github.com'
    })
  })

  test('every input set', () => {
    const config = parseGithubConfig(
      {
        'github-token': ' pat ',
        'pr-comment': 'False',
        'comment-author': '@deploy-app[bot]',
        'deployment-environment': 'production / eu',
        'production-environment': 'TRUE'
      },
      { GITHUB_API_URL: 'https://ghe.example.com/api/v3/' }
    )
    expect(config).toEqual({
      token: 'pat',
      prComment: false,
      commentAuthors: ['github-actions[bot]', 'deploy-app[bot]'],
      deploymentEnvironment: 'production / eu',
      productionEnvironment: true,
      apiUrl: 'https://ghe.example.com/api/v3'
    })
  })

  test.each([
    [{ 'pr-comment': 'yes' }, `Input 'pr-comment' is invalid: expected true or false (got "yes").`],
    [{ 'production-environment': '1' }, `Input 'production-environment' is invalid: expected true or false (got "1").`],
    [
      { 'comment-author': 'not a login!' },
      `Input 'comment-author' is invalid: expected a GitHub login such as my-app[bot] or octocat (got "not a login!").`
    ],
    [
      { 'deployment-environment': 'prod\nstaging' },
      `Input 'deployment-environment' is invalid: expected an environment name of at most 255 printable characters (got "prod\\nstaging").`
    ]
  ])('%j is refused', (inputs, message) => {
    expect(() => parseGithubConfig(inputs, {})).toThrow(new ConfigError(message))
  })

  test('a GITHUB_API_URL that is not a URL is refused', () => {
    expect(() => parseGithubConfig({}, { GITHUB_API_URL: 'file:///etc/passwd' })).toThrow(
      `Environment variable 'GITHUB_API_URL' is invalid: expected an http(s) URL (got "file:///etc/passwd").`
    )
  })

  test('the catalogue declares the token default and the boolean defaults action.yml needs', () => {
    expect(INPUT_NAMES.filter((name) => INPUTS[name].group === 'github')).toEqual([
      'github-token',
      'pr-comment',
      'comment-author',
      'deployment-environment',
      'production-environment'
    ])
    expect(INPUTS['github-token'].default).toBe('${{ github.token }}')
    expect(INPUTS['pr-comment'].default).toBe('true')
    expect(INPUTS['production-environment'].default).toBe('false')
  })
})
