/* test_conv.c — im2col and col2im (ops/conv.c), and the layers built on
 * them (nn/conv.c): conv2d, max_pool2d, avg_pool2d and lrn.
 *
 * Forward values are checked against plain loops written here (the
 * patch matrix by its index definition, convolution as the direct
 * seven-loop sum, LRN by its formula), gradients against central
 * differences, im2col and col2im against each other by adjointness, and
 * the engine's gradients against the book's Convolution.backward and
 * Pooling.backward written here as loops. Their errors are in
 * test_conv_errors.c. No op runs in main(): with libgomp, a forked Check test
 * hangs if its parent ran OpenMP.
 */
#include <omp.h>
#include <stdint.h>

#include "nn.h"
#include "nn_test_helpers.h" /* rand_t, expect */
#include "testutil.h"

/* The engine against the book's formulas: the same sums in other orders. */
#define CONV_ORACLE_TOL (sizeof(tg_real) == 8 ? 1e-10 : 1e-4)

/* One geometry: x (n, c, h, w), filter fh×fw, stride, pad. */
typedef struct geom {
  int64_t n, c, h, w, fh, fw, stride, pad;
} geom;

static int64_t out_h(geom g) { return (g.h + 2 * g.pad - g.fh) / g.stride + 1; }
static int64_t out_w(geom g) { return (g.w + 2 * g.pad - g.fw) / g.stride + 1; }

/* Non-square images, strides 1 and 2, pads 0 to 2; a window that can lie
 * wholly in the padding (pad 2, filter 1); filters wider or taller than
 * x, so no window is interior; last, one over TG_PAR_MIN elements so the
 * threaded path runs. */
static const geom GEOMS[] = {
    {2, 3, 5, 7, 3, 3, 1, 0}, {2, 2, 7, 5, 3, 3, 2, 1}, {1, 3, 6, 8, 2, 4, 2, 0},
    {2, 1, 4, 3, 1, 1, 1, 2}, {1, 2, 5, 4, 4, 3, 1, 2}, {3, 2, 6, 6, 2, 2, 2, 0},
    {1, 1, 3, 5, 5, 3, 2, 1}, {1, 2, 4, 2, 3, 3, 1, 1}, {4, 8, 32, 30, 3, 3, 1, 1},
};
enum { NGEOMS = sizeof GEOMS / sizeof GEOMS[0] };

/* ------------------------------------------------------------------------
 * Helpers */

/* x of the geometry, uniform in [-1, 1). */
static tg_tensor *rand_x(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.n, g.c, g.h, g.w}, 4, -1, 1, grad);
}

/* Distinct values, at least 0.1 apart and 0.05 away from 0 (the padding's
 * value): max-pooling is differentiable there even in float, whose
 * gradcheck step is 1e-2. A shuffle of 0..n-1, scaled and centred. */
static tg_tensor *distinct_t(tg_tape *tape, const int64_t *shape, int nd) {
  tg_tensor *t = tg_requires_grad(tape, tg_empty(tape, shape, nd));
  ck_assert_msg(t != NULL, "%s", tg_tape_error(tape));
  int64_t n = t->numel;
  for (int64_t i = 0; i < n; i++)
    t->data[i] = (tg_real)i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(tg_rng_uniform(tg_tape_rng(tape)) * (double)(i + 1));
    tg_real v = t->data[i];
    t->data[i] = t->data[j];
    t->data[j] = v;
  }
  for (int64_t i = 0; i < n; i++)
    t->data[i] = (tg_real)(0.1 * ((double)t->data[i] - (double)(n / 2)) + 0.05);
  return t;
}

static void grads(tg_tape *tape, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *xs,
                  tg_tensor **gx) {
  ck_assert_msg(y != NULL, "forward failed: %s", tg_tape_error(tape));
  ck_assert_msg(tg_grad(tape, y, dy, n, xs, gx, 0) == TG_OK, "tg_grad: %s", tg_tape_error(tape));
}

/* x[n, c, i, j] with zero padding, as double. */
static double px(const tg_tensor *x, geom g, int64_t n, int64_t c, int64_t i, int64_t j) {
  if (i < 0 || i >= g.h || j < 0 || j >= g.w)
    return 0;
  return tg_at(x, ((n * g.c + c) * g.h + i) * g.w + j);
}

