import { inputError } from '../config/input-error.js'
import { booleanInput, type Inputs } from '../config/input-reader.js'
import { ConfigError, quote } from '../errors.js'

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

/**
 * Parse the reporting inputs (raw strings as core.getInput returns them, empty when unset) and the
 * environment. Throws ConfigError naming the input, quoting the value, saying what was expected.
 */
export function parseGithubConfig(inputs: Inputs, env: Record<string, string | undefined> = process.env): GithubConfig {
  // Not inputValue: an empty token means "no GitHub API calls", not the default expression.
  const token = (inputs['github-token'] ?? '').trim()
  const prComment = booleanInput(inputs, 'pr-comment')
  const productionEnvironment = booleanInput(inputs, 'production-environment')

  const author = (inputs['comment-author'] ?? '').trim().replace(/^@/, '')
  if (author !== '' && !LOGIN.test(author)) {
    throw inputError('comment-author', 'expected a GitHub login such as my-app[bot] or octocat', inputs['comment-author'] ?? '')
  }
  const commentAuthors = [ACTIONS_BOT_LOGIN, ...(author && author !== ACTIONS_BOT_LOGIN ? [author] : [])]

  const environment = (inputs['deployment-environment'] ?? '').trim()
  if (environment.length > 255 || /[\u0000-\u001f\u007f]/.test(environment)) {
    throw inputError('deployment-environment', 'expected an environment name of at most 255 printable characters', environment)
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
