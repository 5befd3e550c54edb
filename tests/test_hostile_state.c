/* test_hostile_state.c — hostile states of the engine rather than bad
 * arguments to one op (those are test_hostile_ops.c's): owned tensors
 * that cannot exist, NaN and Inf with and without anomaly mode, tensors
 * of an earlier step or another tape, and bad arguments to backward.
 * The contract is the same (DESIGN.md §7): a NULL or an error status and
 * a message naming the op and its position; never a crash or a silent
 * wrong answer (the ASan build runs this too).
 */
#include "hostile_test_helpers.h"

#include <stdint.h>

/* ========================================================================
 * 1. Owned tensors that cannot exist: tg_tensor_new refuses with a message
 * ======================================================================== */

static const struct {
  const char *name;
  int64_t shape[TG_MAX_DIMS + 1];
  int ndim;
  const char *frag;
} owned_cases[] = {
    {"zero", {3, 0}, 2, "empty tensors are not supported"},
    {"negative", {-1}, 1, "-1"},
    {"int64_min", {INT64_MIN, 1}, 2, "dimension 0"},
    {"overflow_2x32", {1LL << 32, 1LL << 32}, 2, "too many elements"},
    {"overflow_3x22", {1LL << 22, 1LL << 22, 1LL << 22}, 3, "too many elements"},
    {"overflow_bytes", {1LL << 62}, 1, "too many elements"},
    {"rank7", {1, 1, 1, 1, 1, 1, 1}, 7, "7 dimensions"},
    {"rank_negative", {1}, -3, "-3 dimensions"},
    {"exabyte", {1LL << 58}, 1, "out of memory"},
};
#define N_OWNED ((int)(sizeof owned_cases / sizeof owned_cases[0]))

START_TEST(owned_refused) {
  tg_error err = {0};
  tg_tensor *t = tg_tensor_new(owned_cases[_i].shape, owned_cases[_i].ndim, 1, "w", &err);
  ck_assert_msg(t == NULL, "%s: a tensor was made", owned_cases[_i].name);
  ck_assert_int_ne(err.status, TG_OK);
  ck_assert_msg(strstr(err.msg, "tensor_new") && strstr(err.msg, owned_cases[_i].frag),
                "%s: \"%s\"", owned_cases[_i].name, err.msg);
  /* params_new passes the refusal on and leaves the list unchanged. */
  tg_params p = {0};
  tg_error e2 = {0};
  ck_assert_ptr_null(tg_params_new(&p, "w", owned_cases[_i].shape, owned_cases[_i].ndim, 1, &e2));
  ck_assert_int_eq(p.n, 0);
  ck_assert_int_ne(e2.status, TG_OK);
  tg_params_free(&p);
}
END_TEST

/* ========================================================================
 * 2. NaN and Inf, with and without anomaly mode
 * ======================================================================== */

/* Without anomaly mode NaN flows through as a value (IEEE), no error. */
START_TEST(nan_flows_without_anomaly) {
  tg_tape *T = tg_tape_new();
  tg_tensor *x = tg_requires_grad(T, tg_from_values(T, (int64_t[]){3}, 1, (double[]){-1, 0, 1}));
  tg_tensor *y = tg_sum(T, tg_log(T, x), NULL, 0, 0);
  ck_assert_ptr_nonnull(y);
  ck_assert(isnan(tg_at(y, 0)));
  ck_assert_int_eq(tg_backward(T, y, NULL), TG_OK);
  ck_assert(isfinite(tg_at(x->grad, 0)) && isinf(tg_at(x->grad, 1)));
  tg_tape_free(T);
}
END_TEST

