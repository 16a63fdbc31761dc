#!/usr/bin/env bash
# Stops the local test cluster started by test-cluster/up.sh: every process recorded in .cluster/pids,
# in reverse start order, SIGTERM then (after up to 10 s) SIGKILL. Never kills by name.
# State and logs stay in .cluster/ (up.sh starts from a clean state anyway).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S="${ISTIO_CANARY_CLUSTER_STATE:-$ROOT/.cluster}"
log() { printf '[cluster:down] %s\n' "$*" >&2; }

if [[ -z "${ISTIO_CANARY_CLUSTER_LOCKED:-}" && -d "$S" ]]; then
  exec 9>"$S/.lock"
  command -v flock >/dev/null 2>&1 && flock -w 600 9
fi
# alive: exists and is not a zombie waiting to be reaped
is_alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

if [[ ! -f "$S/pids" ]]; then
  log "nothing to stop (no $S/pids)"
  exit 0
fi

mapfile -t lines < <(tac "$S/pids")
for line in "${lines[@]}"; do
  read -r name pid <<<"$line"
  [[ -n "${pid:-}" ]] || continue
  if ! is_alive "$pid"; then
    log "$name (pid $pid) already gone"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    is_alive "$pid" || break
    sleep 0.1
  done
  if is_alive "$pid"; then
    log "$name (pid $pid) did not stop on SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  else
    log "stopped $name (pid $pid)"
  fi
done
rm -f "$S/pids" "$S/env"
