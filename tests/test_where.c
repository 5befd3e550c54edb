/* test_where.c — where (forward against a loop at broadcast patterns,
 * gradchecks, second derivatives, its gradients by hand, a condition
 * that requires grad refused), what the binary ops record and what not,
 * their errors, and results that do not change with the thread count.
 * test_binary.c holds the arithmetic ops and comparisons themselves.
 *
 * Expected values never come from the op under test: the reference walks
 * the output by multi-index and maps it onto each input by NumPy's rule.
 */
#include <omp.h>

#include "binary_test_helpers.h"

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

/* The gradient of Σ dy ⊙ y² for y = where(in[0], in[1], in[2]) (cond a
 * constant) with respect to in[1 + *which], recorded so that gradcheck
 * differentiates it again: squaring makes the gradient reaching where
 * depend on its inputs. */
static tg_tensor *where_first_derivative(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const int which = *(const int *)ctx;
  int was = tg_tape_set_grad(tape, 1);
  tg_tensor *y = tg_where(tape, in[0], in[1], in[2]);
  tg_tensor *z = tg_mul(tape, y, y);
  tg_tensor *dy = z ? tg_empty(tape, z->shape, z->ndim) : NULL; /* dy: y's shape */
  for (int64_t i = 0; dy && i < dy->numel; i++)
    dy->data[i] = (tg_real)(0.5 + 0.125 * (double)(i % 7));
  tg_tensor *g[2] = {NULL, NULL};
  int st = tg_grad(tape, z, dy, 2, in + 1, g, 1);
  tg_tape_set_grad(tape, was);
  return st == TG_OK ? g[which] : NULL;
}

/* Index: which (0: a, 1: b), at where pattern 3 (all three broadcast). */
START_TEST(test_where_second_derivatives) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 550 + (uint64_t)_i);
  tg_tensor *in[3];
  make_where_inputs(tape, &where_patterns[3], &in[0], &in[1], &in[2]);
  tg_requires_grad(tape, in[1]);
  tg_requires_grad(tape, in[2]);
  int which = _i;
  tu_assert_gradcheck(tape, where_first_derivative, &which, 3, in, TU_GRAD_TOL);
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
  ck_assert_int_ne(tg_backward(tape, y, tu_ones_like(tape, y)), TG_OK);
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
  ck_assert_msg(tg_grad(tape, y, tu_ones_like(tape, y), 1, &x, &g, 0) == TG_OK, "%s",
                tg_tape_error(tape));
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
  tg_tensor *y = tg_pow(tape, a, b);
  ck_assert_msg(tg_grad(tape, y, tu_ones_like(tape, y), 1, &a, &g, 0) == TG_OK, "%s",
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
  tg_tape_fail(tape, TG_ERR_ARG, "test", "the first failure");
  ck_assert_ptr_null(tg_add(tape, a, a));
  ck_assert_ptr_null(tg_where(tape, a, a, a));
  ck_assert_ptr_null(tg_eq(tape, a, a));
  ck_assert_ptr_null(tg_add_scalar(tape, a, 1));
  ck_assert_ptr_null(tg_mul(tape, a, tg_zeros(tape, (int64_t[]){3}, 1)));
  ck_assert_str_eq(tg_tape_error(tape), "test (op #0): the first failure");
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
    int64_t bad = -1; /* the first element off the loop's value */
    double bad_got = 0, bad_want = 0;
    for (int64_t i = 0; bad < 0 && i < y1->numel; i++) {
      double u = tg_at(a, ref_index(y1->shape, y1->ndim, bc->a, bc->an, i));
      double v = tg_at(b, ref_index(y1->shape, y1->ndim, bc->b, bc->bn, i));
      double want = k == 0 ? u + v : k == 1 ? u * v : k == 2 ? u / v : k == 3 ? pow(u, v) : u > v;
      if (!(tu_rel(tg_at(y2, i), want) <= TU_VALUE_TOL))
        bad = i, bad_got = tg_at(y2, i), bad_want = want;
    }
    ck_assert_msg(bad < 0, "%s, case %d, element %lld: got %.17g, want %.17g", names[k], _i,
                  (long long)bad, bad_got, bad_want);
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
    tg_tensor *ones = tg_full(tape, a->shape, a->ndim, 1);
    omp_set_num_threads(1);
    ck_assert_int_eq(tg_grad(tape, tg_mul(tape, a, b), ones, 1, &a, &g[0], 0), TG_OK);
    omp_set_num_threads(2);
    ck_assert_int_eq(tg_grad(tape, tg_mul(tape, a, b), ones, 1, &a, &g[1], 0), TG_OK);
    ck_assert(memcmp(g[0]->data, g[1]->data, (size_t)a->numel * sizeof(tg_real)) == 0);
    ck_assert(memcmp(g[0]->data, b->data, (size_t)a->numel * sizeof(tg_real)) == 0);
  }
  omp_set_num_threads(keep);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *make_suite(void) {
  Suite *s = suite_create("where");

  TCase *wh = tcase_create("where");
  tcase_add_loop_test(wh, test_where_forward_vs_loop, 0, NWHERE);
  tcase_add_loop_test(wh, test_where_gradcheck, 0, NWHERE);
  tcase_add_loop_test(wh, test_where_second_derivatives, 0, 2);
  tcase_add_test(wh, test_where_gradients_by_hand);
  tcase_add_test(wh, test_where_cond_requiring_grad_fails);
  suite_add_tcase(s, wh);

  TCase *rec = tcase_create("recording");
  tcase_add_test(rec, test_comparisons_are_constants);
  tcase_add_test(rec, test_not_recorded_without_grad);
  tcase_add_test(rec, test_pow_only_needed_gradients);
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
