/* test_fused.c — the fused ops against the composite definitions that
 * DESIGN.md §5 keeps as their oracles: the same values, the same
 * gradients, the same gradients of gradients.
 *
 * The convolution (ops/conv.c): conv, conv_grad_x and conv_grad_w
 * against tg_conv_composite (im2col, matmul, permute), conv_relu against
 * ReLU after it, each op's own
 * gradient check (their backward rules are each other), results
 * independent of the thread count, and errors naming the op. The layer
 * tg_conv2d built on conv is checked against the direct loop and the
 * book's Convolution.backward in test_conv.c.
 *
 * conv_max_pool's twin is in test_conv_pool.c; the helpers both suites
 * use are in conv_twin.h.
 *
 * where_pos (ops/binary.c), ReLU's one-pass where, against
 * where(gt(x, 0), a, 0) and a plain loop. (max_scatter's twin is in
 * test_reduce.c; its 2×2 kernel against a loop is here; sigmoid's against
 * ½ tanh(x/2) + ½ is in test_unary.c.) tanh_grad and sigmoid_grad, the
 * one-pass backward rules of tanh and sigmoid, against their twins: the
 * same bits, gradients of first and second order. No op runs in main(): with libgomp, a
 * forked Check test hangs if its parent ran OpenMP.
 */
#include <omp.h>

#include "conv_twin.h"

/* Stride 1 with "same" padding (the linear runs), stride 1 with a width
 * change (pad 2 on 3×3: DeepConvNet's conv4), strides 2 and 3, a 1×1
 * filter, a window that can lie wholly in the padding, a filter as large
 * as the padded input, one image (one group of dW), 11 images (groups of
 * unequal size), 40 channels at stride 2; then 3×3 filters at stride 1
 * with at least 4 channels in and out, which run as Winograd convolutions
 * (ops/winograd.c; the fixture sets TG_WINOGRAD_ALWAYS, and the twin test
 * runs them again with the direct product): odd channel counts, odd and even heights and widths
 * (output blocks cut by the edge), pads 0, 1 and 2, one and three
 * images, one output element, 17 and 18 channels (a whole vector of
 * channels and a part of one in the transforms); and three large enough
 * to run on threads,
 * the last Winograd's with 13 blocks of images in 8 groups for dW (the
 * last block short). */
static const geom GEOMS[] = {
    {2, 3, 6, 5, 4, 3, 3, 1, 1},      {3, 2, 5, 5, 3, 3, 3, 1, 2},
    {2, 2, 7, 9, 3, 3, 3, 2, 1},      {1, 3, 9, 6, 2, 3, 3, 3, 0},
    {2, 4, 4, 5, 3, 1, 1, 1, 0},      {2, 1, 4, 3, 2, 1, 1, 1, 2},
    {2, 2, 4, 3, 3, 6, 5, 1, 1},      {1, 2, 5, 6, 5, 2, 3, 1, 0},
    {11, 2, 5, 4, 3, 3, 3, 1, 1},     {3, 40, 15, 15, 4, 3, 3, 2, 1},
    {1, 5, 7, 9, 7, 3, 3, 1, 0},      {3, 6, 5, 7, 5, 3, 3, 1, 1},
    {3, 7, 9, 5, 6, 3, 3, 1, 2},      {1, 4, 3, 3, 4, 3, 3, 1, 0},
    {2, 5, 4, 6, 9, 3, 3, 1, 2},      {1, 17, 5, 6, 18, 3, 3, 1, 1},
    {20, 8, 12, 12, 16, 3, 3, 1, 1},  {16, 3, 20, 18, 12, 5, 5, 1, 0},
    {50, 21, 15, 15, 14, 3, 3, 1, 1},
};
enum { NGEOMS = sizeof GEOMS / sizeof GEOMS[0], NSMALL = NGEOMS - 3 };

typedef tg_tensor *(*conv_fn)(tg_tape *, tg_tensor *, tg_tensor *, tg_tensor *, int64_t, int64_t);

/* conv_relu's twin: ReLU (where_pos) after the composite convolution. */
static tg_tensor *conv_relu_composite(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                      int64_t stride, int64_t pad) {
  return tg_relu(tape, tg_conv_composite(tape, x, W, b, stride, pad));
}

/* dx, dW and db of Σ dy ⊙ f(x, W, b), through the tape. */
static void first_grads(tg_tape *tape, conv_fn f, geom g, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                        tg_tensor *dy, tg_tensor **gx) {
  tg_tensor *y = f(tape, x, W, b, g.stride, g.pad);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  ck_assert_msg(tg_grad(tape, y, dy, 3, (tg_tensor *[]){x, W, b}, gx, 0) == TG_OK, "%s",
                tg_tape_error(tape));
}

