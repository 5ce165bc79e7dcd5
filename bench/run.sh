#!/usr/bin/env bash
# Benchmarks (`make bench`): bao-backup backing up snapshots from the OpenBao test server, each
# next to a baseline measured in the same run on the same loopback.
#
#   bench/run.sh BUILD [file|s3|gcs|azure|operator ...]     (default: all)
#
# file:  1 GiB and 4 GiB into a local directory vs curl fetching the same snapshot into a file
# s3:    1 GiB into MinIO vs `curl ... | aws s3 cp - s3://...` into the same MinIO
# gcs:   1 GiB into fake-gcs-server;  azure: 1 GiB into Azurite
# operator: 1,000 OpenBaoClusters on the Kubernetes API test server, the real `bao-backup
#        operator`: convergence, reconcile latency and counts, controller peak RSS (< 64 MiB)
#
# Each measurement is the best of RUNS (default 2) runs; CPU seconds are user + system of the
# measured process(es); peak RSS is the bao-backup process's maximum resident set.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
what=("$@")
((${#what[@]})) || what=(file s3 gcs azure operator)
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
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    echo "bench: command failed: $*" >&2; cat "$work/stderr" >&2; return 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/time" >>"$out"
}
best() { sort -n "$1" | head -1; }  # lowest elapsed

token=bench-admin-token
start_bao() { # size_bytes
  rm -f "$work/ready.json"
  "$server_bin" --nodes 3 --ready-file "$work/ready.json" --admin-token "$token" \
    --state-size "$1" >"$work/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$work/ready.json" ]] && break; sleep 0.05; done
  leader=$(python3 -c "import json;print(json.load(open('$work/ready.json'))['nodes'][0])")
  standby=$(python3 -c "import json;print(json.load(open('$work/ready.json'))['nodes'][1])")
}
stop_bao() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

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
    : >"$work/base"; : >"$work/ours"
    for _ in $(seq 1 "$RUNS"); do
      measure "$work/base" curl -sS -H "X-Vault-Token: $token" -o "$work/raw.snap" \
        "$leader/v1/sys/storage/raft/snapshot"
      bytes=$(stat -c %s "$work/raw.snap"); rm -f "$work/raw.snap"
      measure "$work/ours" env BAO_TOKEN=$token "$bao" backup --bao-addr "$standby" \
        --bucket "$work/store" --namespace bench --cluster bao
      rm -rf "$work/store"
    done
    row "file, ${gib} GiB" "$bytes" "$(best "$work/base")" "$(best "$work/ours")"
    stop_bao
  done
}

bench_s3() {
  local port cport
  port=$(free_port); cport=$(free_port)
  MINIO_ROOT_USER=benchadmin MINIO_ROOT_PASSWORD=benchsecret123 \
    "$peers/bin/minio" server "$work/minio" --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$cport" >"$work/minio.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/minio/health/live"
  export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY=benchsecret123 \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://bench >/dev/null
  start_bao $((1 << 30))
  : >"$work/base"; : >"$work/ours"
  for _ in $(seq 1 "$RUNS"); do
    measure "$work/base" bash -c "curl -sS -H 'X-Vault-Token: $token' \
      '$leader/v1/sys/storage/raft/snapshot' | aws --endpoint-url http://127.0.0.1:$port \
      s3 cp - s3://bench/baseline.snap"
    bytes=$(aws --endpoint-url "http://127.0.0.1:$port" s3api head-object --bucket bench \
      --key baseline.snap --query ContentLength --output text)
    measure "$work/ours" env BAO_TOKEN=$token "$bao" backup --bao-addr "$standby" \
      --provider s3 --endpoint "http://127.0.0.1:$port" --use-path-style --bucket bench \
      --namespace bench --cluster bao
  done
  row "s3 (MinIO), 1 GiB" "$bytes" "$(best "$work/base")" "$(best "$work/ours")"
  echo "  (S3 baseline: curl | aws s3 cp -; RSS bound partSize x (concurrency+1) + 32 MiB = 72 MiB)"
  stop_bao
}

