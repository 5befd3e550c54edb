/* reduce_small.c — reduce.c's kernels for small groups (pooling windows,
 * short last axes), behind reduce_internal.h. Like reduce.c it must not
 * allocate, record anything or let the thread count change the
 * arithmetic.
 */
#include <string.h>

#include "op.h"
#include "ops_internal.h"
#include "reduce_internal.h"

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
 * elements' extent each.
 *
 * Two refinements, both from SimpleConvNet's profile (its 2×2 pools took
 * a third of a training step): a tile of several short rows runs row by
 * row with the constant stride rather than through off[] (gathers and
 * scatters), and 2×2 windows side by side (the book's pools: elements
 * {0, 1, R, R + 1}, outputs 2 apart) have kernels of their own in GCC
 * vector types, which the compiler would otherwise peel into scalar
 * loops on rows of 7 to 14 outputs. Same rules, same results. */
#define SMALL_G 64
#define TK      64 /* outputs per tile */

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
  int64_t pair_row;           /* 2×2 windows: see two_by_two; else 0 */
  int32_t off[TK];            /* output offsets in a tile of whole rows */
} small_ctx;

int tg_reduce_small_ok(const plan *p) {
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
  /* 2×2 windows side by side along a row (the book's pools): elements
   * {0, 1, R, R + 1}, outputs 2 apart. */
  c->pair_row = 0;
  if (c->g == 4 && c->ks1 == 2 && c->goff[0] == 0 && c->goff[1] == 1 && c->goff[2] > 1 &&
      c->goff[3] == c->goff[2] + 1)
    c->pair_row = c->goff[2];
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

/* A tile of whole short rows (t->off set) runs row by row, each row a
 * strided tile of its own (row_tile): offsets from off[] would make every
 * load a gather and every store of tile_scatter a scatter (measured: the
 * 2×2 pools of SimpleConvNet took a third of its training step). */
static inline __attribute__((always_inline)) tile row_tile(const tile *t, int64_t r) {
  const small_ctx *c = t->c;
  return (tile){c, t->j + r * c->k1, t->b + r * c->ks0, c->k1, c->ks1, NULL};
}

/* Strides 1 and 2 (a last axis of outputs; 2-wide pooling windows) as
 * constants, so the loads are plain or one shuffle, not gathers. */
#define BY_STRIDE(BODY, t, ...)                                                                    \
  do {                                                                                             \
    if ((t)->ks1 == 1)                                                                             \
      BODY(t, __VA_ARGS__, 1);                                                                     \
    else if ((t)->ks1 == 2)                                                                        \
      BODY(t, __VA_ARGS__, 2);                                                                     \
    else                                                                                           \
      BODY(t, __VA_ARGS__, (t)->ks1);                                                              \
  } while (0)
#define SUM_BODY(t, unused, ks1) tile_sum_body(t, ks1)

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

#define ARGMAX_BODY(t, m, a, ks1) tile_argmax_body(t, m, a, ks1)

/* 2×2 windows: the n outputs of a row whose windows start at r0[2i]
 * (top) and r1[2i] (bottom). The four elements in row-major order, each
 * replacing the best only when strictly greater: the first maximum, as
 * better() without NaNs (a NaN is reported and the caller searches
 * again). Written with GCC's vector types, VL outputs at a time (a
 * window pair per two loaded vectors, split by shuffles), because the
 * compiler peels short rows (7 to 14 outputs) into scalar loops. A last
 * partial block is moved back to end at n, recomputing a few outputs. */
typedef tg_real vreal __attribute__((vector_size(32), aligned(sizeof(tg_real))));
#ifdef TG_DOUBLE
typedef int64_t vmask __attribute__((vector_size(32)));
#define VL   4
#define EVEN 0, 2, 4, 6
#define ODD  1, 3, 5, 7
#else
typedef int32_t vmask __attribute__((vector_size(32)));
#define VL   8
#define EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define ODD  1, 3, 5, 7, 9, 11, 13, 15
#endif
/* The lanes of a and b at the given indices, in GCC's and clang's
 * spellings (clang builds the fuzz targets). */
#ifdef __clang__
#define SHUFFLE(a, b, idx) __builtin_shufflevector(a, b, idx)
#else
#define SHUFFLE(a, b, idx) __builtin_shuffle(a, b, (vmask){idx})
#endif

/* m and a of outputs [i, i + VL); their NaNs into *nan. */
static inline __attribute__((always_inline)) void argmax_2x2_block(const tg_real *r0,
                                                                   const tg_real *r1, int64_t i,
                                                                   tg_real *m, int32_t *a,
                                                                   vmask *nan) {
  vreal t0, t1, u0, u1;
  memcpy(&t0, r0 + 2 * i, sizeof t0), memcpy(&t1, r0 + 2 * i + VL, sizeof t1);
  memcpy(&u0, r1 + 2 * i, sizeof u0), memcpy(&u1, r1 + 2 * i + VL, sizeof u1);
  const vreal v0 = SHUFFLE(t0, t1, EVEN), v1 = SHUFFLE(t0, t1, ODD);
  const vreal v2 = SHUFFLE(u0, u1, EVEN), v3 = SHUFFLE(u0, u1, ODD);
  const vmask g1 = v1 > v0;
  const vreal b1 = (vreal)(((vmask)v1 & g1) | ((vmask)v0 & ~g1));
  const vmask g2 = v2 > b1;
  const vreal b2 = (vreal)(((vmask)v2 & g2) | ((vmask)b1 & ~g2));
  const vmask g3 = v3 > b2;
  const vreal best = (vreal)(((vmask)v3 & g3) | ((vmask)b2 & ~g3));
  const vmask e = (g3 & 3) | (~g3 & ((g2 & 2) | (~g2 & (g1 & 1))));
  memcpy(m + i, &best, sizeof best);
  for (int k = 0; k < VL; k++)
    a[i + k] = (int32_t)e[k];
  *nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);
}

