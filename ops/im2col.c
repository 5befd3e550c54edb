/* im2col.c — image patches: im2col and its adjoint col2im, the primitive
 * ops pooling is built from (nn/conv.c composes them with max and mean)
 * and the convolution's definition (ops/conv.c: tg_conv_composite), plus
 * the geometry checks both files share (im2col.h).
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
 * thread count (the tasks go to tg_parallel_for).
 *
 * Each backward rule is the other op, so gradients of gradients work.
 * Nothing here may allocate from the system (scratch comes from the
 * arena) or record anything but these ops.
 */
#include <string.h>

#include "im2col.h"
#include "op.h"
#include "ops.h"
#include "ops_internal.h"

/* The positions ow in [*a, *b) whose window lies wholly inside x's width
 * (ow·stride − pad >= 0 and ow·stride − pad + FW <= W): the interior,
 * where the kernels run without clipping. */
static void interior(const conv_geom *g, int64_t *a, int64_t *b) {
  *a = min64((g->pad + g->stride - 1) / g->stride, g->ow);
  int64_t last = g->w - g->fw + g->pad; /* the largest ow·stride allowed */
  *b = last < 0 ? *a : max64(*a, min64(g->ow, last / g->stride + 1));
}

int tg_conv_geom(tg_tape *tape, const tg_op *op, const char *what, const int64_t *xs, int64_t fh,
                 int64_t fw, int64_t stride, int64_t pad, conv_geom *g) {
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
 * cost (several times slower). */
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
 * The ops; attr: the patch slots (im2col.h). */

/* im2col: dx = col2im(dy) */
static void im2col_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const int64_t *a = n->attr;
  gx[0] = tg_col2im(tape, gy, a + PATCH_N, a[PATCH_FH], a[PATCH_FW], a[PATCH_STRIDE], a[PATCH_PAD]);
}
static const tg_op op_im2col = {"im2col", 1, 0, im2col_backward};

/* col2im: dcol = im2col(dx) */
static void col2im_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const int64_t *a = n->attr;
  gx[0] = tg_im2col(tape, gy, a[PATCH_FH], a[PATCH_FW], a[PATCH_STRIDE], a[PATCH_PAD]);
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
  if (!tg_conv_geom(tape, &op_im2col, what, x->shape, fh, fw, stride, pad, &g))
    return NULL;
  tg_tensor *col = tg_empty(tape, (int64_t[]){g.rows, g.cols}, 2); /* (N·OH·OW, C·FH·FW) */
  if (!col)
    return NULL;
  tg_parallel_for(g.n * g.oh, tg_grain_of(g.ow * g.cols), g.rows * g.cols, im2col_tasks,
                  &(patch_ctx){&g, x->data, col->data});
  int64_t a[PATCH_NATTR];
  return tg_op_record(tape, &op_im2col, col, 1, &x, tg_patch_attrs(&g, a), PATCH_NATTR);
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
  if (!tg_conv_geom(tape, &op_col2im, what, xshape, fh, fw, stride, pad, &g))
    return NULL;
  if (col->shape[0] != g.rows || col->shape[1] != g.cols)
    return tg_op_fail(tape, &op_col2im, TG_ERR_SHAPE,
                      "%s, filter %lldx%lld, stride %lld, pad %lld: col must be (%lld, %lld)", what,
                      (long long)fh, (long long)fw, (long long)stride, (long long)pad,
                      (long long)g.rows, (long long)g.cols);
  tg_tensor *x = tg_empty(tape, xshape, 4); /* (N, C, H, W); each task zeroes its planes */
  if (!x)
    return NULL;
  tg_parallel_for(g.n * g.c, tg_grain_of(g.rows * g.cols / (g.n * g.c)), g.rows * g.cols,
                  col2im_tasks, &(patch_ctx){&g, x->data, col->data});
  int64_t a[PATCH_NATTR];
  return tg_op_record(tape, &op_col2im, x, 1, &col, tg_patch_attrs(&g, a), PATCH_NATTR);
}
