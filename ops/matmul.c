/* matmul.c — the matrix product C = op(A)·op(B) of 2-D tensors and its
 * backward rule.
 *
 * The engine is libxsmm's JIT, tiled and threaded here; OpenBLAS (called
 * directly, one thread per call) takes what the JIT does badly or cannot
 * do, and two small kernels here the last one or two columns of C past
 * whole vectors, for which the JIT would pay whole vectors. Tensors are
 * row-major and the JIT is column-major, so row-major C(M,N) =
 * op(A)·op(B) runs as column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: kernel (m, n, k) =
 * (N, M, K) called as kernel(B, A, C). A transposed A is the
 * JIT's TRANS_B flag; a transposed B would be its TRANS_A, which libxsmm
 * 1.17 does not generate, so B is transposed into arena scratch first.
 *
 * Batched products (bmm) run the same engine once per batch element;
 * tg_matmul composes them, reshape and broadcast_to into torch.matmul's
 * rules for 1-D and batched operands, 2-D @ 2-D staying a single matmul.
 *
 * This file must not call libxsmm_?gemm or libxsmm_?gemm_omp (above 64³
 * they hand the product to whatever BLAS was linked and the no-BLAS stub
 * returns garbage silently; their TT case collapses), must not let
 * OpenBLAS start threads of its own inside an OpenMP region, and must
 * not make a result depend on the thread count: the tiling is a function
 * of the shape only, so every element is computed by the same sequence of
 * kernel calls whichever thread runs its tile.
 */
#include <cblas.h>
#include <immintrin.h>
#include <libxsmm.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>

#include "gemm.h"
#include "op.h"
#include "ops.h"

#ifdef TG_DOUBLE
#define mm_dispatch libxsmm_dmmdispatch
#define blas_gemm   cblas_dgemm
#else
#define mm_dispatch libxsmm_smmdispatch
#define blas_gemm   cblas_sgemm
#endif

/* ------------------------------------------------------------------------
 * Tuning. With an AVX-512 target the tiled JIT beats OpenBLAS at every
 * size tried, on one thread and on two. With an AVX2 target (older CPUs;
 * valgrind) the JIT is ahead only on small products and when it splits
 * K, so larger products go to OpenBLAS in row tiles. Tile sizes within a
 * factor 2 of these run the same. The figures: benchmarks/README.md. */

/* Below this many flops (2·M·N·K) a product stays on one thread. The
 * fork/join alone pays off from about 5e6 (TOOLCHAIN.md), but a split
 * product leaves half of its result (and of its operands' cache lines) on
 * the other core, and the ops after it pay to bring them back: at 5e6 a
 * TwoLayerNet step (products of 7.8e6) took 142 us on 2 threads against
 * 111 on 1 (the update alone 3 -> 36 us), at 2e7 110 on both. */
#define PAR_FLOPS 2e7
/* JIT tiles: at most MB rows and NB columns of C; K in one piece up to
 * K_WHOLE, else in even chunks of at most K_CHUNK, so the B panel a tile
 * streams (K_CHUNK x NB) stays in L2. */
#define MB      64
#define NB      256
#define K_WHOLE 512
#define K_CHUNK 256
/* Tiles are shrunk (down to MIN_ROWS rows) until a parallel product has
 * PAR_TILES tiles, and a product whose C is still one tile is split along
 * K into at most MAX_SLICES partial sums, each covering at least
 * SLICE_MIN_K of K, added in a fixed order. */
#define PAR_TILES   4
#define MIN_ROWS    16
#define MAX_SLICES  8
#define SLICE_MIN_K 1024
/* Without AVX-512, products of at least BLAS_MIN_FLOPS go to OpenBLAS in
 * row blocks of at most BLAS_MB rows, unless the JIT tiling splits K. */
#define BLAS_MIN_FLOPS 5e6
#define BLAS_MB        64
/* The JIT's kernels run along the columns of C in whole AVX-512 vectors
 * (LANES elements), so a product whose N is a few columns past a multiple
 * of LANES pays a whole vector for them: X (100, 784)·W (784, 50) took
 * 43.9 us, the same product with N = 48 32.8. Up to REM_MAX such columns
 * are computed apart (rem_dots and rem_axpys below; with A not transposed
 * they are dot products along K, so only when K >= REM_MIN_K): the
 * product with N = 50 then takes 35.4 us, its dB = Aᵀ·dC 36.7. With 4
 * such columns (N = 100) it ran as fast as the JIT alone, within the
 * noise. */
enum { LANES = 64 / (int)sizeof(tg_real), REM_MAX = LANES / 8, REM_MIN_K = 4 * LANES };

