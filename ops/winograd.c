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
 *
 * This file must not record anything on the tape (the ops in conv.c do,
 * and their rules give every derivative) nor allocate from the system:
 * scratch comes from the arena.
 */
#include <libxsmm.h>
#include <omp.h>
#include <string.h>

#include "gemm.h"
#include "winograd.h"

/* F(2×2, 3×3): output blocks of m = 2, input tiles of A = 4. It
 * multiplies 2.25x less than direct convolution and its transforms hold
 * only 0, ±1 and ±1/2, so it rounds about as direct convolution does;
 * F(4×4, 3×3) multiplies 4x less but its constants reach 8 and 1/24. */
#define WG_M  2
#define WG_A  (WG_M + 2)
#define WG_A2 (WG_A * WG_A)

/* Transformed tiles and products of one block: at most this many bytes
 * (in L2 with room for the filters). */
#define WG_BLOCK_BYTES (384 * 1024)
/* conv_grad_w's partial sums (as conv.c's CONV_GROUPS). */
#define WG_GROUPS 8

/* The filter transform G (A, 3) (interpolation points 0, 1, −1, ∞) and
 * its transpose GT (3, A); the input and output transforms are written
 * out below. */
static const tg_real G[WG_A][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const tg_real GT[3][WG_A] = {{1, 0.5, 0.5, 0}, {0, 0.5, -0.5, 0}, {0, 0.5, 0.5, 1}};

/* The transforms work on channels-last copies of the planes ((rows,
 * columns, channels), made by libxsmm's transpose kernels), the loop over
 * channels innermost and vectorised (omp simd: without it GCC gives up on
 * the sixteen streams). AVX2 clones as in conv.c (the build targets plain
 * x86-64). */
#define TRANSFORM __attribute__((target_clones("avx2", "default")))

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Σ_i k[i]·x[i] for short constant rows k. */
static tg_real dot(const tg_real *k, const tg_real *x, int n) {
  tg_real acc = 0;
  for (int i = 0; i < n; i++)
    acc += k[i] * x[i];
  return acc;
}

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

/* U (A², cin, cout) at [ξ][i][o] = (G g Gᵀ)_ξ for the filter g (3×3) at
 * strides (gs_row, gs_col) between its taps. */
static void filter_tf(const tg_real *g, int64_t gs_row, int64_t gs_col, tg_real *u, int64_t ld) {
  tg_real t[WG_A][3];
  for (int i = 0; i < WG_A; i++)
    for (int b = 0; b < 3; b++)
      t[i][b] = G[i][0] * g[b * gs_col] + G[i][1] * g[gs_row + b * gs_col] +
                G[i][2] * g[2 * gs_row + b * gs_col];
  for (int i = 0; i < WG_A; i++)
    for (int j = 0; j < WG_A; j++)
      u[(i * WG_A + j) * ld] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
}

/* The filters W (FN, C, 3, 3) transformed: for conv, U_ξ (C, FN); for
 * conv_grad_x, U_ξ (FN, C) from W rotated by 180°. */
static void filters(const wg_job *j, const tg_real *w, tg_real *u) {
  const int64_t ld = j->cout * j->cin;
  for (int64_t i = 0; i < j->cin; i++)
    for (int64_t o = 0; o < j->cout; o++) {
      tg_real *dst = u + i * j->cout + o;
      if (j->kind == TG_WG_Y) /* W[o, i] */
        filter_tf(w + (o * j->cin + i) * 9, 3, 1, dst, ld);
      else /* W[i, o, 2 − a, 2 − b] */
        filter_tf(w + (i * j->cout + o) * 9 + 8, -3, -1, dst, ld);
    }
}

/* The planes src (ch, rows, cols) into dst (·, ld, ch) from row r0,
 * column c0 on (channels last; the rest of dst is the caller's), through
 * tmp (rows·cols, ch): one libxsmm transpose per image, not one per row
 * (its dispatch costs as much as a short row). */
static void to_channels_last(const tg_real *src, int64_t ch, int64_t rows, int64_t cols,
                             tg_real *tmp, tg_real *dst, int64_t r0, int64_t c0, int64_t ld) {
  const int64_t p = rows * cols; /* column-major: a p × ch matrix */
  libxsmm_otrans(tmp, src, sizeof(tg_real), (libxsmm_blasint)p, (libxsmm_blasint)ch,
                 (libxsmm_blasint)p, (libxsmm_blasint)ch);
  for (int64_t r = 0; r < rows; r++)
    memcpy(dst + ((r0 + r) * ld + c0) * ch, tmp + r * cols * ch, (size_t)(cols * ch) * sizeof *dst);
}

/* The transforms of F(2×2, 3×3) written out in scalars, so that the
 * compiler vectorises the loops over channels around them. In one
 * dimension: Bᵀ d = (d0 − d2, d1 + d2, d2 − d1, d1 − d3); A g = (g0, g0 +
 * g1, g0 − g1, −g1) (conv_grad_w's dy); Aᵀ m = (m0 + m1 + m2, m1 − m2 −
 * m3). X(r, q) reads row r, column q of the tile; BT4 applies Bᵀ to four
 * values into o0..o3. */
#define BT4(o, d0, d1, d2, d3)                                                                     \
  const tg_real o##0 = (d0) - (d2), o##1 = (d1) + (d2), o##2 = (d2) - (d1), o##3 = (d1) - (d3)
#define A2(o, g0, g1)                                                                              \
  const tg_real o##0 = (g0), o##1 = (g0) + (g1), o##2 = (g0) - (g1), o##3 = -(g1)
#define AT4(o, m0, m1, m2, m3) const tg_real o##0 = (m0) + (m1) + (m2), o##1 = (m1) - (m2) - (m3)

/* Bᵀ D B for every tile of one image xp (hp, wp, C) into v[ξ·ldv + t·C]. */
TRANSFORM static void input_tf(const wg_job *j, const tg_real *restrict xp, tg_real *restrict v,
                               int64_t ldv) {
  const int64_t C = j->cin, rs = j->wp * C;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *restrict s = xp + (ty * WG_M * j->wp + tx * WG_M) * C;
      tg_real *restrict d = v + (ty * j->tw + tx) * C;
#define X(r, q) s[(r)*rs + (q)*C + c]
#pragma omp simd simdlen(8)
      for (int64_t c = 0; c < C; c++) {
        BT4(a, X(0, 0), X(0, 1), X(0, 2), X(0, 3)); /* rows: D B */
        BT4(b, X(1, 0), X(1, 1), X(1, 2), X(1, 3));
        BT4(e, X(2, 0), X(2, 1), X(2, 2), X(2, 3));
        BT4(f, X(3, 0), X(3, 1), X(3, 2), X(3, 3));
        BT4(o0, a0, b0, e0, f0); /* columns: Bᵀ (D B) */
        BT4(o1, a1, b1, e1, f1);
        BT4(o2, a2, b2, e2, f2);
        BT4(o3, a3, b3, e3, f3);
        d[0 * ldv + c] = o00, d[1 * ldv + c] = o10, d[2 * ldv + c] = o20, d[3 * ldv + c] = o30;
        d[4 * ldv + c] = o01, d[5 * ldv + c] = o11, d[6 * ldv + c] = o21, d[7 * ldv + c] = o31;
        d[8 * ldv + c] = o02, d[9 * ldv + c] = o12, d[10 * ldv + c] = o22, d[11 * ldv + c] = o32;
        d[12 * ldv + c] = o03, d[13 * ldv + c] = o13, d[14 * ldv + c] = o23;
        d[15 * ldv + c] = o33;
      }
#undef X
    }
}

