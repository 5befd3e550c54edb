/* bench_dist.c — the gradient exchange at the book models' sizes: latency
 * and bandwidth of tg_dist_allreduce (sums in one fixed tree) and, in the
 * same run, of MPI_Allreduce (MPI's own order) as the reference.
 *
 *   mpirun -np 2 --mca btl self,vader build/benchmarks/bench_dist
 *   mpirun -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo build/benchmarks/bench_dist
 *   (as root add --allow-run-as-root; see README "Distributed training")
 *
 * For each model it builds the model, flattens its gradients (the buffer
 * that is exchanged, Batch Norm statistics included), validates the sum
 * against exact small-integer values, then times repeats. Rank 0 prints a
 * table and one JSON line per figure: median time, algorithm bandwidth
 * (bytes / time) and bus bandwidth (2(N−1)/N · bytes / time, what each
 * link carries). --models a,b limits the models; --seconds the budget.
 *
 * --touch MIB: before each timed exchange every rank rewrites its
 * gradients and then writes MIB MiB of memory of its own, as a training
 * step's forward and backward do between two exchanges. The exchange then
 * starts from the caches a step leaves it, not from the ones the last
 * exchange left; the JSON names get a "-touchMIB" suffix.
 *
 * Then the cost model T = r·α + 2(N−1)/N · bytes · β, with r the messages
 * per rank of one exchange (2·log2 N for a power-of-two N, 2(N−1)
 * otherwise): α from a 2-element exchange (T/r), β the least-squares slope
 * of the models' median times over 2(N−1)/N · bytes. README "Distributed
 * training" projects to more nodes from these two figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"
#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

static void fail(tg_dist *d, const char *what) { tg_dist_abort(d, what); }

/* 1 when all of s is a number (1.5, 2e-3), with *v set. */
static int number(const char *s, double *v) {
  char *end;
  *v = strtod(s, &end);
  return end != s && *end == 0;
}

/* 1 when name is one of the comma-separated list's names. */
static int in_list(const char *list, const char *name) {
  for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',')
    if (strcspn(p, ",") == strlen(name) && !strncmp(p, name, strlen(name)))
      return 1;
  return 0;
}

/* The first name in the comma-separated list that is not a model, or NULL. */
static const char *unknown_model(const char *list, char *buf, size_t n) {
  if (!*list)
    return strcpy(buf, "");
  for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
    size_t len = strcspn(p, ",");
    snprintf(buf, n, "%.*s", (int)len, p);
    const char *const *k = tg_model_kinds();
    while (*k && strcmp(*k, buf))
      k++;
    if (!*k)
      return buf;
  }
  return NULL;
}

/* What a step does between exchanges: the gradients written again (as
 * backward writes them), then `bytes` of other memory written. */
typedef struct step_like {
  unsigned char *other;
  size_t bytes;
} step_like;

static void touch(const step_like *t, tg_real *x, int64_t n, int rank) {
  if (!t->bytes)
    return;
  for (int64_t i = 0; i < n; i++)
    x[i] = (tg_real)(rank + 1 + i % 7);
  memset(t->other, rank + 1, t->bytes);
}

/* Repeats of one exchange, each started together (a one-element
 * exchange lines the ranks up). Rank 0's samples; every rank runs it. */
