#!/usr/bin/env bash
# test.sh — sets everything up, then builds and tests every configuration:
# float, double and ASan+UBSan (see setup.sh; with --config mpich also the
# distributed tests on MPICH), and prints one line
# "N passed, M failed" per configuration and, last, in total. On request it
# also runs the float suites under valgrind's memcheck (--valgrind, or only
# some suites with --valgrind-suites) and the libFuzzer targets for a fixed
# time each (--fuzz SECONDS, scripts/fuzz.sh; needs clang, which setup.sh
# --fuzz installs).
#
# The counts are Check's own (summed over the suites) plus one per script
# test and one per fuzz target; meson's verdict on each test always counts
# too (test_summary.py). Exit status 0 only when every build and every test
# passed and at least one test ran. CI runs exactly this, with the flags
# .ci/run gives.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/test.sh [options] [-- MESON_TEST_ARGS...]
  --config NAME     float, double, asan, mpich or all (repeatable; default all;
                    mpich: the 'dist' suite built on MPICH, not in all)
  --build-prefix P  build directory name prefix (default build)
  --no-apt          do not install packages
  --valgrind        also run the float suites under valgrind's memcheck
  --valgrind-suites "S..."
                    the same, for these tests only (names as in tests/meson.build,
                    space- or comma-separated; implies --valgrind)
  --fuzz SECONDS    also build the libFuzzer targets with clang (build directory
                    PREFIX-fuzz) and run each for SECONDS (scripts/fuzz.sh)
  -h, --help        this text
Arguments after -- go to every `meson test` (e.g. -- core unary).
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
setup_args=()
configs=()
prefix=build
valgrind=0
vg_suites=()
fuzz=
meson_args=()

while [ $# -gt 0 ]; do
  common_option "$@" && { shift "$taken"; continue; }
  case "$1" in
  --no-apt) setup_args+=(--no-apt); shift ;;
  --valgrind) valgrind=1; setup_args+=(--valgrind); shift ;;
  --valgrind-suites)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    valgrind=1
    setup_args+=(--valgrind)
    read -r -a more <<<"$(tr ',\n\t' '   ' <<<"$2")"
    vg_suites+=("${more[@]}")
    shift 2
    ;;
  --fuzz)
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    case "$2" in '' | *[!0-9]*) echo "test.sh: --fuzz needs a number of seconds" >&2; exit 2 ;; esac
    fuzz=$2
    setup_args+=(--fuzz)
    shift 2
    ;;
  -h | --help) usage; exit 0 ;;
  --) shift; meson_args=("$@"); break ;;
  *) echo "test.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[ ${#configs[@]} -gt 0 ] || configs=(all)
expand_configs test.sh
if [ "$valgrind" = 1 ] && [[ " ${configs[*]} " != *" float "* ]]; then
  configs+=(float)
fi

# Packages and configured build directories (compiling happens below, one
# configuration at a time, so a broken one does not hide the others).
config_args=()
for c in "${configs[@]}"; do config_args+=(--config "$c"); done
bash "$root/scripts/setup.sh" --no-build --build-prefix "$prefix" "${config_args[@]}" \
  "${setup_args[@]}"

# test_summary.py arguments: NAME TESTLOG RC per run.
summary=()
run_tests() { # NAME DIR [meson test args...]
  local name=$1 dir=$2 rc=0 log
  shift 2
  log="$dir/meson-logs/testlog.json"
  for a in "$@"; do
    case "$a" in --setup=*) log="$dir/meson-logs/testlog-${a#--setup=}.json" ;; esac
  done
  rm -f "$log"
  echo
  echo "=== $name: meson test${*:+ $*} (${dir#"$root/"})"
  local t0=$SECONDS
  meson test -C "$dir" --print-errorlogs "$@" "${meson_args[@]}" || rc=$?
  echo "=== $name: meson test exited $rc after $((SECONDS - t0)) s"
  summary+=("$name" "$log" "$rc")
}

for c in "${configs[@]}"; do
  dir=$(builddir_of "$c")
  echo
  echo "=== $c: building (${dir#"$root/"})"
  t0=$SECONDS
  if ! ninja -C "$dir"; then
    echo "=== $c: BUILD FAILED"
    rm -f "$dir/meson-logs/testlog.json"
    summary+=("$c" "$dir/meson-logs/testlog.json" 1)
    continue
  fi
  echo "=== $c: built in $((SECONDS - t0)) s"
  if [ "$c" = mpich ]; then
    run_tests "$c" "$dir" --suite dist
  else
    run_tests "$c" "$dir"
  fi
  if [ "$c" = float ] && [ "$valgrind" = 1 ]; then
    run_tests valgrind "$dir" --setup=valgrind "${vg_suites[@]}"
  fi
done

if [ -n "$fuzz" ]; then
  echo
  echo "=== fuzz: scripts/fuzz.sh $fuzz (${prefix}-fuzz)"
  t0=$SECONDS
  rc=0
  FUZZ_BUILD="$root/$prefix-fuzz" bash "$root/scripts/fuzz.sh" "$fuzz" || rc=$?
  echo "=== fuzz: exited $rc after $((SECONDS - t0)) s"
  summary+=(fuzz "$root/$prefix-fuzz/fuzz-testlog.json" "$rc")
fi

echo
exec python3 "$root/scripts/test_summary.py" "${summary[@]}"
