/* bench_train.c — one training step of a book network, timed by phase:
 * forward (model and loss), backward, the optimizer's update, and the
 * whole step (those three plus the tape's reset).
 *
 * The model is built by name through model.h (tg_model_defaults,
 * tg_model_new), so every kind in models.c's table works here unchanged.
 * The batch is random data of the model's input shape with random labels,
 * the same batch every step: the figures are about compute, not data.
 *
 * Validate, then time: a few steps on the fixed batch must give a finite
 * loss, and the loss on that batch in eval mode (no Dropout noise) must
 * be lower after them than before (a network that cannot fit one batch is
 * broken, and its timings mean nothing). Then warm-up steps and timed repeats; the
 * median, mean, min and max of each phase. The median is the figure for
 * comparing kernels; the mean is what an epoch pays (its interrupts and
 * descheduled moments included), so it is the one to hold a real epoch's
 * seconds per step against. Steady state must not allocate from
 * the system (DESIGN.md §2): the tape's count of system allocations over
 * the timed steps is printed and must be 0, or the program exits 1. Also
 * printed: the arena's peak bytes and the process's peak RSS (its own:
 * VmHWM, or getrusage where /proc is missing).
 *
 * Output: a table for people, then one JSON line per figure:
 *
 *   {"bench":"train","name":"<model>/<phase>","median_us":...,"mean_us":...,
 *    "min_us":...,"max_us":...,"threads":N,"model":"...","batch":B,"optimizer":"..."
 *    [,"samples_per_s":...,"arena_peak_bytes":...,"sys_allocs":...,
 *     "peak_rss_kb":...]}   (the extra keys on the "step" line)
 *
 * With --profile, as many steps again run with the tape's op profiler on
 * (after the timed ones, which it does not touch), and its table follows,
 * with one JSON line per kind of op:
 *
 *   {"bench":"train","name":"<model>/profile/<op>","model":"...","steps":N,
 *    "calls":...,"fwd_us":...,"bw_calls":...,"bw_us":...,"fwd_bytes":...,
 *    "bw_bytes":...}   (totals over the N steps)
 *
 * Exit status: 0 success; 1 a failed validation, an op error or a
 * steady-state allocation; 2 a usage error; 3 the model kind does not
 * exist in this build (the message says "not available").
 * Absolute times drift on shared machines: compare ratios within a run.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tapegrad.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts v (n seconds) and returns its median. */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct opts {
  const char *model;
  const char *optimizer; /* NULL: the book's for the model */
  double lr;             /* 0: the book's */
  long batch, repeats, warmup, validate_steps, threads;
  unsigned long long seed;
  int json_only;
  int profile;
} opts;

static void usage(FILE *f) {
  fprintf(f, "usage: bench_train [options]\n"
             "  --model NAME       a kind of models.c (default two-layer-net)\n"
             "  --batch N          samples per step (default 100)\n"
             "  --optimizer O      sgd, momentum, nesterov, adagrad, rmsprop, adam (default:\n"
             "                     sgd for the dense nets, adam for the others, as in the book)\n"
             "  --lr X             learning rate (default 0.1 for sgd, else the book's)\n"
             "  --repeats N        timed steps (default 50)\n"
             "  --warmup N         untimed steps first (default 5)\n"
             "  --threads N        OpenMP threads (default: all)\n"
             "  --seed S           seed of init and data (default 1)\n"
             "  --json             JSON lines only\n"
             "  --profile          then as many steps again with the op profiler on, and its\n"
             "                     table (time, calls and bytes per kind of op)\n");
}

static long parse_long(const char *flag, const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "bench_train: --%s: '%s' is not an integer in [%ld, %ld]\n", flag, s, lo, hi);
    exit(2);
  }
  return v;
}