/* Forward: the failing op and its tape position are named. */
START_TEST(anomaly_forward_names_op_and_position) {
  tg_tape *T = tg_tape_new();
  tg_tape_set_anomaly(T, 1);
  tg_tensor *x = tg_requires_grad(T, tg_from_values(T, (int64_t[]){3}, 1, (double[]){-1, 2, 3}));
  tg_tensor *a = tg_mul(T, x, x); /* op #0 */
  tg_tensor *b = tg_neg(T, a);    /* op #1 */
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_null(tg_log(T, b)); /* op #2: log of negatives */
  tu_assert_error(T, "log", "op #2", "NaN or Inf", "(3,)");
  ck_assert_int_eq(tg_tape_status(T), TG_ERR_ANOMALY);
  tg_tape_free(T);
}
END_TEST

/* Inputs already holding NaN/Inf: the first op that sees them fails. */
START_TEST(anomaly_input_nan_inf) {
  const double bad[] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) {
    tg_tape *T = tg_tape_new();
    tg_tape_set_anomaly(T, 1);
    tg_tensor *x = tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, bad[i]});
    ck_assert_ptr_null(tg_add(T, x, x));
    tu_assert_error(T, "add", "op #0", "NaN or Inf");
    tg_tape_free(T);
  }
  /* exp overflows: Inf out of finite inputs. */
  tg_tape *T = tg_tape_new();
  tg_tape_set_anomaly(T, 1);
  ck_assert_ptr_null(tg_exp(T, tg_from_values(T, (int64_t[]){1}, 1, (double[]){1e6})));
  tu_assert_error(T, "exp", "NaN or Inf");
  tg_tape_free(T);
}
END_TEST

/* Backward: finite forward, infinite gradient (sqrt at 0); the message
 * names the op whose backward produced it and its position. */
START_TEST(anomaly_backward_names_op) {
  tg_tape *T = tg_tape_new();
  tg_tape_set_anomaly(T, 1);
  tg_tensor *x = tg_requires_grad(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){0, 4}));
  tg_tensor *y = tg_sum(T, tg_sqrt(T, tg_mul_scalar(T, x, 1)), NULL, 0, 0);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(tg_backward(T, y, NULL), TG_ERR_ANOMALY);
  tu_assert_error(T, "sqrt", "op #1", "NaN or Inf");
  tg_tape_free(T);
  /* Without anomaly mode the same backward completes with Inf. */
  T = tg_tape_new();
  x = tg_requires_grad(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){0, 4}));
  y = tg_sum(T, tg_sqrt(T, x), NULL, 0, 0);
  ck_assert_int_eq(tg_backward(T, y, NULL), TG_OK);
  ck_assert(isinf(tg_at(x->grad, 0)));
  tg_tape_free(T);
}
END_TEST

/* A NaN seed gradient is caught too. */
START_TEST(anomaly_backward_nan_seed) {
  tg_tape *T = tg_tape_new();
  tg_tape_set_anomaly(T, 1);
  tg_tensor *x = tg_requires_grad(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, 2}));
  tg_tensor *y = tg_mul(T, x, x);
  tg_tensor *dy = tg_from_values(T, (int64_t[]){2}, 1, (double[]){NAN, 1});
  ck_assert_int_ne(tg_backward(T, y, dy), TG_OK);
  tu_assert_error(T, "NaN or Inf");
  tg_tape_free(T);
}
END_TEST

/* ========================================================================
 * 3. Tensors of another step or another tape
 * ======================================================================== */

START_TEST(stale_arena_tensor) {
  tg_tape *T = tg_tape_new();
  tg_tensor *x = L2(2, 3);
  tg_tensor *y = tg_exp(T, x);
  ck_assert_ptr_nonnull(y);
  tg_tape_reset(T);
  ck_assert_ptr_null(tg_neg(T, x));
  tu_assert_error(T, "neg", "earlier step", "(2, 3)");
  tg_tape_reset(T);
  ck_assert_ptr_null(tg_matmul(T, y, L2(3, 2)));
  tu_assert_error(T, "matmul", "earlier step");
  tg_tape_reset(T);
  ck_assert_int_ne(tg_backward(T, y, NULL), TG_OK);
  tu_assert_error(T, "not from this tape's current step");
  tg_tape_reset(T);
  /* Layers check before they allocate: relu makes a zero scalar first,
   * which would reuse the stale header's memory and hide it. */
  ck_assert_ptr_null(tg_relu(T, x));
  tu_assert_error(T, "relu (op #0): x", "earlier step");
  tg_tape_reset(T);
  ck_assert_ptr_null(tg_softmax(T, x, -1));
  tu_assert_error(T, "earlier step");
  tg_tape_free(T);
}
END_TEST

