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
 * conv_max_pool (ops/conv.c) against max_pool2d of the composite
 * convolution: values, first and second derivatives, its gradient check,
 * ties, thread counts and errors.
 *
 * where_pos (ops/binary.c), ReLU's one-pass where, against
 * where(gt(x, 0), a, 0) and a plain loop. (max_scatter's twin is in
 * test_reduce.c.) No op runs in main(): with libgomp, a forked Check test
 * hangs if its parent ran OpenMP.
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "nn.h"
#include "testutil.h"

/* The fused path sums the same products in another order (per image,
 * through other GEMM kernels, or by Winograd's F(4×4, 3×3), whose
 * transforms scale terms by up to 100 and 1/24 before they cancel). Its
 * rounding error is a multiple of the terms' magnitude, not of each
 * result's (dW's elements are sums of thousands of terms that cancel to
 * near 0), so differences are measured against the largest magnitude of
 * the tensor (at least 1). Measured in float: at most 4.6e-6 of it
 * (Winograd; im2col 2e-7 to 9e-7). */
#define TWIN_TOL (sizeof(tg_real) == 8 ? 1e-12 : 2e-5)

/* One geometry: x (n, c, h, w), fn filters fh×fw, stride, pad. */
typedef struct geom {
  int64_t n, c, h, w, fn, fh, fw, stride, pad;
} geom;

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

static int64_t out_h(geom g) { return (g.h + 2 * g.pad - g.fh) / g.stride + 1; }
static int64_t out_w(geom g) { return (g.w + 2 * g.pad - g.fw) / g.stride + 1; }

static tg_tensor *rand_t(tg_tape *tape, const int64_t *shape, int nd, int grad) {
  tg_tensor *t = tg_empty(tape, shape, nd);
  ck_assert_msg(t != NULL, "tg_empty: %s", tg_tape_error(tape));
  tu_fill_uniform(t, tg_tape_rng(tape), -1, 1);
  return grad ? tg_requires_grad(tape, t) : t;
}

static tg_tensor *rand_x(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.n, g.c, g.h, g.w}, 4, grad);
}
static tg_tensor *rand_w(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.fn, g.c, g.fh, g.fw}, 4, grad);
}
static tg_tensor *rand_dy(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.n, g.fn, out_h(g), out_w(g)}, 4, grad);
}

static void same_values(const tg_tensor *got, const tg_tensor *want, double tol, const char *what,
                        int k) {
  ck_assert_msg(got && want, "geometry %d, %s: NULL", k, what);
  ck_assert_msg(got->ndim == want->ndim && got->numel == want->numel,
                "geometry %d, %s: %s, want %s", k, what, TG_SHAPE(got), TG_SHAPE(want));
  for (int i = 0; i < got->ndim; i++)
    ck_assert_msg(got->shape[i] == want->shape[i], "geometry %d, %s: %s, want %s", k, what,
                  TG_SHAPE(got), TG_SHAPE(want));
  double scale = 1;
  for (int64_t i = 0; i < want->numel; i++)
    scale = fmax(scale, fabs(tg_at(want, i)));
  double worst = 0;
  for (int64_t i = 0; i < got->numel; i++)
    worst = fmax(worst, fabs(tg_at(got, i) - tg_at(want, i)) / scale);
  for (int64_t i = 0; i < got->numel; i++)
    ck_assert_msg(fabs(tg_at(got, i) - tg_at(want, i)) <= tol * scale,
                  "geometry %d, %s: element %lld is %.17g, the composite gives %.17g (worst "
                  "difference %.3g of the largest magnitude %.3g)",
                  k, what, (long long)i, tg_at(got, i), tg_at(want, i), worst, scale);
}

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

/* 3×3 filters at stride 1 with at least 4 channels in and out, the
 * geometries tg_set_conv_winograd chooses an algorithm for. */
