#!/usr/bin/env bash
# gradcheck_seeds.sh — `tapegrad gradcheck` passes on every model kind, at
# many seeds, in the double build: a correct network must never be
# reported FAILED because a central difference crossed a ReLU or max-pool
# kink (gradcheck.h). The float build cannot be strict, so there this
# test is skipped (exit 77), never passed.
# usage: gradcheck_seeds.sh TAPEGRAD
set -u
tg=$1
pass=0
fail=0

if ! "$tg" gradcheck --model two-layer-net --seed 1 | head -1 | grep -q ", double build,"; then
  echo "SKIP: the strict gradient check needs the double build (-Dreal=double)"
  exit 77
fi

# run SEEDS MODEL [OPTIONS...]: every seed must pass.
run() {
  local seeds=$1
  shift
  for seed in $seeds; do
    out=$("$tg" gradcheck --seed "$seed" "$@" 2>&1)
    rc=$?
    if [ $rc = 0 ]; then pass=$((pass + 1)); else
      fail=$((fail + 1))
      echo "FAIL: tapegrad gradcheck --seed $seed $* exited $rc:"
      echo "$out"
    fi
  done
}

all=$(seq 1 20)
run "$all" --model two-layer-net
run "$all" --model multi-layer-net
run "$all" --model simple-convnet
run "$all" --model lenet
# deep-convnet at batch 1: ~1,400 forward passes a check, measured at
# 0.8 s of CPU a check, so all 20 seeds.
# Sixteen layers deep at batch 1, the loss's rounding over the step 1e-6
# puts ~3e-6 of noise on the smallest gradients (with no kink crossed), as
# six layers do for multi-layer-net in cli_test.sh: tolerance 1e-5; a
# wrong rule or a crossed kink errs by 1e-3 to 1.
run "$all" --model deep-convnet --batch-size 1 --tolerance 1e-5
# alexnet: every layer kind of the model (11x11/4 conv, LRN, 3x3/2
# max-pool, 5x5 and 3x3 convs, Dropout, three affines), on the smallest
# image its layers fit (67x67, against 227x227) and hidden affines of 64
# (against 4096), at batch 1: ~1,700 forward passes a check (the biases of
# 96 and 256 are checked element by element), 8 s of CPU each since the
# 3x3 convolutions on its 3x3 maps take the direct product (ops.h,
# TG_WINOGRAD_MIN_OUTPUTS; 32 s while they took Winograd's). At 227x227
# one check took over 8 minutes of CPU.
run "$all" --model alexnet --input-size 67 --hidden 64,64 --batch-size 1 --tolerance 1e-5

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
