/* conv.c — image patches: im2col and its adjoint col2im, the primitive ops
 * pooling is built from (nn/conv.c composes them with max and mean), and
 * the fused convolution (conv, conv_grad_x, conv_grad_w; the last section)
 * whose definition and test oracle is im2col, matmul and permute.
 *
 * Layout (the book's): col row r = (n, oh, ow), column (c, fh, fw), so
 * col[r, (c·FH + fh)·FW + fw] = x[n, c, oh·stride − pad + fh,
 * ow·stride − pad + fw], zero where that falls in the padding. Windows
 * cut by the padding on the left or right are handled one at a time, as
 * runs of FW elements (contiguous in x and col at every stride) whose
 * padded ends are cut once per window, not tested per element. The
 * interior windows of a row of output go together, one loop over ow per
 * (c, fh, fw): contiguous in x when stride == 1, and long loops however
 * small the window. No division runs inside the loops.
 *
 * Threads: im2col splits the rows by (n, oh), col2im by (n, c) planes, so
 * each thread writes only its own rows or its own whole planes of x: no
 * races, and every sum of col2im is added in one fixed order whatever the
 * thread count. Whether to go parallel is a C branch taken before
 * entering OpenMP (as in tg_parallel_for): entering libgomp costs
 * microseconds, more than a small image.
 *
 * Each backward rule is the other op, so gradients of gradients work.
 * Nothing here may allocate from the system (scratch comes from the
 * arena) or record anything but these ops.
 */
#include <string.h>

#include "op.h"
#include "ops.h"

/* The geometry of one im2col / col2im. */
typedef struct conv_geom {
  int64_t n, c, h, w;          /* x: (N, C, H, W) */
  int64_t fh, fw, stride, pad; /* filter FH×FW */
  int64_t oh, ow;              /* output positions per image */
  int64_t rows, cols;          /* col: (N·OH·OW, C·FH·FW) */
  int64_t owa, owb;            /* the interior: see interior() */
} conv_geom;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The positions ow in [*a, *b) whose window lies wholly inside x's width
 * (ow·stride − pad >= 0 and ow·stride − pad + FW <= W): the interior,
 * where the kernels run without clipping. */
static void interior(const conv_geom *g, int64_t *a, int64_t *b) {
  *a = min64((g->pad + g->stride - 1) / g->stride, g->ow);
  int64_t last = g->w - g->fw + g->pad; /* the largest ow·stride allowed */
  *b = last < 0 ? *a : max64(*a, min64(g->ow, last / g->stride + 1));
}

/* Fills g from x's shape (valid: every dimension >= 1) and the filter, or fails the tape naming op
 * and `what` (the operands, already formatted) and returns 0. */
static int geom_check(tg_tape *tape, const tg_op *op, const char *what, const int64_t *xs,
                      int64_t fh, int64_t fw, int64_t stride, int64_t pad, conv_geom *g) {
  char ctx[400];
  snprintf(ctx, sizeof ctx, "%s, filter %lldx%lld, stride %lld, pad %lld", what, (long long)fh,
           (long long)fw, (long long)stride, (long long)pad);
  if (fh < 1 || fw < 1) {
    tg_op_fail(tape, op, TG_ERR_ARG, "%s: the filter size must be positive", ctx);
    return 0;
  }
  if (stride < 1) {
    tg_op_fail(tape, op, TG_ERR_ARG, "%s: the stride must be positive", ctx);
    return 0;
  }
  if (pad < 0) {
    tg_op_fail(tape, op, TG_ERR_ARG, "%s: the padding must be >= 0", ctx);
    return 0;
  }
  const int64_t size[2] = {xs[2], xs[3]}, f[2] = {fh, fw};
  static const char *const axis[2] = {"height", "width"};
  int64_t o[2];
  for (int a = 0; a < 2; a++) {
    if (pad > (INT64_MAX - size[a]) / 2) {
      tg_op_fail(tape, op, TG_ERR_SHAPE, "%s: the padded %s overflows", ctx, axis[a]);
      return 0;
    }
    int64_t padded = size[a] + 2 * pad;
    if (f[a] > padded) {
      tg_op_fail(tape, op, TG_ERR_SHAPE,
                 "%s: the filter %s %lld is larger than the padded input (%lld + 2*%lld = %lld)",
                 ctx, axis[a], (long long)f[a], (long long)size[a], (long long)pad,
                 (long long)padded);
      return 0;
    }
    if ((padded - f[a]) % stride != 0) {
      tg_op_fail(tape, op, TG_ERR_SHAPE,
                 "%s: %s: (%lld + 2*%lld - %lld) = %lld is not a multiple of stride %lld", ctx,
                 axis[a], (long long)size[a], (long long)pad, (long long)f[a],
                 (long long)(padded - f[a]), (long long)stride);
      return 0;
    }
    o[a] = (padded - f[a]) / stride + 1;
  }
  int64_t rows, cols;
  if (__builtin_mul_overflow(xs[0], o[0], &rows) || __builtin_mul_overflow(rows, o[1], &rows) ||
      __builtin_mul_overflow(xs[1], fh, &cols) || __builtin_mul_overflow(cols, fw, &cols) ||
      __builtin_mul_overflow(rows, cols, &(int64_t){0})) {
    tg_op_fail(tape, op, TG_ERR_SHAPE,
               "%s: the patch matrix (%lld*%lld*%lld, %lld*%lld*%lld) is too large", ctx,
               (long long)xs[0], (long long)o[0], (long long)o[1], (long long)xs[1], (long long)fh,
               (long long)fw);
    return 0;
  }
  *g = (conv_geom){xs[0], xs[1], xs[2], xs[3], fh, fw, stride, pad, o[0], o[1], rows, cols, 0, 0};
  interior(g, &g->owa, &g->owb);
  return 1;
}

