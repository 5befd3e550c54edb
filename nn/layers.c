/* layers.c — the book's layers with parameters or modes: Affine, Dropout,
 * Batch Normalization, and the weight-decay penalty.
 *
 * Each layer is a composition of primitive ops; nothing here may define a
 * backward rule or an op descriptor, and the book's hand-derived backward
 * passes live in tests/test_nn.c as oracles, not here. The only raw loops
 * draw Dropout's constant mask and update Batch Norm's running statistics,
 * which are buffers outside the tape: no gradient ever flows through them.
 */
#include <math.h>
#include <stdio.h>

#include "nn_internal.h"

/* ------------------------------------------------------------------------
 * Affine: x·W + b. x (N, ...) is flattened to (N, D) by a reshape view,
 * as the book's Affine does, so the gradient comes back in x's shape. */
tg_tensor *tg_affine(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b) {
  /* x: (N, D) or (N, ...) with D elements per row; W: (D, M); b: (M,) or NULL -> (N, M) */
  if (!nn_begin(tape, "affine", 2, (tg_tensor *[]){x, W}, (const char *[]){"x", "W"}))
    return NULL;
  if (x->ndim < 2) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "affine",
                 "x %s has no batch axis: it must be (N, D) or (N, ...)", TG_SHAPE(x));
    return NULL;
  }
  int64_t n = x->shape[0], d = x->numel / n;
  if (W->ndim != 2 || W->shape[0] != d) {
    if (x->ndim == 2)
      tg_tape_fail(tape, TG_ERR_SHAPE, "affine", "x %s and W %s do not fit", TG_SHAPE(x),
                   TG_SHAPE(W));
    else
      tg_tape_fail(tape, TG_ERR_SHAPE, "affine",
                   "x %s (flattened to (%lld, %lld)) and W %s do not fit", TG_SHAPE(x),
                   (long long)n, (long long)d, TG_SHAPE(W));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[1])) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "affine", "b %s does not fit W %s (b must be (%lld,))",
                 TG_SHAPE(b), TG_SHAPE(W), (long long)W->shape[1]);
    return NULL;
  }
  tg_tensor *x2 = x->ndim == 2 ? x : tg_reshape(tape, x, (int64_t[]){n, d}, 2); /* (N, D) */
  tg_tensor *y = tg_matmul(tape, x2, W);                                        /* (N, M) */
  return b ? tg_add(tape, y, b) : y;
}

/* ------------------------------------------------------------------------
 * Dropout, inverted: the kept elements are scaled by 1/(1 − ratio) while
 * training, so the expected activation is x in both modes and evaluation
 * needs no knowledge of the ratio (the book's Dropout instead scales by
 * 1 − ratio at evaluation; the expectations agree). The mask is a constant
 * drawn from the tape's generator, so a seed fixes it. */
/* Row r's mask from a generator seeded by (key, ids[r]) when ids is
 * given, else the whole mask from the tape's generator. */
static tg_tensor *dropout(tg_tape *tape, tg_tensor *x, double ratio, uint64_t key,
                          const int64_t *ids) { /* x: (N, ...) with ids, else any shape */
  if (!nn_begin(tape, "dropout", 1, &x, (const char *[]){"x"}))
    return NULL;
  if (!(ratio >= 0 && ratio < 1)) {
    tg_tape_fail(tape, TG_ERR_ARG, "dropout", "ratio %g for x %s is outside [0, 1)", ratio,
                 TG_SHAPE(x));
    return NULL;
  }
  if (ids && x->ndim < 1) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "dropout", "x %s has no sample axis for the keyed masks",
                 TG_SHAPE(x));
    return NULL;
  }
  if (!tg_tape_training(tape) || ratio == 0)
    return x;
  tg_tensor *mask = tg_empty(tape, x->shape, x->ndim); /* x's shape: 0 or 1/(1 − ratio) */
  if (!mask)
    return NULL;
  tg_real keep = (tg_real)(1 / (1 - ratio));
  int64_t rows = ids ? x->shape[0] : 1, per = rows ? x->numel / rows : 0;
  for (int64_t r = 0; r < rows; r++) {
    tg_rng own, *rng = tg_tape_rng(tape);
    if (ids) {
      /* splitmix64's finaliser over the pair, as the augmentation keys. */
      uint64_t z = key ^ ((uint64_t)ids[r] + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      tg_rng_seed(&own, z ^ (z >> 31));
      rng = &own;
    }
    tg_real *m = mask->data + r * per;
    for (int64_t i = 0; i < per; i++)
      m[i] = tg_rng_uniform(rng) >= ratio ? keep : 0;
  }
  return tg_mul(tape, x, mask);
}

tg_tensor *tg_dropout(tg_tape *tape, tg_tensor *x, double ratio) { /* x: any shape -> x's shape */
  return dropout(tape, x, ratio, 0, NULL);
}

