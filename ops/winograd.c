/* winograd.c — the fused convolution ops' kernels for 3×3 filters at
 * stride 1 (ops/winograd.h): Winograd's minimal filtering F(m×m, 3×3)
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
 * 2016), which computes an m×m block of output from an (m+2)×(m+2) tile
 * of input with (m+2)² products per channel pair instead of 9·m².
 *
 * In one dimension, with d a tile of A = m + 2 inputs and g the 3 taps,
 * y = Aᵀ[(G g) ⊙ (Bᵀ d)]; in two, Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ D B)]A. Summed
 * over input channels, the A² elementwise products become, per
 * transform position ξ, one matrix product over channels (channels last,
 * as the transforms read them):
 *
 *   M_ξ (tiles, FN) = V_ξ (tiles, C) · U_ξ (C, FN)
 *
 * with U = G g Gᵀ per filter and V = Bᵀ D B per tile; the output
 * transform Aᵀ M A then gives each block of y. The three ops:
 *
 *   conv:        as above.
 *   conv_grad_x: the same on dy, padded by 2 − pad, with the filters
 *                rotated by 180° and their channels swapped.
 *   conv_grad_w: from ⟨dy, y⟩ = Σ_ξ (A dy Aᵀ)_ξ (G g Gᵀ)_ξ (Bᵀ D B)_ξ,
 *                dW = Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ D B)] G, the sum over
 *                tiles one product per ξ: (tiles, FN)ᵀ · (tiles, C).
 *
 * The tiles are processed a block of whole images at a time, the block's
 * transformed tiles and products in a per-thread buffer sized to stay in
 * cache. Blocks are fixed by the shape and handed to threads by
 * tg_parallel_for (whichever thread is free); each output element is computed
 * by one block alone, and conv_grad_w sums its blocks in WG_GROUPS fixed
 * groups added in group order, so no result depends on the thread count.
 * conv_max_pool's pooling (forward) and its scatter of dy to the maxima
 * (dW) happen inside the blocks too, an image at a time while it is in
 * cache: on the calling thread after the blocks, over the whole map, they
 * left the other thread idle.
 *
 * This file must not record anything on the tape (the ops in conv.c do,
 * and their rules give every derivative) nor allocate from the system:
 * scratch comes from the arena.
 */
#include <libxsmm.h>
#include <omp.h>
#include <string.h>

#include "gemm.h"
#include "parallel.h"
#include "winograd.h"

/* F(4×4, 3×3): output blocks of m = 4, input tiles of A = 6. It
 * multiplies 4x less than direct convolution (F(2×2, 3×3): 2.25x) and
 * moves 2.25 transformed values per output instead of 4; its constants
 * reach 8 and 1/24, so it rounds a few times worse than direct
 * convolution (tests/test_fused.c measures it). */
#define WG_M  4
#define WG_A  (WG_M + 2)
#define WG_A2 (WG_A * WG_A)

/* Transformed tiles and products of one block: at most this many bytes
 * (in L2 with room for the filters). */
#define WG_BLOCK_BYTES (384 * 1024)
/* conv_grad_w's partial sums (as conv.c's CONV_GROUPS). */
#define WG_GROUPS 8

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

typedef struct wg_job {
  int kind;
  int64_t n;              /* images */
  int64_t cin, cout;      /* channels of the transformed input and of M */
  int64_t h, w, pad;      /* the input planes (x; dy for conv_grad_x), padding */
  int64_t oh, ow, th, tw; /* the output planes; tiles down and across */
  int64_t hp, wp;         /* the padded input plane: th·m + 2, tw·m + 2 */
  int64_t ipb, blocks;    /* images per block; blocks */
  int64_t groups;         /* conv_grad_w: partial sums */
  mm_plan mm[2][2];       /* [last block][accumulate] */
  const tg_real *in;      /* (N, cin, h, w) */
  const tg_real *dy;      /* conv_grad_w: (N, FN, OH, OW) */
  const tg_real *bias;    /* conv, conv_grad_x: (cout,), zeros without one */
  int relu;               /* conv: max(y, 0) after the bias */
  int64_t pool;           /* conv_max_pool's window size, or 0 */
  tg_real *arg;           /* with pool: (N, cout, oh/pool, ow/pool), the maxima's indices */
  const tg_real *u;       /* (A², cin, cout): filters transformed */
  tg_real *out;           /* y, dx; conv_grad_w: dW (FN, C, 3, 3) */
  tg_real *part;          /* conv_grad_w: (groups, A², FN, C) */
  tg_real *scratch;       /* (threads, per_thread) */
  int64_t per_thread;     /* its size per thread */
  int nth;                /* threads that may run (1: serial) */
  int64_t plane;          /* its padded plane's size (channels last) */
} wg_job;

int tg_winograd_fits(int64_t fh, int64_t fw, int64_t stride, int64_t pad, int64_t c, int64_t fn) {
  /* With one input channel (DeepConvNet's first layer) the product is
   * too thin to pay for the transforms. */
  return fh == 3 && fw == 3 && stride == 1 && pad <= 2 && c >= 4 && fn >= 4;
}

