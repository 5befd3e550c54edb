/* test_unary.c — neg, exp, log, sqrt, tanh, abs: forward against libm in
 * a plain double loop and hand values, gradcheck, second derivatives, and
 * errors.
 */
#include "testutil.h"

#include <omp.h>

typedef tg_tensor *(*unary_fn)(tg_tape *, tg_tensor *);

typedef struct case_ {
  const char *name;
  unary_fn op;
  double (*ref)(double);
  double lo, hi; /* domain of the test inputs (away from kinks and poles) */
  int signed_;   /* 1: magnitudes in [lo, hi) with random sign */
} case_;

static double neg_ref(double x) { return -x; }

static const case_ cases[] = {
    {"neg", tg_neg, neg_ref, -3, 3, 0}, {"exp", tg_exp, exp, -3, 3, 0},
    {"log", tg_log, log, 0.1, 5, 0},    {"sqrt", tg_sqrt, sqrt, 0.1, 5, 0},
    {"tanh", tg_tanh, tanh, -3, 3, 0},  {"abs", tg_abs, fabs, 0.1, 3, 1},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

START_TEST(test_forward_matches_libm) {
  const case_ *c = &cases[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 11);
  /* A 6-D shape: the kernels are shape-agnostic. */
  tg_tensor *x = tg_empty(tape, (int64_t[]){2, 1, 3, 2, 1, 2}, 6);
  if (c->signed_)
    tu_fill_signed(x, tg_tape_rng(tape), c->lo, c->hi);
  else
    tu_fill_uniform(x, tg_tape_rng(tape), c->lo, c->hi);
  tg_tensor *y = c->op(tape, x);
  ck_assert_msg(y != NULL, "%s: %s", c->name, tg_tape_error(tape));
  ck_assert_int_eq(y->ndim, 6);
  ck_assert_int_eq(y->numel, 24);
  double want[24];
  for (int i = 0; i < 24; i++)
    want[i] = c->ref((double)x->data[i]);
  tu_assert_values(y, want, TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_hand_values) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_from_values(tape, (int64_t[]){4}, 1, (double[]){0, 1, 4, -2});
  double neg[] = {0, -1, -4, 2}, ab[] = {0, 1, 4, 2};
  tu_assert_values(tg_neg(tape, x), neg, 0);
  tu_assert_values(tg_abs(tape, x), ab, 0);
  tg_tensor *p = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, 4, 0.25});
  double sq[] = {1, 2, 0.5}, lg[] = {0, 2 * 0.69314718055994531, -2 * 0.69314718055994531};
  tu_assert_values(tg_sqrt(tape, p), sq, 0);
  tu_assert_values(tg_log(tape, p), lg, TU_VALUE_TOL);
  tg_tensor *z = tg_scalar(tape, 0);
  double one[] = {1}, zero[] = {0};
  tu_assert_values(tg_exp(tape, z), one, 0);
  tu_assert_values(tg_tanh(tape, z), zero, 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *apply(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return ((const case_ *)ctx)->op(tape, in[0]);
}

START_TEST(test_gradcheck) {
  const case_ *c = &cases[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 3);
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){3, 4}, 2));
  if (c->signed_)
    tu_fill_signed(x, tg_tape_rng(tape), c->lo, c->hi);
  else
    tu_fill_uniform(x, tg_tape_rng(tape), c->lo, c->hi);
  tg_tensor *in[] = {x};
  tu_assert_gradcheck(tape, apply, (void *)c, 1, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* First derivative as a function, so gradcheck tests the second. */
static tg_tensor *first_derivative(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  tg_tensor *x = in[0], *g = NULL;
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *y = ((const case_ *)ctx)->op(tape, x);
  int st = tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 1);
  tg_tape_set_grad(tape, was);
  return st == TG_OK ? g : NULL;
}

