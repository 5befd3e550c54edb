/* conv.c — the fused convolution: y = conv(x, W) image by image, with the patches of
 * one image at a time in a per-thread buffer that stays in cache, never
 * the whole batch's patch matrix in memory (for DeepConvNet's 16-channel
 * 3×3 layers that matrix is 45 MB, written and read again by every step,
 * and the composite's product comes out as (N, OH, OW, FN) and needs a
 * permute). Per image n, with P = OH·OW and K = C·FH·FW:
 *
 *   conv:        rows_n (K, P) = unfold(x_n);  y_n (FN, P) = W (FN, K)·rows_n
 *   conv_grad_x: d_n (K, P) = Wᵀ·dy_n;         dx_n = fold(d_n)
 *   conv_grad_w: rows_n = unfold(x_n);         dWᵀ (K, FN) = Σ_n rows_n·dy_nᵀ
 *
 * unfold is im2col transposed (a row per (c, fh, fw), a column per output
 * position: runs along ow, contiguous in x when stride == 1) and fold its
 * adjoint. Products are plain or Aᵀ, which libxsmm's JIT takes as a flag;
 * the one Bᵀ, dy_nᵀ, is copied (FN·P elements, in cache: the im2col-layout
 * patches it avoids cost 9 to 25 times as many, written with a stride).
 * Images (one at a time) are handed to threads by tg_parallel_for; dW
 * sums images in CONV_GROUPS fixed groups, each in its own partial sum,
 * added in group order at the end, so no result depends on the thread
 * count.
 *
 * The three ops are each other's gradients (conv is bilinear in x and W,
 * and conv_grad_x, conv_grad_w are its adjoints in x and in W), so
 * gradients of gradients work. tg_conv_composite (im2col, matmul, permute)
 * is their definition, kept as the oracle (DESIGN.md §5): the tests hold
 * all three and their gradients against it. Nothing here may allocate
 * from the system (scratch comes from the arena) or let the thread count
 * change a result. conv_max_pool, whose jobs run here too, is in
 * conv_pool.c (the shared job: conv_internal.h). */
#include <omp.h>
#include <string.h>

#include "composite.h"
#include "conv_internal.h"
#include "gemm.h"
#include "im2col.h"
#include "op.h"
#include "ops.h"
#include "ops_internal.h"
#include "winograd.h"

#define CONV_GROUPS 8

/* unfold: rows (K, P) of one image xn (C, H, W): row (c, fh, fw) holds
 * x[c, oh·s − pad + fh, ow·s − pad + fw] at column (oh, ow), 0 in the
 * padding. */
/* Runs are short (OW: 7 to 28 in the book's networks): a library call per
 * run costs more than the copy, so loops stay loops, with AVX2 clones
 * (the build targets plain x86-64). */
#ifdef __clang__ /* no optimize attribute (clang builds the fuzz targets) */
#define SHORT_RUNS __attribute__((target_clones("avx2", "default")))
#else
#define SHORT_RUNS                                                                                 \
  __attribute__((optimize("no-tree-loop-distribute-patterns"), target_clones("avx2", "default")))
#endif

/* One row of unfold when stride == 1 and OW == W ("same" padding across):
 * output (oh, ow) reads xp[(oh − pad + kh)·W + ow + off], one index
 * shift for the whole row, so the valid rows go as one long copy and the
 * |off| columns that would wrap into a neighbouring row are zeroed
 * after. */
SHORT_RUNS static void unfold_same(const conv_geom *g, const tg_real *restrict xp,
                                   tg_real *restrict row, int64_t kh, int64_t off, int64_t lo,
                                   int64_t hi) {
  const int64_t W = g->w, a = min64(max64(g->pad - kh, 0), g->oh); /* first valid oh */
  const int64_t b = max64(a, min64(g->h + g->pad - kh, g->oh));    /* past the last */
  memset(row, 0, (size_t)(a * W) * sizeof *row);
  memset(row + b * W, 0, (size_t)((g->oh - b) * W) * sizeof *row);
  if (b == a)
    return;
  const int64_t len = (b - a) * W, i0 = max64(-off, 0), i1 = len - max64(off, 0);
  tg_real *restrict d = row + a * W;
  const tg_real *restrict src = xp + (a - g->pad + kh) * W + off;
  for (int64_t i = i0; i < i1; i++)
    d[i] = src[i];
  for (int64_t oh = 0; oh < b - a; oh++) {
    for (int64_t ow = 0; ow < lo; ow++)
      d[oh * W + ow] = 0;
    for (int64_t ow = hi; ow < W; ow++)
      d[oh * W + ow] = 0;
  }
}

/* The positions ow in [*lo, *hi) whose column ow·s + off lies inside
 * x's row (0 <= ow·s + off < W). */
static void inside(const conv_geom *g, int64_t off, int64_t *lo, int64_t *hi) {
  const int64_t s = g->stride;
  *lo = min64(off < 0 ? (-off + s - 1) / s : 0, g->ow);
  *hi = g->w - 1 - off < 0 ? *lo : max64(*lo, min64(g->ow, (g->w - 1 - off) / s + 1));
}

