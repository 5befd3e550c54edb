/* test_binary.c — the broadcasting binary ops, where and the comparisons:
 * forward against plain loops (and hand values) at many broadcast
 * patterns, gradchecks of every differentiable op at those patterns,
 * second derivatives, the tie and mask rules, what is (not) recorded,
 * errors, and results that do not change with the thread count.
 *
 * Expected values never come from the op under test: the reference walks
 * the output by multi-index and maps it onto each input by NumPy's rule.
 * Gradients of broadcast inputs go through tg_sum_to (ops/reduce.c).
 */
#include <omp.h>

#include "testutil.h"

typedef tg_tensor *(*binary_fn)(tg_tape *, tg_tensor *, tg_tensor *);

/* Flat index into an input of shape xs (xnd dims) of output element i of
 * shape os (ond dims), by NumPy's broadcasting rule. */
static int64_t ref_index(const int64_t *os, int ond, const int64_t *xs, int xnd, int64_t i) {
  int64_t idx = 0, step = 1;
  for (int d = ond - 1; d >= 0; d--) {
    int64_t c = i % os[d];
    i /= os[d];
    int k = d - (ond - xnd);
    if (k >= 0) {
      if (xs[k] > 1)
        idx += c * step;
      step *= xs[k];
    }
  }
  return idx;
}

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
  ck_assert_int_eq(tg_grad(tape, y, NULL, 1, &x, &g, 0), TG_OK);
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
 * here. c == NULL means where(in[0], in[1], in[2]) with a constant cond. */
typedef struct second_ctx {
  const opcase *c;
  int which;
} second_ctx;

