#!/usr/bin/env bash
# cli_test.sh — the tapegrad program end to end: exit codes and messages
# for bad usage, training on a small synthetic data set, checkpoints that
# resume to the same bits, eval, gradcheck, and refused bad checkpoints.
# usage: cli_test.sh TAPEGRAD MKDATA MKPNG
set -u
tg=$1
mkdata=$2
mkpng=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect CODE PATTERN -- command...: exit status and a stderr fragment.
expect() {
  local code=$1 pattern=$2
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" != "$code" ]; then
    bad "$* exited $got, want $code; stderr: $(head -c 300 "$work/err")"
  elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$work/err"; then
    bad "$*: stderr does not mention '$pattern': $(head -c 300 "$work/err")"
  else
    ok
  fi
}

mkdir -p "$work/data"
"$mkdata" "$work/data" 600 200 5 || { echo "FAIL: mkdata"; exit 1; }
d=$work/data
common=(--data "$d" --batch-size 50 --quiet)

# --- usage errors: exit 2 with a message naming the problem ------------
expect 2 "unknown command" -- "$tg" frobnicate
expect 2 "" -- "$tg"
expect 2 "unknown option" -- "$tg" train --frobnicate
expect 2 "epochs" -- "$tg" train --epochs -1
expect 2 "epochs" -- "$tg" train --epochs 0
expect 2 "lr" -- "$tg" train --lr nan
expect 2 "lr" -- "$tg" train --lr -0.1
expect 2 "batch-size" -- "$tg" train --batch-size 0
expect 2 "batch-size" -- "$tg" train --batch-size 12x
expect 2 "optimizer" -- "$tg" train --optimizer adamw
expect 2 "model" -- "$tg" train --model resnet
expect 2 "dropout" -- "$tg" train --dropout 1
expect 2 "hidden" -- "$tg" train --hidden 10,,10
expect 2 "needs a value" -- "$tg" train --epochs
expect 2 "unexpected argument" -- "$tg" train extra
expect 2 "checkpoint" -- "$tg" eval
expect 2 "unknown option" -- "$tg" eval --checkpoint x --frob
expect 2 "--tta: unknown value 'mirror' (flip, none)" -- "$tg" train --tta mirror
expect 2 "--tta: unknown value 'mirror' (flip, none)" -- "$tg" eval --checkpoint x --tta mirror
expect 2 "--tta: unknown value 'mirror' (flip, none)" -- "$tg" predict --checkpoint x --tta mirror x.png
expect 2 "model" -- "$tg" gradcheck --model nope
expect 0 "" -- "$tg" train --help
expect 0 "" -- "$tg" eval --help
expect 0 "" -- "$tg" gradcheck --help

# --- other failures: exit 1 ----------------------------------------------
expect 1 "no-such-dir" -- "$tg" train --data "$work/no-such-dir" --epochs 1
expect 1 "" -- "$tg" eval --checkpoint "$work/missing.ckpt" --data "$d"
expect 1 "" -- "$tg" train "${common[@]}" --epochs 1 --save "$work/no/such/dir/x.ckpt"
# Images of another size than the model's input: refused by name before
# the first step (no header, no "epoch 1 step 0"), not resized behind the
# user's back.
mkdir -p "$work/data14"
"$mkdata" "$work/data14" 100 50 5 14 || bad "mkdata 14x14"
# no_step: the last command stopped before training (nothing on stdout).
no_step() {
  if [ -s "$work/out" ] || grep -q "step" "$work/err"; then
    bad "$1: refused only after training began: $(cat "$work/out" "$work/err")"
  else ok; fi
}
expect 1 "tapegrad train: $work/data14, training set: samples (1, 14, 14) do not fit \
simple-convnet, which takes (1, 28, 28) or 784 values flat" -- "$tg" train --data "$work/data14" \
  --model simple-convnet --batch-size 50 --epochs 1
no_step "simple-convnet on 14x14"
expect 1 "samples (1, 14, 14) do not fit two-layer-net, which takes (1, 28, 28) or 784 values" \
  -- "$tg" train --data "$work/data14" --batch-size 50 --epochs 1
no_step "two-layer-net on 14x14"

# --- training, JSON, metrics ----------------------------------------------
if "$tg" train "${common[@]}" --epochs 2 --seed 3 --json --metrics "$work/m.csv" \
  >"$work/json" 2>"$work/err"; then
  # 600 samples in batches of 50: 12 steps an epoch
  if [ "$(wc -l <"$work/json")" = 2 ] && grep -q '"epoch":2,"train_loss":' "$work/json" &&
    [ "$(grep -c '"steps":12,' "$work/json")" = 2 ] && ! grep -qv '^{' "$work/json"; then
    ok
  else bad "--json output: $(cat "$work/json")"; fi
  if [ "$(wc -l <"$work/m.csv")" = 3 ] && head -1 "$work/m.csv" | grep -q '^epoch,train_loss'; then
    ok
  else bad "metrics: $(cat "$work/m.csv")"; fi
  acc=$(sed -n 's/.*"test_acc":\([0-9.]*\).*/\1/p' "$work/json" | tail -1)
  if awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }'; then ok; else bad "test accuracy $acc <= 0.8"; fi
