/* movement.c — placeholder: replaced by the real kernels. */
#include "op.h"
#include "ops.h"

static const tg_op op_stub = {"movement (not implemented yet)", 0, 0, NULL};

tg_tensor *tg_reshape(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim) {
  (void)x;
  (void)shape;
  (void)ndim;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "reshape");
}

tg_tensor *tg_permute(tg_tape *tape, tg_tensor *x, const int *perm) {
  (void)x;
  (void)perm;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "permute");
}

tg_tensor *tg_transpose(tg_tape *tape, tg_tensor *x) {
  (void)x;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "transpose");
}

tg_tensor *tg_broadcast_to(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim) {
  (void)x;
  (void)shape;
  (void)ndim;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "broadcast_to");
}

tg_tensor *tg_slice(tg_tape *tape, tg_tensor *x, const int64_t *start, const int64_t *stop) {
  (void)x;
  (void)start;
  (void)stop;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "slice");
}

tg_tensor *tg_pad(tg_tape *tape, tg_tensor *x, const int64_t *before, const int64_t *after) {
  (void)x;
  (void)before;
  (void)after;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "pad");
}

tg_tensor *tg_detach(tg_tape *tape, tg_tensor *x) {
  (void)x;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "detach");
}