static void time_it(tg_dist *d, tg_real *x, int64_t n, int use_mpi, const budget *b,
                    const step_like *step, series *s) {
  tg_error err = {0};
  tg_real one = 0;
  s->n = 0;
  double start = 0;
  for (int rep = -b->warmup;; rep++) { /* ends when rank 0 says so */
    if (rep == 0)
      start = now_s();
    touch(step, x, n, tg_dist_rank(d));
    if (tg_dist_allreduce(d, &one, 1, &err) != TG_OK)
      fail(d, err.msg);
    double t0 = now_s();
#ifdef TG_HAVE_MPI
    if (use_mpi) {
      MPI_Datatype t = sizeof(tg_real) == 8 ? MPI_DOUBLE : MPI_FLOAT;
      if (MPI_Allreduce(MPI_IN_PLACE, x, (int)n, t, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
        fail(d, "bench_dist: MPI_Allreduce failed");
    } else
#endif
    {
      (void)use_mpi;
      if (tg_dist_allreduce(d, x, n, &err) != TG_OK)
        fail(d, err.msg);
    }
    double t = now_s() - t0;
    /* Every rank must agree on whether to go on: rank 0's clock decides. */
    tg_real go = tg_dist_rank(d) == 0 ? (tg_real)(rep < 0 || more(s, b, start)) : 0;
    if (rep >= 0 && s->n < MAX_SAMPLES) /* the last repeat after `more` said no */
      s->v[s->n++] = t;
    if (tg_dist_allreduce(d, &go, 1, &err) != TG_OK)
      fail(d, err.msg);
    if (rep >= 0 && go == 0)
      break;
  }
}

int main(int argc, char **argv) {
  const char *only = NULL;
  budget b = {.seconds = 1.0, .warmup = 2, .min_reps = 5};
  double touch_mib = 0;
  static const char usage[] =
      "usage: mpirun -np N bench_dist [--models a,b] [--seconds S] [--touch MIB]\n";
  for (int i = 1; i < argc; i += 2) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    }
    if (i + 1 == argc || (strcmp(argv[i], "--models") && strcmp(argv[i], "--seconds") &&
                          strcmp(argv[i], "--touch"))) {
      fprintf(stderr, "bench_dist: %s: %s\n%s", argv[i],
              i + 1 == argc ? "needs a value" : "unknown option", usage);
      return 2;
    }
    char name[64];
    if (!strcmp(argv[i], "--models")) {
      only = argv[i + 1];
      if (unknown_model(only, name, sizeof name)) {
        fprintf(stderr, "bench_dist: --models: '%s' is not a model\n", name);
        return 2;
      }
    } else if (!number(argv[i + 1], !strcmp(argv[i], "--seconds") ? &b.seconds : &touch_mib)) {
      fprintf(stderr, "bench_dist: %s %s: not a number\n", argv[i], argv[i + 1]);
      return 2;
    }
  }
  if (!(b.seconds > 0) || !(touch_mib >= 0 && touch_mib <= 4096)) {
    fprintf(stderr, "bench_dist: --seconds %g, --touch %g: need seconds > 0, MiB 0 to 4096\n",
            b.seconds, touch_mib);
    return 2;
  }
  step_like step = {.bytes = (size_t)(touch_mib * 1048576)};
  if (step.bytes && !(step.other = malloc(step.bytes))) {
    fprintf(stderr, "bench_dist: --touch: out of memory for %g MiB\n", touch_mib);
    return 1;
  }
  tg_error err = {0};
  tg_dist *d = tg_dist_new(&argc, &argv, &(tg_dist_options){.timeout = 600}, &err);
  if (!d) {
    fprintf(stderr, "bench_dist: %s\n", err.msg);
    return 1;
  }
  int N = tg_dist_size(d), rank = tg_dist_rank(d);
  char how[96] = "";
  if (step.bytes)
    snprintf(how, sizeof how, ", each exchange after its gradients and %g MiB more are written",
             touch_mib);
  if (rank == 0)
    printf("%d rank%s, tg_real %s%s\n%-16s %12s %10s | %11s %9s %9s | %11s %9s\n", N,
           N > 1 ? "s" : "", TG_REAL_NAME, how, "model", "elements", "MiB", "tree us", "alg GB/s",
           "bus GB/s", "MPI_Allr us", "bus GB/s");
  double fx[64], fy[64]; /* the models' (2(N−1)/N · bytes, median seconds) */
  int nfit = 0;
  for (const char *const *k = tg_model_kinds(); *k; k++) {
    if (only && !in_list(only, *k))
      continue;
    tg_model_config cfg;
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    if (tg_model_defaults(*k, &cfg, &err) != TG_OK)
      fail(d, err.msg);
    tg_model *m = tg_model_new(&cfg, &rng, &err);
    if (!m || tg_params_flatten_grads(&m->params, tg_params_numel(&m->buffers), &err) != TG_OK)
      fail(d, err.msg);
    tg_real *x = m->params.grad_flat;
    int64_t n = m->params.grad_flat_n + m->params.grad_flat_extra;
    double bytes = (double)n * sizeof(tg_real);

    /* Validate: rank r contributes r + 1 + (i mod 7), sums exact in float. */
    for (int64_t i = 0; i < n; i++)
      x[i] = (tg_real)(rank + 1 + i % 7);
    if (tg_dist_allreduce(d, x, n, &err) != TG_OK)
      fail(d, err.msg);
    for (int64_t i = 0; i < n; i++)
      if (x[i] != (tg_real)(N * (N + 1) / 2 + N * (i % 7))) {
        char msg[160];
        snprintf(msg, sizeof msg, "bench_dist: %s: element %lld is %g, not %d", *k, (long long)i,
                 (double)x[i], N * (N + 1) / 2 + N * (int)(i % 7));
        fail(d, msg);
      }

    static series tree, ref;
    time_it(d, x, n, 0, &b, &step, &tree);
    int have_ref = 0;
#ifdef TG_HAVE_MPI
    have_ref = n <= 0x7fffffff;
    if (have_ref)
      time_it(d, x, n, 1, &b, &step, &ref);
#endif
    if (rank == 0) {
      double t = median(&tree), bus = N > 1 ? 2.0 * (N - 1) / N : 1;
      double tr = have_ref ? median(&ref) : 0;
      if (nfit < 64 && N > 1) {
        fx[nfit] = 2.0 * (N - 1) / N * bytes;
        fy[nfit++] = t;
      }
      printf("%-16s %12lld %10.2f | %11.1f %9.2f %9.2f | %11.1f %9.2f\n", *k, (long long)n,
             bytes / 1048576, 1e6 * t, bytes / t / 1e9, bus * bytes / t / 1e9, 1e6 * tr,
             tr > 0 ? bus * bytes / tr / 1e9 : 0);
      char name[96], suffix[32] = "";
      if (step.bytes)
        snprintf(suffix, sizeof suffix, "-touch%g", touch_mib);
      snprintf(name, sizeof name, "tree-%s-np%d%s", *k, N, suffix);
      json_line("dist", name, &tree, N, -1, bus * bytes / t / 1e9, -1);
      if (have_ref) {
        snprintf(name, sizeof name, "mpi_allreduce-%s-np%d%s", *k, N, suffix);
        json_line("dist", name, &ref, N, -1, bus * bytes / tr / 1e9, -1);
      }
    }
    tg_model_free(m);
  }
  /* The cost model's α (2 elements: latency alone) and β (the slope). */
  static series tiny;
  tg_real two[2] = {0, 0};
  time_it(d, two, 2, 0, &b, &(step_like){0}, &tiny);
  if (rank == 0 && N > 1) {
    int r = 0;
    for (int k = 1; k < N; k <<= 1)
      r += 2;
    if (N & (N - 1))
      r = 2 * (N - 1);
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < nfit; i++)
      mx += fx[i] / nfit, my += fy[i] / nfit;
    for (int i = 0; i < nfit; i++)
      sxy += (fx[i] - mx) * (fy[i] - my), sxx += (fx[i] - mx) * (fx[i] - mx);
    double alpha = median(&tiny) / r, beta = sxx > 0 ? sxy / sxx : 0;
    /* median() sorted the samples: v[0] is the fastest, the machine
     * without its other load. */
    printf("cost model, %d messages per exchange: alpha %.1f us (fastest %.1f us; 2 elements "
           "%.1f us), beta %.3f ns/byte (%.2f GB/s; slope over %d models)\n",
           r, 1e6 * alpha, 1e6 * tiny.v[0] / r, 1e6 * median(&tiny), 1e9 * beta,
           beta > 0 ? 1e-9 / beta : 0, nfit);
    printf("{\"bench\":\"dist\",\"name\":\"cost_model-np%d\",\"alpha_us\":%.3f,"
           "\"alpha_min_us\":%.3f,\"beta_ns_per_byte\":%.4f,\"messages\":%d}\n",
           N, 1e6 * alpha, 1e6 * tiny.v[0] / r, 1e9 * beta, r);
  }
  free(step.other);
  tg_dist_free(d);
  return 0;
}