static tg_tensor *first_derivative(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const second_ctx *s = ctx;
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *y = s->c ? s->c->op(tape, in[0], in[1]) : tg_where(tape, in[0], in[1], in[2]);
  tg_tensor *z = tg_mul(tape, y, y);
  tg_tensor *dy = z ? tg_empty(tape, z->shape, z->ndim) : NULL; /* dy: y's shape */
  for (int64_t i = 0; dy && i < dy->numel; i++)
    dy->data[i] = (tg_real)(0.5 + 0.125 * (double)(i % 7));
  tg_tensor *g[2] = {NULL, NULL};
  int st = tg_grad(tape, z, dy, 2, s->c ? in : in + 1, g, 1);
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
  ck_assert_msg(tg_grad(tape, y, NULL, 1, &x, &g, 1) == TG_OK, "%s", tg_tape_error(tape));
  tu_assert_values(g, ((double[]){6.75, 0.75, 12, 27}), TU_VALUE_TOL); /* 3x² */
  ck_assert_msg(g->flags & TG_REQUIRES_GRAD, "create_graph: the gradient must be recorded");
  ck_assert_msg(tg_grad(tape, g, NULL, 1, &x, &gg, 0) == TG_OK, "%s", tg_tape_error(tape));
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
  ck_assert_int_eq(tg_backward(tape, tg_mul(tape, w, x), NULL), TG_OK);
  tu_assert_values(w->grad, ((double[]){0.5, -2, 4}), 0);
  ck_assert_int_eq(tg_backward(tape, tg_mul(tape, w, x), NULL), TG_OK); /* accumulates */
  tu_assert_values(w->grad, ((double[]){1, -4, 8}), 0);
  tg_tape_free(tape);
  tg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------------
 * where */

typedef struct where_pattern {
  int cn, an, bn, yn;
  int64_t c[6], a[6], b[6], y[6];
} where_pattern;

static const where_pattern where_patterns[] = {
    /* 0 */ {2, 2, 2, 2, {2, 3}, {2, 3}, {2, 3}, {2, 3}},
    /* 1 */ {2, 2, 0, 2, {2, 3}, {2, 3}, {0}, {2, 3}},
    /* 2 */ {2, 0, 2, 2, {2, 3}, {0}, {2, 3}, {2, 3}},
    /* 3 */ {3, 2, 1, 3, {2, 1, 4}, {3, 1}, {4}, {2, 3, 4}},
    /* 4 */ {2, 2, 3, 3, {3, 1}, {1, 4}, {2, 1, 1}, {2, 3, 4}},
    /* 5 */ {0, 2, 1, 2, {0}, {2, 3}, {3}, {2, 3}},
    /* 6 */ {6, 6, 1, 6, {1, 2, 1, 2, 1, 2}, {2, 1, 2, 1, 2, 1}, {2}, {2, 2, 2, 2, 2, 2}},
};
#define NWHERE (int)(sizeof where_patterns / sizeof where_patterns[0])

/* cond gets 0/1 values (and a 2.5 here and there: any non-zero is true). */
static void make_where_inputs(tg_tape *tape, const where_pattern *p, tg_tensor **c, tg_tensor **a,
                              tg_tensor **b) {
  *c = tg_empty(tape, p->c, p->cn);
  *a = tg_empty(tape, p->a, p->an);
  *b = tg_empty(tape, p->b, p->bn);
  ck_assert_msg(*c && *a && *b, "%s", tg_tape_error(tape));
  tg_rng *r = tg_tape_rng(tape);
  for (int64_t i = 0; i < (*c)->numel; i++) {
    uint64_t k = tg_rng_below(r, 3);
    (*c)->data[i] = (tg_real)(k == 0 ? 0 : k == 1 ? 1 : 2.5);
  }
  tu_fill_uniform(*a, r, -2, 2);
  tu_fill_uniform(*b, r, -2, 2);
}

START_TEST(test_where_forward_vs_loop) {
  const where_pattern *p = &where_patterns[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 400 + (uint64_t)_i);
  tg_tensor *c, *a, *b;
  make_where_inputs(tape, p, &c, &a, &b);
  tg_tensor *y = tg_where(tape, c, a, b);
  ck_assert_msg(y != NULL, "pattern %d: %s", _i, tg_tape_error(tape));
  ck_assert_int_eq(y->ndim, p->yn);
  for (int d = 0; d < p->yn; d++)
    ck_assert_int_eq(y->shape[d], p->y[d]);
  for (int64_t i = 0; i < y->numel; i++) {
    double cv = tg_at(c, ref_index(p->y, p->yn, p->c, p->cn, i));
    double av = tg_at(a, ref_index(p->y, p->yn, p->a, p->an, i));
    double bv = tg_at(b, ref_index(p->y, p->yn, p->b, p->bn, i));
    ck_assert_msg(tg_at(y, i) == (cv != 0 ? av : bv),
                  "pattern %d, element %lld: where(%g, %g, %g) gave %g", _i, (long long)i, cv, av,
                  bv, tg_at(y, i));
  }
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *apply_where(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_where(tape, in[0], in[1], in[2]);
}

START_TEST(test_where_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 500 + (uint64_t)_i);
  tg_tensor *in[3];
  make_where_inputs(tape, &where_patterns[_i], &in[0], &in[1], &in[2]);
  tg_requires_grad(tape, in[1]);
  tg_requires_grad(tape, in[2]);
  tu_assert_gradcheck(tape, apply_where, NULL, 3, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* Index: which (0: a, 1: b), at where pattern 3 (all three broadcast). */
START_TEST(test_where_second_derivatives) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 550 + (uint64_t)_i);
  tg_tensor *in[3];
  make_where_inputs(tape, &where_patterns[3], &in[0], &in[1], &in[2]);
  tg_requires_grad(tape, in[1]);
  tg_requires_grad(tape, in[2]);
  second_ctx s = {NULL, _i};
  tu_assert_gradcheck(tape, first_derivative, &s, 3, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_where_gradients_by_hand) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *c = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 0, 0, 0, 1, -3});
  tg_tensor *a = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){1, 2, 3, 4, 5, 6}));
  tg_tensor *b = tg_requires_grad(tape, tg_scalar(tape, -7));
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){10, 20, 30, 40, 50, 60});
  tg_tensor *y = tg_where(tape, c, a, b);
  tu_assert_values(y, ((double[]){1, -7, -7, -7, 5, 6}), 0);
  tg_tensor *xs[2] = {a, b}, *g[2];
  ck_assert_msg(tg_grad(tape, y, dy, 2, xs, g, 0) == TG_OK, "%s", tg_tape_error(tape));
  tu_assert_values(g[0], ((double[]){10, 0, 0, 0, 50, 60}), 0);
  ck_assert_int_eq(g[1]->ndim, 0);
  tu_assert_values(g[1], ((double[]){90}), 0);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_where_cond_requiring_grad_fails) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *c = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 0}));
  tg_tensor *a = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 2}));
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){3, 4});
  tg_tensor *y = tg_where(tape, c, a, b);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  ck_assert_int_ne(tg_backward(tape, y, NULL), TG_OK);
  tu_assert_error(tape, "where", "not differentiable", "(2,)");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Recording */