/* ------------------------------------------------------------------------
 * Transforms */

/* Zeros around the rows × cols block of dst (lr, ld, ch) that starts at
 * row r0, column c0. Only the border is zeroed: clearing the whole plane
 * first, for every image, was most of the step's memset. */
static void zero_border(tg_real *dst, int64_t ch, int64_t rows, int64_t cols, int64_t r0,
                        int64_t c0, int64_t lr, int64_t ld) {
  const size_t e = sizeof *dst;
  memset(dst, 0, (size_t)(r0 * ld * ch) * e);
  for (int64_t r = 0; r < rows; r++) {
    tg_real *d = dst + (r0 + r) * ld * ch;
    memset(d, 0, (size_t)(c0 * ch) * e);
    memset(d + (c0 + cols) * ch, 0, (size_t)((ld - c0 - cols) * ch) * e);
  }
  memset(dst + (r0 + rows) * ld * ch, 0, (size_t)((lr - r0 - rows) * ld * ch) * e);
}

/* The planes src (ch, rows, cols) into dst (lr, ld, ch) from row r0,
 * column c0 on (channels last), zeros around them, through tmp (rows·cols,
 * ch): one libxsmm transpose per image, not one per row (its dispatch
 * costs as much as a short row). */
static void to_channels_last(const tg_real *src, int64_t ch, int64_t rows, int64_t cols,
                             tg_real *tmp, tg_real *dst, int64_t r0, int64_t c0, int64_t lr,
                             int64_t ld) {
  const int64_t p = rows * cols; /* column-major: a p × ch matrix */
  libxsmm_otrans(tmp, src, sizeof(tg_real), (libxsmm_blasint)p, (libxsmm_blasint)ch,
                 (libxsmm_blasint)p, (libxsmm_blasint)ch);
  zero_border(dst, ch, rows, cols, r0, c0, lr, ld);
  for (int64_t r = 0; r < rows; r++)
    memcpy(dst + ((r0 + r) * ld + c0) * ch, tmp + r * cols * ch, (size_t)(cols * ch) * sizeof *dst);
}

/* The transforms work on channels-last copies of the planes ((rows,
 * columns, channels), made by libxsmm's transpose kernels), WG_VL
 * channels (64 bytes) at a time in GCC's vector type: a tile's chunk is
 * loaded into vector variables, transformed there and stored, each line
 * one vector operation. (Written as loops over channels around scalar
 * code, as for F(2×2), the compiler kept the 36 streams' pointers live,
 * spilled them, and for F(4×4) built vectors lane by lane.) Clones as
 * TG_KERNEL (the build targets plain x86-64). */
#define TRANSFORM __attribute__((target_clones("avx512f", "avx2", "default")))
#define WG_VL     (64 / (int)sizeof(tg_real))
/* Kernel bodies inlined with some sizes constant. */
#define INLINE static inline __attribute__((always_inline))

typedef tg_real vec __attribute__((vector_size(64)));

/* *v = p[0..w), zeros past w. (Through pointers: a vector returned by
 * value would change the ABI between the clones.) */
static inline void vload_part(vec *v, const tg_real *p, int w) {
  if (w == WG_VL) {
    memcpy(v, p, sizeof *v);
    return;
  }
  tg_real t[WG_VL] = {0};
  memcpy(t, p, (size_t)w * sizeof *p);
  memcpy(v, t, sizeof *v);
}

/* p[0..w) = v[0..w). */
static inline void vstore_part(tg_real *p, const vec *v, int w) {
  if (w == WG_VL) /* a constant size: one vector store */
    memcpy(p, v, sizeof *v);
  else
    memcpy(p, v, (size_t)w * sizeof *p);
}

/* Comparisons give masks: lanes of all ones or zeros, as wide as tg_real. */
#ifdef TG_DOUBLE
typedef int64_t mask __attribute__((vector_size(64)));
#else
typedef int32_t mask __attribute__((vector_size(64)));
#endif

/* The rows × cols block of dst (lr, ld, ch) from row r0, column c0:
 * conv_max_pool's dy scattered to its windows' maxima, from dt and at
 * (rows/s · cols/s, ch), the pooled dy and arg channels last: the value
 * where arg names the element, 0 elsewhere (pool_scatter's values), a
 * vector of channels at a time. */
INLINE void scatter_windows_cl(const tg_real *restrict dt, const tg_real *restrict at, int64_t ch,
                               int64_t rows, int64_t cols, const int64_t s, tg_real *restrict dst,
                               int64_t r0, int64_t c0, int64_t ld) {
  for (int64_t i = 0; i < rows / s; i++)
    for (int64_t q = 0; q < cols / s; q++) {
      const int64_t wi = (i * (cols / s) + q) * ch; /* the window */
      for (int64_t k0 = 0; k0 < ch; k0 += WG_VL) {
        const int w = (int)min64(WG_VL, ch - k0);
        vec d, a;
        vload_part(&d, dt + wi + k0, w);
        vload_part(&a, at + wi + k0, w);
        for (int64_t e = 0; e < s * s; e++) {
          const vec y = (vec)((mask)d & (a == (tg_real)e));
          vstore_part(dst + ((r0 + i * s + e / s) * ld + c0 + q * s + e % s) * ch + k0, &y, w);
        }
      }
    }
}

