# Shared by scripts/test and scripts/quickstart: dependency install and builds.
# Everything the project needs comes from Debian's packages; nothing by hand.

VR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VR_APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl openssl
  libgtest-dev googletest libbenchmark-dev nlohmann-json3-dev
  libquantlib0-dev libboost-dev libsleef-dev
  libsecp256k1-dev libcrypto++-dev libcurl4-openssl-dev libxxhash-dev
  nats-server libnats-dev prometheus-cpp-dev libtomlplusplus-dev
  python3 python3-numpy python3-scipy python3-pandas
  clang libclang-rt-14-dev libomp-dev
  chromium
)

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }

vr_have_cuda() { [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; }

# Installs whatever of the package list is missing (apt-get update once, then install).
vr_install_deps() {
  local pkgs=("${VR_APT_PACKAGES[@]}") missing=()
  # Thrust headers: the CUDA toolkit's CCCL when present, else Debian's.
  vr_have_cuda || pkgs+=(libthrust-dev libcub-dev)
  # Node.js for the pinned JS tools (ethers); Debian's unless one is already installed.
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # npm packages, exactly as package-lock.json pins them (re-run when the lock changes).
  local stamp="$VR_ROOT/node_modules/.vr-lock-sha256" want
  want="$(sha256sum "$VR_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci (pinned JS tools)"
    (cd "$VR_ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
  fi
}

# vr_build DIR [cmake args...] -- [targets...]
vr_build() {
  local dir="$1"; shift
  local cfg=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cfg+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  targets=("$@")
  cmake -S "$VR_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cfg[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" --target "${targets[@]}"
  else
    cmake --build "$dir"
  fi
}