/* dx, dW and db of the fused op f against its twin (returned in gc), each
 * named by prefix and what. */
static void same_grads(tg_tape *tape, conv_fn f, conv_fn twin, geom g, tg_tensor *x, tg_tensor *W,
                       tg_tensor *b, tg_tensor *dy, const char *prefix, int k, tg_tensor **gc) {
  static const char *const what[3] = {"dx", "dW", "db"};
  tg_tensor *gf[3];
  first_grads(tape, f, g, x, W, b, dy, gf);
  first_grads(tape, twin, g, x, W, b, dy, gc);
  for (int i = 0; i < 3; i++) {
    char name[40];
    snprintf(name, sizeof name, "%s%s", prefix, what[i]);
    same_values(gf[i], gc[i], TWIN_TOL, name, k);
  }
}

/* ------------------------------------------------------------------------
 * The twin */

/* Each geometry with the Winograd kernels wherever they fit (the suite's
 * fixture), then those that fit again with the direct product. */
START_TEST(test_conv_matches_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 41);
  for (int k = 0; k < 2 * NGEOMS; k++) {
    geom g = GEOMS[k % NGEOMS];
    if (k >= NGEOMS && !winograd_geometry(g))
      continue;
    tg_set_conv_winograd(k < NGEOMS ? TG_WINOGRAD_ALWAYS : TG_WINOGRAD_NEVER);
    tg_tensor *x = rand_x(tape, g, 1), *W = rand_w(tape, g, 1), *dy = rand_dy(tape, g, 0);
    tg_tensor *b = rand_t(tape, (int64_t[]){g.fn}, 1, 1);
    same_values(tg_conv(tape, x, W, NULL, g.stride, g.pad),
                tg_conv_composite(tape, x, W, NULL, g.stride, g.pad), TWIN_TOL, "conv", k);
    same_values(tg_conv(tape, x, W, b, g.stride, g.pad),
                tg_conv_composite(tape, x, W, b, g.stride, g.pad), TWIN_TOL, "conv + b", k);
    tg_tensor *gc[3];
    same_grads(tape, tg_conv, tg_conv_composite, g, x, W, b, dy, "", k, gc);
    /* conv_relu against ReLU after the composite: values and gradients. */
    same_values(tg_conv_relu(tape, x, W, b, g.stride, g.pad),
                conv_relu_composite(tape, x, W, b, g.stride, g.pad), TWIN_TOL, "conv_relu", k);
    tg_tensor *rc[3];
    same_grads(tape, tg_conv_relu, conv_relu_composite, g, x, W, b, dy, "conv_relu ", k, rc);
    /* The gradient ops called directly give the same. */
    same_values(tg_conv_grad_x(tape, dy, W, x->shape, g.stride, g.pad), gc[0], TWIN_TOL,
                "conv_grad_x", k);
    same_values(tg_conv_grad_w(tape, x, dy, g.fh, g.fw, g.stride, g.pad), gc[1], TWIN_TOL,
                "conv_grad_w", k);
    tg_tape_reset(tape);
  }
  tg_set_conv_winograd(TG_WINOGRAD_ALWAYS);
  tg_tape_free(tape);
}
END_TEST

/* y, dx and dW of one geometry under the current mode, each in its own
 * tensor. */
static void conv_three(tg_tape *tape, geom g, tg_tensor *x, tg_tensor *W, tg_tensor *dy,
                       tg_tensor **out) {
  out[0] = tg_conv(tape, x, W, NULL, g.stride, g.pad);
  out[1] = tg_conv_grad_x(tape, dy, W, x->shape, g.stride, g.pad);
  out[2] = tg_conv_grad_w(tape, x, dy, g.fh, g.fw, g.stride, g.pad);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(out[i] != NULL, "%s", tg_tape_error(tape));
}

/* TG_WINOGRAD_AUTO runs the direct product below TG_WINOGRAD_MIN_OUTPUTS
 * output positions and Winograd's from there, for all three ops: its bits
 * are those of NEVER for 9 outputs and of ALWAYS for 288 (two images of
 * 12×12), which differ from each other by rounding. */