/* Row r of the (K, P) patch matrix: channel ci, filter row kh, column
 * offset off = kw - pad, and the output columns [lo, hi) inside x. */
typedef struct patch_row {
  int64_t ci, kh, off, lo, hi;
} patch_row;

static patch_row patch_row_at(const conv_geom *g, int64_t r) {
  patch_row pr = {.ci = r / (g->fh * g->fw), .kh = r / g->fw % g->fh, .off = r % g->fw - g->pad};
  inside(g, pr.off, &pr.lo, &pr.hi);
  return pr;
}

/* d[0, n) = s[0, n) for a short run: blocks of 8, the last one
 * overlapping the block before it instead of a scalar tail (a copy may
 * write an element twice). A run of 10 is two moves, not a vector, two
 * scalars and their loop. The block is a vector type because memcpy's
 * inline expansion moves 16 bytes at a time. */
typedef tg_real run_block
    __attribute__((vector_size(8 * sizeof(tg_real)), aligned(sizeof(tg_real)), may_alias));
static inline void copy_run(tg_real *restrict d, const tg_real *restrict s, int64_t n) {
  enum { B = 8 };
  if (n < B) {
    for (int64_t i = 0; i < n; i++)
      d[i] = s[i];
    return;
  }
  for (int64_t i = 0; i < n - B; i += B)
    *(run_block *)(d + i) = *(const run_block *)(s + i);
  *(run_block *)(d + n - B) = *(const run_block *)(s + n - B);
}

/* d[0, n) += s[0, n) for a short run, copy_run's adjoint: blocks of 8,
 * and a partial last block as the 8 elements ending at n. That block
 * overlaps the whole block before it, so both are loaded and summed
 * before either is stored: the elements they share get the same sum
 * from each, one term added once. */
static inline void add_run(tg_real *restrict d, const tg_real *restrict s, int64_t n) {
  enum { B = 8 };
  if (n < B || n % B == 0) {
    for (int64_t i = 0; i < n; i++)
      d[i] += s[i];
    return;
  }
  const int64_t last = n - n % B - B; /* the last whole block */
  for (int64_t i = 0; i < last; i += B)
    *(run_block *)(d + i) += *(const run_block *)(s + i);
  const run_block tail = *(run_block *)(d + n - B) + *(const run_block *)(s + n - B);
  const run_block whole = *(run_block *)(d + last) + *(const run_block *)(s + last);
  *(run_block *)(d + n - B) = tail;
  *(run_block *)(d + last) = whole;
}

SHORT_RUNS static void unfold_image(const conv_geom *g, const tg_real *restrict xn,
                                    tg_real *restrict rows) {
  const int64_t s = g->stride, P = g->oh * g->ow, plane = g->h * g->w;
  for (int64_t r = 0; r < g->c * g->fh * g->fw; r++, rows += P) {
    const patch_row pr = patch_row_at(g, r);
    const int64_t lo = pr.lo, hi = pr.hi;
    if (s == 1 && g->ow == g->w) {
      unfold_same(g, xn + pr.ci * plane, rows, pr.kh, pr.off, lo, hi);
      continue;
    }
    for (int64_t oh = 0; oh < g->oh; oh++) {
      tg_real *restrict d = rows + oh * g->ow;
      const int64_t ih = oh * s - g->pad + pr.kh;
      if (ih < 0 || ih >= g->h) {
        memset(d, 0, (size_t)g->ow * sizeof *d);
        continue;
      }
      const tg_real *restrict src = xn + pr.ci * plane + ih * g->w + pr.off;
      for (int64_t ow = 0; ow < lo; ow++)
        d[ow] = 0;
      if (s == 1)
        copy_run(d + lo, src + lo, hi - lo);
      else
        for (int64_t ow = lo; ow < hi; ow++)
          d[ow] = src[ow * s];
      for (int64_t ow = hi; ow < g->ow; ow++)
        d[ow] = 0;
    }
  }
}

/* fold_image's row when stride == 1 and OW == W, unfold_same's adjoint:
 * the columns that would wrap are zeroed in row (scratch the caller owns)
 * so the valid rows add as one long run; the wrapped entries then add
 * exact zeros, and every element still gets its terms in row order. */
SHORT_RUNS static void fold_same(const conv_geom *g, tg_real *restrict row, tg_real *restrict dxp,
                                 int64_t kh, int64_t off, int64_t lo, int64_t hi) {
  const int64_t W = g->w, a = min64(max64(g->pad - kh, 0), g->oh);
  const int64_t b = max64(a, min64(g->h + g->pad - kh, g->oh));
  if (b == a)
    return;
  tg_real *restrict src = row + a * W;
  for (int64_t oh = 0; oh < b - a; oh++) {
    for (int64_t ow = 0; ow < lo; ow++)
      src[oh * W + ow] = 0;
    for (int64_t ow = hi; ow < W; ow++)
      src[oh * W + ow] = 0;
  }
  const int64_t len = (b - a) * W, i0 = max64(-off, 0), i1 = len - max64(off, 0);
  tg_real *restrict d = dxp + (a - g->pad + kh) * W + off;
  for (int64_t i = i0; i < i1; i++)
    d[i] += src[i];
}