/* conv_grad_w: A dy Aᵀ for every m×m block of one image of dy, dp (th·m,
 * tw·m, FN), zero past its edges, into m[ξ·ldm + t·FN]. */
TRANSFORM static void grad_tf(const wg_job *j, const tg_real *restrict dp, tg_real *restrict m,
                              int64_t ldm) {
  const int64_t K = j->cout, wq = j->tw * WG_M, rs = wq * K;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *restrict s = dp + (ty * WG_M * wq + tx * WG_M) * K;
      tg_real *restrict d = m + (ty * j->tw + tx) * K;
#pragma omp simd simdlen(8)
      for (int64_t k = 0; k < K; k++) {
        A2(a, s[k], s[K + k]); /* rows: dy Aᵀ */
        A2(b, s[rs + k], s[rs + K + k]);
        A2(o0, a0, b0); /* columns: A (dy Aᵀ) */
        A2(o1, a1, b1);
        A2(o2, a2, b2);
        A2(o3, a3, b3);
        d[0 * ldm + k] = o00, d[1 * ldm + k] = o10, d[2 * ldm + k] = o20, d[3 * ldm + k] = o30;
        d[4 * ldm + k] = o01, d[5 * ldm + k] = o11, d[6 * ldm + k] = o21, d[7 * ldm + k] = o31;
        d[8 * ldm + k] = o02, d[9 * ldm + k] = o12, d[10 * ldm + k] = o22, d[11 * ldm + k] = o32;
        d[12 * ldm + k] = o03, d[13 * ldm + k] = o13, d[14 * ldm + k] = o23;
        d[15 * ldm + k] = o33;
      }
    }
}