START_TEST(test_comparisons_are_constants) {
  static const binary_fn cmp[] = {tg_gt, tg_ge, tg_lt, tg_le, tg_eq};
  static const char *const names[] = {"gt", "ge", "lt", "le", "eq"};
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_requires_grad(
      tape, tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){-1, 0.5, 2, -3}));
  tg_tensor *zero = tg_scalar(tape, 0);
  for (int k = 0; k < 5; k++) {
    int64_t before = tg_tape_get_stats(tape).nodes;
    tg_tensor *m = cmp[k](tape, x, zero);
    ck_assert_msg(m != NULL, "%s: %s", names[k], tg_tape_error(tape));
    ck_assert_msg(tg_tape_get_stats(tape).nodes == before, "%s was recorded", names[k]);
    ck_assert_msg(!(m->flags & TG_REQUIRES_GRAD) && m->node == -1, "%s's mask must be a constant",
                  names[k]);
    for (int64_t i = 0; i < m->numel; i++)
      ck_assert_msg(tg_at(m, i) == 0 || tg_at(m, i) == 1, "%s: element %lld is %g", names[k],
                    (long long)i, tg_at(m, i));
  }
  /* No gradient flows through a mask: d/dx (x * (x > 0)) is the mask. */
  tg_tensor *y = tg_mul(tape, x, tg_gt(tape, x, zero));
  tg_tensor *g = NULL;
  ck_assert_msg(tg_grad(tape, y, NULL, 1, &x, &g, 0) == TG_OK, "%s", tg_tape_error(tape));
  tu_assert_values(g, ((double[]){0, 1, 1, 0}), 0);
  /* and a mask alone has nothing to differentiate */
  ck_assert_int_ne(tg_backward(tape, tg_ge(tape, x, zero), NULL), TG_OK);
  tu_assert_error(tape, "does not require grad");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_not_recorded_without_grad) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 2});
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){3, 4});
  tg_tensor *y = tg_where(tape, tg_gt(tape, a, b), tg_mul(tape, a, b), tg_sub(tape, a, b));
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  ck_assert(!(y->flags & TG_REQUIRES_GRAD));
  /* grad mode off: nothing recorded even when inputs require grad */
  tg_requires_grad(tape, a);
  tg_tape_set_grad(tape, 0);
  y = tg_pow(tape, a, b);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  ck_assert(!(y->flags & TG_REQUIRES_GRAD));
  tg_tape_set_grad(tape, 1);
  y = tg_pow(tape, a, b);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 1);
  ck_assert(y->flags & TG_REQUIRES_GRAD);
  tg_tape_free(tape);
}
END_TEST

/* Only the inputs that need a gradient get one (and b's log(a) with a < 0
 * is never taken when b needs none). */
START_TEST(test_pow_only_needed_gradients) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){-2, 3}));
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){3, 2});
  tg_tape_set_anomaly(tape, 1); /* a NaN from log(-2) would fail the tape */
  tg_tensor *g = NULL;
  ck_assert_msg(tg_grad(tape, tg_pow(tape, a, b), NULL, 1, &a, &g, 0) == TG_OK, "%s",
                tg_tape_error(tape));
  tu_assert_values(g, ((double[]){12, 6}), TU_VALUE_TOL); /* b a^(b-1) */
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors */

START_TEST(test_error_shapes_do_not_broadcast) {
  static const binary_fn fns[] = {tg_add, tg_sub, tg_mul, tg_div, tg_pow, tg_maximum,
                                  tg_gt,  tg_ge,  tg_lt,  tg_le,  tg_eq};
  static const char *const names[] = {"add (op #", "sub (op #",     "mul (op #", "div (op #",
                                      "pow (op #", "maximum (op #", "gt (op #",  "ge (op #",
                                      "lt (op #",  "le (op #",      "eq (op #"};
  for (int k = 0; k < 11; k++) {
    tg_tape *tape = tg_tape_new();
    tg_tensor *a = tg_zeros(tape, (int64_t[]){2, 3}, 2);
    tg_tensor *b = tg_zeros(tape, (int64_t[]){4}, 1);
    ck_assert_ptr_null(fns[k](tape, a, b));
    tu_assert_error(tape, names[k], "shapes (2, 3) and (4,) do not broadcast");
    ck_assert_int_eq(tg_tape_status(tape), TG_ERR_SHAPE);
    tg_tape_free(tape);
  }
  tg_tape *tape = tg_tape_new();
  ck_assert_ptr_null(
      tg_mul(tape, tg_zeros(tape, (int64_t[]){5, 2, 3}, 3), tg_zeros(tape, (int64_t[]){3, 2}, 2)));
  tu_assert_error(tape, "mul (op #0)", "(5, 2, 3)", "(3, 2)", "do not broadcast");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_where_shapes) {
  tg_tape *tape = tg_tape_new();
  ck_assert_ptr_null(tg_where(tape, tg_zeros(tape, (int64_t[]){2, 3}, 2),
                              tg_zeros(tape, (int64_t[]){3}, 1),
                              tg_zeros(tape, (int64_t[]){2}, 1)));
  tu_assert_error(tape, "where (op #", "(2, 3)", "(3,)", "(2,)", "do not broadcast");
  tg_tape_free(tape);
}
END_TEST

/* Inputs that each fit can broadcast to a result that cannot exist: 2^63
 * elements. The inputs are never read (tg_empty leaves them untouched). */
START_TEST(test_error_result_too_large) {
  tg_tape *tape = tg_tape_new();
  int64_t k = (int64_t)1 << 21;
  tg_tensor *c = tg_empty(tape, (int64_t[]){k, 1, 1}, 3);
  tg_tensor *a = tg_empty(tape, (int64_t[]){1, k, 1}, 3);
  tg_tensor *b = tg_empty(tape, (int64_t[]){1, 1, k}, 3);
  ck_assert_msg(c && a && b, "%s", tg_tape_error(tape));
  ck_assert_ptr_null(tg_where(tape, c, a, b));
  tu_assert_error(tape, "where (op #", "(2097152, 2097152, 2097152)", "too many elements");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_null_inputs) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_null(tg_add(tape, NULL, a));
  tu_assert_error(tape, "add (op #", "input 0 is NULL");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_null(tg_div(tape, a, NULL));
  tu_assert_error(tape, "div (op #", "input 1 is NULL");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2}, 1);
  ck_assert_ptr_null(tg_where(tape, a, a, NULL));
  tu_assert_error(tape, "where (op #", "input 2 is NULL");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_pow_scalar(tape, NULL, 2));
  tu_assert_error(tape, "pow (op #", "input 0 is NULL");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_lt(tape, NULL, NULL));
  tu_assert_error(tape, "lt (op #", "input 0 is NULL");
  /* no tape: NULL, no crash */
  ck_assert_ptr_null(tg_add(NULL, a, a));
  ck_assert_ptr_null(tg_mul_scalar(NULL, a, 2));
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_tape_already_failed) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2}, 1);
  tg_tape_fail(tape, TG_ERR_ARG, "the first failure");
  ck_assert_ptr_null(tg_add(tape, a, a));
  ck_assert_ptr_null(tg_where(tape, a, a, a));
  ck_assert_ptr_null(tg_eq(tape, a, a));
  ck_assert_ptr_null(tg_add_scalar(tape, a, 1));
  ck_assert_ptr_null(tg_mul(tape, a, tg_zeros(tape, (int64_t[]){3}, 1)));
  ck_assert_str_eq(tg_tape_error(tape), "the first failure");
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_ARG);
  tg_tape_free(tape);
}
END_TEST

/* An arena tensor of an earlier step (its header is intact: nothing was
 * allocated since the reset) or of another tape is refused, by name. */