/* fold, unfold's adjoint: dxn (C, H, W) = 0, then every entry of rows
 * (K, P) added where unfold took it from, in row order. rows is scratch:
 * fold_same zeroes entries of it that no output reads. */
SHORT_RUNS static void fold_image(const conv_geom *g, tg_real *restrict rows,
                                  tg_real *restrict dxn) {
  const int64_t s = g->stride, P = g->oh * g->ow, plane = g->h * g->w;
  memset(dxn, 0, (size_t)(g->c * plane) * sizeof *dxn);
  for (int64_t r = 0; r < g->c * g->fh * g->fw; r++, rows += P) {
    const patch_row pr = patch_row_at(g, r);
    const int64_t lo = pr.lo, hi = pr.hi;
    if (s == 1 && g->ow == g->w) {
      fold_same(g, rows, dxn + pr.ci * plane, pr.kh, pr.off, lo, hi);
      continue;
    }
    for (int64_t oh = 0; oh < g->oh; oh++) {
      const int64_t ih = oh * s - g->pad + pr.kh;
      if (ih < 0 || ih >= g->h)
        continue;
      const tg_real *restrict src = rows + oh * g->ow;
      tg_real *restrict d = dxn + pr.ci * plane + ih * g->w + pr.off;
      if (s == 1)
        add_run(d + lo, src + lo, hi - lo);
      else
        for (int64_t ow = lo; ow < hi; ow++)
          d[ow * s] += src[ow];
    }
  }
}

/* A thread's scratch: (K, P) rows, then (P, FN) for dyᵀ (or, pooled, for
 * y_n or conv_pool_grad_x's scattered dy_n), then with conv_pool_grad_w
 * (FN, P) for the scattered dy. */
static int64_t slot_size(const conv_job *j) {
  return (j->k + (j->pool && j->kind == CONV_DW ? 2 : 1) * j->fn) * j->p;
}
static tg_real *thread_buf(const conv_job *j) {
  return j->scratch + (j->nth > 1 ? omp_get_thread_num() : 0) * slot_size(j);
}

/* ReLU in place (winograd.h). The clones stay static: the resolver of a
 * global cloned function would be exported from the shared library. */
TG_KERNEL static void relu_kernel(tg_real *y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++)
    y[i] = y[i] > 0 ? y[i] : 0;
}
void tg_relu_inplace(tg_real *y, int64_t n) { relu_kernel(y, n); }

/* y (fn, p) += bias (fn,) row by row, then ReLU when relu: one pass. */
TG_KERNEL static void add_bias(tg_real *restrict y, const tg_real *restrict bias, int64_t fn,
                               int64_t p, int relu) {
  for (int64_t f = 0; f < fn; f++) {
    tg_real *restrict row = y + f * p; /* (p,) */
    const tg_real b = bias[f];
    if (relu) {
#pragma omp simd
      for (int64_t i = 0; i < p; i++) {
        tg_real v = row[i] + b;
        row[i] = v > 0 ? v : 0;
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < p; i++)
        row[i] += b;
    }
  }
}

/* The pooling of conv_max_pool on one image's output y (FN, OH, OW),
 * windows s×s that tile it: m (FN, OH/s, OW/s) the first maximum of each
 * window in row-major order (better()'s rule, tg_max's: a later element
 * wins only when strictly greater, a NaN when the best is not one) and
 * arg its index i·s + j in the window. The loops run across a row of
 * windows, so they vectorize. */
static inline __attribute__((always_inline)) void pool_body(const tg_real *restrict y, int64_t fn,
                                                            int64_t oh, int64_t ow, const int64_t s,
                                                            tg_real *restrict m,
                                                            tg_real *restrict arg) {
  const int64_t ph = oh / s, pw = ow / s;
  for (int64_t f = 0; f < fn; f++)
    for (int64_t i = 0; i < ph; i++) {
      const tg_real *restrict y0 = y + (f * oh + i * s) * ow;
      tg_real *restrict mr = m + (f * ph + i) * pw, *restrict ar = arg + (f * ph + i) * pw;
      for (int64_t q = 0; q < pw; q++)
        mr[q] = y0[q * s], ar[q] = 0;
      for (int64_t e = 1; e < s * s; e++) {
        const tg_real *restrict ye = y0 + e / s * ow + e % s;
#pragma omp simd
        for (int64_t q = 0; q < pw; q++) {
          const tg_real v = ye[q * s], b = mr[q];
          const int gt = v > b || (v != v && b == b);
          mr[q] = gt ? v : b;
          ar[q] = gt ? (tg_real)e : ar[q];
        }
      }
    }
}

/* 2×2 windows (the book's pools): each window's four elements in
 * registers, one pass along the row (the general loop above stores and
 * reloads the best after each element, and took a quarter of
 * SimpleConvNet's step). The same rule, element by element in row-major
 * order. */
