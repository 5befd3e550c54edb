/* test_binary.c — the broadcasting binary ops and the comparisons:
 * forward against plain loops (and hand values) at many broadcast
 * patterns, gradchecks of every differentiable op at those patterns,
 * second derivatives, and the tie rules. test_where.c holds where, what
 * is (not) recorded, errors, and thread-count independence.
 *
 * Expected values never come from the op under test: the reference walks
 * the output by multi-index and maps it onto each input by NumPy's rule.
 * Gradients of broadcast inputs go through tg_sum_to (ops/reduce.c).
 */
#include <omp.h>

#include "binary_test_helpers.h"

/* ------------------------------------------------------------------------
 * Broadcast patterns, with the output shape worked out by hand. */

typedef struct pattern {
  int an, bn, yn;
  int64_t a[6], b[6], y[6];
} pattern;

static const pattern patterns[] = {
    /* 0 */ {2, 2, 2, {2, 3}, {2, 3}, {2, 3}},
    /* 1 */ {2, 1, 2, {2, 3}, {3}, {2, 3}},
    /* 2 */ {1, 2, 2, {3}, {2, 3}, {2, 3}},
    /* 3 */ {3, 2, 3, {2, 1, 4}, {3, 1}, {2, 3, 4}},
    /* 4 */ {0, 2, 2, {0}, {2, 3}, {2, 3}},
    /* 5 */ {2, 0, 2, {2, 3}, {0}, {2, 3}},
    /* 6 */ {2, 2, 2, {4, 1}, {1, 5}, {4, 5}},
    /* 7 */ {2, 2, 2, {1, 3}, {2, 1}, {2, 3}},
    /* 8 */ {5, 3, 5, {2, 1, 3, 1, 2}, {3, 2, 2}, {2, 1, 3, 2, 2}},
    /* 9 */ {6, 6, 6, {1, 2, 1, 3, 1, 2}, {2, 1, 2, 1, 3, 1}, {2, 2, 2, 3, 3, 2}},
    /* 10 */ {6, 1, 6, {2, 1, 2, 1, 3, 2}, {1}, {2, 1, 2, 1, 3, 2}},
    /* 11 */ {0, 0, 0, {0}, {0}, {0}},
    /* 12 */ {1, 2, 2, {1}, {1, 1}, {1, 1}},
    /* 13 */ {2, 3, 3, {3, 4}, {2, 1, 4}, {2, 3, 4}},
};
#define NPATTERNS (int)(sizeof patterns / sizeof patterns[0])

static int64_t numel_of(const int64_t *s, int n) {
  int64_t k = 1;
  for (int i = 0; i < n; i++)
    k *= s[i];
  return k;
}

/* ------------------------------------------------------------------------
 * The ops under test, each with a plain reference and input domains that
 * keep it away from poles and kinks. */

typedef enum fill_kind {
  FILL_ANY,    /* uniform in [-2, 2) */
  FILL_POS,    /* uniform in [0.5, 2): pow's base */
  FILL_AWAY0,  /* |x| in [0.5, 2), random sign: divisors */
  FILL_GRID_A, /* 0.2k + 0.05 and ... */
  FILL_GRID_B, /* ... 0.2k + 0.15: never closer than 0.1, so maximum has no ties */
  FILL_INT,    /* integers in [-2, 2]: comparisons with many ties */
} fill_kind;

static void fill(tg_tensor *t, tg_rng *r, fill_kind k) {
  switch (k) {
  case FILL_ANY:
    tu_fill_uniform(t, r, -2, 2);
    break;
  case FILL_POS:
    tu_fill_uniform(t, r, 0.5, 2);
    break;
  case FILL_AWAY0:
    tu_fill_signed(t, r, 0.5, 2);
    break;
  case FILL_GRID_A:
  case FILL_GRID_B:
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] =
          (tg_real)(0.2 * ((double)tg_rng_below(r, 11) - 5) + (k == FILL_GRID_A ? 0.05 : 0.15));
    break;
  case FILL_INT:
    for (int64_t i = 0; i < t->numel; i++)
      t->data[i] = (tg_real)((double)tg_rng_below(r, 5) - 2);
    break;
  }
}

static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }
static double ref_max(double a, double b) { return a > b ? a : b; }
static double ref_gt(double a, double b) { return a > b; }
static double ref_ge(double a, double b) { return a >= b; }
static double ref_lt(double a, double b) { return a < b; }
static double ref_le(double a, double b) { return a <= b; }
static double ref_eq(double a, double b) { return a == b; }

