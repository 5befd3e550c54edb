/* test_gradcheck.c — the checker itself: it must pass right gradients and
 * catch wrong ones, including a transposed gradient that a plain sum()
 * cannot see. The wrong rules are ops defined here through op.h, which
 * also shows that a new op needs nothing outside its own section.
 */
#include "testutil.h"

/* ------------------------------------------------------------------------
 * square with a wrong rule: dx = dy * x (the factor 2 is missing) */
static void bad_square_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_mul(tape, gy, n->in[0]);
}
static const tg_op op_bad_square = {"bad_square", 1, 0, bad_square_backward};

static tg_tensor *bad_square(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_bad_square, 1, &x))
    return NULL;
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim);
  if (!y)
    return NULL;
  for (int64_t i = 0; i < x->numel; i++)
    y->data[i] = x->data[i] * x->data[i];
  return tg_op_record(tape, &op_bad_square, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * transpose of an (n, n) matrix whose rule forgets to transpose back */
static void bad_transpose_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  (void)tape;
  (void)n;
  gx[0] = gy;
}
static const tg_op op_bad_transpose = {"bad_transpose", 1, 0, bad_transpose_backward};

static tg_tensor *bad_transpose(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_bad_transpose, 1, &x))
    return NULL;
  tg_tensor *y = tg_empty(tape, x->shape, 2); /* x: (n, n) */
  int64_t n = x->shape[0];
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      y->data[i * n + j] = x->data[j * n + i];
  return tg_op_record(tape, &op_bad_transpose, y, 1, &x, NULL, 0);
}

static tg_tensor *fn_bad_square(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return bad_square(tape, in[0]);
}

static tg_tensor *fn_bad_transpose(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return bad_transpose(tape, in[0]);
}

/* f(x, c) = tanh(x) * exp(c): right gradients for both. */
static tg_tensor *fn_good(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_mul(tape, tg_tanh(tape, in[0]), tg_exp(tape, in[1]));
}

START_TEST(test_passes_right_gradients) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){3, 3}, 2, -1, 1),
                     tu_leaf(tape, (int64_t[]){3, 3}, 2, -1, 1)};
  tg_gradcheck_report r[2];
  ck_assert_int_eq(tg_gradcheck(tape, fn_good, NULL, 2, in, NULL, r), TG_OK);
  ck_assert_msg(tg_gradcheck_worst(r, 2) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(r, 2));
  ck_assert_int_eq(r[0].directional, 0);
  ck_assert_int_ge(r[0].worst_index, 0);
  ck_assert_int_lt(r[0].worst_index, 9);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_catches_wrong_rule) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){4}, 1, 0.5, 2)};
  tg_gradcheck_report r;
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_square, NULL, 1, in, NULL, &r), TG_OK);
  /* backward gives x·w, the truth is 2x·w: relative error 1/2. */
  ck_assert_msg(fabs(r.worst_rel - 0.5) < 0.01, "worst %g", r.worst_rel);
  ck_assert(fabs(r.numeric - 2 * r.analytic) < 0.02 * fabs(r.numeric));
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *sum_of(tg_tape *tape, tg_tensor *y) { return tg_sum(tape, y, NULL, 0, 0); }

static tg_tensor *fn_bad_transpose_summed(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return sum_of(tape, bad_transpose(tape, in[0]));
}

START_TEST(test_catches_transposed_gradient) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){3, 3}, 2, -1, 1)};
  tg_gradcheck_report r;
  /* Reduced by a plain sum the wrong rule is invisible ... */
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_transpose_summed, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_msg(r.worst_rel <= TU_GRAD_TOL, "sum() should hide it: %g", r.worst_rel);
  /* ... gradcheck's own non-uniform weighting shows it. */
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_transpose, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_msg(r.worst_rel > 0.05, "transposed gradient not caught: %g", r.worst_rel);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_directional_mode) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){40, 30}, 2, 0.5, 2),
                     tu_leaf(tape, (int64_t[]){40, 30}, 2, -1, 1)};
  tg_gradcheck_opts o = {.elementwise_max = 100, .directions = 4, .seed = 9};
  tg_gradcheck_report r[2];
  ck_assert_int_eq(tg_gradcheck(tape, fn_good, NULL, 2, in, &o, r), TG_OK);
  ck_assert_int_eq(r[0].directional, 1);
  ck_assert_msg(tg_gradcheck_worst(r, 2) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(r, 2));
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_square, NULL, 1, in, &o, r), TG_OK);
  ck_assert_msg(r[0].worst_rel > 0.3, "wrong rule passed directionally: %g", r[0].worst_rel);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_leaves_tape_and_inputs_as_found) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){2, 2}, 2, -1, 1),
                     tg_full(tape, (int64_t[]){2, 2}, 2, 0.5)}; /* a constant */
  double before[4];
  for (int i = 0; i < 4; i++)
    before[i] = tg_at(in[0], i);
  tg_tape_stats s0 = tg_tape_get_stats(tape);
  tg_gradcheck_report r[2];
  ck_assert_int_eq(tg_gradcheck(tape, fn_good, NULL, 2, in, NULL, r), TG_OK);
  tg_tape_stats s1 = tg_tape_get_stats(tape);
  ck_assert_int_eq(s1.nodes, s0.nodes);
  ck_assert_uint_eq(s1.arena_in_use, s0.arena_in_use);
  for (int i = 0; i < 4; i++)
    ck_assert(tg_at(in[0], i) == before[i]);
  ck_assert_int_eq(r[1].worst_index, -1); /* the constant is not checked */
  ck_assert_ptr_null(in[0]->grad);        /* leaf gradients untouched */

  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tg_gradcheck_print(r, 2, in, f);
  fclose(f);
  ck_assert_msg(strstr(buf, "input 0") && strstr(buf, "worst relative error"), "%s", buf);
  ck_assert_msg(strstr(buf, "input 1") && strstr(buf, "not checked"), "%s", buf);
  free(buf);
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *fn_fails(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)in;
  (void)ctx;
  return tg_exp(tape, NULL);
}