/* Aᵀ M A + bias for every tile of one image, m[ξ·ldm + t·K], into yp
 * (th·m, tw·m, K). */
TRANSFORM static void output_tf(const wg_job *j, const tg_real *restrict m, int64_t ldm,
                                tg_real *restrict yp) {
  const int64_t K = j->cout, rs = j->tw * WG_M * K;
  const tg_real *restrict bias = j->bias;
  for (int64_t ty = 0; ty < j->th; ty++)
    for (int64_t tx = 0; tx < j->tw; tx++) {
      const tg_real *restrict s = m + (ty * j->tw + tx) * K;
      tg_real *restrict d = yp + ty * WG_M * rs + tx * WG_M * K;
#define M(i, q) s[((i)*WG_A + (q)) * ldm + k]
#pragma omp simd simdlen(8)
      for (int64_t k = 0; k < K; k++) {
        AT4(a, M(0, 0), M(0, 1), M(0, 2), M(0, 3)); /* rows: M A */
        AT4(b, M(1, 0), M(1, 1), M(1, 2), M(1, 3));
        AT4(e, M(2, 0), M(2, 1), M(2, 2), M(2, 3));
        AT4(f, M(3, 0), M(3, 1), M(3, 2), M(3, 3));
        AT4(o0, a0, b0, e0, f0); /* columns: Aᵀ (M A) */
        AT4(o1, a1, b1, e1, f1);
        d[k] = o00 + bias[k], d[K + k] = o10 + bias[k]; /* o<column><row> */
        d[rs + k] = o01 + bias[k], d[rs + K + k] = o11 + bias[k];
      }
#undef M
    }
}

