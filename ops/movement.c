/* movement.c — ops that move elements without arithmetic: reshape (a
 * view), permute and transpose, broadcast_to, slice and its adjoint pad,
 * flip, and detach.
 *
 * Kernels first simplify the index map (size-1 axes dropped, axes that
 * stay neighbours merged), so the common layouts reduce to a few
 * contiguous runs: memcpy for runs, a tiled 2-D transpose for permutations
 * that change the innermost axis (NCHW <-> NHWC is a batched transpose).
 * Backward rules are the adjoint movements (reshape back, inverse permute,
 * sum_to, pad <-> slice, flip itself), written with ops. Nothing here computes on
 * values, allocates from the system, or records detach.
 *
 * Threads: every loop below is over independent runs or tiles, handed to
 * tg_parallel_for, so which thread copies what never changes the result.
 */
#include <string.h>

#include "op.h"
#include "ops.h"
#include "ops_internal.h"

/* The transpose kernel walks TILE x TILE tiles made of BLOCK x BLOCK
 * blocks. Blocks of a compile-time size are unrolled into register
 * shuffles by the compiler: several times faster than one loop nest over
 * 16- or 32-wide tiles (benchmarks/README.md). */
#define TILE  32
#define BLOCK 8

/* nrun runs, run o (row-major over size[0..nd-1]) going from x + x0 +
 * offset_of(o, .., xstr) to y + y0 + offset_of(o, .., ystr); a NULL
 * stride set means runs packed one after another. A run reads L
 * consecutive elements of x and writes each R times in a row, L·R
 * elements of y: R = 1 copies, L = 1 fills. */
typedef struct runs {
  const tg_real *x;
  tg_real *y;
  int nd;
  const int64_t *size, *xstr, *ystr;
  int64_t L, R;
} runs;

/* Runs lo .. hi-1. The offsets of run lo are computed once; after that an
 * odometer over size[] steps them, so a short run costs no divisions.
 * (nd 0 is a single run: every caller's runs then span the tensor.) */
static void runs_chunk(void *arg, int64_t lo, int64_t hi) {
  const runs *r = arg;
  const int64_t L = r->L, R = r->R;
  const int nd = r->nd;
  int64_t idx[TG_MAX_DIMS], xst[TG_MAX_DIMS], yst[TG_MAX_DIMS];
  int64_t xo = 0, yo = 0;
  for (int d = nd - 1; d >= 0; d--) { /* a NULL stride set: runs packed */
    xst[d] = r->xstr ? r->xstr[d] : (d == nd - 1 ? L : xst[d + 1] * r->size[d + 1]);
    yst[d] = r->ystr ? r->ystr[d] : (d == nd - 1 ? L * R : yst[d + 1] * r->size[d + 1]);
  }
  int64_t o = lo;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = o % r->size[d];
    o /= r->size[d];
    xo += idx[d] * xst[d];
    yo += idx[d] * yst[d];
  }
  for (o = lo; o < hi; o++) {
    const tg_real *xs = r->x + xo;
    tg_real *ys = r->y + yo;
    if (R == 1) {
      memcpy(ys, xs, (size_t)L * sizeof *ys);
    } else {
      for (int64_t j = 0; j < L; j++, ys += R) {
        const tg_real v = xs[j];
        for (int64_t i = 0; i < R; i++)
          ys[i] = v;
      }
    }
    for (int d = nd - 1; d >= 0; d--) {
      xo += xst[d];
      yo += yst[d];
      if (++idx[d] < r->size[d])
        break;
      xo -= xst[d] * r->size[d];
      yo -= yst[d] * r->size[d];
      idx[d] = 0;
    }
  }
}

static void copy_runs(const runs *r, int64_t nrun) {
  tg_parallel_for(nrun, tg_grain_of(r->L * r->R), nrun * r->L * r->R, runs_chunk, (void *)r);
}

/* ------------------------------------------------------------------------
 * reshape: a view; dx = reshape(dy, x.shape) */
static void reshape_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_reshape(tape, gy, n->in[0]->shape, n->in[0]->ndim);
}
static const tg_op op_reshape = {"reshape", 1, 0, reshape_backward};