START_TEST(test_reports_failures) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){2}, 1, 0, 1)};
  tg_gradcheck_report r;
  ck_assert_int_ne(tg_gradcheck(tape, fn_fails, NULL, 1, in, NULL, &r), TG_OK);
  tu_assert_error(tape, "exp", "NULL");
  tg_tape_reset(tape);
  in[0] = tu_leaf(tape, (int64_t[]){2}, 1, 0, 1);
  ck_assert_int_eq(tg_gradcheck(tape, NULL, NULL, 1, in, NULL, &r), TG_ERR_ARG);
  tu_assert_error(tape, "gradcheck");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Kinks: relu at and near 0, abs at 0, and a relu whose rule is wrong */

/* The default step of the build: kinks are placed relative to it. */
#define EPS (sizeof(tg_real) == 8 ? 1e-6 : 1e-2)

static tg_tensor *fn_relu(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_relu(tape, in[0]);
}

static tg_tensor *fn_abs(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_abs(tape, in[0]);
}

/* max-pooling of a (1, 1, 2, 4) image in 2x2 windows: ties broken by the
 * first maximum. */
static tg_tensor *fn_pool(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_max_pool2d(tape, in[0], 2, 2, 0);
}

START_TEST(test_kink_at_and_near_the_point) {
  tg_tape *tape = tg_tape_new();
  /* 0 itself (every step crosses; the left side keeps x's decision), a
   * kink 0.4 eps away (the step eps crosses it, a smaller one does not),
   * and two elements far from any kink. */
  const double v[5] = {0, 0.4 * EPS, -0.3 * EPS, 0.5, -0.7};
  tg_tensor *in[] = {tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){5}, 1, v))};
  tg_gradcheck_report r;
  ck_assert_int_eq(tg_gradcheck(tape, fn_relu, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_int_eq(r.checked, 2);
  ck_assert_int_eq(r.kinks, 3);
  ck_assert_int_eq(r.kinks_checked, 3);
  ck_assert_msg(tg_gradcheck_worst(&r, 1) <= TU_GRAD_TOL, "worst %g, at kinks %g", r.worst_rel,
                r.kink_worst_rel);
  ck_assert_int_eq(tg_gradcheck_unchecked(&r, 1), 0);

  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tg_gradcheck_print(&r, 1, in, f);
  fclose(f);
  ck_assert_msg(strstr(buf, "3 of 5 crossed a kink") && strstr(buf, "0 not compared"), "%s", buf);
  free(buf);

  /* |x| at 0: both sides leave x's decision (sign 0): not compared, and
   * counted as such rather than failed. */
  ck_assert_int_eq(tg_gradcheck(tape, fn_abs, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_int_eq(r.kinks, 3);
  ck_assert_int_eq(r.kinks_checked, 2);
  ck_assert_int_eq(tg_gradcheck_unchecked(&r, 1), 1);
  ck_assert_msg(tg_gradcheck_worst(&r, 1) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(&r, 1));
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_kink_of_max_pool) {
  tg_tape *tape = tg_tape_new();
  /* Window 1 has a tie (0.3, 0.3): the step moves the maximum. Window 2
   * has a clear maximum. */
  const double v[8] = {0.3, 0.3, 0.1, 0.9, 0.2, -0.1, 0.4, 0.5};
  tg_tensor *in[] = {tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){1, 1, 2, 4}, 4, v))};
  tg_gradcheck_report r;
  ck_assert_int_eq(tg_gradcheck(tape, fn_pool, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_int_eq(r.kinks, 2); /* both tied elements */
  ck_assert_int_eq(r.checked, 6);
  ck_assert_msg(tg_gradcheck_worst(&r, 1) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(&r, 1));
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_smooth_has_no_kinks) {
  tg_tape *tape = tg_tape_new();
  tg_gradcheck_opts o = {.elementwise_max = 100, .directions = 4, .seed = 3};
  tg_gradcheck_report r[2];
  /* tanh(x) · exp(c), element by element (3, 3) and along directions
   * (40, 30). */
  const int64_t shapes[2][2] = {{3, 3}, {40, 30}};
  for (int k = 0; k < 2; k++) {
    tg_tensor *in[] = {tu_leaf(tape, shapes[k], 2, -1, 1), tu_leaf(tape, shapes[k], 2, -1, 1)};
    ck_assert_int_eq(tg_gradcheck(tape, fn_good, NULL, 2, in, &o, r), TG_OK);
    for (int j = 0; j < 2; j++) {
      ck_assert_int_eq(r[j].kinks, 0);
      ck_assert_int_eq(r[j].checked, k == 0 ? 9 : 4);
    }
  }
  tg_tape_free(tape);
}
END_TEST

/* relu with a wrong rule: the gradient passes through negatives too. Its
 * decisions are declared like a right relu's, so if the kink machinery
 * excused it, it would be excused here. */
static void bad_relu_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  (void)tape;
  (void)n;
  gx[0] = gy;
}
static uint64_t bad_relu_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                                const int64_t *attr) {
  (void)tape, (void)n, (void)out, (void)attr;
  return tg_hash_signs(in[0]->data, in[0]->numel, 0);
}
static const tg_kinked_op op_bad_relu = {{"bad_relu", 1, TG_KINKED, bad_relu_backward},
                                         bad_relu_decide};