/* Runs fn(ctx, t, t + 1) for the ntask tasks: on this thread when the
 * whole job (work elements) is small, else on OpenMP threads. */
static void run_tasks(int64_t ntask, int64_t work, void (*fn)(void *ctx, int64_t lo, int64_t hi),
                      void *ctx) {
  if (work < TG_PAR_MIN || ntask < 2) {
    fn(ctx, 0, ntask);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < ntask; t++)
    fn(ctx, t, t + 1);
}

typedef struct patch_ctx {
  const conv_geom *g;
  tg_real *x;   /* (N, C, H, W) */
  tg_real *col; /* (N·OH·OW, C·FH·FW) */
} patch_ctx;

/* ------------------------------------------------------------------------
 * im2col kernel: tasks are (n, oh), each writing the OW rows of col that
 * start at row (n·OH + oh)·OW.
 *
 * Edge windows (cut by the padding on the left or right) are copied one
 * by one, a row of x at a time, their padded ends zeroed. Interior
 * windows are done together: for each (c, fh, fw) one loop over ow reads
 * x with the stride (contiguous when stride == 1) and writes one column
 * of the rows, which stay in cache. A loop per window would pay its
 * overhead per run of FW, which for pooling's 2×2 windows is most of the
 * cost (measured 3x slower). */
static void im2col_window(const conv_geom *g, const tg_real *restrict xn, tg_real *restrict dst,
                          int64_t ih0, int64_t iw0) {
  const int64_t plane = g->h * g->w;
  /* The columns [lo, hi) of the window lie inside x. */
  const int64_t lo = min64(max64(0, -iw0), g->fw), hi = max64(lo, min64(g->fw, g->w - iw0));
  for (int64_t ci = 0; ci < g->c; ci++)
    for (int64_t kh = 0; kh < g->fh; kh++, dst += g->fw) {
      const int64_t ih = ih0 + kh;
      if (ih < 0 || ih >= g->h || hi == lo) {
        memset(dst, 0, (size_t)g->fw * sizeof *dst);
        continue;
      }
      const tg_real *restrict src = xn + ci * plane + ih * g->w + (iw0 + lo); /* x[.., lo] */
      for (int64_t j = 0; j < lo; j++)
        dst[j] = 0;
      for (int64_t j = 0; j < hi - lo; j++)
        dst[lo + j] = src[j];
      for (int64_t j = hi; j < g->fw; j++)
        dst[j] = 0;
    }
}