/* ------------------------------------------------------------------------
 * libxsmm_init must run before the first dispatch (it is not thread-safe
 * the first time), once per process. The engine for large products
 * follows libxsmm's current target, read per product (a load), so a
 * program that retargets libxsmm gets the matching choice. */

static pthread_once_t xsmm_once = PTHREAD_ONCE_INIT;

static void xsmm_init(void) { libxsmm_init(); }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Size of tile or chunk t out of n of size b covering len. */
static int64_t extent(int64_t t, int64_t n, int64_t b, int64_t len) {
  return t == n - 1 ? len - (n - 1) * b : b;
}

/* Splits len into the fewest even pieces of at most maxb; returns the size. */
static int64_t even_split(int64_t len, int64_t maxb, int64_t *pieces) {
  *pieces = ceil_div(len, maxb);
  int64_t b = ceil_div(len, *pieces);
  *pieces = ceil_div(len, b);
  return b;
}

/* Chooses the tiling from the shape alone (never from the thread count). */
static void plan_tiles(mm_plan *p) {
  const double flops = 2.0 * (double)p->M * (double)p->N * (double)p->K;
  const int par = !p->serial && flops >= PAR_FLOPS;
  if (p->blas) {
    /* OpenBLAS blocks for the cache itself: row blocks only, whole K. */
    p->mb = even_split(p->M, BLAS_MB, &p->tm);
    p->nb = p->N, p->tn = 1;
    p->kb = p->K, p->tk = 1;
    p->slices = 1;
    return;
  }
  p->nb = even_split(p->N - p->rem, NB, &p->tn);
  p->mb = even_split(p->M, MB, &p->tm);
  if (p->K <= K_WHOLE)
    p->kb = p->K, p->tk = 1;
  else
    p->kb = even_split(p->K, K_CHUNK, &p->tk);
  if (par && p->tm * p->tn < PAR_TILES && p->M >= 2 * MIN_ROWS) {
    int64_t want = ceil_div(PAR_TILES, p->tn);
    if (want > p->M / MIN_ROWS)
      want = p->M / MIN_ROWS;
    p->mb = even_split(p->M, ceil_div(p->M, want), &p->tm);
  }
  p->slices = 1;
  if (par && p->tm * p->tn == 1 && p->tk > 1) {
    int64_t s = p->K / SLICE_MIN_K;
    if (s > MAX_SLICES)
      s = MAX_SLICES;
    if (s > p->tk)
      s = p->tk;
    p->slices = s > 1 ? s : 1;
  }
}

/* First K chunk of slice s (slices share the chunks as evenly as possible). */
static int64_t slice_start(const mm_plan *p, int64_t s) { return s * p->tk / p->slices; }

/* Dispatches every kernel the tiling uses: a full tile and the ragged
 * last row, column and chunk, each with beta 0 (first chunk of a slice)
 * and, when a slice has several chunks, beta 1. Returns 0 when the JIT
 * declines one. */
static int plan_kernels(mm_plan *p) {
  const tg_real one = 1, zero = 0;
  const int flags = p->ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const libxsmm_blasint lda = (libxsmm_blasint)p->N;                  /* bᵀ side: (K, N) */
  const libxsmm_blasint ldb = (libxsmm_blasint)(p->ta ? p->M : p->K); /* a side */
  const libxsmm_blasint ldc = (libxsmm_blasint)p->N;
  const int64_t ms[2] = {p->mb, extent(p->tm - 1, p->tm, p->mb, p->M)};
  const int64_t ns[2] = {p->nb, extent(p->tn - 1, p->tn, p->nb, p->N - p->rem)};
  const int64_t ks[2] = {p->kb, extent(p->tk - 1, p->tk, p->kb, p->K)};
  const int betas = p->tk > p->slices || p->accumulate ? 2 : 1;
  for (int em = 0; em < 1 + (ms[1] != ms[0]); em++)
    for (int en = 0; en < 1 + (ns[1] != ns[0]); en++)
      for (int ek = 0; ek < 1 + (ks[1] != ks[0]); ek++)
        for (int bt = 0; bt < betas; bt++) {
          mm_kernel k =
              mm_dispatch((libxsmm_blasint)ns[en], (libxsmm_blasint)ms[em], (libxsmm_blasint)ks[ek],
                          &lda, &ldb, &ldc, &one, bt ? &one : &zero, &flags, NULL);
          if (!k)
            return 0;
          p->kern[em][en][ek][bt] = k;
        }
  return 1;
}

/* ------------------------------------------------------------------------
 * Execution */

