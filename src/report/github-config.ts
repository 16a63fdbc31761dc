import { readBoolean } from '../config/boolean.js'
import { inputError } from '../config/input-error.js'
import { ConfigError, quote } from '../errors.js'

/** One action input of the GitHub reporting side, as action.yml declares it. */
export interface GithubInputSpec {
  description: string
  default?: string
}

/** The reporting inputs: names spelled once, with what action.yml must declare for them. */
export const GITHUB_INPUTS = {
  'github-token': {
    description:
      'Token for the PR comment and GitHub Deployments. Needs pull-requests: write (comment) and deployments: write (only with deployment-environment). Empty: no GitHub API calls, the job summary is still written.',
    default: '${{ github.token }}'
  },
  'pr-comment': {
    description: 'Keep one updatable comment with the report on the pull request of the commit (true or false).',
    default: 'true'
  },
  'comment-author': {
    description:
      'Login that writes the PR comment when github-token is not the workflow GITHUB_TOKEN (e.g. my-app[bot]); only comments by this login (or github-actions[bot]) carrying the marker are updated.'
  },
  'deployment-environment': {
    description: 'When set, record each run as a GitHub Deployment to this environment, with in_progress / success / failure statuses.'
  },
  'production-environment': {
    description: 'Mark the deployment environment as a production environment (true or false).',
    default: 'false'
  }
} as const satisfies Record<string, GithubInputSpec>

export type GithubInputName = keyof typeof GITHUB_INPUTS

/** The reporting configuration, parsed and checked. */
export interface GithubConfig {
  /** Empty when no token was given: GitHub API reports are skipped. */
  token: string
  prComment: boolean
  /** Logins whose marked comments we may update (always includes github-actions[bot]). */
  commentAuthors: string[]
  deploymentEnvironment?: string
  productionEnvironment: boolean
  /** REST API root (GITHUB_API_URL on the runner, GitHub Enterprise Server included). */
  apiUrl: string
}

/** The login of the workflow's GITHUB_TOKEN when it writes comments. */
export const ACTIONS_BOT_LOGIN = 'github-actions[bot]'

const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?$/

function invalid(name: GithubInputName, detail: string, value: string): ConfigError {
  return inputError(name, detail, value)
}

function parseBoolean(name: GithubInputName, raw: string | undefined): boolean {
  const value = (raw ?? '').trim()
  if (value === '') return (GITHUB_INPUTS[name] as GithubInputSpec).default === 'true'
  return readBoolean(name, value)
}

/**
 * Parse the reporting inputs (raw strings as core.getInput returns them, empty when unset) and the
 * environment. Throws ConfigError naming the input, quoting the value, saying what was expected.
 */
export function parseGithubConfig(
  inputs: Partial<Record<GithubInputName, string | undefined>>,
  env: Record<string, string | undefined> = process.env
): GithubConfig {
  const token = (inputs['github-token'] ?? '').trim()
  const prComment = parseBoolean('pr-comment', inputs['pr-comment'])
  const productionEnvironment = parseBoolean('production-environment', inputs['production-environment'])

  const author = (inputs['comment-author'] ?? '').trim().replace(/^@/, '')
  if (author !== '' && !LOGIN.test(author)) {
    throw invalid('comment-author', 'expected a GitHub login such as my-app[bot] or octocat', inputs['comment-author'] ?? '')
  }
  const commentAuthors = [ACTIONS_BOT_LOGIN, ...(author && author !== ACTIONS_BOT_LOGIN ? [author] : [])]

  const environment = (inputs['deployment-environment'] ?? '').trim()
  if (environment.length > 255 || /[\u0000-\u001f\u007f]/.test(environment)) {
    throw invalid('deployment-environment', 'expected an environment name of at most 255 printable characters', environment)
  }

  const apiUrl = (env['GITHUB_API_URL'] ?? '').trim() || 'https://api.github.com'
  try {
    const url = new URL(apiUrl)
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('protocol')
  } catch {
    throw new ConfigError(`Environment variable 'GITHUB_API_URL' is invalid: expected an http(s) URL (got ${quote(apiUrl)}).`)
  }

  return {
    token,
    prComment,
    commentAuthors,
    ...(environment ? { deploymentEnvironment: environment } : {}),
    productionEnvironment,
    apiUrl: apiUrl.replace(/\/+$/, '')
  }
}
