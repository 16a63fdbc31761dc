#!/usr/bin/env bash
# Installs what `npm run report:gallery` needs to look at the reports in a real browser: Debian's
# chromium (driven by playwright-core from npm; no browser download). Idempotent.
set -euo pipefail
log() { printf '[install-report-deps] %s\n' "$*" >&2; }
if [[ -x /usr/bin/chromium || -x /usr/bin/google-chrome || -n "${CHROMIUM_PATH:-}" ]]; then
  log "browser: present"
  exit 0
fi
if [[ $(id -u) != 0 ]] && ! command -v sudo >/dev/null 2>&1; then
  log "ERROR: chromium is missing and this is not root (no sudo): apt-get install chromium as root"; exit 1
fi
SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
log "apt-get install chromium"
$SUDO apt-get update -qq || { log "ERROR: apt-get update failed"; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null || { log "ERROR: apt-get install chromium failed"; exit 1; }