/* Tile (i, j) of C, or of slice s's partial sum, over the slice's chunks. */
static void run_tile(const mm_plan *p, int64_t i, int64_t j, int64_t s) {
  const int64_t M = p->M, N = p->N, K = p->K;
  const int64_t m0 = i * p->mb, n0 = j * p->nb;
  const int64_t mm = extent(i, p->tm, p->mb, M), nn = extent(j, p->tn, p->nb, N - p->rem);
  tg_real *c = (s == 0 ? p->c : p->part + (s - 1) * M * N) + m0 * N + n0; /* (mm, nn), ld N */
  const int64_t c0 = slice_start(p, s), c1 = slice_start(p, s + 1);
  if (p->blas) {
    /* Row blocks over the whole of N and K (never sliced); transposes
     * are BLAS flags. */
    const tg_real *a = p->ta ? p->a + m0 : p->a + m0 * K;
    const tg_real *b = p->tb ? p->b + n0 * K : p->b + n0;
    blas_gemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans, p->tb ? CblasTrans : CblasNoTrans,
              (int)mm, (int)nn, (int)K, 1, a, (int)(p->ta ? M : K), b, (int)(p->tb ? K : N),
              p->accumulate, c, (int)N);
    return;
  }
  const int em = i == p->tm - 1 && mm != p->mb, en = j == p->tn - 1 && nn != p->nb;
  const tg_real *b = p->b_t ? p->b_t : p->b;
  for (int64_t t = c0; t < c1; t++) {
    const int64_t k0 = t * p->kb;
    const int ek = t == p->tk - 1 && extent(t, p->tk, p->kb, K) != p->kb;
    const tg_real *a = p->ta ? p->a + k0 * M + m0 : p->a + m0 * K + k0;
    p->kern[em][en][ek][t > c0 || (p->accumulate && s == 0)](b + k0 * N + n0, a, c);
  }
}

/* The last rem columns of C for rows [m0, m1), each element one sum in a
 * fixed order. They run only when libxsmm targets AVX-512, in its
 * vectors. Without ta, dot products along K of a's rows with b_r's
 * (LANES partial sums, then added by the intrinsic's fixed tree), four
 * rows and two columns at a time: rows and columns past the end repeat
 * the first and are not stored. With ta, a's rows run along M: LANES rows
 * of C in one vector, each the sum over k in order, four vectors and two
 * columns at a time. */
#ifdef TG_DOUBLE
typedef __m512d vec;
typedef __mmask8 vmask;
#define V_ZERO           _mm512_setzero_pd
#define V_SET1           _mm512_set1_pd
#define V_LOAD(m, p)     _mm512_maskz_loadu_pd(m, p)
#define V_STORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define V_FMA            _mm512_fmadd_pd
#define V_SUM            _mm512_reduce_add_pd
#else
typedef __m512 vec;
typedef __mmask16 vmask;
#define V_ZERO           _mm512_setzero_ps
#define V_SET1           _mm512_set1_ps
#define V_LOAD(m, p)     _mm512_maskz_loadu_ps(m, p)
#define V_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_FMA            _mm512_fmadd_ps
#define V_SUM            _mm512_reduce_add_ps
#endif
#define AVX512 __attribute__((target("avx512f")))
static const vmask ALL = (vmask)~0u;

/* c0 += x·y0, c1 += x·y1. */
AVX512 static inline void fma2(vec x, vec y0, vec y1, vec *c0, vec *c1) {
  *c0 = V_FMA(x, y0, *c0);
  *c1 = V_FMA(x, y1, *c1);
}

/* out (+)= v, by p's accumulate. */
static inline void put(const mm_plan *p, tg_real *out, tg_real v) {
  *out = p->accumulate ? *out + v : v;
}

