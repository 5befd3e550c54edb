/* train.c — `tapegrad train` and `tapegrad eval`: the book's training loop
 * as a program, with checkpoints that resume exactly, alone or as one rank
 * of an MPI job (dist.h).
 *
 * Every epoch reseeds the tape's generator from (seed, epoch), and that
 * generator drives the shuffle; Dropout's masks and the augmentation are
 * keyed by (seed, epoch, sample), so a sample's are the same in whatever
 * micro-batch it lands. With the weights and the optimizer state in the
 * checkpoint, N epochs + resume + M epochs is the same computation as
 * N + M epochs in one run.
 *
 * Each global batch is V micro-batches (--shards; one per rank without
 * it), each a forward and backward of its own (so Batch Norm's statistics
 * are the micro-batch's), whose gradients tg_dist_shards sums in one fixed
 * tree: rank r of N computes its V/N consecutive ones, and the weights
 * are the same bits at every N dividing V. Rank 0 alone prints, writes
 * checkpoints and reads the one resumed from; a failure every rank knows
 * of ends each rank cleanly, one only a rank knows of ends the job with
 * MPI_Abort. The command lines are parsed in options.c.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "holdout.h"
#include "pictures.h"
#include "plot.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t epoch_seed(uint64_t seed, long long epoch) {
  return seed * 0x9e3779b97f4a7c15ULL + (uint64_t)epoch + 1;
}

/* ------------------------------------------------------------------------
 * The checkpoint's text header */

int session_meta_write(const train_opts *o, long long epochs_done, char *buf, size_t cap) {
  char model[1024];
  if (tg_model_config_write(&o->model, model, sizeof model) != TG_OK)
    return TG_ERR_ARG;
  const tg_optim_config *c = &o->optim;
  const tg_schedule *sc = &o->sched;
  char aug[64];
  if (tg_augment_format(&o->augment, aug, sizeof aug) != TG_OK)
    return TG_ERR_ARG;
  int n = snprintf(buf, cap,
                   "%soptimizer=%s\nlr=%.17g\nmomentum=%.17g\ndecay_rate=%.17g\nbeta1=%.17g\n"
                   "beta2=%.17g\nseed=%llu\nbatch=%lld\nepochs_done=%lld\n",
                   model, tg_optim_name(c->kind), c->lr, c->momentum, c->decay_rate, c->beta1,
                   c->beta2, o->seed, o->batch, epochs_done);
  /* The schedule and the validation state: absent from older checkpoints,
   * which read as a constant rate without validation. */
  int m = n < 0 || (size_t)n >= cap
              ? -1
              : snprintf(buf + n, cap - (size_t)n,
                         "schedule=%s\nwarmup=%.17g\nstep_size=%.17g\ngamma=%.17g\n"
                         "schedule_epochs=%.17g\nval=%lld\nbest_val_acc=%.17g\nbest_epoch=%lld\n"
                         "augment=%s\ndata=%s\nshards=%lld\n",
                         tg_schedule_name(sc->kind), sc->warmup, sc->step_size, sc->gamma,
                         sc->epochs, o->val, o->best_val_acc, o->best_epoch, aug,
                         o->data && !strchr(o->data, '\n') && strlen(o->data) < 200 ? o->data : "?",
                         o->shards);
  return m >= 0 && (size_t)m < cap - (size_t)n ? TG_OK : TG_ERR_ARG;
}

/* The value of key in meta's "key=value" lines, copied into buf; 0 if absent. */
static int meta_get(const char *meta, const char *key, char *buf, size_t cap) {
  size_t k = strlen(key);
  for (const char *p = meta; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, key, k) == 0 && p[k] == '=') {
      const char *v = p + k + 1, *e = strchr(v, '\n');
      size_t n = e ? (size_t)(e - v) : strlen(v);
      if (n >= cap)
        return 0;
      memcpy(buf, v, n);
      buf[n] = '\0';
      return 1;
    }
  }
  return 0;
}

