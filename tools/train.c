/* train.c — `tapegrad train` and `tapegrad eval`: the book's training loop
 * as a program, with checkpoints that resume exactly.
 *
 * Every epoch reseeds the tape's generator from (seed, epoch), and that
 * generator alone drives the shuffle and dropout; with the weights and the
 * optimizer state in the checkpoint, N epochs + resume + M epochs is the
 * same computation as N + M epochs in one run.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
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
  int n = snprintf(buf, cap,
                   "%soptimizer=%s\nlr=%.17g\nmomentum=%.17g\ndecay_rate=%.17g\nbeta1=%.17g\n"
                   "beta2=%.17g\nseed=%llu\nbatch=%lld\nepochs_done=%lld\n",
                   model, tg_optim_name(c->kind), c->lr, c->momentum, c->decay_rate, c->beta1,
                   c->beta2, o->seed, o->batch, epochs_done);
  return n >= 0 && (size_t)n < cap ? TG_OK : TG_ERR_ARG;
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
  return TG_OK;
}

/* ------------------------------------------------------------------------
 * Evaluation: loss and accuracy over a whole set, eval mode, no grad */

/* Over the first `limit` samples of ds (0: all), in batches of `batch`. */
static int evaluate(tg_tape *tape, tg_model *m, const tg_dataset *ds, int64_t limit, int64_t batch,
                    double *loss, double *acc) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
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
  *loss = loss_sum / (double)n;
  *acc = correct / (double)n;
  return st;
}

/* ------------------------------------------------------------------------
 * train */

static void train_usage(FILE *f) {
  fprintf(f, "usage: tapegrad train [options]\n"
             "  --model NAME        two-layer-net (default), multi-layer-net, simple-convnet,\n"
             "                      deep-convnet, lenet or alexnet\n"
             "  --data D            fashion-mnist (default), mnist-digits, or a directory with\n"
             "                      the four MNIST files (plain or .gz)\n"
             "  --epochs N          epochs to run (default 5; with --resume: epochs more)\n"
             "  --batch-size B      mini-batch size (default 100)\n"
             "  --optimizer O       sgd, momentum, nesterov, adagrad, rmsprop, adam (default:\n"
             "                      the book's for the model: sgd for the dense ones, else adam)\n"
             "  --lr X              learning rate (default 0.1 for sgd, else the book's)\n"
             "  --seed S            seed of init, shuffling and dropout (default 1)\n"
             "  --hidden LIST       hidden sizes, e.g. 100,100,100 (default: the model's)\n"
             "  --activation A      relu, sigmoid or tanh\n"
             "  --init I            he, xavier or std (with --init-std)\n"
             "  --init-std X        std of the normal init\n"
             "  --weight-decay L    add ½L·Σ‖W‖² to the loss\n"
             "  --dropout P         Dropout ratio after each hidden activation\n"
             "  --batchnorm         Batch Norm after each hidden affine\n"
             "  --limit N           train on the first N samples only\n"
             "  --eval-train N      train accuracy over the first N samples (default 10000,\n"
             "                      0: all); test accuracy is always over the whole test set\n"
             "  --filters PREFIX    draw the first layer's filters to PREFIX-before.png and\n"
             "                      PREFIX-after.png\n"
             "  --threads N         OpenMP threads (default: all cores)\n"
             "  --save FILE         write a checkpoint after every epoch\n"
             "  --resume FILE       continue from a checkpoint (model and optimizer from it)\n"
             "  --metrics FILE.csv  append epoch,train_loss,train_acc,test_acc,seconds rows\n"
             "  --json              one JSON object per epoch on stdout, nothing else\n"
             "  --quiet             no progress bar\n");
}

enum {
  O_MODEL = 256,
  O_DATA,
  O_EPOCHS,
  O_BATCH,
  O_OPTIM,
  O_LR,
  O_SEED,
  O_HIDDEN,
  O_ACT,
  O_INIT,
  O_INIT_STD,
  O_WD,
  O_DROPOUT,
  O_BN,
  O_LIMIT,
  O_EVAL_TRAIN,
  O_FILTERS,
  O_THREADS,
  O_SAVE,
  O_RESUME,
  O_METRICS,
  O_JSON,
  O_QUIET,
  O_HELP
};