static inline __attribute__((always_inline)) void pool_2x2(const tg_real *restrict y, int64_t fn,
                                                           int64_t oh, int64_t ow,
                                                           tg_real *restrict m,
                                                           tg_real *restrict arg) {
  const int64_t rows = fn * oh / 2, pw = ow / 2; /* window rows: (f, i) in order */
  for (int64_t r = 0; r < rows; r++) {
    const tg_real *restrict y0 = y + 2 * r * ow, *restrict y1 = y0 + ow;
    tg_real *restrict mr = m + r * pw, *restrict ar = arg + r * pw;
#pragma omp simd
    for (int64_t q = 0; q < pw; q++) {
      const tg_real v[4] = {y0[2 * q], y0[2 * q + 1], y1[2 * q], y1[2 * q + 1]};
      tg_real b = v[0], e = 0;
      for (int k = 1; k < 4; k++) {
        const int gt = v[k] > b || (v[k] != v[k] && b == b);
        b = gt ? v[k] : b;
        e = gt ? (tg_real)k : e;
      }
      mr[q] = b, ar[q] = e;
    }
  }
}

SHORT_RUNS static void pool_image(const tg_real *restrict y, int64_t fn, int64_t oh, int64_t ow,
                                  int64_t s, tg_real *restrict m, tg_real *restrict arg) {
  if (s == 2)
    pool_2x2(y, fn, oh, ow, m, arg);
  else
    pool_body(y, fn, oh, ow, s, m, arg);
}

/* The position in an (OH, OW) plane of window (i, q)'s element e (2×2
 * without a division: the scatters' inner loops are made of this). */
static inline int64_t pool_at(int64_t i, int64_t q, int64_t e, int64_t s, int64_t ow) {
  const int64_t r = s == 2 ? e >> 1 : e / s, c = s == 2 ? e & 1 : e % s;
  return (i * s + r) * ow + q * s + c;
}

/* g (planes, OH, OW) = dy (planes, PH, PW) at each window's maximum
 * (arg), 0 elsewhere: pool_scatter's kernel; gather its adjoint, dy =
 * g at the maxima. */
/* 2×2 windows (the book's pools, and pool_scatter's hot path in
 * DeepConvNet's backward): each window's four elements written at once,
 * dy where arg points and 0 elsewhere, one pass along a row of windows
 * that vectorizes (the general loop below clears the plane first, then
 * stores one element at a time). */
static inline __attribute__((always_inline)) void scatter_2x2(const tg_real *restrict dy,
                                                              const tg_real *restrict arg,
                                                              int64_t planes, int64_t oh,
                                                              int64_t ow, tg_real *restrict g) {
  const int64_t rows = planes * oh / 2, pw = ow / 2; /* window rows */
  for (int64_t r = 0; r < rows; r++) {
    tg_real *restrict g0 = g + 2 * r * ow, *restrict g1 = g0 + ow;
    const tg_real *restrict d = dy + r * pw, *restrict a = arg + r * pw;
#pragma omp simd
    for (int64_t q = 0; q < pw; q++) {
      const tg_real v = d[q], e = a[q];
      g0[2 * q] = e == 0 ? v : 0;
      g0[2 * q + 1] = e == 1 ? v : 0;
      g1[2 * q] = e == 2 ? v : 0;
      g1[2 * q + 1] = e == 3 ? v : 0;
    }
  }
}

SHORT_RUNS static void scatter_planes(const tg_real *restrict dy, const tg_real *restrict arg,
                                      int64_t planes, int64_t oh, int64_t ow, int64_t s,
                                      tg_real *restrict g) {
  if (s == 2) {
    scatter_2x2(dy, arg, planes, oh, ow, g);
    return;
  }
  const int64_t ph = oh / s, pw = ow / s;
  memset(g, 0, (size_t)(planes * oh * ow) * sizeof *g);
  for (int64_t c = 0; c < planes; c++, g += oh * ow)
    for (int64_t i = 0; i < ph; i++)
      for (int64_t q = 0; q < pw; q++, dy++, arg++)
        g[pool_at(i, q, (int64_t)*arg, s, ow)] = *dy;
}
static void gather_planes(const tg_real *restrict g, const tg_real *restrict arg, int64_t planes,
                          int64_t oh, int64_t ow, int64_t s, tg_real *restrict dy) {
  const int64_t ph = oh / s, pw = ow / s;
  for (int64_t c = 0; c < planes; c++, g += oh * ow)
    for (int64_t i = 0; i < ph; i++)
      for (int64_t q = 0; q < pw; q++, dy++, arg++)
        *dy = g[pool_at(i, q, (int64_t)*arg, s, ow)];
}

void tg_max_pool_planes(const tg_real *y, int64_t planes, int64_t oh, int64_t ow, int64_t s,
                        tg_real *m, tg_real *arg) {
  pool_image(y, planes, oh, ow, s, m, arg);
}

/* pool_scatter's and pool_gather's loops over the planes (images ×
 * channels) of a whole batch, on the threads: each plane is computed the
 * same way whichever chunk it falls in, so the result does not depend on
 * the thread count. (On the calling thread alone, they and the pooling
 * left DeepConvNet's second thread idle for a sixth of its step.) */
typedef struct planes_job {
  int gather;         /* 0: scatter src = dy into dst = g; 1: gather src = g into dst = dy */
  int64_t oh, ow, s;  /* the full planes (OH, OW) and the window size */
  const tg_real *src; /* (planes, OH, OW) or (planes, OH/s, OW/s) */
  const tg_real *arg; /* (planes, OH/s, OW/s) */
  tg_real *dst;
} planes_job;