typedef struct opcase {
  const char *name;
  binary_fn op;
  double (*ref)(double, double);
  fill_kind fa, fb;
} opcase;

static const opcase c_add = {"add", tg_add, ref_add, FILL_ANY, FILL_ANY};
static const opcase c_sub = {"sub", tg_sub, ref_sub, FILL_ANY, FILL_ANY};
static const opcase c_mul = {"mul", tg_mul, ref_mul, FILL_ANY, FILL_ANY};
static const opcase c_div = {"div", tg_div, ref_div, FILL_ANY, FILL_AWAY0};
static const opcase c_pow = {"pow", tg_pow, pow, FILL_POS, FILL_ANY};
static const opcase c_maximum = {"maximum", tg_maximum, ref_max, FILL_GRID_A, FILL_GRID_B};

static const opcase all_ops[] = {
    {"add", tg_add, ref_add, FILL_ANY, FILL_ANY},
    {"sub", tg_sub, ref_sub, FILL_ANY, FILL_ANY},
    {"mul", tg_mul, ref_mul, FILL_ANY, FILL_ANY},
    {"div", tg_div, ref_div, FILL_ANY, FILL_AWAY0},
    {"pow", tg_pow, pow, FILL_POS, FILL_ANY},
    {"maximum", tg_maximum, ref_max, FILL_GRID_A, FILL_GRID_B},
    {"maximum (ties)", tg_maximum, ref_max, FILL_INT, FILL_INT},
    {"gt", tg_gt, ref_gt, FILL_INT, FILL_INT},
    {"ge", tg_ge, ref_ge, FILL_INT, FILL_INT},
    {"lt", tg_lt, ref_lt, FILL_INT, FILL_INT},
    {"le", tg_le, ref_le, FILL_INT, FILL_INT},
    {"eq", tg_eq, ref_eq, FILL_INT, FILL_INT},
};
#define NOPS (int)(sizeof all_ops / sizeof all_ops[0])

/* The two operands of pattern p for case c, as arena leaves. */
static void make_inputs(tg_tape *tape, const pattern *p, const opcase *c, int grad, tg_tensor **a,
                        tg_tensor **b) {
  *a = tg_empty(tape, p->a, p->an);
  *b = tg_empty(tape, p->b, p->bn);
  ck_assert_msg(*a && *b, "%s", tg_tape_error(tape));
  fill(*a, tg_tape_rng(tape), c->fa);
  fill(*b, tg_tape_rng(tape), c->fb);
  if (grad) {
    tg_requires_grad(tape, *a);
    tg_requires_grad(tape, *b);
  }
}

/* ------------------------------------------------------------------------
 * Forward */

START_TEST(test_forward_vs_loop) {
  const pattern *p = &patterns[_i];
  for (int o = 0; o < NOPS; o++) {
    const opcase *c = &all_ops[o];
    tg_tape *tape = tg_tape_new();
    tg_tape_seed(tape, 100 + (uint64_t)o);
    tg_tensor *a, *b;
    make_inputs(tape, p, c, 0, &a, &b);
    tg_tensor *y = c->op(tape, a, b);
    ck_assert_msg(y != NULL, "%s, pattern %d: %s", c->name, _i, tg_tape_error(tape));
    ck_assert_msg(y->ndim == p->yn, "%s, pattern %d: ndim %d, want %d", c->name, _i, y->ndim,
                  p->yn);
    for (int d = 0; d < p->yn; d++)
      ck_assert_msg(y->shape[d] == p->y[d], "%s, pattern %d: got shape %s", c->name, _i,
                    tg_shape_str(y->shape, y->ndim, (char[160]){0}, 160));
    int64_t n = numel_of(p->y, p->yn);
    ck_assert_int_eq(y->numel, n);
    for (int64_t i = 0; i < n; i++) {
      double u = tg_at(a, ref_index(p->y, p->yn, p->a, p->an, i));
      double v = tg_at(b, ref_index(p->y, p->yn, p->b, p->bn, i));
      double want = c->ref(u, v);
      ck_assert_msg(tu_rel(tg_at(y, i), want) <= TU_VALUE_TOL,
                    "%s, pattern %d, element %lld: %s(%.17g, %.17g) = %.17g, want %.17g", c->name,
                    _i, (long long)i, c->name, u, v, tg_at(y, i), want);
    }
    tg_tape_free(tape);
  }
}
END_TEST