TRANSFORM static void scatter_channels_last(const tg_real *restrict dt, const tg_real *restrict at,
                                            int64_t ch, int64_t rows, int64_t cols, int64_t s,
                                            tg_real *restrict dst, int64_t r0, int64_t c0,
                                            int64_t ld) {
  if (s == 2) /* the book's windows */
    scatter_windows_cl(dt, at, ch, rows, cols, 2, dst, r0, c0, ld);
  else
    scatter_windows_cl(dt, at, ch, rows, cols, s, dst, r0, c0, ld);
}

/* to_channels_last of the planes pool_scatter would make from
 * dy (ch, rows/s, cols/s) and arg (its shape), without making them: the
 * pooled planes (s² times smaller) are transposed, into dt and at
 * (rows/s · cols/s, ch), and scattered channels last. (Scattering the
 * full planes, transposing them and copying them into place took three
 * passes over them: a tenth of DeepConvNet's step.) */
static void pooled_to_channels_last(const tg_real *dy, const tg_real *arg, int64_t ch, int64_t rows,
                                    int64_t cols, int64_t s, tg_real *dt, tg_real *at, tg_real *dst,
                                    int64_t r0, int64_t c0, int64_t lr, int64_t ld) {
  const libxsmm_blasint p = (libxsmm_blasint)(rows / s * (cols / s)), c = (libxsmm_blasint)ch;
  libxsmm_otrans(dt, dy, sizeof(tg_real), p, c, p, c);
  libxsmm_otrans(at, arg, sizeof(tg_real), p, c, p, c);
  zero_border(dst, ch, rows, cols, r0, c0, lr, ld);
  scatter_channels_last(dt, at, ch, rows, cols, s, dst, r0, c0, ld);
}

/* conv_max_pool's 2×2 pooling (tg_max_pool_planes's rule: each window's
 * first maximum in row-major order, a later element winning only when
 * strictly greater, a NaN when the best is not one) of the rows × cols
 * block of y (rows, ld, ch), channels last: m and at (rows/2 · cols/2,
 * ch) the maxima and their indices, a vector of channels at a time.
 * (Transposing y_n first and pooling its planes took a full-size
 * transpose and a pass that deinterleaves each row of windows.) */
TRANSFORM static void pool_2x2_cl(const tg_real *restrict y, int64_t ch, int64_t rows, int64_t cols,
                                  int64_t ld, tg_real *restrict m, tg_real *restrict at) {
  for (int64_t i = 0; i < rows / 2; i++)
    for (int64_t q = 0; q < cols / 2; q++) {
      const tg_real *restrict y0 = y + (2 * i * ld + 2 * q) * ch, *restrict y1 = y0 + ld * ch;
      tg_real *restrict mw = m + (i * (cols / 2) + q) * ch, *restrict aw = at + (mw - m);
#pragma omp simd
      for (int64_t k = 0; k < ch; k++) {
        const tg_real v[4] = {y0[k], y0[ch + k], y1[k], y1[ch + k]};
        tg_real b = v[0], e = 0;
        for (int t = 1; t < 4; t++) {
          const int gt = v[t] > b || (v[t] != v[t] && b == b);
          b = gt ? v[t] : b;
          e = gt ? (tg_real)t : e;
        }
        mw[k] = b, aw[k] = e;
      }
    }
}

/* The one-dimensional transforms of F(4×4, 3×3) on six (Bᵀ), four (A)
 * or six (Aᵀ) vectors at stride is (in) and os (out):
 *   Bᵀ d = (4d0 − 5d2 + d4, −4(d1 + d2) + d3 + d4, 4(d1 − d2) − d3 + d4,
 *           2(d3 − d1) − d2 + d4, 2(d1 − d3) − d2 + d4, 4d1 − 5d3 + d5)
 *   A g  = (g0, g0 + g1 + g2 + g3, g0 − g1 + g2 − g3,
 *           g0 + 2g1 + 4g2 + 8g3, g0 − 2g1 + 4g2 − 8g3, g3)
 *   Aᵀ m = (m0 + m1 + m2 + m3 + m4, m1 − m2 + 2(m3 − m4),
 *           m1 + m2 + 4(m3 + m4), m1 − m2 + 8(m3 − m4) + m5) */
static inline void bt6(const vec *d, int is, vec *o, int os) {
  const vec d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is], d4 = d[4 * is], d5 = d[5 * is];
  const tg_real four = 4, five = 5, two = 2;
  o[0] = four * d0 - five * d2 + d4;
  o[os] = (d3 + d4) - four * (d1 + d2);
  o[2 * os] = four * (d1 - d2) + (d4 - d3);
  o[3 * os] = two * (d3 - d1) + (d4 - d2);
  o[4 * os] = two * (d1 - d3) + (d4 - d2);
  o[5 * os] = four * d1 - five * d3 + d5;
}

