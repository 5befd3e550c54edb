/* test_newops.c — the ops added for issue 16: concat, stack, index_select
 * and index_add (ops/index.c); erf and softplus (ops/special.c); minimum,
 * clamp, leaky_relu, elu, gelu, gelu_tanh, logsumexp and var
 * (ops/compose.c); ones, arange, rand, randn (ops/create.c); batched
 * and 1-D matmul, bmm (ops/matmul.c). Forward values against plain loops or
 * hand values, gradchecks (strict in the double build), second derivatives, negative axes and odd
 * shapes. NULL inputs and bad shapes are in test_hostile_ops.c's tables.
 */
#include "testutil.h"

/* A leaf requiring grad, values from a seeded generator in [-2, 2). */
static tg_tensor *leaf(tg_tape *tape, const int64_t *shape, int ndim) {
  return tu_leaf(tape, shape, ndim, -2, 2);
}

/* Element of t at multi-index ix (t's ndim entries). */
static double at(const tg_tensor *t, const int64_t *ix) {
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++)
    off = off * t->shape[d] + ix[d];
  return tg_at(t, off);
}

/* Multi-index of flat element k of shape (nd dims). */
static void unflat(int64_t k, const int64_t *shape, int nd, int64_t *ix) {
  for (int d = nd - 1; d >= 0; d--) {
    ix[d] = k % shape[d];
    k /= shape[d];
  }
}

/* Gradcheck fn: runs the op under test (ctx) on the inputs. */
typedef tg_tensor *(*op_fn)(tg_tape *, tg_tensor *const *);
static tg_tensor *run(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return ((op_fn)ctx)(tape, in);
}

/* First derivative of ctx's op in every input, summed and flattened into
 * one tensor, so that gradcheck of it checks second derivatives. */
typedef struct d1_ctx {
  op_fn f;
  int n;
} d1_ctx;
static tg_tensor *first_derivative(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const d1_ctx *c = ctx;
  tg_tensor *g[4] = {0};
  int was = tg_tape_set_grad(tape, 1);
  /* y^2 so the first derivative depends on the inputs even for linear ops */
  tg_tensor *y = c->f(tape, in);
  tg_tensor *seed_y = tg_mul(tape, y, y);
  int st = tg_grad(tape, seed_y, tu_ones_like(tape, seed_y), c->n, in, g, 1);
  tg_tape_set_grad(tape, was);
  if (st != TG_OK)
    return NULL;
  tg_tensor *flat[4];
  for (int i = 0; i < c->n; i++)
    flat[i] = tg_reshape(tape, g[i], (int64_t[]){-1}, 1);
  return tg_concat(tape, flat, c->n, 0);
}

/* ------------------------------------------------------------------------
 * concat and stack */