/* The patch matrix by its definition: col[(n, oh, ow), (c, kh, kw)] =
 * x[n, c, oh·s − p + kh, ow·s − p + kw]. Returns a malloc'd array. */
static double *ref_im2col(const tg_tensor *x, geom g) {
  int64_t OH = out_h(g), OW = out_w(g), cols = g.c * g.fh * g.fw;
  double *col = malloc((size_t)(g.n * OH * OW * cols) * sizeof *col);
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++)
        for (int64_t c = 0; c < g.c; c++)
          for (int64_t kh = 0; kh < g.fh; kh++)
            for (int64_t kw = 0; kw < g.fw; kw++)
              col[((n * OH + oh) * OW + ow) * cols + (c * g.fh + kh) * g.fw + kw] =
                  px(x, g, n, c, oh * g.stride - g.pad + kh, ow * g.stride - g.pad + kw);
  return col;
}

/* The book's col2im as a scatter-add over the same index map: dx
 * (N, C, H, W) from dcol[] (rows (n, oh, ow), columns (c, kh, kw)). */
static double *ref_col2im(const double *dcol, geom g) {
  int64_t OH = out_h(g), OW = out_w(g), cols = g.c * g.fh * g.fw;
  double *dx = calloc((size_t)(g.n * g.c * g.h * g.w), sizeof *dx);
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++)
        for (int64_t c = 0; c < g.c; c++)
          for (int64_t kh = 0; kh < g.fh; kh++)
            for (int64_t kw = 0; kw < g.fw; kw++) {
              int64_t i = oh * g.stride - g.pad + kh, j = ow * g.stride - g.pad + kw;
              if (i >= 0 && i < g.h && j >= 0 && j < g.w)
                dx[((n * g.c + c) * g.h + i) * g.w + j] +=
                    dcol[((n * OH + oh) * OW + ow) * cols + (c * g.fh + kh) * g.fw + kw];
            }
  return dx;
}

/* ------------------------------------------------------------------------
 * im2col and col2im */

START_TEST(test_im2col_forward_vs_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 1);
  for (int k = 0; k < NGEOMS; k++) {
    geom g = GEOMS[k];
    tg_tensor *x = rand_x(tape, g, 0);
    tg_tensor *col = tg_im2col(tape, x, g.fh, g.fw, g.stride, g.pad);
    ck_assert_msg(col != NULL, "geometry %d: %s", k, tg_tape_error(tape));
    int64_t rows = g.n * out_h(g) * out_w(g), cols = g.c * g.fh * g.fw;
    ck_assert_msg(col->ndim == 2 && col->shape[0] == rows && col->shape[1] == cols,
                  "geometry %d: col %s, want (%lld, %lld)", k, TG_SHAPE(col), (long long)rows,
                  (long long)cols);
    double *want = ref_im2col(x, g);
    expect(col, want, rows * cols, 0, "im2col"); /* a copy: exact */
    free(want);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_col2im_forward_vs_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 2);
  for (int k = 0; k < NGEOMS; k++) {
    geom g = GEOMS[k];
    int64_t rows = g.n * out_h(g) * out_w(g), cols = g.c * g.fh * g.fw;
    tg_tensor *col = rand_t(tape, (int64_t[]){rows, cols}, 2, -1, 1, 0);
    tg_tensor *x =
        tg_col2im(tape, col, (int64_t[]){g.n, g.c, g.h, g.w}, g.fh, g.fw, g.stride, g.pad);
    ck_assert_msg(x != NULL, "geometry %d: %s", k, tg_tape_error(tape));
    double *dcol = malloc((size_t)(rows * cols) * sizeof *dcol);
    for (int64_t i = 0; i < rows * cols; i++)
      dcol[i] = tg_at(col, i);
    double *want = ref_col2im(dcol, g);
    expect(x, want, g.n * g.c * g.h * g.w, TU_VALUE_TOL, "col2im");
    free(dcol);
    free(want);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* <im2col(x), y> = <x, col2im(y)> for random x and y, summed in double. */
START_TEST(test_adjoint_identity) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 3);
  for (int k = 0; k < NGEOMS; k++) {
    geom g = GEOMS[k];
    int64_t rows = g.n * out_h(g) * out_w(g), cols = g.c * g.fh * g.fw;
    tg_tensor *x = rand_x(tape, g, 0);
    tg_tensor *y = rand_t(tape, (int64_t[]){rows, cols}, 2, -1, 1, 0);
    tg_tensor *ax = tg_im2col(tape, x, g.fh, g.fw, g.stride, g.pad);
    tg_tensor *aty =
        tg_col2im(tape, y, (int64_t[]){g.n, g.c, g.h, g.w}, g.fh, g.fw, g.stride, g.pad);
    ck_assert_msg(ax && aty, "geometry %d: %s", k, tg_tape_error(tape));
    double l = 0, r = 0, mag = 0;
    for (int64_t i = 0; i < y->numel; i++) {
      l += tg_at(ax, i) * tg_at(y, i);
      mag += fabs(tg_at(ax, i) * tg_at(y, i));
    }
    for (int64_t i = 0; i < x->numel; i++)
      r += tg_at(x, i) * tg_at(aty, i);
    double tol = sizeof(tg_real) == 8 ? 1e-13 : 1e-6;
    ck_assert_msg(fabs(l - r) <= tol * fmax(1, mag), "geometry %d: <Ax, y> %.17g, <x, Aᵀy> %.17g",
                  k, l, r);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* col2im's sums do not depend on the thread count: one thread and all of
 * them give the same bits (threads own whole planes). */
START_TEST(test_col2im_deterministic) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 4);
  geom g = {8, 16, 20, 20, 3, 3, 1, 1}; /* well over TG_PAR_MIN */
  int64_t rows = g.n * out_h(g) * out_w(g), cols = g.c * g.fh * g.fw;
  tg_tensor *col = rand_t(tape, (int64_t[]){rows, cols}, 2, -1, 1, 0);
  const int64_t xs[4] = {g.n, g.c, g.h, g.w};
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  tg_tensor *a = tg_col2im(tape, col, xs, g.fh, g.fw, g.stride, g.pad);
  omp_set_num_threads(threads > 1 ? threads : 2);
  tg_tensor *b = tg_col2im(tape, col, xs, g.fh, g.fw, g.stride, g.pad);
  ck_assert_msg(a && b, "%s", tg_tape_error(tape));
  ck_assert_msg(memcmp(a->data, b->data, (size_t)a->numel * sizeof *a->data) == 0,
                "col2im differs between 1 and %d threads", threads);
  tg_tape_free(tape);
}
END_TEST

