/* unary.c — elementwise unary ops: y = f(x), same shape.
 *
 * Each op is one section: its kernel (a plain loop the compiler
 * vectorises, parallel above TG_PAR_MIN), its descriptor and its backward
 * rule written with ops. Rules reuse the saved output where that is
 * cheaper (exp, sqrt, tanh, sigmoid). exp, log, tanh and sigmoid are our
 * own branch-free functions (vmath.h), not libm's, whose calls do not
 * vectorise. Adding an op: one section here, its declaration in ops.h,
 * its tests in tests/test_unary.c.
 */
#include <math.h>

#include "composite.h"
#include "op.h"
#include "ops.h"
#include "ops_internal.h"
#include "vmath.h"

#ifdef TG_DOUBLE
#define VM(name) vm_##name##_d
#else
#define VM(name) vm_##name##_f
#endif

/* The kernels are TG_KERNELs (parallel.h); vmath.h's functions round
 * alike in every clone. */
#define KERNEL TG_KERNEL

/* Defines name_chunk, the kernel of op `name`: y[i] = EXPR(v), v = x[i]. */
typedef struct unary_ctx {
  const tg_real *x;
  tg_real *y;
} unary_ctx;

#define UNARY_KERNEL(name, EXPR)                                                                   \
  KERNEL static void name##_chunk(void *arg, int64_t lo, int64_t hi) {                             \
    const tg_real *restrict xd = ((unary_ctx *)arg)->x;                                            \
    tg_real *restrict yd = ((unary_ctx *)arg)->y;                                                  \
    _Pragma("omp simd") for (int64_t i = lo; i < hi; i++) {                                        \
      tg_real v = xd[i];                                                                           \
      yd[i] = (EXPR);                                                                              \
    }                                                                                              \
  }

/* The forward of every unary op: checks, computes y with kernel, records. */
static tg_tensor *unary(tg_tape *tape, const tg_op *op, tg_range_fn kernel, tg_tensor *x) {
  if (!tg_op_begin(tape, op, 1, &x))
    return NULL;
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim); /* y: x's shape */
  if (!y)
    return NULL;
  tg_parallel_for(x->numel, TG_GRAIN, x->numel, kernel, &(unary_ctx){x->data, y->data});
  return tg_op_record(tape, op, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * neg: dx = -dy */
static void neg_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  (void)n;
  gx[0] = tg_neg(tape, gy);
}
static const tg_op op_neg = {"neg", 1, 0, neg_backward};
UNARY_KERNEL(neg, -v)
tg_tensor *tg_neg(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_neg, neg_chunk, x); }

/* ------------------------------------------------------------------------
 * exp: dx = dy * y */
static void exp_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_mul(tape, gy, n->out);
}
static const tg_op op_exp = {"exp", 1, 0, exp_backward};
UNARY_KERNEL(exp, VM(exp)(v))
tg_tensor *tg_exp(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_exp, exp_chunk, x); }

/* ------------------------------------------------------------------------
 * log: dx = dy / x (log of x <= 0 gives -inf or NaN, as in C; anomaly
 * mode reports it) */
static void log_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_div(tape, gy, n->in[0]);
}
static const tg_op op_log = {"log", 1, 0, log_backward};
UNARY_KERNEL(log, VM(log)(v))
tg_tensor *tg_log(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_log, log_chunk, x); }

/* ------------------------------------------------------------------------
 * sqrt: dx = dy / (2 y) */
static void sqrt_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_div(tape, gy, tg_mul_scalar(tape, n->out, 2));
}
static const tg_op op_sqrt = {"sqrt", 1, 0, sqrt_backward};
UNARY_KERNEL(sqrt, F(sqrt)(v))
tg_tensor *tg_sqrt(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_sqrt, sqrt_chunk, x); }

/* ------------------------------------------------------------------------
 * The backward rules of tanh and sigmoid, each one pass over y and dy:
 *   tanh_grad(y, dy)    = dy · (1 − y·y)
 *   sigmoid_grad(y, dy) = dy · (y · (1 − y))
 * the operations of their composite twins (below: three and four ops,
 * each a pass over the whole tensor), in the same order, so the same bits
 * (no contraction into fused multiply-adds: -std=c11). As ops they
 * differentiate again: d/d(dy) is the op itself, d/dy is dy·(−2y) and
 * dy·(1 − 2y). */
enum { GRAD_TANH, GRAD_SIGMOID };
static tg_tensor *y_grad(tg_tape *tape, int kind, tg_tensor *y, tg_tensor *dy);

static void y_grad_backward(tg_tape *tape, const tg_node *n, tg_tensor *g, tg_tensor **gx) {
  int kind = (int)n->attr[0];
  tg_tensor *y = n->in[0], *dy = n->in[1];
  if (tg_op_needs_grad(n, 0)) {
    tg_tensor *d2 = tg_mul_scalar(tape, y, -2);
    if (kind == GRAD_SIGMOID)
      d2 = tg_add_scalar(tape, d2, 1);
    gx[0] = tg_mul(tape, g, tg_mul(tape, dy, d2));
  }
  if (tg_op_needs_grad(n, 1))
    gx[1] = y_grad(tape, kind, y, g);
}
static const tg_op op_tanh_grad = {"tanh_grad", 2, 0, y_grad_backward};
static const tg_op op_sigmoid_grad = {"sigmoid_grad", 2, 0, y_grad_backward};

typedef struct y_grad_ctx {
  const tg_real *y, *dy;
  tg_real *dx;
} y_grad_ctx;

