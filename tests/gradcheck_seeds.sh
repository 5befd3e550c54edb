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
# (against 4096), at batch 1. At 227x227 one check took over 8 minutes of
# CPU; at 67x67 with 4096-wide affines 86 s; at 67x67 and 64 wide 30-35 s
# (~1,700 forward passes: the biases of 96 and 256 are checked element by
# element, and with batch 1 the Winograd filter transform of the 384x384
# 3x3 convolutions costs more than the convolutions themselves). 20
# seeds would take over 10 minutes of CPU, past this test's budget of a
# few minutes on a 2-core machine: so seeds 1-3. The whole script: 103
# checks, 127 s of CPU (441 s of wall time on a machine busy with other
# builds).
run "1 2 3" --model alexnet --input-size 67 --hidden 64,64 --batch-size 1 --tolerance 1e-5

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