START_TEST(tensor_of_another_tape) {
  tg_tape *T = tg_tape_new(), *U = tg_tape_new();
  tg_tensor *x = L2(2, 3);
  tg_tensor *u = L(U, 2, (int64_t)2, (int64_t)3);
  ck_assert_ptr_null(tg_add(T, x, u));
  tu_assert_error(T, "add", "input 1", "another tape");
  tg_tape_reset(T);
  x = L2(2, 3);
  ck_assert_ptr_null(tg_softmax_cross_entropy(T, u, tg_zeros(T, (int64_t[]){2}, 1)));
  tu_assert_error(T, "another tape");
  tg_tape_reset(T);
  ck_assert_int_ne(tg_backward(T, tg_exp(U, u), NULL), TG_OK);
  ck_assert_int_ne(tg_tape_status(T), TG_OK);
  /* U is unaffected by T's failures. */
  ck_assert_int_eq(tg_tape_status(U), TG_OK);
  tg_tape_free(T);
  tg_tape_free(U);
}
END_TEST

/* Owned parameters work with any tape, after any reset. */
START_TEST(owned_tensor_across_resets_and_tapes) {
  tg_tape *T = tg_tape_new(), *U = tg_tape_new();
  tg_tensor *w = tg_tensor_new((int64_t[]){2}, 1, 1, "w", NULL);
  tg_tensor_fill(w, 2);
  for (int i = 0; i < 3; i++) {
    ck_assert_ptr_nonnull(tg_mul(T, w, w));
    ck_assert_ptr_nonnull(tg_mul(U, w, w));
    tg_tape_reset(T);
  }
  tg_tensor_free(w);
  tg_tape_free(T);
  tg_tape_free(U);
}
END_TEST

/* Backward on bad arguments. */
START_TEST(backward_bad_arguments) {
  tg_tape *T = tg_tape_new();
  ck_assert_int_eq(tg_backward(T, NULL, NULL), TG_ERR_NULL);
  tg_tape_reset(T);
  tg_tensor *x = L2(2, 3);
  tg_tensor *y = tg_exp(T, x);
  ck_assert_int_ne(tg_backward(T, y, L2(3, 2)), TG_OK);
  tu_assert_error(T, "(3, 2)", "(2, 3)");
  tg_tape_reset(T);
  ck_assert_int_ne(tg_backward(NULL, NULL, NULL), TG_OK);
  ck_assert_int_ne(tg_grad(T, NULL, NULL, 1, NULL, NULL, 0), TG_OK);
  tg_tape_free(T);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("hostile_state");
  TCase *tc = tcase_create("owned");
  tcase_add_loop_test(tc, owned_refused, 0, N_OWNED);
  suite_add_tcase(s, tc);
  tc = tcase_create("anomaly");
  tcase_add_test(tc, nan_flows_without_anomaly);
  tcase_add_test(tc, anomaly_forward_names_op_and_position);
  tcase_add_test(tc, anomaly_input_nan_inf);
  tcase_add_test(tc, anomaly_backward_names_op);
  tcase_add_test(tc, anomaly_backward_nan_seed);
  suite_add_tcase(s, tc);
  tc = tcase_create("tapes");
  tcase_add_test(tc, stale_arena_tensor);
  tcase_add_test(tc, tensor_of_another_tape);
  tcase_add_test(tc, owned_tensor_across_resets_and_tapes);
  tcase_add_test(tc, backward_bad_arguments);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