int session_meta_read(const char *meta, train_opts *o, long long *epochs_done, tg_error *err) {
  if (tg_model_config_read(meta, &o->model, err) != TG_OK)
    return err->status;
  char v[128];
  if (!meta_get(meta, "optimizer", v, sizeof v) || tg_optim_parse(v, &o->optim.kind) != TG_OK)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: no valid optimizer= line");
  struct {
    const char *key;
    double *dst;
  } reals[] = {{"lr", &o->optim.lr},
               {"momentum", &o->optim.momentum},
               {"decay_rate", &o->optim.decay_rate},
               {"beta1", &o->optim.beta1},
               {"beta2", &o->optim.beta2}};
  for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
    char *end;
    if (!meta_get(meta, reals[i].key, v, sizeof v))
      return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: no %s= line", reals[i].key);
    *reals[i].dst = strtod(v, &end);
    if (*end != '\0')
      return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: bad %s '%s'", reals[i].key, v);
  }
  char s[64], b[64], e[64];
  if (!meta_get(meta, "seed", s, sizeof s) || !meta_get(meta, "batch", b, sizeof b) ||
      !meta_get(meta, "epochs_done", e, sizeof e))
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: seed, batch or epochs_done missing");
  o->seed = strtoull(s, NULL, 10);
  o->batch = atoll(b);
  *epochs_done = atoll(e);
  if (o->batch < 1 || *epochs_done < 0)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: batch %lld, epochs_done %lld", o->batch,
                        *epochs_done);
  o->sched = tg_schedule_constant(o->optim.lr);
  o->val = 0;
  o->shards = 0;
  memset(&o->augment, 0, sizeof o->augment);
  o->best_val_acc = -1;
  o->best_epoch = 0;
  if (!meta_get(meta, "schedule", v, sizeof v))
    return TG_OK; /* an older checkpoint: constant, no validation */
  if (tg_schedule_parse(v, &o->sched.kind) != TG_OK)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: bad schedule '%s'", v);
  struct {
    const char *key;
    double *dst;
  } more[] = {{"warmup", &o->sched.warmup},
              {"step_size", &o->sched.step_size},
              {"gamma", &o->sched.gamma},
              {"schedule_epochs", &o->sched.epochs},
              {"best_val_acc", &o->best_val_acc}};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
    char *end;
    if (!meta_get(meta, more[i].key, v, sizeof v))
      return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: no %s= line", more[i].key);
    *more[i].dst = strtod(v, &end);
    if (*end != '\0')
      return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: bad %s '%s'", more[i].key, v);
  }
  if (!meta_get(meta, "val", s, sizeof s) || !meta_get(meta, "best_epoch", b, sizeof b))
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: val or best_epoch missing");
  o->val = atoll(s);
  o->best_epoch = atoll(b);
  /* V; absent (older checkpoints) or 0: one micro-batch per rank. */
  o->shards = meta_get(meta, "shards", s, sizeof s) ? atoll(s) : 0;
  if (o->shards < 0 || o->shards > o->batch)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: shards=%lld with batch=%lld", o->shards,
                        o->batch);
  if (!meta_get(meta, "data", o->data_name, sizeof o->data_name))
    o->data_name[0] = '\0';
  if (meta_get(meta, "augment", v, sizeof v) && strcmp(v, "none") != 0 &&
      tg_augment_parse(v, &o->augment, err) != TG_OK)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: bad augment '%s'", v);
  if (o->val < 0 || tg_schedule_check(&o->sched, err) != TG_OK)
    return tg_error_set(err, TG_ERR_FORMAT, "checkpoint: bad schedule or val=%lld", o->val);
  return TG_OK;
}

/* ------------------------------------------------------------------------
 * Evaluation: loss and accuracy over a whole set, eval mode, no grad */

/* Over the first `limit` samples of ds (0: all), in batches of `batch`,
 * with the mirror images too when tta is 1 (cli_scores); rank r of a job
 * takes the r-th of N contiguous parts. The correct
 * answers are counted as integers and the losses added in rank order, so
 * every rank ends with the same loss and accuracy. */
static int evaluate(tg_tape *tape, tg_model *m, tg_dist *d, const tg_dataset *ds, int64_t limit,
                    int64_t batch, int tta, double *loss, double *acc) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
  int was_prof = tg_tape_set_profile(tape, 0); /* --profile: the training steps only */
  int flatten = 0, N = tg_dist_size(d), r = tg_dist_rank(d);
  struct part {
    double loss;
    int64_t correct;
  } mine = {0, 0};
  int st = TG_OK;
  int64_t n = limit > 0 && limit < ds->n ? limit : ds->n;
  int64_t lo = n * r / N, hi = n * (r + 1) / N;
  for (int64_t start = lo; start < hi; start += batch) {
    int64_t count = hi - start < batch ? hi - start : batch;
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, ds, NULL, start, count, flatten, &t);
    tg_tensor *logits = cli_scores(tape, m, x, tta);
    tg_tensor *l = tg_softmax_cross_entropy(tape, logits, t);
    if (!l) {
      st = tg_tape_status(tape);
      break;
    }
    mine.loss += tg_at(l, 0) * (double)count;
    mine.correct += llround(tg_accuracy(tape, logits, t) * (double)count);
    tg_tape_reset(tape);
  }
  tg_tape_set_train(tape, was_train);
  tg_tape_set_grad(tape, was_grad);
  tg_tape_set_profile(tape, was_prof);
  if (st != TG_OK)
    return st; /* this rank alone: the caller ends the job */
  tg_error err = {0};
  struct part *parts = malloc((size_t)N * sizeof *parts); /* (N,) */
  if (!parts || tg_dist_allgather(d, &mine, sizeof mine, parts, &err) != TG_OK)
    tg_dist_abort(d, parts ? err.msg : "tapegrad: evaluation: out of memory");
  double loss_sum = 0;
  int64_t correct = 0;
  for (int k = 0; k < N; k++) {
    loss_sum += parts[k].loss;
    correct += parts[k].correct;
  }
  free(parts);
  *loss = loss_sum / (double)n;
  *acc = (double)correct / (double)n;
  return TG_OK;
}