static void planes_chunk(void *ctx, int64_t p0, int64_t p1) {
  const planes_job *j = ctx;
  const int64_t full = j->oh * j->ow, pooled = full / (j->s * j->s), np = p1 - p0;
  if (j->gather)
    gather_planes(j->src + p0 * full, j->arg + p0 * pooled, np, j->oh, j->ow, j->s,
                  j->dst + p0 * pooled);
  else
    scatter_planes(j->src + p0 * pooled, j->arg + p0 * pooled, np, j->oh, j->ow, j->s,
                   j->dst + p0 * full);
}

void tg_pool_planes(int gather, const tg_real *src, const tg_real *arg, int64_t planes, int64_t oh,
                    int64_t ow, int64_t s, tg_real *dst) {
  planes_job j = {.gather = gather, .oh = oh, .ow = ow, .s = s, .src = src, .arg = arg, .dst = dst};
  tg_parallel_for(planes, tg_grain_of(oh * ow), planes * oh * ow, planes_chunk, &j);
}

/* Images [n0, n1) of conv or conv_grad_x. */
static void conv_images(void *arg, int64_t n0, int64_t n1) {
  const conv_job *j = arg;
  const conv_geom *g = &j->g;
  const int64_t chw = g->c * g->h * g->w, fnp = j->fn * j->p;
  tg_real *buf = thread_buf(j); /* (K, P) */
  for (int64_t n = n0; n < n1; n++) {
    if (j->kind == CONV_Y) {
      /* conv_max_pool: y_n in the scratch after the patches, pooled
       * from there into out */
      tg_real *restrict y = j->pool ? buf + j->k * j->p : j->out + n * fnp;
      unfold_image(g, j->x + n * chw, buf); /* (K, P) */
      tg_gemm_run(&j->mm, j->w, buf, y);    /* (FN, K)·(K, P) */
      if (j->bias)
        add_bias(y, j->bias, j->fn, j->p, j->relu); /* while y_n is in cache */
      else if (j->relu)
        tg_relu_inplace(y, fnp);
      if (j->pool) {
        const int64_t pooled = fnp / (j->pool * j->pool);
        pool_image(y, j->fn, g->oh, g->ow, j->pool, j->out + n * pooled, j->arg + n * pooled);
      }
    } else {
      const tg_real *dy = j->dy + n * fnp; /* (FN, P) */
      if (j->pool) { /* conv_pool_grad_x: dy_n (FN, PH, PW) scattered to the maxima first */
        const int64_t pooled = fnp / (j->pool * j->pool);
        scatter_planes(j->dy + n * pooled, j->arg + n * pooled, j->fn, g->oh, g->ow, j->pool,
                       buf + j->k * j->p);
        dy = buf + j->k * j->p;
      }
      tg_gemm_run(&j->mm, j->w, dy, buf); /* (FN, K)ᵀ·(FN, P) */
      fold_image(g, buf, j->out + n * chw);
    }
  }
}

/* Groups [q0, q1) of conv_grad_w: group q sums its images into its own
 * partial dWᵀ. */
static void conv_groups(void *arg, int64_t q0, int64_t q1) {
  const conv_job *j = arg;
  const conv_geom *g = &j->g;
  const int64_t chw = g->c * g->h * g->w, P = j->p, FN = j->fn;
  /* dy_n's size: FN·P, or FN·PH·PW with pool */
  const int64_t fnp = FN * P / (j->pool ? j->pool * j->pool : 1);
  tg_real *buf = thread_buf(j);              /* (K, P) */
  tg_real *restrict dyt = buf + j->k * j->p; /* (P, FN) */
  for (int64_t q = q0; q < q1; q++) {
    tg_real *dwt = j->part + q * j->k * FN; /* (K, FN) */
    for (int64_t n = g->n * q / j->groups; n < g->n * (q + 1) / j->groups; n++) {
      const tg_real *dy = j->dy + n * fnp; /* (FN, P), or (FN, PH, PW) with pool */
      /* dyt = dyᵀ by libxsmm's transpose kernels (in its column-major
       * terms a P × FN matrix): a plain loop wrote one element at a time
       * with a stride and took a tenth of SimpleConvNet's step. */
      if (j->pool) { /* dy_n scattered to the maxima first, in order */
        scatter_planes(dy, j->arg + n * fnp, FN, g->oh, g->ow, j->pool, dyt + P * FN);
        dy = dyt + P * FN;
      }
      libxsmm_otrans(dyt, dy, sizeof(tg_real), (libxsmm_blasint)P, (libxsmm_blasint)FN,
                     (libxsmm_blasint)P, (libxsmm_blasint)FN);
      unfold_image(g, j->x + n * chw, buf);
      tg_gemm_run(n == g->n * q / j->groups ? &j->mm : &j->mm_acc, buf, dyt, dwt);
    }
  }
}

/* tg_set_conv_winograd's mode. */
static int winograd_mode = TG_WINOGRAD_AUTO;