typedef struct gc_ctx {
  int which;
  geom g;
  int64_t size; /* pooling window; lrn: n */
  double alpha, beta, k;
} gc_ctx;

enum { GC_IM2COL, GC_COL2IM, GC_CONV, GC_CONV_NOBIAS, GC_MAXPOOL, GC_AVGPOOL, GC_LRN, GC_DD };

/* The gradient of L = Σ tanh(conv2d(x, W)) ⊙ v with respect to x, recorded
 * (create_graph) so it can be differentiated again: its backward runs
 * im2col's backward (col2im) and then col2im's backward (im2col). */
static tg_tensor *grad_of_conv(tg_tape *tape, tg_tensor *const *in, geom g) {
  int was = tg_tape_set_grad(tape, 1); /* gradcheck evaluates with grad off */
  tg_tensor *y = tg_tanh(tape, tg_conv2d(tape, in[0], in[1], NULL, g.stride, g.pad));
  tg_tensor *v = y ? tg_empty(tape, y->shape, y->ndim) : NULL;
  for (int64_t i = 0; v && i < v->numel; i++)
    v->data[i] = (tg_real)(0.5 + 0.01 * (double)(i % 37));
  tg_tensor *gx = NULL;
  if (v && tg_grad(tape, y, v, 1, &in[0], &gx, 1) != TG_OK)
    gx = NULL;
  tg_tape_set_grad(tape, was);
  return gx;
}

