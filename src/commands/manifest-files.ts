// fs.promises on first use: node:fs/promises is not loaded by the commands that read no manifest.
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { ConfigError, quote } from '../errors.js'
import { INPUT } from '../config/inputs.js'
import { inputError, invalidInput, missingInput } from '../config/input-error.js'
import { parseManifest, type ManifestDocument } from '../config/manifests.js'

/** A manifest file larger than this is refused unread: a Deployment is a few KiB. */
export const MAX_MANIFEST_BYTES = 1024 * 1024
/** Most files the patterns may match: the action applies one Deployment, not a directory tree. */
export const MAX_MANIFEST_FILES = 100

export interface LoadedManifests {
  /** Every matched file, in order, without duplicates. */
  files: string[]
  documents: ManifestDocument[]
}

/**
 * Read the manifest files named by paths or globs (relative to `cwd`) and parse them with
 * config's parseManifest. Rejects with a ConfigError naming the input and the pattern, or the
 * file, on: no pattern, a pattern matching no file or a directory, more than 100 files, a file
 * over 1 MiB; and parseManifest's errors (file:line).
 */
export async function loadManifests(patterns: readonly string[], opts: { cwd: string }): Promise<LoadedManifests> {
  if (patterns.length === 0) {
    throw missingInput(INPUT.manifests, 'expected paths or globs of the canary Deployment manifest')
  }
  const files: string[] = []
  for (const pattern of patterns) {
    for (const file of await matchPattern(pattern, opts.cwd)) {
      if (!files.includes(file)) files.push(file)
    }
  }
  if (files.length > MAX_MANIFEST_FILES) {
    throw inputError(
      INPUT.manifests,
      `matches ${files.length} files, more than ${MAX_MANIFEST_FILES}: name the canary Deployment's manifest`,
      patterns.join('\n')
    )
  }
  const documents: ManifestDocument[] = []
  for (const file of files) documents.push(...parseManifest(file, await readManifest(file, path.resolve(opts.cwd, file))))
  return { files, documents }
}

const GLOB_CHARS = /[*?[\]{}]/

async function matchPattern(pattern: string, cwd: string): Promise<string[]> {
  const display = (abs: string): string => {
    const rel = path.relative(cwd, abs)
    return rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel
  }
  if (!GLOB_CHARS.test(pattern)) {
    const abs = path.resolve(cwd, pattern)
    const info = await fs.stat(abs).catch(() => undefined)
    if (!info) throw invalidInput(INPUT.manifests, `file ${quote(pattern)} does not exist (looked in ${cwd})`)
    if (info.isDirectory()) {
      throw invalidInput(
        INPUT.manifests,
        `${quote(pattern)} is a directory: name the file, or use a glob like ${quote(`${pattern.replace(/\/+$/, '')}/*.yaml`)}`
      )
    }
    return [display(abs)]
  }
  const found: string[] = []
  for await (const entry of fs.glob(pattern, { cwd, withFileTypes: true })) {
    if (!entry.isFile()) continue
    found.push(display(path.join(entry.parentPath, entry.name)))
    if (found.length > MAX_MANIFEST_FILES) break
  }
  if (found.length === 0) throw invalidInput(INPUT.manifests, `glob ${quote(pattern)} matches no file (looked in ${cwd})`)
  return found.sort()
}

/** The file's text, refused unread when it is over the size limit. */
async function readManifest(file: string, abs: string): Promise<string> {
  const { size } = await fs.stat(abs)
  if (size > MAX_MANIFEST_BYTES) {
    throw new ConfigError(`Manifest ${file} is too large: ${formatBytes(size)}, the limit is 1 MiB (a Deployment manifest is a few KiB).`)
  }
  return fs.readFile(abs, 'utf8')
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`
}