START_TEST(test_hand_values) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *m = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 4, 5, 6});
  tg_tensor *v = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){10, 20, 30});
  tg_tensor *col = tg_from_values(tape, (int64_t[]){2, 1}, 2, (double[]){2, -1});
  tu_assert_values(tg_add(tape, m, v), ((double[]){11, 22, 33, 14, 25, 36}), 0);
  tu_assert_values(tg_sub(tape, v, m), ((double[]){9, 18, 27, 6, 15, 24}), 0);
  tu_assert_values(tg_mul(tape, m, col), ((double[]){2, 4, 6, -4, -5, -6}), 0);
  tu_assert_values(tg_div(tape, m, col), ((double[]){0.5, 1, 1.5, -4, -5, -6}), 0);
  tu_assert_values(tg_pow(tape, col, m), ((double[]){2, 4, 8, 1, -1, 1}), 0);
  tu_assert_values(tg_maximum(tape, m, tg_scalar(tape, 3.5)), ((double[]){3.5, 3.5, 3.5, 4, 5, 6}),
                   0);
  tu_assert_values(tg_add_scalar(tape, v, 1), ((double[]){11, 21, 31}), 0);
  tu_assert_values(tg_mul_scalar(tape, v, -0.5), ((double[]){-5, -10, -15}), 0);
  tu_assert_values(tg_pow_scalar(tape, v, 2), ((double[]){100, 400, 900}), 0);
  tu_assert_values(tg_pow_scalar(tape, col, 3), ((double[]){8, -1}), 0);
  tu_assert_values(tg_pow_scalar(tape, v, 0.5),
                   ((double[]){3.1622776601683795, 4.4721359549995796, 5.4772255750516612}),
                   TU_VALUE_TOL);
  /* (2, 1) with (3,) is an outer product-shaped (2, 3) */
  tu_assert_values(tg_add(tape, col, v), ((double[]){12, 22, 32, 9, 19, 29}), 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_comparison_masks_by_hand) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, 2, 3});
  tg_tensor *two = tg_scalar(tape, 2);
  tu_assert_values(tg_gt(tape, a, two), ((double[]){0, 0, 1}), 0);
  tu_assert_values(tg_ge(tape, a, two), ((double[]){0, 1, 1}), 0);
  tu_assert_values(tg_lt(tape, a, two), ((double[]){1, 0, 0}), 0);
  tu_assert_values(tg_le(tape, a, two), ((double[]){1, 1, 0}), 0);
  tu_assert_values(tg_eq(tape, a, two), ((double[]){0, 1, 0}), 0);
  tu_assert_values(tg_gt(tape, two, a), ((double[]){1, 0, 0}), 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

/* x^2 takes a fast path: exactly x*x in tg_real, and its gradient is 2x. */
START_TEST(test_pow_square_fast_path) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 8);
  tg_tensor *x = tu_leaf(tape, (int64_t[]){37}, 1, -3, 3);
  tg_tensor *y = tg_pow_scalar(tape, x, 2);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  for (int i = 0; i < 37; i++) {
    double u = tg_at(x, i);
    ck_assert_msg(tg_at(y, i) == (double)(tg_real)(x->data[i] * x->data[i]),
                  "element %d: %.17g^2 gave %.17g", i, u, tg_at(y, i));
  }
  tg_tensor *g = NULL;
  ck_assert_int_eq(tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 0), TG_OK);
  for (int i = 0; i < 37; i++)
    ck_assert_msg(tu_rel(tg_at(g, i), 2 * tg_at(x, i)) <= TU_VALUE_TOL,
                  "d/dx x^2 at element %d: got %.17g, want %.17g", i, tg_at(g, i), 2 * tg_at(x, i));
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Gradients */

static tg_tensor *apply_binary(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return ((const opcase *)ctx)->op(tape, in[0], in[1]);
}

/* Gradcheck of case c at pattern i, both inputs requiring grad. */
static void gradcheck_at(const opcase *c, int i) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 200 + (uint64_t)i);
  tg_tensor *in[2];
  make_inputs(tape, &patterns[i], c, 1, &in[0], &in[1]);
  tu_assert_gradcheck(tape, apply_binary, (void *)c, 2, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}

/* One test per op, looped over the patterns: a failure reads
 * test_gradcheck_<op>:<pattern index>. */