AVX512 static void rem_dots(const mm_plan *p, int64_t m0, int64_t m1) {
  const int64_t K = p->K, N = p->N, n0 = N - p->rem, kv = K / LANES * LANES;
  const vmask tail = (vmask)((1u << (K - kv)) - 1);
  for (int64_t i = m0; i < m1; i += 4)
    for (int64_t j = 0; j < p->rem; j += 2) {
      const tg_real *x0 = p->a + i * K, *x1 = i + 1 < m1 ? x0 + K : x0,
                    *x2 = i + 2 < m1 ? x0 + 2 * K : x0, *x3 = i + 3 < m1 ? x0 + 3 * K : x0;
      const tg_real *y0 = p->b_r + j * K, *y1 = j + 1 < p->rem ? y0 + K : y0;
      vec c00 = V_ZERO(), c01 = V_ZERO(), c10 = V_ZERO(), c11 = V_ZERO();
      vec c20 = V_ZERO(), c21 = V_ZERO(), c30 = V_ZERO(), c31 = V_ZERO();
      for (int64_t k = 0; k < K; k += LANES) {
        const vmask m = k < kv ? ALL : tail;
        const vec v0 = V_LOAD(m, y0 + k), v1 = V_LOAD(m, y1 + k);
        fma2(V_LOAD(m, x0 + k), v0, v1, &c00, &c01);
        fma2(V_LOAD(m, x1 + k), v0, v1, &c10, &c11);
        fma2(V_LOAD(m, x2 + k), v0, v1, &c20, &c21);
        fma2(V_LOAD(m, x3 + k), v0, v1, &c30, &c31);
      }
      const vec c[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
      for (int r = 0; r < 4 && i + r < m1; r++)
        for (int q = 0; q < 2 && j + q < p->rem; q++)
          put(p, p->c + (i + r) * N + n0 + j + q, V_SUM(c[r][q]));
    }
}

/* The mask of the LANES rows from i on, of those before m1. */
static vmask rows_mask(int64_t i, int64_t m1) {
  return m1 - i >= LANES ? ALL : m1 > i ? (vmask)((1u << (m1 - i)) - 1) : 0;
}

AVX512 static void rem_axpys(const mm_plan *p, int64_t m0, int64_t m1) {
  const int64_t K = p->K, M = p->M, N = p->N, n0 = N - p->rem;
  const int64_t bs = p->tb ? 1 : N; /* op(b)'s step along k */
  for (int64_t i = m0; i < m1; i += 4 * LANES)
    for (int64_t j = 0; j < p->rem; j += 2) {
      const int64_t n1 = j + 1 < p->rem ? n0 + j + 1 : n0 + j;
      const tg_real *b0 = p->tb ? p->b + (n0 + j) * K : p->b + n0 + j,
                    *b1 = p->tb ? p->b + n1 * K : p->b + n1;
      const vmask k0 = rows_mask(i, m1), k1 = rows_mask(i + LANES, m1),
                  k2 = rows_mask(i + 2 * LANES, m1), k3 = rows_mask(i + 3 * LANES, m1);
      vec c00 = V_ZERO(), c01 = V_ZERO(), c10 = V_ZERO(), c11 = V_ZERO();
      vec c20 = V_ZERO(), c21 = V_ZERO(), c30 = V_ZERO(), c31 = V_ZERO();
      for (int64_t k = 0; k < K; k++) {
        const tg_real *x = p->a + k * M + i;
        const vec v0 = V_SET1(b0[k * bs]), v1 = V_SET1(b1[k * bs]);
        fma2(V_LOAD(k0, x), v0, v1, &c00, &c01);
        fma2(V_LOAD(k1, x + LANES), v0, v1, &c10, &c11);
        fma2(V_LOAD(k2, x + 2 * LANES), v0, v1, &c20, &c21);
        fma2(V_LOAD(k3, x + 3 * LANES), v0, v1, &c30, &c31);
      }
      const vec c[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
      for (int r = 0; r < 4; r++)
        for (int q = 0; q < 2 && j + q < p->rem; q++) {
          tg_real lane[LANES];
          V_STORE(lane, ALL, c[r][q]);
          for (int64_t l = 0, at = i + r * LANES; l < LANES && at + l < m1; l++)
            put(p, p->c + (at + l) * N + n0 + j + q, lane[l]);
        }
    }
}

/* C += the partial sums of slices 1.., in slice order. */
static void reduce_slices(const mm_plan *p) {
  const int64_t MN = p->M * p->N;
  tg_real *restrict c = p->c;
  for (int64_t s = 1; s < p->slices; s++) {
    const tg_real *restrict q = p->part + (s - 1) * MN;
    for (int64_t e = 0; e < MN; e++)
      c[e] += q[e];
  }
}

/* Rows [r0, r1) of b (N, K) into columns [r0, r1) of b_t (K, N); in
 * libxsmm's column-major terms a K x (r1 - r0) matrix. (libxsmm's own
 * otrans_thread divides by zero for some splits.) */
static void transpose_rows(const mm_plan *p, int64_t r0, int64_t r1) {
  if (r1 > r0)
    libxsmm_otrans(p->b_t + r0, p->b + r0 * p->K, sizeof(tg_real), (libxsmm_blasint)p->K,
                   (libxsmm_blasint)(r1 - r0), (libxsmm_blasint)p->K, (libxsmm_blasint)p->N);
}

/* libxsmm's AVX-512 kernels return with the upper halves of the vector
 * registers dirty; until they are cleared every SSE instruction that
 * follows (our elementwise kernels, libm, malloc) pays a transition
 * penalty, many times the cost of a small op (benchmarks/README.md).
 * Every thread that ran kernels clears its own registers. */
__attribute__((target("avx"))) static void clear_upper_vector_state(void) { _mm256_zeroupper(); }

static void end_kernels(const mm_plan *p) {
  if (!p->blas && __builtin_cpu_supports("avx"))
    clear_upper_vector_state();
}

/* Column tiles [j0, j1) whole, transposing first just the rows of B they
 * read (a transposed B, several column tiles): the bᵀ a thread reads is
 * then in its own cache (read from another core's, just written, it cost
 * as much as the product itself). */
static void column_tiles(void *arg, int64_t j0, int64_t j1) {
  const mm_plan *p = arg;
  transpose_rows(p, j0 * p->nb, j1 == p->tn ? p->N : j1 * p->nb);
  for (int64_t j = j0; j < j1; j++)
    for (int64_t i = 0; i < p->tm; i++)
      run_tile(p, i, j, 0);
  end_kernels(p);
}

/* Work items [w0, w1): tile ij of slice s is item ij·slices + s; after
 * the tiles, row tile i of the last rem columns. */
static void tiles_range(void *arg, int64_t w0, int64_t w1) {
  const mm_plan *p = arg;
  const int64_t tiles = p->tm * p->tn * p->slices;
  for (int64_t w = w0; w < w1; w++) {
    int64_t s = w % p->slices, ij = w / p->slices;
    if (w < tiles) {
      run_tile(p, ij / p->tn, ij % p->tn, s);
    } else {
      const int64_t m0 = (w - tiles) * p->mb, m1 = m0 + extent(w - tiles, p->tm, p->mb, p->M);
      p->ta ? rem_axpys(p, m0, m1) : rem_dots(p, m0, m1);
    }
  }
  end_kernels(p);
}

/* A product's cost as tg_parallel_for's work: PAR_FLOPS flops count as
 * TG_PAR_MIN element operations. */
static int64_t flops_work(double flops) { return (int64_t)(flops / PAR_FLOPS * TG_PAR_MIN); }

/* c (M, N) = op(a)·op(b), or c += op(a)·op(b) when accumulate. Scratch
 * (bᵀ, partial sums) comes from the arena and lives until the next reset.
 * Returns 0 after failing the tape. */
static int gemm(tg_tape *tape, int ta, int tb, int64_t M, int64_t N, int64_t K, const tg_real *a,
                const tg_real *b, tg_real *c, int accumulate) {
  pthread_once(&xsmm_once, xsmm_init);
  mm_plan p = {
      .M = M, .N = N, .K = K, .ta = ta, .tb = tb, .a = a, .b = b, .c = c, .accumulate = accumulate};
  const int avx512 = libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512_CORE;
  const double flops = 2.0 * (double)M * (double)N * (double)K;
  if (avx512 && N > LANES && N % LANES <= REM_MAX && (ta || K >= REM_MIN_K))
    p.rem = N % LANES;
  plan_tiles(&p);
  if (p.slices > 1 && p.rem) { /* reduce_slices adds whole rows of partial sums */
    p.rem = 0;
    plan_tiles(&p);
  }
  if ((!avx512 && flops >= BLAS_MIN_FLOPS && p.slices == 1) || !plan_kernels(&p)) {
    p.blas = 1; /* also when the JIT declines a shape */
    p.rem = 0;
    plan_tiles(&p);
  }
  if (p.rem && !ta) {
    /* b's last rem columns as rows: b itself when transposed */
    if (tb) {
      p.b_r = b + (N - p.rem) * K;
    } else {
      tg_tensor *t = tg_empty(tape, (int64_t[]){p.rem, K}, 2);
      if (!t)
        return 0;
      for (int64_t j = 0; j < p.rem; j++)
        for (int64_t k = 0; k < K; k++)
          t->data[j * K + k] = b[k * N + N - p.rem + j];
      p.b_r = t->data;
    }
  }
  if (!p.blas && tb) {
    tg_tensor *t = tg_empty(tape, (int64_t[]){K, N}, 2);
    if (!t)
      return 0;
    p.b_t = t->data;
  }
  if (p.slices > 1) {
    tg_tensor *t = tg_empty(tape, (int64_t[]){p.slices - 1, M, N}, 3);
    if (!t)
      return 0;
    p.part = t->data;
  }
  if (p.blas && openblas_get_num_threads() != 1)
    openblas_set_num_threads(1); /* our threads call it; its own would fight them */

  /* Tiles go to tg_parallel_for one at a time. A transposed B is made
   * chunk by chunk by the threads that read it when there are column
   * tiles enough for each thread (slices need one tile: never both), else
   * before the threads start. */
  const int64_t work = flops_work(flops);
  const int own_columns = p.b_t && !p.rem && work >= TG_PAR_MIN && !omp_in_parallel() &&
                          p.tn >= tg_threads() && p.tn > 1;
  if (own_columns) {
    tg_parallel_for(p.tn, 1, work, column_tiles, &p);
  } else {
    if (p.b_t)
      transpose_rows(&p, 0, N - p.rem); /* the split columns read b itself */
    tg_parallel_for(p.tm * p.tn * p.slices + (p.rem ? p.tm : 0), 1, work, tiles_range, &p);
  }
  if (p.slices > 1)
    reduce_slices(&p); /* at most (MAX_SLICES - 1) x one tile of adds */
  return 1;
}

/* ------------------------------------------------------------------------
 * Serial products (gemm.h), planned once and run many times: the same
 * tiling and kernels as gemm() minus threads, slices and scratch. */

int tg_gemm_plan(mm_plan *p, int ta, int64_t M, int64_t N, int64_t K, int accumulate) {
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return 0;
  pthread_once(&xsmm_once, xsmm_init);
  *p = (mm_plan){.M = M, .N = N, .K = K, .ta = ta, .serial = 1, .accumulate = accumulate};
  const int avx512 = libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512_CORE;
  plan_tiles(p);
  if ((!avx512 && 2.0 * (double)M * (double)N * (double)K >= BLAS_MIN_FLOPS) || !plan_kernels(p)) {
    p->blas = 1;
    plan_tiles(p);
  }
  if (p->blas && openblas_get_num_threads() != 1)
    openblas_set_num_threads(1);
  return 1;
}

void tg_gemm_run(const mm_plan *p, const tg_real *a, const tg_real *b, tg_real *c) {
  mm_plan q = *p;
  q.a = a, q.b = b, q.c = c;
  tiles_range(&q, 0, q.tm * q.tn * q.slices);
}

/* ------------------------------------------------------------------------
 * The op. For C = op(A)·op(B) and dC the gradient of C (rules written
 * with matmul_t itself, so they can be differentiated again):
 *
 *   C = A·B      dA = dC·Bᵀ    dB = Aᵀ·dC
 *   C = Aᵀ·B     dA = B·dCᵀ    dB = A·dC
 *   C = A·Bᵀ     dA = dC·B     dB = dCᵀ·A
 *   C = Aᵀ·Bᵀ    dA = Bᵀ·dCᵀ   dB = dCᵀ·Aᵀ
 */

/* matmul's attributes. */
enum { MATMUL_TA, MATMUL_TB, MATMUL_NATTR };

/* into += op(x)·op(y): the table's product added straight into a leaf's
 * gradient buffer (tg_grad_into), the same kernels and order as
 * tg_matmul_t's, so a buffer that held 0 gets the same bits. */
static void matmul_into(tg_tape *tape, tg_tensor *into, tg_tensor *x, tg_tensor *y, int tx,
                        int ty) {
  const int64_t M = x->shape[tx], K = x->shape[!tx], N = y->shape[!ty];
  if (gemm(tape, tx, ty, M, N, K, x->data, y->data, into->data, 1))
    tg_op_work(tape, (x->numel + y->numel + 2 * into->numel) * (int64_t)sizeof(tg_real));
}

static void matmul_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1]; /* gy: (M, N) */
  const int ta = (int)n->attr[MATMUL_TA], tb = (int)n->attr[MATMUL_TB];
  tg_tensor *into;
  if ((into = tg_grad_into(tape, n, 0)))
    ta ? matmul_into(tape, into, b, gy, tb, 1) : matmul_into(tape, into, gy, b, 0, !tb);
  else if (tg_op_needs_grad(n, 0))
    gx[0] = ta ? tg_matmul_t(tape, b, gy, tb, 1) : tg_matmul_t(tape, gy, b, 0, !tb);
  if ((into = tg_grad_into(tape, n, 1)))
    tb ? matmul_into(tape, into, gy, a, 1, ta) : matmul_into(tape, into, a, gy, !ta, 0);
  else if (tg_op_needs_grad(n, 1))
    gx[1] = tb ? tg_matmul_t(tape, gy, a, 1, ta) : tg_matmul_t(tape, a, gy, !ta, 0);
}