START_TEST(test_winograd_mode_dispatch) {
  ck_assert_int_eq(tg_set_conv_winograd(3), TG_ERR_ARG);
  ck_assert_int_eq(tg_set_conv_winograd(-1), TG_ERR_ARG);
  const geom small = {1, 4, 3, 3, 5, 3, 3, 1, 1}, large = {2, 4, 12, 12, 5, 3, 3, 1, 1};
  ck_assert(1 * 3 * 3 < TG_WINOGRAD_MIN_OUTPUTS && 2 * 12 * 12 >= TG_WINOGRAD_MIN_OUTPUTS);
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 47);
  for (int big = 0; big < 2; big++) {
    const geom g = big ? large : small;
    tg_tensor *x = rand_x(tape, g, 0), *W = rand_w(tape, g, 0), *dy = rand_dy(tape, g, 0);
    tg_tensor *always[3], *never[3], *aut[3];
    ck_assert_int_eq(tg_set_conv_winograd(TG_WINOGRAD_ALWAYS), TG_OK);
    conv_three(tape, g, x, W, dy, always);
    ck_assert_int_eq(tg_set_conv_winograd(TG_WINOGRAD_NEVER), TG_OK);
    conv_three(tape, g, x, W, dy, never);
    ck_assert_int_eq(tg_set_conv_winograd(TG_WINOGRAD_AUTO), TG_OK);
    conv_three(tape, g, x, W, dy, aut);
    for (int i = 0; i < 3; i++) {
      same_values(always[i], never[i], TWIN_TOL, "ALWAYS against NEVER", i);
      ck_assert_msg(!same_bits(always[i], never[i]),
                    "op %d, %s: the two algorithms gave the same bits, so the test cannot tell "
                    "them apart",
                    i, big ? "large" : "small");
      ck_assert_msg(same_bits(aut[i], big ? always[i] : never[i]),
                    "op %d: AUTO did not run %s for %d outputs", i,
                    big ? "Winograd" : "the direct product", big ? 288 : 9);
    }
  }
  tg_set_conv_winograd(TG_WINOGRAD_ALWAYS);
  tg_tape_free(tape);
}
END_TEST

/* Second order: h = Σ (dx ⊙ u) + Σ (dW ⊙ v), where (dx, dW) is the
 * recorded gradient of Σ tanh(f(x, W)) ⊙ r; the gradients of h with
 * respect to x and W run conv_grad_x's and conv_grad_w's own backward
 * rules for the fused op, the composite's chain of im2col, col2im, matmul
 * and permute for the twin. */
static void second_grads(tg_tape *tape, conv_fn f, geom g, tg_tensor *x, tg_tensor *W, tg_tensor *r,
                         tg_tensor *u, tg_tensor *v, tg_tensor **out) {
  tg_tensor *y = tg_tanh(tape, f(tape, x, W, NULL, g.stride, g.pad));
  tg_tensor *gx[2];
  ck_assert_msg(y && tg_grad(tape, y, r, 2, (tg_tensor *[]){x, W}, gx, 1) == TG_OK, "%s",
                tg_tape_error(tape));
  tg_tensor *h = tg_add(tape, tg_sum(tape, tg_mul(tape, gx[0], u), NULL, 0, 0),
                        tg_sum(tape, tg_mul(tape, gx[1], v), NULL, 0, 0));
  ck_assert_msg(h && tg_grad(tape, h, NULL, 2, (tg_tensor *[]){x, W}, out, 0) == TG_OK, "%s",
                tg_tape_error(tape));
}

