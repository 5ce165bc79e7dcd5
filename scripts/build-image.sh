#!/usr/bin/env bash
# Builds the bao-backup container image (deploy/Dockerfile) and checks that it runs.
#
#   scripts/build-image.sh                       -> localhost/bao-backup:0.1.0
#   IMAGE=ghcr.io/me/bao-backup:0.1.0 scripts/build-image.sh
#
# Environment:
#   IMAGE         the tag to build (default localhost/bao-backup:<project version>)
#   ENGINE        podman, buildah or docker (default: the first of them that works)
#   BASE          build-stage base image   (default: debian:bookworm, see below)
#   RUNTIME_BASE  runtime base image       (default: debian:bookworm-slim, see below)
#
# Base images: when BASE/RUNTIME_BASE are not given and debian:bookworm(-slim) are neither
# present locally nor pullable (no registry access), the script makes them from Debian packages
# with mmdebstrap (apt-get install mmdebstrap) and imports them as localhost/debian:bookworm and
# localhost/debian:bookworm-slim (minbase, merged /usr; the slim one without docs, man pages and
# locales, like the official slim image). That needs only the Debian mirror.
#
# Hosts where the engine's defaults cannot start a container (cgroup v1/v2 hybrid, no
# CAP_SYS_RESOURCE) get runc and modest ulimits instead; see "how to run containers here".
#
# Safe to run again: base images are made once (remove localhost/debian:bookworm{,-slim} to
# make them again), the build reuses the engine's layer cache, and the tag is replaced.
# Prints the build time, the image's size and `bao-backup --version` run inside it.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^project([a-z_]* VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IMAGE="${IMAGE:-localhost/bao-backup:${version:-latest}}"
log() { printf 'build-image: %s\n' "$*" >&2; }

# --- the engine -------------------------------------------------------------------------------
if [[ -z "${ENGINE:-}" ]]; then
  for e in podman buildah docker; do
    command -v "$e" >/dev/null || continue
    [[ "$e" == docker ]] && ! docker info >/dev/null 2>&1 && continue
    ENGINE=$e
    break
  done
fi
[[ -n "${ENGINE:-}" ]] || { log "no container engine: apt-get install podman (or buildah)"; exit 1; }

image_exists() {
  case "$ENGINE" in
    podman) podman image exists "$1" ;;
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
  esac
}
try_pull() { timeout 120 "$ENGINE" pull -q "$1" >/dev/null 2>&1; }

# --- base images ------------------------------------------------------------------------------
# debootstrap_image NAME [mmdebstrap options...]: a Debian bookworm minbase image, made once.
debootstrap_image() {
  local name=$1
  shift
  image_exists "$name" && return 0
  command -v mmdebstrap >/dev/null || { log "mmdebstrap is needed to make $name (apt-get install mmdebstrap)"; exit 1; }
  log "making $name with mmdebstrap (first time only)"
  local tar rc=0
  tar=$(mktemp --suffix=.tar)
  # merged /usr through the hook rather than the usrmerge package, which would pull in perl.
  local hooks=()
  [[ -d /usr/share/mmdebstrap/hooks/merged-usr ]] && hooks=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  mmdebstrap --quiet --variant=minbase "${hooks[@]}" "$@" bookworm "$tar" &&
    "$ENGINE" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' "$tar" "$name" >/dev/null 2>&1 || rc=$?
  rm -f "$tar"
  return "$rc"
}

# pick_base WANTED LOCAL [mmdebstrap options...]: WANTED if present or pullable, else LOCAL.
pick_base() {
  local wanted=$1 local_name=$2
  shift 2
  if image_exists "$wanted" || try_pull "$wanted"; then
    echo "$wanted"
  else
    log "$wanted is not available (no registry access?); using $local_name"
    debootstrap_image "$local_name" "$@"
    echo "$local_name"
  fi
}

slim_opts=(
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
BASE="${BASE:-$(pick_base docker.io/library/debian:bookworm localhost/debian:bookworm)}"
RUNTIME_BASE="${RUNTIME_BASE:-$(pick_base docker.io/library/debian:bookworm-slim \
  localhost/debian:bookworm-slim "${slim_opts[@]}")}"

# --- how to run containers here ---------------------------------------------------------------
# Some hosts cannot start a container with the engine's defaults: crun refuses cgroup v1/v2
# hybrid hosts ("cgroups in hybrid mode not supported"), and without CAP_SYS_RESOURCE raising
# RLIMIT_NOFILE/NPROC to podman's defaults fails ("setrlimit ... Operation not permitted").
# Then: runc (apt-get install runc) and modest ulimits, for the build's RUN steps and the check.
engine=("$ENGINE")
ctr_opts=()
if [[ "$ENGINE" == buildah ]]; then
  ctr_opts=(--isolation chroot) # no OCI runtime needed
else
  probe() { "${engine[@]}" run --rm "${ctr_opts[@]}" "$RUNTIME_BASE" true >/dev/null 2>&1; }
  if ! probe; then
    ctr_opts=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
    if ! probe && [[ "$ENGINE" == podman ]] && command -v runc >/dev/null; then
      engine=(podman --runtime runc)
    fi
    if ! probe; then
      log "$ENGINE cannot start a container here:"
      "${engine[@]}" run --rm "${ctr_opts[@]}" "$RUNTIME_BASE" true || true
      exit 1
    fi
    log "using ${engine[*]} ${ctr_opts[*]} (the defaults cannot start a container here)"
  fi
fi

# --- build ------------------------------------------------------------------------------------
log "building $IMAGE with ${engine[*]} (BASE=$BASE RUNTIME_BASE=$RUNTIME_BASE)"
start=$(date +%s)
build=("${engine[@]}" build "${ctr_opts[@]}")
[[ "$ENGINE" != docker ]] && build+=(--layers --pull=never)
"${build[@]}" -f deploy/Dockerfile -t "$IMAGE" \
  --build-arg "BASE=$BASE" --build-arg "RUNTIME_BASE=$RUNTIME_BASE" .
log "built $IMAGE in $(($(date +%s) - start)) s"

# --- check ------------------------------------------------------------------------------------
case "$ENGINE" in
  podman | docker)
    size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
    got=$("${engine[@]}" run --rm "${ctr_opts[@]}" "$IMAGE" --version)
    ;;
  buildah)
    size=$(buildah inspect --type image --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo "?")
    ctr=$(buildah from "$IMAGE")
    got=$(buildah run "${ctr_opts[@]}" "$ctr" -- /usr/local/bin/bao-backup --version)
    buildah rm "$ctr" >/dev/null
    ;;
esac
if [[ "$size" =~ ^[0-9]+$ ]]; then
  log "image size: $((size / 1000000)) MB ($size bytes)"
fi
log "$IMAGE runs: $got"