START_TEST(test_concat_hand) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2, 1}, 2, (double[]){5, 6});
  tg_tensor *c = tg_from_values(tape, (int64_t[]){1, 2}, 2, (double[]){7, 8});
  tg_tensor *y = tg_concat(tape, (tg_tensor *[]){a, b}, 2, -1); /* (2, 3) */
  ck_assert_int_eq(y->shape[0], 2);
  ck_assert_int_eq(y->shape[1], 3);
  tu_assert_values(y, ((double[]){1, 2, 5, 3, 4, 6}), 0);
  y = tg_concat(tape, (tg_tensor *[]){a, c, a}, 3, 0); /* (5, 2) */
  ck_assert_int_eq(y->shape[0], 5);
  tu_assert_values(y, ((double[]){1, 2, 3, 4, 7, 8, 1, 2, 3, 4}), 0);
  ck_assert_ptr_eq(tg_concat(tape, &a, 1, 1), a);
  y = tg_stack(tape, (tg_tensor *[]){a, a}, 2, -1); /* (2, 2, 2) */
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[2], 2);
  tu_assert_values(y, ((double[]){1, 1, 2, 2, 3, 3, 4, 4}), 0);
  y = tg_stack(tape, (tg_tensor *[]){tg_scalar(tape, 3), tg_scalar(tape, 4)}, 2, 0); /* (2,) */
  ck_assert_int_eq(y->ndim, 1);
  tu_assert_values(y, ((double[]){3, 4}), 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

/* n inputs (more than a node holds: a tree of concats) of odd lengths
 * along every axis of a 3-D shape, against a loop over y's elements. */
START_TEST(test_concat_many_every_axis) {
  const int n = 7;
  for (int axis = -3; axis < 3; axis++) {
    tg_tape *tape = tg_tape_new();
    tg_tape_seed(tape, 40 + axis);
    const int ax = axis < 0 ? axis + 3 : axis;
    tg_tensor *xs[7];
    int64_t start[8] = {0};
    for (int i = 0; i < n; i++) {
      int64_t s[3] = {2, 3, 5};
      s[ax] = 1 + i % 3;
      xs[i] = leaf(tape, s, 3);
      start[i + 1] = start[i] + s[ax];
    }
    tg_tensor *y = tg_concat(tape, xs, n, axis);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    const int64_t base[3] = {2, 3, 5};
    for (int d = 0; d < 3; d++)
      ck_assert_int_eq(y->shape[d], d == ax ? start[n] : base[d]);
    for (int64_t k = 0; k < y->numel; k++) {
      int64_t ix[3];
      unflat(k, y->shape, 3, ix);
      int i = 0;
      while (ix[ax] >= start[i + 1])
        i++;
      ix[ax] -= start[i];
      ck_assert_msg(tg_at(y, k) == at(xs[i], ix), "axis %d element %lld", axis, (long long)k);
    }
    /* stack of the same count along each axis of the 4-D result */
    for (int i = 0; i < n; i++)
      xs[i] = leaf(tape, (int64_t[]){2, 3, 5}, 3);
    for (int sa = -4; sa < 4; sa++) {
      const int sx = sa < 0 ? sa + 4 : sa;
      y = tg_stack(tape, xs, n, sa);
      ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
      ck_assert_int_eq(y->ndim, 4);
      ck_assert_int_eq(y->shape[sx], n);
      for (int64_t k = 0; k < y->numel; k++) {
        int64_t ix[4], xi[3];
        unflat(k, y->shape, 4, ix);
        for (int d = 0, e = 0; d < 4; d++)
          if (d != sx)
            xi[e++] = ix[d];
        ck_assert(tg_at(y, k) == at(xs[ix[sx]], xi));
      }
    }
    tg_tape_free(tape);
  }
}
END_TEST

static tg_tensor *concat5_axis1(tg_tape *tape, tg_tensor *const *in) {
  return tg_concat(tape, in, 5, 1);
}
static tg_tensor *stack4_neg1(tg_tape *tape, tg_tensor *const *in) {
  return tg_stack(tape, in, 4, -1);
}
static tg_tensor *concat2_neg2(tg_tape *tape, tg_tensor *const *in) {
  return tg_concat(tape, in, 2, -2);
}

START_TEST(test_concat_stack_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 3);
  tg_tensor *in[5];
  for (int i = 0; i < 5; i++)
    in[i] = leaf(tape, (int64_t[]){3, 1 + i, 2}, 3);
  in[2] = tg_full(tape, (int64_t[]){3, 3, 2}, 3, 0.5); /* one input without gradient */
  tu_assert_gradcheck(tape, run, (void *)concat5_axis1, 5, in, TU_GRAD_TOL);
  tg_tensor *st[4];
  for (int i = 0; i < 4; i++)
    st[i] = leaf(tape, (int64_t[]){2, 3}, 2);
  tu_assert_gradcheck(tape, run, (void *)stack4_neg1, 4, st, TU_GRAD_TOL);
  tg_tensor *c2[2] = {leaf(tape, (int64_t[]){2, 3}, 2), leaf(tape, (int64_t[]){4, 3}, 2)};
  d1_ctx d = {concat2_neg2, 2};
  tu_assert_gradcheck(tape, first_derivative, &d, 2, c2, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_concat_large_parallel) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = leaf(tape, (int64_t[]){300, 200}, 2), *b = leaf(tape, (int64_t[]){300, 301}, 2);
  tg_tensor *y = tg_concat(tape, (tg_tensor *[]){a, b}, 2, 1);
  ck_assert_ptr_nonnull(y);
  for (int64_t r = 0; r < 300; r += 7)
    for (int64_t c = 0; c < 501; c += 5)
      ck_assert(tg_at(y, r * 501 + c) ==
                (c < 200 ? tg_at(a, r * 200 + c) : tg_at(b, r * 301 + c - 200)));
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * index_select and index_add */

/* The index ixx into the 4-d x that element k of y = index_select(x,
 * ax, idx) reads, idx being (2, 3). */
static void source_of(const tg_tensor *y, int64_t k, int ax, const tg_tensor *idx, int64_t *ixx) {
  int64_t iy[5];
  unflat(k, y->shape, 5, iy);
  for (int d = 0; d < ax; d++)
    ixx[d] = iy[d];
  ixx[ax] = (int64_t)idx->data[iy[ax] * 3 + iy[ax + 1]];
  for (int d = ax + 1; d < 4; d++)
    ixx[d] = iy[d + 1];
}

START_TEST(test_index_select_hand) {
  tg_tape *tape = tg_tape_new();
  /* The embedding lookup: W (4, 2), ids (2, 3) -> (2, 3, 2). */
  tg_tensor *W =
      tg_from_values(tape, (int64_t[]){4, 2}, 2, (double[]){0, 1, 10, 11, 20, 21, 30, 31});
  tg_tensor *ids = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){3, 0, 3, 1, 1, 2});
  tg_tensor *y = tg_index_select(tape, W, 0, ids);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[0], 2);
  ck_assert_int_eq(y->shape[1], 3);
  ck_assert_int_eq(y->shape[2], 2);
  tu_assert_values(y, ((double[]){30, 31, 0, 1, 30, 31, 10, 11, 10, 11, 20, 21}), 0);
  /* Columns (axis -1), a scalar index drops the axis. */
  y = tg_index_select(tape, W, -1, tg_scalar(tape, 1));
  ck_assert_int_eq(y->ndim, 1);
  tu_assert_values(y, ((double[]){1, 11, 21, 31}), 0);
  /* index_add: repeated indices sum. */
  tg_tensor *src = tg_from_values(tape, (int64_t[]){3, 2}, 2, (double[]){1, 2, 3, 4, 5, 6});
  tg_tensor *ix = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){2, 0, 2});
  y = tg_index_add(tape, src, 0, ix, 4);
  ck_assert_int_eq(y->shape[0], 4);
  tu_assert_values(y, ((double[]){3, 4, 0, 0, 6, 8, 0, 0}), 0);
  /* The embedding gradient: dW = index_add(dy, 0, ids, V). */
  tg_tensor *Wg = tg_requires_grad(tape, tg_full(tape, (int64_t[]){4, 2}, 2, 0));
  tg_tensor *seed_y = tg_index_select(tape, Wg, 0, ids);
  ck_assert_int_eq(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  tu_assert_values(Wg->grad, ((double[]){1, 1, 2, 2, 1, 1, 2, 2}), 0);
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

/* Every axis of a 4-D x, a 2-D index with repeats, against a loop; and
 * index_add against a loop of adds. */
START_TEST(test_index_select_loop) {
  const int64_t xs[4] = {2, 5, 3, 4};
  for (int axis = -4; axis < 4; axis++) {
    tg_tape *tape = tg_tape_new();
    tg_tape_seed(tape, 60 + axis);
    const int ax = axis < 0 ? axis + 4 : axis;
    tg_tensor *x = leaf(tape, xs, 4);
    tg_tensor *idx = tg_empty(tape, (int64_t[]){2, 3}, 2);
    for (int j = 0; j < 6; j++)
      idx->data[j] = (tg_real)tg_rng_below(tg_tape_rng(tape), (uint64_t)xs[ax]);
    tg_tensor *y = tg_index_select(tape, x, axis, idx);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    ck_assert_int_eq(y->ndim, 5);
    for (int64_t k = 0; k < y->numel; k++) {
      int64_t ixx[4];
      source_of(y, k, ax, idx, ixx);
      ck_assert(tg_at(y, k) == at(x, ixx));
    }
    /* index_add of y back: a loop of adds */
    tg_tensor *z = tg_index_add(tape, y, axis, idx, xs[ax]);
    ck_assert_msg(z != NULL, "%s", tg_tape_error(tape));
    double want[120] = {0};
    for (int64_t k = 0; k < y->numel; k++) {
      int64_t ixx[4];
      source_of(y, k, ax, idx, ixx);
      int64_t off = 0;
      for (int d = 0; d < 4; d++)
        off = off * xs[d] + ixx[d];
      want[off] += tg_at(y, k);
    }
    tu_assert_values(z, want, TU_VALUE_TOL);
    tg_tape_free(tape);
  }
}
END_TEST

static tg_tensor *g_idx; /* the index of the gradchecks below (a constant) */
static tg_tensor *select_axis1(tg_tape *tape, tg_tensor *const *in) {
  return tg_index_select(tape, in[0], 1, g_idx);
}
static tg_tensor *add_axis_neg2(tg_tape *tape, tg_tensor *const *in) {
  return tg_index_add(tape, in[0], -2, g_idx, 4);
}

START_TEST(test_index_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 9);
  g_idx = tg_from_values(tape, (int64_t[]){2, 3}, 2, (double[]){3, 0, 3, 2, 2, 1});
  tg_tensor *x = leaf(tape, (int64_t[]){2, 4, 3}, 3);
  tu_assert_gradcheck(tape, run, (void *)select_axis1, 1, &x, TU_GRAD_TOL);
  d1_ctx d = {select_axis1, 1};
  tu_assert_gradcheck(tape, first_derivative, &d, 1, &x, TU_GRAD_TOL);
  tg_tensor *s = leaf(tape, (int64_t[]){2, 3, 5}, 3); /* result (4, 5) */
  tu_assert_gradcheck(tape, run, (void *)add_axis_neg2, 1, &s, TU_GRAD_TOL);
  d = (d1_ctx){add_axis_neg2, 1};
  tu_assert_gradcheck(tape, first_derivative, &d, 1, &s, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_index_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = leaf(tape, (int64_t[]){5, 2}, 2);
  ck_assert_ptr_null(
      tg_index_select(tape, W, 0, tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1, 5, 0})));
  tu_assert_error(tape, "index_select", "index 5", "position 1", "[0, 5)");
  tg_tape_reset(tape);
  W = leaf(tape, (int64_t[]){5, 2}, 2);
  ck_assert_ptr_null(tg_index_select(tape, W, 0, tg_scalar(tape, -1)));
  tu_assert_error(tape, "index_select", "index -1", "[0, 5)");
  tg_tape_reset(tape);
  W = leaf(tape, (int64_t[]){5, 2}, 2);
  ck_assert_ptr_null(tg_index_select(tape, W, 1, tg_scalar(tape, 0.5)));
  tu_assert_error(tape, "index_select", "0.5", "not an integer");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_index_add(tape, leaf(tape, (int64_t[]){3, 2}, 2), 0,
                                  tg_from_values(tape, (int64_t[]){3}, 1, (double[]){0, 1, 9}), 4));
  tu_assert_error(tape, "index_add", "index 9", "[0, 4)");
  tg_tape_reset(tape);
  /* idx is a constant: backward refuses one that requires grad */
  W = leaf(tape, (int64_t[]){5, 2}, 2);
  tg_tensor *idx = tg_requires_grad(tape, tg_full(tape, (int64_t[]){2}, 1, 1));
  tg_tensor *seed_y = tg_index_select(tape, W, 0, idx);
  ck_assert_int_ne(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  tu_assert_error(tape, "index_select", "not differentiable");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_index_large_parallel) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = leaf(tape, (int64_t[]){1000, 64}, 2);
  tg_tensor *ids = tg_empty(tape, (int64_t[]){4000}, 1);
  for (int j = 0; j < 4000; j++)
    ids->data[j] = (tg_real)((j * 7919) % 1000);
  tg_tensor *y = tg_index_select(tape, W, 0, ids); /* (4000, 64) */
  ck_assert_ptr_nonnull(y);
  for (int j = 0; j < 4000; j += 13)
    for (int c = 0; c < 64; c += 9)
      ck_assert(tg_at(y, j * 64 + c) == tg_at(W, ((j * 7919) % 1000) * 64 + c));
  /* columns selected in a (pre > 1) layout: parallel over slabs */
  tg_tensor *z = tg_index_add(tape, tg_reshape(tape, y, (int64_t[]){4000, 64}, 2), 1,
                              tg_full(tape, (int64_t[]){64}, 1, 3), 5);
  ck_assert_ptr_nonnull(z);
  for (int j = 0; j < 4000; j += 11) {
    double s = 0;
    for (int c = 0; c < 64; c++)
      s += tg_at(y, j * 64 + c);
    ck_assert(tu_rel(tg_at(z, j * 5 + 3), s) <= TU_VALUE_TOL * 64);
    ck_assert(tg_at(z, j * 5 + 1) == 0);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Elementwise: erf, softplus (ops/special.c); leaky_relu, elu, gelu,
 * gelu_tanh (ops/compose.c) against libm in double */

static tg_tensor *leaky_01(tg_tape *t, tg_tensor *x) { return tg_leaky_relu(t, x, 0.1); }
static tg_tensor *elu_15(tg_tape *t, tg_tensor *x) { return tg_elu(t, x, 1.5); }
static tg_tensor *clamp_pm(tg_tape *t, tg_tensor *x) { return tg_clamp(t, x, -0.5, 0.7); }
static double softplus_ref(double x) { return x > 30 ? x + exp(-x) : log1p(exp(x)); }
static double leaky_ref(double x) { return x > 0 ? x : 0.1 * x; }
static double elu_ref(double x) { return x > 0 ? x : 1.5 * expm1(x); }
static double gelu_ref(double x) { return 0.5 * x * erfc(-x / sqrt(2)); }
static double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}
static double clamp_ref(double x) { return x < -0.5 ? -0.5 : x > 0.7 ? 0.7 : x; }

