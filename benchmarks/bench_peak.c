/* bench_peak.c — the ceilings a matmul figure is judged against:
 *
 *  - the machine's FMA peak: a register-blocked loop of independent fused
 *    multiply-adds (AVX-512 when the CPU has it, else AVX2+FMA, chosen at
 *    run time; each variant compiled with __attribute__((target))), on one
 *    thread and on every OpenMP thread at once, in float and double;
 *  - the raw libxsmm JIT kernel rate at 1024² and at the book's layer
 *    shapes (the products of bench_ops), one kernel call over the whole
 *    product on one thread, and on every thread with the rows split in
 *    even blocks: what tg_matmul could reach without its own tiling,
 *    transposes or bookkeeping.
 *
 * Products are validated on sampled entries against a loop in double
 * before they are timed. Output: a table, then one JSON line per figure
 *
 *   {"bench":"peak","name":"...","median_us":...,"min_us":...,"max_us":...,
 *    "threads":N,"gflops":...}
 *
 * Usage: bench_peak [--quick] [--json]
 */
#include <float.h>
#include <immintrin.h>
#include <libxsmm.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "tapegrad.h"

#define REPS 15

static int quick, json_only;

/* Sorts v (n seconds); prints the table row and the JSON line. */
static void report(const char *name, const char *what, double *v, int n, int threads,
                   double flops) {
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  if (!json_only)
    printf("  %-36s %3d %10.1f %10.1f %10.1f %9.1f %9.1f\n", what, threads, 1e6 * med, 1e6 * v[0],
           1e6 * v[n - 1], 1e-9 * flops / med, 1e-9 * flops / v[0]);
  printf("{\"bench\":\"peak\",\"name\":\"%s\",\"median_us\":%.3f,\"min_us\":%.3f,"
         "\"max_us\":%.3f,\"threads\":%d,\"gflops\":%.2f}\n",
         name, 1e6 * med, 1e6 * v[0], 1e6 * v[n - 1], threads, 1e-9 * flops / med);
}

/* ------------------------------------------------------------------------
 * FMA peak. ACC independent accumulators hide the FMA latency (4 cycles,
 * 2 ports: 8 in flight needed); each iteration does ACC vector FMAs. The
 * result is returned so the loop cannot be dropped. */

#define ACC 12

#define FMA_LOOP(vec, set1, fmadd, add, lanes, type)                                               \
  vec acc[ACC];                                                                                    \
  for (int j = 0; j < ACC; j++)                                                                    \
    acc[j] = set1((type)(1 + j * 1e-3));                                                           \
  const vec m = set1((type)0.9999999), c = set1((type)1e-7);                                       \
  for (long i = 0; i < iters; i++)                                                                 \
    for (int j = 0; j < ACC; j++)                                                                  \
      acc[j] = fmadd(acc[j], m, c);                                                                \
  vec s = acc[0];                                                                                  \
  for (int j = 1; j < ACC; j++)                                                                    \
    s = add(s, acc[j]);                                                                            \
  type out[lanes];                                                                                 \
  memcpy(out, &s, sizeof out);                                                                     \
  return out[0];

__attribute__((target("avx512f"))) static double fma512_sp(long iters) {
  FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, float)
}
__attribute__((target("avx512f"))) static double fma512_dp(long iters) {
  FMA_LOOP(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, 8, double)
}
__attribute__((target("avx2,fma"))) static double fma256_sp(long iters) {
  FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8, float)
}
__attribute__((target("avx2,fma"))) static double fma256_dp(long iters) {
  FMA_LOOP(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, 4, double)
}