static inline void a4(const vec *g, int is, vec *o, int os) {
  const vec g0 = g[0], g1 = g[is], g2 = g[2 * is], g3 = g[3 * is];
  const tg_real two = 2, four = 4, eight = 8;
  const vec e = g0 + g2, f = g1 + g3, e4 = g0 + four * g2, f4 = two * g1 + eight * g3;
  o[0] = g0;
  o[os] = e + f;
  o[2 * os] = e - f;
  o[3 * os] = e4 + f4;
  o[4 * os] = e4 - f4;
  o[5 * os] = g3;
}

static inline void at6(const vec *m, int is, vec *o, int os) {
  const tg_real two = 2, four = 4, eight = 8;
  const vec p = m[is] + m[2 * is], q = m[is] - m[2 * is];
  const vec r = m[3 * is] + m[4 * is], s = m[3 * is] - m[4 * is];
  o[0] = m[0] + p + r;
  o[os] = q + two * s;
  o[2 * os] = p + four * r;
  o[3 * os] = q + eight * s + m[5 * is];
}

/* Each transform runs its first pass on rows as it loads them and its
 * second on columns as it stores them: the intermediate (A or m rows of
 * vectors) is all that stays live. (Loading the whole tile into an array
 * first, then transforming array to array, kept three tiles of vectors
 * on the stack: input_tf spent more time copying them than computing.)
 * The operations and their order are those of the 2-D formulas, so the
 * bits are the same either way. A chunk of w = WG_VL channels (all but
 * the last when the channels are not a multiple of WG_VL) is inlined
 * with w constant, so its loads and stores are single vector moves. */

/* Bᵀ D B of one tile's chunk: s the tile's corner (rows rs apart,
 * columns C apart) into d[ξ·ldv]. */
INLINE void input_chunk(const tg_real *s, int64_t rs, int64_t C, tg_real *d, int64_t ldv, int w) {
  vec t[WG_A2]; /* D B, [r·A + q] */
  for (int r = 0; r < WG_A; r++) {
    vec in[WG_A];
    for (int q = 0; q < WG_A; q++)
      vload_part(&in[q], s + r * rs + q * C, w);
    bt6(in, 1, t + r * WG_A, 1);
  }
  for (int q = 0; q < WG_A; q++) { /* columns: Bᵀ (D B) */
    vec o[WG_A];
    bt6(t + q, WG_A, o, 1);
    for (int r = 0; r < WG_A; r++)
      vstore_part(d + (r * WG_A + q) * ldv, &o[r], w);
  }
}

/* Bᵀ D B for every tile of one image xp (hp, wp, C) into v[ξ·ldv + t·C]. */
TRANSFORM static void input_tf(const wg_job *j, const tg_real *restrict xp, tg_real *restrict v,
                               int64_t ldv) {
  const int64_t C = j->cin, rs = j->wp * C;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *s = xp + (ty * WG_M * j->wp + tx * WG_M) * C;
      tg_real *d = v + (ty * j->tw + tx) * C;
      int64_t c0 = 0;
      for (; c0 + WG_VL <= C; c0 += WG_VL)
        input_chunk(s + c0, rs, C, d + c0, ldv, WG_VL);
      if (c0 < C)
        input_chunk(s + c0, rs, C, d + c0, ldv, (int)(C - c0));
    }
}

/* A dy Aᵀ of one m×m block's chunk: s its corner (rows rs apart, columns
 * K apart) into d[ξ·ldm]. */
INLINE void grad_chunk(const tg_real *s, int64_t rs, int64_t K, tg_real *d, int64_t ldm, int w) {
  vec t[WG_M * WG_A]; /* dy Aᵀ, (m, A) */
  for (int r = 0; r < WG_M; r++) {
    vec in[WG_M];
    for (int q = 0; q < WG_M; q++)
      vload_part(&in[q], s + r * rs + q * K, w);
    a4(in, 1, t + r * WG_A, 1);
  }
  for (int q = 0; q < WG_A; q++) { /* columns: A (dy Aᵀ) */
    vec o[WG_A];
    a4(t + q, WG_A, o, 1);
    for (int r = 0; r < WG_A; r++)
      vstore_part(d + (r * WG_A + q) * ldm, &o[r], w);
  }
}

/* conv_grad_w: A dy Aᵀ for every m×m block of one image of dy, dp (th·m,
 * tw·m, FN), zero past its edges, into m[ξ·ldm + t·FN]. */
TRANSFORM static void grad_tf(const wg_job *j, const tg_real *restrict dp, tg_real *restrict m,
                              int64_t ldm) {
  const int64_t K = j->cout, wq = j->tw * WG_M, rs = wq * K;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *s = dp + (ty * WG_M * wq + tx * WG_M) * K;
      tg_real *d = m + (ty * j->tw + tx) * K;
      int64_t k0 = 0;
      for (; k0 + WG_VL <= K; k0 += WG_VL)
        grad_chunk(s + k0, rs, K, d + k0, ldm, WG_VL);
      if (k0 < K)
        grad_chunk(s + k0, rs, K, d + k0, ldm, (int)(K - k0));
    }
}

