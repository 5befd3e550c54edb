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

static Suite *make_suite(void) {
  Suite *s = suite_create("gradcheck");
  TCase *tc = tcase_create("gradcheck");
  tcase_add_test(tc, test_passes_right_gradients);
  tcase_add_test(tc, test_catches_wrong_rule);
  tcase_add_test(tc, test_catches_transposed_gradient);
  tcase_add_test(tc, test_directional_mode);
  tcase_add_test(tc, test_leaves_tape_and_inputs_as_found);
  tcase_add_test(tc, test_reports_failures);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