static void bench_fma(void) {
  __builtin_cpu_init();
  const int avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    if (!json_only)
      printf("FMA peak: skipped, the CPU has neither AVX-512 nor AVX2+FMA\n");
    return;
  }
  const long iters = quick ? 2000000 : 20000000;
  const int nmax = omp_get_max_threads();
  if (!json_only)
    printf("FMA peak (%s, %d accumulators; GFLOP/s = 2 x lanes x FMAs / time)\n",
           avx512 ? "AVX-512" : "AVX2", ACC);
  for (int dp = 0; dp < 2; dp++) {
    double (*fn)(long) = avx512 ? (dp ? fma512_dp : fma512_sp) : (dp ? fma256_dp : fma256_sp);
    const int lanes = (avx512 ? 64 : 32) / (dp ? 8 : 4);
    for (int nt = 1; nt <= nmax; nt = nt < nmax ? nmax : nmax + 1) { /* 1, then all */
      double v[REPS], sink = 0;
      for (int r = -2; r < REPS; r++) {
        double t0 = now_s();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
        sink += fn(iters);
        double t = now_s() - t0;
        if (r >= 0)
          v[r] = t;
      }
      if (!isfinite(sink))
        fprintf(stderr, "bench_peak: FMA loop gave %g\n", sink);
      char name[64], what[64];
      snprintf(name, sizeof name, "fma_peak_%s", dp ? "fp64" : "fp32");
      snprintf(what, sizeof what, "FMA %s", dp ? "fp64" : "fp32");
      report(name, what, v, REPS, nt, 2.0 * lanes * ACC * (double)iters * nt);
    }
  }
}

/* ------------------------------------------------------------------------
 * Raw libxsmm kernels, in tg_real. Row-major C(M,N) = A(M,K)·B(K,N) is
 * column-major Cᵀ = Bᵀ·Aᵀ: dispatch (N, M, K) and call kernel(B, A, C). */

#ifdef TG_DOUBLE
typedef libxsmm_dmmfunction xkernel;
#define xdispatch libxsmm_dmmdispatch
#else
typedef libxsmm_smmfunction xkernel;
#define xdispatch libxsmm_smmdispatch
#endif

typedef struct shape {
  const char *name, *what;
  int64_t M, N, K;
} shape;

/* The products of bench_ops, untransposed (a transposed operand changes
 * the kernel's loads, not the ceiling). */
static const shape shapes[] = {
    {"xsmm_1024", "1024^3", 1024, 1024, 1024},
    {"xsmm_affine_fwd", "affine X.W 100x50x784", 100, 50, 784},
    {"xsmm_affine_dX", "affine dX 100x784x50", 100, 784, 50},
    {"xsmm_affine_dW", "affine dW 784x50x100", 784, 50, 100},
    {"xsmm_conv_fwd", "conv col.W 57600x30x25", 57600, 30, 25},
    {"xsmm_conv_dcol", "conv dcol 57600x25x30", 57600, 25, 30},
    {"xsmm_conv_dW", "conv dW 25x30x57600", 25, 30, 57600},
    {"xsmm_fc_fwd", "fc X.W 100x100x4320", 100, 100, 4320},
    {"xsmm_fc_dX", "fc dX 100x4320x100", 100, 4320, 100},
    {"xsmm_fc_dW", "fc dW 4320x100x100", 4320, 100, 100},
};

static xkernel kernel_for(int64_t N, int64_t rows, int64_t K) {
  const tg_real one = 1, zero = 0;
  const libxsmm_blasint lda = (libxsmm_blasint)N, ldb = (libxsmm_blasint)K;
  const libxsmm_blasint ldc = (libxsmm_blasint)N;
  const int flags = LIBXSMM_GEMM_FLAG_NONE;
  return xdispatch((libxsmm_blasint)N, (libxsmm_blasint)rows, (libxsmm_blasint)K, &lda, &ldb, &ldc,
                   &one, &zero, &flags, NULL);
}

/* c = a·b with the rows cut in nt even blocks, block t run by thread t
 * (kernels: [0] for full blocks, [1] for the last). */
