/* bench_ops.c — op micro-benchmarks: the tape's cost per recorded op, and
 * matmul throughput at square sizes and at the book's shapes (forward and
 * the two backward products of each).
 *
 * Every figure is validated before it is timed (a wrong fast kernel is
 * not a result): the op chain against a closed recurrence in double, each
 * product against a loop in double on a sample of entries. Then warm-up,
 * repeats until a time budget, and the median, min and max. Output: a
 * table for people and one JSON line per figure for scripts:
 *
 *   {"bench":"ops","name":"...","median_us":...,"min_us":...,"max_us":...,
 *    "threads":N[,"gflops":...][,"ns_per_op":...]}
 *
 * Absolute times drift on shared machines: compare ratios within a run.
 * Usage: bench_ops [--quick] [--json] [--only CHAIN]   (--quick: short
 * budgets, for smoke runs; --json: the JSON lines only; --only: that op
 * chain alone (tape_overhead, tape_overhead_profiled, chain100_10x10), no
 * matmul, e.g. to count its instructions under callgrind)
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "tapegrad.h"

/* ------------------------------------------------------------------------
 * Samples and reporting (bench_util.h) */

static int json_only; /* --json: no table */

/* printf for the table, silent with --json. */
#define say(...) (json_only ? 0 : printf(__VA_ARGS__))

static void json(const char *name, series *s, int threads, double gflops, double ns_per_op) {
  json_line("ops", name, s, threads, gflops, -1, ns_per_op);
}

static void die(const char *what, tg_tape *tape) {
  fprintf(stderr, "bench_ops: %s%s%s\n", what, tape ? ": " : "", tape ? tg_tape_error(tape) : "");
  exit(EXIT_FAILURE);
}

/* ------------------------------------------------------------------------
 * (a) Tape overhead: y ← y·c + d, n_ops ops (n_ops / 2 muls and as many
 * adds) on small tensors of one shape, c and d parameters that need
 * gradients; forward, then backward. Two workloads: 10,000 ops on (1,)
 * (the tape's own cost per op) and 100 ops on (10, 10) (the chain that
 * benchmarks/compare_torch.py runs in PyTorch). The first runs again with
 * the op profiler on (tape_overhead_profiled): what profiling costs per
 * op; tape_overhead itself is the cost of the profiler when off. */

#define C_VAL 0.5
#define D_VAL 1.0

typedef struct chain_case {
  const char *name; /* JSON name prefix */
  int n_ops;
  int64_t shape[2];
  int ndim;
  int profile; /* the op profiler on */
} chain_case;

static const chain_case chains[] = {
    {"tape_overhead", 10000, {1, 1}, 1, 0},
    {"tape_overhead_profiled", 10000, {1, 1}, 1, 1},
    {"chain100_10x10", 100, {10, 10}, 2, 0},
};

static tg_tensor *chain(tg_tape *tape, const chain_case *k, tg_tensor *c, tg_tensor *d) {
  tg_tensor *y = tg_full(tape, k->shape, k->ndim, 1); /* shape of c */
  for (int i = 0; i < k->n_ops / 2; i++)
    y = tg_add(tape, tg_mul(tape, y, c), d);
  return y;
}

/* The same recurrence in double with its derivatives (each element's):
 * the oracle. */
static void chain_oracle(int n_ops, double *y, double *dc, double *dd) {
  double v = 1, gc = 0, gd = 0;
  for (int i = 0; i < n_ops / 2; i++) {
    gc = v + C_VAL * gc; /* d(v·c)/dc */
    gd = C_VAL * gd + 1; /* d(v·c + d)/dd */
    v = v * C_VAL + D_VAL;
  }
  *y = v, *dc = gc, *dd = gd;
}

/* One repeat from a reset tape and zeroed gradients: forward seconds in
 * *tf, backward seconds in *tb. */