tg_tensor *tg_reshape(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim) {
  if (!tg_op_begin(tape, &op_reshape, 1, &x))
    return NULL;
  if (ndim < 0 || ndim > TG_MAX_DIMS)
    return tg_op_fail(tape, &op_reshape, TG_ERR_SHAPE,
                      "cannot reshape %s to %d dimensions (0 to %d are supported)", TG_SHAPE(x),
                      ndim, TG_MAX_DIMS);
  if (ndim > 0 && !shape)
    return tg_op_fail(tape, &op_reshape, TG_ERR_NULL, "target shape of %s is NULL", TG_SHAPE(x));
  char sb[160];
  tg_shape_str(shape, ndim, sb, sizeof sb);
  int64_t s[TG_MAX_DIMS], known = 1; /* s: the target with -1 inferred */
  int infer = -1, fits = 1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (shape[i] == -1 && infer < 0) {
      infer = i;
    } else if (shape[i] == -1) {
      return tg_op_fail(tape, &op_reshape, TG_ERR_SHAPE,
                        "cannot reshape %s to %s: more than one dimension is -1", TG_SHAPE(x), sb);
    } else if (shape[i] < 1) {
      return tg_op_fail(tape, &op_reshape, TG_ERR_SHAPE,
                        "cannot reshape %s to %s: dimension %d is %lld", TG_SHAPE(x), sb, i,
                        (long long)shape[i]);
    } else if (fits && shape[i] <= x->numel / known) {
      known *= shape[i];
    } else {
      fits = 0; /* more elements than x has: the product would only overflow */
    }
  }
  if (fits && infer >= 0 && x->numel % known == 0)
    s[infer] = x->numel / known;
  else if (infer >= 0)
    fits = 0;
  if (!fits || (infer < 0 && known != x->numel))
    return tg_op_fail(tape, &op_reshape, TG_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s",
                      TG_SHAPE(x), (long long)x->numel, sb);
  tg_tensor *y = tg_view(tape, x, s, ndim); /* y: s, x's data */
  return tg_op_record(tape, &op_reshape, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * permute: copies; dx = permute(dy, inverse of perm) */

/* One tile of a transpose: y[ia + ib*sb] = x[ia*sa + ib] for ia < na,
 * ib < nb (both <= TILE). Its own function so that restrict survives
 * OpenMP's outlining of the caller's loop body. */
static void transpose_tile(const tg_real *restrict x, tg_real *restrict y, int64_t na, int64_t nb,
                           int64_t sa, int64_t sb) {
  for (int64_t a0 = 0; a0 < na; a0 += BLOCK)
    for (int64_t b0 = 0; b0 < nb; b0 += BLOCK) {
      const tg_real *restrict xb = x + a0 * sa + b0;
      tg_real *restrict yb = y + a0 + b0 * sb;
      if (a0 + BLOCK <= na && b0 + BLOCK <= nb) {
        for (int ib = 0; ib < BLOCK; ib++)
          for (int ia = 0; ia < BLOCK; ia++)
            yb[ia + ib * sb] = xb[ia * sa + ib];
      } else { /* an edge block */
        int64_t ea = min64(BLOCK, na - a0), eb = min64(BLOCK, nb - b0);
        for (int64_t ib = 0; ib < eb; ib++)
          for (int64_t ia = 0; ia < ea; ia++)
            yb[ia + ib * sb] = xb[ia * sa + ib];
      }
    }
}

/* A batched transpose: tile task t of ntask = (other axes) x ta x tb. */
typedef struct tiles {
  const tg_real *x;
  tg_real *y;
  int no;                             /* other axes */
  const int64_t *osz, *oistr, *oostr; /* (no,) their sizes, x and y strides */
  int64_t na, nb, sa, sb, ta, tb;     /* transposed axes, strides, tile counts */
} tiles;

static void tiles_chunk(void *arg, int64_t t0, int64_t t1) {
  const tiles *p = arg;
  for (int64_t t = t0; t < t1; t++) {
    int64_t o = t / (p->ta * p->tb), ia0 = (t / p->tb) % p->ta * TILE, ib0 = t % p->tb * TILE;
    int64_t ia1 = min64(p->na, ia0 + TILE), ib1 = min64(p->nb, ib0 + TILE);
    transpose_tile(p->x + offset_of(o, p->no, p->osz, p->oistr) + ia0 * p->sa + ib0,
                   p->y + offset_of(o, p->no, p->osz, p->oostr) + ia0 + ib0 * p->sb, ia1 - ia0,
                   ib1 - ib0, p->sa, p->sb);
  }
}

/* y = x permuted. x: shape (nd dims), y: shape[perm[i]] for i < nd. */
static void permute_kernel(const tg_real *restrict x, const int64_t *shape, int nd, const int *perm,
                           tg_real *restrict y, int64_t numel) {
  /* Drop size-1 axes; rank[d] numbers the remaining axes in input order. */
  int rank[TG_MAX_DIMS], nk = 0;
  for (int d = 0; d < nd; d++)
    rank[d] = shape[d] > 1 ? nk++ : -1;
  /* Input axes in output order, merged where they stay neighbours: each
   * group is a run first..last of ranks. */
  int gfirst[TG_MAX_DIMS], glast[TG_MAX_DIMS], ng = 0;
  for (int i = 0; i < nd; i++) {
    int r = rank[perm[i]];
    if (r < 0)
      continue;
    if (ng > 0 && glast[ng - 1] + 1 == r) {
      glast[ng - 1] = r;
    } else {
      gfirst[ng] = glast[ng] = r;
      ng++;
    }
  }
  if (ng <= 1) { /* the identity on memory */
    memcpy(y, x, (size_t)numel * sizeof *y);
    return;
  }
  int64_t rsize[TG_MAX_DIMS]; /* size of each rank */
  for (int d = 0; d < nd; d++)
    if (rank[d] >= 0)
      rsize[rank[d]] = shape[d];
  /* Canonical input axes: the groups in input order (by first rank). */
  int gin[TG_MAX_DIMS]; /* gin[g]: canonical input axis of group g */
  int64_t size[TG_MAX_DIMS], istr[TG_MAX_DIMS], ostr[TG_MAX_DIMS];
  for (int g = 0; g < ng; g++) {
    gin[g] = 0;
    for (int h = 0; h < ng; h++)
      gin[g] += gfirst[h] < gfirst[g];
    size[gin[g]] = 1;
    for (int r = gfirst[g]; r <= glast[g]; r++)
      size[gin[g]] *= rsize[r];
  }
  tg_strides(size, ng, istr);
  int64_t s = 1; /* output strides, per canonical input axis */
  for (int g = ng - 1; g >= 0; g--) {
    ostr[gin[g]] = s;
    s *= size[gin[g]];
  }
  int m = ng, a = gin[ng - 1]; /* a: the input axis innermost in y */

  if (a == m - 1) {
    /* x's innermost axis stays innermost: copy runs of L. */
    int64_t L = size[m - 1];
    copy_runs(&(runs){x, y, m - 1, size, NULL, ostr, L, 1}, numel / L);
    return;
  }

  /* Tiled transpose of axes a (contiguous in y) and b = m-1 (contiguous in
   * x), for every combination of the other axes. */
  int b = m - 1, no = 0;
  int64_t osz[TG_MAX_DIMS], oistr[TG_MAX_DIMS], oostr[TG_MAX_DIMS]; /* the other axes */
  for (int d = 0; d < m; d++)
    if (d != a && d != b) {
      osz[no] = size[d];
      oistr[no] = istr[d];
      oostr[no++] = ostr[d];
    }
  int64_t na = size[a], nb = size[b], sa = istr[a], sb = ostr[b];
  int64_t ta = (na + TILE - 1) / TILE, tb = (nb + TILE - 1) / TILE;
  int64_t nother = numel / (na * nb), ntask = nother * ta * tb;
  const tiles tl = {x, y, no, osz, oistr, oostr, na, nb, sa, sb, ta, tb};
  tg_parallel_for(ntask, tg_grain_of(TILE * TILE), numel, tiles_chunk, (void *)&tl);
}

/* permute's attributes: the permutation, one slot per axis. */
enum { PERMUTE_PERM = 0, PERMUTE_NATTR = TG_MAX_DIMS };

static void permute_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  int inv[TG_MAX_DIMS];
  for (int i = 0; i < n->in[0]->ndim; i++)
    inv[n->attr[PERMUTE_PERM + i]] = i;
  gx[0] = tg_permute(tape, gy, inv);
}
static const tg_op op_permute = {"permute", 1, 0, permute_backward};