else
  bad "train --json: $(cat "$work/err")"
fi

# --- --profile: the op table of the training steps ------------------------
# 600 samples in batches of 50 are 12 steps; two-layer-net's two Affine
# layers make 2 matmuls a step and run 2 matmul backward rules: 24 each.
# Evaluation (train and test accuracy) would add more: it is left out.
if "$tg" train "${common[@]}" --epochs 1 --profile >"$work/out" 2>"$work/err"; then
  if grep -q '^op  *calls  *fwd ms  *bw calls  *bw ms  *total ms' "$work/out" &&
    grep -q '^matmul  *24  *[0-9.]*  *24 ' "$work/out" && grep -q '^total ' "$work/out"; then
    ok
  else bad "--profile table: $(cat "$work/out")"; fi
else bad "train --profile: $(cat "$work/err")"; fi
if "$tg" train "${common[@]}" --epochs 1 --profile --json >"$work/json" 2>"$work/err"; then
  if python3 - "$work/json" <<'PY'; then ok; else bad "--profile --json: $(cat "$work/json")"; fi
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and rows[0]["epoch"] == 1, rows
prof = {r["op"]: r for r in rows[1]["profile"]}
assert prof["matmul"]["calls"] == 24 and prof["matmul"]["bw_calls"] == 24, prof["matmul"]
# x (50, 784)·W1 (784, 50) -> (50, 50), then (50, 50)·W2 (50, 10) -> (50, 10)
per_step = (50 * 784 + 784 * 50 + 50 * 50) + (50 * 50 + 50 * 10 + 50 * 10)
assert prof["matmul"]["fwd_bytes"] in (12 * per_step * 4, 12 * per_step * 8), prof["matmul"]
assert all(r["fwd_s"] >= 0 and r["bw_s"] >= 0 for r in prof.values())
# Sorted by total time; the JSON rounds each time to 1e-6 s.
totals = [r["fwd_s"] + r["bw_s"] for r in rows[1]["profile"]]
assert all(a >= b - 2e-6 for a, b in zip(totals, totals[1:])), totals
PY
else bad "train --profile --json: $(cat "$work/err")"; fi

# --- resume: 2 epochs + 1 more == 3 epochs, to the bit ---------------------
for opt in sgd adam; do
  "$tg" train "${common[@]}" --optimizer $opt --epochs 3 --seed 7 --dropout 0.2 --batchnorm \
    --save "$work/full.ckpt" >/dev/null 2>&1 &&
    "$tg" train "${common[@]}" --optimizer $opt --epochs 2 --seed 7 --dropout 0.2 --batchnorm \
      --save "$work/part.ckpt" >/dev/null 2>&1 &&
    "$tg" train --data "$d" --quiet --resume "$work/part.ckpt" --epochs 1 \
      --save "$work/resumed.ckpt" >/dev/null 2>"$work/err"
  if cmp -s "$work/full.ckpt" "$work/resumed.ckpt"; then ok; else
    bad "$opt: 2 epochs + resume 1 differs from 3 epochs: $(cat "$work/err")"
  fi
done
expect 2 "cannot be combined with --resume" -- \
  "$tg" train --data "$d" --resume "$work/part.ckpt" --lr 0.5
expect 2 "--shards cannot be combined with --resume" -- \
  "$tg" train --data "$d" --resume "$work/part.ckpt" --shards 2

# --- micro-batches in one process (--shards; under mpirun: dist_test.sh) ----
expect 2 "shards" -- "$tg" train --shards 0
expect 2 "do not fit a batch" -- "$tg" train --shards 101 --batch-size 100
expect 2 "distributed" -- "$tg" train --distributed maybe
expect 2 "dist-timeout" -- "$tg" train --dist-timeout 0
# 4 micro-batches with Batch Norm (statistics per micro-batch) are another
# computation than 1, and reproducible.
for run in 1 4 4b; do
  "$tg" train "${common[@]}" --model multi-layer-net --hidden 30,30 --batchnorm --dropout 0.2 \
    --epochs 1 --shards "${run%b}" --save "$work/shards$run.ckpt" >/dev/null 2>"$work/err" ||
    bad "--shards $run: $(cat "$work/err")"
done
if cmp -s "$work/shards4.ckpt" "$work/shards4b.ckpt" &&
  ! cmp -s "$work/shards1.ckpt" "$work/shards4.ckpt"; then ok; else
  bad "--shards 4: not reproducible, or the same bytes as --shards 1"
fi