/* Aᵀ M A + b of one tile's chunk: s[ξ·ldm] into the m×m block at d (rows
 * rs apart, columns K apart). */
INLINE void output_chunk(const tg_real *s, int64_t ldm, const tg_real *bias, tg_real *d, int64_t rs,
                         int64_t K, int w) {
  vec t[WG_A * WG_M], b; /* M A, (A, m) */
  vload_part(&b, bias, w);
  for (int r = 0; r < WG_A; r++) {
    vec in[WG_A];
    for (int q = 0; q < WG_A; q++)
      vload_part(&in[q], s + (r * WG_A + q) * ldm, w);
    at6(in, 1, t + r * WG_M, 1);
  }
  for (int q = 0; q < WG_M; q++) { /* columns: Aᵀ (M A) */
    vec o[WG_M];
    at6(t + q, WG_M, o, 1);
    for (int r = 0; r < WG_M; r++) {
      const vec y = o[r] + b;
      vstore_part(d + r * rs + q * K, &y, w);
    }
  }
}

/* Aᵀ M A + bias for every tile of one image, m[ξ·ldm + t·K], into yp
 * (th·m, tw·m, K). */
TRANSFORM static void output_tf(const wg_job *j, const tg_real *restrict m, int64_t ldm,
                                tg_real *restrict yp) {
  const int64_t K = j->cout, rs = j->tw * WG_M * K;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *s = m + (ty * j->tw + tx) * K;
      tg_real *d = yp + ty * WG_M * rs + tx * WG_M * K;
      int64_t k0 = 0;
      for (; k0 + WG_VL <= K; k0 += WG_VL)
        output_chunk(s + k0, ldm, j->bias + k0, d + k0, rs, K, WG_VL);
      if (k0 < K)
        output_chunk(s + k0, ldm, j->bias + k0, d + k0, rs, K, (int)(K - k0));
    }
}

/* The filter transform G (A, 3) (interpolation points 0, −1, 1, 1/2,
 * −1/2, ∞, Lavin and Gray's) on three vectors g, and its transpose Gᵀ
 * (3, A) on six, m, at stride is (in) and os (out):
 *   G g  = (g0/4, −(g0 + g1 + g2)/6, −(g0 − g1 + g2)/6,
 *           g0/24 + g1/12 + g2/6, g0/24 − g1/12 + g2/6, g2)
 *   Gᵀ m = (m0/4 − (m1 + m2)/6 + (m3 + m4)/24, (m2 − m1)/6 + (m3 − m4)/12,
 *           (m3 + m4 − m1 − m2)/6 + m5) */
static inline void g3(const vec *g, int is, vec *o, int os) {
  const tg_real k4 = (tg_real)1 / 4, k6 = (tg_real)1 / 6, k12 = (tg_real)1 / 12;
  const tg_real k24 = (tg_real)1 / 24;
  const vec g0 = g[0], g1 = g[is], g2 = g[2 * is], e = g0 + g2;
  const vec p = k24 * g0 + k6 * g2, q = k12 * g1;
  o[0] = k4 * g0;
  o[os] = -k6 * (e + g1);
  o[2 * os] = -k6 * (e - g1);
  o[3 * os] = p + q;
  o[4 * os] = p - q;
  o[5 * os] = g2;
}

static inline void gt6(const vec *m, int is, vec *o, int os) {
  const tg_real k4 = (tg_real)1 / 4, k6 = (tg_real)1 / 6, k12 = (tg_real)1 / 12;
  const tg_real k24 = (tg_real)1 / 24;
  const vec p = m[is] + m[2 * is], q = m[2 * is] - m[is];
  const vec r = m[3 * is] + m[4 * is], s = m[3 * is] - m[4 * is];
  o[0] = k4 * m[0] - k6 * p + k24 * r;
  o[os] = k6 * q + k12 * s;
  o[2 * os] = k6 * (r - p) + m[5 * is];
}

/* U (A², ld) = G g Gᵀ for the filters taps (9, ld), each column e one
 * filter's taps in row-major order: columns [e0, e1). */
TRANSFORM static void filters_tf(const tg_real *restrict taps, tg_real *restrict u, int64_t ld,
                                 int64_t e0, int64_t e1) {
  for (; e0 < e1; e0 += WG_VL) {
    const int w = (int)min64(WG_VL, e1 - e0);
    vec in[9], t[WG_A * 3], o[WG_A2];
    for (int x = 0; x < 9; x++)
      vload_part(&in[x], taps + x * ld + e0, w);
    for (int b = 0; b < 3; b++) /* columns: G g, (A, 3) */
      g3(in + b, 3, t + b, 3);
    for (int a = 0; a < WG_A; a++) /* rows: (G g) Gᵀ */
      g3(t + a * 3, 1, o + a * WG_A, 1);
    for (int x = 0; x < WG_A2; x++)
      vstore_part(u + x * ld + e0, &o[x], w);
  }
}