static int winograd_geometry(geom g) {
  return g.fh == 3 && g.fw == 3 && g.stride == 1 && g.c >= 4 && g.fn >= 4;
}

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

static int same_bits(const tg_tensor *a, const tg_tensor *b) {
  return a->numel == b->numel && memcmp(a->data, b->data, (size_t)a->numel * sizeof(tg_real)) == 0;
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
 * conv_max_pool: the pooling fused into the convolution */

/* A geometry and the pooling window size s (stride s). */
typedef struct pgeom {
  geom g;
  int64_t s;
} pgeom;

/* SimpleConvNet's layer on one image; batch 2 with 7 and 9 filters (not
 * a multiple of the vector width) and rows of 2 to 16 windows (shorter
 * and longer than a vector); a strided convolution; 3×3 windows; 1×1
 * windows (no pooling); 3×3 filters at stride 1 with 5 and 6 channels,
 * which run as Winograd convolutions (the fixture), pooled after. The
 * last four are large enough to run on threads, the 40-image one also
 * its scatter of dy to the maxima (over 10^5 elements), the last also
 * its filter transforms (32 × 32 filters). */
static const pgeom PGEOMS[] = {
    {{1, 1, 28, 28, 30, 5, 5, 1, 0}, 2},  {{2, 3, 12, 8, 7, 5, 5, 1, 0}, 2},
    {{2, 2, 36, 20, 9, 5, 5, 1, 0}, 2},   {{1, 2, 9, 9, 3, 3, 3, 2, 0}, 2},
    {{2, 3, 11, 8, 4, 3, 3, 1, 1}, 1},    {{2, 2, 11, 10, 5, 3, 2, 1, 0}, 3},
    {{2, 5, 9, 9, 6, 3, 3, 1, 1}, 3},     {{3, 5, 8, 8, 6, 3, 3, 1, 1}, 2},
    {{16, 3, 20, 20, 12, 5, 5, 1, 0}, 2}, {{20, 8, 12, 12, 16, 3, 3, 1, 1}, 2},
    {{40, 8, 16, 16, 16, 3, 3, 1, 1}, 2}, {{6, 32, 8, 8, 32, 3, 3, 1, 1}, 2},
};
enum { NPGEOMS = sizeof PGEOMS / sizeof PGEOMS[0], NPSMALL = NPGEOMS - 4 };

/* The twin: max_pool2d (the tiling windows' tg_max) of the composite. */
static tg_tensor *conv_pool_composite(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                      pgeom p) {
  return tg_max_pool2d(tape, tg_conv_composite(tape, x, W, b, p.g.stride, p.g.pad), p.s, p.s, 0);
}

static tg_tensor *conv_pool_fused(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                  pgeom p) {
  return tg_conv_max_pool(tape, x, W, b, p.g.stride, p.g.pad, p.s);
}

typedef tg_tensor *(*pool_fn)(tg_tape *, tg_tensor *, tg_tensor *, tg_tensor *, pgeom);

static tg_tensor *rand_pooled(tg_tape *tape, pgeom p, int grad) {
  return rand_t(tape, (int64_t[]){p.g.n, p.g.fn, out_h(p.g) / p.s, out_w(p.g) / p.s}, 4, grad);
}

/* dx, dW, db of Σ dy ⊙ f(x, W, b). */
static void pool_grads(tg_tape *tape, pool_fn f, pgeom p, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                       tg_tensor *dy, tg_tensor **gx) {
  tg_tensor *y = f(tape, x, W, b, p);
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  ck_assert_msg(tg_grad(tape, y, dy, 3, (tg_tensor *[]){x, W, b}, gx, 0) == TG_OK, "%s",
                tg_tape_error(tape));
}

/* Values and gradients of the fused op against the twin, tolerance tol
 * (0: the same bits). */
static void pool_twin(tg_tape *tape, pgeom p, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                      tg_tensor *dy, double tol, int k) {
  static const char *const what[3] = {"conv_max_pool dx", "conv_max_pool dW", "conv_max_pool db"};
  same_values(conv_pool_fused(tape, x, W, b, p), conv_pool_composite(tape, x, W, b, p), tol,
              "conv_max_pool", k);
  tg_tensor *gf[3], *gc[3];
  pool_grads(tape, conv_pool_fused, p, x, W, b, dy, gf);
  pool_grads(tape, conv_pool_composite, p, x, W, b, dy, gc);
  for (int i = 0; i < 3; i++)
    same_values(gf[i], gc[i], tol, what[i], k);
}

/* Random values, and integers in [-2, 2] (x, W, b and dy: every product
 * and sum exact in either algorithm, so the bits must agree, and the maps
 * hold many ties, each resolved the same way by both: the gradient goes
 * to the first maximum). */
START_TEST(test_conv_max_pool_matches_composite) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 51);
  int ties = 0;
  for (int k = 0; k < NPGEOMS; k++) {
    const pgeom p = PGEOMS[k];
    for (int integers = 0; integers < 2; integers++) {
      tg_tensor *x = rand_x(tape, p.g, 1), *W = rand_w(tape, p.g, 1);
      tg_tensor *b = rand_t(tape, (int64_t[]){p.g.fn}, 1, 1), *dy = rand_pooled(tape, p, 0);
      if (integers) {
        tg_tensor *ts[4] = {x, W, b, dy};
        for (int t = 0; t < 4; t++)
          for (int64_t i = 0; i < ts[t]->numel; i++)
            ts[t]->data[i] = (tg_real)round(2 * ts[t]->data[i]);
        /* Ties the test must see: windows whose maximum is there twice. */
        tg_tensor *c = tg_conv_composite(tape, x, W, b, p.g.stride, p.g.pad);
        const int64_t oh = out_h(p.g), ow = out_w(p.g);
        for (int64_t pl = 0; pl < p.g.n * p.g.fn; pl++)
          for (int64_t i = 0; i + p.s <= oh; i += p.s)
            for (int64_t j = 0; j + p.s <= ow; j += p.s) {
              double m = -INFINITY;
              int cnt = 0;
              for (int64_t e = 0; e < p.s * p.s; e++) {
                double v = tg_at(c, (pl * oh + i + e / p.s) * ow + j + e % p.s);
                cnt = v > m ? 1 : cnt + (v == m);
                m = fmax(m, v);
              }
              ties += cnt > 1;
            }
      }
      /* Winograd's transforms round even integers: the direct product
       * for the exact pass. */
      tg_set_conv_winograd(integers ? TG_WINOGRAD_NEVER : TG_WINOGRAD_ALWAYS);
      pool_twin(tape, p, x, W, b, dy, integers ? 0 : TWIN_TOL, k);
      tg_tape_reset(tape);
    }
  }
  tg_set_conv_winograd(TG_WINOGRAD_ALWAYS);
  ck_assert_msg(ties > 100, "only %d tied windows: the tie rule is not exercised", ties);
  tg_tape_free(tape);
}
END_TEST