tg_tensor *tg_permute(tg_tape *tape, tg_tensor *x, const int *perm) {
  if (!tg_op_begin(tape, &op_permute, 1, &x))
    return NULL;
  int nd = x->ndim;
  if (nd > 0 && !perm)
    return tg_op_fail(tape, &op_permute, TG_ERR_NULL, "perm is NULL for shape %s", TG_SHAPE(x));
  unsigned seen = 0;
  int ok = 1;
  for (int i = 0; i < nd; i++) {
    ok = ok && perm[i] >= 0 && perm[i] < nd && !(seen & (1u << perm[i]));
    if (ok)
      seen |= 1u << perm[i];
  }
  if (!ok) {
    char pb[96];
    size_t k = (size_t)snprintf(pb, sizeof pb, "[");
    for (int i = 0; i < nd && k < sizeof pb; i++)
      k += (size_t)snprintf(pb + k, sizeof pb - k, i ? ", %d" : "%d", perm[i]);
    if (k < sizeof pb)
      snprintf(pb + k, sizeof pb - k, "]");
    return tg_op_fail(tape, &op_permute, TG_ERR_SHAPE,
                      "perm %s is not a permutation of 0..%d for shape %s", pb, nd - 1,
                      TG_SHAPE(x));
  }
  int64_t ys[TG_MAX_DIMS], attr[PERMUTE_NATTR];
  for (int i = 0; i < nd; i++) {
    ys[i] = x->shape[perm[i]];
    attr[PERMUTE_PERM + i] = perm[i];
  }
  tg_tensor *y = tg_empty(tape, ys, nd); /* y: x.shape[perm[i]] */
  if (!y)
    return NULL;
  permute_kernel(x->data, x->shape, nd, perm, y->data, x->numel);
  return tg_op_record(tape, &op_permute, y, 1, &x, attr, nd);
}