/* ------------------------------------------------------------------------
 * train */

static void progress(int tty, long long epoch, long long epochs, int64_t done, int64_t total,
                     double loss) {
  if (!tty)
    return;
  int width = 30, fill = (int)(width * done / (total ? total : 1));
  fprintf(stderr, "\repoch %lld/%lld [%.*s%*s] %lld/%lld loss %.4f", epoch, epochs, fill,
          "##############################", width - fill, "", (long long)done, (long long)total,
          loss);
  if (done == total)
    fprintf(stderr, "\r%*s\r", 80, "");
  fflush(stderr);
}

/* Draws the first layer's filters to PREFIX-WHEN.png, one cell per unit:
 * a convolution's filters (FN, C, FH, FW) as they are, a dense layer's
 * weights (C·H·W, units) as `units` images of the input's shape. Each
 * scaled to its own range, dark = high, as the book's visualize_filter. */
static int draw_filters(const train_opts *o, const tg_model *m, const char *when) {
  const tg_tensor *W = m->W[0];
  const int64_t *in = o->model.input;
  tg_tensor *img = NULL;
  tg_error err = {0};
  if (W->ndim == 2) {
    int64_t d = W->shape[0], units = W->shape[1];
    img = tg_tensor_new((int64_t[]){units, in[0], in[1], in[2]}, 4, 0, "filters", &err);
    for (int64_t u = 0; img && u < units; u++)
      for (int64_t i = 0; i < d; i++)
        img->data[u * d + i] = W->data[i * units + u];
    W = img;
  }
  char path[4096];
  int n = snprintf(path, sizeof path, "%s-%s.png", o->filters, when);
  tg_image_grid_opts go = {.per_image_range = 1, .invert = 1, .scale = W->shape[2] > 16 ? 2 : 8};
  int st = !W ? err.status
           : n < 0 || n >= (int)sizeof path
               ? tg_error_set(&err, TG_ERR_ARG, "--filters: path too long")
               : tg_plot_image_grid(path, W, &go, &err);
  tg_tensor_free(img);
  if (st != TG_OK) {
    say(o, "train", "%s", err.msg);
    return EXIT_FAIL;
  }
  if (!o->json && !o->quiet)
    printf("%s: the first layer's filters %s training\n", path, when);
  return EXIT_OK;
}

/* Whether a checkpoint can be written at path: its directory exists, is a
 * directory and is writable, and path is not a directory. Checked before training, so that a typo
 * in
 * --save costs no epoch; the save itself still checks every step. */
static int save_dir_ok(const train_opts *o, const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  if (n >= sizeof dir) {
    say(o, "train", "--save %s: path too long", path);
    return 0;
  }
  memcpy(dir, slash ? path : ".", n);
  dir[n] = '\0';
  if (slash && n == 0)
    strcpy(dir, "/");
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    say(o, "train", "cannot save to %s: it is a directory", path);
    return 0;
  }
  errno = 0;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
    say(o, "train", "cannot save to %s: %s: %s", path, dir,
        errno ? strerror(errno) : "not a directory");
    return 0;
  }
  return 1;
}

/* Whether the model takes ds's images, said before the first step: a
 * 28×28 network is never fed 14×14 images resized behind the user's back
 * (tg_model_forward refuses them too, but only once training has begun). */
static int data_fits(const char *cmd, const train_opts *o, const tg_model *m, const tg_dataset *ds,
                     const char *which) {
  tg_error err = {0};
  if (tg_model_check_input(m, (int64_t[]){1, ds->rows, ds->cols}, 3, &err) == TG_OK)
    return 1;
  say(o, cmd, "%s, %s set: %s", o->data, which, err.msg);
  return 0;
}

/* Collective: rank 0 writes the checkpoint of o after `epoch` epochs to
 * path (atomically), and every rank learns whether it succeeded, so a
 * failed save stops them all. */