static void run(const shape *s, int nt, int64_t rb, xkernel k[2], const tg_real *a,
                const tg_real *b, tg_real *c) {
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; t++) {
    int64_t r0 = t * rb;
    if (r0 < s->M)
      (r0 + rb >= s->M ? k[1] : k[0])(b, a + r0 * s->K, c + r0 * s->N);
  }
}

static void bench_shape(const shape *s, int nt, tg_rng *rng) {
  int64_t rb = (s->M + nt - 1) / nt, last = s->M - (s->M - 1) / rb * rb;
  xkernel k[2] = {kernel_for(s->N, rb, s->K), kernel_for(s->N, last, s->K)};
  if (!k[0] || !k[1]) {
    if (!json_only)
      printf("  %-36s %3d   the JIT declines this shape\n", s->what, nt);
    return;
  }
  tg_real *a = libxsmm_aligned_malloc((size_t)(s->M * s->K) * sizeof(tg_real), 64);
  tg_real *b = libxsmm_aligned_malloc((size_t)(s->K * s->N) * sizeof(tg_real), 64);
  tg_real *c = libxsmm_aligned_malloc((size_t)(s->M * s->N) * sizeof(tg_real), 64);
  if (!a || !b || !c) {
    fprintf(stderr, "bench_peak: out of memory\n");
    exit(1);
  }
  for (int64_t i = 0; i < s->M * s->K; i++)
    a[i] = (tg_real)(2 * tg_rng_uniform(rng) - 1);
  for (int64_t i = 0; i < s->K * s->N; i++)
    b[i] = (tg_real)(2 * tg_rng_uniform(rng) - 1);
  run(s, nt, rb, k, a, b, c);
  const double u = sizeof(tg_real) == 8 ? DBL_EPSILON / 2 : FLT_EPSILON / 2;
  for (int e = 0; e < 64; e++) {
    int64_t i = (int64_t)tg_rng_below(rng, (uint64_t)s->M),
            j = (int64_t)tg_rng_below(rng, (uint64_t)s->N);
    double sum = 0, mag = 0;
    for (int64_t q = 0; q < s->K; q++) {
      double p = (double)a[i * s->K + q] * (double)b[q * s->N + j];
      sum += p;
      mag += fabs(p);
    }
    if (fabs((double)c[i * s->N + j] - sum) > 4 * sqrt((double)s->K) * u * mag + DBL_MIN) {
      fprintf(stderr, "bench_peak: %s: C[%lld][%lld] = %.17g, loop gives %.17g\n", s->what,
              (long long)i, (long long)j, (double)c[i * s->N + j], sum);
      exit(1);
    }
  }
  const double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K;
  const int reps = quick ? 5 : (flops > 1e9 ? 15 : 51);
  double v[51];
  for (int r = -3; r < reps; r++) {
    double t0 = now_s();
    run(s, nt, rb, k, a, b, c);
    if (r >= 0)
      v[r] = now_s() - t0;
  }
  report(s->name, s->what, v, reps, nt, flops);
  libxsmm_free(a);
  libxsmm_free(b);
  libxsmm_free(c);
}

static void bench_xsmm(void) {
  libxsmm_init();
  tg_rng rng;
  tg_rng_seed(&rng, 2024);
  const int nmax = omp_get_max_threads();
  if (!json_only)
    printf("\nraw libxsmm JIT kernels, tg_real = %s (rows split over threads)\n", TG_REAL_NAME);
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    bench_shape(&shapes[i], 1, &rng);
    if (nmax > 1)
      bench_shape(&shapes[i], nmax, &rng);
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else if (strcmp(argv[i], "--json") == 0) {
      json_only = 1;
    } else {
      fprintf(stderr, "usage: %s [--quick] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (!json_only)
    printf("bench_peak: %d OpenMP threads\n  %-36s %3s %10s %10s %10s %9s %9s\n",
           omp_get_max_threads(), "figure", "thr", "median us", "min us", "max us", "GF/s med",
           "GF/s best");
  bench_fma();
  bench_xsmm();
  return 0;
}
