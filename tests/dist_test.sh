#!/bin/sh
# dist_test.sh — data-parallel training under mpirun on this host.
#
# usage: dist_test.sh MPIRUN DIST_CHECK DIST_TRAIN TAPEGRAD MKDATA
# Checks: the fixed-order allreduce gives the pairwise tree's bits at 1-4
# ranks; the weights check names the first rank whose weights differ; 2 ranks with 2 or 4 shards end with the weights of 1 process with
# the same shards, byte for byte (SGD and Adam, with Batch Norm), both in
# the example (dist_train) and in `tapegrad train`, whose checkpoints are
# compared (also Dropout + Batch Norm, SimpleConvNet, and a resume at
# another rank count); ranks started with different configurations fail
# naming the field; a rank stopped or killed ends the job non-zero within
# the watchdog's timeout; so does a rank of `tapegrad train` stopped with
# SIGSTOP, and no stopped process outlives the test.
# Every job runs under `timeout`, so a hang is a failure, never a wait.
# Exit 77 (skipped) when there is no mpirun.
set -u

mpirun=$1
check=$2
train=$3
tg=$4
mkdata=$5
if [ -z "$mpirun" ] || ! command -v "$mpirun" >/dev/null 2>&1; then
  echo "SKIP: no mpirun"
  exit 77
fi

# Open MPI's mpirun, or MPICH's (Hydra's mpiexec), whichever the library
# was built with (tests/meson.build). Open MPI: shared memory between
# ranks, as root in a container (TOOLCHAIN.md); Hydra runs as root, more
# ranks than cores and unbound by default. Each names a rank in its
# environment.
if "$mpirun" --version 2>&1 | grep -q HYDRA; then
  launch_opts=""
  rank_var=PMI_RANK
else
  launch_opts="--allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader"
  rank_var=OMPI_COMM_WORLD_RANK
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# MPI leaks at finalize; ASan's leak check is for our code's tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
run() {
  np=$1
  shift
  # shellcheck disable=SC2086 # launch_opts holds words without blanks
  timeout -k 5 120 "$mpirun" $launch_opts -np "$np" "$@"
}

tmp=$(mktemp -d)
trap 'umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"' EXIT
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

# --- the weights check -----------------------------------------------------------
# Ranks whose weights differ in one bit: every rank fails, and rank 0 names
# the lowest of them (dist_check checks each rank's message itself).
for c in "2 none" "2 1" "4 none" "4 2,3" "4 3,1" "3 2"; do
  np=${c% *}
  which=${c#* }
  run "$np" "$check" same "$which" 0 >"$tmp/out" 2>&1 || {
    cat "$tmp/out"
    fail "weights check, $np ranks, ranks $which differ"
  }
  first=$(echo "$which" | tr ',' '\n' | sort -n | head -1)
  if [ "$which" != none ] && ! grep -q "rank $first is the first that differs" "$tmp/out"; then
    cat "$tmp/out"
    fail "weights check, $np ranks, ranks $which differ: rank $first not named"
  fi
done
grep -m1 "first that differs" "$tmp/out"

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

# --- tapegrad train: N ranks write the checkpoint of 1 process -----------------
# A small synthetic data set (mkdata), --limit'ed to an uneven last batch,
# one thread per rank (the same threads per rank is part of the promise).
mkdir -p "$tmp/data" && "$mkdata" "$tmp/data" 530 100 3 || fail "mkdata"
tgrun() { # NP ARGS...: 0 ranks means one plain process (sh has no locals)
  tg_np=$1
  shift
  if [ "$tg_np" -eq 0 ]; then
    timeout -k 5 120 "$tg" train --data "$tmp/data" --threads 1 --quiet --json "$@"
  else
    run "$tg_np" "$tg" train --data "$tmp/data" --threads 1 --quiet --json "$@"
  fi
}
same_bytes() { # NAME NP ARGS...: 1 process vs NP ranks, the same --shards
  name=$1
  np=$2
  shift 2
  tgrun 0 "$@" --save "$tmp/one.ckpt" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "$name: 1 process"; return; }
  tgrun "$np" "$@" --save "$tmp/n.ckpt" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "$name: $np ranks"; return; }
  if cmp -s "$tmp/one.ckpt" "$tmp/n.ckpt"; then
    echo "ok: tapegrad train, $np ranks = 1 process, byte for byte: $name ($*)"
  else
    fail "tapegrad train: $np ranks differ from 1 process: $name ($*)"
  fi
}
same_bytes "SGD" 2 --model two-layer-net --optimizer sgd --shards 2 --epochs 2
same_bytes "Adam, uneven last batch" 2 --model two-layer-net --optimizer adam --shards 4 \
  --batch-size 64 --epochs 2