# --- learning-rate schedules -----------------------------------------------
expect 2 "--schedule: unknown schedule 'linear'" -- "$tg" train --schedule linear
expect 2 "--warmup: " -- "$tg" train --warmup -1
expect 2 "--gamma: " -- "$tg" train --schedule step --gamma 0
expect 2 "--gamma: " -- "$tg" train --schedule step --gamma -0.5
expect 2 "--step-size: " -- "$tg" train --schedule step --step-size 0
expect 2 "--gamma: only with --schedule step" -- "$tg" train --gamma 0.5
expect 2 "--schedule-epochs: only with --schedule cosine" -- "$tg" train --schedule-epochs 3
expect 2 "--warmup: 3 epochs is not shorter" -- "$tg" train --schedule cosine --epochs 3 \
  --warmup 3
expect 2 "--schedule cannot be combined with --resume" -- \
  "$tg" train --data "$d" --resume "$work/part.ckpt" --schedule cosine
# The rate of each epoch's last update (600 samples in batches of 50: 12
# updates an epoch, update k at t = k/12), worked out by hand:
#   step 1 epoch, gamma 0.5: update 12E-1 is at t < E, so 0.1·0.5^(E-1);
#   cosine over 3 epochs: update 35 at t = 35/12, 0.05·(1 + cos(35π/36))
#     = 0.05·(1 − cos(π/36)) = 0.05·(1 − 0.9961947) = 0.000190265.
# lr_is FILE EPOCH WANT: the JSON line of EPOCH has lr within 1e-4 relative.
lr_is() {
  local got
  got=$(sed -n "s/.*\"epoch\":$2,.*\"lr\":\([0-9.e+-]*\).*/\1/p" "$1")
  if awk -v g="$got" -v w="$3" 'BEGIN { d = g - w; exit !(g != "" && d * d <= 1e-8 * w * w) }'
  then ok; else bad "epoch $2: lr '$got', want $3"; fi
}
"$tg" train "${common[@]}" --epochs 3 --lr 0.1 --schedule step --json >"$work/json" 2>&1 ||
  bad "train --schedule step: $(cat "$work/json")"
lr_is "$work/json" 1 0.1
lr_is "$work/json" 2 0.05
lr_is "$work/json" 3 0.025
"$tg" train "${common[@]}" --epochs 3 --lr 0.1 --schedule cosine --json >"$work/json" 2>&1 ||
  bad "train --schedule cosine: $(cat "$work/json")"
lr_is "$work/json" 3 0.000190265
# Resuming a scheduled run (with warm-up, and a validation set whose best
# epoch is counted on) is the unbroken run, to the bit.
for sched in "--schedule cosine --schedule-epochs 3 --warmup 0.5" \
  "--schedule step --step-size 0.5 --gamma 0.7 --warmup 1 --val 100"; do
  # shellcheck disable=SC2086
  "$tg" train "${common[@]}" --optimizer momentum --epochs 3 $sched --save "$work/full.ckpt" \
    >/dev/null 2>&1 &&
    "$tg" train "${common[@]}" --optimizer momentum --epochs 2 $sched --save "$work/part.ckpt" \
      >/dev/null 2>&1 &&
    "$tg" train --data "$d" --quiet --resume "$work/part.ckpt" --epochs 1 \
      --save "$work/resumed.ckpt" >/dev/null 2>"$work/err"
  if cmp -s "$work/full.ckpt" "$work/resumed.ckpt"; then ok; else
    bad "$sched: 2 epochs + resume 1 differs from 3 epochs: $(cat "$work/err")"
  fi
done

# --- validation, the best model, early stopping ------------------------------
expect 2 "--val: 600 is not less than the 600 training samples" -- \
  "$tg" train "${common[@]}" --epochs 1 --val 600
expect 2 "--patience: only with --val" -- "$tg" train --patience 2
expect 2 "--save-best: only with --val" -- "$tg" train --save-best "$work/b.ckpt"
"$tg" train "${common[@]}" --epochs 1 --save "$work/noval.ckpt" >/dev/null 2>&1 || bad "noval"
expect 2 "--patience: the checkpoint holds out no validation set" -- \
  "$tg" train --data "$d" --quiet --resume "$work/noval.ckpt" --epochs 1 --patience 1
if "$tg" train "${common[@]}" --epochs 4 --seed 3 --val 100 --json --metrics "$work/v.csv" \
  --save-best "$work/best.ckpt" >"$work/json" 2>"$work/err"; then
  if grep -q '"val_loss":[0-9.]*,"val_acc":[0-9.]*}$' "$work/json" &&
    head -1 "$work/v.csv" | grep -q ',val_loss,val_acc$' &&
    [ "$(awk -F, 'NR == 2 { print NF }' "$work/v.csv")" = 8 ]; then ok; else
    bad "--val output: $(cat "$work/json" "$work/v.csv")"
  fi
  # The best epoch by hand: the first of the highest val_acc; the saved
  # model must be that epoch's (its test accuracy, its epoch count).
  read -r best_epoch best_test < <(python3 - "$work/json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = max(rows, key=lambda r: (r["val_acc"], -r["epoch"]))
print(b["epoch"], "%.4f" % b["test_acc"])
PY
  )
  expect 0 "" -- "$tg" eval --checkpoint "$work/best.ckpt" --data "$d" --json
  if grep -q "\"test_acc\":$best_test," "$work/out"; then ok; else
    bad "save-best: $(cat "$work/out"), want test_acc $best_test (epoch $best_epoch)"
  fi
  expect 0 "" -- "$tg" eval --checkpoint "$work/best.ckpt" --data "$d"
  if grep -q "after $best_epoch epochs" "$work/out"; then ok; else
    bad "save-best holds $(cat "$work/out"), want epoch $best_epoch"
  fi
