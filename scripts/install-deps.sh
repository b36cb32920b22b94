#!/usr/bin/env bash
# Installs every Debian package synclap needs to build, test and run. Idempotent: when everything is
# already installed it does nothing (not even `apt-get update`). Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake make ccache pkg-config git
  clang libclang-rt-14-dev            # libFuzzer for the decoder fuzz smoke test
  # tensors: LibTorch (CPU) and a fast BLAS for it (without it LibTorch uses reference BLAS, ~14x slower)
  libtorch-dev libopenblas0-pthread
  # audio
  libsndfile1-dev libmpg123-dev libsoxr-dev librubberband-dev libfluidsynth-dev fluid-soundfont-gm
  zlib1g-dev                          # PNG pictures (spectrograms, curves, confusion matrices)
  # search, storage, serving, formats, command line
  libfaiss-dev libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libarchive-dev
  # data-parallel training over processes (c10d ProcessGroupGloo)
  libgloo-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  python3                             # tests: the stand-in external generator of SynthExternal.* writes a WAV
  chromium curl                       # tests: the search web page end to end in headless Chromium (Search.WebE2E)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch must find OpenBLAS (pthread flavour) through the BLAS alternatives.
if [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ] && command -v update-alternatives >/dev/null; then
  cur=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
  case "$cur" in
    *openblas*) ;;
    *) ${SUDO:-} update-alternatives --set libblas.so.3-x86_64-linux-gnu \
         /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 || true ;;
  esac
fi