typedef struct ucase {
  const char *name;
  tg_tensor *(*op)(tg_tape *, tg_tensor *);
  double (*ref)(double);
  int second; /* 1: f'' != 0, check second derivatives */
} ucase;
static const ucase ucases[] = {
    {"erf", tg_erf, erf, 1},
    {"softplus", tg_softplus, softplus_ref, 1},
    {"leaky_relu", leaky_01, leaky_ref, 0},
    {"elu", elu_15, elu_ref, 1},
    {"gelu", tg_gelu, gelu_ref, 1},
    {"gelu_tanh", tg_gelu_tanh, gelu_tanh_ref, 1},
    {"clamp", clamp_pm, clamp_ref, 0},
};
#define NU (int)(sizeof ucases / sizeof ucases[0])

START_TEST(test_unary_forward) {
  const ucase *c = &ucases[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 21);
  tg_tensor *x = tg_empty(tape, (int64_t[]){3, 1, 7}, 3);
  tu_fill_uniform(x, tg_tape_rng(tape), -4, 4);
  x->data[0] = 0; /* the kink of the piecewise ones */
  tg_tensor *y = c->op(tape, x);
  ck_assert_msg(y != NULL, "%s: %s", c->name, tg_tape_error(tape));
  ck_assert_int_eq(y->numel, 21);
  double want[21];
  for (int i = 0; i < 21; i++)
    want[i] = c->ref(tg_at(x, i));
  tu_assert_values(y, want, sizeof(tg_real) == 8 ? 1e-12 : 2e-6);
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *run_unary(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return ((const ucase *)ctx)->op(tape, in[0]);
}
static tg_tensor *d1_unary(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  tg_tensor *x = in[0], *g = NULL;
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *seed_y = ((const ucase *)ctx)->op(tape, x);
  int st = tg_grad(tape, seed_y, tu_ones_like(tape, seed_y), 1, &x, &g, 1);
  tg_tape_set_grad(tape, was);
  return st == TG_OK ? g : NULL;
}

START_TEST(test_unary_gradcheck) {
  const ucase *c = &ucases[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 23);
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){4, 5}, 2));
  tu_fill_signed(x, tg_tape_rng(tape), 0.1, 3); /* away from 0, the kink */
  for (int i = 0; i < 20; i++)                  /* and from clamp's ends */
    if (fabs(tg_at(x, i) + 0.5) < 0.05 || fabs(tg_at(x, i) - 0.7) < 0.05)
      x->data[i] += (tg_real)0.2;
  tu_assert_gradcheck(tape, run_unary, (void *)c, 1, &x, TU_GRAD_TOL);
  if (c->second)
    tu_assert_gradcheck(tape, d1_unary, (void *)c, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* softplus where log(1 + e^x) fails: relative accuracy for very negative
 * x (no floor), no overflow for large x, and its gradient sigmoid(x). */
START_TEST(test_softplus_extremes) {
  tg_tape *tape = tg_tape_new();
  const double xs[] = {-80, -30, -1e-3, 0, 1e-3, 30, 100, 1e4};
  tg_tensor *x = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){8}, 1, xs));
  tg_tensor *y = tg_softplus(tape, x);
  tg_tensor *seed_y = y;
  ck_assert_int_eq(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  for (int i = 0; i < 8; i++) {
    double want = softplus_ref(xs[i]), dwant = 1 / (1 + exp(-xs[i]));
    ck_assert_msg(fabs(tg_at(y, i) - want) <= 1e-6 * fabs(want), "softplus(%g) = %.17g, want %.17g",
                  xs[i], tg_at(y, i), want);
    ck_assert_msg(fabs(tg_at(x->grad, i) - dwant) <= 1e-6 * fabs(dwant),
                  "softplus'(%g) = %.17g, want %.17g", xs[i], tg_at(x->grad, i), dwant);
  }
  /* elu and gelu do not overflow into NaN gradients for large x */
  tg_tensor *z =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){200, -200}));
  seed_y = tg_elu(tape, z, 1);
  ck_assert_int_eq(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  tu_assert_values(z->grad, ((double[]){1, 0}), 1e-12);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * minimum and its ties */

static tg_tensor *minimum2(tg_tape *tape, tg_tensor *const *in) {
  return tg_minimum(tape, in[0], in[1]);
}

START_TEST(test_minimum) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 31);
  tg_tensor *a = leaf(tape, (int64_t[]){2, 3}, 2), *b = leaf(tape, (int64_t[]){3}, 1);
  tg_tensor *y = tg_minimum(tape, a, b);
  double want[6];
  for (int i = 0; i < 6; i++)
    want[i] = fmin(tg_at(a, i), tg_at(b, i % 3));
  tu_assert_values(y, want, 0);
  tg_tensor *in[2] = {a, b};
  tu_assert_gradcheck(tape, run, (void *)minimum2, 2, in, TU_GRAD_TOL);
  /* Ties: the gradient goes to a, for minimum as for maximum. */
  tg_tensor *p = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 2}));
  tg_tensor *q = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, (double[]){1, 3}));
  tg_tensor *seed_y = tg_minimum(tape, p, q);
  ck_assert_int_eq(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  tu_assert_values(p->grad, ((double[]){1, 1}), 0);
  tu_assert_values(q->grad, ((double[]){0, 0}), 0);
  /* clamp passes the gradient at its ends */
  tg_tensor *r =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){4}, 1, (double[]){-1, -0.5, 0.7, 2}));
  seed_y = tg_clamp(tape, r, -0.5, 0.7);
  ck_assert_int_eq(tg_backward(tape, seed_y, tu_ones_like(tape, seed_y)), TG_OK);
  tu_assert_values(r->grad, ((double[]){0, 1, 1, 0}), 0);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * logsumexp and var */