static void chain_timed(tg_tape *tape, const chain_case *k, tg_tensor *c, tg_tensor *d, double *tf,
                        double *tb) {
  tg_tape_reset(tape);
  tg_tensor_zero_grad(c);
  tg_tensor_zero_grad(d);
  tg_tensor *seed = tg_full(tape, k->shape, k->ndim, 1); /* dy = 1 everywhere */
  double t0 = now_s();
  tg_tensor *y = chain(tape, k, c, d);
  double t1 = now_s();
  int st = tg_backward(tape, y, seed);
  double t2 = now_s();
  if (!y || st != TG_OK)
    die("the op chain failed while timed", tape);
  *tf = t1 - t0, *tb = t2 - t1;
}

static void bench_overhead(const chain_case *k, const budget *b, int threads) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *c = tg_tensor_new(k->shape, k->ndim, 1, "c", NULL); /* shape */
  tg_tensor *d = tg_tensor_new(k->shape, k->ndim, 1, "d", NULL); /* shape */
  if (!tape || !c || !d)
    die("out of memory", NULL);
  tg_tape_set_profile(tape, k->profile);
  for (int64_t i = 0; i < c->numel; i++) {
    c->data[i] = (tg_real)C_VAL;
    d->data[i] = (tg_real)D_VAL;
  }

  /* Validate, every element. */
  tg_tensor *y = chain(tape, k, c, d);
  if (!y || tg_backward(tape, y, tg_full(tape, k->shape, k->ndim, 1)) != TG_OK)
    die("the op chain fails", tape);
  double wy, wc, wd, tol = sizeof(tg_real) == 8 ? 1e-12 : 1e-5;
  chain_oracle(k->n_ops, &wy, &wc, &wd);
  for (int64_t i = 0; i < y->numel; i++)
    if (fabs(tg_at(y, i) - wy) > tol * fabs(wy) || fabs(tg_at(c->grad, i) - wc) > tol * fabs(wc) ||
        fabs(tg_at(d->grad, i) - wd) > tol * fabs(wd)) {
      fprintf(stderr, "y %.17g (want %.17g), dc %.17g (want %.17g), dd %.17g (want %.17g)\n",
              tg_at(y, i), wy, tg_at(c->grad, i), wc, tg_at(d->grad, i), wd);
      die("the op chain computes wrong values", NULL);
    }
  int64_t nodes = tg_tape_get_stats(tape).nodes;
  if (k->profile) { /* every op counted once, every rule once */
    tg_op_profile rows[8];
    int n = tg_tape_get_profile(tape, rows, 8);
    for (int i = 0; i < n && i < 8; i++)
      if ((strcmp(rows[i].name, "mul") == 0 || strcmp(rows[i].name, "add") == 0) &&
          (rows[i].calls != k->n_ops / 2 || rows[i].bw_calls != k->n_ops / 2))
        die("the profile miscounts the op chain", NULL);
    if (n != 3) /* mul, add and accumulate */
      die("the profile holds other kinds of op than the chain's", NULL);
    tg_tape_profile_reset(tape);
  }

  /* Time forward and backward of the same repeat. */
  static series fwd, bwd, tot;
  fwd.n = bwd.n = tot.n = 0;
  double start = 0;
  for (int r = -b->warmup; r < 0 || more(&tot, b, start); r++) {
    if (r == 0)
      start = now_s();
    double tf, tb;
    chain_timed(tape, k, c, d, &tf, &tb);
    if (r >= 0) {
      fwd.v[fwd.n++] = tf;
      bwd.v[bwd.n++] = tb;
      tot.v[tot.n++] = tf + tb;
    }
  }
  double mf = median(&fwd), mb = median(&bwd), mt = median(&tot), n = k->n_ops;
  say("%s: %d ops (y = y*c + d on %s tensors, %lld nodes%s), %d repeats\n", k->name, k->n_ops,
      k->ndim == 1 ? "(1,)" : "(10, 10)", (long long)nodes, k->profile ? ", profiled" : "", tot.n);
  say("  %-10s %10s %10s %10s   %s\n", "phase", "median us", "min us", "max us", "ns/op");
  say("  %-10s %10.1f %10.1f %10.1f   %.1f\n", "forward", 1e6 * mf, 1e6 * fwd.v[0],
      1e6 * fwd.v[fwd.n - 1], 1e9 * mf / n);
  say("  %-10s %10.1f %10.1f %10.1f   %.1f\n", "backward", 1e6 * mb, 1e6 * bwd.v[0],
      1e6 * bwd.v[bwd.n - 1], 1e9 * mb / n);
  say("  %-10s %10.1f %10.1f %10.1f   %.1f\n", "total", 1e6 * mt, 1e6 * tot.v[0],
      1e6 * tot.v[tot.n - 1], 1e9 * mt / n);
  char name[64];
  snprintf(name, sizeof name, "%s_forward", k->name);
  json(name, &fwd, threads, -1, 1e9 * mf / n);
  snprintf(name, sizeof name, "%s_backward", k->name);
  json(name, &bwd, threads, -1, 1e9 * mb / n);
  snprintf(name, sizeof name, "%s_total", k->name);
  json(name, &tot, threads, -1, 1e9 * mt / n);
  tg_tape_free(tape);
  tg_tensor_free(c);
  tg_tensor_free(d);
}