START_TEST(test_second_derivative) {
  const case_ *c = &cases[_i];
  if (c->op == tg_neg || c->op == tg_abs)
    return; /* f'' = 0: the first derivative does not depend on x */
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 5);
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){5}, 1));
  tu_fill_uniform(x, tg_tape_rng(tape), c->lo, c->hi);
  tg_tensor *in[] = {x};
  tu_assert_gradcheck(tape, first_derivative, (void *)c, 1, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_abs_gradient_at_zero_is_zero) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){3}, 1, (double[]){-2, 0, 3}));
  tg_tensor *y = tg_abs(tape, x);
  ck_assert_int_eq(tg_backward(tape, y, tu_ones_like(tape, y)), TG_OK);
  double want[] = {-1, 0, 1};
  tu_assert_values(x->grad, want, 0);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_null_input) {
  const case_ *c = &cases[_i];
  tg_tape *tape = tg_tape_new();
  ck_assert_ptr_null(c->op(tape, NULL));
  tu_assert_error(tape, c->name, "(op #0)", "input 0 is NULL");
  ck_assert_ptr_null(c->op(NULL, NULL)); /* no tape: NULL, no crash */
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_large_input_parallel_matches_serial) {
  /* Above TG_PAR_MIN the kernels run on OpenMP: same values either way. */
  tg_tape *tape = tg_tape_new();
  int64_t n = 3 * TG_PAR_MIN;
  tg_tensor *x = tg_empty(tape, &n, 1);
  tu_fill_uniform(x, tg_tape_rng(tape), -3, 3);
  tg_tensor *y = tg_tanh(tape, x);
  ck_assert_ptr_nonnull(y);
  for (int64_t i = 0; i < n; i += 997)
    ck_assert(tu_rel(tg_at(y, i), tanh(tg_at(x, i))) <= TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

/* Above TG_PAR_MIN, one thread against two, bit for bit: forward values
 * and a gradient that the engine sums from two uses of x (its
 * accumulation is threaded too). */
START_TEST(test_threads_bit_identical) {
  tg_tape *tape = tg_tape_new();
  int64_t n = 3 * TG_PAR_MIN + 17;
  tg_tensor *x = tu_leaf(tape, &n, 1, -3, 3);
  tg_tensor *y[2][3], *g[2];
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    y[t][0] = tg_tanh(tape, x);
    y[t][1] = tg_exp(tape, x);
    y[t][2] = tg_sqrt(tape, tg_abs(tape, x));
    tg_tensor *f = tg_mul(tape, tg_tanh(tape, x), x);
    ck_assert_int_eq(tg_grad(tape, f, tu_ones_like(tape, f), 1, &x, &g[t], 0), TG_OK);
  }
  for (int k = 0; k < 3; k++)
    ck_assert_msg(tu_same_bits(y[0][k], y[1][k]), "op %d: 1 and 2 threads differ", k);
  ck_assert_msg(tu_same_bits(g[0], g[1]), "gradient: 1 and 2 threads differ");
  for (int64_t i = 0; i < n; i += 997) { /* d(x tanh x) = tanh x + x (1 - tanh² x) */
    double v = tg_at(x, i), t = tanh(v);
    ck_assert(tu_rel(tg_at(g[1], i), t + v * (1 - t * t)) <= TU_VALUE_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("unary");
  TCase *tc = tcase_create("forward");
  tcase_add_loop_test(tc, test_forward_matches_libm, 0, NCASES);
  tcase_add_test(tc, test_hand_values);
  tcase_add_test(tc, test_large_input_parallel_matches_serial);
  tcase_add_test(tc, test_threads_bit_identical);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradient");
  tcase_add_loop_test(tc, test_gradcheck, 0, NCASES);
  tcase_add_loop_test(tc, test_second_derivative, 0, NCASES);
  tcase_add_test(tc, test_abs_gradient_at_zero_is_zero);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_loop_test(tc, test_null_input, 0, NCASES);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
