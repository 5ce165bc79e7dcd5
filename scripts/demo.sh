#!/usr/bin/env bash
# The README's first command (`make demo`): starts a 3-node OpenBao test server on 127.0.0.1,
# takes a backup through a standby node into demo/backups with a token that may only read the
# snapshot endpoint, prints the object's key, size and checksum, and verifies the stored object.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bao_backup="$build/src/cli/bao-backup"
server="$build/tests/bao_testserver/bao-testserver"
run=demo/run
mkdir -p "$run" demo/backups
rm -f "$run/ready.json"

admin_token="demo-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
backup_token="demo-backup-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
"$server" --nodes 3 --ready-file "$run/ready.json" --admin-token "$admin_token" \
  --state-size $((64 << 20)) --cluster-name demo >"$run/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT

for _ in $(seq 1 200); do
  [[ -s "$run/ready.json" ]] && break
  kill -0 $server_pid 2>/dev/null || { echo "demo: the test server exited:"; cat "$run/server.log"; exit 1; }
  sleep 0.05
done
[[ -s "$run/ready.json" ]] || { echo "demo: the test server did not start"; exit 1; }
node() { python3 -c "import json,sys; print(json.load(open('$run/ready.json'))['nodes'][$1])"; }
leader=$(node 0)
standby=$(node 1)

# A least-privilege token: read on the snapshot endpoint, nothing else.
curl -fsS -X POST "$leader/_test/tokens" \
  -d "{\"token\":\"$backup_token\",\"policies\":{\"sys/storage/raft/snapshot\":[\"read\"]}}" >/dev/null

echo "== backup through the standby node $standby"
result=$(BAO_TOKEN="$backup_token" "$bao_backup" backup --bao-addr "$standby" \
  --provider file --bucket demo/backups --namespace demo --cluster openbao | tail -n 1)
key=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['key'])" "$result")
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"key:      {r['key']}\nsize:     {r['size']} bytes\nsha256:   {r['sha256']}\n"
      f"leader:   {r['leader']}\nduration: {r['duration']}")
PY

echo "== verify the stored object"
"$bao_backup" verify --provider file --bucket demo/backups --key "$key" >/dev/null
echo "verified: demo/backups/$key"
echo "== backups of demo/openbao"
"$bao_backup" list --provider file --bucket demo/backups --namespace demo --cluster openbao