static const tg_op op_matmul = {"matmul", 2, TG_GRAD_INTO, matmul_backward};

tg_tensor *tg_matmul_t(tg_tape *tape, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b) {
  tg_tensor *in[2] = {a, b};
  if (!tg_op_begin(tape, &op_matmul, 2, in))
    return NULL;
  const int ta = trans_a != 0, tb = trans_b != 0;
  const char *ma = ta ? "^T" : "", *mb = tb ? "^T" : "";
  if (a->ndim != 2 || b->ndim != 2)
    return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE, "operands must be 2-D: %s%s @ %s%s",
                      TG_SHAPE(a), ma, TG_SHAPE(b), mb);
  const int64_t M = a->shape[ta], K = a->shape[!ta];  /* op(a): (M, K) */
  const int64_t Kb = b->shape[tb], N = b->shape[!tb]; /* op(b): (K, N) */
  if (K != Kb)
    return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE, "inner dimensions differ: %s%s @ %s%s",
                      TG_SHAPE(a), ma, TG_SHAPE(b), mb);
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE,
                      "a dimension exceeds the GEMM limit of 2^31-1: %s%s @ %s%s", TG_SHAPE(a), ma,
                      TG_SHAPE(b), mb);
  tg_tensor *c = tg_empty(tape, (int64_t[]){M, N}, 2); /* (M, N) */
  if (!c || !gemm(tape, ta, tb, M, N, K, a->data, b->data, c->data, 0))
    return NULL;
  int64_t attr[MATMUL_NATTR];
  attr[MATMUL_TA] = ta, attr[MATMUL_TB] = tb;
  return tg_op_record(tape, &op_matmul, c, 2, in, attr, MATMUL_NATTR);
}

