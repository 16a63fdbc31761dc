#!/usr/bin/env bash
# Starts the local test cluster (idempotent): etcd, kube-apiserver (RBAC), kube-controller-manager,
# kube-scheduler, kwok (fake nodes and pod status), the Istio metrics traffic source and Prometheus,
# istiod and meshsim (the mesh's simulated workloads and proxyless-gRPC callers), all on free
# loopback ports, with state in .cluster/ and binaries from .cluster-bin/. The Istio and Gateway
# API CRDs come from .cluster-bin/crds/ (test-cluster/build.sh copies them from the pinned modules).
#
#   bash test-cluster/up.sh        # or: npm run cluster:up
#   source .cluster/env       # KUBECONFIG, PROMETHEUS_URL, TRAFFIC_URL, ISTIOD_*, MESHSIM_URL
#   bash test-cluster/down.sh      # stop it
#
# Writes: .cluster/kubeconfig (admin, system:masters), .cluster/kubeconfig-restricted (user
# "restricted", no rights until a Role grants some), .cluster/pki/client.{crt,key} (user
# "cert-user", signed by the apiserver's --client-ca-file), .cluster/env, .cluster/pids ("name pid"
# lines), logs in .cluster/logs/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="$ROOT/test-cluster"
S="${ISTIO_CANARY_CLUSTER_STATE:-$ROOT/.cluster}"
BIN="${ISTIO_CANARY_CLUSTER_BIN:-$ROOT/.cluster-bin}"
T0=$(date +%s.%N)

