/* test_conv_pool.c — conv_max_pool (ops/conv_pool.c), a convolution
 * whose output is max-pooled image by image, against its twin, max_pool2d
 * of the composite convolution: values, first and second derivatives (ties
 * resolved the same way), its gradient check, the pooling and scatter
 * inside the Winograd blocks against a plain loop, thread counts and
 * errors. No op runs in main(): with libgomp, a forked Check test hangs
 * if its parent ran OpenMP.
 */
#include <omp.h>

#include "conv_twin.h"

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
      int64_t bad = -1; /* the first window whose maximum differs */
      double bad_got = 0, bad_m = 0;
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
            if (bad < 0 && !((isnan(m) && isnan(got)) || got == m))
              bad = o, bad_got = got, bad_m = m;
            sc->data[first] = dy->data[o];
          }
      ck_assert_msg(bad < 0, "geometry %d: window %lld max %.9g, the loop %.9g", k, (long long)bad,
                    bad_got, bad_m);
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
  const geom g = {2, 3, 6, 5, 4, 3, 3, 1, 1};
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

static Suite *make_suite(void) {
  Suite *s = suite_create("conv_pool");
  TCase *tc = tcase_create("conv_pool");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, winograd_always, winograd_auto);
  tcase_add_test(tc, test_conv_max_pool_matches_composite);
  tcase_add_test(tc, test_conv_max_pool_second_order);
  if (sizeof(tg_real) == 8)
    tcase_add_test(tc, test_conv_max_pool_gradcheck);
  tcase_add_test(tc, test_conv_max_pool_threads);
  tcase_add_test(tc, test_conv_max_pool_winograd_against_loop);
  tcase_add_test(tc, test_conv_max_pool_errors);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
