/* bench_augment.c — what on-the-fly augmentation (crop:2,flip,erase by
 * default, any spec with --augment) costs a training step of
 * simple-convnet: the same steps timed with and without it, alternately,
 * and the ratio of the medians; the augmentation of one batch alone too. It validates first: the
 * batch function matches the single-image one sample by sample, and it changes the batch. Steps
 * alternate one by one (steps x repeats of each); the median step is
 * the figure, since a shared machine's noise is much larger than the
 * augmentation's own cost (printed apart as "alone").
 * usage: bench_augment [--steps N] [--repeats R] [--batch B] [--threads T]
 *                      [--augment SPEC] [--json]
 */
#include <getopt.h>
#include <math.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"

static void die(const char *what, const char *msg) {
  fprintf(stderr, "bench_augment: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
  exit(1);
}

static long arg_long(const char *flag, const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "bench_augment: --%s: '%s' is not an integer in [%ld, %ld]\n", flag, s, lo, hi);
    exit(2);
  }
  return v;
}

typedef struct run {
  tg_tape *tape;
  tg_model *m;
  tg_optim *opt;
  tg_dataset ds; /* synthetic: random pixels and labels */
  int64_t *order;
  long batch;
} run;

/* `steps` training steps from sample `first` on, augmented when a is not
 * NULL, as tapegrad train runs them; returns the seconds they took. */
static double steps(run *r, const tg_augment *a, long n, int64_t first) {
  double t0 = now_s();
  for (long s = 0; s < n; s++) {
    int64_t start = (first + s * r->batch) % (r->ds.n - r->batch + 1);
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(r->tape, &r->ds, r->order, start, r->batch, 0, &t);
    if (x && a) {
      tg_tensor *ax = tg_empty(r->tape, x->shape, x->ndim); /* (B, 1, 28, 28) */
      if (ax)
        tg_augment_batch(a, x->data, ax->data, r->batch, 28, 28, 7, r->order + start);
      x = ax;
    }
    tg_tensor *loss = tg_model_loss(r->tape, r->m, tg_model_forward(r->tape, r->m, x), t);
    if (!loss || tg_backward(r->tape, loss, NULL) != TG_OK || !isfinite(tg_at(loss, 0)))
      die("a training step failed", tg_tape_error(r->tape));
    tg_optim_step(r->opt);
    tg_tape_reset(r->tape);
  }
  return now_s() - t0;
}

