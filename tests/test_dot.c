/* test_dot.c — tg_tape_write_dot: the tape drawn as a Graphviz graph,
 * one node per recorded op with the inputs it really holds (a bias-less
 * convolution, the gradient ops of a double backward). Checks the text
 * written, never renders it.
 */
#include "testutil.h"

/* The tape's DOT text, malloc'd. */
static char *dot_of(const tg_tape *tape) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(tg_tape_write_dot(tape, f), TG_OK);
  fclose(f);
  return buf;
}

START_TEST(test_dot_export) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = tg_tensor_new((int64_t[]){3}, 1, 1, "W", NULL);
  tg_tensor *y = tg_tanh(tape, tg_exp(tape, W));
  ck_assert_ptr_nonnull(y);
  char *buf = dot_of(tape);
  ck_assert_msg(strstr(buf, "digraph tape"), "%s", buf);
  ck_assert_msg(strstr(buf, "#0 exp"), "%s", buf);
  ck_assert_msg(strstr(buf, "#1 tanh"), "%s", buf);
  ck_assert_msg(strstr(buf, "n0 -> n1"), "%s", buf);
  ck_assert_msg(strstr(buf, "W\\n(3,)"), "%s", buf);
  free(buf);
  tg_tensor_free(W);
  tg_tape_free(tape);
}
END_TEST

/* The case: conv without a bias records 2 of its 3 inputs, and
 * DOT export (and backward) walk the 2 the node holds. */
START_TEST(test_dot_export_conv_without_bias) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){1, 2, 4, 4}, 4, -1, 1);
  tg_tensor *W = tu_leaf(tape, (int64_t[]){3, 2, 3, 3}, 4, -1, 1);
  tg_tensor *y = tg_sum(tape, tg_conv(tape, x, W, NULL, 1, 0), NULL, 0, 0);
  ck_assert_msg(y && tg_backward(tape, y, NULL) == TG_OK, "%s", tg_tape_error(tape));
  char *buf = dot_of(tape);
  ck_assert_msg(strstr(buf, "#0 conv"), "%s", buf);
  ck_assert_msg(!strstr(buf, "[label=\"2\"]"), "a third input drawn: %s", buf);
  free(buf);
  tg_tape_free(tape);
}
END_TEST

/* Double backward through the convolution: its gradients are the ops
 * conv_grad_x and conv_grad_w, recorded with create_graph, and the DOT
 * export draws them with their two inputs each. */
START_TEST(test_dot_export_double_backward_of_conv) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tu_leaf(tape, (int64_t[]){1, 2, 4, 4}, 4, -1, 1);
  tg_tensor *W = tu_leaf(tape, (int64_t[]){3, 2, 3, 3}, 4, -1, 1);
  tg_tensor *y = tg_sum(tape, tg_tanh(tape, tg_conv(tape, x, W, NULL, 1, 1)), NULL, 0, 0);
  tg_tensor *xs[] = {x, W}, *g[2];
  ck_assert_msg(tg_grad(tape, y, NULL, 2, xs, g, 1) == TG_OK, "%s", tg_tape_error(tape));
  tg_tensor *p = tg_add(tape, tg_sum(tape, tg_mul(tape, g[0], g[0]), NULL, 0, 0),
                        tg_sum(tape, tg_mul(tape, g[1], g[1]), NULL, 0, 0));
  ck_assert_msg(p && tg_backward(tape, p, NULL) == TG_OK, "%s", tg_tape_error(tape));
  char *buf = dot_of(tape);
  ck_assert_msg(strstr(buf, " conv_grad_x\\n") && strstr(buf, " conv_grad_w\\n"), "%s", buf);
  free(buf);
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("dot");
  TCase *tc = tcase_create("dot");
  tcase_add_test(tc, test_dot_export);
  tcase_add_test(tc, test_dot_export_conv_without_bias);
  tcase_add_test(tc, test_dot_export_double_backward_of_conv);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