bnd="--model multi-layer-net --hidden 40,40 --batchnorm --dropout 0.2 --optimizer adam"
same_bytes "Dropout + Batch Norm" 2 $bnd --shards 4 --epochs 2
same_bytes "Dropout + Batch Norm" 4 $bnd --shards 4 --epochs 2
# 3 ranks: each slice summed by its owner, and a mean over 6 shards, a
# division that is not a product with an exact reciprocal.
same_bytes "3 ranks, 6 shards" 3 --model two-layer-net --optimizer momentum --shards 6 --epochs 1
same_bytes "SimpleConvNet" 2 --model simple-convnet --shards 2 --batch-size 50 --limit 200 --epochs 1
# The control: Batch Norm of 2 micro-batches is another computation than of 4.
tgrun 0 $bnd --shards 2 --epochs 2 --save "$tmp/two.ckpt" >/dev/null 2>&1
tgrun 0 $bnd --shards 4 --epochs 2 --save "$tmp/four.ckpt" >/dev/null 2>&1
cmp -s "$tmp/two.ckpt" "$tmp/four.ckpt" && fail "2 and 4 shards gave the same checkpoint: cmp cannot see a change"

# Resume at another rank count: 2 + 1 epochs, the second at 1, 2 or 4 ranks,
# equal the 3 epochs of one process.
tgrun 0 $bnd --shards 4 --epochs 3 --save "$tmp/ref.ckpt" >/dev/null 2>&1 || fail "resume: the reference run"
tgrun 2 $bnd --shards 4 --epochs 2 --save "$tmp/half.ckpt" >/dev/null 2>&1 || fail "resume: the first 2 epochs"
for np in 0 1 4; do
  cp "$tmp/half.ckpt" "$tmp/r.ckpt"
  tgrun "$np" --resume "$tmp/r.ckpt" --epochs 1 --save "$tmp/r.ckpt" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "resume at $np ranks"; }
  cmp -s "$tmp/ref.ckpt" "$tmp/r.ckpt" && echo "ok: resumed at $np ranks (0: no mpirun) = one run" ||
    fail "resumed at $np ranks: the checkpoint differs from one run's"
done
# A rank count that does not divide the checkpoint's shards: a usage error.
tgrun 3 --resume "$tmp/half.ckpt" --epochs 1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q "does not split over 3 ranks" "$tmp/out" || { cat "$tmp/out"; fail "resume at 3 ranks of 4 shards: exit $rc"; }

# Without --shards (one micro-batch per rank): the same bits at a fixed N,
# and close to one process (only the order of the sums differs): the train
# loss of every epoch within 1e-4.
tgrun 2 --epochs 2 --save "$tmp/a.ckpt" >"$tmp/a.json" 2>&1 || fail "no --shards, 2 ranks"
tgrun 2 --epochs 2 --save "$tmp/b.ckpt" >/dev/null 2>&1 || fail "no --shards, 2 ranks again"
cmp -s "$tmp/a.ckpt" "$tmp/b.ckpt" || fail "no --shards: two runs at 2 ranks differ"
tgrun 0 --epochs 2 >"$tmp/one.json" 2>&1 || fail "no --shards, 1 process"
if paste -d' ' "$tmp/one.json" "$tmp/a.json" | awk '{
    split($1, a, /"train_loss":/); split($2, b, /"train_loss":/);
    d = a[2] + 0 - (b[2] + 0); if (d < 0) d = -d;
    if (d > 1e-4) bad = 1; n++ } END { exit bad || n != 2 }'; then
  echo "ok: no --shards: 2 ranks reproduce themselves, train loss within 1e-4 of 1 process"
else
  cat "$tmp/one.json" "$tmp/a.json"
  fail "no --shards: 2 ranks are not within 1e-4 of 1 process"
fi