/* transpose: a permute swapping the last two axes (recorded as permute). */
static const tg_op op_transpose = {"transpose", 1, TG_COMPOSITE, NULL};

tg_tensor *tg_transpose(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_transpose, 1, &x))
    return NULL;
  if (x->ndim < 2)
    return tg_op_fail(tape, &op_transpose, TG_ERR_SHAPE,
                      "needs at least 2 dimensions, got shape %s", TG_SHAPE(x));
  int perm[TG_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    perm[i] = i;
  perm[x->ndim - 2] = x->ndim - 1;
  perm[x->ndim - 1] = x->ndim - 2;
  return tg_permute(tape, x, perm);
}

/* ------------------------------------------------------------------------
 * broadcast_to: dx = sum_to(dy, x.shape) */
static void broadcast_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_sum_to(tape, gy, n->in[0]->shape, n->in[0]->ndim);
}
static const tg_op op_broadcast_to = {"broadcast_to", 1, 0, broadcast_backward};

/* y (shape, nd dims) from x (xshape: shape with x's leading axes padded by
 * 1s): y's axes become blocks that either copy x (a run of x) or repeat
 * one element of it; the innermost block is a memcpy or a fill. A fill of
 * fewer than 16 elements (a 2x2 average pooling's gradient stretched back:
 * fills of 2) joins the copy before it, whose x elements are consecutive:
 * each run then writes a whole row, not two elements. */