tg_status tg_set_conv_winograd(int mode) {
  if (mode != TG_WINOGRAD_AUTO && mode != TG_WINOGRAD_ALWAYS && mode != TG_WINOGRAD_NEVER)
    return TG_ERR_ARG;
  __atomic_store_n(&winograd_mode, mode, __ATOMIC_RELAXED);
  return TG_OK;
}

static int use_winograd(const conv_job *j) {
  const int mode = __atomic_load_n(&winograd_mode, __ATOMIC_RELAXED);
  return mode != TG_WINOGRAD_NEVER &&
         tg_winograd_fits(j->g.fh, j->g.fw, j->g.stride, j->g.pad, j->g.c, j->fn) &&
         (mode == TG_WINOGRAD_ALWAYS || j->g.n * j->p >= TG_WINOGRAD_MIN_OUTPUTS);
}

/* Plans and runs a job on the threads (when the products are worth it),
 * scratch from the arena. Returns 0 after failing the tape. */
static int conv_run(tg_tape *tape, const tg_op *op, conv_job *j) {
  if (use_winograd(j)) /* the pooled ops pool or scatter image by image in its blocks */
    return tg_winograd_conv(tape, op,
                            j->kind == CONV_Y    ? TG_WG_Y
                            : j->kind == CONV_DX ? TG_WG_DX
                                                 : TG_WG_DW,
                            (const int64_t[]){j->g.n, j->g.c, j->g.h, j->g.w}, j->fn, j->g.pad,
                            j->x, j->w, j->dy, j->bias, j->relu, j->pool, j->arg, j->out);
  const double flops = 2.0 * (double)j->g.n * (double)j->fn * (double)j->k * (double)j->p;
  /* A scratch slot per thread that may run (tg_parallel_for's rule: a
   * product of 5e6 flops is worth a second thread). */
  const int64_t work = (int64_t)(flops / 5e6 * TG_PAR_MIN);
  const int nth = j->nth = omp_in_parallel() || work < TG_PAR_MIN ? 1 : tg_threads();
  const int ok = j->kind == CONV_Y    ? tg_gemm_plan(&j->mm, 0, j->fn, j->p, j->k, 0)
                 : j->kind == CONV_DX ? tg_gemm_plan(&j->mm, 1, j->k, j->p, j->fn, 0)
                                      : tg_gemm_plan(&j->mm, 0, j->k, j->fn, j->p, 0) &&
                                            tg_gemm_plan(&j->mm_acc, 0, j->k, j->fn, j->p, 1);
  if (!ok) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "a product dimension exceeds 2^31-1");
    return 0;
  }
  tg_tensor *s = tg_empty(tape, (int64_t[]){nth, slot_size(j)}, 2);
  if (!s)
    return 0;
  j->scratch = s->data;
  if (j->kind == CONV_DW) {
    j->groups = min64(j->g.n, CONV_GROUPS);
    tg_tensor *t = tg_empty(tape, (int64_t[]){j->groups, j->k * j->fn}, 2);
    if (!t)
      return 0;
    j->part = t->data;
  }
  if (j->kind == CONV_DW)
    tg_parallel_for(j->groups, 1, work, conv_groups, j);
  else
    tg_parallel_for(j->g.n, 1, work, conv_images, j);
  if (j->kind == CONV_DW) { /* dW (FN, K) = Σ_q part_qᵀ, in group order */
    const int64_t K = j->k, FN = j->fn;
    tg_real *restrict dw = j->out;
    for (int64_t f = 0; f < FN; f++)
      for (int64_t k = 0; k < K; k++) {
        tg_real sum = j->part[k * FN + f];
        for (int64_t q = 1; q < j->groups; q++)
          sum += j->part[(q * K + k) * FN + f];
        dw[f * K + k] = sum;
      }
  }
  return 1;
}

/* attr: the patch slots (im2col.h). conv's optional bias is input 2. */
static void conv_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_relu_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static const tg_op op_conv = {"conv", 3, 0, conv_backward};
/* conv_relu decides, per output element, which side of ReLU's kink its
 * pre-activation is on: y > 0. */
static uint64_t conv_relu_decide(tg_tape *tape, int n, tg_tensor *const *in, const tg_tensor *out,
                                 const int64_t *attr) {
  (void)tape, (void)n, (void)in, (void)attr;
  return tg_hash_signs(out->data, out->numel, 0);
}
static const tg_kinked_op op_conv_relu = {{"conv_relu", 3, TG_KINKED, conv_relu_backward},
                                          conv_relu_decide};
static const tg_op op_conv_grad_x = {"conv_grad_x", 2, 0, conv_grad_x_backward};
static const tg_op op_conv_grad_w = {"conv_grad_w", 2, 0, conv_grad_w_backward};

/* y = relu(conv(x, W) + b): conv's rule on where_pos(y, dy), the
 * gradient that ReLU lets through (y > 0 exactly where the pre-activation
 * is: the one kept tensor tells both). */
static void conv_relu_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  conv_backward(tape, n, tg_where_pos(tape, n->out, gy), gx);
}

/* y = conv(x, W) + b: dx = conv_grad_x(dy, W), dW = conv_grad_w(x, dy),
 * db = Σ dy over (N, OH, OW) */