static const struct option train_options[] = {{"model", required_argument, 0, O_MODEL},
                                              {"data", required_argument, 0, O_DATA},
                                              {"epochs", required_argument, 0, O_EPOCHS},
                                              {"batch-size", required_argument, 0, O_BATCH},
                                              {"optimizer", required_argument, 0, O_OPTIM},
                                              {"lr", required_argument, 0, O_LR},
                                              {"seed", required_argument, 0, O_SEED},
                                              {"hidden", required_argument, 0, O_HIDDEN},
                                              {"activation", required_argument, 0, O_ACT},
                                              {"init", required_argument, 0, O_INIT},
                                              {"init-std", required_argument, 0, O_INIT_STD},
                                              {"weight-decay", required_argument, 0, O_WD},
                                              {"dropout", required_argument, 0, O_DROPOUT},
                                              {"batchnorm", no_argument, 0, O_BN},
                                              {"limit", required_argument, 0, O_LIMIT},
                                              {"eval-train", required_argument, 0, O_EVAL_TRAIN},
                                              {"filters", required_argument, 0, O_FILTERS},
                                              {"threads", required_argument, 0, O_THREADS},
                                              {"save", required_argument, 0, O_SAVE},
                                              {"resume", required_argument, 0, O_RESUME},
                                              {"metrics", required_argument, 0, O_METRICS},
                                              {"json", no_argument, 0, O_JSON},
                                              {"quiet", no_argument, 0, O_QUIET},
                                              {"help", no_argument, 0, O_HELP},
                                              {0, 0, 0, 0}};

/* Options that a checkpoint fixes: an error to give them with --resume. */
static const int fixed_by_checkpoint[] = {O_MODEL, O_OPTIM,    O_LR, O_SEED,    O_HIDDEN, O_ACT,
                                          O_INIT,  O_INIT_STD, O_WD, O_DROPOUT, O_BN,     O_BATCH};

static const char *option_name(int code) {
  for (const struct option *o = train_options; o->name; o++)
    if (o->val == code)
      return o->name;
  return "?";
}

/* Parses the hidden list "100,100" into cfg. */
static int parse_hidden(const char *s, tg_model_config *cfg) {
  int n = 0;
  const char *p = s;
  while (*p) {
    long long v;
    char item[32];
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof item || n == TG_MODEL_MAX_HIDDEN) {
      fprintf(stderr, "tapegrad train: --hidden: '%s' is not a list of up to %d sizes\n", s,
              TG_MODEL_MAX_HIDDEN);
      return 0;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (!cli_int("train", "hidden", item, 1, 100000, &v))
      return 0;
    cfg->hidden[n++] = v;
    p += len + (p[len] == ',');
  }
  if (n == 0) {
    fprintf(stderr, "tapegrad train: --hidden: empty list\n");
    return 0;
  }
  cfg->n_hidden = n;
  return 1;
}

static int copy_word(const char *opt, const char *s, char *dst, size_t cap,
                     const char *const *allowed) {
  for (int i = 0; allowed[i]; i++)
    if (strcmp(s, allowed[i]) == 0 && strlen(s) < cap) {
      strcpy(dst, s);
      return 1;
    }
  fprintf(stderr, "tapegrad train: --%s: unknown value '%s'\n", opt, s);
  return 0;
}

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