/* ------------------------------------------------------------------------
 * Batched products: a (B, M, K), b (B, K, N) -> (B, M, N), one gemm() of
 * the 2-D path per batch element (each threaded as a 2-D product of its
 * size would be), transposes as flags. The backward rules are matmul's
 * table above with bmm_t. */
enum { BMM_TRANS_A, BMM_TRANS_B, BMM_NATTR };

static void bmm_backward(tg_tape *tape, const tg_node *n, tg_tensor *gy, tg_tensor **gx) {
  tg_tensor *a = n->in[0], *b = n->in[1]; /* gy: (B, M, N) */
  const int ta = (int)n->attr[BMM_TRANS_A], tb = (int)n->attr[BMM_TRANS_B];
  if (tg_op_needs_grad(n, 0))
    gx[0] = ta ? tg_bmm_t(tape, b, gy, tb, 1) : tg_bmm_t(tape, gy, b, 0, !tb);
  if (tg_op_needs_grad(n, 1))
    gx[1] = tb ? tg_bmm_t(tape, gy, a, 1, ta) : tg_bmm_t(tape, a, gy, !ta, 0);
}

static const tg_op op_bmm = {"bmm", 2, 0, bmm_backward};

tg_tensor *tg_bmm_t(tg_tape *tape, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b) {
  tg_tensor *in[2] = {a, b};
  if (!tg_op_begin(tape, &op_bmm, 2, in))
    return NULL;
  const int ta = trans_a != 0, tb = trans_b != 0;
  const char *ma = ta ? "^T" : "", *mb = tb ? "^T" : "";
  if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0])
    return tg_op_fail(tape, &op_bmm, TG_ERR_SHAPE,
                      "operands must be 3-D with one batch size: %s%s @ %s%s", TG_SHAPE(a), ma,
                      TG_SHAPE(b), mb);
  const int64_t B = a->shape[0];
  const int64_t M = a->shape[1 + ta], K = a->shape[2 - ta];  /* op(a[i]): (M, K) */
  const int64_t Kb = b->shape[1 + tb], N = b->shape[2 - tb]; /* op(b[i]): (K, N) */
  if (K != Kb)
    return tg_op_fail(tape, &op_bmm, TG_ERR_SHAPE, "inner dimensions differ: %s%s @ %s%s",
                      TG_SHAPE(a), ma, TG_SHAPE(b), mb);
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return tg_op_fail(tape, &op_bmm, TG_ERR_SHAPE,
                      "a dimension exceeds the GEMM limit of 2^31-1: %s%s @ %s%s", TG_SHAPE(a), ma,
                      TG_SHAPE(b), mb);
  tg_tensor *c = tg_empty(tape, (int64_t[]){B, M, N}, 3); /* (B, M, N) */
  if (!c)
    return NULL;
  for (int64_t i = 0; i < B; i++)
    if (!gemm(tape, ta, tb, M, N, K, a->data + i * M * K, b->data + i * K * N, c->data + i * M * N,
              0))
      return NULL;
  const int64_t attr[BMM_NATTR] = {[BMM_TRANS_A] = ta, [BMM_TRANS_B] = tb};
  return tg_op_record(tape, &op_bmm, c, 2, in, attr, BMM_NATTR);
}