static int save(train_opts *o, tg_model *m, tg_optim *opt, long long epoch, const char *path) {
  char meta[TG_CHECKPOINT_META_MAX];
  tg_error err = {0};
  tg_params *lists[] = {&m->params, &m->buffers, &opt->state};
  int ok = 1;
  if (tg_dist_rank(o->dist) == 0 && (session_meta_write(o, epoch, meta, sizeof meta) != TG_OK ||
                                     tg_checkpoint_save(path, meta, lists, 3, &err) != TG_OK)) {
    say(o, "train", "%s", err.msg[0] ? err.msg : "checkpoint too large");
    ok = 0;
  }
  if (tg_dist_broadcast(o->dist, &ok, sizeof ok, 0, &err) != TG_OK)
    tg_dist_abort(o->dist, err.msg);
  tg_dist_step_done(o->dist); /* a save is progress too */
  if (!ok)
    o->failed_together = 1;
  return ok ? EXIT_OK : EXIT_FAIL;
}

/* One micro-batch: samples order[a .. a + n − 1] of a global batch of
 * `count`, forward and backward with the loss scaled by V·n/count, so
 * that the mean over the V micro-batches is the gradient of the batch's
 * mean loss (the factor is exactly 1 when they are equal). Adds its share
 * of the batch's loss to *loss. */
static int micro_batch(train_opts *o, tg_tape *tape, tg_model *m, const tg_dataset *train,
                       const int64_t *order, int64_t a, int64_t n, int64_t count, int V,
                       long long epoch, double *loss) {
  tg_tensor *t = NULL;
  tg_tensor *x = tg_dataset_batch(tape, train, order, a, n, 0, &t); /* (n, 1, rows, cols) */
  if (x && tg_augment_active(&o->augment)) {
    tg_tensor *ax = tg_empty(tape, x->shape, x->ndim); /* (n, 1, rows, cols) */
    if (ax)
      tg_augment_batch(&o->augment, x->data, ax->data, n, train->rows, train->cols,
                       epoch_seed(o->seed, epoch), order + a);
    x = ax;
  }
  m->sample_ids = order + a;
  m->dropout_key = epoch_seed(o->seed, epoch) ^ 0x6a09e667f3bcc909ULL;
  tg_tensor *l = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
  m->sample_ids = NULL;
  double w = (double)V * (double)n / (double)count;
  tg_tensor *scaled = w == 1 ? l : tg_mul_scalar(tape, l, (tg_real)w);
  if (!scaled || tg_backward(tape, scaled, NULL) != TG_OK)
    return TG_ERR_ARG;
  *loss += tg_at(l, 0) * (double)n / (double)count;
  return TG_OK;
}