static void im2col_tasks(void *arg, int64_t t0, int64_t t1) {
  const patch_ctx *p = arg;
  const conv_geom g = *p->g;
  const int64_t plane = g.h * g.w, s = g.stride, cols = g.cols, owa = g.owa, owb = g.owb;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t n = t / g.oh, oh = t % g.oh; /* once per task */
    const tg_real *restrict xn = p->x + n * g.c * plane;
    tg_real *restrict rows = p->col + t * g.ow * cols; /* row (n, oh, 0) */
    const int64_t ih0 = oh * s - g.pad;
    for (int64_t ow = 0; ow < owa; ow++)
      im2col_window(&g, xn, rows + ow * cols, ih0, ow * s - g.pad);
    for (int64_t ow = owb; ow < g.ow; ow++)
      im2col_window(&g, xn, rows + ow * cols, ih0, ow * s - g.pad);
    const int64_t m = owb - owa;
    if (m == 0)
      continue;
    tg_real *restrict d0 = rows + owa * cols; /* row (n, oh, owa) */
    for (int64_t ci = 0; ci < g.c; ci++)
      for (int64_t kh = 0; kh < g.fh; kh++) {
        const int64_t ih = ih0 + kh;
        for (int64_t kw = 0; kw < g.fw; kw++) {
          tg_real *restrict d = d0 + (ci * g.fh + kh) * g.fw + kw; /* column (c, fh, fw) */
          if (ih < 0 || ih >= g.h) {
            for (int64_t i = 0; i < m; i++)
              d[i * cols] = 0;
            continue;
          }
          const tg_real *restrict x = xn + ci * plane + ih * g.w + (owa * s - g.pad + kw);
          if (s == 1)
            for (int64_t i = 0; i < m; i++)
              d[i * cols] = x[i];
          else
            for (int64_t i = 0; i < m; i++)
              d[i * cols] = x[i * s];
        }
      }
  }
}

/* ------------------------------------------------------------------------
 * col2im kernel: tasks are the (n, c) planes of x; each zeroes its plane
 * and adds every window's entries into it, in an order fixed by the
 * shape: for each oh, the edge windows, then the interior ones by
 * (fh, fw) with one loop over ow (writing x with the stride: contiguous
 * when stride == 1). */
