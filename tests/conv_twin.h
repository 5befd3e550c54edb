/* conv_twin.h — what the suites of the fused convolutions (test_fused.c
 * and test_conv_pool.c) share: the geometry of a convolution, random
 * operands, the tolerance against the composite twin and the comparison
 * that uses it, and the fixture that runs Winograd's kernels wherever
 * they fit. Header-only.
 */
#ifndef TG_CONV_TWIN_H
#define TG_CONV_TWIN_H

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

static inline int64_t out_h(geom g) { return (g.h + 2 * g.pad - g.fh) / g.stride + 1; }
static inline int64_t out_w(geom g) { return (g.w + 2 * g.pad - g.fw) / g.stride + 1; }

static inline tg_tensor *rand_t(tg_tape *tape, const int64_t *shape, int nd, int grad) {
  tg_tensor *t = tg_empty(tape, shape, nd);
  ck_assert_msg(t != NULL, "tg_empty: %s", tg_tape_error(tape));
  tu_fill_uniform(t, tg_tape_rng(tape), -1, 1);
  return grad ? tg_requires_grad(tape, t) : t;
}

static inline tg_tensor *rand_x(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.n, g.c, g.h, g.w}, 4, grad);
}
static inline tg_tensor *rand_w(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.fn, g.c, g.fh, g.fw}, 4, grad);
}
static inline tg_tensor *rand_dy(tg_tape *tape, geom g, int grad) {
  return rand_t(tape, (int64_t[]){g.n, g.fn, out_h(g), out_w(g)}, 4, grad);
}

static inline void same_values(const tg_tensor *got, const tg_tensor *want, double tol,
                               const char *what, int k) {
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
  /* The first element out of tolerance, then one assertion: Check
   * records every passing assertion with a write(). */
  int64_t i = 0;
  while (i < got->numel && fabs(tg_at(got, i) - tg_at(want, i)) <= tol * scale)
    i++;
  ck_assert_msg(i == got->numel,
                "geometry %d, %s: element %lld is %.17g, the composite gives %.17g (worst "
                "difference %.3g of the largest magnitude %.3g)",
                k, what, (long long)i, i < got->numel ? tg_at(got, i) : 0.0,
                i < got->numel ? tg_at(want, i) : 0.0, worst, scale);
}

static inline int same_bits(const tg_tensor *a, const tg_tensor *b) {
  return a->numel == b->numel && memcmp(a->data, b->data, (size_t)a->numel * sizeof(tg_real)) == 0;
}

/* 3×3 filters at stride 1 with at least 4 channels in and out, the
 * geometries tg_set_conv_winograd chooses an algorithm for. */
static inline int winograd_geometry(geom g) {
  return g.fh == 3 && g.fw == 3 && g.stride == 1 && g.c >= 4 && g.fn >= 4;
}

/* Winograd's kernels wherever the geometry fits, however few outputs:
 * the suites' small geometries test its edge cases, which AUTO would
 * send to the direct product. */
static inline void winograd_always(void) { tg_set_conv_winograd(TG_WINOGRAD_ALWAYS); }
static inline void winograd_auto(void) { tg_set_conv_winograd(TG_WINOGRAD_AUTO); }

#endif