# A save that fails on rank 0 (a full disk: a 64 KiB tmpfs, root only) stops
# every rank with exit 1 and the message, no hang, no MPI_Abort.
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=64k tmpfs "$tmp/full" 2>/dev/null; then
  tgrun 2 --epochs 3 --save "$tmp/full/x.ckpt" >"$tmp/out" 2>&1
  rc=$?
  umount "$tmp/full"
  if [ "$rc" -eq 1 ] && grep -q "No space left on device" "$tmp/out" &&
    ! grep -q "MPI_ABORT" "$tmp/out" && ! grep -q '"epoch":2' "$tmp/out"; then
    echo "ok: a failed save on rank 0 stops both ranks after epoch 1 (exit 1)"
  else
    cat "$tmp/out"
    fail "a failed save on rank 0: exit $rc"
  fi
else
  echo "SKIPPED (not passed): a failed save on rank 0 (cannot mount a small tmpfs)"
fi

# Rank 1 killed (SIGKILL) or stopped (SIGSTOP) mid-training: the job exits
# non-zero within the watchdog's timeout (plus a margin for mpirun to end
# it), and the last checkpoint loads and resumes. A stopped rank is caught
# by the other rank's watchdog alone: MPI sees nothing wrong with it.
victim=""
trap 'if [ -n "$victim" ] && tr "\0" "\n" 2>/dev/null <"/proc/$victim/cmdline" | grep -qF "$tmp"; then
  kill -CONT "$victim"; kill -KILL "$victim"; fi
  umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"' EXIT
rank1_dies() { # SIGNAL WATCHDOG_SECONDS
  sig=$1
  dog=$2
  ck="$tmp/$sig.ckpt"
  tgrun 2 --epochs 100000 --dist-timeout "$dog" --save "$ck" >"$tmp/out" 2>&1 &
  job=$!
  i=0
  while [ ! -f "$ck" ] && [ "$i" -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  victim=""
  for f in /proc/[0-9]*/environ; do # the job's rank 1, found by its environment
    p=${f#/proc/}
    p=${p%/environ}
    if tr '\0' '\n' 2>/dev/null <"$f" | grep -qx "$rank_var=1" &&
      tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -qF "$ck"; then
      victim=$p
    fi
  done
  start=$(date +%s)
  if [ -n "$victim" ] && kill -"$sig" "$victim"; then
    wait "$job"
    rc=$?
    took=$(($(date +%s) - start))
    sleep 1 # mpirun has ended its ranks; a stopped one must not linger
    if tr '\0' '\n' 2>/dev/null <"/proc/$victim/cmdline" | grep -qF "$ck"; then
      fail "tapegrad train, rank 1 got SIG$sig: it outlived the job ($(grep State "/proc/$victim/status"))"
      kill -CONT "$victim"
      kill -KILL "$victim"
    fi
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$took" -ge $((dog + 20)) ]; then
      cat "$tmp/out"
      fail "tapegrad train, rank 1 got SIG$sig: exit $rc after $took s (watchdog $dog s)"
    elif [ "$sig" = STOP ] && ! grep -q "no step completed in $dog s" "$tmp/out"; then
      cat "$tmp/out"
      fail "tapegrad train, rank 1 got SIG$sig: the job ended, but not by the watchdog"
    elif ! timeout 60 "$tg" eval --checkpoint "$ck" --data "$tmp/data" >/dev/null 2>&1 ||
      ! tgrun 0 --resume "$ck" --epochs 1 >/dev/null 2>&1; then
      fail "tapegrad train, rank 1 got SIG$sig: the last checkpoint does not load or resume"
    else
      echo "ok: tapegrad train, rank 1 got SIG$sig: exit $rc after $took s (watchdog $dog s)," \
        "the checkpoint resumes"
    fi
  else
    kill "$job" 2>/dev/null
    wait "$job"
    fail "tapegrad train, rank 1 got SIG$sig: no checkpoint or no rank 1"
  fi
  victim=""
}
rank1_dies KILL 10
rank1_dies STOP 5

# Ranks with different options: a named error on every rank, no hang.
run 1 "$tg" train --data "$tmp/data" --epochs 1 --quiet --seed 1 : \
  -np 1 "$tg" train --data "$tmp/data" --epochs 1 --quiet --seed 2 >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  fail "tapegrad train, mismatched seeds: exit $rc, expected a non-zero exit without a hang"
elif ! grep -q 'tapegrad train: dist: the ranks.* differ in "seed"' "$tmp/out" ||
  ! grep -q '^\[rank 1\] tapegrad train' "$tmp/out"; then
  cat "$tmp/out"
  fail "tapegrad train, mismatched seeds: no message naming the field from each rank"
else
  echo "ok: tapegrad train, mismatched seeds end the job (exit $rc): $(grep -m1 'differ in' "$tmp/out")"
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
