/* bench_util.h — what the op benchmarks share: a clock, the repeat loop
 * (warm-up, then repeats until a time budget), the median and spread of
 * the samples, and the JSON line every figure prints. Header-only; the
 * benchmark programs are single files.
 */
#ifndef TG_BENCH_UTIL_H
#define TG_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define MAX_SAMPLES 4096

typedef struct budget {
  double seconds; /* per figure, after warm-up */
  int warmup;
  int min_reps;
} budget;

typedef struct series {
  double v[MAX_SAMPLES]; /* seconds */
  int n;
} series;

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts s and returns its median. */
static inline double median(series *s) {
  qsort(s->v, (size_t)s->n, sizeof s->v[0], cmp_double);
  return s->n % 2 ? s->v[s->n / 2] : 0.5 * (s->v[s->n / 2 - 1] + s->v[s->n / 2]);
}

/* 1 while more repeats fit the budget. */
static inline int more(const series *s, const budget *b, double start) {
  return s->n < MAX_SAMPLES && (s->n < b->min_reps || now_s() - start < b->seconds);
}

/* One JSON line of benchmark `bench`; each extra figure (gflops, gbps,
 * ns_per_op) is left out when negative. Sorts s. */
static inline void json_line(const char *bench, const char *name, series *s, int threads,
                             double gflops, double gbps, double ns_per_op) {
  double med = median(s);
  printf("{\"bench\":\"%s\",\"name\":\"%s\",\"median_us\":%.3f,\"min_us\":%.3f,\"max_us\":%.3f,"
         "\"threads\":%d",
         bench, name, 1e6 * med, 1e6 * s->v[0], 1e6 * s->v[s->n - 1], threads);
  if (gflops >= 0)
    printf(",\"gflops\":%.2f", gflops);
  if (gbps >= 0)
    printf(",\"gbps\":%.2f", gbps);
  if (ns_per_op >= 0)
    printf(",\"ns_per_op\":%.2f", ns_per_op);
  printf("}\n");
}

#endif