/* Runs the epochs of o on an already built model and optimizer. */
static int run_training(train_opts *o, tg_model *m, tg_optim *opt) {
  tg_error err = {0};
  tg_dataset train = {0}, test = {0};
  if (tg_dataset_open(o->data, &train, &test, &err) != TG_OK) {
    fprintf(stderr, "tapegrad train: %s\n", err.msg);
    return EXIT_FAIL;
  }
  if (o->limit > 0 && o->limit < train.n)
    train.n = o->limit;
  int64_t *order = malloc((size_t)train.n * sizeof *order);
  tg_tape *tape = tg_tape_new();
  FILE *metrics = NULL;
  int rc = EXIT_OK;
  if (!order || !tape) {
    fprintf(stderr, "tapegrad train: out of memory\n");
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
      fprintf(metrics, "epoch,train_loss,train_acc,test_acc,seconds\n");
  }
  int tty = !o->quiet && isatty(2);
  int64_t steps = (train.n + o->batch - 1) / o->batch;
  long long last = o->start_epoch + o->epochs;
  if (!o->json && !o->quiet)
    printf("%s on %s: %lld train / %lld test samples, %lld parameters, %s lr %g, batch %lld\n",
           o->model.kind, o->data, (long long)train.n, (long long)test.n,
           (long long)tg_params_numel(&m->params), tg_optim_name(o->optim.kind), o->optim.lr,
           o->batch);
  if (o->filters && (rc = draw_filters(o, m, "before")) != EXIT_OK)
    goto done;
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
      tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
      if (!loss || tg_backward(tape, loss, NULL) != TG_OK) {
        fprintf(stderr, "\ntapegrad train: epoch %lld step %lld: %s\n", epoch, (long long)s,
                tg_tape_error(tape));
        rc = EXIT_FAIL;
        goto done;
      }
      loss_sum += tg_at(loss, 0);
      tg_optim_step(opt);
      tg_tape_reset(tape);
      progress(tty, epoch, last, s + 1, steps, loss_sum / (double)(s + 1));
    }
    double seconds = now() - t0;
    double train_loss = loss_sum / (double)steps, tr_l, tr_acc, te_l, te_acc;
    if (evaluate(tape, m, &train, o->eval_train, o->batch, &tr_l, &tr_acc) != TG_OK ||
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
    if (o->json)
      printf("{\"epoch\":%lld,\"train_loss\":%.6f,\"train_acc\":%.4f,\"test_acc\":%.4f,"
             "\"seconds\":%.3f}\n",
             epoch, train_loss, tr_acc, te_acc, seconds);
    else
      printf("epoch %3lld  train loss %.4f  train acc %.4f  test acc %.4f  %.2f s\n", epoch,
             train_loss, tr_acc, te_acc, seconds);
    fflush(stdout);
    if (metrics) {
      fprintf(metrics, "%lld,%.6f,%.4f,%.4f,%.3f\n", epoch, train_loss, tr_acc, te_acc, seconds);
      fflush(metrics);
    }
    if (o->save) {
      char meta[TG_CHECKPOINT_META_MAX];
      tg_params *lists[] = {&m->params, &m->buffers, &opt->state};
      if (session_meta_write(o, epoch, meta, sizeof meta) != TG_OK ||
          tg_checkpoint_save(o->save, meta, lists, 3, &err) != TG_OK) {
        fprintf(stderr, "tapegrad train: %s\n", err.msg[0] ? err.msg : "checkpoint too large");
        rc = EXIT_FAIL;
        goto done;
      }
    }
  }
  if (o->filters)
    rc = draw_filters(o, m, "after");
done:
  if (metrics && fclose(metrics) != 0 && rc == EXIT_OK) {
    fprintf(stderr, "tapegrad train: writing %s failed\n", o->metrics);
    rc = EXIT_FAIL;
  }
  tg_tape_free(tape);
  free(order);
  tg_dataset_free(&train);
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