tg_tensor *tg_dropout_keyed(tg_tape *tape, tg_tensor *x, double ratio, uint64_t key,
                            const int64_t *ids) { /* x: (N, ...) -> x's shape; ids: (N,) */
  if (tape && tg_tape_status(tape) == TG_OK && !ids) {
    tg_tape_fail(tape, TG_ERR_NULL, "dropout", "ids is NULL");
    return NULL;
  }
  return dropout(tape, x, ratio, key, ids);
}

/* ------------------------------------------------------------------------
 * Batch Normalization.
 *
 * x (N, D): statistics per feature over the batch axis. x (N, C, H, W):
 * per channel over (N, H, W), the statistics and parameters seen as
 * (1, C, 1, 1) views. (The book's code instead flattens a 4-D x to
 * (N, C·H·W) and normalises every position separately; per channel is the
 * convolutional form of the method, with C parameters instead of C·H·W.)
 *
 * Train mode, as the book: mu = mean(x), xc = x − mu, var = mean(xc²)
 * (biased), xn = xc / √(var + eps), y = gamma·xn + beta; then the running
 * statistics take the batch's, outside the tape. Eval mode normalises with
 * the running statistics, which are constants. */

#define BN_MOMENTUM 0.9
/* The book writes 10e-7, which is 1e-6 (not 1e-7). */
#define BN_EPS 1e-6

tg_status tg_batchnorm_init(tg_batchnorm *bn, const char *prefix, int64_t features,
                            tg_params *params, tg_params *buffers, tg_error *err) {
  if (!bn || !prefix || !params || !buffers)
    return tg_error_set(err, TG_ERR_NULL, "batchnorm_init: %s is NULL",
                        !bn       ? "bn"
                        : !prefix ? "prefix"
                        : !params ? "params"
                                  : "buffers");
  if (features < 1)
    return tg_error_set(err, TG_ERR_ARG, "batchnorm_init: %s: %lld features (must be >= 1)", prefix,
                        (long long)features);
  static const char *const suffix[4] = {"gamma", "beta", "running_mean", "running_var"};
  tg_params *list[4] = {params, params, buffers, buffers};
  char name[4][256];
  /* Every name is checked before anything is added, so a clash leaves both
   * lists as they were. */
  for (int k = 0; k < 4; k++) {
    int len = snprintf(name[k], sizeof name[k], "%s.%s", prefix, suffix[k]);
    if (len < 0 || (size_t)len >= sizeof name[k])
      return tg_error_set(err, TG_ERR_ARG, "batchnorm_init: prefix \"%.40s...\" is too long",
                          prefix);
    if (tg_params_find(list[k], name[k]))
      return tg_error_set(err, TG_ERR_ARG, "batchnorm_init: %s is already in the list", name[k]);
  }
  tg_tensor *t[4];
  for (int k = 0; k < 4; k++) {
    t[k] = tg_params_new(list[k], name[k], (int64_t[]){features}, 1, k < 2, err); /* (D,), zeros */
    if (!t[k])
      return err ? err->status : TG_ERR_MEMORY;
  }
  tg_tensor_fill(t[0], 1);
  *bn = (tg_batchnorm){.gamma = t[0],
                       .beta = t[1],
                       .running_mean = t[2],
                       .running_var = t[3],
                       .momentum = BN_MOMENTUM,
                       .eps = BN_EPS};
  return TG_OK;
}

/* Checks bn against x and fills the reduction axes and the shape the
 * (D,) tensors take to broadcast against x. Returns 0 after failing. */
static int bn_check(tg_tape *tape, const tg_batchnorm *bn, const tg_tensor *x, int *axes,
                    int *naxes, int64_t *pshape, int *pndim) {
  if (!bn) {
    tg_tape_fail(tape, TG_ERR_NULL, "batchnorm", "bn is NULL for x %s", TG_SHAPE(x));
    return 0;
  }
  const tg_tensor *const t[4] = {bn->gamma, bn->beta, bn->running_mean, bn->running_var};
  static const char *const what[4] = {"gamma", "beta", "running_mean", "running_var"};
  for (int k = 0; k < 4; k++) {
    if (!t[k]) {
      tg_tape_fail(tape, TG_ERR_NULL, "batchnorm", "%s is NULL (see tg_batchnorm_init)", what[k]);
      return 0;
    }
    if (t[k]->ndim != 1 || !tg_shape_eq(t[k], t[0])) {
      tg_tape_fail(tape, TG_ERR_SHAPE, "batchnorm", "%s %s and gamma %s must be one (D,) shape",
                   what[k], TG_SHAPE(t[k]), TG_SHAPE(t[0]));
      return 0;
    }
  }
  if (!(bn->momentum >= 0 && bn->momentum <= 1) || !(bn->eps >= 0 && isfinite(bn->eps))) {
    tg_tape_fail(tape, TG_ERR_ARG, "batchnorm", "momentum %g must be in [0, 1], eps %g >= 0",
                 bn->momentum, bn->eps);
    return 0;
  }
  int64_t f = t[0]->shape[0];
  if ((x->ndim != 2 && x->ndim != 4) || x->shape[1] != f) {
    tg_tape_fail(tape, TG_ERR_SHAPE, "batchnorm",
                 "x %s must be (N, %lld) or (N, %lld, H, W) for gamma %s", TG_SHAPE(x),
                 (long long)f, (long long)f, TG_SHAPE(t[0]));
    return 0;
  }
  if (x->ndim == 2) {
    axes[0] = 0;
    *naxes = 1;
    pshape[0] = f;
    *pndim = 1;
  } else {
    axes[0] = 0, axes[1] = 2, axes[2] = 3;
    *naxes = 3;
    pshape[0] = 1, pshape[1] = f, pshape[2] = 1, pshape[3] = 1;
    *pndim = 4;
  }
  return 1;
}

