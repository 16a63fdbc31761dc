// Lint: typescript-eslint's recommended rules, plus the import rules of docs/engineering.md
// written as no-restricted-imports, so a boundary cannot erode without CI saying so.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** `from` may not import any of `groups`; `why` is what the error says. */
function never(files, groups, why) {
  return {
    files,
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: groups, message: why }] }] }
  }
}

const ADAPTERS = ['**/cluster/**', '**/traffic/**', '**/health/**', '**/report/**', '**/main.js']
const RUNNER = ['@actions/*', 'node:*']

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.cluster/**', '.cluster-bin/**', 'test-cluster/**', '.bench/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        fetch: 'readonly'
      }
    },
    rules: {
      'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
      // Inputs and Markdown are checked for control characters on purpose, to refuse or strip them.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }]
    }
  },
  {
    // Functions it hands to the browser (page.evaluate) run where `document` exists.
    files: ['scripts/report-gallery.mjs'],
    languageOptions: { globals: { document: 'readonly' } }
  },
  {
    // Tests may be long (tables) and use any for hand-built API responses.
    files: ['__tests__/**', 'scripts/**'],
    rules: { 'max-lines-per-function': 'off', '@typescript-eslint/no-explicit-any': 'off' }
  },
  never(
    ['src/rollout/**'],
    [...ADAPTERS, ...RUNNER],
    'rollout/ is the pure core: it decides over splits and results, it does not fetch, route, report or know the runner.'
  ),
  never(
    ['src/kube/**'],
    ['**/cluster/**', '**/config/**', '**/rollout/**', '**/traffic/**', '**/health/**', '**/report/**', '**/commands/**', ...RUNNER],
    'kube/ is the ground floor: it imports nothing of ours.'
  ),
  never(
    ['src/config/**'],
    ['**/cluster/**', ...RUNNER],
    'config/ holds pure parsers: parsing inputs never needs the cluster, the runner or a file (commands/manifest-files.ts reads them).'
  ),
  never(['src/traffic/**'], ['**/health/**'], 'routing does not depend on judging.'),
  never(['src/report/**'], ['**/cluster/**'], 'a report renders recorded history, it does not query.')
)
