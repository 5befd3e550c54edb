/* train.c — `tapegrad train` and `tapegrad eval`: the book's training loop
 * as a program, with checkpoints that resume exactly.
 *
 * Every epoch reseeds the tape's generator from (seed, epoch), and that
 * generator alone drives the shuffle and dropout; with the weights and the
 * optimizer state in the checkpoint, N epochs + resume + M epochs is the
 * same computation as N + M epochs in one run. The command lines are
 * parsed in options.c.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
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
  char aug[32];
  if (tg_augment_format(&o->augment, aug, sizeof aug) != TG_OK)
    return TG_ERR_ARG;
  int n = snprintf(buf, cap,
                   "%soptimizer=%s\nlr=%.17g\nmomentum=%.17g\ndecay_rate=%.17g\nbeta1=%.17g\n"
                   "beta2=%.17g\nseed=%llu\nbatch=%lld\nepochs_done=%lld\n",
                   model, tg_optim_name(c->kind), c->lr, c->momentum, c->decay_rate, c->beta1,
                   c->beta2, o->seed, o->batch, epochs_done);
  /* The schedule and the validation state: absent from older checkpoints,
   * which read as a constant rate without validation. */
  int m =
      n < 0 || (size_t)n >= cap
          ? -1
          : snprintf(buf + n, cap - (size_t)n,
                     "schedule=%s\nwarmup=%.17g\nstep_size=%.17g\ngamma=%.17g\n"
                     "schedule_epochs=%.17g\nval=%lld\nbest_val_acc=%.17g\nbest_epoch=%lld\n"
                     "augment=%s\ndata=%s\n",
                     tg_schedule_name(sc->kind), sc->warmup, sc->step_size, sc->gamma, sc->epochs,
                     o->val, o->best_val_acc, o->best_epoch, aug,
                     o->data && !strchr(o->data, '\n') && strlen(o->data) < 200 ? o->data : "?");
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

/* Over the first `limit` samples of ds (0: all), in batches of `batch`. */
static int evaluate(tg_tape *tape, tg_model *m, const tg_dataset *ds, int64_t limit, int64_t batch,
                    double *loss, double *acc) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
  int was_prof = tg_tape_set_profile(tape, 0); /* --profile: the training steps only */
  int flatten = 0;
  double loss_sum = 0, correct = 0;
  int st = TG_OK;
  int64_t n = limit > 0 && limit < ds->n ? limit : ds->n;
  for (int64_t start = 0; start < n; start += batch) {
    int64_t count = n - start < batch ? n - start : batch;
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, ds, NULL, start, count, flatten, &t);
    tg_tensor *logits = tg_model_forward(tape, m, x);
    tg_tensor *l = tg_softmax_cross_entropy(tape, logits, t);
    if (!l) {
      st = tg_tape_status(tape);
      break;
    }
    loss_sum += tg_at(l, 0) * (double)count;
    correct += tg_accuracy(tape, logits, t) * (double)count;
    tg_tape_reset(tape);
  }
  tg_tape_set_train(tape, was_train);
  tg_tape_set_grad(tape, was_grad);
  tg_tape_set_profile(tape, was_prof);
  *loss = loss_sum / (double)n;
  *acc = correct / (double)n;
  return st;
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
    fprintf(stderr, "tapegrad train: %s\n", err.msg);
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
static int save_dir_ok(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 1;
  if (n >= sizeof dir) {
    fprintf(stderr, "tapegrad train: --save %s: path too long\n", path);
    return 0;
  }
  memcpy(dir, slash ? path : ".", n);
  dir[n] = '\0';
  if (slash && n == 0)
    strcpy(dir, "/");
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fprintf(stderr, "tapegrad train: cannot save to %s: it is a directory\n", path);
    return 0;
  }
  errno = 0;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
    fprintf(stderr, "tapegrad train: cannot save to %s: %s: %s\n", path, dir,
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
  fprintf(stderr, "tapegrad %s: %s, %s set: %s\n", cmd, o->data, which, err.msg);
  return 0;
}