tg_tensor *tg_bmm(tg_tape *tape, tg_tensor *a, tg_tensor *b) { return tg_bmm_t(tape, a, b, 0, 0); }

/* tg_matmul beyond 2-D @ 2-D, composed of reshape, broadcast_to, matmul
 * and bmm (so it has no backward of its own), with torch.matmul's rules:
 * a 1-D a is a row (1, K), a 1-D b a column (K, 1), and the added axis is
 * dropped from the result; a 2-D b under a batched a folds the batch into
 * M (one product); otherwise the batch axes (all but the last two)
 * broadcast and the product runs as bmm. */
static tg_tensor *matmul_nd(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  tg_tensor *in[2] = {a, b};
  if (!tg_op_begin(tape, &op_matmul, 2, in))
    return NULL;
  if (a->ndim == 0 || b->ndim == 0)
    return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE, "operands must be at least 1-D: %s @ %s",
                      TG_SHAPE(a), TG_SHAPE(b));
  const int a1 = a->ndim == 1, b1 = b->ndim == 1;
  const int64_t M = a1 ? 1 : a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
  const int64_t Kb = b1 ? b->shape[0] : b->shape[b->ndim - 2], N = b1 ? 1 : b->shape[b->ndim - 1];
  if (K != Kb)
    return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE, "inner dimensions differ: %s @ %s",
                      TG_SHAPE(a), TG_SHAPE(b));
  /* Batch axes: a's and b's, broadcast into bs (nb axes). */
  const int na = a1 ? 0 : a->ndim - 2, nbb = b1 ? 0 : b->ndim - 2;
  const int nb = na > nbb ? na : nbb;
  int64_t bs[TG_MAX_DIMS], ab = 1, bb = 1, batch = 1;
  for (int d = 0; d < nb; d++) {
    int i = d - (nb - na), j = d - (nb - nbb);
    int64_t x = i >= 0 ? a->shape[i] : 1, y = j >= 0 ? b->shape[j] : 1;
    if (x != y && x != 1 && y != 1)
      return tg_op_fail(tape, &op_matmul, TG_ERR_SHAPE,
                        "batch dimensions of %s @ %s do not broadcast (%lld vs %lld at axis %d)",
                        TG_SHAPE(a), TG_SHAPE(b), (long long)x, (long long)y, d - nb - 2);
    bs[d] = x == 1 ? y : x;
    ab *= x, bb *= y, batch *= bs[d];
  }
  /* The result: bs, then M unless a was 1-D, then N unless b was 1-D. */
  int64_t cs[TG_MAX_DIMS];
  int nc = nb;
  for (int d = 0; d < nb; d++)
    cs[d] = bs[d];
  if (!a1)
    cs[nc++] = M;
  if (!b1)
    cs[nc++] = N;
  tg_error e = {0};
  if (tg_shape_check(cs, nc, NULL, "result", &e) != TG_OK)
    return tg_op_fail(tape, &op_matmul, e.status, "%s (%s @ %s)", e.msg, TG_SHAPE(a), TG_SHAPE(b));
  tg_tensor *c;
  if (nbb == 0 || (bb == 1 && ab == batch)) {
    /* b is one matrix: fold a's batch into its rows, one 2-D product. */
    tg_tensor *a2 = tg_reshape(tape, a, (int64_t[]){ab * M, K}, 2);
    tg_tensor *b2 = tg_reshape(tape, b, (int64_t[]){K, N}, 2);
    c = tg_matmul_t(tape, a2, b2, 0, 0); /* (ab·M, N) */
  } else {
    tg_tensor *am = a1 ? tg_reshape(tape, a, (int64_t[]){1, K}, 2) : a; /* (..., M, K) */
    tg_tensor *bm = b1 ? tg_reshape(tape, b, (int64_t[]){K, 1}, 2) : b; /* (..., K, N) */
    int64_t s[TG_MAX_DIMS];
    for (int d = 0; d < nb; d++)
      s[d] = bs[d];
    s[nb] = M, s[nb + 1] = K;
    tg_tensor *a3 = tg_broadcast_to(tape, am, s, nb + 2);
    s[nb] = K, s[nb + 1] = N;
    tg_tensor *b3 = tg_broadcast_to(tape, bm, s, nb + 2);
    c = tg_bmm_t(tape, tg_reshape(tape, a3, (int64_t[]){batch, M, K}, 3),
                 tg_reshape(tape, b3, (int64_t[]){batch, K, N}, 3), 0, 0); /* (batch, M, N) */
  }
  return tg_reshape(tape, c, cs, nc);
}

tg_tensor *tg_matmul(tg_tape *tape, tg_tensor *a, tg_tensor *b) {
  if (a && b && a->ndim == 2 && b->ndim == 2)
    return tg_matmul_t(tape, a, b, 0, 0);
  return matmul_nd(tape, a, b);
}
