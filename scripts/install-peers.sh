#!/usr/bin/env bash
# Installs the real test peers (pinned) into a cache outside the source tree.
# Safe to run repeatedly: each peer is skipped when its pinned version is present.
set -euo pipefail

PEERS_DIR="${BAO_BACKUP_PEERS_DIR:-$HOME/.cache/bao-backup/peers}"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
FAKE_GCS_VERSION="v1.56.1"
AZURITE_VERSION="3.37.0"
AZURE_BLOB_CLIENT_VERSION="12.34.0"
MOTO_VERSION="5.2.5"

mkdir -p "$PEERS_DIR/bin"
log() { printf 'install-peers: %s\n' "$*" >&2; }

go_peer() { # name module version
  local name=$1 module=$2 version=$3 stamp="$PEERS_DIR/bin/.$1.version"
  if [[ -x "$PEERS_DIR/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    return 0
  fi
  log "building $module@$version (first time only)"
  GOBIN="$PEERS_DIR/bin" GOFLAGS=-mod=mod go install "$module@$version"
  echo "$version" >"$stamp"
}

go_peer minio github.com/minio/minio "$MINIO_VERSION"
go_peer fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"

node_dir="$PEERS_DIR/node"
node_stamp="$node_dir/.versions"
node_want="azurite@$AZURITE_VERSION @azure/storage-blob@$AZURE_BLOB_CLIENT_VERSION"
if [[ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]]; then
  log "installing $node_want"
  mkdir -p "$node_dir"
  (cd "$node_dir" && [[ -f package.json ]] || echo '{"private":true}' >"$node_dir/package.json")
  npm install --silent --no-audit --no-fund --prefix "$node_dir" $node_want
  echo "$node_want" >"$node_stamp"
fi

venv="$PEERS_DIR/venv"
if [[ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]]; then
  log "installing moto[server]==$MOTO_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
fi
log "peers ready in $PEERS_DIR"