else
  bad "train --val: $(cat "$work/err")"
fi
# A rate too small to change a prediction: the validation accuracy never
# improves on epoch 1's, so --patience 2 stops after epoch 3 and says so.
"$tg" train "${common[@]}" --epochs 10 --val 100 --lr 1e-12 --patience 2 >"$work/out" 2>&1
if [ "$(grep -c '^epoch' "$work/out")" = 3 ] &&
  grep -q "stopped after epoch 3: validation accuracy has not improved for 2 epochs" \
    "$work/out"; then ok; else bad "--patience 2: $(cat "$work/out")"; fi

# --tta flip: train's test evaluation and eval's agree on the saved model,
# and eval says it used the mirror images.
"$tg" train "${common[@]}" --epochs 1 --tta flip --save "$work/tta.ckpt" --json >"$work/json" 2>"$work/err"
tta_test=$(python3 -c 'import json,sys; print("%.4f" % json.loads(open(sys.argv[1]).readline())["test_acc"])' "$work/json" 2>/dev/null)
expect 0 "" -- "$tg" eval --checkpoint "$work/tta.ckpt" --data "$d" --tta flip --json
if [ -n "$tta_test" ] && grep -q "\"test_acc\":$tta_test,.*\"tta\":\"flip\"" "$work/out"; then ok; else
  bad "--tta flip: train's test_acc '$tta_test', eval: $(cat "$work/out" "$work/err")"
fi

# --- predict -----------------------------------------------------------------
expect 0 "" -- "$tg" predict --help
expect 2 "--checkpoint FILE is required" -- "$tg" predict x.png
expect 2 "no IMAGE" -- "$tg" predict --checkpoint "$work/x.ckpt"
expect 2 "--top: " -- "$tg" predict --checkpoint "$work/x.ckpt" --top 0 x.png
expect 2 "--names: unknown value 'klingon'" -- "$tg" predict --checkpoint x --names klingon x.png
expect 1 "missing.ckpt" -- "$tg" predict --checkpoint "$work/missing.ckpt" x.png
"$tg" train "${common[@]}" --epochs 2 --lr 0.5 --save "$work/pred.ckpt" >/dev/null 2>&1 ||
  bad "train pred.ckpt"
# Drawings of each class of the synthetic set (a bar, mkdata.c), dark ink
# on light paper at 140x140 and 57x57, with a corrupt PNG and a missing
# file among them: each drawing is read as its class, the bad ones are
# named on stderr and answered in place, and the exit status is 1.
pngs=()
for c in 0 1 2 3 4 5 6 7 8 9; do
  "$mkpng" "$work/bar$c.png" bar 140 "$c" || bad "mkpng bar $c"
  pngs+=("$work/bar$c.png")
done
"$mkpng" "$work/odd7.png" bar 57 7 || bad "mkpng odd7"
"$mkpng" "$work/corrupt.png" corrupt || bad "mkpng corrupt"
expect 1 "corrupt.png: not a readable PNG" -- "$tg" predict --checkpoint "$work/pred.ckpt" \
  --invert --json --names digits "${pngs[@]:0:5}" "$work/corrupt.png" "$work/nothere.png" \
  "${pngs[@]:5}" "$work/odd7.png"
grep -q "nothere.png: No such file" "$work/err" && ok || bad "predict: $(cat "$work/err")"
if python3 - "$work/out" <<'PY'; then ok; else bad "predict --json: $(cat "$work/out")"; fi
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = [0, 1, 2, 3, 4, "corrupt.png", "nothere.png", 5, 6, 7, 8, 9, 7]
assert len(rows) == len(want), len(rows)
for r, w in zip(rows, want):
    if isinstance(w, str):
        assert r["file"].endswith(w) and "error" in r, r
        continue
    assert r["class"] == w and r["name"] == str(w), r
    top = r["top"]
    assert len(top) == 3 and top[0]["class"] == w, top
    assert all(a["p"] >= b["p"] for a, b in zip(top, top[1:])), top
    assert 0 < sum(t["p"] for t in top) <= 1.000001 and top[0]["p"] > 0.5, top
