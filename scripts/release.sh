#!/usr/bin/env bash
# Releases istio-canary. Two steps, each from a clean checkout:
#
#   bash scripts/release.sh prepare X.Y.Z     # on a branch: package.json version and CHANGELOG.md's
#                                             # Unreleased -> "## [X.Y.Z] - today"; open a PR, merge it
#   bash scripts/release.sh [--dry-run] X.Y.Z # on main once CI is green on it (or the release workflow)
#
# The release refuses unless: main is checked out at the remote's main, the tree is clean,
# package.json says X.Y.Z, vX.Y.Z does not exist and is newer than every release tag, CHANGELOG.md
# has a non-empty section for X.Y.Z, the CI workflow's latest run on this commit succeeded, and
# `npm run bundle` leaves dist/ unchanged. Then it pushes the annotated tag vX.Y.Z, publishes a
# GitHub release (notes = that CHANGELOG section) and force-moves the major tag vX to the same
# commit. vX stays a plain git tag with no release attached: with immutable releases a release's
# tag can never move, so the major tag must not be one.
#
# --dry-run runs every check and prints every command that would change something, without running
# it. Environment: RELEASE_REMOTE (default origin), RELEASE_CI_WORKFLOW (default ci.yml),
# GH_TOKEN / GITHUB_REPOSITORY for gh in GitHub Actions.
set -euo pipefail
cd "$(dirname "$0")/.."

REMOTE="${RELEASE_REMOTE:-origin}"
CI_WORKFLOW="${RELEASE_CI_WORKFLOW:-ci.yml}"
DRY=0

say() { printf 'release: %s\n' "$*" >&2; }
refuse() {
  printf 'release: REFUSED: %s\n' "$*" >&2
  exit 1
}
# Runs a command that changes something (or only prints it with --dry-run).
run() {
  if [[ $DRY == 1 ]]; then
    printf '+ %s    # dry run: not run\n' "$*"
  else
    printf '+ %s\n' "$*"
    "$@"
  fi
}

# The changelog tool is TypeScript run by Node's type stripping (Node >= 22.18; the node@24 dev
# dependency is used when installed, as in `npm run`).
NODE=node
if [[ -x node_modules/.bin/node ]]; then NODE=node_modules/.bin/node; fi
if ! "$NODE" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)'; then
  refuse "$NODE is Node $("$NODE" --version); the release scripts need Node >= 22.18 (run 'npm ci' for Node 24)"
fi

SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$'

prepare() {
  local version="$1"
  [[ "$version" =~ $SEMVER ]] || refuse "version '$version' is not X.Y.Z (e.g. 1.2.3, no leading v)"
  [[ -z "$(git status --porcelain)" ]] || refuse "the working tree has changes; commit or stash them first"
  "$NODE" scripts/changelog.ts prepare "$version" || refuse "CHANGELOG.md could not be prepared for $version"
  npm version "$version" --no-git-tag-version --allow-same-version >/dev/null
  say "package.json and CHANGELOG.md now say $version. Next:"
  say "  git switch -c release-$version && git commit -am 'Release $version' && open a pull request;"
  say "  once it is merged and CI is green on main: the release workflow (version $version), or"
  say "  bash scripts/release.sh --dry-run $version   then   bash scripts/release.sh $version"
}

