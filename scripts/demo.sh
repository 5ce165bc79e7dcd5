#!/usr/bin/env bash
# The README's first command (`make demo`): disaster recovery on real OpenBao 2.7.2.
#   1. starts cluster A (3 Raft nodes on 127.0.0.1) and writes a few secrets into it,
#   2. backs it up through a standby node into demo/backups with a token that may only read the
#      snapshot endpoint, and verifies the stored object,
#   3. starts a second, fresh cluster B, force-restores the backup into it, unseals B with A's
#      unseal key, and reads A's secrets back from every node of B.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bao_backup="$build/src/cli/bao-backup"
bao_cluster="$build/tests/tools/bao-cluster"
run=demo/run
rm -rf "$run"
mkdir -p "$run" demo/backups

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

start_cluster() { # name
  "$bao_cluster" --nodes 3 --info-file "$run/$1.json" >"$run/$1.log" 2>&1 &
  pids+=($!)
  local pid=$! i
  for i in $(seq 1 1200); do
    [[ -s "$run/$1.json" ]] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "demo: cluster $1 did not start:"; cat "$run/$1.log"; exit 1; }
    sleep 0.1
  done
  echo "demo: cluster $1 did not start within 120 s"; cat "$run/$1.log"; exit 1
}

# api CLUSTER METHOD PATH [JSON] [TOKEN]: one OpenBao API call to the cluster's first node.
api() {
  local info="$run/$1.json" token=${5:-}
  [[ -n "$token" ]] || token=$(json "$info" 'd["rootToken"]')
  curl -fsS -X "$2" -H "X-Vault-Token: $token" ${4:+-d "$4"} "$(json "$info" 'd["nodes"][0]')/v1/$3"
}

step "starting OpenBao cluster A: 3 Raft nodes, initialised and unsealed"
start_cluster a
json "$run/a.json" '"\n".join("  node " + u for u in d["nodes"])'

step "writing secrets into A"
api a POST secret/data/payments '{"data":{"api_key":"pk-demo-4242","owner":"payments team"}}' >/dev/null
api a POST secret/data/database '{"data":{"username":"app","password":"correct horse battery staple"}}' >/dev/null
echo "  secret/payments, secret/database"

step "a least-privilege backup token: read on sys/storage/raft/snapshot, nothing else"
api a PUT sys/policies/acl/snapshot-read '{"policy":"path \"sys/storage/raft/snapshot\" { capabilities = [\"read\"] }"}' >/dev/null
backup_token=$(api a POST auth/token/create '{"policies":["snapshot-read"],"no_default_policy":true,"ttl":"1h"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])')
echo "  created"

standby=""
for url in $(json "$run/a.json" '" ".join(d["nodes"])'); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/sys/health")
  [[ "$code" == 429 ]] && { standby=$url; break; }
done
[[ -n "$standby" ]] || { echo "demo: no standby node in cluster A"; exit 1; }

step "backup of A through the standby $standby"
BAO_TOKEN="$backup_token" "$bao_backup" backup --bao-addr "$standby" \
  --provider file --bucket demo/backups --namespace demo --cluster a >"$run/backup.json"
tail -n 1 "$run/backup.json" >"$run/backup.last"
json "$run/backup.last" '"  key:      %s\n  size:     %d bytes\n  sha256:   %s\n  leader:   %s\n  duration: %s" % (d["key"], d["size"], d["sha256"], d["leader"], d["duration"])'
key=$(json "$run/backup.last" 'd["key"]')

step "verify the stored object"
"$bao_backup" verify --provider file --bucket demo/backups --key "$key" >/dev/null
echo "  verified: demo/backups/$key"

step "starting a second, fresh OpenBao cluster B (its own keys, no secrets)"
start_cluster b
json "$run/b.json" '"\n".join("  node " + u for u in d["nodes"])'

step "forced restore of A's backup into B"
BAO_TOKEN=$(json "$run/b.json" 'd["rootToken"]') "$bao_backup" restore --yes --force \
  $(json "$run/b.json" '" ".join("--bao-addr " + u for u in d["nodes"])') \
  --provider file --bucket demo/backups --key "$key" >"$run/restore.json"
tail -n 1 "$run/restore.json" >"$run/restore.last"
json "$run/restore.last" '"  restored: %s\n  sealed:   %s (B now needs the unseal key of A)\n  cluster:  %s before" % (d["restored"], d["sealed"], d["clusterIdBefore"])'

step "unsealing every node of B with A's unseal key"
a_key=$(json "$run/a.json" 'd["unsealKey"]')
for url in $(json "$run/b.json" '" ".join(d["nodes"])'); do
  for i in $(seq 1 300); do
    sealed=$(curl -s "$url/v1/sys/health" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("sealed"))' || true)
    [[ "$sealed" == "True" ]] && break
    sleep 0.1
  done
  curl -fsS -X PUT -d "{\"key\":\"$a_key\"}" "$url/v1/sys/unseal" >/dev/null
  echo "  unsealed $url"
done

step "reading A's secrets from every node of B (with A's root token)"
a_root=$(json "$run/a.json" 'd["rootToken"]')
for url in $(json "$run/b.json" '" ".join(d["nodes"])'); do
  for name in payments database; do
    out=""
    for i in $(seq 1 300); do
      out=$(curl -fsS -H "X-Vault-Token: $a_root" "$url/v1/secret/data/$name" 2>/dev/null) && break
      sleep 0.1
    done
    want=$(api a GET "secret/data/$name" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["data"]["data"], sort_keys=True))')
    got=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["data"]["data"], sort_keys=True))' "$out")
    [[ "$got" == "$want" ]] || { echo "demo: $url serves $name as $got, expected $want"; exit 1; }
    echo "  $url secret/$name = $got"
  done
done

step "backups of demo/a"
"$bao_backup" list --provider file --bucket demo/backups --namespace demo --cluster a
echo
echo "demo: disaster recovery round trip completed: A's secrets are served by B"