log() { printf '[cluster:up] %s\n' "$*" >&2; }
die() {
  printf '[cluster:up] ERROR: %s\n' "$*" >&2
  if [[ -d "$S/logs" ]]; then
    for f in "$S"/logs/*.log; do printf -- '--- last lines of %s ---\n' "$f" >&2; tail -n 8 "$f" >&2 || true; done
  fi
  exit 1
}
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# --- one up/down at a time (several test runs may start it at once) -----------------------------
mkdir -p "$S"
if [[ -z "${ISTIO_CANARY_CLUSTER_LOCKED:-}" ]]; then
  exec 9>"$S/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 600 9 || die "another test-cluster/up.sh or down.sh holds $S/.lock for more than 10 min"
  fi
  export ISTIO_CANARY_CLUSTER_LOCKED=1
fi

# alive: exists and is not a zombie waiting to be reaped
is_alive() { kill -0 "$1" 2>/dev/null && [[ "$(sed -n 's/.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]]; }

# --- already running? -------------------------------------------------------------------------
alive_all() {
  [[ -s "$S/pids" ]] || return 1
  local name pid
  while read -r name pid; do
    [[ -n "$pid" ]] && is_alive "$pid" || return 1
  done <"$S/pids"
  return 0
}
if alive_all && [[ -f "$S/env" && -f "$S/admin-token" ]]; then
  # shellcheck source=/dev/null
  source "$S/env"
  if curl -sfk --max-time 2 -H "Authorization: Bearer $(cat "$S/admin-token")" "$(cat "$S/api-url")/readyz" >/dev/null 2>&1; then
    log "already running: $(cat "$S/api-url")"
    cat "$S/env"
    exit 0
  fi
fi
if [[ -f "$S/pids" ]]; then
  log "a previous cluster is partly running or unhealthy: stopping it first"
  bash "$CLUSTER/down.sh" || true
fi

# --- prerequisites ----------------------------------------------------------------------------
for tool in curl prometheus; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: run 'bash .ci/install-cluster-deps.sh' (Debian: apt-get install -y --no-install-recommends prometheus curl)"
done
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE="$(command -v node || true)"
[[ -n "$NODE" ]] || die "node not found (the traffic source is a Node.js program)"
bash "$CLUSTER/build.sh" || die "building the cluster binaries failed"
CRDS="$BIN/crds"
[[ -f "$CRDS/istio.yaml" ]] || die "no CRDs in $CRDS (test-cluster/build.sh copies them there)"
T_BUILT=$(elapsed)

# --- fresh state ------------------------------------------------------------------------------
find "$S" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
mkdir -p "$S/logs" "$S/pki" "$S/etcd" "$S/prometheus"
chmod 700 "$S" "$S/etcd"
touch "$S/pids"

# Free loopback ports: bind to port 0 several times, keep the numbers.
read -r P_ETCD P_PEER P_API P_KCM P_SCHED P_PROM P_TRAFFIC < <("$NODE" -e '
  const net = require("node:net"); const n = 7; const out = []; const socks = [];
  (function next() {
    if (out.length === n) { socks.forEach((s) => s.close()); console.log(out.join(" ")); return; }
    const s = net.createServer(); s.listen(0, "127.0.0.1", () => { out.push(s.address().port); socks.push(s); next(); });
  })();')
[[ -n "$P_TRAFFIC" ]] || die "could not pick free ports"
# --- istio: ports for istiod (HTTP /ready, plaintext xDS, monitoring/debug) and meshsim -----------
read -r P_ISTIOD_HTTP P_ISTIOD_XDS P_ISTIOD_MON P_MESHSIM < <("$NODE" -e '
  const net = require("node:net"); const n = 4; const out = []; const socks = [];
  (function next() {
    if (out.length === n) { socks.forEach((s) => s.close()); console.log(out.join(" ")); return; }
    const s = net.createServer(); s.listen(0, "127.0.0.1", () => { out.push(s.address().port); socks.push(s); next(); });
  })();')
[[ -n "$P_MESHSIM" ]] || die "could not pick free ports for istiod and meshsim"
# --- end istio ----------------------------------------------------------------------------------

rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
ADMIN_TOKEN="$(rand)"
RESTRICTED_TOKEN="$(rand)"
echo "$ADMIN_TOKEN" >"$S/admin-token"
echo "$RESTRICTED_TOKEN" >"$S/restricted-token"
chmod 600 "$S/admin-token" "$S/restricted-token"
cat >"$S/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,"system:masters"
$RESTRICTED_TOKEN,restricted,restricted
EOF
chmod 600 "$S/tokens.csv"
# RSA key for service-account tokens (Node's crypto: no openssl needed).
"$NODE" -e '
  const { generateKeyPairSync } = require("node:crypto"); const fs = require("node:fs");
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  fs.writeFileSync(process.argv[1] + "/sa.key", privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
  fs.writeFileSync(process.argv[1] + "/sa.pub", publicKey.export({ type: "spki", format: "pem" }));' "$S/pki"
# A client CA and one certificate signed by it (user "cert-user", no rights until a Role grants
# some), so client-certificate authentication is tested against the real apiserver.
ossl() { openssl "$@" >>"$S/logs/openssl.log" 2>&1 || die "openssl $1 failed: $(tail -3 "$S/logs/openssl.log")"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=istio-canary-test-client-ca" \
  -keyout "$S/pki/client-ca.key" -out "$S/pki/client-ca.crt"
ossl req -newkey rsa:2048 -nodes -subj "/O=istio-canary-test/CN=cert-user" -keyout "$S/pki/client.key" -out "$S/pki/client.csr"
ossl x509 -req -days 3650 -in "$S/pki/client.csr" -CA "$S/pki/client-ca.crt" -CAkey "$S/pki/client-ca.key" \
  -CAcreateserial -out "$S/pki/client.crt"
chmod 600 "$S/pki/client-ca.key" "$S/pki/client.key"

API_URL="https://127.0.0.1:$P_API"
echo "$API_URL" >"$S/api-url"
kubeconfig() { # file user token
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: istio-canary-test
  cluster:
    server: $API_URL
    certificate-authority: $S/pki/apiserver.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: istio-canary-test-$2
  context:
    cluster: istio-canary-test
    user: $2
    namespace: default
current-context: istio-canary-test-$2
EOF
  chmod 600 "$1"
}
kubeconfig "$S/kubeconfig" admin "$ADMIN_TOKEN"
kubeconfig "$S/kubeconfig-restricted" restricted "$RESTRICTED_TOKEN"

# --- process helpers --------------------------------------------------------------------------
start() { # name cmd...
  local name="$1"; shift
  setsid "$@" >"$S/logs/$name.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$name $pid" >>"$S/pids"
}
wait_http() { # what url timeout_s [curl args...]
  local what="$1" url="$2" timeout="$3"; shift 3
  local deadline=$(( $(date +%s) + timeout ))
  until curl -sf --max-time 1 "$@" "$url" >/dev/null 2>&1; do
    if (( $(date +%s) > deadline )); then die "$what did not become ready at $url within ${timeout}s"; fi
    check_alive
    sleep 0.1
  done
}
check_alive() {
  local name pid
  while read -r name pid; do
    is_alive "$pid" || die "$name (pid $pid) exited; see $S/logs/$name.log"
  done <"$S/pids"
}
KUBECTL=("$BIN/kubectl" --kubeconfig "$S/kubeconfig")

# --- start ------------------------------------------------------------------------------------
start etcd "$BIN/etcd" --name default --data-dir "$S/etcd" \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
  --initial-cluster "default=http://127.0.0.1:$P_PEER" --unsafe-no-fsync --log-level warn

start traffic-source "$NODE" "$CLUSTER/traffic-source/server.mjs" --host 127.0.0.1 --port "$P_TRAFFIC"
cat >"$S/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: traffic-source
  static_configs:
  - targets: ['127.0.0.1:$P_TRAFFIC']
- job_name: meshsim
  static_configs:
  - targets: ['127.0.0.1:$P_MESHSIM']
EOF
start prometheus prometheus --config.file "$S/prometheus.yml" --storage.tsdb.path "$S/prometheus" \
  --web.listen-address "127.0.0.1:$P_PROM" --storage.tsdb.retention.time 1d --log.level warn

wait_http etcd "http://127.0.0.1:$P_ETCD/health" 20

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$P_ETCD" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$P_API" \
  --cert-dir "$S/pki" --token-auth-file "$S/tokens.csv" --client-ca-file "$S/pki/client-ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$S/pki/sa.pub" --service-account-signing-key-file "$S/pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --disable-admission-plugins ServiceAccount,TaintNodesByCondition \
  --endpoint-reconciler-type none \
  --enable-priority-and-fairness=false --profiling=false

wait_http kube-apiserver "$API_URL/readyz" 60 -k -H "Authorization: Bearer $ADMIN_TOKEN"
T_API=$(elapsed)

start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$S/kubeconfig" \
  --leader-elect=false \
  --controllers deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,endpointslice-controller,horizontal-pod-autoscaler-controller,resourcequota-controller,disruption-controller \
  --horizontal-pod-autoscaler-sync-period 1s \
  --bind-address 127.0.0.1 --secure-port "$P_KCM" --cert-dir "$S/pki/kcm" \
  --kube-api-qps 200 --kube-api-burst 400 --profiling=false
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$S/kubeconfig" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port "$P_SCHED" --cert-dir "$S/pki/scheduler" \
  --kube-api-qps 200 --kube-api-burst 400 --profiling=false
start kwok "$BIN/kwok" --kubeconfig "$S/kubeconfig" --config "$CLUSTER/kwok/stages.yaml" \
  --manage-all-nodes=true --cidr 10.244.0.1/16 --node-ip 10.200.0.1

# CRDs (server-side: HTTPRoute's CRD is too big for client-side apply's annotation), nodes, SA.
"${KUBECTL[@]}" apply --server-side --force-conflicts \
  -f "$CRDS" >"$S/logs/apply-crds.log" 2>&1 \
  || die "applying the CRDs failed: $(tail -5 "$S/logs/apply-crds.log")"
"${KUBECTL[@]}" apply --server-side -f - >"$S/logs/apply-nodes.log" 2>&1 <<'EOF' || die "creating nodes failed: $(cat "$S/logs/apply-nodes.log")"
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-1
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-1, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: default}
EOF
"${KUBECTL[@]}" wait --for condition=Established --timeout 60s \
  -f "$CRDS" >>"$S/logs/apply-crds.log" 2>&1 \
  || die "CRDs not Established: $(tail -5 "$S/logs/apply-crds.log")"
# Established is not yet served: a new CRD's storage answers 429 "storage is (re)initializing" for a
# moment, so wait until every CRD lists (clients that retry 429, like kubectl, would hide it).
for res in $("${KUBECTL[@]}" get -f "$CRDS" -o jsonpath='{range .items[*]}{.spec.group}/{.spec.versions[?(@.storage==true)].name}/{.spec.names.plural}{"\n"}{end}'); do
  for i in $(seq 1 150); do
    code="$(curl -sk --max-time 2 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/apis/$res?limit=1" || true)"
    [[ "$code" == 200 ]] && break
    [[ $i == 150 ]] && die "the CRD resource $res is not served (HTTP $code after 30 s)"
    sleep 0.2
  done
done
T_CRDS=$(elapsed)
# --- istio: istiod, started as soon as the CRDs it watches are there ------------------------------
# istiod as a plain process with the admin kubeconfig: plaintext xDS on loopback, no CA, no
# webhooks, no injection; from an empty working directory (it looks for ./etc/istio/config/mesh
# and ./var/lib/istio/inject and uses its defaults without them). See docs/test-cluster.md.
"${KUBECTL[@]}" create namespace istio-system >"$S/logs/istio-system.log" 2>&1 \
  || die "creating namespace istio-system failed: $(cat "$S/logs/istio-system.log")"
mkdir -p "$S/istiod"
T_ISTIOD0=$(elapsed)
start istiod env -C "$S/istiod" POD_NAMESPACE=istio-system POD_NAME=istiod-local REVISION=default \
  CLUSTER_ID=Kubernetes ENABLE_CA_SERVER=false PILOT_CERT_PROVIDER=none VALIDATION_WEBHOOK_CONFIG_NAME= \
  INJECT_ENABLED=false \
  "$BIN/pilot-discovery" discovery --kubeconfig "$S/kubeconfig" \
  --httpAddr "127.0.0.1:$P_ISTIOD_HTTP" --grpcAddr "127.0.0.1:$P_ISTIOD_XDS" \
  --monitoringAddr "127.0.0.1:$P_ISTIOD_MON" --secureGRPCAddr "" --httpsAddr "" \
  --domain cluster.local --log_output_level default:warn
# --- end istio ----------------------------------------------------------------------------------
"${KUBECTL[@]}" wait --for condition=Ready --timeout 60s node/kwok-node-0 node/kwok-node-1 >"$S/logs/wait-nodes.log" 2>&1 \
  || die "kwok nodes not Ready: $(cat "$S/logs/wait-nodes.log")"
wait_http prometheus "http://127.0.0.1:$P_PROM/-/ready" 30
wait_http traffic-source "http://127.0.0.1:$P_TRAFFIC/healthz" 10
wait_http kube-controller-manager "https://127.0.0.1:$P_KCM/healthz" 30 -k
wait_http kube-scheduler "https://127.0.0.1:$P_SCHED/healthz" 30 -k
# Prometheus applies its scrape config a few seconds after start: wait for the first scrape.
deadline=$(( $(date +%s) + 30 ))
until curl -sf --max-time 1 "http://127.0.0.1:$P_PROM/api/v1/query" --data-urlencode 'query=up{job="traffic-source"} == 1' | grep -q '"value"'; do
  (( $(date +%s) > deadline )) && die "prometheus did not scrape the traffic source within 30s"
  sleep 0.2
done

# --- istio: wait for istiod, then meshsim (its callers need istiod's xDS) ----------------------
wait_http istiod "http://127.0.0.1:$P_ISTIOD_HTTP/ready" 60
T_ISTIOD=$(elapsed)
start meshsim "$BIN/meshsim" serve --kubeconfig "$S/kubeconfig" --listen "127.0.0.1:$P_MESHSIM" \
  --xds "127.0.0.1:$P_ISTIOD_XDS"
wait_http meshsim "http://127.0.0.1:$P_MESHSIM/ready" 60
log "istiod ready at most $(awk -v a="$T_ISTIOD0" -v b="$T_ISTIOD" 'BEGIN { printf "%.1f", b - a }')s after its start, meshsim at $(elapsed)s"
# --- end istio ----------------------------------------------------------------------------------
check_alive

cat >"$S/env" <<EOF
KUBECONFIG=$S/kubeconfig
KUBECONFIG_RESTRICTED=$S/kubeconfig-restricted
PROMETHEUS_URL=http://127.0.0.1:$P_PROM
TRAFFIC_URL=http://127.0.0.1:$P_TRAFFIC
KUBE_API_URL=$API_URL
ISTIOD_URL=http://127.0.0.1:$P_ISTIOD_HTTP
ISTIOD_XDS_ADDRESS=127.0.0.1:$P_ISTIOD_XDS
ISTIOD_DEBUG_URL=http://127.0.0.1:$P_ISTIOD_MON
MESHSIM_URL=http://127.0.0.1:$P_MESHSIM
MESHSIM_BIN=$BIN/meshsim
EOF

rss=0
while read -r _ pid; do
  kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  rss=$(( rss + ${kb:-0} ))
done <"$S/pids"

log "ready in $(elapsed)s (binaries checked at ${T_BUILT}s, apiserver ready at ${T_API}s, CRDs established at ${T_CRDS}s); RSS $(( rss / 1024 )) MiB"
log "apiserver  $API_URL (kubectl: $BIN/kubectl --kubeconfig $S/kubeconfig)"
log "prometheus http://127.0.0.1:$P_PROM   traffic source http://127.0.0.1:$P_TRAFFIC"
log "istiod     http://127.0.0.1:$P_ISTIOD_HTTP (xDS 127.0.0.1:$P_ISTIOD_XDS, debug http://127.0.0.1:$P_ISTIOD_MON)   meshsim http://127.0.0.1:$P_MESHSIM"
log "state and logs in $S; stop with: bash test-cluster/down.sh"
cat "$S/env"
