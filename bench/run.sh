#!/usr/bin/env bash
# Benchmarks (`make bench`): bao-backup backing up snapshots from the OpenBao test server, and
# backing up from and restoring into real OpenBao, each next to a baseline measured in the same
# run on the same loopback.
#
#   bench/run.sh BUILD [file|s3|gcs|azure|operator|openbao|restore-operator ...]  (default: all)
#
# The test server serves TLS (a P-256 certificate from a CA made for the run), as production does.
# file:  1 GiB and 4 GiB into a local directory vs `curl -o file` and `curl -o file && sync`
# s3:    1 GiB into MinIO vs `curl ... | aws s3 cp - s3://...` into the same MinIO
# gcs:   1 GiB into fake-gcs-server (a fresh one per run) vs curl piped into a one-request upload
# azure: 1 GiB into Azurite vs @azure/storage-blob uploading the same bytes from a file
# copies: 1 GiB into MinIO + Azurite at once (--extra-target) vs into each alone (issue 16)
# transfer: bao-backup into MinIO and Azurite at each part size x concurrency of TRANSFER_GRID
#        (default "10x3 5x5 8x4 8x6 16x2 16x3 16x4", MiB x parts in flight), not in the default set
#        s3, gcs and azure also run the seed system's executor (cmd/bao-backup of
#        dc-tec/openbao-operator, scripts/install-peers.sh seed-executor) into the same server,
#        and bao-backup at its defaults and (s3, azure) at the seed's part size and concurrency;
#        for gcs both default to 16 MiB chunks.
# operator: 1,000 OpenBaoClusters, the real `bao-backup operator`: convergence, reconcile
#        latency and counts, controller peak RSS (< 64 MiB), API server peak RSS; first on the
#        project's Kubernetes API imitation, then on a REAL kube-apiserver v1.33 + etcd with the
#        Helm chart's CRDs and RBAC (the operator runs as the chart's ServiceAccount).
#        OPERATOR_SERVER=imitation|real runs only one; OPERATOR_CLUSTERS=N sets the count. The
#        real server needs $PEERS/bin/kube-apiserver, etcd on PATH (/usr/bin/etcd) and
#        $PEERS/bin/helm: scripts/install-peers.sh kube-apiserver helm
# openbao: REAL OpenBao 2.7.2 (`bao-cluster`, an OPENBAO_NODES-node Raft cluster, default 3,
#        filled with OPENBAO_FILL bytes of incompressible KV data, default 160 MiB: about 40 s;
#        the start + fill time is printed). Backup: `curl GET .../sys/storage/raft/snapshot -o
#        file` from the leader vs `bao-backup backup` through the last node into a directory.
#        Restore of that snapshot (the stored object) into the same cluster: `curl -X POST
#        --data-binary @file` (it returns at OpenBao's 204) vs `bao-backup restore --key`, as
#        the whole command (bao-backup waits until OpenBao has applied the snapshot), up to the
#        204 (its uploadDuration, to the millisecond from its log lines) and until applied
#        (curl + the time until the active node answered with a higher raft_applied_index).
#        Between restores the script polls every node's sys/leader (1 s curl timeout, 0.2 s
#        apart) until an active node answers with a higher raft_applied_index that every node
#        shares and that stays the same for 1 s (OPENBAO_SETTLE, default 300 s, is the deadline).
# restore-operator: a restore through the operator (an OpenBaoRestore, the real `bao-backup
#        operator` on a real kube-apiserver, the Jobs' executor run here) next to `bao-backup
#        restore --key` of the same object from MinIO into real OpenBao (one node, filled with
#        RESTORE_FILL_MIB, default 160): bench/restore_controller.cc prints its own report.
#
# Each measurement is the best of RUNS (default 2) runs; CPU seconds are user + system of the
# measured process(es); peak RSS is the largest maximum resident set among them. The first line
# names the CPU model, cores and load average; each table names the load when it was printed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
what=("$@")
((${#what[@]})) || what=(file s3 gcs azure copies operator openbao restore-operator)
RUNS=${RUNS:-2}
bao="$PWD/$build/src/cli/bao-backup"
server_bin="$PWD/$build/tests/bao_testserver/bao-testserver"
peers="${BAO_BACKUP_PEERS_DIR:-$HOME/.cache/bao-backup/peers}"
work=$(mktemp -d "${TMPDIR:-/tmp}/bao-bench-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench: $1 did not answer" >&2; return 1; }

# measure OUT CMD...: runs CMD under GNU time; appends "elapsed cpu maxrss_kib" to OUT.
measure() {
  local out=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"${measure_stdout:-/dev/null}" 2>"$work/stderr" || {
    echo "bench: command failed: $*" >&2; cat "$work/stderr" >&2; return 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/time" >>"$out"
}
best() { sort -n "$1" | head -1; }  # lowest elapsed

token=bench-admin-token
seed="$peers/bin/seed-executor"
cacert="$work/pki/ca.crt"
# The source serves TLS, as production OpenBao does: a CA and a P-256 server certificate made
# with openssl for this run (the test PKI's shape: SAN 127.0.0.1 and localhost, plus 127.0.0.2
# and *.bao.bench.svc, the names under which the seed system's executor reaches node 0).
make_pki() {
  local d="$work/pki"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=bench-bao \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost,DNS:*.bao.bench.svc\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 1 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
}
make_pki

start_bao() { # size_bytes [bao-testserver options...]
  local size=$1; shift
  rm -f "$work/ready.json"
  "$server_bin" --nodes 3 --ready-file "$work/ready.json" --admin-token "$token" \
    --state-size "$size" --tls-cert "$work/pki/server.crt" --tls-key "$work/pki/server.key" \
    "$@" >"$work/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$work/ready.json" ]] && break; sleep 0.05; done
  [[ -s "$work/ready.json" ]] || { echo "bench: bao-testserver did not start:" >&2; cat "$work/server.log" >&2; return 1; }
  leader=$(python3 -c "import json;print(json.load(open('$work/ready.json'))['nodes'][0])")
  standby=$(python3 -c "import json;print(json.load(open('$work/ready.json'))['nodes'][1])")
  write_tools
}
stop_bao() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
# For a store target: node 0 (the active node) on 127.0.0.2:8200 when the seed system's
# executor is here (it only dials https://<statefulset>-<i>.<cluster>.<namespace>.svc:8200).
start_bao_for_store() {
  if [[ -x "$seed" ]]; then start_bao $((1 << 30)) --host 127.0.0.2 --first-port 8200; else start_bao $((1 << 30)); fi
}
write_tools() { # after start_bao: $work/run-ours and $work/run-seed run the two executors
  cat >"$work/run-ours" <<SH
#!/bin/sh
exec env BAO_TOKEN=$token "$bao" backup --bao-addr "$standby" --bao-cacert "$cacert" "\$@"
SH
  # The seed system's executor (static token, CA file, BACKUP_* settings from the arguments, as
  # NAME=VALUE) in a private mount namespace whose /etc/hosts names node 0
  # bao-0.bao.bench.svc (127.0.0.2). The machine's AWS_CA_BUNDLE is dropped: its S3 client
  # refuses one beside its own HTTP client.
  printf '127.0.0.1 localhost\n127.0.0.2 bao-0.bao.bench.svc\n' >"$work/seed-hosts"
  printf '%s' "$token" >"$work/seed-token"
  cat >"$work/run-seed" <<SH
#!/bin/sh
exec unshare -m sh -c 'mount --bind "$work/seed-hosts" /etc/hosts && exec "\$@"' seed \\
  env -u AWS_CA_BUNDLE CLUSTER_NAMESPACE=bench CLUSTER_NAME=bao CLUSTER_REPLICAS=1 \\
  TLS_CA_PATH="$cacert" \\
  BACKUP_TOKEN_PATH="$work/seed-token" JWT_TOKEN_PATH="$work/no-jwt" \\
  BACKUP_CREDENTIALS_PATH="$work/seed-creds" BACKUP_BUCKET=bench "\$@" "$seed"
SH
  chmod +x "$work/run-ours" "$work/run-seed"
}
snap_curl() { echo "curl -sS --cacert '$cacert' -H 'X-Vault-Token: $token' '$leader/v1/sys/storage/raft/snapshot'"; }
have_seed() {
  [[ -x "$seed" ]] && return 0
  echo "  (seed system's executor not measured: $seed is missing; scripts/install-peers.sh seed-executor)"
  return 1
}

# report LABEL BYTES NAME FILE [NAME FILE ...]: one line per tool (best run of each); the first
# is bao-backup, and every other line's last column is bao-backup's speed divided by its own.
report() {
  python3 - "$@" <<'PY'
import sys
label, size, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for name, path in zip(rest[0::2], rest[1::2]):
    runs = [l.split() for l in open(path) if l.strip()]
    if runs:
        rows.append((name, min(runs, key=lambda r: float(r[0]))))
print(f"{label}  ({size / 2**20:.0f} MiB)")
print(f"  {'tool':<40} {'wall s':>7} {'MiB/s':>7} {'CPU s':>6} {'CPU s/GiB':>9} {'RSS MiB':>8} {'bao-backup x':>12}")
ref = None
for name, (e, c, rss) in rows:
    e, c = float(e), float(c)
    mibs = size / e / 2**20
    ref = ref or mibs
    ratio = "" if ref is mibs else f"{ref / mibs:12.2f}"
    print(f"  {name:<40} {e:7.2f} {mibs:7.0f} {c:6.2f} {c / (size / 2**30):9.2f} {int(rss) / 1024:8.1f} {ratio}")
PY
}

row() { # label bytes base_line bao_line
  local label=$1 bytes=$2 base=$3 ours=$4
  python3 - "$label" "$bytes" "$base" "$ours" <<'PY'
import sys
label, size = sys.argv[1], int(sys.argv[2])
be, bc, brss = sys.argv[3].split(); oe, oc, orss = sys.argv[4].split()
bt = size / float(be) / 2**20; ot = size / float(oe) / 2**20
print(f"{label:<26} baseline {bt:7.0f} MiB/s   bao-backup {ot:7.0f} MiB/s   ratio {ot/bt:4.2f}   "
      f"bao CPU {float(oc):6.2f} s   bao peak RSS {int(orss)/1024:6.1f} MiB")
PY
}

bench_file() {
  for gib in ${FILE_SIZES:-1 4}; do
    start_bao $((gib << 30))
    : >"$work/base"; : >"$work/sync"; : >"$work/t-ours"
    for _ in $(seq 1 "$RUNS"); do
      measure "$work/base" curl -sS --cacert "$cacert" -H "X-Vault-Token: $token" \
        -o "$work/raw.snap" "$leader/v1/sys/storage/raft/snapshot"
      bytes=$(stat -c %s "$work/raw.snap"); rm -f "$work/raw.snap"; sync
      measure "$work/sync" sh -c "$(snap_curl) -o '$work/raw.snap' && sync"
      rm -f "$work/raw.snap"; sync
      measure "$work/t-ours" "$work/run-ours" --bucket "$work/store" --namespace bench --cluster bao
      rm -rf "$work/store"; sync
    done
    report "file, ${gib} GiB, TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" "$bytes" \
      "bao-backup (fsyncs the object)" "$work/t-ours" "curl -o file" "$work/base" \
      "curl -o file && sync" "$work/sync"
    stop_bao
  done
}

# start_minio: MinIO with bucket "bench" on port $port, the AWS CLI's variables exported.
start_minio() {
  local cport
  port=$(free_port); cport=$(free_port)
  MINIO_ROOT_USER=benchadmin MINIO_ROOT_PASSWORD=benchsecret123 \
    "$peers/bin/minio" server "$work/minio" --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$cport" >"$work/minio.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/minio/health/live"
  export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY=benchsecret123 \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://bench >/dev/null
}

bench_s3() {
  local port
  start_minio
  mkdir -p "$work/seed-creds"
  printf benchadmin >"$work/seed-creds/accessKeyId"; printf benchsecret123 >"$work/seed-creds/secretAccessKey"
  start_bao_for_store
  local t=(t-aws t-ours t-ours55 t-seed) f s3=(--provider s3 --endpoint "http://127.0.0.1:$port"
    --use-path-style --bucket bench --namespace bench --cluster bao)
  for f in "${t[@]}"; do : >"$work/$f"; done
  for _ in $(seq 1 "$RUNS"); do
    measure "$work/t-aws" bash -c "$(snap_curl) | aws --endpoint-url http://127.0.0.1:$port \
      s3 cp - s3://bench/baseline.snap"
    bytes=$(aws --endpoint-url "http://127.0.0.1:$port" s3api head-object --bucket bench \
      --key baseline.snap --query ContentLength --output text)
    measure "$work/t-ours" "$work/run-ours" "${s3[@]}"
    measure "$work/t-ours55" "$work/run-ours" "${s3[@]}" --part-size $((5 << 20)) --concurrency 5
    if [[ -x "$seed" ]]; then measure "$work/t-seed" "$work/run-seed" BACKUP_PROVIDER=s3 \
      BACKUP_ENDPOINT="http://127.0.0.1:$port" BACKUP_USE_PATH_STYLE=true \
      BACKUP_REGION=us-east-1 BACKUP_KEY=seed.snap; fi
  done
  report "s3 (MinIO), TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" "$bytes" \
    "bao-backup, defaults 10 MiB x 3" "$work/t-ours" "bao-backup, 5 MiB x 5" "$work/t-ours55" \
    "seed executor (its fixed 5 MiB x 5)" "$work/t-seed" "curl | aws s3 cp -" "$work/t-aws"
  have_seed || true
  echo "  (RSS: parts partSize x concurrency + about 21 MiB = 51 MiB at 10 MiB x 3, 46 MiB at" \
    "5 MiB x 5; issue 18's target partSize x (concurrency+1) + 16 MiB = 56 and 46 MiB)"
  stop_bao
}

# fake-gcs-server does work that grows with everything it has received (it re-hashes the whole
# object on every chunk, and keeps every object in memory, so its garbage collector's pace
# changes with the objects already stored): every measurement gets a fresh emulator, the
# order of the tools rotates from round to round, and the emulator's own CPU seconds are
# printed beside the table (when they match the wall time, the emulator set the pace).
gcs_start() {
  port=$(free_port)
  "$peers/bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
    -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" -log-level warn \
    >"$work/gcs.log" 2>&1 &
  gcs_pid=$!
  pids+=("$gcs_pid")
  wait_http "http://127.0.0.1:$port/_internal/healthcheck"
  curl -fsS -X POST "http://127.0.0.1:$port/storage/v1/b?project=bench" -d '{"name":"bench"}' >/dev/null
}
gcs_stop() { # TOOL: appends the emulator's CPU seconds to $work/emu-TOOL, then stops it
  awk -v t=$(getconf CLK_TCK) '{printf "%.1f\n", ($14 + $15) / t}' "/proc/$gcs_pid/stat" >>"$work/emu-$1"
  kill "$gcs_pid"; wait "$gcs_pid" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [[ $p == "$gcs_pid" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
bench_gcs() {
  local port gcs_pid gcs tools=(t-ours t-seed t-base) f r i
  [[ -x "$seed" ]] || tools=(t-ours t-base)
  mkdir -p "$work/seed-creds"
  start_bao_for_store
  for f in t-base t-ours t-seed; do : >"$work/$f"; : >"$work/emu-$f"; done
  for ((r = 0; r < RUNS; r++)); do
    for ((i = 0; i < ${#tools[@]}; i++)); do
      f=${tools[(i + r) % ${#tools[@]}]}
      gcs_start
      gcs=(--provider gcs --endpoint "http://127.0.0.1:$port" --bucket bench --namespace bench --cluster bao)
      case $f in
      t-base)
        measure "$work/t-base" bash -c "$(snap_curl) | curl -sS -X POST -H 'Content-Type: application/octet-stream' \
          -T - 'http://127.0.0.1:$port/upload/storage/v1/b/bench/o?uploadType=media&name=baseline.snap'"
        bytes=$(curl -s "http://127.0.0.1:$port/storage/v1/b/bench/o/baseline.snap" | python3 -c 'import json,sys;print(json.load(sys.stdin)["size"])') ;;
      t-ours) measure "$work/t-ours" "$work/run-ours" "${gcs[@]}" ;;
      t-seed) measure "$work/t-seed" "$work/run-seed" BACKUP_PROVIDER=gcs \
        BACKUP_ENDPOINT="http://127.0.0.1:$port" BACKUP_GCS_PROJECT=bench \
        STORAGE_EMULATOR_HOST="127.0.0.1:$port" BACKUP_KEY=seed.snap ;;
      esac
      gcs_stop "$f"
    done
  done
  report "gcs (fake-gcs-server, a fresh one per run), TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" "$bytes" \
    "bao-backup, defaults (16 MiB chunks)" "$work/t-ours" \
    "seed executor (Go SDK, 16 MiB chunks)" "$work/t-seed" "curl | curl (one-request upload)" "$work/t-base"
  for f in t-ours t-seed t-base; do
    [[ -s "$work/emu-$f" ]] && echo "  fake-gcs-server CPU s per run, ${f#t-}: $(paste -sd' ' "$work/emu-$f") (wall s: $(cut -d' ' -f1 "$work/$f" | paste -sd' '))"
  done
  have_seed || true
  stop_bao
}

# start_azurite: Azurite with container "bench" on port $az_port; $key, $conn and the
# credentials directory $work/azcreds for it.
start_azurite() {
  az_port=$(free_port)
  node "$peers/node/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
    --blobPort "$az_port" --location "$work/azurite" --skipApiVersionCheck --silent \
    >"$work/azurite.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$az_port/"
  key=$(sed -n 's/.*"\([A-Za-z0-9+/=]\{80,\}\)".*/\1/p' tests/support/azurite.h | head -1)
  conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$az_port/devstoreaccount1;"
  AZ_CONN=$conn NODE_PATH="$peers/node/node_modules" node tests/integration/azure_check.js create bench >/dev/null
  mkdir -p "$work/azcreds"; printf '%s' "$key" >"$work/azcreds/accountKey"
}

bench_azure() {
  local port key conn az_port
  start_azurite
  port=$az_port
  mkdir -p "$work/seed-creds"
  printf '%s' "$key" >"$work/seed-creds/accountKey"
  start_bao_for_store
  local t=(t-base t-ours t-ours85 t-seed) f az=(--provider azure
    --endpoint "http://127.0.0.1:$port/devstoreaccount1" --storage-account devstoreaccount1
    --bucket bench --credentials-dir "$work/azcreds" --namespace bench --cluster bao)
  for f in "${t[@]}"; do : >"$work/$f"; done
  for _ in $(seq 1 "$RUNS"); do
    curl -sS --cacert "$cacert" -H "X-Vault-Token: $token" -o "$work/raw.snap" "$leader/v1/sys/storage/raft/snapshot"
    bytes=$(stat -c %s "$work/raw.snap")
    measure "$work/t-base" env AZ_CONN="$conn" NODE_PATH="$peers/node/node_modules" \
      node tests/integration/azure_check.js upload bench baseline.snap "$work/raw.snap"
    rm -f "$work/raw.snap"
    measure "$work/t-ours" "$work/run-ours" "${az[@]}"
    measure "$work/t-ours85" "$work/run-ours" "${az[@]}" --part-size $((8 << 20)) --concurrency 5
    if [[ -x "$seed" ]]; then measure "$work/t-seed" "$work/run-seed" BACKUP_PROVIDER=azure \
      BACKUP_ENDPOINT="http://127.0.0.1:$port" \
      BACKUP_AZURE_STORAGE_ACCOUNT=devstoreaccount1 BACKUP_AZURE_CONTAINER=bench BACKUP_KEY=seed.snap; fi
  done
  report "azure (Azurite), TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" "$bytes" \
    "bao-backup, defaults 10 MiB x 3" "$work/t-ours" "bao-backup, 8 MiB x 5" "$work/t-ours85" \
    "seed executor (its 8 MiB x 5)" "$work/t-seed" "@azure/storage-blob from a file" "$work/t-base"
  have_seed || true
  stop_bao
}

# start_stores: MinIO, Azurite and the test server (1 GiB), and in the caller's `s3` and `az`
# (declared local there, with port, key, conn and az_port) bao-backup's options for each store.
start_stores() {
  start_minio
  start_azurite
  start_bao $((1 << 30))
  s3=(--provider s3 --endpoint "http://127.0.0.1:$port" --use-path-style --bucket bench
    --credentials-dir "$work/s3creds" --namespace bench --cluster bao)
  az=(--provider azure --endpoint "http://127.0.0.1:$az_port/devstoreaccount1"
    --storage-account devstoreaccount1 --bucket bench --credentials-dir "$work/azcreds"
    --namespace bench --cluster bao)
  mkdir -p "$work/s3creds"
  printf benchadmin >"$work/s3creds/accessKeyId"; printf benchsecret123 >"$work/s3creds/secretAccessKey"
}

# The measurements the S3 and Azure transfer defaults were chosen from: bao-backup into MinIO and
# into Azurite at each part size x concurrency of TRANSFER_GRID ("MiBxN ...").
bench_transfer() {
  local port key conn az_port s3 az m n
  start_stores
  local grid=(${TRANSFER_GRID:-10x3 5x5 8x4 8x6 16x2 16x3 16x4}) rows=() cell
  for cell in "${grid[@]}"; do
    m=${cell%x*} n=${cell#*x}
    : >"$work/t-s3-$cell"; : >"$work/t-az-$cell"
    for _ in $(seq 1 "$RUNS"); do
      measure "$work/t-s3-$cell" "$work/run-ours" "${s3[@]}" --part-size $((m << 20)) --concurrency "$n"
      measure "$work/t-az-$cell" "$work/run-ours" "${az[@]}" --part-size $((m << 20)) --concurrency "$n"
    done
  done
  for cell in "${grid[@]}"; do rows+=("S3 (MinIO) ${cell/x/ MiB x }" "$work/t-s3-$cell"); done
  report "transfer settings, S3, 1 GiB, TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" \
    $((1 << 30)) "${rows[@]}"
  rows=()
  for cell in "${grid[@]}"; do rows+=("Azure (Azurite) ${cell/x/ MiB x }" "$work/t-az-$cell"); done
  report "transfer settings, Azure, 1 GiB, TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" \
    $((1 << 30)) "${rows[@]}"
  stop_bao
}

# Issue 16: one backup into MinIO and Azurite at once (an --extra-target) against each alone, in
# the same run. The copy must cost no more than the slower target's own time: wall <= 1.1 x
# the slower single-target wall.
bench_copies() {
  local port key conn az_port s3 az
  start_stores
  printf 'name: azure\nprovider: azure\nendpoint: http://127.0.0.1:%s/devstoreaccount1\nbucket: bench\nazure: {storageAccount: devstoreaccount1}\ncredentialsDir: %s\n' \
    "$az_port" "$work/azcreds" >"$work/azure-target.yaml"
  local f
  for f in t-s3 t-az t-both; do : >"$work/$f"; done
  for _ in $(seq 1 "$RUNS"); do
    measure "$work/t-s3" "$work/run-ours" "${s3[@]}"
    measure "$work/t-az" "$work/run-ours" "${az[@]}"
    measure "$work/t-both" "$work/run-ours" "${s3[@]}" --extra-target "$work/azure-target.yaml"
  done
  bytes=$(aws --endpoint-url "http://127.0.0.1:$port" s3api list-objects-v2 --bucket bench \
    --query 'Contents[0].Size' --output text)
  report "copies: MinIO + Azurite from one read, TLS source (load $(cut -d' ' -f1-3 /proc/loadavg))" \
    "$bytes" "bao-backup into MinIO + Azurite" "$work/t-both" "bao-backup into MinIO alone" \
    "$work/t-s3" "bao-backup into Azurite alone" "$work/t-az"
  python3 - "$(best "$work/t-both")" "$(best "$work/t-s3")" "$(best "$work/t-az")" <<'PY'
import sys
both, s3, az = (float(a.split()[0]) for a in sys.argv[1:4])
slower = max(s3, az)
print(f"  (two copies: wall {both:.2f} s = {both / slower:.2f} x the slower single target's "
      f"{slower:.2f} s; target <= 1.10)")
PY
  stop_bao
}

bench_operator() {  # bench/operator_scale.cc prints its own report
  local servers=(imitation real) s missing=() failed=0
  case ${OPERATOR_SERVER:-} in
    "") ;;
    imitation | real) servers=("$OPERATOR_SERVER") ;;
    *) echo "bench: OPERATOR_SERVER must be imitation or real, not '$OPERATOR_SERVER'" >&2; return 1 ;;
  esac
  if [[ " ${servers[*]} " == *" real "* ]]; then
    [[ -x "$peers/bin/kube-apiserver" ]] || missing+=("kube-apiserver ($peers/bin/kube-apiserver)")
    command -v etcd >/dev/null || [[ -x /usr/bin/etcd ]] || missing+=("etcd (/usr/bin/etcd: apt-get install etcd-server)")
    [[ -x "$peers/bin/helm" ]] || missing+=("helm ($peers/bin/helm)")
    if ((${#missing[@]})); then
      echo "bench: operator against the real API server needs what is missing here:" >&2
      printf '  %s\n' "${missing[@]}" >&2
      echo "  install with: scripts/install-peers.sh kube-apiserver helm" \
        "(or OPERATOR_SERVER=imitation to skip it)" >&2
      return 1
    fi
  fi
  echo "operator: load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
  for s in "${servers[@]}"; do  # a failure on one server still measures the other
    "$PWD/$build/bench/operator_scale" --server "$s" ${OPERATOR_CLUSTERS:+--clusters "$OPERATOR_CLUSTERS"} ||
      { failed=1; echo "bench: operator_scale --server $s failed (above)" >&2; }
    echo "  (load average $(cut -d' ' -f1-3 /proc/loadavg) after the $s run)"
  done
  return "$failed"
}

bench_restore-operator() {  # bench/restore_controller.cc prints its own report
  "$PWD/$build/bench/restore_controller" --size-mib "${RESTORE_FILL_MIB:-160}" --runs "$RUNS"
}

# bench_openbao helpers. json_get FILE EXPR: EXPR over the JSON document d in FILE.
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

# leader_state: asks every node (bao_nodes) `GET /v1/sys/leader` with a 1 s timeout and prints
# "URL APPLIED_INDEX SYNCED" for the node that answered 200 with is_self (nothing when none
# did: sealed, applying a snapshot, electing); SYNCED is 1 when every other node answered with
# the same raft_applied_index.
leader_state() {
  local u
  for u in "${bao_nodes[@]}"; do
    printf '%s %s\n' "$u" "$(curl -s -m 1 -w '\n%{http_code}' "$u/v1/sys/leader" 2>/dev/null | tr '\n' ' ')"
  done | python3 -c '
import json, sys
leader, idx, others = "", 0, []
for line in sys.stdin:
    url, _, rest = line.partition(" ")
    body, _, code = rest.strip().rpartition(" ")
    try:
        d = json.loads(body) if code == "200" else {}
    except ValueError:
        d = {}
    if d.get("is_self"):
        leader, idx = url, d.get("raft_applied_index", 0)
    else:
        others.append(d.get("raft_applied_index"))
if leader:
    print(leader, idx, int(all(o == idx for o in others)))'
}

# find_leader: sets leader and leader_idx once a node answers as the active one (deadline 60 s).
find_leader() {
  local st t0=$SECONDS
  while ((SECONDS - t0 < 60)); do
    st=$(leader_state)
    if [[ -n "$st" ]]; then read -r leader leader_idx _ <<<"$st"; return 0; fi
    sleep 0.2
  done
  echo "bench: no active node in the OpenBao cluster" >&2; return 1
}

# wait_applied BEFORE: waits (deadline OPENBAO_SETTLE s, default 300) until a node answers
# sys/leader as the active one with a raft_applied_index above BEFORE, every other node has
# the same index, and that has not changed for 1 s; then sets leader. After a restore OpenBao
# answers 204 and applies the snapshot afterwards, blocking requests meanwhile (and, with
# several nodes, leadership may move); the applied index passes the pre-restore one once done.
# Sets applied_s: seconds from the call until the active node first answered with such an index.
wait_applied() {
  local before=$1 last="" st l idx synced stable=0 t0=$SECONDS start
  start=$(date +%s.%N); applied_s=""
  while ((SECONDS - t0 < ${OPENBAO_SETTLE:-300})); do
    st=$(leader_state); l=""; idx=0; synced=0
    [[ -n "$st" ]] && read -r l idx synced <<<"$st"
    if [[ -n "$l" ]] && ((idx > before)); then
      [[ -n "$applied_s" ]] || applied_s=$(python3 -c "import sys;print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
      if ((synced)) && [[ "$st" == "$last" ]]; then
        ((++stable >= 5)) && { leader=$l; return 0; }
      else
        stable=0
      fi
      last=$st
    else
      stable=0; last=""
    fi
    sleep 0.2
  done
  echo "bench: OpenBao did not settle after the restore within ${OPENBAO_SETTLE:-300} s (last: $st)" >&2
  return 1
}

bench_openbao() {
  local cluster_bin="$PWD/$build/tests/tools/bao-cluster" nodes=${OPENBAO_NODES:-3}
  local fill=${OPENBAO_FILL:-$((160 << 20))} info="$work/openbao.json" pid t0 fill_s
  local root url bytes key obj before mib
  [[ -x "$cluster_bin" ]] || { echo "bench: $cluster_bin is missing: ninja -C $build bao-cluster" >&2; return 1; }
  [[ -x "$peers/bin/bao" ]] || scripts/install-peers.sh openbao
  t0=$(date +%s.%N)
  "$cluster_bin" --nodes "$nodes" --info-file "$info" --fill "$fill" >"$work/openbao.log" 2>&1 &
  pid=$!; pids+=("$pid")
  until [[ -s "$info" ]]; do
    kill -0 "$pid" 2>/dev/null || { echo "bench: bao-cluster failed:" >&2; cat "$work/openbao.log" >&2; return 1; }
    sleep 0.2
  done
  fill_s=$(python3 -c "import sys;print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$t0" "$(date +%s.%N)")
  root=$(json_get "$info" 'd["rootToken"]')
  read -r -a bao_nodes <<<"$(json_get "$info" '" ".join(d["nodes"])')"
  find_leader
  # bao-backup is pointed at the last node: a standby when there are several.
  url=$(json_get "$info" 'd["nodes"][-1]')

  # 1. Backup.
  : >"$work/base"; : >"$work/ours"
  for _ in $(seq 1 "$RUNS"); do
    rm -f "$work/raw.snap"; rm -rf "$work/store"
    measure "$work/base" curl -sS -H "X-Vault-Token: $root" -o "$work/raw.snap" \
      "$leader/v1/sys/storage/raft/snapshot"
    measure_stdout="$work/backup.out" measure "$work/ours" env BAO_TOKEN="$root" "$bao" backup \
      --bao-addr "$url" --bucket "$work/store" --namespace bench --cluster bao
  done
  key=$(tail -n 1 "$work/backup.out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["key"])')
  obj="$work/store/$key"
  bytes=$(stat -c %s "$obj")
  mib=$(python3 -c "import sys;print(f'{int(sys.argv[1]) / 2**20:.0f}')" "$bytes")
  echo "openbao: real OpenBao $("$peers/bin/bao" version | awk '{print $2}'), $nodes-node Raft cluster;" \
    "fill of $fill bytes took ${fill_s} s; snapshot $bytes bytes (curl's: $(stat -c %s "$work/raw.snap"))"
  ((bytes >= 150 * 1000 * 1000)) || echo "  (warning: the snapshot is under 150 MB; raise OPENBAO_FILL)"
  row "openbao backup, $mib MiB" "$bytes" "$(best "$work/base")" "$(best "$work/ours")"
  rm -f "$work/raw.snap"

  # 2. Restore of the stored object (the same bytes for both) into the same cluster.
  : >"$work/rbase"; : >"$work/rours"; : >"$work/rupload"; : >"$work/rapply"
  local moved=0 was
  for _ in $(seq 1 "$RUNS"); do
    find_leader; before=$leader_idx; was=$leader
    measure "$work/rbase" curl -sS -f -X POST -H "X-Vault-Token: $root" --data-binary "@$obj" \
      "$leader/v1/sys/storage/raft/snapshot"
    wait_applied "$before"
    echo "$applied_s" >>"$work/rapply"
    [[ "$leader" == "$was" ]] || ((++moved))
    find_leader; before=$leader_idx; was=$leader
    measure_stdout="$work/restore.out" measure "$work/rours" env BAO_TOKEN="$root" "$bao" \
      restore --yes --bao-addr "$url" --bucket "$work/store" --namespace bench --cluster bao \
      --key "$key"
    wait_applied "$before"
    [[ "$leader" == "$was" ]] || ((++moved))
    # uploadDuration to the millisecond: from the "restoring" log line (right before the POST)
    # to "OpenBao accepted the snapshot" (right after the 204); the JSON's is also kept.
    python3 - "$work/stderr" "$work/restore.out" "$(tail -n 1 "$work/rours")" >>"$work/rupload" <<'PY'
import datetime, json, sys
def at(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
log = open(sys.argv[1]).read().splitlines()
start = next(at(l) for l in log if " restoring" in l)
end = next(at(l) for l in log if "OpenBao accepted the snapshot" in l)
res = json.loads(open(sys.argv[2]).read().splitlines()[-1])
elapsed, cpu, rss = sys.argv[3].split()
print(f"{end - start:.3f} {cpu} {rss} {elapsed} {res['uploadDuration']} {res['duration']}")
PY
  done
  local rb ro ru
  rb=$(best "$work/rbase"); ro=$(best "$work/rours"); ru=$(best "$work/rupload")
  row "openbao restore, $mib MiB" "$bytes" "$rb" "$ro"
  row "  up to OpenBao's 204" "$bytes" "$rb" "$(cut -d' ' -f1-3 <<<"$ru")"
  local ra
  ra=$(paste -d' ' "$work/rbase" "$work/rapply" | awk '{printf "%.2f %s %s\n", $1 + $4, $2, $3}' | sort -n | head -1)
  row "  until applied" "$bytes" "$ra" "$ro"
  python3 - "$rb" "$ro" "$ru" "$(sort -n "$work/rapply" | tr '\n' ' ')" "$moved" "$((2 * RUNS))" "$ra" <<'PY'
import sys
rb, ro, ru, ap = (a.split() for a in sys.argv[1:5])
moved, restores, ra = sys.argv[5], sys.argv[6], sys.argv[7].split()
print(f"  (wall: curl POST {float(rb[0]):.2f} s to the 204, then OpenBao applied it {'/'.join(ap)} s "
      f"later (best curl + apply {float(ra[0]):.2f} s); bao-backup {float(ru[0]):.2f} s to the 204 "
      f"(JSON uploadDuration {ru[4]}, duration "
      f"{ru[5]}), whole command {float(ro[0]):.2f} s incl. waiting for OpenBao to apply it; "
      f"leadership moved after {moved} of {restores} restores)")
PY
  stop_bao
}

echo "bao-backup benchmarks: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores" \
  "($(grep -o -w -m1 -e sha_ni /proc/cpuinfo || echo no sha_ni), $(grep -o -w -m1 -e avx512f /proc/cpuinfo || echo no avx512f));" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); best of $RUNS runs"
for w in "${what[@]}"; do "bench_$w"; done