static int run_training(train_opts *o, tg_model *m, tg_optim *opt) {
  tg_error err = {0};
  tg_dataset train = {0}, test = {0}, val = {0};
  int speak = tg_dist_rank(o->dist) == 0; /* rank 0 prints for the job */
  int ok = tg_dataset_open(o->data, &train, &test, &err) == TG_OK;
  if (!ok)
    say(o, "train", "%s", err.msg);
  ok =
      ok && data_fits("train", o, m, &train, "training") && data_fits("train", o, m, &test, "test");
  if (!all_ok(o, ok)) {
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return EXIT_FAIL;
  }
  if (o->limit > 0 && o->limit < train.n)
    train.n = o->limit;
  if (o->val > 0 && tg_dataset_holdout(&train, o->val, o->seed, &val, NULL, &err) != TG_OK) {
    if (err.status == TG_ERR_ARG)
      say(o, "train", "--val: %lld is not less than the %lld training samples", o->val,
          (long long)train.n);
    else
      say(o, "train", "%s", err.msg);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    o->failed_together = 1; /* the same data and options on every rank */
    return err.status == TG_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
  }
  if (o->val == 0 && (o->patience || o->save_best)) {
    say(o, "train", "--%s: the checkpoint holds out no validation set",
        o->patience ? "patience" : "save-best");
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    o->failed_together = 1;
    return EXIT_USAGE;
  }
  int V = o->shards ? (int)o->shards : tg_dist_size(o->dist);
  int64_t *order = malloc((size_t)train.n * sizeof *order);
  double *shares = malloc((size_t)tg_dist_size(o->dist) * sizeof *shares); /* (N,) */
  int64_t steps = (train.n + o->batch - 1) / o->batch;
  /* A job's compute seconds per step, for the step split: (steps + 1,) */
  double *split = tg_dist_size(o->dist) > 1 ? malloc((size_t)(steps + 1) * sizeof *split) : NULL;
  /* This run's epochs, for --plot: (7, epochs) */
  double *hist = o->plot && speak ? malloc(7 * (size_t)o->epochs * sizeof *hist) : NULL;
  curves cv = {.has_val = o->val > 0, .title = o->model.kind};
  if (hist) {
    double **col[] = {&cv.epoch,   &cv.train_loss, &cv.train_acc, &cv.val_loss,
                      &cv.val_acc, &cv.test_loss,  &cv.test_acc};
    for (int k = 0; k < 7; k++)
      *col[k] = hist + k * o->epochs;
  }
  tg_tape *tape = tg_tape_new();
  tg_dist_shards *sh = tg_dist_shards_new(o->dist, &m->params, &m->buffers, V, &err);
  FILE *metrics = NULL;
  int rc = EXIT_OK;
  if (!order || !shares || !tape || (o->plot && speak && !hist) || !sh ||
      (tg_dist_size(o->dist) > 1 && !split)) {
    say(o, "train", "%s", sh || !err.msg[0] ? "out of memory" : err.msg);
    rc = EXIT_FAIL;
    goto done;
  }
  ok = !speak ||
       ((!o->save || save_dir_ok(o, o->save)) && (!o->save_best || save_dir_ok(o, o->save_best)));
  if (ok && speak && o->metrics) {
    int fresh = access(o->metrics, F_OK) != 0 || !o->resume;
    metrics = fopen(o->metrics, fresh ? "w" : "a");
    if (!metrics)
      say(o, "train", "cannot write %s: %s", o->metrics, strerror(errno));
    else if (fresh)
      fprintf(metrics, "epoch,train_loss,train_acc,test_acc,seconds,lr%s\n",
              o->val ? ",val_loss,val_acc" : "");
    ok = metrics != NULL;
  }
  if (!all_ok(o, ok)) {
    rc = EXIT_FAIL;
    goto done;
  }
  int tty = speak && !o->quiet && isatty(2);
  long long last = o->start_epoch + o->epochs;
  int first, mine; /* this rank's micro-batches */
  tg_dist_shard_range(sh, &first, &mine);
  if (!o->json && !o->quiet && speak) {
    char job[96] = "";
    if (o->dist || V > 1)
      snprintf(job, sizeof job, ", %d micro-batch%s on %d rank%s", V, V > 1 ? "es" : "",
               tg_dist_size(o->dist), tg_dist_size(o->dist) > 1 ? "s" : "");
    printf("%s on %s: %lld train / %lld validation / %lld test samples, %lld parameters, %s lr "
           "%g (%s), batch %lld%s\n",
           o->model.kind, o->data, (long long)train.n, (long long)val.n, (long long)test.n,
           (long long)tg_params_numel(&m->params), tg_optim_name(o->optim.kind), o->optim.lr,
           tg_schedule_name(o->sched.kind), o->batch, job);
  }
  if (o->filters && speak && (rc = draw_filters(o, m, "before")) != EXIT_OK)
    goto done;
  tg_tape_set_profile(tape, o->profile);
  for (long long epoch = o->start_epoch + 1; epoch <= last; epoch++) {
    tg_tape_seed(tape, epoch_seed(o->seed, epoch));
    for (int64_t i = 0; i < train.n; i++)
      order[i] = i;
    tg_shuffle(order, train.n, tg_tape_rng(tape));
    double t0 = now(), loss_sum = 0; /* this rank's shares of the batches' losses */
    double x0, x1, in_step0, in_step1, split_s[3] = {0}; /* seconds in exchanges */
    int64_t b0, b1;                                      /* bytes sent */
    tg_dist_exchanged(o->dist, &x0, &b0);
    for (int64_t s = 0; s < steps; s++) {
      double step_t0 = now();
      tg_dist_exchanged(o->dist, &in_step0, NULL);
      int64_t start = s * o->batch;
      int64_t count = train.n - start < o->batch ? train.n - start : o->batch;
      tg_dist_shard_begin(sh);
      for (int k = first; k < first + mine; k++) {
        /* Micro-batch k of V: a contiguous part of the batch, empty when
         * the last batch has fewer samples than V (its gradient is 0). */
        int64_t a = start + count * k / V, b = start + count * (k + 1) / V;
        if (b > a &&
            micro_batch(o, tape, m, &train, order, a, b - a, count, V, epoch, &loss_sum) != TG_OK) {
          say(o, "train", "epoch %lld step %lld: %s", epoch, (long long)s, tg_tape_error(tape));
          rc = EXIT_FAIL;
          goto done;
        }
        tg_tape_reset(tape);
        if (tg_dist_shard_accumulate(sh, &err) != TG_OK) {
          say(o, "train", "%s", err.msg);
          rc = EXIT_FAIL;
          goto done;
        }
      }
      if (tg_dist_shard_allreduce(sh, &err) != TG_OK) {
        say(o, "train", "epoch %lld step %lld: %s", epoch, (long long)s, err.msg);
        rc = EXIT_FAIL;
        goto done;
      }
      tg_schedule_apply(&o->sched, opt, (epoch - 1) * steps + s, steps);
      tg_optim_step(opt);
      /* This rank's part of the next batch is asked for here, after the
       * update, so that its lines evict nothing this step uses. */
      int64_t next = start + o->batch, nc = train.n - next < o->batch ? train.n - next : o->batch;
      if (nc > 0)
        tg_dataset_prefetch(&train, order, next + nc * first / V,
                            nc * (first + mine) / V - nc * first / V);
      tg_dist_exchanged(o->dist, &in_step1, NULL);
      if (split)
        split[s] = now() - step_t0 - (in_step1 - in_step0);
      progress(tty, epoch, last, s + 1, steps, loss_sum / (double)(s + 1));
    }
    double seconds = now() - t0;
    tg_dist_exchanged(o->dist, &x1, &b1);
    char sjson[160] = ""; /* a job's step split */
    if (split) {
      step_split(o, split, steps, x1 - x0, split_s);
      snprintf(sjson, sizeof sjson,
               ",\"compute_s\":%.3f,\"exchange_s\":%.3f,\"wait_s\":%.3f,\"bytes_per_step\":%lld",
               split_s[0], split_s[1], split_s[2], (long long)((b1 - b0) / steps));
    }
    /* The ranks' shares of the loss, added in rank order. */
    double train_loss = 0, tr_l, tr_acc, te_l, te_acc, va_l = 0, va_acc = 0;
    if (tg_dist_allgather(o->dist, &loss_sum, sizeof loss_sum, shares, &err) != TG_OK) {
      say(o, "train", "%s", err.msg);
      rc = EXIT_FAIL;
      goto done;
    }
    for (int r = 0; r < tg_dist_size(o->dist); r++)
      train_loss += shares[r];
    train_loss /= (double)steps;
    if (evaluate(tape, m, o->dist, &train, o->eval_train, o->batch, 0, &tr_l, &tr_acc) != TG_OK ||
        (o->val &&
         evaluate(tape, m, o->dist, &val, 0, o->batch, o->tta, &va_l, &va_acc) != TG_OK) ||
        evaluate(tape, m, o->dist, &test, 0, o->batch, o->tta, &te_l, &te_acc) != TG_OK) {
      say(o, "train", "evaluation: %s", tg_tape_error(tape));
      rc = EXIT_FAIL;
      goto done;
    }
    tg_dist_step_done(o->dist);
    if (!isfinite(train_loss)) {
      if (speak)
        say(o, "train", "epoch %lld: the loss diverged (%g); lower --lr", epoch, train_loss);
      o->failed_together = 1;
      rc = EXIT_FAIL;
      goto done;
    }
    if (!same_weights(o, m, opt, epoch)) {
      rc = EXIT_FAIL;
      goto done;
    }
    double lr = opt->cfg.lr; /* the epoch's last update's */
    char vjson[96] = "", vtext[96] = "", vcsv[64] = "";
    if (o->val) {
      snprintf(vjson, sizeof vjson, ",\"val_loss\":%.6f,\"val_acc\":%.4f", va_l, va_acc);
      snprintf(vtext, sizeof vtext, "  val loss %.4f  val acc %.4f", va_l, va_acc);
      snprintf(vcsv, sizeof vcsv, ",%.6f,%.4f", va_l, va_acc);
    }
    if (speak && o->json)
      printf("{\"epoch\":%lld,\"train_loss\":%.6f,\"train_acc\":%.4f,\"test_acc\":%.4f,"
             "\"seconds\":%.6f,\"steps\":%lld,\"lr\":%.6g%s%s}\n",
             epoch, train_loss, tr_acc, te_acc, seconds, (long long)steps, lr, vjson, sjson);
    else if (speak)
      printf("epoch %3lld  train loss %.4f  train acc %.4f%s  test acc %.4f  lr %.3g  %.2f s\n",
             epoch, train_loss, tr_acc, vtext, te_acc, lr, seconds);
    fflush(stdout);
    if (metrics) {
      fprintf(metrics, "%lld,%.6f,%.4f,%.4f,%.3f,%.6g%s\n", epoch, train_loss, tr_acc, te_acc,
              seconds, lr, vcsv);
      fflush(metrics);
    }
    if (hist) {
      int64_t i = cv.n++;
      cv.epoch[i] = (double)epoch, cv.train_loss[i] = train_loss, cv.train_acc[i] = tr_acc;
      cv.val_loss[i] = va_l, cv.val_acc[i] = va_acc;
      cv.test_loss[i] = te_l, cv.test_acc[i] = te_acc;
      ok = draw_curves(o->plot, &cv, &err) == TG_OK;
      if (!ok)
        say(o, "train", "--plot: %s", err.msg);
    }
    if (!all_ok(o, !hist || ok)) {
      rc = EXIT_FAIL;
      goto done;
    }
    /* The best model: strictly better validation accuracy, so ties keep
     * the earlier (less trained) epoch. */
    int best = o->val && va_acc > o->best_val_acc;
    if (best) {
      o->best_val_acc = va_acc;
      o->best_epoch = epoch;
    }
    if ((best && o->save_best && (rc = save(o, m, opt, epoch, o->save_best)) != EXIT_OK) ||
        (o->save && (rc = save(o, m, opt, epoch, o->save)) != EXIT_OK))
      goto done;
    if (o->patience && epoch - o->best_epoch >= o->patience) {
      if (speak && o->json)
        printf("{\"stopped\":%lld,\"best_epoch\":%lld,\"best_val_acc\":%.4f}\n", epoch,
               o->best_epoch, o->best_val_acc);
      else if (speak)
        printf("stopped after epoch %lld: validation accuracy has not improved for %lld "
               "epochs (best %.4f at epoch %lld)\n",
               epoch, o->patience, o->best_val_acc, o->best_epoch);
      break;
    }
  }
  if (o->profile && speak)
    print_profile(tape, o->json, stdout);
  if (o->filters && speak)
    rc = draw_filters(o, m, "after");
  if (!all_ok(o, rc == EXIT_OK))
    rc = EXIT_FAIL;
done:
  if (metrics && fclose(metrics) != 0 && rc == EXIT_OK) {
    say(o, "train", "writing %s failed", o->metrics);
    rc = EXIT_FAIL;
  }
  tg_dist_shards_free(sh);
  tg_tape_free(tape);
  free(hist);
  free(shares);
  free(split);
  free(order);
  tg_dataset_free(&train);
  tg_dataset_free(&val);
  tg_dataset_free(&test);
  return rc;
}

