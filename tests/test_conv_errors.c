/* test_conv_errors.c — what the convolution layers (nn/conv.c) and their
 * ops (ops/conv.c) say when called wrongly: conv2d, max_pool2d,
 * avg_pool2d, lrn, im2col and col2im with bad shapes, strides, pads,
 * parameters and NULL inputs. Each call returns NULL, and the tape's
 * message names the op, the shapes and the value at fault.
 */
#include <math.h>
#include <stdint.h>

#include "nn.h"
#include "testutil.h"

/* Runs one call on a fresh step and checks its message fragments. */
#define EXPECT_FAIL(tape, call, ...)                                                               \
  do {                                                                                             \
    ck_assert_msg((call) == NULL, "%s: not NULL", #call);                                          \
    tu_assert_error(tape, __VA_ARGS__);                                                            \
    tg_tape_reset(tape);                                                                           \
  } while (0)

/* A zero tensor of the given shape on `tape`. */
#define Z(...)                                                                                     \
  tg_zeros(tape, (int64_t[]){__VA_ARGS__},                                                         \
           (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

START_TEST(test_layer_errors) {
  tg_tape *tape = tg_tape_new();
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(100, 1, 28, 28), Z(30, 1, 5, 5), NULL, 2, 0),
              "conv2d (op #0):", "x (100, 1, 28, 28), W (30, 1, 5, 5), stride 2, pad 0",
              "(28 + 2*0 - 5) = 23 is not a multiple of stride 2");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(1, 1, 7, 9), Z(2, 1, 3, 2), NULL, 2, 1),
              "conv2d (op #0):", "width", "(9 + 2*1 - 2) = 9 is not a multiple of stride 2");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(1, 1, 3, 3), Z(2, 1, 6, 3), NULL, 1, 1),
              "conv2d (op #0):", "window height 6 is larger than the padded input", "3 + 2*1 = 5");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 3, 3), NULL, 1, 0),
              "conv2d (op #0): W (4, 3, 3)", "(FN, C, FH, FW)");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(3, 8, 8), Z(4, 3, 3, 3), NULL, 1, 0),
              "conv2d (op #0): x (3, 8, 8)", "(N, C, H, W)");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 2, 3, 3), NULL, 1, 0),
              "conv2d (op #0): x (2, 3, 8, 8) has 3 channels but W (4, 2, 3, 3) has 2");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 3, 3, 3), Z(5), 1, 0),
              "conv2d (op #0): b (5,) does not fit W (4, 3, 3, 3)", "(4,)");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 3, 3, 3), Z(4, 1), 1, 0),
              "conv2d (op #0): b (4, 1)");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 3, 3, 3), NULL, 0, 0),
              "conv2d (op #0):", "stride must be >= 1", "stride 0");
  EXPECT_FAIL(tape, tg_conv2d(tape, Z(2, 3, 8, 8), Z(4, 3, 3, 3), NULL, 1, -1),
              "conv2d (op #0):", "pad -1");
  EXPECT_FAIL(tape, tg_max_pool2d(tape, Z(2, 3, 7, 8), 2, 2, 0),
              "max_pool2d (op #0):", "x (2, 3, 7, 8), size 2, stride 2, pad 0", "height",
              "(7 + 2*0 - 2) = 5 is not a multiple of stride 2");
  EXPECT_FAIL(tape, tg_avg_pool2d(tape, Z(2, 3, 8, 8), 0, 2, 0),
              "avg_pool2d (op #0):", "window size must be >= 1");
  EXPECT_FAIL(tape, tg_avg_pool2d(tape, Z(3, 8, 8), 2, 2, 0), "avg_pool2d (op #0): x (3, 8, 8)");
  EXPECT_FAIL(tape, tg_max_pool2d(tape, Z(1, 1, 2, 2), 3, 1, 0),
              "max_pool2d (op #0):", "larger than the padded input");
  EXPECT_FAIL(tape, tg_lrn(tape, Z(2, 3, 4, 4), 0, 1e-4, 0.75, 2), "lrn (op #0): n 0",
              "x (2, 3, 4, 4)");
  EXPECT_FAIL(tape, tg_lrn(tape, Z(2, 3, 4, 4), 5, -1, 0.75, 2), "lrn (op #0):", "alpha -1");
  EXPECT_FAIL(tape, tg_lrn(tape, Z(2, 3, 4, 4), 5, 1e-4, NAN, 2), "lrn (op #0):", "beta nan");
  EXPECT_FAIL(tape, tg_lrn(tape, Z(2, 3, 4, 4), 5, 1e-4, 0.75, 0), "lrn (op #0):", "k 0");
  EXPECT_FAIL(tape, tg_lrn(tape, Z(2, 3, 4), 5, 1e-4, 0.75, 2), "lrn (op #0): x (2, 3, 4)");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_op_errors) {
  tg_tape *tape = tg_tape_new();
  const int64_t xs[4] = {2, 3, 7, 7};
  EXPECT_FAIL(tape, tg_im2col(tape, Z(3, 7, 7), 3, 3, 1, 0), "im2col (op #0): x (3, 7, 7)", "4-D");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(2, 3, 7, 8), 3, 3, 2, 0), "im2col (op #0)",
              "x (2, 3, 7, 8), filter 3x3, stride 2, pad 0", "width",
              "(8 + 2*0 - 3) = 5 is not a multiple of stride 2");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(2, 3, 7, 7), 0, 3, 1, 0), "im2col", "filter 0x3",
              "must be positive");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(2, 3, 7, 7), 3, 3, 0, 0), "im2col",
              "stride must be positive");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(2, 3, 7, 7), 3, 3, 1, -2), "im2col", "pad -2", ">= 0");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(2, 3, 2, 7), 5, 3, 1, 1), "im2col",
              "filter height 5 is larger than the padded input (2 + 2*1 = 4)");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(1, 1, 1, 1), 1, 1, 1, INT64_MAX / 2 + 1), "im2col",
              "padded height overflows");
  EXPECT_FAIL(tape, tg_im2col(tape, Z(1, 1, 1, 1), 1, 1, 1, (int64_t)1 << 31), "im2col",
              "patch matrix", "too large");
  EXPECT_FAIL(tape, tg_col2im(tape, Z(98, 27), xs, 3, 3, 1, 0), "col2im",
              "col (98, 27) to x (2, 3, 7, 7)", "col must be (50, 27)");
  EXPECT_FAIL(tape, tg_col2im(tape, Z(98), xs, 3, 3, 1, 0), "col2im", "col (98,)", "2-D");
  EXPECT_FAIL(tape, tg_col2im(tape, Z(50, 27), NULL, 3, 3, 1, 0), "col2im", "xshape is NULL");
  EXPECT_FAIL(tape, tg_col2im(tape, Z(50, 27), ((int64_t[]){2, 0, 7, 7}), 3, 3, 1, 0), "col2im",
              "dimension 1");
  EXPECT_FAIL(tape, tg_col2im(tape, Z(50, 27), xs, 3, 3, 3, 0), "col2im",
              "(7 + 2*0 - 3) = 4 is not a multiple of stride 3");
  tg_tape_free(tape);
}
END_TEST
#undef Z