START_TEST(test_second_order_matches_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 42);
  for (int k = 0; k < NSMALL; k++) {
    geom g = GEOMS[k];
    tg_tensor *x = rand_x(tape, g, 1), *W = rand_w(tape, g, 1), *r = rand_dy(tape, g, 0);
    tg_tensor *u = rand_x(tape, g, 0), *v = rand_w(tape, g, 0);
    tg_tensor *hf[2], *hc[2];
    second_grads(tape, tg_conv, g, x, W, r, u, v, hf);
    second_grads(tape, tg_conv_composite, g, x, W, r, u, v, hc);
    same_values(hf[0], hc[0], TWIN_TOL, "d²/dx", k);
    same_values(hf[1], hc[1], TWIN_TOL, "d²/dW", k);
    second_grads(tape, tg_conv_relu, g, x, W, r, u, v, hf);
    second_grads(tape, conv_relu_composite, g, x, W, r, u, v, hc);
    same_values(hf[0], hc[0], TWIN_TOL, "conv_relu d²/dx", k);
    same_values(hf[1], hc[1], TWIN_TOL, "conv_relu d²/dW", k);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Gradient checks of each op in each input (conv with its bias). */

enum { GC_CONV, GC_GRAD_X, GC_GRAD_W, GC_CONV_RELU };

typedef struct gc_ctx {
  int which;
  geom g;
} gc_ctx;

static tg_tensor *gc_fn(tg_tape *tape, tg_tensor *const *in, void *vctx) {
  const gc_ctx *c = vctx;
  geom g = c->g;
  switch (c->which) {
  case GC_CONV:
    return tg_conv(tape, in[0], in[1], in[2], g.stride, g.pad);
  case GC_CONV_RELU:
    return tg_conv_relu(tape, in[0], in[1], in[2], g.stride, g.pad);
  case GC_GRAD_X:
    return tg_conv_grad_x(tape, in[0], in[1], (int64_t[]){g.n, g.c, g.h, g.w}, g.stride, g.pad);
  default:
    return tg_conv_grad_w(tape, in[0], in[1], g.fh, g.fw, g.stride, g.pad);
  }
}

START_TEST(test_gradcheck_fused_ops) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 43);
  /* Each op is linear in every single coordinate, so the central
   * difference has no truncation error at any step: a large one only
   * shrinks the rounding (float's default 1e-2 leaves ~3e-2 on dW). */
  tg_gradcheck_opts o = {.seed = 7, .eps = sizeof(tg_real) == 8 ? 1e-4 : 0.25};
  for (int k = 0; k < NSMALL; k++) {
    geom g = GEOMS[k];
    tg_tensor *sets[3][3] = {
        {rand_x(tape, g, 1), rand_w(tape, g, 1), rand_t(tape, (int64_t[]){g.fn}, 1, 1)},
        {rand_dy(tape, g, 1), rand_w(tape, g, 1)},
        {rand_x(tape, g, 1), rand_dy(tape, g, 1)}};
    for (int which = GC_CONV; which <= GC_GRAD_W; which++) {
      gc_ctx c = {which, g};
      const int nin = which == GC_CONV ? 3 : 2;
      tg_gradcheck_report rep[3];
      ck_assert_msg(tg_gradcheck(tape, gc_fn, &c, nin, sets[which], &o, rep) == TG_OK, "%s",
                    tg_tape_error(tape));
      double worst = tg_gradcheck_worst(rep, nin);
      if (!(worst <= TU_GRAD_TOL)) {
        tg_gradcheck_print(rep, nin, sets[which], stderr);
        ck_abort_msg("geometry %d, op %d: gradcheck worst %.3g > %.3g", k, which, worst,
                     (double)TU_GRAD_TOL);
      }
    }
    /* conv_relu is not linear: checked in the double build, where the
     * check is strict (float's rounding of a difference of ReLU'd sums
     * reaches its tolerance); a coordinate whose step flips a ReLU
     * decision is retried with smaller steps (the check is kink-aware).
     * In float, the twin above holds it to the composite. */
    if (sizeof(tg_real) == 8) {
      gc_ctx c = {GC_CONV_RELU, g};
      tg_gradcheck_report rep[3];
      ck_assert_msg(tg_gradcheck(tape, gc_fn, &c, 3, sets[0], &o, rep) == TG_OK, "%s",
                    tg_tape_error(tape));
      double worst = tg_gradcheck_worst(rep, 3);
      if (!(worst <= TU_GRAD_TOL)) {
        tg_gradcheck_print(rep, 3, sets[0], stderr);
        ck_abort_msg("geometry %d, conv_relu: gradcheck worst %.3g > %.3g", k, worst,
                     (double)TU_GRAD_TOL);
      }
    }
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Threads: images (Winograd: blocks of images) go to threads and dW sums
 * fixed groups, so 1, 2 and 3 threads give the same bits. */

START_TEST(test_thread_count_independent) {
  const int threads[3] = {1, 2, 3};
  for (int k = NSMALL; k < NGEOMS; k++) {
    geom g = GEOMS[k];
    tg_tensor *ref[4] = {NULL, NULL, NULL, NULL};
    tg_tape *keep = tg_tape_new();
    for (int t = 0; t < 3; t++) {
      omp_set_num_threads(threads[t]);
      tg_tape *tape = tg_tape_new();
      tg_tape_seed(tape, 44);
      tg_tensor *x = rand_x(tape, g, 0), *W = rand_w(tape, g, 0), *dy = rand_dy(tape, g, 0);
      tg_tensor *b = rand_t(tape, (int64_t[]){g.fn}, 1, 0);
      tg_tensor *out[4] = {tg_conv(tape, x, W, b, g.stride, g.pad),
                           tg_conv_grad_x(tape, dy, W, x->shape, g.stride, g.pad),
                           tg_conv_grad_w(tape, x, dy, g.fh, g.fw, g.stride, g.pad),
                           tg_conv_relu(tape, x, W, b, g.stride, g.pad)};
      for (int o = 0; o < 4; o++) {
        ck_assert_msg(out[o] != NULL, "%s", tg_tape_error(tape));
        if (t == 0) {
          ref[o] = tg_empty(keep, out[o]->shape, out[o]->ndim);
          memcpy(ref[o]->data, out[o]->data, (size_t)out[o]->numel * sizeof(tg_real));
        } else {
          ck_assert_msg(
              memcmp(ref[o]->data, out[o]->data, (size_t)out[o]->numel * sizeof(tg_real)) == 0,
              "geometry %d, output %d: %d threads differ from 1", k, o, threads[t]);
        }
      }
      tg_tape_free(tape);
    }
    tg_tape_free(keep);
  }
  omp_set_num_threads(1);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors */

START_TEST(test_errors_name_the_op) {
  tg_tape *tape = tg_tape_new();
  geom g = GEOMS[0];
  tg_tensor *x = rand_x(tape, g, 0), *W = rand_w(tape, g, 0), *dy = rand_dy(tape, g, 0);
  tg_tensor *x3 = rand_t(tape, (int64_t[]){2, 3, 6}, 3, 0);
  tg_tensor *w2c = rand_t(tape, (int64_t[]){4, 2, 3, 3}, 4, 0);
  tg_tensor *wbig = rand_t(tape, (int64_t[]){4, 3, 9, 3}, 4, 0);

  ck_assert_ptr_null(tg_conv(tape, x3, W, NULL, 1, 1));
  tu_assert_error(tape, "conv", "(2, 3, 6)", "(N, C, H, W)");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0), dy = rand_dy(tape, g, 0);
  w2c = rand_t(tape, (int64_t[]){4, 2, 3, 3}, 4, 0);
  ck_assert_ptr_null(tg_conv(tape, x, w2c, NULL, 1, 1));
  tu_assert_error(tape, "conv", "(2, 3, 6, 5)", "(4, 2, 3, 3)", "same C");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), wbig = rand_t(tape, (int64_t[]){4, 3, 9, 3}, 4, 0);
  ck_assert_ptr_null(tg_conv(tape, x, wbig, NULL, 1, 1));
  tu_assert_error(tape, "conv", "larger than the padded input");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv(tape, x, W, NULL, 2, 0)); /* (6 - 3) is odd */
  tu_assert_error(tape, "conv", "not a multiple of stride 2");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv(tape, x, W, NULL, 1, -1));
  tu_assert_error(tape, "conv", "padding must be >= 0");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  tg_tensor *b3 = rand_t(tape, (int64_t[]){3}, 1, 0);
  ck_assert_ptr_null(tg_conv(tape, x, W, b3, 1, 1));
  tu_assert_error(tape, "conv", "b (3,)", "must be (4,)");
  tg_tape_reset(tape);
  /* conv_grad_x: dy of the wrong shape, no xshape, a bad xshape */
  W = rand_w(tape, g, 0);
  tg_tensor *dy_bad = rand_t(tape, (int64_t[]){g.n, g.fn, 5, 5}, 4, 0);
  ck_assert_ptr_null(tg_conv_grad_x(tape, dy_bad, W, (int64_t[]){2, 3, 6, 5}, 1, 1));
  tu_assert_error(tape, "conv_grad_x", "dy (2, 4, 5, 5) must be (2, 4, 6, 5)");
  tg_tape_reset(tape);
  W = rand_w(tape, g, 0), dy = rand_dy(tape, g, 0);
  ck_assert_ptr_null(tg_conv_grad_x(tape, dy, W, NULL, 1, 1));
  tu_assert_error(tape, "conv_grad_x", "xshape is NULL");
  tg_tape_reset(tape);
  W = rand_w(tape, g, 0), dy = rand_dy(tape, g, 0);
  ck_assert_ptr_null(tg_conv_grad_x(tape, dy, W, (int64_t[]){2, 3, -6, 5}, 1, 1));
  tu_assert_error(tape, "conv_grad_x", "xshape");
  tg_tape_reset(tape);

  /* conv_grad_w: dy that does not fit x's output */
  x = rand_x(tape, g, 0);
  dy_bad = rand_t(tape, (int64_t[]){3, g.fn, 6, 5}, 4, 0);
  ck_assert_ptr_null(tg_conv_grad_w(tape, x, dy_bad, 3, 3, 1, 1));
  tu_assert_error(tape, "conv_grad_w", "dy (3, 4, 6, 5) must be (2, FN, 6, 5)");
  tg_tape_reset(tape);

  /* NULL in, NULL out, and the first message stays */
  ck_assert_ptr_null(tg_conv(tape, NULL, W, NULL, 1, 1));
  tu_assert_error(tape, "conv");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * where_pos */

