/* compose.c — ops a user reaches for that are compositions of the
 * primitive ops: minimum, clamp, leaky_relu, elu, gelu (erf and tanh
 * forms), logsumexp and var.
 *
 * A composition records only primitives, so it needs no backward code and
 * differentiates any number of times. Each checks its own arguments first
 * (through a descriptor that only names it), so a NULL input or a bad
 * axis is reported under its own name, not under the primitive it would
 * have reached. Nothing here has a kernel: a loop written here would be
 * a fused op, which DESIGN.md §5 allows only beside its composite twin.
 */
#include <math.h>

#include "op.h"
#include "ops.h"

/* Descriptors that name the compositions in messages; never recorded. */
static const tg_op op_minimum = {"minimum", 2, TG_COMPOSITE, NULL};
static const tg_op op_clamp = {"clamp", 1, TG_COMPOSITE, NULL};
static const tg_op op_leaky_relu = {"leaky_relu", 1, TG_COMPOSITE, NULL};
static const tg_op op_elu = {"elu", 1, TG_COMPOSITE, NULL};
static const tg_op op_gelu = {"gelu", 1, TG_COMPOSITE, NULL};
static const tg_op op_gelu_tanh = {"gelu_tanh", 1, TG_COMPOSITE, NULL};
static const tg_op op_logsumexp = {"logsumexp", 1, TG_COMPOSITE, NULL};
static const tg_op op_var = {"var", 1, TG_COMPOSITE, NULL};

/* ------------------------------------------------------------------------
 * minimum(a, b) = −maximum(−a, −b): ties send the gradient to a (as
 * maximum's do), and a NaN on either side gives NaN. */
tg_tensor *tg_minimum(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  tg_tensor *in[2] = {a, b};
  if (!tg_op_begin(tape, &op_minimum, 2, in))
    return NULL;
  int64_t s[TG_MAX_DIMS];
  int nd;
  if (tg_broadcast_shape(tape, "minimum", a, b, s, &nd) != TG_OK)
    return NULL;
  return tg_neg(tape, tg_maximum(tape, tg_neg(tape, a), tg_neg(tape, b)));
}

/* clamp(x, lo, hi) = minimum(maximum(x, lo), hi): the gradient passes on
 * lo <= x <= hi, ends included (as PyTorch's clamp). */
tg_tensor *tg_clamp(tg_tape *tape, tg_tensor *x, tg_real lo, tg_real hi) {
  if (!tg_op_begin(tape, &op_clamp, 1, &x))
    return NULL;
  if (!(lo <= hi))
    return tg_op_fail(tape, &op_clamp, TG_ERR_ARG, "bounds [%g, %g] are empty or NaN for x %s",
                      (double)lo, (double)hi, TG_SHAPE(x));
  return tg_minimum(tape, tg_maximum(tape, x, tg_scalar(tape, lo)), tg_scalar(tape, hi));
}

/* ------------------------------------------------------------------------
 * Activations */

/* where(x > 0, x, slope·x): at 0 the gradient is slope (as PyTorch's). */
tg_tensor *tg_leaky_relu(tg_tape *tape, tg_tensor *x, tg_real slope) {
  if (!tg_op_begin(tape, &op_leaky_relu, 1, &x))
    return NULL;
  return tg_where(tape, tg_gt(tape, x, tg_scalar(tape, 0)), x, tg_mul_scalar(tape, x, slope));
}

/* where(x > 0, x, alpha·(e^min(x, 0) − 1)): the exponential sees only
 * x <= 0, so a large x cannot overflow it into an Inf whose zero
 * gradient would turn into NaN (0 · Inf). */
tg_tensor *tg_elu(tg_tape *tape, tg_tensor *x, tg_real alpha) {
  if (!tg_op_begin(tape, &op_elu, 1, &x))
    return NULL;
  tg_tensor *zero = tg_scalar(tape, 0);
  tg_tensor *pos = tg_gt(tape, x, zero);         /* x's shape, constant */
  tg_tensor *neg = tg_where(tape, pos, zero, x); /* min(x, 0) */
  tg_tensor *e = tg_mul_scalar(tape, tg_add_scalar(tape, tg_exp(tape, neg), -1), alpha);
  return tg_where(tape, pos, x, e);
}

/* x · Φ(x) = x/2 · (1 + erf(x/√2)) */
tg_tensor *tg_gelu(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_gelu, 1, &x))
    return NULL;
  tg_tensor *e = tg_erf(tape, tg_mul_scalar(tape, x, (tg_real)0.70710678118654752440));
  return tg_mul(tape, tg_mul_scalar(tape, x, 0.5), tg_add_scalar(tape, e, 1));
}