static tg_tensor *gc_fn(tg_tape *tape, tg_tensor *const *in, void *vctx) {
  const gc_ctx *c = vctx;
  geom g = c->g;
  switch (c->which) {
  case GC_IM2COL:
    return tg_im2col(tape, in[0], g.fh, g.fw, g.stride, g.pad);
  case GC_COL2IM:
    return tg_col2im(tape, in[0], (int64_t[]){g.n, g.c, g.h, g.w}, g.fh, g.fw, g.stride, g.pad);
  case GC_CONV:
    return tg_conv2d(tape, in[0], in[1], in[2], g.stride, g.pad);
  case GC_CONV_NOBIAS:
    return tg_conv2d(tape, in[0], in[1], NULL, g.stride, g.pad);
  case GC_MAXPOOL:
    return tg_max_pool2d(tape, in[0], c->size, g.stride, g.pad);
  case GC_AVGPOOL:
    return tg_avg_pool2d(tape, in[0], c->size, g.stride, g.pad);
  case GC_LRN:
    return tg_lrn(tape, in[0], c->size, c->alpha, c->beta, c->k);
  default:
    return grad_of_conv(tape, in, g);
  }
}

/* Gradcheck of case c. The ops and layers other than lrn and the double
 * backward are linear in each input coordinate away from max's kinks, so
 * the central difference has no truncation error and a larger step (in
 * double) only shrinks its rounding error: with the default 1e-6 the
 * rounding of a weighted sum of ~30 over ~1e3 outputs reaches 1e-6
 * relative on small gradients. */
static void gradcheck(tg_tape *tape, gc_ctx c, int n, tg_tensor *const *in) {
  int linear = c.which != GC_LRN && c.which != GC_DD;
  tg_gradcheck_opts o = {.seed = 7, .eps = linear && sizeof(tg_real) == 8 ? 1e-4 : 0};
  tg_gradcheck_report rep[3];
  ck_assert_msg(tg_gradcheck(tape, gc_fn, &c, n, in, &o, rep) == TG_OK, "gradcheck: %s",
                tg_tape_error(tape));
  double worst = tg_gradcheck_worst(rep, n);
  if (!(worst <= TU_GRAD_TOL)) {
    tg_gradcheck_print(rep, n, in, stderr);
    ck_abort_msg("case %d: gradcheck worst %.3g > %.3g (reports above)", c.which, worst,
                 (double)TU_GRAD_TOL);
  }
}

START_TEST(test_gradcheck_im2col_col2im) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 5);
  /* Not the large geometry: a float central difference of a sum over 3e5
   * outputs is mostly rounding. Its values are checked by the loops and
   * the adjoint identity above. */
  for (int k = 0; k < NGEOMS - 1; k++) {
    geom g = GEOMS[k];
    tg_tensor *x = rand_x(tape, g, 1);
    gradcheck(tape, (gc_ctx){.which = GC_IM2COL, .g = g}, 1, &x);
    int64_t rows = g.n * out_h(g) * out_w(g), cols = g.c * g.fh * g.fw;
    tg_tensor *col = rand_t(tape, (int64_t[]){rows, cols}, 2, -1, 1, 1);
    gradcheck(tape, (gc_ctx){.which = GC_COL2IM, .g = g}, 1, &col);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* Second derivatives through im2col/col2im: the gradient of a function of
 * a convolution, recorded with create_graph, checked numerically in x
 * and W. */
START_TEST(test_double_backward_conv) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 6);
  const geom gs[2] = {{2, 2, 5, 6, 3, 2, 1, 1}, {1, 3, 7, 5, 3, 3, 2, 0}};
  for (int k = 0; k < 2; k++) {
    geom g = gs[k];
    tg_tensor *in[2] = {rand_x(tape, g, 1),
                        rand_t(tape, (int64_t[]){3, g.c, g.fh, g.fw}, 4, -1, 1, 1)};
    gradcheck(tape, (gc_ctx){.which = GC_DD, .g = g}, 2, in);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Convolution */

/* The direct convolution: y[n, f, oh, ow] = b[f] + Σ_{c, kh, kw}
 * W[f, c, kh, kw]·x[n, c, oh·s − p + kh, ow·s − p + kw]. */
static double *ref_conv(const tg_tensor *x, const tg_tensor *W, const tg_tensor *b, geom g,
                        int64_t FN) {
  int64_t OH = out_h(g), OW = out_w(g);
  double *y = malloc((size_t)(g.n * FN * OH * OW) * sizeof *y);
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t f = 0; f < FN; f++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double s = b ? tg_at(b, f) : 0;
          for (int64_t c = 0; c < g.c; c++)
            for (int64_t kh = 0; kh < g.fh; kh++)
              for (int64_t kw = 0; kw < g.fw; kw++)
                s += tg_at(W, ((f * g.c + c) * g.fh + kh) * g.fw + kw) *
                     px(x, g, n, c, oh * g.stride - g.pad + kh, ow * g.stride - g.pad + kw);
          y[((n * FN + f) * OH + oh) * OW + ow] = s;
        }
  return y;
}