START_TEST(test_where_pos_values) {
  tg_tape *tape = tg_tape_new();
  const double xs[8] = {-2, -0.0, 0, 1e-30, 3, NAN, 5, -1};
  const double as[8] = {1, 2, 3, 4, NAN, 6, INFINITY, -INFINITY};
  tg_tensor *x = tg_empty(tape, (int64_t[]){2, 4}, 2), *a = tg_empty(tape, (int64_t[]){2, 4}, 2);
  for (int i = 0; i < 8; i++)
    x->data[i] = (tg_real)xs[i], a->data[i] = (tg_real)as[i];
  tg_tensor *y = tg_where_pos(tape, x, a), *c = tg_where_pos_composite(tape, x, a);
  ck_assert_msg(y && c, "%s", tg_tape_error(tape));
  for (int i = 0; i < 8; i++) {
    double want = xs[i] > 0 ? as[i] : 0; /* NaN > 0 is false */
    double got = tg_at(y, i), twin = tg_at(c, i);
    ck_assert_msg((isnan(want) && isnan(got)) || got == want, "element %d: %g, want %g", i, got,
                  want);
    ck_assert_msg((isnan(twin) && isnan(got)) || got == twin, "element %d: %g, composite %g", i,
                  got, twin);
  }
  /* One pass over a large tensor (the threaded path) against the loop. */
  tg_tensor *xl = tg_empty(tape, (int64_t[]){300, 700}, 2);
  tg_tensor *al = tg_empty(tape, (int64_t[]){300, 700}, 2);
  tu_fill_uniform(xl, tg_tape_rng(tape), -1, 1);
  tu_fill_uniform(al, tg_tape_rng(tape), -1, 1);
  tg_tensor *yl = tg_where_pos(tape, xl, al);
  ck_assert_msg(yl != NULL, "%s", tg_tape_error(tape));
  int64_t i = 0;
  while (i < yl->numel && yl->data[i] == (xl->data[i] > 0 ? al->data[i] : 0))
    i++;
  ck_assert_msg(i == yl->numel, "element %lld: %.17g, x %.17g, a %.17g", (long long)i,
                i < yl->numel ? (double)yl->data[i] : 0.0,
                i < yl->numel ? (double)xl->data[i] : 0.0,
                i < yl->numel ? (double)al->data[i] : 0.0);
  tg_tape_free(tape);
}
END_TEST

