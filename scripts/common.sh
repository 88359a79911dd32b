# Shared by scripts/demo and scripts/test: install the Debian packages that are missing, then
# configure and build (Release) into build/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ATLASCOPE_BUILD_DIR:-$ROOT/build}"

# Everything the build and the tests need on Debian 12 (TOOLCHAIN.md). libopenblas0-openmp
# matters: without it Debian's LibTorch falls back to the reference BLAS (20-40x slower).
PACKAGES=(cmake g++ make pkg-config
          qt6-base-dev qt6-charts-dev qt6-svg-dev libvtk9-dev libtorch-dev libgloo-dev libopenblas0-openmp
          zlib1g-dev libhdf5-dev nlohmann-json3-dev libcli11-dev libigraph-dev
          libtiff-dev libblosc-dev libzstd-dev libdraco-dev
          xvfb xauth libgl1-mesa-dri)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "== packages: all installed"
    return
  fi
  echo "== packages: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build [cmake options...] [-- targets...]: configure, then build the targets (default: all).
build() {
  local options=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for t in "$@"; do targets+=(--target "$t"); done
  echo "== configure ($BUILD_DIR)"
  local launcher=()
  command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${options[@]}" >/dev/null
  echo "== build"
  cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}" -- --no-print-directory
}
