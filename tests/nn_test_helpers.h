/* nn_test_helpers.h — what the two suites of nn/ (test_nn.c and
 * test_nn_book.c) share: tolerances, tensors from values or random fills,
 * Batch Norm state, and a softmax row computed by hand; test_conv.c
 * takes its random tensors and value checks from here too. Header-only.
 */
#ifndef TG_NN_TEST_HELPERS_H
#define TG_NN_TEST_HELPERS_H

#include "nn.h"
#include "testutil.h"

/* The engine's gradients against the book's formulas: the two sides add
 * in different orders, so they agree to rounding. */
#define ORACLE_TOL (sizeof(tg_real) == 8 ? 1e-12 : 1e-4)
/* The book's Batch Norm epsilon, 10e-7. */
#define BOOK_BN_EPS 1e-6

/* ------------------------------------------------------------------------
 * Helpers */

/* An arena tensor from values (doubles); asserts it was made. */
static inline tg_tensor *vals(tg_tape *tape, const int64_t *shape, int nd, const double *v) {
  tg_tensor *t = tg_from_values(tape, shape, nd, v);
  ck_assert_msg(t != NULL, "tg_from_values: %s", tg_tape_error(tape));
  return t;
}

/* An arena tensor, uniform in [lo, hi), optionally requiring grad. */
static inline tg_tensor *rand_t(tg_tape *tape, const int64_t *shape, int nd, double lo, double hi,
                                int grad) {
  tg_tensor *t = tg_empty(tape, shape, nd);
  ck_assert_msg(t != NULL, "tg_empty: %s", tg_tape_error(tape));
  tu_fill_uniform(t, tg_tape_rng(tape), lo, hi);
  return grad ? tg_requires_grad(tape, t) : t;
}

/* An owned (parameter-like) tensor, uniform in [lo, hi); free with
 * tg_tensor_free. */
static inline tg_tensor *owned(const int64_t *shape, int nd, int grad, const char *name, tg_rng *r,
                               double lo, double hi) {
  tg_tensor *t = tg_tensor_new(shape, nd, grad, name, NULL);
  ck_assert_msg(t != NULL, "tg_tensor_new %s failed", name);
  tu_fill_uniform(t, r, lo, hi);
  return t;
}

/* A Batch Norm layer on owned tensors made here (no parameter lists):
 * gamma in [0.5, 1.5), beta in [-0.5, 0.5), running mean 0, variance 1. */
static inline tg_batchnorm bn_make(int64_t f, tg_rng *r) {
  tg_batchnorm bn = {
      .gamma = owned((int64_t[]){f}, 1, 1, "gamma", r, 0.5, 1.5),
      .beta = owned((int64_t[]){f}, 1, 1, "beta", r, -0.5, 0.5),
      .running_mean = owned((int64_t[]){f}, 1, 0, "running_mean", r, 0, 0),
      .running_var = owned((int64_t[]){f}, 1, 0, "running_var", r, 1, 1),
      .momentum = 0.9,
      .eps = BOOK_BN_EPS,
  };
  return bn;
}

static inline void bn_free(tg_batchnorm *bn) {
  tg_tensor_free(bn->gamma);
  tg_tensor_free(bn->beta);
  tg_tensor_free(bn->running_mean);
  tg_tensor_free(bn->running_var);
}

/* Asserts that t matches want[] within tol, naming what and the element. */
static inline void expect(const tg_tensor *t, const double *want, int64_t n, double tol,
                          const char *what) {
  ck_assert_msg(t != NULL, "%s: NULL", what);
  ck_assert_msg(t->numel == n, "%s: %lld elements, want %lld", what, (long long)t->numel,
                (long long)n);
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(tu_rel(tg_at(t, i), want[i]) <= tol, "%s: element %lld is %.17g, want %.17g",
                  what, (long long)i, tg_at(t, i), want[i]);
}

static inline int all_finite(const tg_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++)
    if (!isfinite(tg_at(t, i)))
      return 0;
  return 1;
}

/* Softmax of row r (length c, stride 1) in double, into p. */
static inline void ref_softmax_row(const tg_tensor *x, int64_t r, int64_t c, double *p) {
  double m = -INFINITY, s = 0;
  for (int64_t j = 0; j < c; j++)
    m = fmax(m, tg_at(x, r * c + j));
  for (int64_t j = 0; j < c; j++)
    s += p[j] = exp(tg_at(x, r * c + j) - m);
  for (int64_t j = 0; j < c; j++)
    p[j] /= s;
}

#endif
