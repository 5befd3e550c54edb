/* matmul.c — placeholder: replaced by the real kernels. */
#include "op.h"
#include "ops.h"

static const tg_op op_stub = {"matmul (not implemented yet)", 0, 0, NULL};

tg_tensor *tg_matmul(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  (void)a;
  (void)b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "matmul");
}

tg_tensor *tg_matmul_t(tg_tape *tape, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b) {
  (void)a;
  (void)b;
  (void)trans_a;
  (void)trans_b;
  return tg_op_fail(tape, &op_stub, TG_ERR_ARG, "matmul_t");
}