static inline __attribute__((always_inline)) int argmax_2x2(const tg_real *restrict r0,
                                                            const tg_real *restrict r1, int64_t n,
                                                            tg_real *restrict m,
                                                            int32_t *restrict a) {
  if (n < VL) { /* rows too short for a block: one output at a time */
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
      const tg_real v[4] = {r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1]};
      int32_t e = 0;
      for (int32_t k = 1; k < 4; k++)
        e = v[k] > v[e] ? k : e;
      m[i] = v[e], a[i] = e;
      nan |= (v[0] != v[0]) | (v[1] != v[1]) | (v[2] != v[2]) | (v[3] != v[3]);
    }
    return nan;
  }
  vmask nan = {0};
  for (int64_t i0 = 0; i0 < n; i0 += VL)
    argmax_2x2_block(r0, r1, i0 + VL <= n ? i0 : n - VL, m, a, &nan);
  int any = 0;
  for (int k = 0; k < VL; k++)
    any |= nan[k] != 0;
  return any;
}

/* Each window's top row, then its bottom row: dy at the first maximum,
 * 0 at the other three, written in pairs. */
static inline __attribute__((always_inline)) void scatter_2x2(tg_real *restrict g0,
                                                              tg_real *restrict g1, int64_t n,
                                                              const int32_t *restrict a,
                                                              const tg_real *restrict dy) {
  for (int64_t i = 0; i < n; i++) {
    const tg_real d = dy[i];
    const int32_t e = a[i];
    g0[2 * i] = e == 0 ? d : 0;
    g0[2 * i + 1] = e == 1 ? d : 0;
  }
  for (int64_t i = 0; i < n; i++) {
    const tg_real d = dy[i];
    const int32_t e = a[i];
    g1[2 * i] = e == 2 ? d : 0;
    g1[2 * i + 1] = e == 3 ? d : 0;
  }
}

/* 2×2 windows' sums (average pooling), VL outputs at a time as
 * argmax_2x2_block loads them: in double, from 0, in the windows'
 * row-major order, then divided, as tile_sum_body adds (0 + x keeps its
 * sign rule: the same bits). */