/* relu = where_pos(x, x): gradients, first and second order, as the
 * composite's; x gets only the gradient through a. */
START_TEST(test_where_pos_gradients_match_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 45);
  const int64_t shape[2] = {7, 9};
  tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, shape, 2));
  tu_fill_signed(x, tg_tape_rng(tape), 0.1, 2);
  tg_tensor *dy = rand_t(tape, shape, 2, 0), *u = rand_t(tape, shape, 2, 0);
  tg_tensor *(*fs[2])(tg_tape *, tg_tensor *, tg_tensor *) = {tg_where_pos, tg_where_pos_composite};
  tg_tensor *g1[2], *g2[2];
  for (int k = 0; k < 2; k++) {
    /* y = tanh(relu(x))·relu(x); g1 = dy·dy/dx recorded; g2 = d(Σ u·g1)/dx */
    tg_tensor *r = fs[k](tape, x, x);
    tg_tensor *y = tg_mul(tape, tg_tanh(tape, r), r);
    ck_assert_msg(y && tg_grad(tape, y, dy, 1, &x, &g1[k], 1) == TG_OK, "%s", tg_tape_error(tape));
    tg_tensor *h = tg_sum(tape, tg_mul(tape, g1[k], u), NULL, 0, 0);
    ck_assert_msg(h && tg_grad(tape, h, NULL, 1, &x, &g2[k], 0) == TG_OK, "%s",
                  tg_tape_error(tape));
  }
  same_values(g1[0], g1[1], TU_VALUE_TOL, "relu'", 0);
  same_values(g2[0], g2[1], TU_VALUE_TOL, "relu''", 0);
  for (int64_t i = 0; i < x->numel; i++) { /* and the loop: 0 where x < 0 */
    double v = x->data[i], t = tanh(v);
    double want = v > 0 ? tg_at(dy, i) * (t + v * (1 - t * t)) : 0;
    ck_assert_msg(tu_rel(tg_at(g1[0], i), want) <= TU_VALUE_TOL * 10, "element %lld: %g, want %g",
                  (long long)i, tg_at(g1[0], i), want);
  }
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *where_pos_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  (void)ctx;
  return tg_where_pos(tape, in[0], in[1]);
}

