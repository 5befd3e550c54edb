#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets with clang (ASan + UBSan) and runs
# each on its seed corpus for a given number of seconds; exits non-zero if
# any target finds a crash, a leak, a timeout or an out-of-memory input.
#
#   scripts/fuzz.sh                 # 30 s per target (idx, checkpoint, cli)
#   scripts/fuzz.sh 3600            # an hour each: run it longer this way
#   scripts/fuzz.sh 600 checkpoint  # only some targets
#   FUZZ_JOBS=2 scripts/fuzz.sh 600 # N parallel jobs per target
#
# Targets (fuzz/): idx (fuzz_idx.c), checkpoint (fuzz_checkpoint.c) and cli
# (fuzz_cli.c: the command-line parsers; inputs are NUL-separated words).
# Seeds live in tests/fuzz-corpus/<target>/ (regenerate idx and checkpoint
# with tests/fuzz-corpus/mkcorpus.py; cli's are command lines written by
# hand, one per file); what the fuzzer learns goes to a scratch
# corpus in the build directory, never into the tree. A finding is written
# to <build>/fuzz-<target>/ as crash-*, leak-*, timeout-* or oom-*: rerun
# it with `<build>/<path of the target> FILE`, fix the reader, and add the
# file to a regression test. Each target's verdict also goes to
# <build>/fuzz-testlog.json, one JSON line per target in the form of
# meson's testlog.json (scripts/test.sh --fuzz counts them). Environment:
# FUZZ_BUILD (build directory, default build-fuzz), FUZZ_JOBS (default
# 1), TMPDIR (the idx and checkpoint targets write each input to a file
# there; /dev/shm is used when it exists).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx checkpoint cli)
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-1}
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: seconds must be a number" >&2; exit 2 ;; esac

testlog="$build/fuzz-testlog.json"
rm -f "$testlog"
command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (scripts/setup.sh --fuzz)" >&2; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  # The library itself is built with the sanitizers too: the cli target
  # links it (the other targets compile the sources they read). Under the
  # sanitizers clang cannot vectorise the kernels' `omp simd` loops and
  # says so for each (-Wpass-failed); speed is not this build's purpose.
  CC=clang meson setup "$build" "$root" -Db_lundef=false -Dbenchmarks=false -Dtests=false \
    -Db_sanitize=address,undefined -Dc_args=-Wno-pass-failed
fi
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi

status=0
for t in "${targets[@]}"; do
  case "$t" in
  idx) exe=fuzz/fuzz_idx ;;
  checkpoint) exe=fuzz/fuzz_checkpoint ;;
  cli) exe=fuzz/fuzz_cli ;;
  *) echo "fuzz.sh: unknown target '$t' (idx, checkpoint, cli)" >&2; exit 2 ;;
  esac
  if ! ninja -C "$build" "$exe"; then
    echo "=== $t: BUILD FAILED"
    printf '{"name": "fuzz-%s", "result": "FAIL", "stdout": "build failed"}\n' "$t" >>"$testlog"
    status=1
    continue
  fi
  out="$build/fuzz-$t"
  mkdir -p "$out/corpus"
  echo "=== $t: $seconds s, $jobs job(s)"
  rc=0
  par=()
  [ "$jobs" -le 1 ] || par=(-jobs="$jobs" -workers="$jobs")
  rm -f "$out"/fuzz-*.log
  (cd "$out" && "$build/$exe" -max_total_time="$seconds" -malloc_limit_mb=64 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$out/" "${par[@]}" \
    corpus "$root/tests/fuzz-corpus/$t" >"$out/log.txt" 2>&1) || rc=$?
  # With jobs, each job logs to fuzz-N.log; the parent's log has no stats.
  execs=$({ grep -h "stat::number_of_executed_units" "$out/log.txt" "$out"/fuzz-*.log 2>/dev/null ||
    true; } | awk '{n += $2} END {print n + 0}')
  echo "=== $t: $execs executions"
  findings=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
  if [ "$rc" != 0 ] || [ "$findings" != 0 ]; then
    echo "=== $t: FAILED (exit $rc, $findings finding(s) in $out); the log's end:"
    tail -n 30 "$out/log.txt"
    status=1
    result=FAIL
  else
    echo "=== $t: no finding"
    result=OK
  fi
  printf '{"name": "fuzz-%s", "result": "%s", "stdout": "%s executions, %s finding(s)"}\n' \
    "$t" "$result" "$execs" "$findings" >>"$testlog"
done
exit $status