/* Second order through conv_max_pool's rule (conv_pool_grad_x,
 * conv_pool_grad_w, pool_gather and their own rules) against the
 * composite's, as second_grads. */
static void pool_second(tg_tape *tape, pool_fn f, pgeom p, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                        tg_tensor *r, tg_tensor *u, tg_tensor *v, tg_tensor **out) {
  tg_tensor *y = tg_tanh(tape, f(tape, x, W, b, p));
  tg_tensor *gx[2];
  ck_assert_msg(y && tg_grad(tape, y, r, 2, (tg_tensor *[]){x, W}, gx, 1) == TG_OK, "%s",
                tg_tape_error(tape));
  tg_tensor *h = tg_add(tape, tg_sum(tape, tg_mul(tape, gx[0], u), NULL, 0, 0),
                        tg_sum(tape, tg_mul(tape, gx[1], v), NULL, 0, 0));
  ck_assert_msg(h && tg_grad(tape, h, NULL, 3, (tg_tensor *[]){x, W, b}, out, 0) == TG_OK, "%s",
                tg_tape_error(tape));
}

START_TEST(test_conv_max_pool_second_order) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 52);
  for (int k = 0; k < NPSMALL; k++) {
    const pgeom p = PGEOMS[k];
    tg_tensor *x = rand_x(tape, p.g, 1), *W = rand_w(tape, p.g, 1);
    tg_tensor *b = rand_t(tape, (int64_t[]){p.g.fn}, 1, 1), *r = rand_pooled(tape, p, 0);
    tg_tensor *u = rand_x(tape, p.g, 0), *v = rand_w(tape, p.g, 0);
    tg_tensor *hf[3], *hc[3];
    pool_second(tape, conv_pool_fused, p, x, W, b, r, u, v, hf);
    pool_second(tape, conv_pool_composite, p, x, W, b, r, u, v, hc);
    same_values(hf[0], hc[0], TWIN_TOL, "conv_max_pool d²/dx", k);
    same_values(hf[1], hc[1], TWIN_TOL, "conv_max_pool d²/dW", k);
    same_values(hf[2], hc[2], TWIN_TOL, "conv_max_pool d²/db", k);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

static tg_tensor *pool_gc_fn(tg_tape *tape, tg_tensor *const *in, void *vctx) {
  return conv_pool_fused(tape, in[0], in[1], in[2], *(const pgeom *)vctx);
}

/* Numerical differentiation, in the double build (as conv_relu: the max
 * is not linear, and a step that moves a window's maximum is retried
 * smaller by the kink-aware check); registered only there, and the float
 * build holds the op to its twin above. */
START_TEST(test_conv_max_pool_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 53);
  tg_gradcheck_opts o = {.seed = 8, .eps = 1e-4};
  for (int k = 0; k < NPSMALL; k++) {
    pgeom p = PGEOMS[k];
    tg_tensor *in[3] = {rand_x(tape, p.g, 1), rand_w(tape, p.g, 1),
                        rand_t(tape, (int64_t[]){p.g.fn}, 1, 1)};
    tg_gradcheck_report rep[3];
    ck_assert_msg(tg_gradcheck(tape, pool_gc_fn, &p, 3, in, &o, rep) == TG_OK, "%s",
                  tg_tape_error(tape));
    double worst = tg_gradcheck_worst(rep, 3);
    if (!(worst <= TU_GRAD_TOL)) {
      tg_gradcheck_print(rep, 3, in, stderr);
      ck_abort_msg("geometry %d, conv_max_pool: gradcheck worst %.3g > %.3g", k, worst,
                   (double)TU_GRAD_TOL);
    }
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* The pooling and the scatter of dy inside the Winograd blocks (run
 * channels last) against a plain loop over conv's own output, tg_conv
 * with the same kernels: the pooled values bit for bit, each window's
 * first maximum found (a later element wins only when greater, the first
 * NaN wins), and dx and dW equal in every bit to conv_grad_x and
 * conv_grad_w of dy put by the loop at those maxima. Filters of zeros
 * make whole planes of ties (y = b exactly), a NaN bias a plane of NaNs;
 * the other planes hold distinct values. In a second pass a few NaNs in
 * x make NaN blocks that start inside windows (dW is then NaN: only dx
 * tells where dy went). */
START_TEST(test_conv_max_pool_winograd_against_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 54);
  int checked = 0, late_nans = 0;
  for (int k = 0; k < NPGEOMS; k++)
    for (int nan_x = 0; nan_x < 2; nan_x++) {
      const pgeom p = PGEOMS[k];
      const geom g = p.g;
      if (!winograd_geometry(g))
        continue;
      tg_tensor *x = rand_x(tape, g, 1), *W = rand_w(tape, g, 1);
      tg_tensor *b = rand_t(tape, (int64_t[]){g.fn}, 1, 1), *dy = rand_pooled(tape, p, 0);
      for (int64_t i = 0; i < g.c * 9; i++) /* filter 0: zeros */
        W->data[i] = 0;
      b->data[g.fn - 1] = NAN;
      for (int64_t i = 0; nan_x && i < x->numel; i += 97)
        x->data[i] = NAN;
      const int64_t oh = out_h(g), ow = out_w(g), ph = oh / p.s, pw = ow / p.s;
      tg_tensor *y = tg_conv_max_pool(tape, x, W, b, g.stride, g.pad, p.s), *gf[2];
      tg_tensor *full = tg_conv(tape, x, W, b, g.stride, g.pad);
      tg_tensor *sc = tg_zeros(tape, (int64_t[]){g.n, g.fn, oh, ow}, 4);
      ck_assert_msg(y && full && sc, "%s", tg_tape_error(tape));
      for (int64_t pl = 0; pl < g.n * g.fn; pl++)
        for (int64_t i = 0; i < ph; i++)
          for (int64_t q = 0; q < pw; q++) {
            int64_t first = -1;
            double m = 0;
            for (int64_t e = 0; e < p.s * p.s; e++) {
              const int64_t at = (pl * oh + i * p.s + e / p.s) * ow + q * p.s + e % p.s;
              const double v = full->data[at];
              late_nans += first >= 0 && isnan(v) && !isnan(m);
              if (first < 0 || v > m || (isnan(v) && !isnan(m)))
                m = v, first = at;
            }
            const int64_t o = (pl * ph + i) * pw + q;
            const double got = y->data[o];
            ck_assert_msg((isnan(m) && isnan(got)) || got == m,
                          "geometry %d: window %lld max %.9g, the loop %.9g", k, (long long)o, got,
                          m);
            sc->data[first] = dy->data[o];
          }
      ck_assert_msg(tg_grad(tape, y, dy, 2, (tg_tensor *[]){x, W}, gf, 0) == TG_OK, "%s",
                    tg_tape_error(tape));
      tg_tensor *dx = tg_conv_grad_x(tape, sc, W, x->shape, g.stride, g.pad);
      tg_tensor *dw = tg_conv_grad_w(tape, x, sc, g.fh, g.fw, g.stride, g.pad);
      ck_assert_msg(dx && dw, "%s", tg_tape_error(tape));
      ck_assert_msg(same_bits(gf[0], dx), "geometry %d: dx is not conv_grad_x at the maxima", k);
      ck_assert_msg(nan_x || same_bits(gf[1], dw),
                    "geometry %d: dW is not conv_grad_w at the maxima", k);
      checked++;
      tg_tape_reset(tape);
    }
  ck_assert_msg(checked >= 8, "only %d Winograd passes", checked);
  ck_assert_msg(late_nans > 100, "only %d NaNs after a window's first element", late_nans);
  tg_tape_free(tape);
}
END_TEST

/* y, dx, dW and db give the same bits on 1, 2 and 3 threads. */
START_TEST(test_conv_max_pool_threads) {
  const int threads[3] = {1, 2, 3};
  for (int k = NPSMALL; k < NPGEOMS; k++) {
    const pgeom p = PGEOMS[k];
    tg_tensor *ref[4] = {NULL, NULL, NULL, NULL};
    tg_tape *keep = tg_tape_new();
    for (int t = 0; t < 3; t++) {
      omp_set_num_threads(threads[t]);
      tg_tape *tape = tg_tape_new();
      tg_tape_seed(tape, 54);
      tg_tensor *x = rand_x(tape, p.g, 1), *W = rand_w(tape, p.g, 1);
      tg_tensor *b = rand_t(tape, (int64_t[]){p.g.fn}, 1, 1), *dy = rand_pooled(tape, p, 0);
      tg_tensor *out[4];
      out[0] = conv_pool_fused(tape, x, W, b, p);
      pool_grads(tape, conv_pool_fused, p, x, W, b, dy, out + 1);
      for (int o = 0; o < 4; o++) {
        ck_assert_msg(out[o] != NULL, "%s", tg_tape_error(tape));
        if (t == 0) {
          ref[o] = tg_empty(keep, out[o]->shape, out[o]->ndim);
          memcpy(ref[o]->data, out[o]->data, (size_t)out[o]->numel * sizeof(tg_real));
        } else {
          ck_assert_msg(same_bits(ref[o], out[o]), "geometry %d, output %d: %d threads differ", k,
                        o, threads[t]);
        }
      }
      tg_tape_free(tape);
    }
    tg_tape_free(keep);
  }
  omp_set_num_threads(1);
}
END_TEST

START_TEST(test_conv_max_pool_errors) {
  tg_tape *tape = tg_tape_new();
  /* 6×5 input, 3×3 filters, pad 1: a 6×5 map that 2×2 windows do not tile */
  geom g = GEOMS[0];
  tg_tensor *x = rand_x(tape, g, 0), *W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv_max_pool(tape, x, W, NULL, 1, 1, 2));
  tu_assert_error(tape, "conv_max_pool", "(2, 3, 6, 5)", "(4, 3, 3, 3)", "do not tile the 6×5");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv_max_pool(tape, x, W, NULL, 1, 1, 0));
  tu_assert_error(tape, "conv_max_pool", "pool 0");
  tg_tape_reset(tape);
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  tg_tensor *b3 = rand_t(tape, (int64_t[]){3}, 1, 0);
  ck_assert_ptr_null(tg_conv_max_pool(tape, x, W, b3, 1, 1, 1));
  tu_assert_error(tape, "conv_max_pool", "b (3,)", "must be (4,)");
  tg_tape_reset(tape);
  tg_tensor *x3 = rand_t(tape, (int64_t[]){2, 3, 6}, 3, 0);
  W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv_max_pool(tape, x3, W, NULL, 1, 1, 1));
  tu_assert_error(tape, "conv_max_pool", "(2, 3, 6)", "(N, C, H, W)");
  tg_tape_reset(tape);
  /* The layer names itself, and the pool's axis */
  x = rand_x(tape, g, 0), W = rand_w(tape, g, 0);
  ck_assert_ptr_null(tg_conv2d_max_pool(tape, x, W, NULL, 1, 1, 2));
  tu_assert_error(tape, "conv2d_max_pool", "width", "pool 2");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_conv_max_pool(tape, NULL, W, NULL, 1, 1, 2));
  tu_assert_error(tape, "conv_max_pool");
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
  for (int64_t i = 0; i < yl->numel; i++)
    ck_assert_msg(yl->data[i] == (xl->data[i] > 0 ? al->data[i] : 0), "element %lld", (long long)i);
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

/* Winograd's kernels wherever the geometry fits, however few outputs:
 * the small geometries above test its edge cases, which AUTO would send
 * to the direct product. */
static void winograd_always(void) { tg_set_conv_winograd(TG_WINOGRAD_ALWAYS); }
static void winograd_auto(void) { tg_set_conv_winograd(TG_WINOGRAD_AUTO); }

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
  tcase_add_test(tc, test_conv_max_pool_matches_composite);
  tcase_add_test(tc, test_conv_max_pool_second_order);
  if (sizeof(tg_real) == 8)
    tcase_add_test(tc, test_conv_max_pool_gradcheck);
  tcase_add_test(tc, test_conv_max_pool_threads);
  tcase_add_test(tc, test_conv_max_pool_winograd_against_loop);
  tcase_add_test(tc, test_conv_max_pool_errors);
  tcase_add_test(tc, test_where_pos_values);
  tcase_add_test(tc, test_where_pos_gradients_match_composite);
  tcase_add_test(tc, test_where_pos_gradcheck_and_errors);
  tcase_add_test(tc, test_pool_2x2_kernel_against_loop);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