static void parse(int argc, char **argv, opts *o) {
  static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                     {"batch", required_argument, 0, 'b'},
                                     {"optimizer", required_argument, 0, 'o'},
                                     {"lr", required_argument, 0, 'l'},
                                     {"repeats", required_argument, 0, 'r'},
                                     {"warmup", required_argument, 0, 'w'},
                                     {"threads", required_argument, 0, 't'},
                                     {"seed", required_argument, 0, 's'},
                                     {"json", no_argument, 0, 'j'},
                                     {"profile", no_argument, 0, 'p'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  *o = (opts){.model = "two-layer-net",
              .batch = 100,
              .repeats = 50,
              .warmup = 5,
              .validate_steps = 10,
              .seed = 1};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'm':
      o->model = optarg;
      break;
    case 'b':
      o->batch = parse_long("batch", optarg, 1, 1 << 20);
      break;
    case 'o':
      o->optimizer = optarg;
      break;
    case 'l': {
      char *end;
      o->lr = strtod(optarg, &end);
      if (*end != '\0' || !(o->lr > 0) || !isfinite(o->lr)) {
        fprintf(stderr, "bench_train: --lr: '%s' is not a positive number\n", optarg);
        exit(2);
      }
      break;
    }
    case 'r':
      o->repeats = parse_long("repeats", optarg, 1, 1000000);
      break;
    case 'w':
      o->warmup = parse_long("warmup", optarg, 0, 1000000);
      break;
    case 't':
      o->threads = parse_long("threads", optarg, 1, 1024);
      break;
    case 's':
      o->seed = (unsigned long long)parse_long("seed", optarg, 0, 1L << 62);
      break;
    case 'j':
      o->json_only = 1;
      break;
    case 'p':
      o->profile = 1;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      exit(2);
    }
  }
  if (optind < argc) {
    fprintf(stderr, "bench_train: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    exit(2);
  }
}

/* Peak resident set in KiB: VmHWM of /proc/self/status where there is
 * one, else getrusage's ru_maxrss. On Linux ru_maxrss survives execve, so
 * a benchmark started from a big process (a Python script with PyTorch
 * loaded) would report its parent's peak; VmHWM is this program's own. */
static long peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  if (kb <= 0) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    kb = ru.ru_maxrss;
  }
  return kb;
}

/* ------------------------------------------------------------------------
 * The network, its optimizer and the fixed batch */

typedef struct bench {
  tg_tape *tape;
  tg_model *m;
  tg_optim *opt;
  tg_tensor *x; /* (B, C, H, W) owned, uniform in [0, 1) like pixels */
  tg_tensor *t; /* (B,) owned labels */
} bench;