PY
# Without --invert the drawings are light bars on dark: not read right.
expect 0 "" -- "$tg" predict --checkpoint "$work/pred.ckpt" --top 1 "${pngs[@]}"
if [ "$(grep -c . "$work/out")" = 10 ] && [ "$(awk '{ if ($2 == NR - 1) n++ } END { print n + 0 }' \
  "$work/out")" -lt 5 ]; then ok; else bad "predict without --invert: $(cat "$work/out")"; fi
# The test set's IDX file: 28x28 needs no resampling, so predict's top
# classes score what eval scores; with --tta flip on both as well.
for tta in none flip; do
  expect 0 "" -- "$tg" predict --checkpoint "$work/pred.ckpt" --top 1 --json --tta $tta \
    "$d/t10k-images-idx3-ubyte"
  pred_acc=$(python3 - "$work/out" "$d/t10k-labels-idx1-ubyte.gz" <<'PY'
import gzip, json, sys
labels = gzip.open(sys.argv[2]).read()[8:]
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["index"] for r in rows] == list(range(len(labels)))
print("%.4f" % (sum(r["class"] == labels[r["index"]] for r in rows) / len(labels)))
PY
  )
  expect 0 "" -- "$tg" eval --checkpoint "$work/pred.ckpt" --data "$d" --json --tta $tta
  if grep -q "\"test_acc\":$pred_acc[,}]" "$work/out"; then ok; else
    bad "predict --tta $tta on the test IDX: accuracy $pred_acc, eval: $(cat "$work/out")"
  fi
done
# Names come from the checkpoint's data set unless --names says.
expect 0 "" -- "$tg" predict --checkpoint "$work/pred.ckpt" --names fashion --invert --top 1 \
  "$work/bar7.png"
grep -q "bar7.png:  Sneaker" "$work/out" && ok || bad "predict --names fashion: $(cat "$work/out")"

# Digits drawn as a person would (mkpng digit: pen strokes, dark on light,
# 200x200) read right by a model trained on the real digits, when the
# mnist-digits set is there (setup.sh makes it; otherwise this part says it
# was skipped and counts nothing).
if "$tg" train --model two-layer-net --data mnist-digits --epochs 5 --seed 1 \
  --save "$work/digits.ckpt" --quiet >"$work/out" 2>"$work/err"; then
  for g in 0 1 4; do
    "$mkpng" "$work/digit$g.png" digit 200 "$g" || bad "mkpng digit $g"
    expect 0 "" -- "$tg" predict --checkpoint "$work/digits.ckpt" --invert --top 1 --json \
      "$work/digit$g.png"
    if python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
assert r["class"] == int(sys.argv[2]) and r["top"][0]["p"] > 0.5, r' "$work/out" "$g"; then
      ok
    else bad "the drawn $g: $(cat "$work/out")"; fi
  done
elif grep -q "no folder mnist-digits/" "$work/err"; then
  echo "SKIPPED: drawn digits: no mnist-digits data ($(head -c 200 "$work/err"))"
else
  bad "train on mnist-digits: $(cat "$work/err")"
fi

# --- pictures ------------------------------------------------------------------
# png_is FILE W H: a PNG signature and an IHDR of W x H pixels.
png_is() {
  if python3 - "$@" <<'PY'; then ok; else bad "$1 is not a $2x$3 PNG"; fi
import struct, sys
b = open(sys.argv[1], "rb").read(32)
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", b[:16]
assert struct.unpack(">II", b[16:24]) == (int(sys.argv[2]), int(sys.argv[3])), b[16:24]
PY
}
svg_is() { if head -c 400 "$1" | grep -q "<svg"; then ok; else bad "$1 is not an SVG"; fi; }
expect 2 "--plot: 'c.txt' does not end in .png or .svg" -- "$tg" train --plot c.txt
expect 2 "--confusion: 'cm.jpg'" -- "$tg" eval --checkpoint x --confusion cm.jpg
"$tg" train "${common[@]}" --epochs 2 --val 100 --plot "$work/curves.png" >/dev/null 2>&1 ||
  bad "train --plot png"
png_is "$work/curves.png" 1100 420
"$tg" train "${common[@]}" --epochs 1 --plot "$work/curves.svg" >/dev/null 2>&1 ||
  bad "train --plot svg"
svg_is "$work/curves.svg"
expect 1 "no-dir/c.png" -- "$tg" train "${common[@]}" --epochs 1 --plot "$work/no-dir/c.png"
# A model one epoch in, which still confuses classes.
"$tg" train "${common[@]}" --epochs 1 --save "$work/weak.ckpt" >/dev/null 2>&1 || bad "weak.ckpt"
expect 0 "" -- "$tg" eval --checkpoint "$work/weak.ckpt" --data "$d" \
  --confusion "$work/cm.png" --misclassified "$work/worst.png"