/* ------------------------------------------------------------------------
 * (b) Matmul throughput */

typedef struct mm_case {
  const char *name; /* JSON name */
  const char *what; /* table label */
  int64_t M, N, K;  /* op(A): (M, K), op(B): (K, N) */
  int ta, tb;
} mm_case;

static const mm_case cases[] = {
    {"matmul_64", "64^3", 64, 64, 64, 0, 0},
    {"matmul_128", "128^3", 128, 128, 128, 0, 0},
    {"matmul_256", "256^3", 256, 256, 256, 0, 0},
    {"matmul_512", "512^3", 512, 512, 512, 0, 0},
    {"matmul_1024", "1024^3", 1024, 1024, 1024, 0, 0},
    /* Two-layer net: X (100, 784), W (784, 50). */
    {"affine_fwd", "X.W (100x784).(784x50)", 100, 50, 784, 0, 0},
    {"affine_dX", "dY.W^T (100x50).(784x50)^T", 100, 784, 50, 0, 1},
    {"affine_dW", "X^T.dY (100x784)^T.(100x50)", 784, 50, 100, 1, 0},
    /* SimpleConvNet's im2col product: col (57600, 25), W (25, 30). */
    {"conv_fwd", "col.W (57600x25).(25x30)", 57600, 30, 25, 0, 0},
    {"conv_dcol", "dY.W^T (57600x30).(25x30)^T", 57600, 25, 30, 0, 1},
    {"conv_dW", "col^T.dY (57600x25)^T.(57600x30)", 25, 30, 57600, 1, 0},
    /* Deep net's fully connected layer: X (100, 4320), W (4320, 100). */
    {"fc_fwd", "X.W (100x4320).(4320x100)", 100, 100, 4320, 0, 0},
    {"fc_dX", "dY.W^T (100x100).(4320x100)^T", 100, 4320, 100, 0, 1},
    {"fc_dW", "X^T.dY (100x4320)^T.(100x100)", 4320, 100, 100, 1, 0},
};

/* An owned operand holding op(x) = (r, c), stored transposed when trans. */
static tg_tensor *operand(int64_t r, int64_t c, int trans, tg_rng *rng) {
  tg_tensor *t = tg_tensor_new((int64_t[]){trans ? c : r, trans ? r : c}, 2, 0, NULL, NULL);
  if (!t)
    die("out of memory", NULL);
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)(2 * tg_rng_uniform(rng) - 1);
  return t;
}

static double elem(const tg_tensor *x, int trans, int64_t i, int64_t k) {
  return trans ? tg_at(x, k * x->shape[1] + i) : tg_at(x, i * x->shape[1] + k);
}

/* Checks 256 sampled entries (all of them for small products) against a
 * loop in double, within 4·√K·u·Σ|a·b|. */
