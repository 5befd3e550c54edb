/* reduce_small.h — reduce.c's kernels for small groups (pooling windows,
 * short last axes). Part of reduce.c, kept apart for size: included by it
 * alone, after its plan (plan, offset_of, better, min64, RED_SUM/RED_MAX),
 * and nowhere else. Like reduce.c it must not allocate, record anything
 * or let the thread count change the arithmetic.
 */
#ifndef TG_REDUCE_SMALL_H
#define TG_REDUCE_SMALL_H

/* ------------------------------------------------------------------------
 * Small groups: every output reduces at most SMALL_G elements (pooling's
 * windows, the last axis of length 2-16), at most two kept blocks. The
 * general path pays a chunk call, a division and a vectorised run per
 * group, several times the work of the group itself (a SimpleConvNet step
 * spent 62% of its time there). Here the group's element offsets (goff)
 * are fixed once by the plan and the kernels run across outputs, a tile
 * of TK at a time (see tile_run). Sums still accumulate in double, in
 * row-major order; max keeps the first maximum with the same rule
 * (better()). Tiles are independent and fixed by the shape, so threads
 * do not change the arithmetic. The same walk writes max's gradient
 * (RED_SCATTER): each group, which no other group overlaps, gets dy at its
 * first maximum and 0 elsewhere, so gx needs no zeroing pass. Offsets in
 * a tile fit int32: a tile spans at most TK outputs of at most SMALL_G
 * elements' extent each. */
#define SMALL_G 64
#define TK      64 /* outputs per tile */

enum { RED_SCATTER = 2 };

typedef struct small_ctx {
  const tg_real *x; /* the input */
  const plan *p;
  int mode;
  double div;
  tg_real *y;           /* (nout,) or NULL */
  int64_t *yarg;        /* (nout,) or NULL */
  const tg_real *dy;    /* RED_SCATTER: (nout,) */
  tg_real *gx;          /* RED_SCATTER: x's shape */
  int64_t g;            /* group size q·L */
  int64_t k1, ks0, ks1; /* innermost kept size; kept strides (outer, innermost) */
  int64_t goff[SMALL_G];
  int64_t tpr, rows_per_tile; /* set by small_run: see small_tiles */
  int32_t off[TK];            /* output offsets in a tile of whole rows */
} small_ctx;

static int small_ok(const plan *p) {
  return p->inner_reduced && p->q * p->inner <= SMALL_G && p->nk <= 2;
}

static void small_init(small_ctx *c, const plan *p) {
  c->p = p;
  c->g = p->q * p->inner;
  for (int64_t r = 0; r < p->q; r++)
    for (int64_t l = 0; l < p->inner; l++)
      c->goff[r * p->inner + l] = offset_of(r, p->nr, p->rsize, p->rstride) + l;
  /* Tiles run along the innermost kept block (the only one when nk == 1). */
  c->k1 = p->nk >= 1 ? p->ksize[p->nk - 1] : 1;
  c->ks1 = p->nk >= 1 ? p->kstride[p->nk - 1] : 0;
  c->ks0 = p->nk == 2 ? p->kstride[0] : 0;
}

/* The kernels go across outputs, TK neighbours at a time: for each
 * element e of the groups, one vector step over the outputs (stride ks1
 * in x), so a 2x2 window costs four compare-and-select steps per TK
 * outputs instead of a scalar search per output. Each output still sees
 * its elements in row-major order: sums add in the same order as a plain
 * loop, and max keeps the first maximum (a later element must be strictly
 * greater). A tile holding a NaN is searched again with better(). */

typedef struct tile {
  const small_ctx *c;
  int64_t j;          /* first output */
  int64_t b;          /* its kept offset in x */
  int64_t n;          /* outputs (<= TK) */
  int64_t ks1;        /* x stride between them, or 0 with off */
  const int32_t *off; /* NULL, or output i at b + off[i] (tiles across rows) */
} tile;

/* Clones for AVX2 and the baseline: the build targets plain x86-64. */
#define KERNEL __attribute__((target_clones("avx2", "default")))
/* Output i's offset from the tile's first: strided, or from off[]
 * (ks1 == 0 only then, so one body serves both). */
#define OFF(i) (ks1 ? (i)*ks1 : (int64_t)off[i])

static inline __attribute__((always_inline)) void tile_sum_body(const tile *t, const int64_t ks1) {
  const small_ctx *c = t->c;
  const tg_real *restrict x = c->x + t->b;
  const int32_t *restrict off = t->off;
  const int64_t n = t->n, G = c->g;
  double s[TK];
  for (int64_t i = 0; i < n; i++)
    s[i] = 0;
  for (int64_t e = 0; e < G; e++) {
    const tg_real *restrict xe = x + c->goff[e];
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
      s[i] += xe[OFF(i)];
  }
  tg_real *restrict y = c->y + t->j;
  const double div = c->div;
  for (int64_t i = 0; i < n; i++)
    y[i] = (tg_real)(div != 1 ? s[i] / div : s[i]);
}

/* Strides 1 and 2 (a last axis of outputs; 2-wide pooling windows) as
 * constants, so the loads are plain or one shuffle, not gathers. */
KERNEL static void tile_sum(const tile *t) {
  if (t->off)
    tile_sum_body(t, 0);
  else if (t->ks1 == 1)
    tile_sum_body(t, 1);
  else if (t->ks1 == 2)
    tile_sum_body(t, 2);
  else
    tile_sum_body(t, t->ks1);
}