static tg_tensor *lse_axes(tg_tape *tape, tg_tensor *const *in) {
  return tg_logsumexp(tape, in[0], (int[]){-1, 0}, 2, 0);
}
static tg_tensor *var_axes(tg_tape *tape, tg_tensor *const *in) {
  return tg_var(tape, in[0], (int[]){1}, 1, 1, 1);
}

START_TEST(test_logsumexp) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 41);
  tg_tensor *x = leaf(tape, (int64_t[]){2, 3, 4}, 3);
  /* over axes (0, 2): y (3,) against a plain loop; keepdims (1, 3, 1) */
  double want[3] = {0};
  for (int j = 0; j < 3; j++) {
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 4; k++)
        want[j] += exp(tg_at(x, (i * 3 + j) * 4 + k));
    want[j] = log(want[j]);
  }
  tg_tensor *y = tg_logsumexp(tape, x, (int[]){-1, 0}, 2, 0);
  ck_assert_int_eq(y->ndim, 1);
  tu_assert_values(y, want, TU_VALUE_TOL);
  y = tg_logsumexp(tape, x, (int[]){0, 2}, 2, 1);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[1], 3);
  tu_assert_values(y, want, TU_VALUE_TOL);
  /* every axis: a scalar */
  double all = 0;
  for (int i = 0; i < 24; i++)
    all += exp(tg_at(x, i));
  y = tg_logsumexp(tape, x, NULL, 0, 0);
  ck_assert_int_eq(y->ndim, 0);
  tu_assert_values(y, ((double[]){log(all)}), TU_VALUE_TOL);
  /* stable: large values, and a row of -inf */
  tg_tensor *big = tg_from_values(tape, (int64_t[]){3, 2}, 2,
                                  (double[]){1000, 1000, -1000, -1001, -INFINITY, -INFINITY});
  y = tg_logsumexp(tape, big, (int[]){1}, 1, 0);
  ck_assert_msg(tu_rel(tg_at(y, 0), 1000 + log(2)) <= TU_VALUE_TOL, "%g", tg_at(y, 0));
  ck_assert_msg(tu_rel(tg_at(y, 1), -1000 + log1p(exp(-1))) <= TU_VALUE_TOL, "%g", tg_at(y, 1));
  ck_assert_msg(isinf(tg_at(y, 2)) && tg_at(y, 2) < 0, "%g", tg_at(y, 2));
  /* gradient: softmax over the axes, then second derivatives */
  tu_assert_gradcheck(tape, run, (void *)lse_axes, 1, &x, TU_GRAD_TOL);
  d1_ctx d = {lse_axes, 1};
  tu_assert_gradcheck(tape, first_derivative, &d, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_var) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 43);
  tg_tensor *x = leaf(tape, (int64_t[]){2, 5, 3}, 3);
  for (int corr = 0; corr <= 1; corr++) {
    /* axes (0, 2) -> (5,): 6 elements per group */
    double want[5];
    for (int j = 0; j < 5; j++) {
      double m = 0, ss = 0;
      for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++)
          m += tg_at(x, (i * 5 + j) * 3 + k) / 6;
      for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++)
          ss += pow(tg_at(x, (i * 5 + j) * 3 + k) - m, 2);
      want[j] = ss / (6 - corr);
    }
    tg_tensor *y = tg_var(tape, x, (int[]){2, -3}, 2, corr, 0);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    ck_assert_int_eq(y->ndim, 1);
    tu_assert_values(y, want, TU_VALUE_TOL);
  }
  /* hand values: var(1, 2, 3, 4) = 5/4 (population), 5/3 (sample) */
  tg_tensor *h = tg_from_values(tape, (int64_t[]){4}, 1, (double[]){1, 2, 3, 4});
  tu_assert_values(tg_var(tape, h, NULL, 0, 0, 0), ((double[]){1.25}), TU_VALUE_TOL);
  tu_assert_values(tg_var(tape, h, NULL, 0, 1, 0), ((double[]){5.0 / 3}), TU_VALUE_TOL);
  /* a large mean does not cancel: var(1e6 + (0, 1, 2)) = 1 */
  tg_tensor *g = tg_from_values(tape, (int64_t[]){3}, 1, (double[]){1e4, 1e4 + 1, 1e4 + 2});
  tu_assert_values(tg_var(tape, g, NULL, 0, 1, 0), ((double[]){1}), TU_VALUE_TOL);
  tu_assert_gradcheck(tape, run, (void *)var_axes, 1, &x, TU_GRAD_TOL);
  d1_ctx d = {var_axes, 1};
  tu_assert_gradcheck(tape, first_derivative, &d, 1, &x, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Constructors */

START_TEST(test_constructors) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *o = tg_ones(tape, (int64_t[]){2, 3}, 2);
  tu_assert_values(o, ((double[]){1, 1, 1, 1, 1, 1}), 0);
  ck_assert(!(o->flags & TG_REQUIRES_GRAD));
  tg_tensor *r = tg_arange(tape, 0, 1, 0.25);
  ck_assert_int_eq(r->ndim, 1);
  ck_assert_int_eq(r->numel, 4);
  tu_assert_values(r, ((double[]){0, 0.25, 0.5, 0.75}), 0);
  r = tg_arange(tape, 3, -2, -2); /* 3, 1, -1 */
  tu_assert_values(r, ((double[]){3, 1, -1}), 0);
  ck_assert_int_eq(r->numel, 3);
  /* rand/randn: the tape's generator, so the same seed gives the same
   * values; moments of 40,000 draws */
  int64_t n = 40000;
  tg_tape_seed(tape, 5);
  tg_tensor *u = tg_rand(tape, &n, 1), *g = tg_randn(tape, (int64_t[]){200, 200}, 2);
  double su = 0, sg = 0, sg2 = 0, lo = 1, hi = 0;
  for (int64_t i = 0; i < n; i++) {
    su += tg_at(u, i);
    lo = fmin(lo, tg_at(u, i));
    hi = fmax(hi, tg_at(u, i));
    sg += tg_at(g, i);
    sg2 += tg_at(g, i) * tg_at(g, i);
  }
  ck_assert(lo >= 0 && hi < 1);
  ck_assert_msg(fabs(su / n - 0.5) < 0.01, "rand mean %g", su / n);
  ck_assert_msg(fabs(sg / n) < 0.02, "randn mean %g", sg / n);
  ck_assert_msg(fabs(sg2 / n - 1) < 0.03, "randn variance %g", sg2 / n);
  tg_tape_seed(tape, 5);
  tg_tensor *u2 = tg_rand(tape, &n, 1);
  for (int64_t i = 0; i < n; i += 101)
    ck_assert(tg_at(u2, i) == tg_at(u, i));
  ck_assert_int_eq(tg_tape_status(tape), TG_OK);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Batched and 1-D matmul (ops/matmul.c) */

/* c = a @ b by torch.matmul's rules, as a plain loop over c's elements.
 * as, bs: the shapes; returns c's ndim and fills cs. */
static int matmul_ref(const tg_tensor *a, const tg_tensor *b, double *c, int64_t *cs) {
  const int a1 = a->ndim == 1, b1 = b->ndim == 1;
  const int64_t M = a1 ? 1 : a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
  const int64_t N = b1 ? 1 : b->shape[b->ndim - 1];
  const int na = a1 ? 0 : a->ndim - 2, nb2 = b1 ? 0 : b->ndim - 2, nb = na > nb2 ? na : nb2;
  int64_t bs[TG_MAX_DIMS], batch = 1;
  for (int d = 0; d < nb; d++) {
    int i = d - (nb - na), j = d - (nb - nb2);
    int64_t x = i >= 0 ? a->shape[i] : 1, y = j >= 0 ? b->shape[j] : 1;
    bs[d] = x > y ? x : y;
    batch *= bs[d];
  }
  for (int64_t t = 0; t < batch; t++) {
    int64_t ix[TG_MAX_DIMS], aoff = 0, boff = 0;
    unflat(t, bs, nb, ix);
    for (int d = 0; d < nb; d++) {
      int i = d - (nb - na), j = d - (nb - nb2);
      if (i >= 0)
        aoff = aoff * a->shape[i] + (a->shape[i] == 1 ? 0 : ix[d]);
      if (j >= 0)
        boff = boff * b->shape[j] + (b->shape[j] == 1 ? 0 : ix[d]);
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t k = 0; k < K; k++)
          sum += tg_at(a, (aoff * M + m) * K + k) * tg_at(b, (boff * K + k) * N + n);
        c[(t * M + m) * N + n] = sum;
      }
  }
  int nc = 0;
  for (int d = 0; d < nb; d++)
    cs[nc++] = bs[d];
  if (!a1)
    cs[nc++] = M;
  if (!b1)
    cs[nc++] = N;
  return nc;
}