/* Defines name_chunk: dx[i] = EXPR of y[i] and dy[i]. */
#define Y_GRAD_KERNEL(name, EXPR)                                                                  \
  KERNEL static void name##_chunk(void *arg, int64_t lo, int64_t hi) {                             \
    const tg_real *restrict y = ((y_grad_ctx *)arg)->y, *restrict dy = ((y_grad_ctx *)arg)->dy;    \
    tg_real *restrict dx = ((y_grad_ctx *)arg)->dx;                                                \
    _Pragma("omp simd") for (int64_t i = lo; i < hi; i++) dx[i] = (EXPR);                          \
  }
Y_GRAD_KERNEL(tanh_grad, dy[i] * (1 - y[i] * y[i]))
Y_GRAD_KERNEL(sigmoid_grad, dy[i] * (y[i] * (1 - y[i])))

static tg_tensor *y_grad(tg_tape *tape, int kind, tg_tensor *y, tg_tensor *dy) {
  const tg_op *op = kind == GRAD_SIGMOID ? &op_sigmoid_grad : &op_tanh_grad;
  tg_tensor *in[2] = {y, dy};
  if (!tg_op_begin(tape, op, 2, in))
    return NULL;
  if (!tg_shape_eq(y, dy))
    return tg_op_fail(tape, op, TG_ERR_SHAPE, "y %s and dy %s must have the same shape",
                      TG_SHAPE(y), TG_SHAPE(dy));
  tg_tensor *dx = tg_empty(tape, y->shape, y->ndim);
  if (!dx)
    return NULL;
  tg_parallel_for(y->numel, TG_GRAIN, y->numel,
                  kind == GRAD_SIGMOID ? sigmoid_grad_chunk : tanh_grad_chunk,
                  &(y_grad_ctx){y->data, dy->data, dx->data});
  int64_t attr[1] = {kind};
  return tg_op_record(tape, op, dx, 2, in, attr, 1);
}

tg_tensor *tg_tanh_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy) {
  return y_grad(tape, GRAD_TANH, y, dy);
}

tg_tensor *tg_sigmoid_grad(tg_tape *tape, tg_tensor *y, tg_tensor *dy) {
  return y_grad(tape, GRAD_SIGMOID, y, dy);
}

/* The twins: 1 − v as (−v) + 1, the same rounding. */
tg_tensor *tg_tanh_grad_composite(tg_tape *tape, tg_tensor *y, tg_tensor *dy) {
  return tg_mul(tape, dy, tg_add_scalar(tape, tg_neg(tape, tg_mul(tape, y, y)), 1));
}

tg_tensor *tg_sigmoid_grad_composite(tg_tape *tape, tg_tensor *y, tg_tensor *dy) {
  return tg_mul(tape, dy, tg_mul(tape, y, tg_add_scalar(tape, tg_neg(tape, y), 1)));
}

/* ------------------------------------------------------------------------
 * tanh: dx = dy * (1 - y²) */
static void tanh_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = y_grad(tape, GRAD_TANH, n->out, gy);
}
static const tg_op op_tanh = {"tanh", 1, 0, tanh_backward};
UNARY_KERNEL(tanh, VM(tanh)(v))
tg_tensor *tg_tanh(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_tanh, tanh_chunk, x); }

/* ------------------------------------------------------------------------
 * sigmoid: 1/(1 + e^−x); dx = dy * y * (1 − y). A fused op: its
 * definition, tg_sigmoid_composite (½ tanh(x/2) + ½, ops/compose.c), is
 * its test oracle. */
static void sigmoid_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = y_grad(tape, GRAD_SIGMOID, n->out, gy);
}
static const tg_op op_sigmoid = {"sigmoid", 1, 0, sigmoid_backward};
UNARY_KERNEL(sigmoid, VM(sigmoid)(v))
tg_tensor *tg_sigmoid(tg_tape *tape, tg_tensor *x) {
  return unary(tape, &op_sigmoid, sigmoid_chunk, x);
}

/* ½ tanh(x/2) + ½ = 1/(1 + e^−x): saturates to 0 and 1 without
 * overflow, but its left tail is a rounding of 1, not of y. */
tg_tensor *tg_sigmoid_composite(tg_tape *tape, tg_tensor *x) {
  tg_tensor *t = tg_tanh(tape, tg_mul_scalar(tape, x, 0.5));
  return tg_add_scalar(tape, tg_mul_scalar(tape, t, 0.5), 0.5);
}

/* ------------------------------------------------------------------------
 * abs: dx = dy * sign(x), with sign(0) = 0 (a subgradient) */
static void abs_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0];
  tg_tensor *zero = tg_scalar(tape, 0);
  tg_tensor *sign = tg_sub(tape, tg_gt(tape, x, zero), tg_lt(tape, x, zero));
  gx[0] = tg_mul(tape, gy, sign);
}
/* Its decisions: the sign of each x, 0 apart from both (sign(0) = 0). */
static uint64_t abs_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                           const int64_t *attr) {
  (void)tape, (void)n, (void)out, (void)attr;
  return tg_hash_signs(in[0]->data, in[0]->numel, 1);
}
static const tg_kinked_op op_abs = {{"abs", 1, TG_KINKED, abs_backward}, abs_decide};
UNARY_KERNEL(abs, F(fabs)(v))
tg_tensor *tg_abs(tg_tape *tape, tg_tensor *x) { return unary(tape, &op_abs.op, abs_chunk, x); }