START_TEST(test_conv2d_forward_vs_loop) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 7);
  for (int k = 0; k < NGEOMS; k++) {
    geom g = GEOMS[k];
    const int64_t FN = 1 + k % 4;
    tg_tensor *x = rand_x(tape, g, 0);
    tg_tensor *W = rand_t(tape, (int64_t[]){FN, g.c, g.fh, g.fw}, 4, -1, 1, 0);
    tg_tensor *b = rand_t(tape, (int64_t[]){FN}, 1, -1, 1, 0);
    for (int bias = 0; bias < 2; bias++) {
      tg_tensor *y = tg_conv2d(tape, x, W, bias ? b : NULL, g.stride, g.pad);
      ck_assert_msg(y != NULL, "geometry %d: %s", k, tg_tape_error(tape));
      const int64_t want_shape[4] = {g.n, FN, out_h(g), out_w(g)};
      char ws[160];
      ck_assert_str_eq(TG_SHAPE(y), tg_shape_str(want_shape, 4, ws, sizeof ws));
      double *want = ref_conv(x, W, bias ? b : NULL, g, FN);
      expect(y, want, y->numel, sizeof(tg_real) == 8 ? 1e-12 : 1e-5, "conv2d");
      free(want);
    }
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_conv2d) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 8);
  for (int k = 0; k < NGEOMS - 1; k++) { /* the large one is covered by the oracle */
    geom g = GEOMS[k];
    const int64_t FN = 2 + k % 2;
    tg_tensor *in[3] = {rand_x(tape, g, 1),
                        rand_t(tape, (int64_t[]){FN, g.c, g.fh, g.fw}, 4, -1, 1, 1),
                        rand_t(tape, (int64_t[]){FN}, 1, -1, 1, 1)};
    gradcheck(tape, (gc_ctx){.which = GC_CONV, .g = g}, 3, in);
    gradcheck(tape, (gc_ctx){.which = GC_CONV_NOBIAS, .g = g}, 2, in);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* The book's Convolution.backward, as loops: dout (N, FN, OH, OW) is
 * moved to rows (n, oh, ow) × FN; db = Σ_rows dout; dW = colᵀ·dout,
 * reshaped to (FN, C, FH, FW); dcol = dout·W (W as (FN, C·FH·FW)); dx =
 * col2im(dcol). */
static void conv_oracle(geom g, int64_t FN, uint64_t seed) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, seed);
  const int64_t OH = out_h(g), OW = out_w(g), rows = g.n * OH * OW, K = g.c * g.fh * g.fw;
  tg_tensor *x = rand_x(tape, g, 1);
  tg_tensor *W = rand_t(tape, (int64_t[]){FN, g.c, g.fh, g.fw}, 4, -1, 1, 1);
  tg_tensor *b = rand_t(tape, (int64_t[]){FN}, 1, -1, 1, 1);
  tg_tensor *dout = rand_t(tape, (int64_t[]){g.n, FN, OH, OW}, 4, -1, 1, 0);
  tg_tensor *gx[3];
  grads(tape, tg_conv2d(tape, x, W, b, g.stride, g.pad), dout, 3, (tg_tensor *[]){x, W, b}, gx);

  double *col = ref_im2col(x, g);
  double *d2 = malloc((size_t)(rows * FN) * sizeof *d2); /* dout as (N·OH·OW, FN) */
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t f = 0; f < FN; f++)
      for (int64_t p = 0; p < OH * OW; p++)
        d2[(n * OH * OW + p) * FN + f] = tg_at(dout, (n * FN + f) * OH * OW + p);
  double *db = calloc((size_t)FN, sizeof *db), *dW = calloc((size_t)(FN * K), sizeof *dW);
  double *dcol = calloc((size_t)(rows * K), sizeof *dcol);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t f = 0; f < FN; f++) {
      double d = d2[r * FN + f];
      db[f] += d;
      for (int64_t j = 0; j < K; j++) {
        dW[f * K + j] += col[r * K + j] * d; /* (colᵀ·dout)ᵀ: W's layout */
        dcol[r * K + j] += d * tg_at(W, f * K + j);
      }
    }
  double *dx = ref_col2im(dcol, g);
  expect(gx[0], dx, x->numel, CONV_ORACLE_TOL, "conv dx = col2im(dout·W)");
  expect(gx[1], dW, FN * K, CONV_ORACLE_TOL, "conv dW = colᵀ·dout");
  expect(gx[2], db, FN, CONV_ORACLE_TOL, "conv db = Σ dout");
  free(col), free(d2), free(db), free(dW), free(dcol), free(dx);
  tg_tape_free(tape);
}

