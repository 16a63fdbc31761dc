#!/usr/bin/env bash
# Installs what the local test cluster needs on a fresh Debian machine, idempotently:
#   - Debian packages: prometheus (prometheus + promtool), curl, openssl, ca-certificates
#   - the cluster binaries (etcd, kube-*, kubectl, kwok) built from Go modules: test-cluster/build.sh
# The Debian prometheus package would start a system Prometheus on :9090; a temporary
# policy-rc.d stops invoke-rc.d from starting it (our tests run their own prometheus process).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[install-cluster-deps] %s\n' "$*" >&2; }

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need+=(ca-certificates)

if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]] && ! command -v sudo >/dev/null 2>&1; then
    log "ERROR: missing ${need[*]} and not root (no sudo): install them with apt-get as root"; exit 1
  fi
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && made_policy=1
  fi
  trap 'if [[ $made_policy == 1 ]]; then $SUDO rm -f "$policy"; fi' EXIT
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || { log "ERROR: apt-get update failed"; exit 1; }
  $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null \
    || { log "ERROR: apt-get install ${need[*]} failed"; exit 1; }
  # If a system prometheus got started anyway (no policy honoured), stop it by its pid file.
  for pf in /run/prometheus/prometheus.pid /var/run/prometheus.pid; do
    if [[ -f $pf ]]; then $SUDO kill "$(cat "$pf")" 2>/dev/null || true; fi
  done
fi
log "prometheus: $(prometheus --version 2>&1 | head -1)"

bash "$ROOT/test-cluster/build.sh"