typedef struct mmcase {
  int na, nb;
  int64_t as[4], bs[4];
} mmcase;
static const mmcase mmcases[] = {
    {1, 2, {5}, {5, 3}},                /* row vector */
    {2, 1, {4, 5}, {5}},                /* column vector */
    {1, 1, {7}, {7}},                   /* dot product */
    {3, 2, {2, 3, 5}, {5, 4}},          /* folded batch */
    {3, 3, {2, 3, 5}, {2, 5, 4}},       /* bmm */
    {3, 3, {2, 3, 5}, {1, 5, 4}},       /* broadcast batch of b */
    {2, 3, {3, 5}, {2, 5, 4}},          /* a 2-D under a batched b */
    {4, 3, {2, 1, 3, 5}, {3, 5, 2}},    /* (2, 1) x (3,) batch */
    {1, 3, {5}, {2, 5, 4}},             /* vector @ batch */
    {3, 1, {2, 3, 5}, {5}},             /* batch @ vector */
    {4, 4, {1, 2, 7, 9}, {3, 1, 9, 5}}, /* odd sizes */
};
#define NMM (int)(sizeof mmcases / sizeof mmcases[0])

static tg_tensor *matmul2(tg_tape *tape, tg_tensor *const *in) {
  return tg_matmul(tape, in[0], in[1]);
}