START_TEST(test_book_convolution_backward) {
  conv_oracle((geom){3, 2, 7, 6, 3, 2, 1, 1}, 4, 31);
  conv_oracle((geom){2, 3, 9, 7, 3, 3, 2, 2}, 5, 32);
  conv_oracle((geom){10, 1, 28, 28, 5, 5, 1, 0}, 30, 33); /* SimpleConvNet's first layer */
  conv_oracle((geom){4, 6, 14, 14, 5, 5, 1, 0}, 16, 34);  /* LeNet's second: runs of 10 */
  conv_oracle((geom){2, 2, 21, 21, 3, 3, 1, 0}, 3, 35);   /* runs of 19 */
}
END_TEST

/* ------------------------------------------------------------------------
 * Pooling */

/* The book's Pooling.backward, as loops: each window's gradient goes to
 * its argmax (the first maximum, padding included as zeros); dx is the
 * col2im of that, i.e. a scatter-add. Also the forward. */
static void pool_oracle(geom g, uint64_t seed) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, seed);
  const int64_t OH = out_h(g), OW = out_w(g);
  tg_tensor *x = distinct_t(tape, (int64_t[]){g.n, g.c, g.h, g.w}, 4);
  tg_tensor *dout = rand_t(tape, (int64_t[]){g.n, g.c, OH, OW}, 4, -1, 1, 0);
  tg_tensor *y = tg_max_pool2d(tape, x, g.fh, g.stride, g.pad), *gx;
  ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
  double *want = malloc((size_t)y->numel * sizeof *want);
  double *dx = calloc((size_t)x->numel, sizeof *dx);
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t c = 0; c < g.c; c++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          int64_t bi = 0, bj = 0, o = ((n * g.c + c) * OH + oh) * OW + ow;
          double best = -INFINITY;
          for (int64_t kh = 0; kh < g.fh; kh++)
            for (int64_t kw = 0; kw < g.fw; kw++) {
              int64_t i = oh * g.stride - g.pad + kh, j = ow * g.stride - g.pad + kw;
              double v = px(x, g, n, c, i, j);
              if (v > best)
                best = v, bi = i, bj = j;
            }
          want[o] = best;
          if (bi >= 0 && bi < g.h && bj >= 0 && bj < g.w)
            dx[((n * g.c + c) * g.h + bi) * g.w + bj] += tg_at(dout, o);
        }
  expect(y, want, y->numel, 0, "max_pool2d forward");
  grads(tape, y, dout, 1, &x, &gx);
  expect(gx, dx, x->numel, CONV_ORACLE_TOL, "max_pool2d dx (to the argmax)");
  free(want), free(dx);
  tg_tape_free(tape);
}

START_TEST(test_book_pooling_backward) {
  pool_oracle((geom){2, 3, 8, 6, 2, 2, 2, 0}, 41);    /* the book's 2×2, stride 2 */
  pool_oracle((geom){2, 2, 7, 5, 3, 3, 2, 1}, 42);    /* overlapping, padded */
  pool_oracle((geom){1, 2, 6, 6, 3, 3, 1, 0}, 43);    /* stride 1: a value wins many windows */
  pool_oracle((geom){8, 16, 24, 24, 2, 2, 2, 0}, 44); /* over TG_PAR_MIN */
  pool_oracle((geom){3, 2, 9, 12, 3, 3, 3, 0}, 45);   /* 3×3 windows tiling x: the view path */
}
END_TEST

