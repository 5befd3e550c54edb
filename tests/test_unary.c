/* test_unary.c — neg, exp, log, sqrt, tanh, abs, sigmoid: forward against
 * libm in a plain double loop and hand values, gradcheck, second
 * derivatives, and errors; for exp, log, tanh and sigmoid (the engine's
 * own functions) the maximum error in ulp over millions of inputs (every
 * float of two binades and a stride through all the others) against libm
 * in a wider type, and their special values.
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
static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }

static const case_ cases[] = {
    {"neg", tg_neg, neg_ref, -3, 3, 0},
    {"exp", tg_exp, exp, -3, 3, 0},
    {"log", tg_log, log, 0.1, 5, 0},
    {"sqrt", tg_sqrt, sqrt, 0.1, 5, 0},
    {"tanh", tg_tanh, tanh, -3, 3, 0},
    {"abs", tg_abs, fabs, 0.1, 3, 1},
    {"sigmoid", tg_sigmoid, sigmoid_ref, -4, 4, 0},
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
  tg_tensor *y[2][5], *g[2];
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    y[t][0] = tg_tanh(tape, x);
    y[t][1] = tg_exp(tape, x);
    y[t][2] = tg_sqrt(tape, tg_abs(tape, x));
    y[t][3] = tg_log(tape, tg_abs(tape, x));
    y[t][4] = tg_sigmoid(tape, x);
    tg_tensor *f = tg_add(tape, tg_mul(tape, tg_tanh(tape, x), x), tg_sigmoid(tape, x));
    ck_assert_int_eq(tg_grad(tape, f, tu_ones_like(tape, f), 1, &x, &g[t], 0), TG_OK);
  }
  for (int k = 0; k < 5; k++)
    ck_assert_msg(tu_same_bits(y[0][k], y[1][k]), "op %d: 1 and 2 threads differ", k);
  ck_assert_msg(tu_same_bits(g[0], g[1]), "gradient: 1 and 2 threads differ");
  /* d(x tanh x + σ(x)) = tanh x + x (1 - tanh² x) + σ(1 − σ) */
  for (int64_t i = 0; i < n; i += 997) {
    double v = tg_at(x, i), t = tanh(v), sg = 1 / (1 + exp(-v));
    ck_assert(tu_rel(tg_at(g[1], i), t + v * (1 - t * t) + sg * (1 - sg)) <= TU_VALUE_TOL);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * exp, log, tanh, sigmoid (ops/vmath.h): error in ulp against libm in a
 * wider type (double for float, x87 long double for double). */
#ifdef TG_DOUBLE
typedef long double wide;
#define W(name)   name##l
#define MANT_BITS 53
#define MIN_EXP   (-1022)
#else
typedef double wide;
#define W(name)   name
#define MANT_BITS 24
#define MIN_EXP   (-126)
#endif

static wide sigmoid_wide(wide x) { return 1 / (1 + W(exp)(-x)); }

typedef struct math_case {
  const char *name;
  unary_fn op;
  wide (*ref)(wide);
  double bound; /* ulp, as ops.h states it */
} math_case;

static const math_case maths[] = {{"exp", tg_exp, W(exp), 1.5},
                                  {"log", tg_log, W(log), 1},
                                  {"tanh", tg_tanh, W(tanh), 2},
                                  {"sigmoid", tg_sigmoid, sigmoid_wide, 3}};
#define NMATHS (int)(sizeof maths / sizeof maths[0])

/* |got − ref| in units of the last place of ref rounded to tg_real
 * (denormals: the smallest denormal). A result that rounds to ±inf must
 * be that inf, NaN must be NaN. */
static double ulp_error(tg_real got, wide ref) {
  const tg_real r = (tg_real)ref;
  if (isnan(ref))
    return isnan(got) ? 0 : INFINITY;
  if (isinf(r))
    return got == r ? 0 : INFINITY;
  if (!isfinite(got))
    return INFINITY;
  int e = ref == 0 ? MIN_EXP : (int)W(ilogb)(ref);
  e = e < MIN_EXP ? MIN_EXP : e;
  return (double)(W(fabs)((wide)got - ref) / W(ldexp)((wide)1, e - (MANT_BITS - 1)));
}

#ifdef TG_DOUBLE
static uint64_t splitmix(uint64_t i) {
  uint64_t z = i * 0x9e3779b97f4a7c15ull + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* 2^22 random bit patterns (every binade, NaNs and infinities), 2^22
 * uniform in (−64, 64) (log: its magnitude) and 2^22 in ±[½, 1). */
static const int64_t n_inputs = 3 << 22;
static tg_real input(int64_t i, const math_case *m) {
  const uint64_t z = splitmix((uint64_t)i);
  const double u = (double)(z >> 11) * 0x1p-53; /* [0, 1) */
  double x;
  if (i < 1 << 22)
    memcpy(&x, &z, sizeof x);
  else if (i < 2 << 22)
    x = m->op == tg_log ? 64 * u : 128 * u - 64;
  else
    x = (z & 1 ? -1 : 1) * (0.5 + 0.5 * u);
  return x;
}
#else
/* Every 509th bit pattern of all 2^32 (every binade, NaNs and infinities,
 * 16k floats in each), then every float of ±[½, 1) (where log's split at
 * √½ and tanh's at 0.55 lie). */
static const int64_t n_inputs = (1ll << 32) / 509 + (1 << 24);
static tg_real input(int64_t i, const math_case *m) {
  (void)m;
  const int64_t strided = (1ll << 32) / 509;
  uint32_t b = i < strided ? (uint32_t)(i * 509)
                           : 0x3f000000u + (uint32_t)((i - strided) & 0x7fffff) +
                                 ((uint32_t)((i - strided) >> 23) << 31);
  float x;
  memcpy(&x, &b, sizeof x);
  return x;
}
#endif

START_TEST(test_max_ulp_error) {
  const math_case *m = &maths[_i];
  tg_tape *tape = tg_tape_new();
  const int64_t batch = 1 << 20;
  double worst = 0;
  tg_real worst_x = 0, worst_y = 0;
  for (int64_t lo = 0; lo < n_inputs; lo += batch) {
    int64_t n = n_inputs - lo < batch ? n_inputs - lo : batch;
    tg_tensor *x = tg_empty(tape, &n, 1);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++)
      x->data[i] = input(lo + i, m);
    tg_tensor *y = m->op(tape, x);
    ck_assert_msg(y != NULL, "%s: %s", m->name, tg_tape_error(tape));
    for (int64_t i = 0; i < n; i++) {
      double e = ulp_error(y->data[i], m->ref(x->data[i]));
      if (!(e <= worst)) /* NaN too */
        worst = e, worst_x = x->data[i], worst_y = y->data[i];
    }
    tg_tape_reset(tape);
  }
  ck_assert_msg(worst <= m->bound, "%s: %.3f ulp at x = %a (got %a, want %.20Lg); bound %g",
                m->name, worst, (double)worst_x, (double)worst_y, (long double)m->ref(worst_x),
                m->bound);
  /* A bound far above the error would hide a regression. */
  ck_assert_msg(worst > m->bound - 1, "%s: %.3f ulp: tighten the bound %g", m->name, worst,
                m->bound);
  tg_tape_free(tape);
}
END_TEST

/* Special values, compared bit for bit (the sign of 0 too); where the
 * result is not exact (denormals), within the ulp bound. */
START_TEST(test_special_values) {
  const tg_real inf = INFINITY, nan = NAN, dmin = sizeof(tg_real) == 8 ? 0x1p-1074 : 0x1p-149f;
  const tg_real big = sizeof(tg_real) == 8 ? 800 : 110; /* e^big overflows, e^−big is 0 */
  static const struct {
    const char *name;
    unary_fn op;
  } fn[4] = {{"exp", tg_exp}, {"log", tg_log}, {"tanh", tg_tanh}, {"sigmoid", tg_sigmoid}};
  /* x, then exp, log, tanh, sigmoid of x */
  const tg_real v[][5] = {
      {0, 1, -inf, 0, 0.5},
      {-0.0, 1, -inf, -0.0, 0.5},
      {1, (tg_real)2.71828182845904523536, 0, (tg_real)0.76159415595576488812,
       (tg_real)0.73105857863000487925},
      {inf, inf, inf, 1, 1},
      {-inf, 0, nan, -1, 0},
      {big, inf, (tg_real)log((double)big), 1, 1},
      {-big, 0, nan, -1, 0},
      {-1, (tg_real)0.36787944117144233, nan, (tg_real)-0.76159415595576488812,
       (tg_real)0.26894142136999512075},
      {dmin, 1, (tg_real)(sizeof(tg_real) == 8 ? -1074 : -149) * (tg_real)0.69314718055994530942,
       dmin, 0.5},
      {nan, nan, nan, nan, nan},
  };
  tg_tape *tape = tg_tape_new();
  const int64_t n = sizeof v / sizeof v[0];
  tg_tensor *x = tg_empty(tape, &n, 1);
  for (int64_t i = 0; i < n; i++)
    x->data[i] = v[i][0];
  for (int f = 0; f < 4; f++) {
    tg_tensor *y = fn[f].op(tape, x);
    ck_assert_ptr_nonnull(y);
    for (int64_t i = 0; i < n; i++) {
      tg_real got = y->data[i], want = v[i][f + 1];
      int ok = isnan(want) ? isnan(got) : memcmp(&got, &want, sizeof got) == 0;
      if (!ok && isfinite(want) && want != 0 && want != 1 && want != -1)
        ok = fabs((double)got - (double)want) <= 3 * fabs((double)want) * 0x1p-23;
      ck_assert_msg(ok, "%s(%a) = %a, want %a", fn[f].name, (double)v[i][0], (double)got,
                    (double)want);
    }
  }
  /* The denormal range: e^x down to the smallest denormal, and its log. */
  const double lo = sizeof(tg_real) == 8 ? -744 : -103;
  for (double t = lo; t < lo + 40; t += 0.37) {
    tg_tensor *xt = tg_full(tape, (int64_t[]){1}, 1, (tg_real)t);
    tg_real e = tg_at(tg_exp(tape, xt), 0), s = tg_at(tg_sigmoid(tape, xt), 0);
    ck_assert_msg(ulp_error(e, W(exp)((wide)(tg_real)t)) <= maths[0].bound, "exp(%g) = %a", t,
                  (double)e);
    ck_assert_msg(ulp_error(s, sigmoid_wide((wide)(tg_real)t)) <= maths[3].bound,
                  "sigmoid(%g) = %a", t, (double)s);
    if (e > 0) {
      tg_tensor *et = tg_full(tape, (int64_t[]){1}, 1, e);
      tg_real l = tg_at(tg_log(tape, et), 0);
      ck_assert_msg(ulp_error(l, W(log)((wide)e)) <= maths[1].bound, "log(%a) = %a", (double)e,
                    (double)l);
    }
  }
  tg_tape_free(tape);
}
END_TEST

/* sigmoid, the fused op, against its composite ½ tanh(x/2) + ½: values
 * and the gradient (the composite's left tail is a rounding of 1, so
 * absolute tolerance). */
START_TEST(test_sigmoid_matches_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 9);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){7, 13}, 2, -12, 12);
  tg_tensor *w = tg_empty(tape, x->shape, x->ndim); /* non-uniform weights: a constant */
  tu_fill_uniform(w, tg_tape_rng(tape), 0.5, 2);
  tg_tensor *y[2], *g[2];
  tg_tensor *(*fs[2])(tg_tape *, tg_tensor *) = {tg_sigmoid, tg_sigmoid_composite};
  for (int k = 0; k < 2; k++) {
    y[k] = fs[k](tape, x);
    tg_tensor *f = tg_mul(tape, y[k], w);
    ck_assert_int_eq(tg_grad(tape, f, tu_ones_like(tape, f), 1, &x, &g[k], 0), TG_OK);
  }
  for (int64_t i = 0; i < x->numel; i++) {
    ck_assert(fabs(tg_at(y[0], i) - tg_at(y[1], i)) <= TU_VALUE_TOL);
    ck_assert(fabs(tg_at(g[0], i) - tg_at(g[1], i)) <= TU_VALUE_TOL);
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
  tc = tcase_create("accuracy");
  tcase_set_timeout(tc, 300); /* millions of inputs; sanitizers are slow */
  tcase_add_loop_test(tc, test_max_ulp_error, 0, NMATHS);
  tcase_add_test(tc, test_special_values);
  tcase_add_test(tc, test_sigmoid_matches_composite);
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