/* Builds model and optimizer from o, or from the checkpoint o->resume.
 * In a job rank 0 alone reads the checkpoint and sends the others its
 * header and tensors, so the ranks need no shared filesystem. */
static int build(train_opts *o, const char *cmd, tg_model **m, tg_optim **opt) {
  tg_error err = {0};
  tg_rng rng;
  tg_rng_seed(&rng, o->seed);
  int root = tg_dist_rank(o->dist) == 0;
  if (o->resume) {
    char meta[TG_CHECKPOINT_META_MAX] = "";
    long long done = 0;
    const char *data = o->data;
    int ok = !root || tg_checkpoint_read_meta(o->resume, meta, sizeof meta, &err) == TG_OK;
    if (!ok)
      say(o, cmd, "%s: %s", o->resume, err.msg);
    if (!from_root(o, ok))
      return EXIT_FAIL;
    if (tg_dist_broadcast(o->dist, meta, sizeof meta, 0, &err) != TG_OK)
      tg_dist_abort(o->dist, err.msg);
    if (session_meta_read(meta, o, &done, &err) != TG_OK) {
      if (root)
        say(o, cmd, "%s: %s", o->resume, err.msg);
      o->failed_together = 1;
      return EXIT_FAIL;
    }
    o->data = data;
    o->start_epoch = done;
  }
  *m = tg_model_new(&o->model, &rng, &err);
  *opt = *m ? tg_optim_new(&o->optim, &(*m)->params, &err) : NULL;
  if (!*opt) { /* a bad configuration: the user's, or a checkpoint's */
    if (root)
      say(o, cmd, "%s", err.msg);
    o->failed_together = 1;
    return o->resume ? EXIT_FAIL : EXIT_USAGE;
  }
  if (o->resume) {
    tg_params *lists[] = {&(*m)->params, &(*m)->buffers, &(*opt)->state};
    int ok = !root || tg_checkpoint_load(o->resume, lists, 3, &err) == TG_OK;
    if (!ok)
      say(o, cmd, "%s", err.msg);
    if (!from_root(o, ok))
      return EXIT_FAIL;
    for (int l = 0; l < 3 && o->dist; l++)
      for (int i = 0; i < lists[l]->n; i++) {
        tg_tensor *t = lists[l]->items[i];
        if (tg_dist_broadcast(o->dist, t->data, t->numel * (int64_t)sizeof(tg_real), 0, &err) !=
            TG_OK)
          tg_dist_abort(o->dist, err.msg);
      }
    tg_optim_sync_step(*opt);
  }
  return EXIT_OK;
}