/* The filters W (FN, C, 3, 3) transformed: for conv, U_ξ (C, FN); for
 * conv_grad_x, U_ξ (FN, C) from W rotated by 180°. taps (9, cin·cout)
 * is scratch. Columns e = i·cout + o in [e0, e1), a chunk of
 * tg_parallel_for (on the calling thread alone they idled the other
 * thread as long as a small layer's products took). */
typedef struct filters_job {
  const wg_job *j;
  const tg_real *w;
  tg_real *u, *taps;
} filters_job;

static void filters(void *ctx, int64_t e0, int64_t e1) {
  const filters_job *f = ctx;
  const wg_job *j = f->j;
  const int64_t ld = j->cout * j->cin;
  for (int64_t e = e0; e < e1; e++) {
    const int64_t i = e / j->cout, o = e % j->cout;
    for (int x = 0; x < 9; x++)
      f->taps[x * ld + e] = j->kind == TG_WG_Y ? f->w[(o * j->cin + i) * 9 + x] /* W[o, i] */
                                               : f->w[(i * j->cout + o) * 9 + 8 - x];
  }
  filters_tf(f->taps, f->u, ld, e0, e1);
}

/* dW (FN, C, 3, 3) = Gᵀ M G for M (A², FN, C), through taps (9, FN·C). */
TRANSFORM static void grad_w_out(const wg_job *j, const tg_real *restrict m, tg_real *restrict taps,
                                 tg_real *restrict dw) {
  const int64_t rc = j->cout * j->cin;
  for (int64_t e0 = 0; e0 < rc; e0 += WG_VL) {
    const int w = (int)min64(WG_VL, rc - e0);
    vec in[WG_A2], t[3 * WG_A], o[9];
    for (int x = 0; x < WG_A2; x++)
      vload_part(&in[x], m + x * rc + e0, w);
    for (int q = 0; q < WG_A; q++) /* columns: Gᵀ M, (3, A) */
      gt6(in + q, WG_A, t + q, WG_A);
    for (int a = 0; a < 3; a++) /* rows: (Gᵀ M) G */
      gt6(t + a * WG_A, 1, o + a * 3, 1);
    for (int x = 0; x < 9; x++)
      vstore_part(taps + x * rc + e0, &o[x], w);
  }
  for (int64_t e = 0; e < rc; e++)
    for (int x = 0; x < 9; x++)
      dw[e * 9 + x] = taps[x * rc + e];
}

/* ------------------------------------------------------------------------
 * Blocks */

/* Block q: its images' tiles transformed, multiplied and (conv, conv_grad_x)
 * transformed back into out, or (conv_grad_w) added to the partial sum
 * mw (A², FN, C), first = 1 for the group's first block. */
