#!/bin/sh
# dist_test.sh — data-parallel training under mpirun on this host.
#
# usage: dist_test.sh MPIRUN DIST_CHECK DIST_TRAIN
# Checks: the fixed-order allreduce gives the pairwise tree's bits at 1-4
# ranks; 2 ranks with 2 or 4 shards end with the weights of 1 process with
# the same shards, byte for byte (SGD and Adam, with Batch Norm); ranks
# started with different configurations fail naming the field; a rank
# stopped or killed ends the job non-zero within the watchdog's timeout.
# Every job runs under `timeout`, so a hang is a failure, never a wait.
# Exit 77 (skipped) when there is no mpirun.
set -u

mpirun=$1
check=$2
train=$3
if [ -z "$mpirun" ] || ! command -v "$mpirun" >/dev/null 2>&1; then
  echo "SKIP: no mpirun"
  exit 77
fi

# Shared memory between ranks, as root in a container (TOOLCHAIN.md).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI leaks at finalize; ASan's leak check is for our code's tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
run() {
  np=$1
  shift
  timeout -k 5 120 "$mpirun" --allow-run-as-root --oversubscribe --bind-to none \
    --mca btl self,vader -np "$np" "$@"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}

# --- the fixed-order allreduce ------------------------------------------------
# Sizes: odd, smaller than the rank count, and several buckets of 4 KiB.
for np in 1 2 3 4; do
  for n in 100003 2 0; do
    run "$np" "$check" bits "$n" 4096 >"$tmp/out" 2>&1 || {
      cat "$tmp/out"
      fail "allreduce bits, $np ranks, $n elements"
    }
    [ "$n" -gt 2 ] && grep -m1 "elements" "$tmp/out"
  done
done
run 4 "$check" bits 100003 0 >/dev/null 2>&1 || fail "allreduce bits, 4 ranks, one bucket"

# --- N ranks reproduce one process ---------------------------------------------
for opt in sgd adam; do
  for v in 2 4; do
    args="--shards $v --optim $opt --batchnorm --steps 30"
    "$train" $args --save "$tmp/one.bin" >/dev/null 2>&1 || fail "1 process, $args"
    run 2 "$train" $args --save "$tmp/two.bin" >/dev/null 2>&1 || fail "2 ranks, $args"
    if cmp -s "$tmp/one.bin" "$tmp/two.bin"; then
      echo "ok: 2 ranks = 1 process, byte for byte ($args)"
    else
      fail "2 ranks differ from 1 process ($args)"
    fi
  done
  # The control: another shard count is another sum, so cmp can tell.
  "$train" --shards 2 --optim $opt --batchnorm --steps 30 --save "$tmp/a.bin" >/dev/null 2>&1
  "$train" --shards 4 --optim $opt --batchnorm --steps 30 --save "$tmp/b.bin" >/dev/null 2>&1
  cmp -s "$tmp/a.bin" "$tmp/b.bin" && fail "2 and 4 shards gave the same bytes ($opt): cmp cannot see a change"
done

# --- a configuration that differs ----------------------------------------------
run 1 "$train" --seed 1 : -np 1 "$train" --seed 2 >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  fail "mismatched seeds: exit $rc, expected a non-zero exit without a hang"
elif ! grep -q '^\[rank [01]\] dist: the ranks.* differ in "seed"' "$tmp/out"; then
  cat "$tmp/out"
  fail "mismatched seeds: no message naming the field"
else
  echo "ok: mismatched seeds end the job (exit $rc): $(grep -m1 'differ in' "$tmp/out")"
fi

# --- a rank that stops or dies --------------------------------------------------
run 2 "$check" stall none 3 >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "stall none: a healthy job failed"; }
for how in stop kill; do
  start=$(date +%s)
  run 2 "$check" stall "$how" 3 >"$tmp/out" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  # mpirun passes a killed rank's signal on (exit 137); only the clock and
  # timeout's own 124 tell a hang.
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$took" -ge 60 ]; then
    cat "$tmp/out"
    fail "a rank that got SIG$(echo $how | tr a-z A-Z): exit $rc after $took s"
  else
    echo "ok: a rank that got SIG$(echo $how | tr a-z A-Z) ends the job: exit $rc after $took s"
  fi
done

[ "$fails" -eq 0 ] && echo "all dist checks passed"
[ "$fails" -eq 0 ]