START_TEST(test_error_foreign_inputs) {
  tg_tape *tape = tg_tape_new(), *other = tg_tape_new();
  tg_tensor *w = tg_tensor_new((int64_t[]){2}, 1, 0, "w", NULL);
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2}, 1);
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_sub(tape, w, a));
  tu_assert_error(tape, "sub (op #", "input 1 (2,)", "earlier step");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_maximum(tape, tg_zeros(other, (int64_t[]){3}, 1), w));
  tu_assert_error(tape, "maximum (op #", "input 0 (3,)", "another tape");
  tg_tensor_free(w);
  tg_tape_free(other);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_anomaly_names_op) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_anomaly(tape, 1);
  tg_tensor *a = tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 0});
  ck_assert_ptr_null(tg_div(tape, a, tg_scalar(tape, 0)));
  tu_assert_error(tape, "div (op #", "NaN or Inf", "(2,)");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_broadcast_shape) {
  tg_tape *tape = tg_tape_new();
  int64_t shape[TG_MAX_DIMS];
  int nd = -1;
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2, 1, 4}, 3);
  tg_tensor *b = tg_zeros(tape, (int64_t[]){3, 1}, 2);
  ck_assert_int_eq(tg_broadcast_shape(tape, "thing", a, b, shape, &nd), TG_OK);
  ck_assert_int_eq(nd, 3);
  ck_assert(shape[0] == 2 && shape[1] == 3 && shape[2] == 4);
  ck_assert_int_eq(
      tg_broadcast_shape(tape, "thing", tg_scalar(tape, 1), tg_scalar(tape, 2), shape, &nd), TG_OK);
  ck_assert_int_eq(nd, 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tensor *c = tg_zeros(tape, (int64_t[]){4, 3}, 2);
  ck_assert_int_eq(tg_broadcast_shape(tape, "thing", a, c, shape, &nd), TG_ERR_SHAPE);
  tu_assert_error(tape, "thing (op #0)", "shapes (2, 1, 4) and (4, 3) do not broadcast");
  tg_tape_reset(tape);
  ck_assert_int_eq(tg_broadcast_shape(tape, "thing", NULL, NULL, shape, &nd), TG_ERR_NULL);
  tu_assert_error(tape, "thing", "input 0 is NULL");
  ck_assert_int_eq(tg_broadcast_shape(NULL, "thing", NULL, NULL, shape, &nd), TG_ERR_NULL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Threads: tensors above TG_PAR_MIN, one thread against two, bit for bit,
 * and both against the plain loop (the chunked path starts mid-row). */

typedef struct big_case {
  int an, bn;
  int64_t a[6], b[6];
} big_case;

static const big_case big_cases[] = {
    {2, 2, {300, 400}, {300, 400}},              /* equal shapes */
    {2, 1, {400, 300}, {300}},                   /* bias rows */
    {0, 2, {0}, {400, 300}},                     /* scalar */
    {3, 3, {60, 1, 2000}, {1, 2, 2000}},         /* general, long rows */
    {5, 5, {12, 1, 40, 1, 3}, {1, 20, 1, 7, 1}}, /* general, short rows */
};

START_TEST(test_threads_bit_identical) {
  const big_case *bc = &big_cases[_i];
  int keep = omp_get_max_threads();
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 600);
  tg_tensor *a = tg_empty(tape, bc->a, bc->an), *b = tg_empty(tape, bc->b, bc->bn);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  tu_fill_uniform(a, tg_tape_rng(tape), 0.5, 2);
  tu_fill_uniform(b, tg_tape_rng(tape), 0.5, 2);
  static const binary_fn fns[] = {tg_add, tg_mul, tg_div, tg_pow, tg_gt};
  static const char *const names[] = {"add", "mul", "div", "pow", "gt"};
  for (int k = 0; k < 5; k++) {
    omp_set_num_threads(1);
    tg_tensor *y1 = fns[k](tape, a, b);
    omp_set_num_threads(2);
    tg_tensor *y2 = fns[k](tape, a, b);
    ck_assert_msg(y1 && y2, "%s: %s", names[k], tg_tape_error(tape));
    ck_assert_int_ge(y1->numel, 100000);
    ck_assert_msg(memcmp(y1->data, y2->data, (size_t)y1->numel * sizeof(tg_real)) == 0,
                  "%s, case %d: 1 and 2 threads differ", names[k], _i);
    for (int64_t i = 0; i < y1->numel; i++) {
      double u = tg_at(a, ref_index(y1->shape, y1->ndim, bc->a, bc->an, i));
      double v = tg_at(b, ref_index(y1->shape, y1->ndim, bc->b, bc->bn, i));
      double want = k == 0 ? u + v : k == 1 ? u * v : k == 2 ? u / v : k == 3 ? pow(u, v) : u > v;
      ck_assert_msg(tu_rel(tg_at(y2, i), want) <= TU_VALUE_TOL,
                    "%s, case %d, element %lld: got %.17g, want %.17g", names[k], _i, (long long)i,
                    tg_at(y2, i), want);
    }
  }
  /* where, three inputs, and mul's gradient (no reduction at equal shapes) */
  tg_tensor *c = tg_gt(tape, a, tg_scalar(tape, 1.2));
  omp_set_num_threads(1);
  tg_tensor *w1 = tg_where(tape, c, a, b);
  omp_set_num_threads(2);
  tg_tensor *w2 = tg_where(tape, c, a, b);
  ck_assert_msg(w1 && w2, "%s", tg_tape_error(tape));
  ck_assert(memcmp(w1->data, w2->data, (size_t)w1->numel * sizeof(tg_real)) == 0);
  if (_i == 0) {
    tg_requires_grad(tape, a);
    tg_tensor *g[2];
    omp_set_num_threads(1);
    ck_assert_int_eq(tg_grad(tape, tg_mul(tape, a, b), NULL, 1, &a, &g[0], 0), TG_OK);
    omp_set_num_threads(2);
    ck_assert_int_eq(tg_grad(tape, tg_mul(tape, a, b), NULL, 1, &a, &g[1], 0), TG_OK);
    ck_assert(memcmp(g[0]->data, g[1]->data, (size_t)a->numel * sizeof(tg_real)) == 0);
    ck_assert(memcmp(g[0]->data, b->data, (size_t)a->numel * sizeof(tg_real)) == 0);
  }
  omp_set_num_threads(keep);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *make_suite(void) {
  Suite *s = suite_create("binary");

  TCase *fwd = tcase_create("forward");
  tcase_add_loop_test(fwd, test_forward_vs_loop, 0, NPATTERNS);
  tcase_add_test(fwd, test_hand_values);
  tcase_add_test(fwd, test_comparison_masks_by_hand);
  tcase_add_test(fwd, test_pow_square_fast_path);
  tcase_add_test(fwd, test_maximum_propagates_nan);
  tcase_add_loop_test(fwd, test_where_forward_vs_loop, 0, NWHERE);
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
  tcase_add_loop_test(grad, test_where_gradcheck, 0, NWHERE);
  tcase_add_loop_test(grad, test_second_derivatives, 0, 24);
  tcase_add_loop_test(grad, test_where_second_derivatives, 0, 2);
  tcase_add_test(grad, test_double_backward_of_mul);
  tcase_add_test(grad, test_maximum_ties_go_to_a);
  tcase_add_test(grad, test_maximum_ties_broadcast);
  tcase_add_test(grad, test_owned_parameter_gradients);
  tcase_add_test(grad, test_where_gradients_by_hand);
  tcase_add_test(grad, test_where_cond_requiring_grad_fails);
  tcase_add_test(grad, test_pow_only_needed_gradients);
  suite_add_tcase(s, grad);

  TCase *rec = tcase_create("recording");
  tcase_add_test(rec, test_comparisons_are_constants);
  tcase_add_test(rec, test_not_recorded_without_grad);
  suite_add_tcase(s, rec);

  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_error_shapes_do_not_broadcast);
  tcase_add_test(err, test_error_where_shapes);
  tcase_add_test(err, test_error_result_too_large);
  tcase_add_test(err, test_error_null_inputs);
  tcase_add_test(err, test_error_tape_already_failed);
  tcase_add_test(err, test_error_foreign_inputs);
  tcase_add_test(err, test_error_anomaly_names_op);
  tcase_add_test(err, test_broadcast_shape);
  suite_add_tcase(s, err);

  TCase *thr = tcase_create("threads");
  tcase_add_loop_test(thr, test_threads_bit_identical, 0,
                      (int)(sizeof big_cases / sizeof big_cases[0]));
  suite_add_tcase(s, thr);
  return s;
}

TU_MAIN(make_suite)