START_TEST(test_gradcheck_add) { gradcheck_at(&c_add, _i); }
END_TEST
START_TEST(test_gradcheck_sub) { gradcheck_at(&c_sub, _i); }
END_TEST
START_TEST(test_gradcheck_mul) { gradcheck_at(&c_mul, _i); }
END_TEST
START_TEST(test_gradcheck_div) { gradcheck_at(&c_div, _i); }
END_TEST
START_TEST(test_gradcheck_pow) { gradcheck_at(&c_pow, _i); }
END_TEST
START_TEST(test_gradcheck_maximum) { gradcheck_at(&c_maximum, _i); }
END_TEST

typedef struct scalar_case {
  tg_tensor *(*op)(tg_tape *, tg_tensor *, tg_real);
  tg_real s;
  int positive; /* x in [0.5, 2); otherwise |x| in [0.5, 2) with random sign (x³ near 0 has
                   a gradient too small for float's central differences) */
} scalar_case;

static const scalar_case scalar_cases[] = {
    {tg_add_scalar, 1.5, 0}, {tg_mul_scalar, -0.75, 0}, {tg_pow_scalar, 2, 0},
    {tg_pow_scalar, 3, 0},   {tg_pow_scalar, -1.5, 1},
};

static tg_tensor *apply_scalar(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const scalar_case *c = ctx;
  return c->op(tape, in[0], c->s);
}

START_TEST(test_gradcheck_scalar_ops) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 31);
  const scalar_case *c = &scalar_cases[_i];
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){3, 4}, 2));
  if (c->positive)
    tu_fill_uniform(x, tg_tape_rng(tape), 0.5, 2);
  else
    tu_fill_signed(x, tg_tape_rng(tape), 0.5, 2);
  tu_assert_gradcheck(tape, apply_scalar, (void *)c, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* The gradient of Σ dy ⊙ y² (y the op's output, dy fixed and non-uniform)
 * with respect to input `which`, recorded so that gradcheck differentiates
 * it again. Squaring makes the gradient reaching the op depend on its
 * inputs, so a rule that treats its incoming gradient as a constant fails
 * here. (test_where.c does the same for where.) */
typedef struct second_ctx {
  const opcase *c;
  int which;
} second_ctx;

static tg_tensor *first_derivative(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const second_ctx *s = ctx;
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *y = s->c->op(tape, in[0], in[1]);
  tg_tensor *z = tg_mul(tape, y, y);
  tg_tensor *dy = z ? tg_empty(tape, z->shape, z->ndim) : NULL; /* dy: y's shape */
  for (int64_t i = 0; dy && i < dy->numel; i++)
    dy->data[i] = (tg_real)(0.5 + 0.125 * (double)(i % 7));
  tg_tensor *g[2] = {NULL, NULL};
  int st = tg_grad(tape, z, dy, 2, in, g, 1);
  tg_tape_set_grad(tape, was);
  return st == TG_OK ? g[s->which] : NULL;
}

/* Index: op * 4 + pattern * 2 + which, ops in the order below, patterns
 * 0 (equal shapes) and 3 (both inputs broadcast). */
START_TEST(test_second_derivatives) {
  static const opcase *const cases[] = {&c_add, &c_sub, &c_mul, &c_div, &c_pow, &c_maximum};
  static const int pats[] = {0, 3};
  const opcase *c = cases[_i / 4];
  int pat = pats[(_i / 2) % 2], which = _i % 2;
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 300 + (uint64_t)_i);
  tg_tensor *in[2];
  make_inputs(tape, &patterns[pat], c, 1, &in[0], &in[1]);
  second_ctx s = {c, which};
  tu_assert_gradcheck(tape, first_derivative, &s, 2, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_double_backward_of_mul) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){4}, 1, (double[]){-1.5, 0.5, 2, 3}));
  tg_tensor *y = tg_mul(tape, tg_mul(tape, x, x), x); /* x³ */
  tg_tensor *g = NULL, *gg = NULL;
  ck_assert_msg(tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 1) == TG_OK, "%s",
                tg_tape_error(tape));
  tu_assert_values(g, ((double[]){6.75, 0.75, 12, 27}), TU_VALUE_TOL); /* 3x² */
  ck_assert_msg(g->flags & TG_REQUIRES_GRAD, "create_graph: the gradient must be recorded");
  ck_assert_msg(tg_grad(tape, g, tu_ones_like(tape, g), 1, &x, &gg, 0) == TG_OK, "%s",
                tg_tape_error(tape));
  tu_assert_values(gg, ((double[]){-9, 3, 12, 18}), TU_VALUE_TOL); /* 6x */
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_maximum_ties_go_to_a) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 0, 5, -1}));
  tg_tensor *b = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 3, 2, 0, 5, -2}));
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 4, 5, 6});
  tg_tensor *y = tg_maximum(tape, a, b);
  tu_assert_values(y, ((double[]){1, 3, 3, 0, 5, -1}), 0);
  tg_tensor *xs[2] = {a, b}, *g[2];
  ck_assert_msg(tg_grad(tape, y, dy, 2, xs, g, 0) == TG_OK, "%s", tg_tape_error(tape));
  tu_assert_values(g[0], ((double[]){1, 0, 3, 4, 5, 6}), 0);
  tu_assert_values(g[1], ((double[]){0, 2, 0, 0, 0, 0}), 0);
  tg_tape_free(tape);
}
END_TEST