/* Index e (into goff) of each output's first maximum in a[], value in m[]. */
static inline __attribute__((always_inline)) void
tile_argmax_body(const tile *t, tg_real *restrict m, int32_t *restrict a, const int64_t ks1) {
  const small_ctx *c = t->c;
  const tg_real *restrict x = c->x + t->b;
  const int32_t *restrict off = t->off;
  const int64_t n = t->n, G = c->g;
  int nan = 0;
  const tg_real *restrict x0 = x + c->goff[0];
#pragma omp simd reduction(| : nan)
  for (int64_t i = 0; i < n; i++) {
    m[i] = x0[OFF(i)];
    a[i] = 0;
    nan |= m[i] != m[i];
  }
  for (int32_t e = 1; e < G; e++) {
    const tg_real *restrict xe = x + c->goff[e];
#pragma omp simd reduction(| : nan)
    for (int64_t i = 0; i < n; i++) {
      const tg_real v = xe[OFF(i)];
      const int gt = v > m[i];
      m[i] = gt ? v : m[i];
      a[i] = gt ? e : a[i];
      nan |= v != v;
    }
  }
  if (!nan)
    return;
  for (int64_t i = 0; i < n; i++) {
    m[i] = x0[OFF(i)], a[i] = 0;
    for (int32_t e = 1; e < G; e++)
      if (better(x[c->goff[e] + OFF(i)], m[i]))
        m[i] = x[c->goff[e] + OFF(i)], a[i] = e;
  }
}

KERNEL static void tile_argmax(const tile *t, tg_real *restrict m, int32_t *restrict a) {
  if (t->off)
    tile_argmax_body(t, m, a, 0);
  else if (t->ks1 == 1)
    tile_argmax_body(t, m, a, 1);
  else if (t->ks1 == 2)
    tile_argmax_body(t, m, a, 2);
  else
    tile_argmax_body(t, m, a, t->ks1);
}

/* RED_SCATTER: each group gets dy at its first maximum, 0 elsewhere. */
static inline __attribute__((always_inline)) void
tile_scatter_body(const tile *t, const int32_t *restrict a, const int64_t ks1) {
  const small_ctx *c = t->c;
  tg_real *restrict g = c->gx + t->b;
  const int32_t *restrict off = t->off;
  const tg_real *restrict dy = c->dy + t->j;
  const int64_t n = t->n, G = c->g;
  for (int32_t e = 0; e < G; e++) {
    tg_real *restrict ge = g + c->goff[e];
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
      ge[OFF(i)] = a[i] == e ? dy[i] : 0;
  }
}

KERNEL static void tile_scatter(const tile *t, const int32_t *restrict a) {
  if (t->off)
    tile_scatter_body(t, a, 0);
  else if (t->ks1 == 1)
    tile_scatter_body(t, a, 1);
  else if (t->ks1 == 2)
    tile_scatter_body(t, a, 2);
  else
    tile_scatter_body(t, a, t->ks1);
}

static void tile_run(const tile *t) {
  const small_ctx *c = t->c;
  if (c->mode == RED_SUM) {
    tile_sum(t);
    return;
  }
  tg_real m[TK];
  int32_t a[TK];
  tile_argmax(t, m, a);
  if (c->mode == RED_SCATTER) {
    tile_scatter(t, a);
    return;
  }
  for (int64_t i = 0; i < t->n; i++) {
    if (c->y)
      c->y[t->j + i] = m[i];
    if (c->yarg)
      c->yarg[t->j + i] = t->b + (t->off ? t->off[i] : i * t->ks1) + c->goff[a[i]];
  }
}

/* Tiles [t0, t1). Along the inner kept block with its stride when that
 * is long (tpr tiles per kept row); else R = TK / K1 whole rows per tile,
 * each output's offset listed once in goff-like off[] (pooling's rows of
 * OW windows are short), the same for every tile. */
static void small_tiles(void *arg, int64_t t0, int64_t t1) {
  const small_ctx *c = arg;
  const int64_t K1 = c->k1, K0 = c->p->nout / K1;
  for (int64_t ti = t0; ti < t1; ti++) {
    tile t = {c, 0, 0, 0, c->ks1, NULL};
    if (c->rows_per_tile == 0) {
      const int64_t k0 = ti / c->tpr, k1 = (ti % c->tpr) * TK;
      t.j = k0 * K1 + k1;
      t.b = k0 * c->ks0 + k1 * c->ks1;
      t.n = min64(TK, K1 - k1);
    } else {
      const int64_t k0 = ti * c->rows_per_tile;
      t.j = k0 * K1;
      t.b = k0 * c->ks0;
      t.n = min64(c->rows_per_tile, K0 - k0) * K1;
      t.ks1 = 0;
      t.off = c->off;
    }
    tile_run(&t);
  }
}

/* Runs every tile: on OpenMP threads when x is large. */
static void small_run(small_ctx *c) {
  const int64_t K1 = c->k1, K0 = c->p->nout / K1;
  int64_t ntile;
  if (K1 >= TK / 2) {
    c->rows_per_tile = 0;
    c->tpr = (K1 + TK - 1) / TK;
    ntile = K0 * c->tpr;
  } else {
    c->rows_per_tile = TK / K1;
    for (int64_t r = 0, i = 0; r < c->rows_per_tile; r++)
      for (int64_t k = 0; k < K1; k++)
        c->off[i++] = (int32_t)(r * c->ks0 + k * c->ks1);
    ntile = (K0 + c->rows_per_tile - 1) / c->rows_per_tile;
  }
  if (c->p->numel < TG_PAR_MIN || ntile < 2) {
    small_tiles(c, 0, ntile);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < ntile; t++)
    small_tiles(c, t, t + 1);
}

#endif
