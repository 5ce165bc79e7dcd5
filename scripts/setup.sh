#!/usr/bin/env bash
# Installs what bao-backup needs to build and test, and nothing twice:
#   scripts/setup.sh          Debian packages for building (and tzdata)
#   scripts/setup.sh --peers  also the real test peers (OpenBao, MinIO, fake-gcs-server, Azurite, moto,
#                           kube-apiserver + etcd, helm)
#   scripts/setup.sh --openbao  also real OpenBao only (what `make demo` runs)
#   scripts/setup.sh --fuzz   also clang and libFuzzer (what `make fuzz` needs; --peers has them)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl tzdata
  libcurl4-openssl-dev libssl-dev zlib1g-dev libarchive-dev libisal-dev
  nlohmann-json3-dev libpugixml-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev clang-format
)
# strace: the file store's crash tests kill bao-backup at chosen system calls with it.
PEER_PACKAGES=(awscli python3-venv etcd-server strace)
# clang for the fuzz targets; libclang-rt-dev has libFuzzer (libclang_rt.fuzzer) and the
# sanitizer runtimes for Debian's default clang.
FUZZ_PACKAGES=(clang libclang-rt-dev)

want=("${PACKAGES[@]}")
[[ "${1:-}" == "--peers" ]] && want+=("${PEER_PACKAGES[@]}" "${FUZZ_PACKAGES[@]}")
[[ "${1:-}" == "--fuzz" ]] && want+=("${FUZZ_PACKAGES[@]}")
[[ "${1:-}" == "--openbao" ]] && want+=(python3-venv)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--peers" ]]; then
  for tool in go node npm python3; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is needed to install the test peers" >&2; exit 1; }
  done
  scripts/install-peers.sh
fi
if [[ "${1:-}" == "--openbao" ]]; then
  command -v python3 >/dev/null || { echo "setup: python3 is needed to install OpenBao" >&2; exit 1; }
  scripts/install-peers.sh openbao
fi