/* avg_pool2d: the window mean (padding counts as zeros) against a loop. */
START_TEST(test_avg_pool_forward) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 9);
  const geom gs[2] = {{2, 3, 6, 8, 2, 2, 2, 0}, {1, 2, 5, 7, 3, 3, 2, 1}};
  for (int k = 0; k < 2; k++) {
    geom g = gs[k];
    tg_tensor *x = rand_x(tape, g, 0);
    tg_tensor *y = tg_avg_pool2d(tape, x, g.fh, g.stride, g.pad);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
    double *want = malloc((size_t)y->numel * sizeof *want);
    int64_t OH = out_h(g), OW = out_w(g);
    for (int64_t nc = 0; nc < g.n * g.c; nc++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double s = 0;
          for (int64_t kh = 0; kh < g.fh; kh++)
            for (int64_t kw = 0; kw < g.fw; kw++)
              s += px(x, g, nc / g.c, nc % g.c, oh * g.stride - g.pad + kh,
                      ow * g.stride - g.pad + kw);
          want[(nc * OH + oh) * OW + ow] = s / (double)(g.fh * g.fw);
        }
    expect(y, want, y->numel, TU_VALUE_TOL, "avg_pool2d");
    free(want);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_gradcheck_pooling) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 10);
  const geom gs[4] = {{2, 2, 4, 6, 2, 2, 2, 0},
                      {1, 3, 5, 7, 3, 3, 2, 1},
                      {2, 1, 5, 4, 2, 2, 1, 0},
                      {1, 2, 3, 3, 3, 3, 1, 2}};
  for (int k = 0; k < 4; k++) {
    geom g = gs[k];
    tg_tensor *x = distinct_t(tape, (int64_t[]){g.n, g.c, g.h, g.w}, 4);
    gc_ctx c = {.which = GC_MAXPOOL, .g = g, .size = g.fh};
    gradcheck(tape, c, 1, &x);
    c.which = GC_AVGPOOL;
    gradcheck(tape, c, 1, &x);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST

/* A window of equal values sends its whole gradient to its first element
 * (top-left); with a tie between two later elements, to the first of
 * those in row-major order. */
START_TEST(test_max_pool_ties) {
  tg_tape *tape = tg_tape_new();
  /* Windows: top-left all 1; top-right 3 twice; bottom-left 2 twice in its
   * bottom row; bottom-right all -1. */
  const double v[16] = {1, 1, 0, 3, 1, 1, 3, 0, 0, 0, -1, -1, 2, 2, -1, -1};
  tg_tensor *x = tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){1, 1, 4, 4}, 4, v));
  tg_tensor *y = tg_max_pool2d(tape, x, 2, 2, 0), *g;
  expect(y, (double[]){1, 3, 2, -1}, 4, 0, "max_pool2d of ties");
  grads(tape, y, tg_from_values(tape, (int64_t[]){1, 1, 2, 2}, 4, (double[]){10, 20, 30, 40}), 1,
        &x, &g);
  const double want[16] = {10, 0, 0, 20, 0, 0, 0, 0, 0, 0, 40, 0, 30, 0, 0, 0};
  expect(g, want, 16, 0, "max_pool2d gradient of ties");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * LRN */

static double *ref_lrn(const tg_tensor *x, int64_t n, double alpha, double beta, double k) {
  int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
  double *y = malloc((size_t)x->numel * sizeof *y);
  for (int64_t b = 0; b < N; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t p = 0; p < HW; p++) {
        double s = 0;
        for (int64_t d = c - n / 2; d <= c + (n - 1) / 2; d++)
          if (d >= 0 && d < C) {
            double v = tg_at(x, (b * C + d) * HW + p);
            s += v * v;
          }
        y[(b * C + c) * HW + p] = tg_at(x, (b * C + c) * HW + p) / pow(k + alpha * s, beta);
      }
  return y;
}

typedef struct lrn_case {
  int64_t c, n;
  double alpha, beta, k;
} lrn_case;

/* AlexNet's constants, a large alpha so the sum matters, an even n, a
 * window wider than the channels, and n = 1. */
static const lrn_case LRN_CASES[] = {{8, 5, 1e-4, 0.75, 2},
                                     {6, 5, 0.5, 0.75, 2},
                                     {5, 4, 0.3, 0.6, 1},
                                     {3, 9, 0.4, 1.2, 1.5},
                                     {4, 1, 0.7, 0.5, 1}};
enum { NLRN = sizeof LRN_CASES / sizeof LRN_CASES[0] };