static void die(const char *what, const char *msg) {
  fprintf(stderr, "bench_train: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
  exit(1);
}

/* The book's optimizer for a kind: SGD for the dense nets of chapters 5-6,
 * Adam for the convolutional nets of chapters 7-8. */
static const char *book_optimizer(const char *kind) {
  return strcmp(kind, "two-layer-net") == 0 || strcmp(kind, "multi-layer-net") == 0 ? "sgd"
                                                                                    : "adam";
}

static void bench_new(bench *b, const opts *o, const char **optname) {
  tg_error err = {0};
  tg_model_config cfg;
  if (tg_model_defaults(o->model, &cfg, &err) != TG_OK) {
    fprintf(stderr, "bench_train: model '%s' not available in this build (known:", o->model);
    for (const char *const *k = tg_model_kinds(); *k; k++)
      fprintf(stderr, " %s", *k);
    fprintf(stderr, ")\n");
    exit(3);
  }
  *optname = o->optimizer ? o->optimizer : book_optimizer(o->model);
  tg_optim_kind kind;
  if (tg_optim_parse(*optname, &kind) != TG_OK) {
    fprintf(stderr, "bench_train: --optimizer: unknown '%s'\n", *optname);
    exit(2);
  }
  tg_optim_config oc = tg_optim_defaults(kind);
  if (o->lr > 0)
    oc.lr = o->lr;
  else if (kind == TG_SGD)
    oc.lr = 0.1; /* the book's chapter-5 training, as `tapegrad train` */

  b->tape = tg_tape_new();
  if (!b->tape)
    die("out of memory", NULL);
  tg_tape_seed(b->tape, o->seed);
  b->m = tg_model_new(&cfg, tg_tape_rng(b->tape), &err);
  if (!b->m)
    die("cannot build the model", err.msg);
  b->opt = tg_optim_new(&oc, &b->m->params, &err);
  if (!b->opt)
    die("cannot make the optimizer", err.msg);

  int64_t shape[4] = {o->batch, cfg.input[0], cfg.input[1], cfg.input[2]};
  b->x = tg_tensor_new(shape, 4, 0, "x", &err);
  b->t = tg_tensor_new((int64_t[]){o->batch}, 1, 0, "t", &err);
  if (!b->x || !b->t)
    die("out of memory", err.msg);
  tg_rng *rng = tg_tape_rng(b->tape);
  for (int64_t i = 0; i < b->x->numel; i++)
    b->x->data[i] = (tg_real)tg_rng_uniform(rng);
  for (int64_t i = 0; i < o->batch; i++)
    b->t->data[i] = (tg_real)tg_rng_below(rng, (uint64_t)cfg.classes);
}

static void bench_free(bench *b) {
  tg_optim_free(b->opt);
  tg_model_free(b->m);
  tg_tensor_free(b->x);
  tg_tensor_free(b->t);
  tg_tape_free(b->tape);
}

/* One training step; the time of each phase in ph[0..3] (forward,
 * backward, update, whole step with the reset). Returns the loss. */
static double step(bench *b, double ph[4]) {
  double t0 = now_s();
  tg_tensor *loss = tg_model_loss(b->tape, b->m, tg_model_forward(b->tape, b->m, b->x), b->t);
  double t1 = now_s();
  if (!loss || tg_backward(b->tape, loss, NULL) != TG_OK)
    die("the step failed", tg_tape_error(b->tape));
  double t2 = now_s();
  tg_optim_step(b->opt);
  double t3 = now_s();
  double value = tg_at(loss, 0);
  tg_tape_reset(b->tape);
  double t4 = now_s();
  ph[0] = t1 - t0, ph[1] = t2 - t1, ph[2] = t3 - t2, ph[3] = t4 - t0;
  return value;
}

/* The loss on the batch in eval mode, without recording. */
static double eval_loss(bench *b) {
  int was_train = tg_tape_set_train(b->tape, 0), was_grad = tg_tape_set_grad(b->tape, 0);
  tg_tensor *loss = tg_model_loss(b->tape, b->m, tg_model_forward(b->tape, b->m, b->x), b->t);
  if (!loss)
    die("the forward pass failed", tg_tape_error(b->tape));
  double v = tg_at(loss, 0);
  tg_tape_reset(b->tape);
  tg_tape_set_train(b->tape, was_train);
  tg_tape_set_grad(b->tape, was_grad);
  return v;
}

/* --profile: o->repeats more steps with the profiler on; its table and
 * one JSON line per kind of op. */
static void profile(bench *b, const opts *o) {
  double ph[4];
  tg_tape_set_profile(b->tape, 1);
  for (long r = 0; r < o->repeats; r++)
    step(b, ph);
  tg_tape_set_profile(b->tape, 0);
  if (!o->json_only) {
    printf("op profile of %ld more steps (self time per kind of op):\n", o->repeats);
    tg_tape_write_profile(b->tape, stdout);
  }
  tg_op_profile rows[256];
  const int n = tg_tape_get_profile(b->tape, rows, 256);
  for (int i = 0; i < n && i < 256; i++)
    printf("{\"bench\":\"train\",\"name\":\"%s/profile/%s\",\"model\":\"%s\",\"steps\":%ld,"
           "\"calls\":%lld,\"fwd_us\":%.3f,\"bw_calls\":%lld,\"bw_us\":%.3f,\"fwd_bytes\":%lld,"
           "\"bw_bytes\":%lld}\n",
           o->model, rows[i].name, o->model, o->repeats, (long long)rows[i].calls,
           1e6 * rows[i].fwd_s, (long long)rows[i].bw_calls, 1e6 * rows[i].bw_s,
           (long long)rows[i].fwd_bytes, (long long)rows[i].bw_bytes);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  opts o;
  parse(argc, argv, &o);
  if (o.threads > 0)
    tg_set_threads((int)o.threads);
  const int threads = tg_threads();
  bench b;
  const char *optname;
  bench_new(&b, &o, &optname);

  /* Validate: the loss is finite and goes down on the fixed batch. */
  double ph[4], first = eval_loss(&b);
  for (long i = 0; i < o.validate_steps; i++)
    if (!isfinite(step(&b, ph)))
      die("validation: the loss is not finite", NULL);
  double last = eval_loss(&b);
  if (!isfinite(first) || !(last < first)) {
    fprintf(stderr, "bench_train: validation: eval loss %g after %ld steps, %g before\n", last,
            o.validate_steps, first);
    die("validation: the loss does not decrease on a fixed batch", NULL);
  }

  for (long i = 0; i < o.warmup; i++)
    step(&b, ph);
  uint64_t allocs0 = tg_tape_get_stats(b.tape).sys_allocs;
  double *v = malloc(4 * (size_t)o.repeats * sizeof *v); /* (4, repeats) */
  if (!v)
    die("out of memory", NULL);
  for (long r = 0; r < o.repeats; r++) {
    if (!isfinite(step(&b, ph)))
      die("the loss became non-finite while timed", NULL);
    for (int k = 0; k < 4; k++)
      v[k * o.repeats + r] = ph[k];
  }
  tg_tape_stats st = tg_tape_get_stats(b.tape);
  uint64_t allocs = st.sys_allocs - allocs0;
  const long rss = peak_rss_kb();

  static const char *phase[4] = {"forward", "backward", "update", "step"};
  double med[4], lo[4], hi[4], mean[4] = {0};
  for (int k = 0; k < 4; k++) {
    double *s = v + k * o.repeats;
    for (long r = 0; r < o.repeats; r++)
      mean[k] += s[r] / (double)o.repeats;
    med[k] = median(s, (int)o.repeats);
    lo[k] = s[0];
    hi[k] = s[o.repeats - 1];
  }
  if (!o.json_only) {
    printf("bench_train: %s, %lld parameters, batch %ld, %s, tg_real = %s, %d threads\n", o.model,
           (long long)tg_params_numel(&b.m->params), o.batch, optname, TG_REAL_NAME, threads);
    printf(
        "  validated: eval loss %.4f -> %.4f after %ld steps on one batch; %ld repeats after %ld "
        "warm-up\n",
        first, last, o.validate_steps, o.repeats, o.warmup);
    printf("  %-9s %11s %11s %11s %11s %8s\n", "phase", "median us", "mean us", "min us", "max us",
           "% step");
    for (int k = 0; k < 4; k++)
      printf("  %-9s %11.1f %11.1f %11.1f %11.1f %7.1f%%\n", phase[k], 1e6 * med[k], 1e6 * mean[k],
             1e6 * lo[k], 1e6 * hi[k], 100 * med[k] / med[3]);
    printf("  %.0f samples/s; arena peak %.2f MiB (%zu bytes); %llu system allocations in %ld "
           "steady-state steps; peak RSS %.1f MiB\n",
           (double)o.batch / med[3], (double)st.arena_peak / 1048576.0, st.arena_peak,
           (unsigned long long)allocs, o.repeats, (double)rss / 1024.0);
  }
  for (int k = 0; k < 4; k++) {
    printf("{\"bench\":\"train\",\"name\":\"%s/%s\",\"median_us\":%.3f,\"mean_us\":%.3f,"
           "\"min_us\":%.3f,\"max_us\":%.3f,\"threads\":%d,\"model\":\"%s\",\"batch\":%ld,"
           "\"optimizer\":\"%s\"",
           o.model, phase[k], 1e6 * med[k], 1e6 * mean[k], 1e6 * lo[k], 1e6 * hi[k], threads,
           o.model, o.batch, optname);
    if (k == 3)
      printf(",\"samples_per_s\":%.1f,\"arena_peak_bytes\":%zu,\"sys_allocs\":%llu,"
             "\"peak_rss_kb\":%ld",
             (double)o.batch / med[3], st.arena_peak, (unsigned long long)allocs, rss);
    printf("}\n");
  }
  free(v);
  if (o.profile)
    profile(&b, &o);
  bench_free(&b);
  if (allocs != 0) {
    fprintf(stderr,
            "bench_train: %llu system allocations during %ld steady-state steps (must be 0)\n",
            (unsigned long long)allocs, o.repeats);
    return 1;
  }
  return 0;
}