static void run_block(const wg_job *j, int64_t q, tg_real *buf, tg_real *mw, int first) {
  const int64_t t1 = j->th * j->tw, n0 = q * j->ipb, n1 = min64(j->n, n0 + j->ipb);
  const int64_t nb = (n1 - n0) * t1; /* tiles in this block */
  const int last = q == j->blocks - 1 && nb != j->ipb * t1;
  const int64_t cin = j->cin, cout = j->cout, wq = j->tw * WG_M;
  const int64_t ldv = nb * cin, ldm = nb * cout;
  tg_real *v = buf;                 /* (A², nb, cin) */
  tg_real *m = v + WG_A2 * ldv;     /* (A², nb, cout) */
  tg_real *plane = m + WG_A2 * ldm; /* (hp, wp, cin) or (th·m, tw·m, cout) */
  /* (h·w, cin) or (oh·ow, cout); with pool, dy_n pooled channels last */
  tg_real *tmp = plane + j->plane;
  /* with pool: y_n (cout, oh·ow), or arg_n pooled channels last */
  tg_real *full = tmp + max64(j->h * j->w * cin, j->oh * j->ow * cout);
  const int64_t pooled = j->pool ? cout * (j->oh / j->pool) * (j->ow / j->pool) : 0;
  const int64_t pin = j->pool ? cin * (j->h / j->pool) * (j->w / j->pool) : 0;
  for (int64_t n = n0; n < n1; n++) {
    if (j->pool && j->kind == TG_WG_DX) /* dy_n at its windows' maxima */
      pooled_to_channels_last(j->in + n * pin, j->arg + n * pin, cin, j->h, j->w, j->pool, tmp,
                              full, plane, j->pad, j->pad, j->hp, j->wp);
    else
      to_channels_last(j->in + n * cin * j->h * j->w, cin, j->h, j->w, tmp, plane, j->pad, j->pad,
                       j->hp, j->wp);
    input_tf(j, plane, v + (n - n0) * t1 * cin, ldv);
  }
  const int64_t pout = j->oh * j->ow;
  if (j->kind != TG_WG_DW) {
    for (int x = 0; x < WG_A2; x++) /* M_ξ (nb, cout) = V_ξ (nb, cin)·U_ξ (cin, cout) */
      tg_gemm_run(&j->mm[last][0], v + x * ldv, j->u + x * cin * cout, m + x * ldm);
    for (int64_t n = n0; n < n1; n++) {
      output_tf(j, m + (n - n0) * t1 * cout, ldm, plane);
      if (j->kind == TG_WG_Y && j->pool == 2 && !j->relu) { /* pooled, then transposed */
        pool_2x2_cl(plane, cout, j->oh, j->ow, wq, tmp, full);
        const libxsmm_blasint c = (libxsmm_blasint)cout, p = (libxsmm_blasint)(pooled / cout);
        libxsmm_otrans(j->out + n * pooled, tmp, sizeof(tg_real), c, p, c, p);
        libxsmm_otrans(j->arg + n * pooled, full, sizeof(tg_real), c, p, c, p);
        continue;
      }
      /* valid (oh·ow, cout): the plane's first oh rows when its width is
       * ow (the tiles cover it exactly), else those rows' first ow
       * columns copied */
      const tg_real *valid = plane;
      if (wq != j->ow) {
        for (int64_t r = 0; r < j->oh; r++)
          memcpy(tmp + r * j->ow * cout, plane + r * wq * cout,
                 (size_t)(j->ow * cout) * sizeof *tmp);
        valid = tmp;
      }
      /* y_n (cout, oh·ow) = validᵀ (column-major: cout × oh·ow) */
      const int pool = j->pool && j->kind == TG_WG_Y;
      tg_real *y = pool ? full : j->out + n * cout * pout;
      libxsmm_otrans(y, valid, sizeof(tg_real), (libxsmm_blasint)cout, (libxsmm_blasint)pout,
                     (libxsmm_blasint)cout, (libxsmm_blasint)pout);
      if (j->relu)
        tg_relu_inplace(y, cout * pout); /* while y_n is in cache */
      if (pool)
        tg_max_pool_planes(y, cout, j->oh, j->ow, j->pool, j->out + n * pooled,
                           j->arg + n * pooled);
    }
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    if (j->pool) /* dy_n at its windows' maxima */
      pooled_to_channels_last(j->dy + n * pooled, j->arg + n * pooled, cout, j->oh, j->ow, j->pool,
                              tmp, full, plane, 0, 0, j->th * WG_M, wq);
    else
      to_channels_last(j->dy + n * cout * pout, cout, j->oh, j->ow, tmp, plane, 0, 0, j->th * WG_M,
                       wq);
    grad_tf(j, plane, m + (n - n0) * t1 * cout, ldm);
  }
  for (int x = 0; x < WG_A2; x++) /* mw_ξ (FN, C) (+)= M_ξᵀ (FN, nb)·V_ξ (nb, C) */
    tg_gemm_run(&j->mm[last][!first], m + x * ldm, v + x * ldv, mw + x * cout * cin);
}

/* Thread tid of nth: its share of the blocks (of the groups for dW). */
/* This thread's scratch (a slot per thread that may run). */
static tg_real *thread_buf(const wg_job *j) {
  return j->scratch + (j->nth > 1 ? omp_get_thread_num() : 0) * j->per_thread;
}

/* Blocks [q0, q1) of the forward or dX (each writes only its own images). */
static void wg_blocks(void *ctx, int64_t q0, int64_t q1) {
  const wg_job *j = ctx;
  tg_real *buf = thread_buf(j);
  for (int64_t q = q0; q < q1; q++)
    run_block(j, q, buf, NULL, 0);
}

/* dW groups [g0, g1): each sums its fixed run of blocks into its own part,
 * so the sum does not depend on which thread ran which group. */
static void wg_groups(void *ctx, int64_t g0, int64_t g1) {
  const wg_job *j = ctx;
  tg_real *buf = thread_buf(j);
  const int64_t size = WG_A2 * j->cout * j->cin;
  for (int64_t g = g0; g < g1; g++) {
    const int64_t q0 = j->blocks * g / j->groups, q1 = j->blocks * (g + 1) / j->groups;
    for (int64_t q = q0; q < q1; q++)
      run_block(j, q, buf, j->part + g * size, q == q0);
  }
}

/* part (groups, size): part[0] += part[1] + ... in group order, each
 * element's sum the same whichever chunk of elements [e0, e1) it is in. */
TRANSFORM static void sum_groups(tg_real *restrict part, int64_t groups, int64_t size, int64_t e0,
                                 int64_t e1) {
  for (int64_t g = 1; g < groups; g++)
    for (int64_t e = e0; e < e1; e++)
      part[e] += part[g * size + e];
}

static void sum_chunk(void *ctx, int64_t e0, int64_t e1) {
  const wg_job *j = ctx;
  sum_groups(j->part, j->groups, WG_A2 * j->cout * j->cin, e0, e1);
}