/* dW (FN, C, 3, 3) = Gᵀ M G for M (A², FN, C). */
static void grad_w_out(const wg_job *j, const tg_real *m, tg_real *dw) {
  const int64_t rc = j->cout * j->cin;
  for (int64_t e = 0; e < rc; e++) {
    tg_real in[WG_A][WG_A], t[3][WG_A];
    for (int i = 0; i < WG_A; i++)
      for (int c = 0; c < WG_A; c++)
        in[c][i] = m[(i * WG_A + c) * rc + e]; /* transposed */
    for (int a = 0; a < 3; a++)
      for (int c = 0; c < WG_A; c++)
        t[a][c] = dot(GT[a], in[c], WG_A); /* (Gᵀ M)[a][c] */
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++)
        dw[e * 9 + a * 3 + b] = dot(GT[b], t[a], WG_A);
  }
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
  tg_real *tmp = plane + j->plane;  /* (h·w, cin) or (oh·ow, cout) */
  for (int64_t n = n0; n < n1; n++) {
    memset(plane, 0, (size_t)(j->hp * j->wp * cin) * sizeof *plane);
    to_channels_last(j->in + n * cin * j->h * j->w, cin, j->h, j->w, tmp, plane, j->pad, j->pad,
                     j->wp);
    input_tf(j, plane, v + (n - n0) * t1 * cin, ldv);
  }
  const int64_t pout = j->oh * j->ow;
  if (j->kind != TG_WG_DW) {
    for (int x = 0; x < WG_A2; x++) /* M_ξ (nb, cout) = V_ξ (nb, cin)·U_ξ (cin, cout) */
      tg_gemm_run(&j->mm[last][0], v + x * ldv, j->u + x * cin * cout, m + x * ldm);
    for (int64_t n = n0; n < n1; n++) {
      output_tf(j, m + (n - n0) * t1 * cout, ldm, plane);
      for (int64_t r = 0; r < j->oh; r++) /* tmp (oh·ow, cout): the valid part */
        memcpy(tmp + r * j->ow * cout, plane + r * wq * cout, (size_t)(j->ow * cout) * sizeof *tmp);
      /* y_n (cout, oh·ow) = tmpᵀ (column-major: cout × oh·ow) */
      libxsmm_otrans(j->out + n * cout * pout, tmp, sizeof(tg_real), (libxsmm_blasint)cout,
                     (libxsmm_blasint)pout, (libxsmm_blasint)cout, (libxsmm_blasint)pout);
      if (j->relu)
        tg_relu_inplace(j->out + n * cout * pout, cout * pout); /* while y_n is in cache */
    }
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    memset(plane, 0, (size_t)(j->th * WG_M * wq * cout) * sizeof *plane);
    to_channels_last(j->dy + n * cout * pout, cout, j->oh, j->ow, tmp, plane, 0, 0, wq);
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

int tg_winograd_conv(tg_tape *tape, const tg_op *op, int kind, const int64_t *xs, int64_t fn,
                     int64_t pad, const tg_real *x, const tg_real *w, const tg_real *dy,
                     const tg_real *bias, int relu, tg_real *out) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  wg_job j = {
      .kind = kind, .n = N, .bias = kind == TG_WG_Y ? bias : NULL, .relu = relu, .out = out};
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
  j.per_thread =
      WG_A2 * (j.cin + j.cout) * nb + j.plane + max64(j.h * j.w * j.cin, j.oh * j.ow * j.cout);
  tg_tensor *s = tg_empty(tape, (int64_t[]){nth, j.per_thread}, 2);
  if (!s)
    return 0;
  j.scratch = s->data;
  if (kind != TG_WG_DW) {
    tg_tensor *u = tg_empty(tape, (int64_t[]){WG_A2 * j.cin * j.cout + j.cout}, 1);
    if (!u)
      return 0;
    filters(&j, w, u->data);
    j.u = u->data;
    tg_real *zero = u->data + WG_A2 * j.cin * j.cout; /* (cout,) */
    if (!j.bias) {
      memset(zero, 0, (size_t)j.cout * sizeof *zero);
      j.bias = zero;
    }
  } else {
    j.groups = min64(j.blocks, WG_GROUPS);
    tg_tensor *t = tg_empty(tape, (int64_t[]){j.groups, WG_A2 * fn * C}, 2);
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
    tg_real *restrict sum = j.part;
    for (int64_t g = 1; g < j.groups; g++)
      for (int64_t e = 0; e < size; e++)
        sum[e] += j.part[g * size + e];
    grad_w_out(&j, sum, out);
  }
  return 1;
}