bench_gcs() {
  local port
  port=$(free_port)
  "$peers/bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
    -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" -log-level warn \
    >"$work/gcs.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/_internal/healthcheck"
  curl -fsS -X POST "http://127.0.0.1:$port/storage/v1/b?project=bench" -d '{"name":"bench"}' >/dev/null
  start_bao $((1 << 30))
  : >"$work/base"; : >"$work/ours"
  for _ in $(seq 1 "$RUNS"); do
    measure "$work/base" bash -c "curl -sS -H 'X-Vault-Token: $token' \
      '$leader/v1/sys/storage/raft/snapshot' | curl -sS -X POST -H 'Content-Type: application/octet-stream' \
      -T - 'http://127.0.0.1:$port/upload/storage/v1/b/bench/o?uploadType=media&name=baseline.snap'"
    bytes=$(curl -s "http://127.0.0.1:$port/storage/v1/b/bench/o/baseline.snap" | python3 -c 'import json,sys;print(json.load(sys.stdin)["size"])')
    measure "$work/ours" env BAO_TOKEN=$token STORAGE_EMULATOR_HOST="127.0.0.1:$port" "$bao" backup \
      --bao-addr "$standby" --provider gcs --endpoint "http://127.0.0.1:$port" --bucket bench \
      --namespace bench --cluster bao
  done
  row "gcs (fake-gcs), 1 GiB" "$bytes" "$(best "$work/base")" "$(best "$work/ours")"
  echo "  (GCS baseline: curl | curl simple media upload into the same fake-gcs-server)"
  stop_bao
}

bench_azure() {
  local port key conn
  port=$(free_port)
  node "$peers/node/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
    --blobPort "$port" --location "$work/azurite" --skipApiVersionCheck --silent \
    >"$work/azurite.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/"
  key=$(sed -n 's/.*"\([A-Za-z0-9+/=]\{80,\}\)".*/\1/p' tests/support/azurite.h | head -1)
  conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
  AZ_CONN=$conn NODE_PATH="$peers/node/node_modules" node tests/integration/azure_check.js create bench >/dev/null
  mkdir -p "$work/azcreds"; printf '%s' "$key" >"$work/azcreds/accountKey"
  start_bao $((1 << 30))
  : >"$work/base"; : >"$work/ours"
  for _ in $(seq 1 "$RUNS"); do
    curl -sS -H "X-Vault-Token: $token" -o "$work/raw.snap" "$leader/v1/sys/storage/raft/snapshot"
    bytes=$(stat -c %s "$work/raw.snap")
    measure "$work/base" env AZ_CONN="$conn" NODE_PATH="$peers/node/node_modules" \
      node tests/integration/azure_check.js upload bench baseline.snap "$work/raw.snap"
    rm -f "$work/raw.snap"
    measure "$work/ours" env BAO_TOKEN=$token "$bao" backup --bao-addr "$standby" \
      --provider azure --endpoint "http://127.0.0.1:$port/devstoreaccount1" \
      --storage-account devstoreaccount1 --bucket bench --credentials-dir "$work/azcreds" \
      --namespace bench --cluster bao
  done
  row "azure (Azurite), 1 GiB" "$bytes" "$(best "$work/base")" "$(best "$work/ours")"
  echo "  (Azure baseline: @azure/storage-blob uploading the same bytes from a file)"
  stop_bao
}

bench_operator() {  # bench/operator_scale.cc prints its own report
  "$PWD/$build/bench/operator_scale" ${OPERATOR_CLUSTERS:+--clusters "$OPERATOR_CLUSTERS"}
}

echo "bao-backup benchmarks ($(nproc) cores; best of $RUNS runs)"
for w in "${what[@]}"; do "bench_$w"; done
