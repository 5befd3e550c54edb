#!/bin/sh
# check_op_catalogues.sh — every public op is in the hostile catalogue and
# in a benchmark, so adding an op is checked, not remembered.
#
# usage: check_op_catalogues.sh OPS_H HOSTILE_C BENCH_C...
# The ops are the functions `[TG_API] tg_tensor *tg_NAME(` declared in OPS_H. An op
# is in the hostile catalogue when HOSTILE_C calls tg_NAME(, and in a
# benchmark when one of the BENCH_C files does. The exemptions below name
# the ops that cannot be, each with its reason. Fails naming every op that
# is missing.
set -eu

ops_h=$1
hostile=$2
shift 2

# op: why the hostile catalogue does not call it
hostile_exempt='
'
# op: why no benchmark calls it
bench_exempt='
conv_relu: conv (benchmarked) plus ReLU on each image in cache; bench_train times it in the convnets
conv_max_pool: conv (benchmarked) plus a 2x2 pooling on each image in cache; bench_train times it in simple-convnet
bmm: one matmul_t (benchmarked) per batch element
bmm_t: one matmul_t (benchmarked) per batch element
var: a composition of mean, sub, mul and sum, each benchmarked
ones: a constructor: a fill, no kernel of its own
arange: a constructor: a fill, no kernel of its own
rand: a constructor: the generator (init, dropout) fills it
randn: a constructor: the generator (init, dropout) fills it
ge: the row kernel of gt (benchmarked) with another comparison
lt: the row kernel of gt (benchmarked) with another comparison
le: the row kernel of gt (benchmarked) with another comparison
eq: the row kernel of gt (benchmarked) with another comparison
add_scalar: add with a broadcast scalar operand
mul_scalar: mul with a broadcast scalar operand
pow_scalar: pow with a broadcast scalar operand
mean: sum (benchmarked) and one division per output
max_mask: max'"'"'s kernel (benchmarked) with a mask output
max_scatter: timed as the backward of the max rows in bench_layers
argmax: max'"'"'s kernel (benchmarked) with an index output
sum_to: timed as the backward of broadcast_to and add_bias in bench_layers
reshape: a view: no kernel to time
detach: a view: no kernel to time
matmul: matmul_t (benchmarked) without transposes
conv: timed through tg_conv2d (nn) in bench_layers
conv_grad_x: timed as conv'"'"'s backward in bench_layers
conv_grad_w: timed as conv'"'"'s backward in bench_layers
'

ops=$(sed -n 's/^\(TG_API \)\{0,1\}tg_tensor \*tg_\([a-z0-9_]*\)(.*/\2/p' "$ops_h")
if [ -z "$ops" ]; then
  echo "FAIL: no op declared in $ops_h" >&2
  exit 1
fi

exempt() { printf '%s\n' "$2" | grep -q "^$1: "; }

missing=0
n=0
for op in $ops; do
  n=$((n + 1))
  if ! grep -q "tg_$op(" "$hostile" && ! exempt "$op" "$hostile_exempt"; then
    echo "FAIL: op $op is not in the hostile catalogue ($hostile)" >&2
    missing=$((missing + 1))
  fi
  if ! cat "$@" | grep -q "tg_$op(" && ! exempt "$op" "$bench_exempt"; then
    echo "FAIL: op $op is in no benchmark ($*)" >&2
    missing=$((missing + 1))
  fi
done
for list in "$hostile_exempt" "$bench_exempt"; do
  for op in $(printf '%s\n' "$list" | sed -n 's/^\([a-z0-9_]*\): .*/\1/p'); do
    if ! printf '%s\n' "$ops" | grep -qx "$op"; then
      echo "FAIL: exempted op $op is not declared in $ops_h" >&2
      missing=$((missing + 1))
    fi
  done
done
[ "$missing" -eq 0 ] || exit 1
echo "ok: $n ops, each in the hostile catalogue and a benchmark (or exempted with a reason)"