int session_open(train_opts *o, const char *cmd, tg_model **m, tg_optim **opt) {
  return build(o, cmd, m, opt);
}

int cmd_train(int argc, char **argv) {
  train_opts o;
  int rc = train_parse(argc, argv, &o, stderr);
  if (rc != EXIT_OK)
    return rc;
  if (o.help) {
    train_usage(stdout);
    return EXIT_OK;
  }
  int job = o.distributed == DIST_ON || (o.distributed == DIST_AUTO && under_mpirun());
  if (job && !tg_dist_available()) {
    fprintf(stderr,
            "tapegrad train: %s: this tapegrad was built without MPI; install Open MPI "
            "(libopenmpi-dev, openmpi-bin) and build with the meson option -Dmpi=enabled%s\n",
            o.distributed == DIST_ON ? "--distributed on" : "started by mpirun",
            o.distributed == DIST_ON ? "" : ", or pass --distributed off");
    return EXIT_USAGE;
  }
  if (o.threads > 0)
    tg_set_threads(o.threads);
  if (job) {
    tg_error err = {0};
    o.dist = tg_dist_new(NULL, NULL, &(tg_dist_options){.timeout = o.dist_timeout}, &err);
    if (!o.dist) {
      fprintf(stderr, "tapegrad train: %s\n", err.msg);
      return EXIT_FAIL;
    }
  }
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  rc = check_job(&o, NULL);
  if (rc == EXIT_OK)
    rc = build(&o, "train", &m, &opt);
  if (rc == EXIT_OK)
    rc = check_job(&o, m);
  int N = tg_dist_size(o.dist);
  if (rc == EXIT_OK && o.shards % N != 0) {
    if (tg_dist_rank(o.dist) == 0)
      say(&o, "train",
          "--shards %lld%s does not split over %d ranks: run a number of ranks that "
          "divides it",
          o.shards, o.resume ? " (the checkpoint's)" : "", N);
    o.failed_together = 1;
    rc = EXIT_USAGE;
  }
  if (rc == EXIT_OK)
    rc = run_training(&o, m, opt);
  if (o.plot)
    tg_plot_release_caches(); /* the fonts of the curves' text (leak checkers) */
  tg_optim_free(opt);
  tg_model_free(m);
  if (o.dist && rc != EXIT_OK && !o.failed_together)
    tg_dist_abort(o.dist, "tapegrad train: this rank failed; ending the job");
  tg_dist_free(o.dist);
  return rc;
}