int cmd_train(int argc, char **argv) {
  train_opts o = {
      .data = "fashion-mnist", .epochs = 5, .batch = 100, .seed = 1, .eval_train = 10000};
  tg_model_defaults("two-layer-net", &o.model, NULL);
  int model_given = 0, lr_given = 0, given[O_HELP + 1] = {0};
  tg_model_config overrides = {0};
  double lr = 0;
  long long v;
  const char *model = "two-layer-net", *hidden = NULL;
  const char *acts[] = {"relu", "sigmoid", "tanh", NULL}, *inits[] = {"he", "xavier", "std", NULL};
  o.optim = tg_optim_defaults(TG_SGD);
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", train_options, NULL)) != -1) {
    if (c > 0 && c <= O_HELP)
      given[c] = 1;
    switch (c) {
    case O_MODEL:
      model = optarg;
      model_given = 1;
      break;
    case O_DATA:
      o.data = optarg;
      break;
    case O_EPOCHS:
      if (!cli_int("train", "epochs", optarg, 1, 100000, &o.epochs))
        return EXIT_USAGE;
      break;
    case O_BATCH:
      if (!cli_int("train", "batch-size", optarg, 1, 1000000, &o.batch))
        return EXIT_USAGE;
      break;
    case O_OPTIM:
      if (tg_optim_parse(optarg, &o.optim.kind) != TG_OK) {
        fprintf(stderr, "tapegrad train: --optimizer: unknown optimizer '%s'\n", optarg);
        return EXIT_USAGE;
      }
      break;
    case O_LR:
      if (!cli_real("train", "lr", optarg, 1e-12, 1e6, &lr))
        return EXIT_USAGE;
      lr_given = 1;
      break;
    case O_SEED:
      if (!cli_int("train", "seed", optarg, 0, (long long)(~0ULL >> 1), &v))
        return EXIT_USAGE;
      o.seed = (unsigned long long)v;
      break;
    case O_HIDDEN:
      hidden = optarg;
      if (!parse_hidden(optarg, &overrides))
        return EXIT_USAGE;
      break;
    case O_ACT:
      if (!copy_word("activation", optarg, overrides.activation, sizeof overrides.activation, acts))
        return EXIT_USAGE;
      break;
    case O_INIT:
      if (!copy_word("init", optarg, overrides.init, sizeof overrides.init, inits))
        return EXIT_USAGE;
      break;
    case O_INIT_STD:
      if (!cli_real("train", "init-std", optarg, 1e-9, 10, &overrides.init_std))
        return EXIT_USAGE;
      break;
    case O_WD:
      if (!cli_real("train", "weight-decay", optarg, 0, 1e3, &overrides.weight_decay))
        return EXIT_USAGE;
      break;
    case O_DROPOUT:
      if (!cli_real("train", "dropout", optarg, 0, 0.99, &overrides.dropout))
        return EXIT_USAGE;
      break;
    case O_BN:
      overrides.batchnorm = 1;
      break;
    case O_LIMIT:
      if (!cli_int("train", "limit", optarg, 1, 1LL << 40, &o.limit))
        return EXIT_USAGE;
      break;
    case O_EVAL_TRAIN:
      if (!cli_int("train", "eval-train", optarg, 0, 1LL << 40, &o.eval_train))
        return EXIT_USAGE;
      break;
    case O_FILTERS:
      o.filters = optarg;
      break;
    case O_THREADS:
      if (!cli_int("train", "threads", optarg, 1, 1024, &v))
        return EXIT_USAGE;
      omp_set_num_threads((int)v);
      break;
    case O_SAVE:
      o.save = optarg;
      break;
    case O_RESUME:
      o.resume = optarg;
      break;
    case O_METRICS:
      o.metrics = optarg;
      break;
    case O_JSON:
      o.json = 1;
      break;
    case O_QUIET:
      o.quiet = 1;
      break;
    case O_HELP:
      train_usage(stdout);
      return EXIT_OK;
    default:
      if (optopt)
        fprintf(stderr, "tapegrad train: option --%s needs a value\n", option_name(optopt));
      else
        fprintf(stderr, "tapegrad train: unknown option '%s'\n", argv[optind - 1]);
      fprintf(stderr, "try 'tapegrad train --help'\n");
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "tapegrad train: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  if (o.resume) {
    for (size_t i = 0; i < sizeof fixed_by_checkpoint / sizeof fixed_by_checkpoint[0]; i++)
      if (given[fixed_by_checkpoint[i]]) {
        fprintf(stderr,
                "tapegrad train: --%s cannot be combined with --resume (the checkpoint "
                "fixes it)\n",
                option_name(fixed_by_checkpoint[i]));
        return EXIT_USAGE;
      }
  } else {
    tg_error err = {0};
    if (tg_model_defaults(model, &o.model, &err) != TG_OK) {
      fprintf(stderr, "tapegrad train: --model: %s\n", err.msg);
      return EXIT_USAGE;
    }
    (void)model_given;
    if (hidden) {
      o.model.n_hidden = overrides.n_hidden;
      memcpy(o.model.hidden, overrides.hidden, sizeof o.model.hidden);
    }
    if (overrides.activation[0])
      strcpy(o.model.activation, overrides.activation);
    if (overrides.init[0])
      strcpy(o.model.init, overrides.init);
    if (given[O_INIT_STD]) {
      o.model.init_std = overrides.init_std;
      if (!overrides.init[0])
        strcpy(o.model.init, "std");
    }
    if (given[O_WD])
      o.model.weight_decay = overrides.weight_decay;
    if (given[O_DROPOUT])
      o.model.dropout = overrides.dropout;
    if (given[O_BN])
      o.model.batchnorm = 1;
    if (!given[O_OPTIM])
      tg_optim_parse(tg_model_default_optimizer(model), &o.optim.kind);
    tg_optim_kind kind = o.optim.kind;
    o.optim = tg_optim_defaults(kind);
    if (lr_given)
      o.optim.lr = lr;
    else if (kind == TG_SGD)
      o.optim.lr = 0.1; /* the book's chapter-5 training */
  }
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  int rc = build(&o, "train", &m, &opt);
  if (rc == EXIT_OK)
    rc = run_training(&o, m, opt);
  tg_optim_free(opt);
  tg_model_free(m);
  return rc;
}