/* running = momentum·running + (1 − momentum)·batch, the book's update;
 * batch holds the (D,) statistics contiguously whatever its keepdims shape. */
static void bn_update(tg_tensor *running, const tg_tensor *batch, double momentum) {
  for (int64_t i = 0; i < running->numel; i++)
    running->data[i] =
        (tg_real)(momentum * (double)running->data[i] + (1 - momentum) * (double)batch->data[i]);
}

/* A (D,) tensor of bn as it broadcasts against x: itself for x (N, D), a
 * (1, C, 1, 1) view for x (N, C, H, W). */
static tg_tensor *bn_view(tg_tape *tape, tg_tensor *t, const int64_t *pshape, int pndim) {
  return pndim == 1 ? t : tg_reshape(tape, t, pshape, pndim);
}

/* x: (N, D) or (N, C, H, W) -> y: x's shape */
tg_tensor *tg_batchnorm_forward(tg_tape *tape, tg_batchnorm *bn, tg_tensor *x) {
  int axes[3], naxes, pndim;
  int64_t pshape[4];
  if (!nn_begin(tape, "batchnorm", 1, &x, (const char *[]){"x"}) ||
      !bn_check(tape, bn, x, axes, &naxes, pshape, &pndim))
    return NULL;
  int train = tg_tape_training(tape);
  tg_tensor *mu, *var, *xc; /* mu, var: broadcast against x; xc: x's shape */
  if (train) {
    mu = tg_mean(tape, x, axes, naxes, 1);
    xc = tg_sub(tape, x, mu);
    var = tg_mean(tape, tg_mul(tape, xc, xc), axes, naxes, 1);
  } else {
    mu = bn_view(tape, bn->running_mean, pshape, pndim);
    var = bn_view(tape, bn->running_var, pshape, pndim);
    xc = tg_sub(tape, x, mu);
  }
  tg_tensor *xn = tg_div(tape, xc, tg_sqrt(tape, tg_add_scalar(tape, var, (tg_real)bn->eps)));
  tg_tensor *gamma = bn_view(tape, bn->gamma, pshape, pndim);
  tg_tensor *beta = bn_view(tape, bn->beta, pshape, pndim);
  tg_tensor *y = tg_add(tape, tg_mul(tape, gamma, xn), beta); /* x's shape */
  if (y && train) {
    bn_update(bn->running_mean, mu, bn->momentum);
    bn_update(bn->running_var, var, bn->momentum);
  }
  return y;
}

/* ------------------------------------------------------------------------
 * Weight decay: ½ λ Σ_i Σ W_i², the book's penalty added to the loss. */
tg_tensor *tg_weight_decay(tg_tape *tape, tg_tensor *const *W, int n, double lambda) {
  /* W[i]: any shapes -> () */
  if (!tape || tg_tape_status(tape) != TG_OK)
    return NULL;
  if (n < 0) {
    tg_tape_fail(tape, TG_ERR_ARG, "weight_decay", "n is %d (must be >= 0)", n);
    return NULL;
  }
  if (n > 0 && !W) {
    tg_tape_fail(tape, TG_ERR_NULL, "weight_decay", "W is NULL with n = %d", n);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!W[i]) {
      tg_tape_fail(tape, TG_ERR_NULL, "weight_decay", "W[%d] is NULL", i);
      return NULL;
    }
  if (!(lambda >= 0 && isfinite(lambda))) {
    tg_tape_fail(tape, TG_ERR_ARG, "weight_decay", "lambda %g must be finite and >= 0", lambda);
    return NULL;
  }
  if (n == 0 || lambda == 0)
    return tg_scalar(tape, 0);
  tg_tensor *acc = NULL; /* () */
  for (int i = 0; i < n; i++) {
    tg_tensor *s = tg_sum(tape, tg_mul(tape, W[i], W[i]), NULL, 0, 0);
    acc = acc ? tg_add(tape, acc, s) : s;
  }
  return tg_mul_scalar(tape, acc, (tg_real)(0.5 * lambda));
}