static void col2im_tasks(void *arg, int64_t t0, int64_t t1) {
  const patch_ctx *p = arg;
  const conv_geom g = *p->g;
  const int64_t plane = g.h * g.w, k = g.fh * g.fw, s = g.stride, cols = g.cols;
  const int64_t owa = g.owa, owb = g.owb, m = owb - owa;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t n = t / g.c, ci = t % g.c;
    tg_real *restrict xp = p->x + t * plane; /* x[n, ci] */
    memset(xp, 0, (size_t)plane * sizeof *xp);
    for (int64_t oh = 0; oh < g.oh; oh++) {
      const tg_real *restrict rows = p->col + ((n * g.oh + oh) * g.ow) * cols + ci * k;
      const int64_t ih0 = oh * s - g.pad;
      for (int64_t ow = 0; ow < g.ow; ow++) {
        if (ow == owa && m > 0) {
          ow = owb - 1; /* the interior is done below */
          continue;
        }
        const int64_t iw0 = ow * s - g.pad;
        const int64_t lo = min64(max64(0, -iw0), g.fw), hi = max64(lo, min64(g.fw, g.w - iw0));
        for (int64_t kh = 0; kh < g.fh; kh++) {
          const int64_t ih = ih0 + kh;
          if (ih < 0 || ih >= g.h || hi == lo)
            continue;
          const tg_real *restrict src = rows + ow * cols + kh * g.fw + lo;
          tg_real *restrict dst = xp + ih * g.w + (iw0 + lo);
          for (int64_t j = 0; j < hi - lo; j++)
            dst[j] += src[j];
        }
      }
      if (m == 0)
        continue;
      for (int64_t kh = 0; kh < g.fh; kh++) {
        const int64_t ih = ih0 + kh;
        if (ih < 0 || ih >= g.h)
          continue;
        for (int64_t kw = 0; kw < g.fw; kw++) {
          const tg_real *restrict src = rows + owa * cols + kh * g.fw + kw;
          tg_real *restrict dst = xp + ih * g.w + (owa * s - g.pad + kw);
          if (s == 1)
            for (int64_t i = 0; i < m; i++)
              dst[i] += src[i * cols];
          else
            for (int64_t i = 0; i < m; i++)
              dst[i * s] += src[i * cols];
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------
 * The ops. attr: im2col fh, fw, stride, pad; col2im N, C, H, W, fh, fw,
 * stride, pad. */

/* im2col: dx = col2im(dy) */
static void im2col_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_col2im(tape, gy, n->in[0]->shape, n->attr[0], n->attr[1], n->attr[2], n->attr[3]);
}
static const tg_op op_im2col = {"im2col", 1, 0, im2col_backward};

/* col2im: dcol = im2col(dx) */
static void col2im_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_im2col(tape, gy, n->attr[4], n->attr[5], n->attr[6], n->attr[7]);
}
static const tg_op op_col2im = {"col2im", 1, 0, col2im_backward};

tg_tensor *tg_im2col(tg_tape *tape, tg_tensor *x, int64_t fh, int64_t fw, int64_t stride,
                     int64_t pad) {
  if (!tg_op_begin(tape, &op_im2col, 1, &x))
    return NULL;
  if (x->ndim != 4)
    return tg_op_fail(tape, &op_im2col, TG_ERR_SHAPE, "x %s must be 4-D (N, C, H, W)", TG_SHAPE(x));
  char what[200];
  snprintf(what, sizeof what, "x %s", TG_SHAPE(x));
  conv_geom g;
  if (!geom_check(tape, &op_im2col, what, x->shape, fh, fw, stride, pad, &g))
    return NULL;
  tg_tensor *col = tg_empty(tape, (int64_t[]){g.rows, g.cols}, 2); /* (N·OH·OW, C·FH·FW) */
  if (!col)
    return NULL;
  run_tasks(g.n * g.oh, g.rows * g.cols, im2col_tasks, &(patch_ctx){&g, x->data, col->data});
  const int64_t attr[4] = {fh, fw, stride, pad};
  return tg_op_record(tape, &op_im2col, col, 1, &x, attr, 4);
}

tg_tensor *tg_col2im(tg_tape *tape, tg_tensor *col, const int64_t *xshape, int64_t fh, int64_t fw,
                     int64_t stride, int64_t pad) {
  if (!tg_op_begin(tape, &op_col2im, 1, &col))
    return NULL;
  if (!xshape)
    return tg_op_fail(tape, &op_col2im, TG_ERR_NULL, "xshape is NULL for col %s", TG_SHAPE(col));
  char xsb[160], what[400];
  tg_shape_str(xshape, 4, xsb, sizeof xsb);
  snprintf(what, sizeof what, "col %s to x %s", TG_SHAPE(col), xsb);
  if (col->ndim != 2)
    return tg_op_fail(tape, &op_col2im, TG_ERR_SHAPE, "%s: col must be 2-D", what);
  tg_error err = {0};
  if (tg_shape_check(xshape, 4, NULL, "xshape", &err) != TG_OK)
    return tg_op_fail(tape, &op_col2im, err.status, "%s: %s", what, err.msg);
  conv_geom g;
  if (!geom_check(tape, &op_col2im, what, xshape, fh, fw, stride, pad, &g))
    return NULL;
  if (col->shape[0] != g.rows || col->shape[1] != g.cols)
    return tg_op_fail(tape, &op_col2im, TG_ERR_SHAPE,
                      "%s, filter %lldx%lld, stride %lld, pad %lld: col must be (%lld, %lld)", what,
                      (long long)fh, (long long)fw, (long long)stride, (long long)pad,
                      (long long)g.rows, (long long)g.cols);
  tg_tensor *x = tg_empty(tape, xshape, 4); /* (N, C, H, W); each task zeroes its planes */
  if (!x)
    return NULL;
  run_tasks(g.n * g.c, g.rows * g.cols, col2im_tasks, &(patch_ctx){&g, x->data, col->data});
  const int64_t attr[8] = {xshape[0], xshape[1], xshape[2], xshape[3], fh, fw, stride, pad};
  return tg_op_record(tape, &op_col2im, x, 1, &col, attr, 8);
}

/* ------------------------------------------------------------------------
 * Convolution, fused: y = conv(x, W) image by image, with the patches of
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
 * Images are split over threads; dW sums images in CONV_GROUPS fixed
 * groups, each in its own partial sum, added in group order at the end,
 * so no result depends on the thread count.
 *
 * The three ops are each other's gradients (conv is bilinear in x and W,
 * and conv_grad_x, conv_grad_w are its adjoints in x and in W), so
 * gradients of gradients work. tg_conv_composite (im2col, matmul, permute)
 * is their definition, kept as the oracle (DESIGN.md §5): the tests hold
 * all three and their gradients against it. */
#include <omp.h>

#include "gemm.h"
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

SHORT_RUNS static void unfold_image(const conv_geom *g, const tg_real *restrict xn,
                                    tg_real *restrict rows) {
  const int64_t s = g->stride, P = g->oh * g->ow, plane = g->h * g->w;
  for (int64_t ci = 0; ci < g->c; ci++)
    for (int64_t kh = 0; kh < g->fh; kh++)
      for (int64_t kw = 0; kw < g->fw; kw++, rows += P) {
        /* ow in [lo, hi) reads inside the row: 0 <= ow·s + off < W */
        const int64_t off = kw - g->pad;
        const int64_t lo = min64(off < 0 ? (-off + s - 1) / s : 0, g->ow);
        const int64_t hi =
            g->w - 1 - off < 0 ? lo : max64(lo, min64(g->ow, (g->w - 1 - off) / s + 1));
        if (s == 1 && g->ow == g->w) {
          unfold_same(g, xn + ci * plane, rows, kh, off, lo, hi);
          continue;
        }
        for (int64_t oh = 0; oh < g->oh; oh++) {
          tg_real *restrict d = rows + oh * g->ow;
          const int64_t ih = oh * s - g->pad + kh;
          if (ih < 0 || ih >= g->h) {
            memset(d, 0, (size_t)g->ow * sizeof *d);
            continue;
          }
          const tg_real *restrict src = xn + ci * plane + ih * g->w + off;
          for (int64_t ow = 0; ow < lo; ow++)
            d[ow] = 0;
          if (s == 1)
            for (int64_t ow = lo; ow < hi; ow++)
              d[ow] = src[ow];
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
  for (int64_t ci = 0; ci < g->c; ci++)
    for (int64_t kh = 0; kh < g->fh; kh++)
      for (int64_t kw = 0; kw < g->fw; kw++, rows += P) {
        const int64_t off = kw - g->pad;
        const int64_t lo = min64(off < 0 ? (-off + s - 1) / s : 0, g->ow);
        const int64_t hi =
            g->w - 1 - off < 0 ? lo : max64(lo, min64(g->ow, (g->w - 1 - off) / s + 1));
        if (s == 1 && g->ow == g->w) {
          fold_same(g, rows, dxn + ci * plane, kh, off, lo, hi);
          continue;
        }
        for (int64_t oh = 0; oh < g->oh; oh++) {
          const int64_t ih = oh * s - g->pad + kh;
          if (ih < 0 || ih >= g->h)
            continue;
          const tg_real *restrict src = rows + oh * g->ow;
          tg_real *restrict d = dxn + ci * plane + ih * g->w + off;
          if (s == 1)
            for (int64_t ow = lo; ow < hi; ow++)
              d[ow] += src[ow];
          else
            for (int64_t ow = lo; ow < hi; ow++)
              d[ow * s] += src[ow];
        }
      }
}

enum { CONV_Y, CONV_DX, CONV_DW };

typedef struct conv_job {
  int kind;
  conv_geom g;               /* the batch's geometry */
  int64_t fn, k, p;          /* filters, C·FH·FW, OH·OW */
  mm_plan mm, mm_acc;        /* the per-image product; conv_grad_w's accumulating one */
  const tg_real *x, *w, *dy; /* x (N, C, H, W); W (FN, K); dy (N, FN, P) */
  const tg_real *bias;       /* conv: (FN,) or NULL */
  tg_real *out;              /* y (N, FN, P), dx (N, C, H, W) or dW (FN, K) */
  tg_real *part;             /* conv_grad_w: (groups, K, FN), dWᵀ of each group */
  tg_real *scratch;          /* (threads, K·P + P·FN) */
  int64_t groups;            /* conv_grad_w: min(N, CONV_GROUPS) */
} conv_job;

/* Thread tid of nth: its share of the images (of the groups for dW). */
static void conv_run(const conv_job *j, int tid, int nth) {
  const conv_geom *g = &j->g;
  const int64_t chw = g->c * g->h * g->w, fnp = j->fn * j->p;
  tg_real *buf = j->scratch + tid * (j->k + j->fn) * j->p; /* (K, P) */
  if (j->kind != CONV_DW) {
    for (int64_t n = g->n * tid / nth; n < g->n * (tid + 1) / nth; n++) {
      if (j->kind == CONV_Y) {
        tg_real *restrict y = j->out + n * fnp;
        unfold_image(g, j->x + n * chw, buf); /* (K, P) */
        tg_gemm_run(&j->mm, j->w, buf, y);    /* (FN, K)·(K, P) */
        for (int64_t f = 0; j->bias && f < j->fn; f++)
          for (int64_t i = 0; i < j->p; i++)
            y[f * j->p + i] += j->bias[f]; /* while y_n is in cache */
      } else {
        tg_gemm_run(&j->mm, j->w, j->dy + n * fnp, buf); /* (FN, K)ᵀ·(FN, P) */
        fold_image(g, buf, j->out + n * chw);
      }
    }
    return;
  }
  tg_real *restrict dyt = buf + j->k * j->p; /* (P, FN) */
  const int64_t P = j->p, FN = j->fn;
  for (int64_t q = j->groups * tid / nth; q < j->groups * (tid + 1) / nth; q++) {
    tg_real *dwt = j->part + q * j->k * FN; /* (K, FN) */
    for (int64_t n = g->n * q / j->groups; n < g->n * (q + 1) / j->groups; n++) {
      const tg_real *dy = j->dy + n * fnp; /* (FN, P) */
      /* dyt = dyᵀ by libxsmm's transpose kernels (in its column-major
       * terms a P × FN matrix): a plain loop wrote one element at a time
       * with a stride and took a tenth of SimpleConvNet's step. */
      libxsmm_otrans(dyt, dy, sizeof(tg_real), (libxsmm_blasint)P, (libxsmm_blasint)FN,
                     (libxsmm_blasint)P, (libxsmm_blasint)FN);
      unfold_image(g, j->x + n * chw, buf);
      tg_gemm_run(n == g->n * q / j->groups ? &j->mm : &j->mm_acc, buf, dyt, dwt);
    }
  }
}

/* Plans and runs a job on the threads (when the products are worth it),
 * scratch from the arena. Returns 0 after failing the tape. */
static int conv_exec(tg_tape *tape, const tg_op *op, conv_job *j) {
  if (tg_winograd_fits(j->g.fh, j->g.fw, j->g.stride, j->g.pad, j->g.c, j->fn))
    return tg_winograd_conv(tape, op,
                            j->kind == CONV_Y    ? TG_WG_Y
                            : j->kind == CONV_DX ? TG_WG_DX
                                                 : TG_WG_DW,
                            (const int64_t[]){j->g.n, j->g.c, j->g.h, j->g.w}, j->fn, j->g.pad,
                            j->x, j->w, j->dy, j->bias, j->out);
  const double flops = 2.0 * (double)j->g.n * (double)j->fn * (double)j->k * (double)j->p;
  const int nth = omp_in_parallel() || flops < 5e6 ? 1 : omp_get_max_threads();
  const int ok = j->kind == CONV_Y    ? tg_gemm_plan(&j->mm, 0, j->fn, j->p, j->k, 0)
                 : j->kind == CONV_DX ? tg_gemm_plan(&j->mm, 1, j->k, j->p, j->fn, 0)
                                      : tg_gemm_plan(&j->mm, 0, j->k, j->fn, j->p, 0) &&
                                            tg_gemm_plan(&j->mm_acc, 0, j->k, j->fn, j->p, 1);
  if (!ok) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "a product dimension exceeds 2^31-1");
    return 0;
  }
  tg_tensor *s = tg_empty(tape, (int64_t[]){nth, (j->k + j->fn) * j->p}, 2);
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
  if (nth > 1) {
#pragma omp parallel num_threads(nth)
    conv_run(j, omp_get_thread_num(), omp_get_num_threads());
  } else {
    conv_run(j, 0, 1);
  }
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

/* attr: conv stride, pad; conv_grad_x N, C, H, W, stride, pad;
 * conv_grad_w fh, fw, stride, pad. conv's optional bias is input 2. */
static void conv_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static void conv_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx);
static const tg_op op_conv = {"conv", 3, 0, conv_backward};
static const tg_op op_conv_grad_x = {"conv_grad_x", 2, 0, conv_grad_x_backward};
static const tg_op op_conv_grad_w = {"conv_grad_w", 2, 0, conv_grad_w_backward};

/* y = conv(x, W) + b: dx = conv_grad_x(dy, W), dW = conv_grad_w(x, dy),
 * db = Σ dy over (N, OH, OW) */
static void conv_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0], *w = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv_grad_x(tape, gy, w, x->shape, n->attr[0], n->attr[1]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv_grad_w(tape, x, gy, w->shape[2], w->shape[3], n->attr[0], n->attr[1]);
  if (tg_op_needs_grad(n, 2))
    gx[2] = tg_sum(tape, gy, (const int[]){0, 2, 3}, 3, 0);
}

/* dx = conv_grad_x(dy, W), linear in each: ⟨G, dx⟩ = ⟨conv(G, W), dy⟩,
 * so d(dy) = conv(G, W) and dW = conv_grad_w(G, dy). */
static void conv_grad_x_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *dy = n->in[0], *w = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv(tape, gy, w, NULL, n->attr[4], n->attr[5]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv_grad_w(tape, gy, dy, w->shape[2], w->shape[3], n->attr[4], n->attr[5]);
}

/* dW = conv_grad_w(x, dy): ⟨H, dW⟩ = ⟨conv(x, H), dy⟩, so
 * dx = conv_grad_x(dy, H) and d(dy) = conv(x, H). */
static void conv_grad_w_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *x = n->in[0], *dy = n->in[1];
  if (tg_op_needs_grad(n, 0))
    gx[0] = tg_conv_grad_x(tape, dy, gy, x->shape, n->attr[2], n->attr[3]);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tg_conv(tape, x, gy, NULL, n->attr[2], n->attr[3]);
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

tg_tensor *tg_conv(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                   int64_t pad) {
  tg_tensor *in[3] = {x, W, b};
  const int nin = b ? 3 : 2;
  if (!tg_op_begin(tape, &op_conv, nin, in))
    return NULL;
  char what[400];
  snprintf(what, sizeof what, "x %s, W %s%s%s", TG_SHAPE(x), TG_SHAPE(W), b ? ", b " : "",
           b ? TG_SHAPE(b) : "");
  if (x->ndim != 4 || W->ndim != 4 || W->shape[1] != x->shape[1])
    return tg_op_fail(tape, &op_conv, TG_ERR_SHAPE,
                      "%s: need x (N, C, H, W) and W (FN, C, FH, FW) with the same C", what);
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[0]))
    return tg_op_fail(tape, &op_conv, TG_ERR_SHAPE, "%s: b must be (%lld,), one per filter", what,
                      (long long)W->shape[0]);
  conv_job j = {.kind = CONV_Y, .x = x->data, .w = W->data, .bias = b ? b->data : NULL};
  if (!geom_check(tape, &op_conv, what, x->shape, W->shape[2], W->shape[3], stride, pad, &j.g))
    return NULL;
  j.fn = W->shape[0], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *y = tg_empty(tape, (int64_t[]){j.g.n, j.fn, j.g.oh, j.g.ow}, 4);
  if (!y)
    return NULL;
  j.out = y->data;
  if (!conv_exec(tape, &op_conv, &j))
    return NULL;
  return tg_op_record(tape, &op_conv, y, nin, in, (const int64_t[]){stride, pad}, 2);
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
  if (!geom_check(tape, &op_conv_grad_x, what, xshape, W->shape[2], W->shape[3], stride, pad,
                  &j.g) ||
      !conv_dy_check(tape, &op_conv_grad_x, what, dy, &j.g, W->shape[0]))
    return NULL;
  j.fn = W->shape[0], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *dx = tg_empty(tape, xshape, 4); /* (N, C, H, W) */
  if (!dx)
    return NULL;
  j.out = dx->data;
  if (!conv_exec(tape, &op_conv_grad_x, &j))
    return NULL;
  const int64_t attr[6] = {xshape[0], xshape[1], xshape[2], xshape[3], stride, pad};
  return tg_op_record(tape, &op_conv_grad_x, dx, 2, in, attr, 6);
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
  if (!geom_check(tape, &op_conv_grad_w, what, x->shape, fh, fw, stride, pad, &j.g) ||
      !conv_dy_check(tape, &op_conv_grad_w, what, dy, &j.g, -1))
    return NULL;
  j.fn = dy->shape[1], j.k = j.g.cols, j.p = j.g.oh * j.g.ow;
  tg_tensor *dw = tg_empty(tape, (int64_t[]){j.fn, x->shape[1], fh, fw}, 4); /* (FN, C, FH, FW) */
  if (!dw)
    return NULL;
  j.out = dw->data;
  if (!conv_exec(tape, &op_conv_grad_w, &j))
    return NULL;
  return tg_op_record(tape, &op_conv_grad_w, dw, 2, in, (const int64_t[]){fh, fw, stride, pad}, 4);
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