static void validate(const mm_case *m, const tg_tensor *a, const tg_tensor *b, const tg_tensor *c,
                     tg_rng *rng) {
  const double u = sizeof(tg_real) == 8 ? DBL_EPSILON / 2 : FLT_EPSILON / 2;
  const int64_t all = m->M * m->N, n = all <= 4096 ? all : 256;
  for (int64_t t = 0; t < n; t++) {
    int64_t e = all <= 4096 ? t : (int64_t)(tg_rng_uniform(rng) * (double)all) % all;
    int64_t i = e / m->N, j = e % m->N;
    double s = 0, mag = 0;
    for (int64_t k = 0; k < m->K; k++) {
      double p = elem(a, m->ta, i, k) * elem(b, m->tb, k, j);
      s += p;
      mag += fabs(p);
    }
    if (fabs(tg_at(c, e) - s) > 4 * sqrt((double)m->K) * u * mag + DBL_MIN) {
      fprintf(stderr, "%s: C[%lld][%lld] = %.17g, loop gives %.17g\n", m->what, (long long)i,
              (long long)j, tg_at(c, e), s);
      die("matmul computes wrong values", NULL);
    }
  }
}

/* Times one case on `threads` threads; prints its table row and JSON. */
static void bench_case(const mm_case *m, int threads, const budget *b, tg_tape *tape, tg_rng *rng) {
  tg_tensor *a = operand(m->M, m->K, m->ta, rng), *bb = operand(m->K, m->N, m->tb, rng);
  const double flops = 2.0 * (double)m->M * (double)m->N * (double)m->K;
  tg_set_threads(threads);
  tg_tensor *c = tg_matmul_t(tape, a, bb, m->ta, m->tb);
  if (!c)
    die(m->what, tape);
  validate(m, a, bb, c, rng);
  tg_tape_reset(tape);

  static series s;
  s.n = 0;
  double start = 0;
  for (int r = -b->warmup; r < 0 || more(&s, b, start); r++) {
    if (r == 0)
      start = now_s();
    double t0 = now_s();
    c = tg_matmul_t(tape, a, bb, m->ta, m->tb);
    double t1 = now_s();
    if (!c)
      die(m->what, tape);
    tg_tape_reset(tape);
    if (r >= 0)
      s.v[s.n++] = t1 - t0;
  }
  double med = median(&s);
  say("  %-34s %3d %10.1f %10.1f %10.1f %9.1f %9.1f\n", m->what, threads, 1e6 * med, 1e6 * s.v[0],
      1e6 * s.v[s.n - 1], 1e-9 * flops / med, 1e-9 * flops / s.v[0]);
  json(m->name, &s, threads, 1e-9 * flops / med, -1);
  tg_tensor_free(a);
  tg_tensor_free(bb);
}

static void bench_matmul(const budget *b, int threads) {
  tg_tape *tape = tg_tape_new();
  if (!tape)
    die("out of memory", NULL);
  tg_tape_set_grad(tape, 0); /* the product alone, nothing recorded */
  tg_rng rng;
  tg_rng_seed(&rng, 2024);
  say("\nmatmul (C = op(A).op(B), GFLOP/s = 2MNK / time)\n");
  say("  %-34s %3s %10s %10s %10s %9s %9s\n", "product", "thr", "median us", "min us", "max us",
      "GF/s med", "GF/s best");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bench_case(&cases[i], 1, b, tape, &rng);
    if (threads > 1)
      bench_case(&cases[i], threads, b, tape, &rng);
  }
  tg_set_threads(0); /* back to the default */
  tg_tape_free(tape);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  budget b = {.seconds = 0.5, .warmup = 3, .min_reps = 5};
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      b = (budget){.seconds = 0.05, .warmup = 1, .min_reps = 3};
    } else if (strcmp(argv[i], "--json") == 0) {
      json_only = 1;
    } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--quick] [--json] [--only CHAIN]\n", argv[0]);
      return EXIT_FAILURE;
    }
  }
  const int threads = tg_threads();
  say("bench_ops: tg_real = %s, %d OpenMP threads, %s budget per figure\n", TG_REAL_NAME, threads,
      b.seconds < 0.5 ? "quick" : "full");
  int found = 0;
  for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++)
    if (!only || strcmp(only, chains[i].name) == 0) {
      bench_overhead(&chains[i], &b, threads);
      found = 1;
    }
  if (!found) {
    fprintf(stderr, "bench_ops: --only: no op chain named '%s'\n", only);
    return EXIT_FAILURE;
  }
  if (!only)
    bench_matmul(&b, threads);
  return EXIT_SUCCESS;
}