png_is "$work/cm.png" 580 630
if python3 - "$work/worst.png" <<'PY'; then ok; else bad "misclassified grid: no PNG"; fi
import sys
assert open(sys.argv[1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
PY
expect 0 "" -- "$tg" eval --checkpoint "$work/weak.ckpt" --data "$d" \
  --confusion "$work/cm.svg" --misclassified "$work/worst.svg"
svg_is "$work/cm.svg"
svg_is "$work/worst.svg"
# pred.ckpt classifies every test image right: nothing to draw, said so.
expect 1 "every test image is classified right" -- "$tg" eval --checkpoint "$work/pred.ckpt" \
  --data "$d" --misclassified "$work/none.png"

# --- convolutional networks ----------------------------------------------
# SimpleConvNet learns the synthetic bars in two epochs, draws its filters
# before and after, and resumes to the same bits as an unbroken run.
if "$tg" train "${common[@]}" --model simple-convnet --epochs 2 --json --filters "$work/f" \
  --save "$work/cnn.ckpt" >"$work/json" 2>"$work/err"; then
  acc=$(sed -n 's/.*"test_acc":\([0-9.]*\).*/\1/p' "$work/json" | tail -1)
  if awk -v a="$acc" 'BEGIN { exit !(a > 0.8) }'; then ok; else bad "simple-convnet accuracy $acc"; fi
  for w in before after; do
    if [ "$(head -c 4 "$work/f-$w.png" | od -An -tx1 | tr -d ' ')" = 89504e47 ]; then ok; else
      bad "filters $w: no PNG at $work/f-$w.png"
    fi
  done
  if cmp -s "$work/f-before.png" "$work/f-after.png"; then bad "filters did not change"; else ok; fi
else
  bad "train simple-convnet: $(cat "$work/err")"
fi
"$tg" train "${common[@]}" --model simple-convnet --epochs 1 --limit 200 --save "$work/c1.ckpt" \
  >/dev/null 2>&1 &&
  "$tg" train --data "$d" --quiet --limit 200 --resume "$work/c1.ckpt" --epochs 1 \
    --save "$work/c2.ckpt" >/dev/null 2>&1 &&
  "$tg" train "${common[@]}" --model simple-convnet --epochs 2 --limit 200 \
    --save "$work/c12.ckpt" >/dev/null 2>&1
if cmp -s "$work/c2.ckpt" "$work/c12.ckpt"; then ok; else bad "simple-convnet: resume differs"; fi
# --- augmentation ------------------------------------------------------------
expect 2 "--augment: 'rotate' is unknown" -- "$tg" train --augment rotate
expect 2 "--augment: 'crop:0'" -- "$tg" train --augment crop:0
expect 2 "--augment: 'erase:1.5': the probability" -- "$tg" train --augment crop:2,erase:1.5
expect 2 "--augment cannot be combined with --resume" -- \
  "$tg" train --data "$d" --resume "$work/noval.ckpt" --augment flip
# The same seed gives the same weights at 1 and 2 threads; augmenting
# changes them; resuming an augmented run is the unbroken run (the
# checkpoint carries the spec, erase's probability included).
aug=("${common[@]}" --model simple-convnet --limit 200 --augment crop:2,flip,erase:0.7)
for t in 1 2; do
  "$tg" train "${aug[@]}" --epochs 2 --threads $t --save "$work/aug$t.ckpt" >/dev/null 2>&1 ||
    bad "train --augment --threads $t"
done
if cmp -s "$work/aug1.ckpt" "$work/aug2.ckpt"; then ok; else bad "--augment: 1 and 2 threads differ"; fi
if cmp -s "$work/aug1.ckpt" "$work/c12.ckpt"; then bad "--augment changed nothing"; else ok; fi
"$tg" train "${aug[@]}" --epochs 1 --save "$work/aug-part.ckpt" >/dev/null 2>&1 &&
  "$tg" train --data "$d" --quiet --limit 200 --resume "$work/aug-part.ckpt" --epochs 1 \
    --save "$work/aug-resumed.ckpt" >/dev/null 2>"$work/err"
if cmp -s "$work/aug1.ckpt" "$work/aug-resumed.ckpt"; then ok; else
  bad "--augment: 1 epoch + resume 1 differs from 2 epochs: $(cat "$work/err")"
fi

expect 0 "" -- "$tg" eval --checkpoint "$work/cnn.ckpt" --data "$d"
grep -q "simple-convnet" "$work/out" && ok || bad "eval does not name the model: $(cat "$work/out")"
expect 2 "hidden" -- "$tg" train --model simple-convnet --hidden 100,100
expect 2 "Batch Norm" -- "$tg" train --model lenet --batchnorm
# The rest run one small epoch each: they build, train and evaluate.
for model in deep-convnet lenet; do
  expect 0 "" -- "$tg" train "${common[@]}" --model $model --epochs 1 --limit 100 --eval-train 100
done

# --- eval ----------------------------------------------------------------
if "$tg" eval --checkpoint "$work/full.ckpt" --data "$d" --json >"$work/out" 2>"$work/err" &&
  grep -q '^{"test_acc":[0-9.]*,"test_loss":[0-9.]*}$' "$work/out"; then ok; else
  bad "eval --json: $(cat "$work/out" "$work/err")"
fi

# A checkpoint of a 28×28 network evaluated on 14×14 images.
expect 1 "tapegrad eval: $work/data14, test set: samples (1, 14, 14) do not fit two-layer-net" \
  -- "$tg" eval --checkpoint "$work/full.ckpt" --data "$work/data14"
[ -s "$work/out" ] && bad "eval on 14x14 printed: $(cat "$work/out")" || ok

# --- bad checkpoints: exit 1, never a crash --------------------------------
head -c 100 "$work/full.ckpt" >"$work/trunc.ckpt"
expect 1 "" -- "$tg" eval --checkpoint "$work/trunc.ckpt" --data "$d"
cp "$work/full.ckpt" "$work/flip.ckpt"
size=$(stat -c %s "$work/flip.ckpt")
printf '\xff' | dd of="$work/flip.ckpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect 1 "CRC" -- "$tg" eval --checkpoint "$work/flip.ckpt" --data "$d"
echo "not a checkpoint" >"$work/junk.ckpt"
expect 1 "" -- "$tg" eval --checkpoint "$work/junk.ckpt" --data "$d"

# --- hostile command lines: exit 2, the message names the option ----------
# Every numeric option with values that are empty, not numbers, negative,
# beyond any range (or any double: 1e400), NaN and infinite.
bad_values=("" abc -5 1e400 99999999999999999999 nan inf)
for opt in epochs batch-size lr seed init-std weight-decay dropout limit eval-train threads hidden \
  warmup step-size gamma schedule-epochs val patience augment; do
  for v in "${bad_values[@]}"; do expect 2 "--$opt: " -- "$tg" train --$opt "$v"; done
done
for opt in batch-size seed tolerance dropout weight-decay; do
  for v in "${bad_values[@]}"; do expect 2 "--$opt: " -- "$tg" gradcheck --$opt "$v"; done
done
# Options given twice (which one would win is a guess), also abbreviated.
expect 2 "--epochs given twice" -- "$tg" train --epochs 1 --epochs 2
expect 2 "--epochs given twice" -- "$tg" train --epochs 1 --epo 2
expect 2 "--json given twice" -- "$tg" train --json --json
expect 2 "--data given twice" -- "$tg" train --data a --data b
expect 2 "--checkpoint given twice" -- "$tg" eval --checkpoint a --checkpoint b
expect 2 "--seed given twice" -- "$tg" gradcheck --seed 1 --seed 2
expect 2 "--json takes no value" -- "$tg" train --json=1
expect 2 "unknown option '-x'" -- "$tg" train -x
expect 2 "ambiguous" -- "$tg" train --e 1
expect 2 "hidden" -- "$tg" train --hidden 10,
expect 2 "needs a value" -- "$tg" eval --checkpoint
expect 2 "unknown option '-x'" -- "$tg" train -xy

# --- hostile files: exit 1, the message names the file, nothing clobbered ---
touch "$work/afile"
expect 1 "afile/x.ckpt" -- "$tg" train "${common[@]}" --epochs 1 --save "$work/afile/x.ckpt"
expect 1 "/proc/self/x.ckpt" -- "$tg" train "${common[@]}" --epochs 1 --save /proc/self/x.ckpt
expect 1 "is a directory" -- "$tg" train "${common[@]}" --epochs 1 --save "$work"
expect 1 "no-dir/m.csv" -- "$tg" train "${common[@]}" --epochs 1 --metrics "$work/no-dir/m.csv"
expect 1 "Is a directory" -- "$tg" train "${common[@]}" --epochs 1 --metrics "$work"
expect 1 "no-dir/f-before.png" -- "$tg" train "${common[@]}" --epochs 1 --filters "$work/no-dir/f"
expect 1 "afile" -- "$tg" train --data "$work/afile" --epochs 1 --quiet
mkdir -p "$work/empty" "$work/half" "$work/nolabels"
expect 1 "empty/train-images" -- "$tg" train --data "$work/empty" --epochs 1 --quiet
cp "$d"/train-* "$work/half/"
expect 1 "half/t10k-images" -- "$tg" train --data "$work/half" --epochs 1 --quiet
cp "$d"/*-images-* "$work/nolabels/"
expect 1 "nolabels/train-labels" -- "$tg" train --data "$work/nolabels" --epochs 1 --quiet

# respin SRC DST OLD NEW: SRC's meta text with OLD replaced by NEW, CRC
# recomputed: a well-formed checkpoint whose header names another model.
respin() {
  python3 - "$@" <<'EOF'
import struct, sys, zlib
src, dst, old, new = sys.argv[1:5]
b = open(src, "rb").read()
n = struct.unpack_from("<I", b, 16)[0]
meta = b[20:20 + n].decode()
assert old in meta, old
m = meta.replace(old, new).encode()
body = b[:16] + struct.pack("<I", len(m)) + m + b[20 + n:-4]
open(dst, "wb").write(body + struct.pack("<I", zlib.crc32(body)))
EOF
}
# unchanged FILE COPY WHAT: FILE is still byte for byte COPY.
unchanged() { if cmp -s "$1" "$2"; then ok; else bad "$3 changed $1"; fi; }
"$tg" train "${common[@]}" --epochs 1 --save "$work/h.ckpt" >/dev/null 2>&1 || bad "train h.ckpt"
cp "$work/h.ckpt" "$work/h.orig"
head -c 300 "$work/h.ckpt" >"$work/h-trunc.ckpt"
cp "$work/h-trunc.ckpt" "$work/h-trunc.orig"
respin "$work/h.ckpt" "$work/h-wide.ckpt" hidden=50 hidden=60
respin "$work/h.ckpt" "$work/h-lenet.ckpt" model=two-layer-net model=lenet
expect 1 "truncated" -- "$tg" train --data "$d" --quiet --resume "$work/h-trunc.ckpt" --epochs 1 \
  --save "$work/h.ckpt"
unchanged "$work/h.ckpt" "$work/h.orig" "resuming a truncated checkpoint"
expect 1 "truncated" -- "$tg" train --data "$d" --quiet --resume "$work/h-trunc.ckpt" --epochs 1 \
  --save "$work/h-trunc.ckpt"
unchanged "$work/h-trunc.ckpt" "$work/h-trunc.orig" "resuming a truncated checkpoint onto itself"
expect 1 "W1: shape (784, 50) in the file" -- "$tg" train --data "$d" --quiet \
  --resume "$work/h-wide.ckpt" --epochs 1 --save "$work/h.ckpt"
unchanged "$work/h.ckpt" "$work/h.orig" "resuming another model's checkpoint"
expect 1 "lenet" -- "$tg" train --data "$d" --quiet --resume "$work/h-lenet.ckpt" --epochs 1 \
  --save "$work/h.ckpt"
unchanged "$work/h.ckpt" "$work/h.orig" "resuming a checkpoint with another model's header"
expect 1 "W1" -- "$tg" eval --checkpoint "$work/h-wide.ckpt" --data "$d"
# eval on images the model cannot take: 32x32 is larger than its 28x28.
mkdir -p "$work/big"
python3 - "$work/big" <<'EOF'
import os, struct, sys
for split, n in (("train", 60), ("t10k", 20)):
    with open(os.path.join(sys.argv[1], split + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 32, 32) + bytes(i * 7 % 256 for i in range(n * 1024)))
    with open(os.path.join(sys.argv[1], split + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
EOF
expect 1 "samples (1, 32, 32) do not fit" -- "$tg" eval --checkpoint "$work/h.ckpt" \
  --data "$work/big"

# --- signals: SIGINT or SIGTERM after the first save leaves a loadable ---
# checkpoint. Job control (set -m) so that the background job keeps SIGINT.
for sig in INT TERM; do
  rm -f "$work/sig.ckpt"
  set -m
  "$tg" train "${common[@]}" --epochs 1000 --save "$work/sig.ckpt" >/dev/null 2>&1 &
  pid=$!
  set +m
  for _ in $(seq 300); do [ -s "$work/sig.ckpt" ] && break; sleep 0.1; done
  kill -s $sig $pid 2>/dev/null
  for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then
    kill -s KILL $pid
    bad "SIG$sig: still training 10 s after the signal"
  fi
  wait $pid
  rc=$?
  if [ -s "$work/sig.ckpt" ] && [ $rc -ge 128 ]; then ok; else
    bad "SIG$sig: exit status $rc, checkpoint $(ls -l "$work/sig.ckpt" 2>&1)"
  fi
  expect 0 "" -- "$tg" eval --checkpoint "$work/sig.ckpt" --data "$d"
done

# --- gradcheck -------------------------------------------------------------
# Strict in the double build. In the float build central differences
# cross ReLU kinks and drown in rounding, so only the report is checked.
"$tg" gradcheck --model two-layer-net >"$work/out" 2>"$work/err"
rc=$?
if grep -q "worst over all parameters" "$work/out"; then ok; else bad "gradcheck output"; fi
if head -1 "$work/out" | grep -q ", double build,"; then
  if [ $rc = 0 ]; then ok; else bad "gradcheck two-layer-net (double): $(cat "$work/out")"; fi
  # Six layers deep, the loss's rounding (~1e-14) over the step 1e-6 puts
  # ~1e-5 of noise on the smallest gradients; a wrong rule errs by O(1).
  expect 0 "" -- "$tg" gradcheck --model multi-layer-net --batchnorm --dropout 0.3 \
    --weight-decay 0.1 --tolerance 1e-4
elif [ $rc != 0 ] && [ $rc != 1 ]; then
  bad "gradcheck exited $rc"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