/* A NaN on either side of maximum comes out as NaN, as in NumPy. */
START_TEST(test_maximum_propagates_nan) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){NAN, 1, 2});
  tg_tensor *b = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){0, NAN, 1});
  tg_tensor *y = tg_maximum(tape, a, b);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  ck_assert_msg(isnan(tg_at(y, 0)) && isnan(tg_at(y, 1)), "got %g and %g", tg_at(y, 0),
                tg_at(y, 1));
  ck_assert_double_eq(tg_at(y, 2), 2);
  tg_tape_free(tape);
}
END_TEST

/* a (2, 3) against b (3,), with ties: b's gradient sums the rows it won. */
START_TEST(test_maximum_ties_broadcast) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 0, 5, 2}));
  tg_tensor *b =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, 4, 2}));
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 4, 5, 6});
  tg_tensor *xs[2] = {a, b}, *g[2];
  ck_assert_msg(tg_grad(tape, tg_maximum(tape, a, b), dy, 2, xs, g, 0) == TG_OK, "%s",
                tg_tape_error(tape));
  tu_assert_values(g[0], ((double[]){1, 0, 3, 0, 5, 6}), 0);
  tu_assert_values(g[1], ((double[]){4, 2, 0}), 0);
  tg_tape_free(tape);
}
END_TEST

/* Leaves that are owned tensors (parameters) get their gradient buffer
 * filled by tg_backward, broadcast or not. */
START_TEST(test_owned_parameter_gradients) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *w = tg_tensor_new((int64_t[]){3}, 1, 1, "w", NULL);
  ck_assert_ptr_nonnull(w);
  for (int i = 0; i < 3; i++)
    w->data[i] = (tg_real)(i + 1);
  tg_tensor *x = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){0.5, -2, 4});
  tg_tensor *wx = tg_mul(tape, w, x);
  ck_assert_int_eq(tg_backward(tape, wx, tu_ones_like(tape, wx)), TG_OK);
  tu_assert_values(w->grad, ((double[]){0.5, -2, 4}), 0);
  wx = tg_mul(tape, w, x);
  ck_assert_int_eq(tg_backward(tape, wx, tu_ones_like(tape, wx)), TG_OK); /* accumulates */
  tu_assert_values(w->grad, ((double[]){1, -4, 8}), 0);
  tg_tape_free(tape);
  tg_tensor_free(w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("binary");

  TCase *fwd = tcase_create("forward");
  tcase_add_loop_test(fwd, test_forward_vs_loop, 0, NPATTERNS);
  tcase_add_test(fwd, test_hand_values);
  tcase_add_test(fwd, test_comparison_masks_by_hand);
  tcase_add_test(fwd, test_pow_square_fast_path);
  tcase_add_test(fwd, test_maximum_propagates_nan);
  suite_add_tcase(s, fwd);

  TCase *grad = tcase_create("gradients");
  tcase_add_loop_test(grad, test_gradcheck_add, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_sub, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_mul, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_div, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_pow, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_maximum, 0, NPATTERNS);
  tcase_add_loop_test(grad, test_gradcheck_scalar_ops, 0,
                      (int)(sizeof scalar_cases / sizeof scalar_cases[0]));
  tcase_add_loop_test(grad, test_second_derivatives, 0, 24);
  tcase_add_test(grad, test_double_backward_of_mul);
  tcase_add_test(grad, test_maximum_ties_go_to_a);
  tcase_add_test(grad, test_maximum_ties_broadcast);
  tcase_add_test(grad, test_owned_parameter_gradients);
  suite_add_tcase(s, grad);
  return s;
}

TU_MAIN(make_suite)