/* Call k: one input NULL. */
static const char *const null_frag[] = {
    "conv2d (op #0): x is NULL",      "conv2d (op #0): W is NULL",
    "max_pool2d (op #0): x is NULL",  "avg_pool2d (op #0): x is NULL",
    "lrn (op #0): x is NULL",         "im2col (op #0): input 0 is NULL",
    "col2im (op #0): input 0 is NULL"};
enum { NNULL = sizeof null_frag / sizeof null_frag[0] };

static tg_tensor *null_call(tg_tape *tape, int k, tg_tensor *x) {
  switch (k) {
  case 0:
    return tg_conv2d(tape, NULL, x, NULL, 1, 0);
  case 1:
    return tg_conv2d(tape, x, NULL, NULL, 1, 0);
  case 2:
    return tg_max_pool2d(tape, NULL, 2, 2, 0);
  case 3:
    return tg_avg_pool2d(tape, NULL, 2, 2, 0);
  case 4:
    return tg_lrn(tape, NULL, 5, 1e-4, 0.75, 2);
  case 5:
    return tg_im2col(tape, NULL, 1, 1, 1, 0);
  default:
    return tg_col2im(tape, NULL, (int64_t[]){1, 1, 2, 2}, 1, 1, 1, 0);
  }
}

/* NULL in gives NULL out naming the layer; a failed tape keeps its first
 * message; no tape at all gives NULL. */
START_TEST(test_null_inputs) {
  tg_tape *tape = tg_tape_new();
  for (int k = 0; k < NNULL; k++)
    for (int failed = 0; failed < 2; failed++) {
      tg_tensor *x = tg_zeros(tape, (int64_t[]){1, 1, 2, 2}, 4);
      if (failed)
        tg_tape_fail(tape, TG_ERR_ARG, "test", "an earlier failure");
      ck_assert_msg(null_call(tape, k, x) == NULL, "%s: not NULL", null_frag[k]);
      ck_assert_int_eq(tg_tape_status(tape), failed ? TG_ERR_ARG : TG_ERR_NULL);
      tu_assert_error(tape, failed ? "an earlier failure" : null_frag[k]);
      tg_tape_reset(tape);
      ck_assert_msg(null_call(NULL, k, NULL) == NULL, "%s: not NULL without a tape", null_frag[k]);
    }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("conv_errors");
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_layer_errors);
  tcase_add_test(err, test_op_errors);
  tcase_add_test(err, test_null_inputs);
  suite_add_tcase(s, err);
  return s;
}

TU_MAIN(make_suite)