static void broadcast_kernel(const tg_real *restrict x, const int64_t *xshape, const int64_t *shape,
                             int nd, tg_real *restrict y, int64_t numel) {
  int64_t xst[TG_MAX_DIMS], bsize[TG_MAX_DIMS], bstr[TG_MAX_DIMS];
  int brep[TG_MAX_DIMS], nb = 0;
  tg_strides(xshape, nd, xst);
  for (int d = 0; d < nd; d++) {
    if (shape[d] == 1)
      continue;
    int rep = xshape[d] == 1;
    if (nb > 0 && brep[nb - 1] == rep) {
      bsize[nb - 1] *= shape[d];
      bstr[nb - 1] = rep ? 0 : xst[d];
    } else {
      bsize[nb] = shape[d];
      bstr[nb] = rep ? 0 : xst[d];
      brep[nb++] = rep;
    }
  }
  if (nb == 0) {
    y[0] = x[0];
    return;
  }
  int64_t L = bsize[nb - 1];
  if (!brep[nb - 1])
    copy_runs(&(runs){x, y, nb - 1, bsize, bstr, NULL, L, 1}, numel / L);
  else if (L >= 16 || nb == 1)
    copy_runs(&(runs){x, y, nb - 1, bsize, bstr, NULL, 1, L}, numel / L);
  else /* block nb - 2 copies x with stride 1: x's later axes are all 1 */
    copy_runs(&(runs){x, y, nb - 2, bsize, bstr, NULL, bsize[nb - 2], L},
              numel / (L * bsize[nb - 2]));
}

