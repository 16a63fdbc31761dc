#!/usr/bin/env bash
# Everything the demo and the tests need on a fresh machine: Debian packages (Prometheus, Chromium), the
# Go-built cluster binaries (etcd, kube-apiserver, controller-manager, scheduler, kwok) and the npm
# packages (including Node 24, the runtime of the action on GitHub). Idempotent: a second run only
# checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-cluster-deps.sh
bash .ci/install-report-deps.sh
if [[ ! -x node_modules/.bin/node ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
# The tests run on the action's runtime (node24), which the node@24 dev dependency installs.
version="$(node_modules/.bin/node --version 2>/dev/null || true)"
if [[ "$version" != v24.* ]]; then
  echo "setup: node_modules/.bin/node is '${version:-missing}', expected Node 24 from the node@24 package (its install script must be allowed to run)" >&2
  exit 1
fi
echo "setup: done (node for tests: $version)"
