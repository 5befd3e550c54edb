/* gemm.h — matmul.c's product engine for the ops that run their own
 * threads over many small products (the fused convolution, ops/conv.c).
 *
 * Private to ops/. A plan is made once, on the calling thread, for a
 * shape; tg_gemm_run then computes one product of that shape on the thread
 * that calls it, without scratch memory and without starting threads, so
 * it may run inside an OpenMP region, many times with different operands.
 * The arithmetic is a function of the shape alone, as in tg_matmul.
 */
#ifndef TG_GEMM_H
#define TG_GEMM_H

#include <libxsmm.h>

#include "tensor.h"

#ifdef TG_DOUBLE
typedef libxsmm_dmmfunction mm_kernel;
#else
typedef libxsmm_smmfunction mm_kernel;
#endif

/* The plan of one product: its tiling and the kernels it needs. */
typedef struct mm_plan {
  int64_t M, N, K;
  int ta, tb;         /* as given to the op */
  int blas;           /* 1: OpenBLAS tiles; 0: JIT tiles */
  int serial;         /* 1: tg_gemm_plan's product: no threads, no slices */
  int accumulate;     /* 1: c += product (beta 1) */
  const tg_real *a;   /* (M, K), or (K, M) when ta */
  const tg_real *b;   /* (K, N), or (N, K) when tb (BLAS only) */
  tg_real *b_t;       /* JIT with tb: bᵀ as (K, N), filled by the plan */
  tg_real *c;         /* (M, N) */
  tg_real *part;      /* (slices - 1, M, N): partial sums of slices 1.. */
  int64_t mb, nb, kb; /* tile rows, tile columns, K chunk */
  int64_t tm, tn, tk; /* tiles along M and N, chunks along K */
  int64_t slices;     /* K chunks split into this many partial sums */
  int64_t rem;        /* the last rem columns of C are not the JIT's (matmul.c) */
  const tg_real *b_r; /* without ta: those columns of op(b) as rows (rem, K) */
  /* [last row tile][last column tile][last K chunk][beta] */
  mm_kernel kern[2][2][2][2];
} mm_plan;

/* Plans c (M, N) = op(a)·b, op(a) = aᵀ when ta (a is then (K, M)), plus c
 * itself when accumulate. b is never transposed here: that needs scratch.
 * Returns 0 only for a dimension beyond 2^31 − 1. */
int tg_gemm_plan(mm_plan *p, int ta, int64_t M, int64_t N, int64_t K, int accumulate);

/* Runs p's product on a, b, c (shapes as planned), on this thread. */
void tg_gemm_run(const mm_plan *p, const tg_real *a, const tg_real *b, tg_real *c);

#endif