/* ------------------------------------------------------------------------
 * eval */

int cmd_eval(int argc, char **argv) {
  train_opts o;
  int rc = eval_parse(argc, argv, &o, stderr);
  if (rc != EXIT_OK)
    return rc;
  if (o.help) {
    eval_usage(stdout);
    return EXIT_OK;
  }
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  rc = build(&o, "eval", &m, &opt);
  tg_dataset train = {0}, test = {0};
  tg_error err = {0};
  if (rc == EXIT_USAGE)
    rc = EXIT_FAIL; /* a checkpoint with a bad configuration is bad data */
  if (rc == EXIT_OK && tg_dataset_open(o.data, &train, &test, &err) != TG_OK) {
    say(&o, "eval", "%s", err.msg);
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK && !data_fits("eval", &o, m, &test, "test"))
    rc = EXIT_FAIL;
  if (rc == EXIT_OK) {
    tg_tape *tape = tg_tape_new();
    double loss, acc;
    if (!tape || evaluate(tape, m, NULL, &test, 0, o.batch, o.tta, &loss, &acc) != TG_OK) {
      say(&o, "eval", "%s", tape ? tg_tape_error(tape) : "out of memory");
      rc = EXIT_FAIL;
    } else if ((o.confusion || o.misclassified) && eval_pictures(&o, m, &test, &err) != TG_OK) {
      say(&o, "eval", "%s", err.msg);
      rc = EXIT_FAIL;
    } else if (o.json) {
      printf("{\"test_acc\":%.4f,\"test_loss\":%.6f%s}\n", acc, loss,
             o.tta ? ",\"tta\":\"flip\"" : "");
    } else {
      printf("%s after %lld epochs: test accuracy %.4f, test loss %.4f (%lld samples%s)\n",
             o.model.kind, o.start_epoch, acc, loss, (long long)test.n,
             o.tta ? ", each with its mirror image" : "");
    }
    tg_tape_free(tape);
  }
  if (o.confusion || o.misclassified)
    tg_plot_release_caches(); /* the fonts of the pictures' text (leak checkers) */
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_optim_free(opt);
  tg_model_free(m);
  return rc;
}