/* Runs the epochs of o on an already built model and optimizer. */
/* Writes the checkpoint of o after `epoch` epochs to path (atomically). */
static int save(const train_opts *o, tg_model *m, tg_optim *opt, long long epoch,
                const char *path) {
  char meta[TG_CHECKPOINT_META_MAX];
  tg_error err = {0};
  tg_params *lists[] = {&m->params, &m->buffers, &opt->state};
  if (session_meta_write(o, epoch, meta, sizeof meta) != TG_OK ||
      tg_checkpoint_save(path, meta, lists, 3, &err) != TG_OK) {
    fprintf(stderr, "tapegrad train: %s\n", err.msg[0] ? err.msg : "checkpoint too large");
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static int run_training(train_opts *o, tg_model *m, tg_optim *opt) {
  tg_error err = {0};
  tg_dataset train = {0}, test = {0}, val = {0};
  if (tg_dataset_open(o->data, &train, &test, &err) != TG_OK) {
    fprintf(stderr, "tapegrad train: %s\n", err.msg);
    return EXIT_FAIL;
  }
  if (!data_fits("train", o, m, &train, "training") || !data_fits("train", o, m, &test, "test")) {
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return EXIT_FAIL;
  }
  if (o->limit > 0 && o->limit < train.n)
    train.n = o->limit;
  if (o->val > 0 && tg_dataset_holdout(&train, o->val, o->seed, &val, NULL, &err) != TG_OK) {
    if (err.status == TG_ERR_ARG)
      fprintf(stderr, "tapegrad train: --val: %lld is not less than the %lld training samples\n",
              o->val, (long long)train.n);
    else
      fprintf(stderr, "tapegrad train: %s\n", err.msg);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return err.status == TG_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
  }
  if (o->val == 0 && (o->patience || o->save_best)) {
    fprintf(stderr, "tapegrad train: --%s: the checkpoint holds out no validation set\n",
            o->patience ? "patience" : "save-best");
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return EXIT_USAGE;
  }
  int64_t *order = malloc((size_t)train.n * sizeof *order);
  /* This run's epochs, for --plot: (7, epochs) */
  double *hist = o->plot ? malloc(7 * (size_t)o->epochs * sizeof *hist) : NULL;
  curves cv = {.has_val = o->val > 0, .title = o->model.kind};
  if (hist) {
    double **col[] = {&cv.epoch,   &cv.train_loss, &cv.train_acc, &cv.val_loss,
                      &cv.val_acc, &cv.test_loss,  &cv.test_acc};
    for (int k = 0; k < 7; k++)
      *col[k] = hist + k * o->epochs;
  }
  tg_tape *tape = tg_tape_new();
  FILE *metrics = NULL;
  int rc = EXIT_OK;
  if (!order || !tape || (o->plot && !hist)) {
    fprintf(stderr, "tapegrad train: out of memory\n");
    rc = EXIT_FAIL;
    goto done;
  }
  if ((o->save && !save_dir_ok(o->save)) || (o->save_best && !save_dir_ok(o->save_best))) {
    rc = EXIT_FAIL;
    goto done;
  }
  if (o->metrics) {
    int fresh = access(o->metrics, F_OK) != 0 || !o->resume;
    metrics = fopen(o->metrics, fresh ? "w" : "a");
    if (!metrics) {
      fprintf(stderr, "tapegrad train: cannot write %s: %s\n", o->metrics, strerror(errno));
      rc = EXIT_FAIL;
      goto done;
    }
    if (fresh)
      fprintf(metrics, "epoch,train_loss,train_acc,test_acc,seconds,lr%s\n",
              o->val ? ",val_loss,val_acc" : "");
  }
  int tty = !o->quiet && isatty(2);
  int64_t steps = (train.n + o->batch - 1) / o->batch;
  long long last = o->start_epoch + o->epochs;
  if (!o->json && !o->quiet)
    printf("%s on %s: %lld train / %lld validation / %lld test samples, %lld parameters, %s lr "
           "%g (%s), batch %lld\n",
           o->model.kind, o->data, (long long)train.n, (long long)val.n, (long long)test.n,
           (long long)tg_params_numel(&m->params), tg_optim_name(o->optim.kind), o->optim.lr,
           tg_schedule_name(o->sched.kind), o->batch);
  if (o->filters && (rc = draw_filters(o, m, "before")) != EXIT_OK)
    goto done;
  tg_tape_set_profile(tape, o->profile);
  for (long long epoch = o->start_epoch + 1; epoch <= last; epoch++) {
    tg_tape_seed(tape, epoch_seed(o->seed, epoch));
    for (int64_t i = 0; i < train.n; i++)
      order[i] = i;
    tg_shuffle(order, train.n, tg_tape_rng(tape));
    double t0 = now(), loss_sum = 0;
    for (int64_t s = 0; s < steps; s++) {
      int64_t start = s * o->batch;
      int64_t count = train.n - start < o->batch ? train.n - start : o->batch;
      tg_tensor *t = NULL;
      tg_tensor *x = tg_dataset_batch(tape, &train, order, start, count, 0, &t);
      tg_dataset_prefetch(&train, order, start + count, o->batch); /* the next batch's rows */
      if (x && (o->augment.crop_pad || o->augment.flip)) {
        tg_tensor *ax = tg_empty(tape, x->shape, x->ndim); /* (count, 1, rows, cols) */
        if (ax)
          tg_augment_batch(&o->augment, x->data, ax->data, count, train.rows, train.cols,
                           epoch_seed(o->seed, epoch), order + start);
        x = ax;
      }
      tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
      if (!loss || tg_backward(tape, loss, NULL) != TG_OK) {
        fprintf(stderr, "\ntapegrad train: epoch %lld step %lld: %s\n", epoch, (long long)s,
                tg_tape_error(tape));
        rc = EXIT_FAIL;
        goto done;
      }
      loss_sum += tg_at(loss, 0);
      tg_schedule_apply(&o->sched, opt, (epoch - 1) * steps + s, steps);
      tg_optim_step(opt);
      tg_tape_reset(tape);
      progress(tty, epoch, last, s + 1, steps, loss_sum / (double)(s + 1));
    }
    double seconds = now() - t0;
    double train_loss = loss_sum / (double)steps, tr_l, tr_acc, te_l, te_acc, va_l = 0, va_acc = 0;
    if (evaluate(tape, m, &train, o->eval_train, o->batch, &tr_l, &tr_acc) != TG_OK ||
        (o->val && evaluate(tape, m, &val, 0, o->batch, &va_l, &va_acc) != TG_OK) ||
        evaluate(tape, m, &test, 0, o->batch, &te_l, &te_acc) != TG_OK) {
      fprintf(stderr, "tapegrad train: evaluation: %s\n", tg_tape_error(tape));
      rc = EXIT_FAIL;
      goto done;
    }
    if (!isfinite(train_loss)) {
      fprintf(stderr, "tapegrad train: epoch %lld: the loss diverged (%g); lower --lr\n", epoch,
              train_loss);
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
    if (o->json)
      printf("{\"epoch\":%lld,\"train_loss\":%.6f,\"train_acc\":%.4f,\"test_acc\":%.4f,"
             "\"seconds\":%.3f,\"lr\":%.6g%s}\n",
             epoch, train_loss, tr_acc, te_acc, seconds, lr, vjson);
    else
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
      if (draw_curves(o->plot, &cv, &err) != TG_OK) {
        fprintf(stderr, "tapegrad train: --plot: %s\n", err.msg);
        rc = EXIT_FAIL;
        goto done;
      }
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
      if (o->json)
        printf("{\"stopped\":%lld,\"best_epoch\":%lld,\"best_val_acc\":%.4f}\n", epoch,
               o->best_epoch, o->best_val_acc);
      else
        printf("stopped after epoch %lld: validation accuracy has not improved for %lld "
               "epochs (best %.4f at epoch %lld)\n",
               epoch, o->patience, o->best_val_acc, o->best_epoch);
      break;
    }
  }
  if (o->profile)
    print_profile(tape, o->json, stdout);
  if (o->filters)
    rc = draw_filters(o, m, "after");
done:
  if (metrics && fclose(metrics) != 0 && rc == EXIT_OK) {
    fprintf(stderr, "tapegrad train: writing %s failed\n", o->metrics);
    rc = EXIT_FAIL;
  }
  tg_tape_free(tape);
  free(hist);
  free(order);
  tg_dataset_free(&train);
  tg_dataset_free(&val);
  tg_dataset_free(&test);
  return rc;
}

/* Builds model and optimizer from o, or from the checkpoint o->resume. */
static int build(train_opts *o, const char *cmd, tg_model **m, tg_optim **opt) {
  tg_error err = {0};
  tg_rng rng;
  tg_rng_seed(&rng, o->seed);
  if (o->resume) {
    char meta[TG_CHECKPOINT_META_MAX];
    long long done = 0;
    const char *data = o->data;
    if (tg_checkpoint_read_meta(o->resume, meta, sizeof meta, &err) != TG_OK ||
        session_meta_read(meta, o, &done, &err) != TG_OK) {
      fprintf(stderr, "tapegrad %s: %s: %s\n", cmd, o->resume, err.msg);
      return EXIT_FAIL;
    }
    o->data = data;
    o->start_epoch = done;
  }
  *m = tg_model_new(&o->model, &rng, &err);
  *opt = *m ? tg_optim_new(&o->optim, &(*m)->params, &err) : NULL;
  if (!*opt) { /* a bad configuration: the user's, or a checkpoint's */
    fprintf(stderr, "tapegrad %s: %s\n", cmd, err.msg);
    return o->resume ? EXIT_FAIL : EXIT_USAGE;
  }
  if (o->resume) {
    tg_params *lists[] = {&(*m)->params, &(*m)->buffers, &(*opt)->state};
    if (tg_checkpoint_load(o->resume, lists, 3, &err) != TG_OK) {
      fprintf(stderr, "tapegrad %s: %s\n", cmd, err.msg);
      return EXIT_FAIL;
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
  if (o.threads > 0)
    omp_set_num_threads(o.threads);
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  rc = build(&o, "train", &m, &opt);
  if (rc == EXIT_OK)
    rc = run_training(&o, m, opt);
  if (o.plot)
    tg_plot_release_caches(); /* the fonts of the curves' text (leak checkers) */
  tg_optim_free(opt);
  tg_model_free(m);
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
    fprintf(stderr, "tapegrad eval: %s\n", err.msg);
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK && !data_fits("eval", &o, m, &test, "test"))
    rc = EXIT_FAIL;
  if (rc == EXIT_OK) {
    tg_tape *tape = tg_tape_new();
    double loss, acc;
    if (!tape || evaluate(tape, m, &test, 0, o.batch, &loss, &acc) != TG_OK) {
      fprintf(stderr, "tapegrad eval: %s\n", tape ? tg_tape_error(tape) : "out of memory");
      rc = EXIT_FAIL;
    } else if ((o.confusion || o.misclassified) && eval_pictures(&o, m, &test, &err) != TG_OK) {
      fprintf(stderr, "tapegrad eval: %s\n", err.msg);
      rc = EXIT_FAIL;
    } else if (o.json) {
      printf("{\"test_acc\":%.4f,\"test_loss\":%.6f}\n", acc, loss);
    } else {
      printf("%s after %lld epochs: test accuracy %.4f, test loss %.4f (%lld samples)\n",
             o.model.kind, o.start_epoch, acc, loss, (long long)test.n);
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