/* ------------------------------------------------------------------------
 * eval */

int cmd_eval(int argc, char **argv) {
  static const struct option opts[] = {{"checkpoint", required_argument, 0, 'c'},
                                       {"data", required_argument, 0, 'd'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  train_opts o = {.data = "fashion-mnist"};
  const char *path = NULL;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'd':
      o.data = optarg;
      break;
    case 'j':
      o.json = 1;
      break;
    case 'h':
      printf("usage: tapegrad eval --checkpoint FILE [--data D] [--json]\n");
      return EXIT_OK;
    default:
      fprintf(stderr, "tapegrad eval: unknown option or missing value '%s'\n", argv[optind - 1]);
      return EXIT_USAGE;
    }
  }
  if (optind < argc || !path) {
    fprintf(stderr,
            optind < argc ? "tapegrad eval: unexpected argument '%s'\n"
                          : "tapegrad eval: --checkpoint FILE is required%s\n",
            optind < argc ? argv[optind] : "");
    return EXIT_USAGE;
  }
  o.resume = path;
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  int rc = build(&o, "eval", &m, &opt);
  tg_dataset train = {0}, test = {0};
  tg_error err = {0};
  if (rc == EXIT_USAGE)
    rc = EXIT_FAIL; /* a checkpoint with a bad configuration is bad data */
  if (rc == EXIT_OK && tg_dataset_open(o.data, &train, &test, &err) != TG_OK) {
    fprintf(stderr, "tapegrad eval: %s\n", err.msg);
    rc = EXIT_FAIL;
  }
  if (rc == EXIT_OK) {
    tg_tape *tape = tg_tape_new();
    double loss, acc;
    if (!tape || evaluate(tape, m, &test, 0, o.batch, &loss, &acc) != TG_OK) {
      fprintf(stderr, "tapegrad eval: %s\n", tape ? tg_tape_error(tape) : "out of memory");
      rc = EXIT_FAIL;
    } else if (o.json) {
      printf("{\"test_acc\":%.4f,\"test_loss\":%.6f}\n", acc, loss);
    } else {
      printf("%s after %lld epochs: test accuracy %.4f, test loss %.4f (%lld samples)\n",
             o.model.kind, o.start_epoch, acc, loss, (long long)test.n);
    }
    tg_tape_free(tape);
  }
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_optim_free(opt);
  tg_model_free(m);
  return rc;
}