/* x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))) */
tg_tensor *tg_gelu_tanh(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_gelu_tanh, 1, &x))
    return NULL;
  tg_tensor *x3 = tg_mul(tape, tg_mul(tape, x, x), x);
  tg_tensor *u = tg_add(tape, x, tg_mul_scalar(tape, x3, (tg_real)0.044715));
  tg_tensor *t = tg_tanh(tape, tg_mul_scalar(tape, u, (tg_real)0.79788456080286535588));
  return tg_mul(tape, tg_mul_scalar(tape, x, 0.5), tg_add_scalar(tape, t, 1));
}

/* ------------------------------------------------------------------------
 * Reductions over axes (the contract of ops.h's reductions) */

/* Checks axes as tg_sum would, under op's name; stores the number of
 * elements each output element reduces in *count. 0 after failing. */
static int axes_check(tg_tape *tape, const tg_op *op, const tg_tensor *x, const int *axes,
                      int naxes, int64_t *count) {
  if (naxes < 0 || naxes > x->ndim || (naxes > 0 && !axes)) {
    tg_op_fail(tape, op, naxes > 0 && !axes ? TG_ERR_NULL : TG_ERR_SHAPE, "%d axes%s for x %s",
               naxes, naxes > 0 && !axes ? " but axes is NULL" : "", TG_SHAPE(x));
    return 0;
  }
  unsigned seen = 0;
  *count = naxes ? 1 : x->numel;
  for (int i = 0; i < naxes; i++) {
    int a = axes[i] < 0 ? axes[i] + x->ndim : axes[i];
    if (axes[i] < -x->ndim || axes[i] >= x->ndim || (seen & (1u << a))) {
      tg_op_fail(tape, op, TG_ERR_SHAPE, "axis %d is out of range or repeated for x %s", axes[i],
                 TG_SHAPE(x));
      return 0;
    }
    seen |= 1u << a;
    *count *= x->shape[a];
  }
  return 1;
}

/* m + log Σ e^(x − m), m the maximum over the axes taken as a constant
 * (detached): the gradient is then exactly softmax(x), and no exponential
 * exceeds 1. An infinite maximum (a row of −Inf, or an Inf) is replaced by
 * 0 so that x − m is not NaN; the result is then −Inf or Inf as it should. */
tg_tensor *tg_logsumexp(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int keepdims) {
  int64_t count;
  if (!tg_op_begin(tape, &op_logsumexp, 1, &x) ||
      !axes_check(tape, &op_logsumexp, x, axes, naxes, &count))
    return NULL;
  tg_tensor *m = tg_detach(tape, tg_max(tape, x, axes, naxes, 1)); /* reduced axes kept as 1 */
  m = tg_where(tape, tg_lt(tape, tg_abs(tape, m), tg_scalar(tape, INFINITY)), m,
               tg_scalar(tape, 0));
  tg_tensor *s = tg_sum(tape, tg_exp(tape, tg_sub(tape, x, m)), axes, naxes, keepdims);
  if (!s)
    return NULL;
  if (!keepdims)
    m = tg_reshape(tape, m, s->shape, s->ndim);
  return tg_add(tape, tg_log(tape, s), m);
}

/* Σ (x − mean)² / (N − correction), N the elements reduced: two passes,
 * so no cancellation of large means. correction 1 is the unbiased sample
 * variance, 0 the population one. */
tg_tensor *tg_var(tg_tape *tape, tg_tensor *x, const int *axes, int naxes, int correction,
                  int keepdims) {
  int64_t count;
  if (!tg_op_begin(tape, &op_var, 1, &x) || !axes_check(tape, &op_var, x, axes, naxes, &count))
    return NULL;
  if (correction < 0 || correction >= count)
    return tg_op_fail(tape, &op_var, TG_ERR_ARG,
                      "correction %d leaves no degrees of freedom for %lld elements per group "
                      "of x %s (must be in [0, %lld))",
                      correction, (long long)count, TG_SHAPE(x), (long long)count);
  tg_tensor *d = tg_sub(tape, x, tg_mean(tape, x, axes, naxes, 1));
  tg_tensor *s = tg_sum(tape, tg_mul(tape, d, d), axes, naxes, keepdims);
  return tg_mul_scalar(tape, s, (tg_real)(1.0 / (double)(count - correction)));
}