release() {
  local version="$1" tag major sha latest branch pkg_version ci
  [[ "$version" =~ $SEMVER ]] || refuse "version '$version' is not X.Y.Z (e.g. 1.2.3, no leading v)"
  tag="v$version"
  major="v${version%%.*}"

  # --- checks: nothing below changes the repository or the remote until they all pass -----------
  git fetch --quiet "$REMOTE" main || refuse "cannot fetch main from remote '$REMOTE'"
  git fetch --quiet --force --tags "$REMOTE" || refuse "cannot fetch tags from remote '$REMOTE'"
  branch="$(git symbolic-ref --quiet --short HEAD || echo '(detached HEAD)')"
  [[ "$branch" == main ]] || refuse "releases are made from main; this checkout is on $branch"
  sha="$(git rev-parse HEAD)"
  [[ "$sha" == "$(git rev-parse "$REMOTE/main")" ]] || refuse "main ($sha) is not $REMOTE/main ($(git rev-parse "$REMOTE/main")): pull or push first"
  [[ -z "$(git status --porcelain)" ]] || refuse "the working tree has changes: $(git status --porcelain | head -3 | tr '\n' ' ')"
  say "main is $REMOTE/main at $sha, clean"

  pkg_version="$("$NODE" -p 'require("./package.json").version')"
  [[ "$pkg_version" == "$version" ]] || refuse "package.json says version $pkg_version, not $version: run 'bash scripts/release.sh prepare $version' in a pull request first"
  say "package.json version is $version"

  if git rev-parse --quiet --verify "refs/tags/$tag" >/dev/null || [[ -n "$(git ls-remote --tags "$REMOTE" "refs/tags/$tag")" ]]; then
    refuse "tag $tag already exists: a released version is never re-tagged; release a new version"
  fi
  latest="$(git tag --list 'v[0-9]*.[0-9]*.[0-9]*' | sed 's/^v//' | grep -E "$SEMVER" | sort -V | tail -n 1 || true)"
  if [[ -n "$latest" && "$(printf '%s\n%s\n' "$latest" "$version" | sort -V | tail -n 1)" != "$version" ]]; then
    refuse "$version is not newer than the latest release v$latest"
  fi
  say "tag $tag is new (latest release: ${latest:+v}${latest:-none})"

  notes="$(mktemp)" # global: the EXIT trap runs after release() has returned
  trap 'rm -f "$notes"' EXIT
  "$NODE" scripts/changelog.ts notes "$version" >"$notes" || refuse "no release notes for $version in CHANGELOG.md"
  say "release notes: CHANGELOG.md's section for $version ($(wc -l <"$notes") lines)"

  if command -v gh >/dev/null 2>&1; then
    ci="$(gh run list --workflow "$CI_WORKFLOW" --commit "$sha" --limit 1 --json status,conclusion --jq '.[0] | "\(.status) \(.conclusion)"' 2>&1)" \
      || refuse "cannot read the CI runs of $sha with gh: $ci"
    case "$ci" in
      'completed success') say "CI ($CI_WORKFLOW) passed on $sha" ;;
      '' | null*) refuse "no $CI_WORKFLOW run for $sha: main must be green before a release" ;;
      completed*) refuse "the latest $CI_WORKFLOW run on $sha ended '${ci#completed }': main must be green before a release" ;;
      *) refuse "the latest $CI_WORKFLOW run on $sha is '${ci%% *}': wait for it to pass" ;;
    esac
  elif [[ $DRY == 1 ]]; then
    say "CI check SKIPPED: gh is not installed (a real release refuses without it)"
  else
    refuse "gh (GitHub CLI) is needed to check CI on $sha and to publish the release"
  fi

  npm run --silent bundle >/dev/null || refuse "npm run bundle failed"
  if [[ -n "$(git status --porcelain -- dist)" ]]; then
    local stale
    stale="$(git status --porcelain -- dist | head -5 | tr '\n' ' ')"
    git checkout --quiet -- dist && git clean --quiet -fd -- dist
    refuse "dist/ is stale (npm run bundle changes: $stale): commit the rebuilt dist/ to main first"
  fi
  say "dist/ is what the sources bundle to"

  # --- the release --------------------------------------------------------------------------------
  say "releasing $tag at $sha; moving $major to it"
  run git tag --annotate "$tag" --message "istio-canary $tag" "$sha"
  run git push "$REMOTE" "refs/tags/$tag"
  run gh release create "$tag" --verify-tag --title "$tag" --notes-file "$notes"
  run git tag --force "$major" "$sha"
  run git push --force "$REMOTE" "refs/tags/$major"
  if [[ $DRY == 1 ]]; then
    say "dry run: nothing was tagged, pushed or published. Release notes:"
    sed 's/^/    | /' "$notes"
  else
    say "released $tag; $major -> $sha"
  fi
}

case "${1:-}" in
  prepare)
    [[ $# == 2 ]] || refuse "usage: bash scripts/release.sh prepare X.Y.Z"
    prepare "$2"
    ;;
  --dry-run)
    [[ $# == 2 ]] || refuse "usage: bash scripts/release.sh [--dry-run] X.Y.Z"
    DRY=1
    release "$2"
    ;;
  '' | -*)
    refuse "usage: bash scripts/release.sh [--dry-run] X.Y.Z | prepare X.Y.Z"
    ;;
  *)
    [[ $# == 1 ]] || refuse "usage: bash scripts/release.sh [--dry-run] X.Y.Z"
    release "$1"
    ;;
esac