typedef double vsum __attribute__((vector_size(VL * sizeof(double))));
static inline __attribute__((always_inline)) void sum_2x2(const tg_real *restrict r0,
                                                          const tg_real *restrict r1, int64_t n,
                                                          tg_real *restrict y, double div) {
  if (n < VL) {
    for (int64_t i = 0; i < n; i++) {
      double s = 0;
      s += r0[2 * i], s += r0[2 * i + 1], s += r1[2 * i], s += r1[2 * i + 1];
      y[i] = (tg_real)(div != 1 ? s / div : s);
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n; i0 += VL) {
    const int64_t i = i0 + VL <= n ? i0 : n - VL;
    vreal t0, t1, u0, u1;
    memcpy(&t0, r0 + 2 * i, sizeof t0), memcpy(&t1, r0 + 2 * i + VL, sizeof t1);
    memcpy(&u0, r1 + 2 * i, sizeof u0), memcpy(&u1, r1 + 2 * i + VL, sizeof u1);
    vsum s = (vsum){0} + __builtin_convertvector(SHUFFLE(t0, t1, EVEN), vsum);
    s += __builtin_convertvector(SHUFFLE(t0, t1, ODD), vsum);
    s += __builtin_convertvector(SHUFFLE(u0, u1, EVEN), vsum);
    s += __builtin_convertvector(SHUFFLE(u0, u1, ODD), vsum);
    if (div != 1)
      s /= div;
    const vreal v = __builtin_convertvector(s, vreal);
    memcpy(y + i, &v, sizeof v);
  }
}

KERNEL static void tile_sum(const tile *t) {
  const small_ctx *c = t->c;
  if (c->pair_row) {
    const int64_t R = c->pair_row, rows = t->off ? t->n / c->k1 : 1, len = t->off ? c->k1 : t->n;
    for (int64_t r = 0; r < rows; r++) {
      const tg_real *r0 = c->x + t->b + r * c->ks0;
      sum_2x2(r0, r0 + R, len, c->y + t->j + r * len, c->div);
    }
    return;
  }
  if (!t->off || !c->ks1) { /* ks1 0: one output per row, offsets in off[] */
    BY_STRIDE(SUM_BODY, t, 0);
    return;
  }
  for (int64_t r = 0; r < t->n / c->k1; r++) {
    tile rt = row_tile(t, r);
    BY_STRIDE(SUM_BODY, &rt, 0);
  }
}

KERNEL static void tile_argmax(const tile *t, tg_real *restrict m, int32_t *restrict a) {
  const small_ctx *c = t->c;
  if (c->pair_row) {
    const int64_t R = c->pair_row, rows = t->off ? t->n / c->k1 : 1, len = t->off ? c->k1 : t->n;
    int nan = 0;
    for (int64_t r = 0; r < rows; r++) {
      const tg_real *r0 = c->x + t->b + r * c->ks0;
      nan |= argmax_2x2(r0, r0 + R, len, m + r * len, a + r * len);
    }
    if (!nan)
      return;
  }
  BY_STRIDE(ARGMAX_BODY, t, m, a);
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

#define SCATTER_BODY(t, a, ks1) tile_scatter_body(t, a, ks1)

KERNEL static void tile_scatter(const tile *t, const int32_t *restrict a) {
  const small_ctx *c = t->c;
  if (c->pair_row) {
    const int64_t R = c->pair_row, rows = t->off ? t->n / c->k1 : 1, len = t->off ? c->k1 : t->n;
    for (int64_t r = 0; r < rows; r++) {
      tg_real *g0 = c->gx + t->b + r * c->ks0;
      scatter_2x2(g0, g0 + R, len, a + r * len, c->dy + t->j + r * len);
    }
    return;
  }
  if (!t->off || !c->ks1) {
    BY_STRIDE(SCATTER_BODY, t, a);
    return;
  }
  const int64_t K1 = c->k1;
  for (int64_t r = 0; r < t->n / K1; r++) {
    tile rt = row_tile(t, r);
    BY_STRIDE(SCATTER_BODY, &rt, a + r * K1);
  }
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

/* Runs every tile: on threads when x is large. */
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
  tg_parallel_for(ntile, tg_grain_of(c->p->numel / ntile), c->p->numel, small_tiles, c);
}

void tg_reduce_small(const plan *p, const tg_real *x, int mode, double div, tg_real *y,
                     int64_t *yarg, const tg_real *dy, tg_real *gx) {
  small_ctx c = {.x = x, .mode = mode, .div = div, .y = y, .yarg = yarg, .dy = dy, .gx = gx};
  small_init(&c, p);
  small_run(&c);
}