START_TEST(test_lrn_forward_and_gradcheck) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 11);
  for (int i = 0; i < NLRN; i++) {
    lrn_case l = LRN_CASES[i];
    tg_tensor *x = rand_t(tape, (int64_t[]){2, l.c, 3, 4}, 4, -2, 2, 1);
    tg_tensor *y = tg_lrn(tape, x, l.n, l.alpha, l.beta, l.k);
    ck_assert_msg(y != NULL, "case %d: %s", i, tg_tape_error(tape));
    double *want = ref_lrn(x, l.n, l.alpha, l.beta, l.k);
    expect(y, want, x->numel, TU_VALUE_TOL, "lrn");
    free(want);
    gc_ctx c = {.which = GC_LRN, .size = l.n, .alpha = l.alpha, .beta = l.beta, .k = l.k};
    gradcheck(tape, c, 1, &x);
    tg_tape_reset(tape);
  }
  tg_tape_free(tape);
}
END_TEST
/* The convolution ops hand their scratch back to the arena: after each,
 * the arena holds what it held before plus the output (header and data,
 * rounded to TG_ALIGN) and nothing else, on both paths (Winograd for 3×3
 * with C >= 4, patches otherwise), forward and backward; and a step of
 * them, repeated, allocates nothing from the system. */
START_TEST(test_conv_scratch_released) {
  tg_tape *tape = tg_tape_new();
  const size_t header = (sizeof(tg_tensor) + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
  uint64_t allocs = 0;
  for (int step = 0; step < 3; step++) {
    for (int wino = 0; wino < 2; wino++) {
      const int64_t C = wino ? 8 : 3, k = wino ? 3 : 5;
      tg_tensor *x = tu_leaf(tape, (int64_t[]){4, C, 12, 12}, 4, -1, 1);
      tg_tensor *W = tu_leaf(tape, (int64_t[]){6, C, k, k}, 4, -1, 1);
      size_t before = tg_tape_get_stats(tape).arena_in_use;
      tg_tensor *y = tg_conv(tape, x, W, NULL, 1, 1);
      ck_assert_msg(y != NULL, "%s", tg_tape_error(tape));
      size_t want =
          header + ((size_t)y->numel * sizeof(tg_real) + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
      ck_assert_uint_eq(tg_tape_get_stats(tape).arena_in_use - before, want);
      tg_tensor *g[2];
      tg_tensor *xs[2] = {x, W};
      before = tg_tape_get_stats(tape).arena_in_use;
      ck_assert(tg_grad(tape, y, tu_ones_like(tape, y), 2, xs, g, 0) == TG_OK);
      size_t grads = 0;
      for (int i = 0; i < 2; i++)
        grads +=
            header + ((size_t)g[i]->numel * sizeof(tg_real) + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
      /* the seed of ones (y's size), and gradients of x and W */
      ck_assert_uint_eq(tg_tape_get_stats(tape).arena_in_use - before, want + grads);
    }
    if (step == 1)
      allocs = tg_tape_get_stats(tape).sys_allocs;
    tg_tape_reset(tape);
  }
  ck_assert_uint_eq(tg_tape_get_stats(tape).sys_allocs, allocs); /* none in the third step */
  tg_tape_free(tape);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("conv");
  TCase *ops = tcase_create("im2col");
  tcase_add_test(ops, test_im2col_forward_vs_loop);
  tcase_add_test(ops, test_col2im_forward_vs_loop);
  tcase_add_test(ops, test_adjoint_identity);
  tcase_add_test(ops, test_col2im_deterministic);
  tcase_add_test(ops, test_gradcheck_im2col_col2im);
  tcase_add_test(ops, test_double_backward_conv);
  suite_add_tcase(s, ops);
  TCase *layers = tcase_create("layers");
  tcase_add_test(layers, test_conv2d_forward_vs_loop);
  tcase_add_test(layers, test_gradcheck_conv2d);
  tcase_add_test(layers, test_avg_pool_forward);
  tcase_add_test(layers, test_gradcheck_pooling);
  tcase_add_test(layers, test_max_pool_ties);
  tcase_add_test(layers, test_lrn_forward_and_gradcheck);
  tcase_add_test(layers, test_conv_scratch_released);
  suite_add_tcase(s, layers);
  TCase *book = tcase_create("book_backward");
  tcase_add_test(book, test_book_convolution_backward);
  tcase_add_test(book, test_book_pooling_backward);
  suite_add_tcase(s, book);
  return s;
}

TU_MAIN(make_suite)