static tg_tensor *fn_bad_relu(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  tg_tensor *x = in[0];
  if (!tg_op_begin(tape, &op_bad_relu.op, 1, &x))
    return NULL;
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim);
  if (!y)
    return NULL;
  for (int64_t i = 0; i < x->numel; i++)
    y->data[i] = x->data[i] > 0 ? x->data[i] : 0;
  return tg_op_record(tape, &op_bad_relu.op, y, 1, &x, NULL, 0);
}

START_TEST(test_wrong_relu_rule_is_not_a_kink) {
  tg_tape *tape = tg_tape_new();
  /* Away from 0: the negatives err by 100%. */
  tg_tensor *in[] = {tg_requires_grad(tape, tg_empty(tape, (int64_t[]){6, 7}, 2))};
  tu_fill_signed(in[0], tg_tape_rng(tape), 0.1, 1);
  tg_gradcheck_report r;
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_relu, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_int_eq(r.kinks, 0);
  ck_assert_msg(r.worst_rel > 0.5, "wrong rule passed: %g", r.worst_rel);
  /* On the kinks themselves (exactly 0, and 0.4 eps below it), where
   * every step crosses: checked from the side that keeps x's decisions,
   * and caught there. */
  const double v[2] = {0, -0.4 * EPS};
  in[0] = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2}, 1, v));
  ck_assert_int_eq(tg_gradcheck(tape, fn_bad_relu, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_int_eq(r.kinks, 2);
  ck_assert_int_eq(r.kinks_checked, 2);
  ck_assert_msg(tg_gradcheck_worst(&r, 1) > 0.5, "wrong rule excused at a kink: %g",
                tg_gradcheck_worst(&r, 1));
  /* The right relu on the same points passes. */
  ck_assert_int_eq(tg_gradcheck(tape, fn_relu, NULL, 1, in, NULL, &r), TG_OK);
  ck_assert_msg(tg_gradcheck_worst(&r, 1) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(&r, 1));
  tg_tape_free(tape);
}
END_TEST

/* The same wrong relu inside a small convnet (conv → relu → 2×2 max-pool),
 * checked as `tapegrad gradcheck` checks a model: its parameters, along
 * every element. Channel 0's bias keeps all its pre-activations negative,
 * so its pooling windows hold only zeros and the wrong rule sends
 * gradient into W[0] and b[0] where the true one is 0; the kink
 * machinery must not excuse it. The right relu passes on the same point. */
typedef struct convnet_ctx {
  tg_tensor *x; /* (1, 2, 6, 6) */
  int bad;
} convnet_ctx;

static tg_tensor *fn_convnet(tg_tape *tape, tg_tensor *const *in, void *arg) {
  const convnet_ctx *c = arg;
  tg_tensor *h = tg_conv2d(tape, c->x, in[0], in[1], 1, 0); /* (1, 3, 4, 4) */
  tg_tensor *r = !h ? NULL : c->bad ? fn_bad_relu(tape, &h, NULL) : tg_relu(tape, h);
  return tg_max_pool2d(tape, r, 2, 2, 0); /* (1, 3, 2, 2) */
}

START_TEST(test_wrong_relu_rule_in_a_convnet) {
  tg_tape *tape = tg_tape_new();
  tg_rng *rng = tg_tape_rng(tape);
  convnet_ctx c = {tg_empty(tape, (int64_t[]){1, 2, 6, 6}, 4), 0};
  tu_fill_uniform(c.x, rng, 0, 1);
  tg_tensor *in[] = {
      tg_requires_grad(tape, tg_empty(tape, (int64_t[]){3, 2, 3, 3}, 4)),
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){3}, 1, (double[]){-20, 0.3, -0.2}))};
  tu_fill_signed(in[0], rng, 0.1, 1);
  tg_gradcheck_report r[2];
  ck_assert_msg(tg_gradcheck(tape, fn_convnet, &c, 2, in, NULL, r) == TG_OK, "%s",
                tg_tape_error(tape));
  ck_assert_msg(tg_gradcheck_worst(r, 2) <= TU_GRAD_TOL, "right relu: worst %g",
                tg_gradcheck_worst(r, 2));
  c.bad = 1;
  ck_assert_msg(tg_gradcheck(tape, fn_convnet, &c, 2, in, NULL, r) == TG_OK, "%s",
                tg_tape_error(tape));
  ck_assert_msg(r[0].worst_rel > 0.5 && r[1].worst_rel > 0.5, "wrong rule passed: W %g, b %g",
                r[0].worst_rel, r[1].worst_rel);
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * A function that takes a gradient itself: L = f + |∂f/∂x|², f = Σ c ⊙
 * tanh(x)³ (a gradient penalty). */
