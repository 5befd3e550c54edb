/* special.c — elementwise functions that cannot be composed from the
 * primitive ops as accurately: erf (for the exact GELU) and softplus
 * (numerically stable for every x, which log(1 + exp(x)) is not).
 *
 * Each op is one section: a plain loop the compiler vectorises (parallel
 * above TG_PAR_MIN), its descriptor and its backward rule written with
 * ops, so second derivatives work. Nothing here keeps state.
 */
#include <math.h>

#include "op.h"
#include "ops.h"

#ifdef TG_DOUBLE
#define F(name) name
#else
#define F(name) name##f
#endif

typedef struct special_ctx {
  const tg_real *x;
  tg_real *y;
} special_ctx;

/* y = f(x), x's shape, computed by chunk over [0, numel). */
static tg_tensor *special_apply(tg_tape *tape, const tg_op *op, tg_tensor *x,
                                void (*chunk)(void *, int64_t, int64_t)) {
  if (!tg_op_begin(tape, op, 1, &x))
    return NULL;
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim); /* y: x's shape */
  if (!y)
    return NULL;
  tg_parallel_for(x->numel, TG_GRAIN, x->numel * 20, chunk, &(special_ctx){x->data, y->data});
  return tg_op_record(tape, op, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * erf: dx = dy · (2/√π) e^(−x²) */
static void erf_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0];
  tg_tensor *e = tg_exp(tape, tg_mul_scalar(tape, tg_mul(tape, x, x), -1));
  gx[0] = tg_mul(tape, gy, tg_mul_scalar(tape, e, (tg_real)1.12837916709551257390));
}
static const tg_op op_erf = {"erf", 1, 0, erf_backward};

static void erf_chunk(void *arg, int64_t lo, int64_t hi) {
  const tg_real *restrict x = ((special_ctx *)arg)->x;
  tg_real *restrict y = ((special_ctx *)arg)->y;
  for (int64_t i = lo; i < hi; i++)
    y[i] = F(erf)(x[i]);
}

tg_tensor *tg_erf(tg_tape *tape, tg_tensor *x) {
  return special_apply(tape, &op_erf, x, erf_chunk);
}

/* ------------------------------------------------------------------------
 * softplus: y = max(x, 0) + log1p(e^(−|x|)), which neither overflows for
 * large x nor rounds to 0 for very negative x (log(1 + e^x) does both).
 * dx = dy · sigmoid(x), with sigmoid(x) = e^(x − y): x − y = −softplus(−x)
 * <= 0, so the exponential never overflows, and the rule is made of ops
 * that differentiate again. */
static void softplus_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_mul(tape, gy, tg_exp(tape, tg_sub(tape, n->in[0], n->out)));
}
static const tg_op op_softplus = {"softplus", 1, 0, softplus_backward};

static void softplus_chunk(void *arg, int64_t lo, int64_t hi) {
  const tg_real *restrict x = ((special_ctx *)arg)->x;
  tg_real *restrict y = ((special_ctx *)arg)->y;
  for (int64_t i = lo; i < hi; i++) {
    tg_real v = x[i];
    y[i] = (v > 0 ? v : 0) + F(log1p)(F(exp)(-F(fabs)(v)));
  }
}

tg_tensor *tg_softplus(tg_tape *tape, tg_tensor *x) {
  return special_apply(tape, &op_softplus, x, softplus_chunk);
}