tg_tensor *tg_broadcast_to(tg_tape *tape, tg_tensor *x, const int64_t *shape, int ndim) {
  if (!tg_op_begin(tape, &op_broadcast_to, 1, &x))
    return NULL;
  if (ndim < 0 || ndim > TG_MAX_DIMS)
    return tg_op_fail(tape, &op_broadcast_to, TG_ERR_SHAPE,
                      "cannot broadcast %s to %d dimensions (0 to %d are supported)", TG_SHAPE(x),
                      ndim, TG_MAX_DIMS);
  if (ndim > 0 && !shape)
    return tg_op_fail(tape, &op_broadcast_to, TG_ERR_NULL, "target shape of %s is NULL",
                      TG_SHAPE(x));
  int lead = ndim - x->ndim, ok = lead >= 0, same = lead == 0;
  int64_t xs[TG_MAX_DIMS]; /* x's shape padded with leading 1s to ndim */
  for (int d = 0; ok && d < ndim; d++) {
    xs[d] = d < lead ? 1 : x->shape[d - lead];
    ok = shape[d] >= 1 && (xs[d] == shape[d] || xs[d] == 1);
    same = same && xs[d] == shape[d];
  }
  if (!ok) {
    char sb[160];
    return tg_op_fail(tape, &op_broadcast_to, TG_ERR_SHAPE, "cannot broadcast %s to %s",
                      TG_SHAPE(x), tg_shape_str(shape, ndim, sb, sizeof sb));
  }
  if (same)
    return x; /* nothing to stretch: x itself, nothing recorded */
  /* Checked here, not left to tg_empty: its message would name "empty". */
  if (tg_shape_check(shape, ndim, NULL, "target", NULL) != TG_OK) {
    char sb[160];
    return tg_op_fail(tape, &op_broadcast_to, TG_ERR_SHAPE,
                      "cannot broadcast %s to %s: too many elements", TG_SHAPE(x),
                      tg_shape_str(shape, ndim, sb, sizeof sb));
  }
  tg_tensor *y = tg_empty(tape, shape, ndim); /* y: shape */
  if (!y)
    return NULL;
  broadcast_kernel(x->data, xs, shape, ndim, y->data, y->numel);
  return tg_op_record(tape, &op_broadcast_to, y, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------------
 * slice and pad: copies of a box between two tensors */

/* Copies the box (box[0..nd-1]) at start xo in x (xshape) to start yo in
 * y (yshape). Trailing axes that are whole in x, y and the box join the
 * innermost run. */
static void copy_box(const tg_real *restrict x, const int64_t *xshape, const int64_t *xo,
                     tg_real *restrict y, const int64_t *yshape, const int64_t *yo,
                     const int64_t *box, int nd) {
  int64_t xst[TG_MAX_DIMS], yst[TG_MAX_DIMS];
  tg_strides(xshape, nd, xst);
  tg_strides(yshape, nd, yst);
  int k = nd - 1; /* the innermost axis where the box is not whole */
  while (k >= 0 && box[k] == xshape[k] && box[k] == yshape[k])
    k--;
  int64_t x0 = 0, y0 = 0, L = 1, nrun = 1;
  for (int d = 0; d < nd; d++) {
    x0 += xo[d] * xst[d];
    y0 += yo[d] * yst[d];
    if (d >= k)
      L *= box[d];
    else
      nrun *= box[d];
  }
  int nk = k > 0 ? k : 0;
  copy_runs(&(runs){x + x0, y + y0, nk, box, xst, yst, L, 1}, nrun);
}

/* Attributes, per axis: slice's start and stop; pad's padding before. */
enum { SLICE_START = 0, SLICE_STOP = TG_MAX_DIMS, SLICE_NATTR = 2 * TG_MAX_DIMS };
enum { PAD_BEFORE = 0, PAD_NATTR = TG_MAX_DIMS };

/* slice: dx = pad(dy, start, x.shape - stop) */
static void slice_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const tg_tensor *x = n->in[0];
  int64_t before[TG_MAX_DIMS], after[TG_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) {
    before[d] = n->attr[SLICE_START + d];
    after[d] = x->shape[d] - n->attr[SLICE_STOP + d];
  }
  gx[0] = tg_pad(tape, gy, before, after);
}
static const tg_op op_slice = {"slice", 1, 0, slice_backward};

tg_tensor *tg_slice(tg_tape *tape, tg_tensor *x, const int64_t *start, const int64_t *stop) {
  if (!tg_op_begin(tape, &op_slice, 1, &x))
    return NULL;
  int64_t attr[SLICE_NATTR] = {0}, ys[TG_MAX_DIMS], zero[TG_MAX_DIMS] = {0};
  for (int d = 0; d < x->ndim; d++) {
    int64_t n = x->shape[d];
    int64_t a = start ? start[d] : 0, b = stop ? stop[d] : n;
    int64_t a0 = a < 0 ? a + n : a, b0 = b < 0 ? b + n : b;
    if (!(0 <= a0 && a0 < b0 && b0 <= n))
      return tg_op_fail(tape, &op_slice, TG_ERR_SHAPE,
                        "axis %d: [%lld:%lld] is empty or out of range for shape %s", d,
                        (long long)a, (long long)b, TG_SHAPE(x));
    attr[SLICE_START + d] = a0;
    attr[SLICE_STOP + d] = b0;
    ys[d] = b0 - a0;
  }
  tg_tensor *y = tg_empty(tape, ys, x->ndim); /* y: stop - start per axis */
  if (!y)
    return NULL;
  copy_box(x->data, x->shape, attr + SLICE_START, y->data, ys, zero, ys, x->ndim);
  return tg_op_record(tape, &op_slice, y, 1, &x, attr, SLICE_NATTR);
}

/* pad: dx = slice(dy, before, before + x.shape) */
static void pad_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  const tg_tensor *x = n->in[0];
  int64_t start[TG_MAX_DIMS], stop[TG_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) {
    start[d] = n->attr[PAD_BEFORE + d];
    stop[d] = n->attr[PAD_BEFORE + d] + x->shape[d];
  }
  gx[0] = tg_slice(tape, gy, start, stop);
}
static const tg_op op_pad = {"pad", 1, 0, pad_backward};

