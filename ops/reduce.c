/* reduce.c — placeholder: replaced by the real kernels. */
#include "op.h"
#include "ops.h"

static const tg_op op_stub = {"reduce (not implemented yet)", 0, 0, NULL};

tg_tensor *tg_sum(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  (void)x;
  (void)axes;
  (void)naxes;
  (void)keepdims;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "sum");
}

tg_tensor *tg_mean(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  (void)x;
  (void)axes;
  (void)naxes;
  (void)keepdims;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "mean");
}

tg_tensor *tg_max(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  (void)x;
  (void)axes;
  (void)naxes;
  (void)keepdims;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "max");
}

tg_tensor *tg_max_mask(tg_tape *tape, tg_tensor *x, const int *axes, int naxes) {
  (void)x;
  (void)axes;
  (void)naxes;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "max_mask");
}

tg_tensor *tg_argmax(tg_tape *tape, tg_tensor *x, int axis) {
  (void)x;
  (void)axis;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "argmax");
}

tg_tensor *tg_sum_to(tg_tape *tape, tg_tensor *g, const int64_t *shape, int ndim) {
  (void)g;
  (void)shape;
  (void)ndim;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "sum_to");
}