static void conv_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0], *w = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv_grad_x(tape, gy, w, x->shape, n->attr[PATCH_STRIDE], n->attr[PATCH_PAD]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv_grad_w(tape, x, gy, w->shape[2], w->shape[3], n->attr[PATCH_STRIDE],
                           n->attr[PATCH_PAD]);
  if (tg_op_needs_grad(n, 2))
    gx[2] = tg_sum(tape, gy, (const int[]){0, 2, 3}, 3, 0);
}

/* dx = conv_grad_x(dy, W), linear in each: ⟨G, dx⟩ = ⟨conv(G, W), dy⟩,
 * so d(dy) = conv(G, W) and dW = conv_grad_w(G, dy). */
static void conv_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *dy = n->in[0], *w = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv(tape, gy, w, NULL, n->attr[PATCH_STRIDE], n->attr[PATCH_PAD]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv_grad_w(tape, gy, dy, w->shape[2], w->shape[3], n->attr[PATCH_STRIDE],
                           n->attr[PATCH_PAD]);
}

/* dW = conv_grad_w(x, dy): ⟨H, dW⟩ = ⟨conv(x, H), dy⟩, so
 * dx = conv_grad_x(dy, H) and d(dy) = conv(x, H). */
static void conv_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0], *dy = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv_grad_x(tape, dy, gy, x->shape, n->attr[PATCH_STRIDE], n->attr[PATCH_PAD]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv(tape, x, gy, NULL, n->attr[PATCH_STRIDE], n->attr[PATCH_PAD]);
}

/* Fails unless t is (N, FN, OH, OW) for the geometry g and fn filters. */
static int conv_dy_check(tg_tape *tape, const tg_op *op, const char *what, const tg_tensor *dy,
                         const conv_geom *g, int64_t fn) {
  if (dy->ndim == 4 && dy->shape[0] == g->n && (fn < 0 || dy->shape[1] == fn) &&
      dy->shape[2] == g->oh && dy->shape[3] == g->ow)
    return 1;
  char want[100];
  if (fn < 0)
    snprintf(want, sizeof want, "(%lld, FN, %lld, %lld)", (long long)g->n, (long long)g->oh,
             (long long)g->ow);
  else
    snprintf(want, sizeof want, "(%lld, %lld, %lld, %lld)", (long long)g->n, (long long)fn,
             (long long)g->oh, (long long)g->ow);
  tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: dy %s must be %s", what, TG_SHAPE(dy), want);
  return 0;
}

/* conv_run with its scratch (patches, transformed tiles, partial sums)
 * handed back to the arena when it is done: the output, allocated before,
 * stays. A step's convolutions then share one scratch area instead of
 * each keeping its own until the reset (DeepConvNet: 11 MiB). */
int tg_conv_exec(tg_tape *tape, const tg_op *op, conv_job *j) {
  const tg_tape_mark m = tg_tape_get_mark(tape);
  if (!conv_run(tape, op, j))
    return 0;
  tg_tape_rewind(tape, m);
  return 1;
}

int tg_conv_operands(tg_tape *tape, const tg_op *op, const char *what, const tg_tensor *x,
                     const tg_tensor *W, const tg_tensor *b) {
  if (x->ndim != 4 || W->ndim != 4 || W->shape[1] != x->shape[1]) {
    tg_op_fail(tape, op, TG_ERR_SHAPE,
               "%s: need x (N, C, H, W) and W (FN, C, FH, FW) with the same C", what);
    return 0;
  }
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[0])) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: b must be (%lld,), one per filter", what,
               (long long)W->shape[0]);
    return 0;
  }
  return 1;
}

/* conv and conv_relu: the same checks and the same job, relu or not. */
static tg_tensor *conv_forward(tg_tape *tape, const tg_op *op, tg_tensor *x, tg_tensor *W,
                               tg_tensor *b, int64_t stride, int64_t pad, int relu) {
  tg_tensor *in[3] = {x, W, b};
  const int nin = b ? 3 : 2;
  if (!tg_op_begin(tape, op, nin, in))
    return NULL;
  char what[400];
  snprintf(what, sizeof what, "x %s, W %s%s%s", TG_SHAPE(x), TG_SHAPE(W), b ? ", b " : "",
           b ? TG_SHAPE(b) : "");
  if (!tg_conv_operands(tape, op, what, x, W, b))
    return NULL;
  conv_job j = {
      .kind = CONV_Y, .x = x->data, .w = W->data, .bias = b ? b->data : NULL, .relu = relu};
  if (!tg_conv_geom(tape, op, what, x->shape, W->shape[2], W->shape[3], stride, pad, &j.g))
    return NULL;
  j.fn = W->shape[0], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *y = tg_empty(tape, (int64_t[]){j.g.n, j.fn, j.g.oh, j.g.ow}, 4);
  if (!y)
    return NULL;
  j.out = y->data;
  if (!tg_conv_exec(tape, op, &j))
    return NULL;
  int64_t a[PATCH_NATTR];
  return tg_op_record(tape, op, y, nin, in, tg_patch_attrs(&j.g, a), PATCH_NATTR);
}

tg_tensor *tg_conv(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                   int64_t pad) {
  return conv_forward(tape, &op_conv, x, W, b, stride, pad, 0);
}

