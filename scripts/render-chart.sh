#!/usr/bin/env bash
# Prints the operator's manifests from the Helm chart (deploy/helm/bao-backup), for plain
# `kubectl apply` and for tests, with the helm that scripts/install-peers.sh helm installs:
#   scripts/render-chart.sh | kubectl apply -f -
#   scripts/render-chart.sh --include-crds --set rbac.scope=namespaced --set 'watchNamespaces={a,b}'
# Extra arguments go to `helm template`. The namespace bao-backup-system must exist before the
# output is applied (kubectl create namespace bao-backup-system).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS_DIR="${BAO_BACKUP_PEERS_DIR:-$HOME/.cache/bao-backup/peers}"
helm="$PEERS_DIR/bin/helm"
[[ -x "$helm" ]] || { echo "render-chart: $helm is missing; run scripts/install-peers.sh helm" >&2; exit 1; }
exec "$helm" template bao-backup deploy/helm/bao-backup --namespace bao-backup-system "$@"