tg_tensor *tg_pad(tg_tape *tape, tg_tensor *x, const int64_t *before, const int64_t *after) {
  if (!tg_op_begin(tape, &op_pad, 1, &x))
    return NULL;
  int64_t attr[PAD_NATTR] = {0}, ys[TG_MAX_DIMS], zero[TG_MAX_DIMS] = {0};
  for (int d = 0; d < x->ndim; d++) {
    int64_t a = before ? before[d] : 0, b = after ? after[d] : 0;
    if (a < 0 || b < 0)
      return tg_op_fail(tape, &op_pad, TG_ERR_SHAPE,
                        "negative padding (%lld before, %lld after) on axis %d of shape %s",
                        (long long)a, (long long)b, d, TG_SHAPE(x));
    if (a > INT64_MAX / 4 || b > INT64_MAX / 4)
      return tg_op_fail(tape, &op_pad, TG_ERR_SHAPE,
                        "padding (%lld before, %lld after) on axis %d of shape %s is too large",
                        (long long)a, (long long)b, d, TG_SHAPE(x));
    attr[PAD_BEFORE + d] = a;
    ys[d] = a + x->shape[d] + b;
  }
  tg_error err = {0};
  if (tg_shape_check(ys, x->ndim, NULL, "padded shape", &err) != TG_OK)
    return tg_op_fail(tape, &op_pad, err.status, "%s (from %s)", err.msg, TG_SHAPE(x));
  tg_tensor *y = tg_zeros(tape, ys, x->ndim); /* y: x.shape + before + after */
  if (!y)
    return NULL;
  copy_box(x->data, x->shape, zero, y->data, ys, attr + PAD_BEFORE, x->shape, x->ndim);
  return tg_op_record(tape, &op_pad, y, 1, &x, attr, PAD_NATTR);
}

/* ------------------------------------------------------------------------
 * flip: one axis in reverse order */

/* x seen as (outer, n, inner). With inner > 1, item r = o·n + i of
 * [0, outer·n) copies a run of inner elements to row n − 1 − i of the same
 * o; with inner = 1 (the last axis), item o reverses a row of n. */
typedef struct flip_ctx {
  const tg_real *x;
  tg_real *y;
  int64_t n, inner;
} flip_ctx;

static void flip_runs(void *arg, int64_t lo, int64_t hi) {
  const flip_ctx *c = arg;
  const int64_t n = c->n, L = c->inner;
  for (int64_t r = lo; r < hi; r++)
    memcpy(c->y + (r / n * n + (n - 1 - r % n)) * L, c->x + r * L, (size_t)L * sizeof *c->y);
}

static void flip_last(void *arg, int64_t lo, int64_t hi) {
  const flip_ctx *c = arg;
  const int64_t n = c->n;
  for (int64_t o = lo; o < hi; o++) {
    const tg_real *restrict x = c->x + o * n;
    tg_real *restrict y = c->y + o * n;
    for (int64_t j = 0; j < n; j++)
      y[j] = x[n - 1 - j];
  }
}

/* flip: dx = flip(dy) on the same axis */
static void flip_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  gx[0] = tg_flip(tape, gy, (int)n->attr[0]);
}
static const tg_op op_flip = {"flip", 1, 0, flip_backward};

tg_tensor *tg_flip(tg_tape *tape, tg_tensor *x, int axis) {
  if (!tg_op_begin(tape, &op_flip, 1, &x))
    return NULL;
  if (axis < -x->ndim || axis >= x->ndim)
    return tg_op_fail(tape, &op_flip, TG_ERR_SHAPE, "axis %d is out of range for x %s", axis,
                      TG_SHAPE(x));
  const int ax = axis < 0 ? axis + x->ndim : axis;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++)
    outer *= x->shape[d];
  for (int d = ax + 1; d < x->ndim; d++)
    inner *= x->shape[d];
  tg_tensor *y = tg_empty(tape, x->shape, x->ndim); /* y: x.shape */
  if (!y)
    return NULL;
  const int64_t n = x->shape[ax];
  flip_ctx c = {x->data, y->data, n, inner};
  if (inner > 1)
    tg_parallel_for(outer * n, tg_grain_of(inner), x->numel, flip_runs, &c);
  else
    tg_parallel_for(outer, tg_grain_of(n), x->numel, flip_last, &c);
  const int64_t attr[1] = {ax};
  return tg_op_record(tape, &op_flip, y, 1, &x, attr, 1);
}

/* ------------------------------------------------------------------------
 * detach: a view that is never recorded, so it is a leaf without gradient */
static const tg_op op_detach = {"detach", 1, 0, NULL};

tg_tensor *tg_detach(tg_tape *tape, tg_tensor *x) {
  if (!tg_op_begin(tape, &op_detach, 1, &x))
    return NULL;
  return tg_view(tape, x, x->shape, x->ndim);
}