static tg_tensor *fn_penalty(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  tg_tensor *x = in[0], *c = in[1];
  tg_tensor *t = tg_tanh(tape, x);
  tg_tensor *f = tg_sum(tape, tg_mul(tape, c, tg_mul(tape, t, tg_mul(tape, t, t))), NULL, 0, 0);
  tg_tensor *gx = NULL;
  if (!f || tg_grad(tape, f, NULL, 1, &x, &gx, 1) != TG_OK)
    return NULL;
  return tg_add(tape, f, tg_sum(tape, tg_mul(tape, gx, gx), NULL, 0, 0));
}

START_TEST(test_function_that_takes_a_gradient) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[] = {tu_leaf(tape, (int64_t[]){2, 3}, 2, -1, 1),
                     tu_leaf(tape, (int64_t[]){2, 3}, 2, 0.5, 1.5)};
  tg_gradcheck_report r[2];
  ck_assert_msg(tg_gradcheck(tape, fn_penalty, NULL, 2, in, NULL, r) == TG_OK, "%s",
                tg_tape_error(tape));
  ck_assert_msg(tg_gradcheck_worst(r, 2) <= TU_GRAD_TOL, "worst %g", tg_gradcheck_worst(r, 2));
  ck_assert_int_eq(r[0].checked, 6);
  ck_assert_int_eq(r[1].checked, 6);
  /* The analytic side against the hand-derived gradient: with t = tanh x,
   * s = 1 − t², ∂f/∂x = 3 c t² s, and ∂L/∂c = t³ + 2 (3 t² s)² c. */
  tg_tensor *gx[2];
  tg_tensor *L = fn_penalty(tape, in, NULL);
  ck_assert_int_eq(tg_grad(tape, L, NULL, 2, in, gx, 0), TG_OK);
  for (int64_t i = 0; i < 6; i++) {
    double x = tg_at(in[0], i), c = tg_at(in[1], i), t = tanh(x), s = 1 - t * t;
    double d = 3 * t * t * s;
    ck_assert_msg(tu_rel(tg_at(gx[1], i), t * t * t + 2 * d * d * c) <= 100 * TU_VALUE_TOL,
                  "dL/dc[%lld]: %g", (long long)i, tg_at(gx[1], i));
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("gradcheck");
  TCase *tc = tcase_create("gradcheck");
  tcase_add_test(tc, test_passes_right_gradients);
  tcase_add_test(tc, test_catches_wrong_rule);
  tcase_add_test(tc, test_catches_transposed_gradient);
  tcase_add_test(tc, test_directional_mode);
  tcase_add_test(tc, test_leaves_tape_and_inputs_as_found);
  tcase_add_test(tc, test_reports_failures);
  tcase_add_test(tc, test_kink_at_and_near_the_point);
  tcase_add_test(tc, test_kink_of_max_pool);
  tcase_add_test(tc, test_smooth_has_no_kinks);
  tcase_add_test(tc, test_wrong_relu_rule_is_not_a_kink);
  tcase_add_test(tc, test_wrong_relu_rule_in_a_convnet);
  tcase_add_test(tc, test_function_that_takes_a_gradient);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
