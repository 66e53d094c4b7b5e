#!/usr/bin/env bash
# llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), a second server
# implementation independent of llama.cpp's own llama-server (it serialises requests), installed
# once per machine into a virtual environment in a cache outside the clone, as the cargo target
# directory and scripts/llama-server.sh's build are: a fresh clone (CI) pays for compiling
# llama.cpp only once. The real-server tests (tests/servers.rs) find it there.
#
#   scripts/llama-cpp-python.sh          install unless cached; print the venv's python last
#   scripts/llama-cpp-python.sh path     print where that python is (or will be), install nothing
#
# Idempotent: a second run finds the venv, checks that the server imports, and says so.
# cmake and a C++ compiler come from Debian's packages when missing, as scripts/setup.sh and
# scripts/llama-server.sh install their tools. Jobs: QUARRY_BUILD_JOBS (default: the cores).
set -euo pipefail

VERSION="0.3.36"
PACKAGE="llama-cpp-python==$VERSION"
SDIST="llama_cpp_python-$VERSION.tar.gz"
SDIST_SHA="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
NAME=llama-cpp-python
. "$(dirname "$0")/lib.sh"

CACHE="${QUARRY_LLAMA_CPP_PYTHON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quarry/llama-cpp-python}/$VERSION"
VENV="$CACHE/venv"
PY="$VENV/bin/python"
# Written last, once the server imports: a half-finished install never counts as one.
STAMP="$CACHE/installed"
# Without AMX (lib.sh says why). The stamp holds the flags: an install built with others is redone.
CPU_FLAGS="$(native_cpu_flags)"

if [ "${1:-}" = "path" ]; then
  echo "$PY"
  exit 0
fi

# The server's modules import and the library loads: nothing to do.
works() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$CPU_FLAGS" ] && [ -x "$PY" ] && "$PY" - "$VERSION" >/dev/null 2>&1 <<'EOF'
import sys
import llama_cpp, llama_cpp.server.app, uvicorn  # the server and its extras
assert llama_cpp.__version__ == sys.argv[1], llama_cpp.__version__
llama_cpp.llama_print_system_info()  # the shared library loads
EOF
}
if works; then
  say "already installed: $PY"
  echo "$PY"
  exit 0
fi

# 1. Build tools, from Debian's packages when missing.
mapfile -t missing < <(missing_cmake_tools)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
apt_install "${missing[@]}"

# 2. The source package, checked against its pinned sum.
DL="$CACHE/download"
fetch_pinned "$PACKAGE" "$SDIST" "$SDIST_SHA" "$DL" --no-binary :all:

# 3. A fresh venv, and the package with its server extras built from that sdist. Only the
# shared libraries the bindings load are compiled: no tests, examples, tools or multimodal
# (llava/mtmd) library, CPU code for this machine (GGML_NATIVE, as the cache is per machine).
rm -rf "$VENV" "$STAMP"
python3 -m venv "$VENV"
"$PY" -m pip install --quiet --upgrade pip >&2
JOBS="${QUARRY_BUILD_JOBS:-$(nproc)}"
start=$(date +%s)
say "building $PACKAGE with $JOBS jobs (compiles llama.cpp: about 8-15 minutes on 2 cores)"
CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
-DLLAMA_BUILD_SERVER=OFF -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON" \
CFLAGS="$CPU_FLAGS" CXXFLAGS="$CPU_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
  "$PY" -m pip install --no-cache-dir "llama-cpp-python[server] @ file://$DL/$SDIST" >&2 \
  || die "pip could not build $PACKAGE (its log is above)"
printf '%s' "$CPU_FLAGS" > "$STAMP"
works || { rm -f "$STAMP"; die "$PACKAGE was installed into $VENV but its server does not import"; }
say "installed $PY in $(( $(date +%s) - start )) s"
echo "$PY"