int tg_winograd_conv(tg_tape *tape, const tg_op *op, int kind, const int64_t *xs, int64_t fn,
                     int64_t pad, const tg_real *x, const tg_real *w, const tg_real *dy,
                     const tg_real *bias, int relu, int64_t pool, tg_real *arg, tg_real *out) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  wg_job j = {
      .kind = kind, .n = N, .bias = kind == TG_WG_Y ? bias : NULL, .relu = relu, .out = out};
  j.pool = pool, j.arg = arg;
  if (kind == TG_WG_DX) /* a convolution of dy back to (H, W) */
    j.cin = fn, j.cout = C, j.h = OH, j.w = OW, j.pad = 2 - pad, j.oh = H, j.ow = W, j.in = dy;
  else
    j.cin = C, j.cout = fn, j.h = H, j.w = W, j.pad = pad, j.oh = OH, j.ow = OW, j.in = x;
  j.dy = dy;
  j.th = (j.oh + WG_M - 1) / WG_M, j.tw = (j.ow + WG_M - 1) / WG_M;
  j.hp = j.th * WG_M + 2, j.wp = j.tw * WG_M + 2;
  const int64_t t1 = j.th * j.tw;
  /* whole images per block, as many as fit WG_BLOCK_BYTES */
  const int64_t per_tile = WG_A2 * (j.cin + j.cout) * (int64_t)sizeof(tg_real);
  j.ipb = min64(N, max64(1, WG_BLOCK_BYTES / (per_tile * t1)));
  j.blocks = (N + j.ipb - 1) / j.ipb;
  const int64_t nb = j.ipb * t1, nb_last = (N - (j.blocks - 1) * j.ipb) * t1;
  int ok = 1;
  for (int l = 0; l < 2; l++) {
    const int64_t b = l ? nb_last : nb;
    if (kind != TG_WG_DW)
      ok = ok && tg_gemm_plan(&j.mm[l][0], 0, b, j.cout, j.cin, 0);
    else
      ok = ok && tg_gemm_plan(&j.mm[l][0], 1, j.cout, j.cin, b, 0) &&
           tg_gemm_plan(&j.mm[l][1], 1, j.cout, j.cin, b, 1);
  }
  if (!ok) {
    tg_op_fail(tape, op, TG_ERR_SHAPE, "a product dimension exceeds 2^31-1");
    return 0;
  }
  const double flops = 2.0 * 9 * (double)N * (double)C * (double)fn * (double)(OH * OW);
  /* tg_parallel_for's rule, as in conv.c: 5e6 flops are worth a thread. */
  const int64_t work = (int64_t)(flops / 5e6 * TG_PAR_MIN);
  const int nth = j.nth = omp_in_parallel() || work < TG_PAR_MIN ? 1 : tg_threads();
  j.plane = max64(j.hp * j.wp * j.cin, j.th * WG_M * j.tw * WG_M * j.cout);
  j.per_thread = WG_A2 * (j.cin + j.cout) * nb + j.plane +
                 max64(j.h * j.w * j.cin, j.oh * j.ow * j.cout) +
                 (pool ? max64(j.oh * j.ow * j.cout, j.h * j.w * j.cin) : 0);
  tg_tensor *s = tg_empty(tape, (int64_t[]){nth, j.per_thread}, 2);
  if (!s)
    return 0;
  j.scratch = s->data;
  if (kind != TG_WG_DW) {
    /* U (A², cin, cout), taps (9, cin·cout), zeros (cout,) */
    tg_tensor *u = tg_empty(tape, (int64_t[]){(WG_A2 + 9) * j.cin * j.cout + j.cout}, 1);
    if (!u)
      return 0;
    /* columns in chunks of whole vectors; ~100 operations per column */
    const int64_t ld = j.cin * j.cout;
    tg_parallel_for(ld, 16 * WG_VL, 100 * ld, filters,
                    &(filters_job){&j, w, u->data, u->data + WG_A2 * ld});
    j.u = u->data;
    tg_real *zero = u->data + (WG_A2 + 9) * j.cin * j.cout;
    if (!j.bias) {
      memset(zero, 0, (size_t)j.cout * sizeof *zero);
      j.bias = zero;
    }
  } else {
    j.groups = min64(j.blocks, WG_GROUPS);
    /* the partial sums, then taps (9, FN·C) for grad_w_out */
    tg_tensor *t = tg_empty(tape, (int64_t[]){j.groups * WG_A2 * fn * C + 9 * fn * C}, 1);
    if (!t)
      return 0;
    j.part = t->data;
  }
  if (kind == TG_WG_DW)
    tg_parallel_for(j.groups, 1, work, wg_groups, &j);
  else
    tg_parallel_for(j.blocks, 1, work, wg_blocks, &j);
  if (kind == TG_WG_DW) { /* Σ_g part_g in group order, then Gᵀ M G */
    const int64_t size = WG_A2 * fn * C;
    tg_parallel_for(size, TG_GRAIN, size * j.groups, sum_chunk, &j);
    grad_w_out(&j, j.part, j.part + j.groups * size, out);
  }
  return 1;
}