tg_tensor *tg_conv_relu(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                        int64_t pad) {
  return conv_forward(tape, &op_conv_relu.op, x, W, b, stride, pad, 1);
}

tg_tensor *tg_conv_grad_x(tg_tape *tape, tg_tensor *dy, tg_tensor *W, const int64_t *xshape,
                          int64_t stride, int64_t pad) {
  tg_tensor *in[2] = {dy, W};
  if (!tg_op_begin(tape, &op_conv_grad_x, 2, in))
    return NULL;
  if (!xshape)
    return tg_op_fail(tape, &op_conv_grad_x, TG_ERR_NULL, "xshape is NULL for dy %s", TG_SHAPE(dy));
  char xsb[160], what[400];
  tg_shape_str(xshape, 4, xsb, sizeof xsb);
  snprintf(what, sizeof what, "dy %s, W %s to x %s", TG_SHAPE(dy), TG_SHAPE(W), xsb);
  tg_error err = {0};
  if (tg_shape_check(xshape, 4, NULL, "xshape", &err) != TG_OK)
    return tg_op_fail(tape, &op_conv_grad_x, err.status, "%s: %s", what, err.msg);
  if (W->ndim != 4 || W->shape[1] != xshape[1])
    return tg_op_fail(tape, &op_conv_grad_x, TG_ERR_SHAPE,
                      "%s: W must be (FN, C, FH, FW) with x's C", what);
  conv_job j = {.kind = CONV_DX, .w = W->data, .dy = dy->data};
  if (!tg_conv_geom(tape, &op_conv_grad_x, what, xshape, W->shape[2], W->shape[3], stride, pad,
                    &j.g) ||
      !conv_dy_check(tape, &op_conv_grad_x, what, dy, &j.g, W->shape[0]))
    return NULL;
  j.fn = W->shape[0], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *dx = tg_empty(tape, xshape, 4); /* (N, C, H, W) */
  if (!dx)
    return NULL;
  j.out = dx->data;
  if (!tg_conv_exec(tape, &op_conv_grad_x, &j))
    return NULL;
  int64_t a[PATCH_NATTR];
  return tg_op_record(tape, &op_conv_grad_x, dx, 2, in, tg_patch_attrs(&j.g, a), PATCH_NATTR);
}

tg_tensor *tg_conv_grad_w(tg_tape *tape, tg_tensor *x, tg_tensor *dy, int64_t fh, int64_t fw,
                          int64_t stride, int64_t pad) {
  tg_tensor *in[2] = {x, dy};
  if (!tg_op_begin(tape, &op_conv_grad_w, 2, in))
    return NULL;
  char what[400];
  snprintf(what, sizeof what, "x %s, dy %s", TG_SHAPE(x), TG_SHAPE(dy));
  if (x->ndim != 4)
    return tg_op_fail(tape, &op_conv_grad_w, TG_ERR_SHAPE, "%s: x must be (N, C, H, W)", what);
  conv_job j = {.kind = CONV_DW, .x = x->data, .dy = dy->data};
  if (!tg_conv_geom(tape, &op_conv_grad_w, what, x->shape, fh, fw, stride, pad, &j.g) ||
      !conv_dy_check(tape, &op_conv_grad_w, what, dy, &j.g, -1))
    return NULL;
  j.fn = dy->shape[1], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *dw = tg_empty(tape, (int64_t[]){j.fn, x->shape[1], fh, fw}, 4); /* (FN, C, FH, FW) */
  if (!dw)
    return NULL;
  j.out = dw->data;
  if (!tg_conv_exec(tape, &op_conv_grad_w, &j))
    return NULL;
  int64_t a[PATCH_NATTR];
  return tg_op_record(tape, &op_conv_grad_w, dw, 2, in, tg_patch_attrs(&j.g, a), PATCH_NATTR);
}

/* The definition the three fused ops are tested against: the book's
 * Convolution.forward, as im2col, matmul, the bias added to each row, and
 * permute. */
tg_tensor *tg_conv_composite(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                             int64_t stride, int64_t pad) {
  if (!x || !W || x->ndim != 4 || W->ndim != 4)
    return tg_conv(tape, x, W, b, stride, pad); /* its message */
  const int64_t fn = W->shape[0], k = W->shape[1] * W->shape[2] * W->shape[3];
  tg_tensor *col = tg_im2col(tape, x, W->shape[2], W->shape[3], stride, pad); /* (N·OH·OW, K) */
  if (!col)
    return NULL;
  const int64_t oh = (x->shape[2] + 2 * pad - W->shape[2]) / stride + 1;
  const int64_t ow = (x->shape[3] + 2 * pad - W->shape[3]) / stride + 1;
  tg_tensor *y = tg_matmul_t(tape, col, tg_reshape(tape, W, (int64_t[]){fn, k}, 2), 0, 1);
  if (b)
    y = tg_add(tape, y, b);                                         /* (N·OH·OW, FN) */
  y = tg_reshape(tape, y, (int64_t[]){x->shape[0], oh, ow, fn}, 4); /* (N, OH, OW, FN) */
  return tg_permute(tape, y, (const int[]){0, 3, 1, 2});            /* (N, FN, OH, OW) */
}