int main(int argc, char **argv) {
  long n_steps = 10, repeats = 4, batch = 100, threads = 0;
  int json_only = 0;
  const char *spec = "crop:2,flip,erase";
  static const struct option opts[] = {{"steps", required_argument, 0, 's'},
                                       {"repeats", required_argument, 0, 'r'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"threads", required_argument, 0, 't'},
                                       {"augment", required_argument, 0, 'a'},
                                       {"json", no_argument, 0, 'j'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 's')
      n_steps = arg_long("steps", optarg, 1, 100000);
    else if (c == 'r')
      repeats = arg_long("repeats", optarg, 1, MAX_SAMPLES);
    else if (c == 'b')
      batch = arg_long("batch", optarg, 1, 1000);
    else if (c == 't')
      threads = arg_long("threads", optarg, 1, 1024);
    else if (c == 'a')
      spec = optarg;
    else if (c == 'j')
      json_only = 1;
    else {
      fprintf(stderr, "usage: bench_augment [--steps N] [--repeats R] [--batch B] "
                      "[--threads T] [--augment SPEC] [--json]\n");
      return 2;
    }
  }
  if (threads > 0)
    tg_set_threads((int)threads);

  run r = {.batch = batch};
  tg_error err = {0};
  tg_model_config cfg;
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  const int64_t n = 2000, px = 28 * 28;
  r.ds = (tg_dataset){.n = n,
                      .rows = 28,
                      .cols = 28,
                      .classes = 10,
                      .pixels = malloc((size_t)(n * px)),
                      .labels = malloc((size_t)n)};
  r.order = malloc((size_t)n * sizeof *r.order);
  r.tape = tg_tape_new();
  if (!r.ds.pixels || !r.ds.labels || !r.order || !r.tape)
    die("out of memory", NULL);
  for (int64_t i = 0; i < n * px; i++)
    r.ds.pixels[i] = (uint8_t)tg_rng_below(&rng, 256);
  for (int64_t i = 0; i < n; i++)
    r.ds.labels[i] = (uint8_t)tg_rng_below(&rng, 10);
  for (int64_t i = 0; i < n; i++)
    r.order[i] = i;
  tg_shuffle(r.order, n, &rng);
  if (tg_model_defaults("simple-convnet", &cfg, &err) != TG_OK ||
      !(r.m = tg_model_new(&cfg, &rng, &err)))
    die("cannot build simple-convnet", err.msg);
  tg_optim_config oc = tg_optim_defaults(TG_ADAM);
  if (!(r.opt = tg_optim_new(&oc, &r.m->params, &err)))
    die("cannot make the optimizer", err.msg);
  tg_augment a;
  char name[64], with[80], alone_name[80];
  if (tg_augment_parse(spec, &a, &err) != TG_OK)
    die("--augment", err.msg);
  tg_augment_format(&a, name, sizeof name);
  snprintf(with, sizeof with, "step + %s", name);
  snprintf(alone_name, sizeof alone_name, "%s alone", name);

  /* Validate: the batch function is the single-image one, sample by
   * sample, and it changes images. */
  {
    tg_tensor *x = tg_dataset_batch(r.tape, &r.ds, r.order, 0, batch, 0, NULL);
    tg_tensor *ax = tg_empty(r.tape, x ? x->shape : (int64_t[]){1}, x ? x->ndim : 1);
    tg_real *one = malloc(sizeof(tg_real) * (size_t)px);
    if (!x || !ax || !one)
      die("validation: out of memory", tg_tape_error(r.tape));
    tg_augment_batch(&a, x->data, ax->data, batch, 28, 28, 7, r.order);
    long changed = 0;
    for (long i = 0; i < batch; i++) {
      tg_augment_image(&a, x->data + i * px, one, 28, 28, tg_augment_key(7, r.order[i]));
      if (memcmp(one, ax->data + i * px, sizeof(tg_real) * (size_t)px) != 0)
        die("validation: the batch differs from the single-image augmentation", NULL);
      changed += memcmp(one, x->data + i * px, sizeof(tg_real) * (size_t)px) != 0;
    }
    if (changed == 0)
      die("validation: augmentation left every image as it was", NULL);
    free(one);
    tg_tape_reset(r.tape);
  }

  /* Warm up both, then one step of each in turn, swapping which goes
   * first, so the drift of a shared machine falls on both alike; each
   * sample is one step. */
  steps(&r, NULL, 3, 0);
  steps(&r, &a, 3, 0);
  series plain = {0}, aug = {0}, alone = {0};
  for (long k = 0; k < n_steps * repeats && aug.n < MAX_SAMPLES; k++) {
    int64_t first = k * batch;
    if (k % 2) {
      aug.v[aug.n++] = steps(&r, &a, 1, first);
      plain.v[plain.n++] = steps(&r, NULL, 1, first);
    } else {
      plain.v[plain.n++] = steps(&r, NULL, 1, first);
      aug.v[aug.n++] = steps(&r, &a, 1, first);
    }
  }
  tg_tensor *x = tg_dataset_batch(r.tape, &r.ds, r.order, 0, batch, 0, NULL);
  tg_tensor *ax = x ? tg_empty(r.tape, x->shape, x->ndim) : NULL;
  if (!ax)
    die("out of memory", tg_tape_error(r.tape));
  for (long k = 0; k < 200 && alone.n < MAX_SAMPLES; k++) {
    double t0 = now_s();
    tg_augment_batch(&a, x->data, ax->data, batch, 28, 28, (uint64_t)k, r.order);
    alone.v[alone.n++] = now_s() - t0;
  }
  tg_tape_reset(r.tape);

  const int nthreads = tg_threads();
  series sp = plain, sa = aug, sl = alone; /* json_line sorts; keep copies */
  double mp = median(&sp), ma = median(&sa), ml = median(&sl);
  if (!json_only) {
    printf("bench_augment: simple-convnet, batch %ld, %ld steps each, interleaved, tg_real = %s, "
           "%d threads\n",
           batch, n_steps * repeats, sizeof(tg_real) == 8 ? "double" : "float", nthreads);
    printf("  %-32s %11s %11s %11s\n", "", "median us", "min us", "max us");
    printf("  %-32s %11.1f %11.1f %11.1f\n", "step", 1e6 * mp, 1e6 * sp.v[0], 1e6 * sp.v[sp.n - 1]);
    printf("  %-32s %11.1f %11.1f %11.1f\n", with, 1e6 * ma, 1e6 * sa.v[0], 1e6 * sa.v[sa.n - 1]);
    printf("  %-32s %11.1f %11.1f %11.1f\n", alone_name, 1e6 * ml, 1e6 * sl.v[0],
           1e6 * sl.v[sl.n - 1]);
    printf("  ratio (augmented / plain step): %.4f; the augmentation alone is %.2f%% of a "
           "step\n",
           ma / mp, 100 * ml / mp);
  }
  json_line("augment", "step", &plain, nthreads, -1, -1, -1);
  snprintf(with, sizeof with, "step+%s", name);
  snprintf(alone_name, sizeof alone_name, "%s-alone", name);
  json_line("augment", with, &aug, nthreads, -1, -1, -1);
  json_line("augment", alone_name, &alone, nthreads, -1, -1, -1);
  printf("{\"bench\":\"augment\",\"name\":\"ratio\",\"augment\":\"%s\",\"ratio\":%.4f,"
         "\"alone_fraction\":%.5f,\"threads\":%d}\n",
         name, ma / mp, ml / mp, nthreads);

  tg_optim_free(r.opt);
  tg_model_free(r.m);
  tg_tape_free(r.tape);
  tg_dataset_free(&r.ds);
  free(r.order);
  return 0;
}