START_TEST(test_where_pos_gradcheck_and_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 46);
  tg_tensor *x = tg_empty(tape, (int64_t[]){4, 6}, 2);
  tu_fill_signed(x, tg_tape_rng(tape), 0.1, 1); /* a constant decider */
  tg_tensor *a = rand_t(tape, (int64_t[]){4, 6}, 2, 1);
  tg_tensor *in[2] = {x, a};
  tu_assert_gradcheck(tape, where_pos_fn, NULL, 2, in, TU_GRAD_TOL);

  /* Only the decider requires grad: the output is a constant. */
  tg_tensor *xg = tg_requires_grad(tape, tg_empty(tape, (int64_t[]){4, 6}, 2));
  tg_tensor *ac = rand_t(tape, (int64_t[]){4, 6}, 2, 0);
  tg_tensor *y = tg_where_pos(tape, xg, ac);
  ck_assert_msg(y && !(y->flags & TG_REQUIRES_GRAD), "where_pos(x, constant) requires grad");

  tg_tensor *bad = rand_t(tape, (int64_t[]){6, 4}, 2, 0);
  ck_assert_ptr_null(tg_where_pos(tape, x, bad));
  tu_assert_error(tape, "where_pos", "(4, 6)", "(6, 4)", "same shape");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * max and max_scatter on 2×2 windows (x viewed as (A, 2, B, 2), the
 * pools' layout), which take a vectorised path of their own: every row
 * length B from 1 to 20 (shorter than a vector, whole vectors, a partial
 * last block), ties, and NaNs (the first NaN of a window wins, as
 * everywhere in max), against a plain loop; max_scatter also against its
 * composite twin. */
START_TEST(test_pool_2x2_kernel_against_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 47);
  const int axes[2] = {1, 3};
  for (int64_t B = 1; B <= 20; B++)
    for (int kind = 0; kind < 3; kind++) { /* distinct, ties, NaNs */
      const int64_t A = 7, shape[4] = {A, 2, B, 2};
      tg_tensor *x = rand_t(tape, shape, 4, 0), *dy = rand_t(tape, (int64_t[]){A, B}, 2, 0);
      for (int64_t i = 0; i < x->numel; i++) {
        if (kind == 1)
          x->data[i] = (tg_real)floor(2 * x->data[i]);
        if (kind == 2 && (i * 7919) % 13 == 0)
          x->data[i] = NAN;
      }
      tg_tensor *y = tg_max(tape, x, axes, 2, 0), *gs = tg_max_scatter(tape, x, dy, axes, 2);
      tg_tensor *gc = tg_max_scatter_composite(tape, x, dy, axes, 2);
      ck_assert_msg(y && gs && gc, "%s", tg_tape_error(tape));
      for (int64_t a = 0; a < A; a++)
        for (int64_t b = 0; b < B; b++) {
          int64_t first = -1;
          double m = 0;
          for (int64_t r = 0; r < 2; r++)
            for (int64_t l = 0; l < 2; l++) {
              const int64_t i = ((a * 2 + r) * B + b) * 2 + l;
              const double v = x->data[i];
              if (first < 0 || v > m || (isnan(v) && !isnan(m)))
                m = v, first = i;
            }
          const double got = tg_at(y, a * B + b);
          ck_assert_msg((isnan(m) && isnan(got)) || got == m,
                        "B %lld, kind %d: window (%lld, %lld) max %g, loop %g", (long long)B, kind,
                        (long long)a, (long long)b, got, m);
          for (int64_t r = 0; r < 2; r++)
            for (int64_t l = 0; l < 2; l++) {
              const int64_t i = ((a * 2 + r) * B + b) * 2 + l;
              const double g = i == first ? dy->data[a * B + b] : 0;
              ck_assert_msg(tg_at(gs, i) == g && tg_at(gc, i) == g,
                            "B %lld, kind %d: x[%lld] gets %g (composite %g), want %g",
                            (long long)B, kind, (long long)i, tg_at(gs, i), tg_at(gc, i), g);
            }
        }
      tg_tape_reset(tape);
    }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * tanh_grad and sigmoid_grad (ops/unary.c), tanh's and sigmoid's one-pass
 * backward rules, against their twins written with ops. */

typedef tg_tensor *(*y_grad_fn)(tg_tape *, tg_tensor *, tg_tensor *);
static const struct {
  const char *name;
  tg_tensor *(*f)(tg_tape *, tg_tensor *); /* y = f(x) */
  y_grad_fn fused, twin;
} y_grads[2] = {{"tanh_grad", tg_tanh, tg_tanh_grad, tg_tanh_grad_composite},
                {"sigmoid_grad", tg_sigmoid, tg_sigmoid_grad, tg_sigmoid_grad_composite}};

/* The first index where a and b differ in any bit, or -1. */
static int64_t first_diff(const tg_tensor *a, const tg_tensor *b) {
  for (int64_t i = 0; i < a->numel; i++)
    if (memcmp(&a->data[i], &b->data[i], sizeof(tg_real)) != 0)
      return i;
  return -1;
}

/* The twin's bits, on an odd shape and on one large enough for threads
 * (1 and 2 of them alike), y saturated at ±1 or 0 and 1 and near them;
 * and as tanh's and sigmoid's backward rules. */
START_TEST(test_y_grad_values) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 47);
  const int64_t sizes[2] = {7 * 13, 3 * TG_PAR_MIN + 5};
  for (int k = 0; k < 2; k++)
    for (int z = 0; z < 2; z++) {
      tg_tensor *x = tg_requires_grad(tape, tg_empty(tape, &sizes[z], 1));
      tu_fill_uniform(x, tg_tape_rng(tape), -20, 20);
      tg_tensor *dy = rand_t(tape, &sizes[z], 1, 0), *y = y_grads[k].f(tape, x), *g[2];
      tg_tensor *twin = y_grads[k].twin(tape, y, dy);
      for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        g[t] = y_grads[k].fused(tape, y, dy);
        ck_assert_msg(g[t] && twin, "%s", tg_tape_error(tape));
        int64_t i = first_diff(g[t], twin);
        ck_assert_msg(i < 0, "%s, %lld elements, %d threads: element %lld is %a, the twin %a",
                      y_grads[k].name, (long long)sizes[z], t + 1, (long long)i,
                      i < 0 ? 0.0 : (double)g[t]->data[i], i < 0 ? 0.0 : (double)twin->data[i]);
      }
      tg_tensor *gx = NULL; /* the backward rule of tanh or sigmoid */
      ck_assert_int_eq(tg_grad(tape, y, dy, 1, &x, &gx, 0), TG_OK);
      ck_assert_msg(first_diff(gx, twin) < 0, "%s: the backward of its forward differs",
                    y_grads[k].name);
      tg_tape_reset(tape);
    }
  omp_set_num_threads(1);
  tg_tape_free(tape);
}
END_TEST