START_TEST(test_matmul_ranks) {
  const mmcase *c = &mmcases[_i];
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 70 + _i);
  tg_tensor *in[2] = {leaf(tape, c->as, c->na), leaf(tape, c->bs, c->nb)};
  tg_tensor *y = tg_matmul(tape, in[0], in[1]);
  ck_assert_msg(y != NULL, "case %d: %s", _i, tg_tape_error(tape));
  static double want[6 * 7 * 5];
  int64_t cs[TG_MAX_DIMS];
  int nc = matmul_ref(in[0], in[1], want, cs);
  ck_assert_int_eq(y->ndim, nc);
  for (int d = 0; d < nc; d++)
    ck_assert_int_eq(y->shape[d], cs[d]);
  tu_assert_values(y, want, sizeof(tg_real) == 8 ? 1e-12 : 1e-5);
  tu_assert_gradcheck(tape, run, (void *)matmul2, 2, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

static int g_ta, g_tb;
static tg_tensor *bmm_t2(tg_tape *tape, tg_tensor *const *in) {
  return tg_bmm_t(tape, in[0], in[1], g_ta, g_tb);
}

/* bmm_t with every transpose pair: values against matmul_t per batch
 * element (the 2-D op, tested on its own in test_matmul.c), gradients,
 * and second derivatives. */
START_TEST(test_bmm_transposes) {
  g_ta = _i & 1, g_tb = _i >> 1;
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 80 + _i);
  const int64_t B = 3, M = 4, K = 5, N = 2;
  /* In [-1, 1): the second-derivative check's central differences of
   * y² stay well above rounding. */
  tg_tensor *a = tu_leaf(tape, g_ta ? (int64_t[]){B, K, M} : (int64_t[]){B, M, K}, 3, -1, 1);
  tg_tensor *b = tu_leaf(tape, g_tb ? (int64_t[]){B, N, K} : (int64_t[]){B, K, N}, 3, -1, 1);
  tg_tensor *y = tg_bmm_t(tape, a, b, g_ta, g_tb);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  for (int64_t i = 0; i < B; i++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t k = 0; k < K; k++)
          sum += tg_at(a, g_ta ? (i * K + k) * M + m : (i * M + m) * K + k) *
                 tg_at(b, g_tb ? (i * N + n) * K + k : (i * K + k) * N + n);
        ck_assert(tu_rel(tg_at(y, (i * M + m) * N + n), sum) <= TU_VALUE_TOL);
      }
  tg_tensor *in[2] = {a, b};
  tu_assert_gradcheck(tape, run, (void *)bmm_t2, 2, in, TU_GRAD_TOL);
  /* Second derivatives: some are ~1e-4 against an L of ~10, so central
   * differences carry ~1e-9 of rounding there (1e-5 relative); a wrong
   * rule is off by O(1). */
  d1_ctx d = {bmm_t2, 2};
  tu_assert_gradcheck(tape, first_derivative, &d, 2, in, 10 * TU_GRAD_TOL);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("newops");
  TCase *tc = tcase_create("index");
  tcase_add_test(tc, test_concat_hand);
  tcase_add_test(tc, test_concat_many_every_axis);
  tcase_add_test(tc, test_concat_stack_gradcheck);
  tcase_add_test(tc, test_concat_large_parallel);
  tcase_add_test(tc, test_index_select_hand);
  tcase_add_test(tc, test_index_select_loop);
  tcase_add_test(tc, test_index_gradcheck);
  tcase_add_test(tc, test_index_errors);
  tcase_add_test(tc, test_index_large_parallel);
  suite_add_tcase(s, tc);
  tc = tcase_create("compose");
  tcase_add_loop_test(tc, test_unary_forward, 0, NU);
  tcase_add_loop_test(tc, test_unary_gradcheck, 0, NU);
  tcase_add_test(tc, test_softplus_extremes);
  tcase_add_test(tc, test_minimum);
  tcase_add_test(tc, test_logsumexp);
  tcase_add_test(tc, test_var);
  tcase_add_test(tc, test_constructors);
  suite_add_tcase(s, tc);
  tc = tcase_create("matmul");
  tcase_add_loop_test(tc, test_matmul_ranks, 0, NMM);
  tcase_add_loop_test(tc, test_bmm_transposes, 0, 4);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
