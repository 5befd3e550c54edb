/* binary.c — placeholder: replaced by the real kernels. */
#include "op.h"
#include "ops.h"

static const tg_op op_stub = {"binary (not implemented yet)", 0, 0, NULL};

tg_tensor *tg_add(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "add");
}

tg_tensor *tg_sub(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "sub");
}

tg_tensor *tg_mul(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "mul");
}

tg_tensor *tg_div(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "div");
}

tg_tensor *tg_pow(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "pow");
}

tg_tensor *tg_maximum(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "maximum");
}

tg_tensor *tg_where(tg_tape *tape, tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
  (void)cond;
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "where");
}

tg_tensor *tg_gt(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "gt");
}

tg_tensor *tg_ge(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "ge");
}

tg_tensor *tg_lt(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "lt");
}

tg_tensor *tg_le(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "le");
}

tg_tensor *tg_eq(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "eq");
}

tg_tensor *tg_add_scalar(tg_tape *tape, tg_tensor *x, tg_real s) {
  (void)x;
  (void)s;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "add_scalar");
}

tg_tensor *tg_mul_scalar(tg_tape *tape, tg_tensor *x, tg_real s) {
  (void)x;
  (void)s;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "mul_scalar");
}

tg_tensor *tg_pow_scalar(tg_tape *tape, tg_tensor *x, tg_real p) {
  (void)x;
  (void)p;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "pow_scalar");
}

int tg_broadcast_shape(tg_tape *tape, const char *what, const tg_tensor *a, const tg_tensor *b, int64_t *shape, int *ndim) {
  (void)tape;
  (void)what;
  (void)a;
  (void)b;
  (void)shape;
  (void)ndim;
  return TG_ERR_ARG;
}