/* Gradients in y and dy, first and second order, as the twin's. */
START_TEST(test_y_grad_gradients_match_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 48);
  const int64_t shape[2] = {5, 11};
  for (int k = 0; k < 2; k++) {
    tg_tensor *x = rand_t(tape, shape, 2, 0), *in[2], *g1[2][2], *g2[2][2];
    tg_tensor *u = rand_t(tape, shape, 2, 0), *v = rand_t(tape, shape, 2, 0);
    in[0] = tg_requires_grad(tape, y_grads[k].f(tape, x)); /* y, a leaf */
    in[1] = rand_t(tape, shape, 2, 1);                     /* dy */
    for (int w = 0; w < 2; w++) {
      y_grad_fn f = w ? y_grads[k].twin : y_grads[k].fused;
      tg_tensor *h = tg_sum(tape, tg_mul(tape, f(tape, in[0], in[1]), u), NULL, 0, 0);
      ck_assert_msg(h && tg_grad(tape, h, NULL, 2, in, g1[w], 1) == TG_OK, "%s",
                    tg_tape_error(tape));
      tg_tensor *h2 = tg_add(tape, tg_sum(tape, tg_mul(tape, g1[w][0], v), NULL, 0, 0),
                             tg_sum(tape, tg_mul(tape, g1[w][1], v), NULL, 0, 0));
      ck_assert_msg(h2 && tg_grad(tape, h2, NULL, 2, in, g2[w], 0) == TG_OK, "%s",
                    tg_tape_error(tape));
    }
    for (int i = 0; i < 2; i++) {
      same_values(g1[0][i], g1[1][i], TU_VALUE_TOL, y_grads[k].name, i);
      same_values(g2[0][i], g2[1][i], TU_VALUE_TOL, y_grads[k].name, 2 + i);
    }
  }
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *y_grad_call(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  return ((y_grad_fn)ctx)(tape, in[0], in[1]);
}

START_TEST(test_y_grad_gradcheck_and_errors) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 49);
  for (int k = 0; k < 2; k++) {
    tg_tensor *in[2] = {rand_t(tape, (int64_t[]){4, 6}, 2, 1),
                        rand_t(tape, (int64_t[]){4, 6}, 2, 1)};
    tu_assert_gradcheck(tape, y_grad_call, (void *)y_grads[k].fused, 2, in, TU_GRAD_TOL);
    tg_tensor *bad = rand_t(tape, (int64_t[]){6, 4}, 2, 0);
    ck_assert_ptr_null(y_grads[k].fused(tape, in[0], bad));
    tu_assert_error(tape, y_grads[k].name, "(4, 6)", "(6, 4)", "same shape");
    tg_tape_free(tape);
    tape = tg_tape_new();
  }
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("fused");
  TCase *tc = tcase_create("fused");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, winograd_always, winograd_auto);
  tcase_add_test(tc, test_conv_matches_composite);
  tcase_add_test(tc, test_winograd_mode_dispatch);
  tcase_add_test(tc, test_second_order_matches_composite);
  tcase_add_test(tc, test_gradcheck_fused_ops);
  tcase_add_test(tc, test_thread_count_independent);
  tcase_add_test(tc, test_errors_name_the_op);
  tcase_add_test(tc, test_where_pos_values);
  tcase_add_test(tc, test_where_pos_gradients_match_composite);
  tcase_add_test(tc, test_where_pos_gradcheck_and_errors);
  tcase_add_test(tc, test_pool_2x2_kernel_against_loop);
  tcase_add_test(tc, test_y_grad_values);
  tcase_add_test(tc, test_y_grad_gradients_match_composite);
  tcase_add_test(tc, test_y_grad_gradcheck_and_errors);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
