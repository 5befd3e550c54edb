/* options.c — the command lines of `tapegrad train`, `eval` and
 * `gradcheck`, parsed into option structs.
 *
 * Parsing has no side effects: it opens no file, trains nothing and sets
 * no thread count; it only fills the struct and, on a usage error, writes
 * one line naming the problem to the stream it is given. The subcommands
 * apply the result afterwards, and the fuzz target (fuzz/fuzz_cli.c) calls the
 * same functions, over and over, in one process. getopt_long keeps global
 * state (optind and, inside glibc, the position within a cluster of short
 * options), so every parser starts with optind = 0, GNU's request for a
 * full reinitialisation, and never permutes argv ("+" in the optstring).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

// ----------------------------------------------------------------------------
// Values

int cli_int(FILE *err, const char *cmd, const char *name, const char *s, long long lo, long long hi,
            long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE) {
    fprintf(err, "tapegrad %s: --%s: '%s' is not an integer\n", cmd, name, s);
    return 0;
  }
  if (v < lo || v > hi) {
    fprintf(err, "tapegrad %s: --%s: %lld is out of range (%lld to %lld)\n", cmd, name, v, lo, hi);
    return 0;
  }
  *out = v;
  return 1;
}

int cli_real(FILE *err, const char *cmd, const char *name, const char *s, double lo, double hi,
             double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  /* ERANGE also flags underflow (1e-400): a tiny value is still a value,
   * and the range check below decides about it. */
  if (end == s || *end != '\0' || (errno == ERANGE && fabs(v) > 1) || !isfinite(v)) {
    fprintf(err, "tapegrad %s: --%s: '%s' is not a finite number\n", cmd, name, s);
    return 0;
  }
  if (v < lo || v > hi) {
    fprintf(err, "tapegrad %s: --%s: %g is out of range (%g to %g)\n", cmd, name, v, lo, hi);
    return 0;
  }
  *out = v;
  return 1;
}

int cli_tta(FILE *err, const char *cmd, const char *s, int *tta) {
  if (strcmp(s, "flip") && strcmp(s, "none")) {
    fprintf(err, "tapegrad %s: --tta: unknown value '%s' (flip, none)\n", cmd, s);
    return 0;
  }
  *tta = strcmp(s, "flip") == 0;
  return 1;
}

/* Parses the hidden list "100,100" into cfg, for subcommand cmd. */
static int parse_hidden(FILE *err, const char *cmd, const char *s, tg_model_config *cfg) {
  int n = 0;
  const char *p = s;
  while (*p) {
    long long v;
    char item[32];
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= sizeof item || n == TG_MODEL_MAX_HIDDEN ||
        (p[len] == ',' && !p[len + 1])) {
      fprintf(err, "tapegrad %s: --hidden: '%s' is not a list of up to %d sizes\n", cmd, s,
              TG_MODEL_MAX_HIDDEN);
      return 0;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (!cli_int(err, cmd, "hidden", item, 1, 100000, &v))
      return 0;
    cfg->hidden[n++] = v;
    p += len + (p[len] == ',');
  }
  if (n == 0) {
    fprintf(err, "tapegrad %s: --hidden: empty list\n", cmd);
    return 0;
  }
  cfg->n_hidden = n;
  return 1;
}

static int copy_word(FILE *err, const char *opt, const char *s, char *dst, size_t cap,
                     const char *const *allowed) {
  for (int i = 0; allowed[i]; i++)
    if (strcmp(s, allowed[i]) == 0 && strlen(s) < cap) {
      strcpy(dst, s);
      return 1;
    }
  fprintf(err, "tapegrad train: --%s: unknown value '%s'\n", opt, s);
  return 0;
}

/* Whether s names a picture: it ends in .png or .svg (any case). */
static int picture_name(FILE *err, const char *cmd, const char *name, const char *s) {
  size_t n = strlen(s);
  if (n > 4 && (strcasecmp(s + n - 4, ".png") == 0 || strcasecmp(s + n - 4, ".svg") == 0))
    return 1;
  fprintf(err, "tapegrad %s: --%s: '%s' does not end in .png or .svg\n", cmd, name, s);
  return 0;
}

/* The name of the option whose getopt value is code, or "?". */
static const char *option_name(const struct option *table, int code) {
  for (const struct option *o = table; o->name; o++)
    if (o->val == code)
      return o->name;
  return "?";
}

/* Reports what getopt_long's ':' or '?' meant: a missing value, a value
 * given to a flag, an unknown or ambiguous long option, or an unknown short
 * one. Option values are all >= 256, so optopt tells them from characters. */
static void getopt_problem(FILE *err, const char *cmd, const struct option *table, int c,
                           char *const *argv) {
  if (c == ':')
    fprintf(err, "tapegrad %s: option --%s needs a value\n", cmd, option_name(table, optopt));
  else if (optopt >= 256)
    fprintf(err, "tapegrad %s: option --%s takes no value\n", cmd, option_name(table, optopt));
  else if (optopt > 0)
    fprintf(err, "tapegrad %s: unknown option '-%c'\n", cmd, optopt);
  else
    fprintf(err, "tapegrad %s: unknown option '%s' (or an ambiguous abbreviation)\n", cmd,
            argv[optind - 1]);
  fprintf(err, "try 'tapegrad %s --help'\n", cmd);
}

/* Refuses an option given twice: which one would win is a guess. */
static int once(FILE *err, const char *cmd, const struct option *table, unsigned char *given,
                int c) {
  if (given[c - 256]) {
    fprintf(err, "tapegrad %s: option --%s given twice\n", cmd, option_name(table, c));
    return 0;
  }
  given[c - 256] = 1;
  return 1;
}

static void getopt_reset(void) {
  optind = 0; /* glibc: reinitialise fully, including a half-read "-abc" */
  opterr = 0;
  optopt = 0;
  optarg = NULL;
}

// ----------------------------------------------------------------------------
// train

void train_usage(FILE *f) {
  fprintf(f, "usage: tapegrad train [options]\n"
             "  --model NAME        two-layer-net (default), multi-layer-net, simple-convnet,\n"
             "                      deep-convnet, lenet or alexnet\n"
             "  --data D            fashion-mnist (default), mnist-digits, or a directory with\n"
             "                      the four MNIST files (plain or .gz); images of 28x28, the\n"
             "                      models' input (alexnet enlarges them to its 227x227)\n"
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
             "  --label-smoothing E cross-entropy against (1 − E)·one-hot + E/classes\n"
             "  --dropout P         Dropout ratio after each hidden activation\n"
             "  --batchnorm         Batch Norm after each hidden affine\n"
             "  --limit N           train on the first N samples only\n"
             "  --eval-train N      train accuracy over the first N samples (default 10000,\n"
             "                      0: all); test accuracy is always over the whole test set\n"
             "  --filters PREFIX    draw the first layer's filters to PREFIX-before.png and\n"
             "                      PREFIX-after.png\n"
             "  --threads N         OpenMP threads, per rank (default: all cores)\n"
             "  --shards V          compute each batch as V micro-batches whose gradients are\n"
             "                      summed in one fixed tree (Batch Norm per micro-batch):\n"
             "                      the same bits alone or under mpirun -np N, N dividing V\n"
             "  --distributed M     auto (default: under mpirun), on or off\n"
             "  --dist-timeout S    end the job when no step completes in S seconds\n"
             "                      (default 300)\n"
             "  --save FILE         write a checkpoint after every epoch\n"
             "  --resume FILE       continue from a checkpoint (model and optimizer from it)\n"
             "  --metrics FILE.csv  append epoch,train_loss,train_acc,test_acc,seconds,lr rows\n"
             "                      (and val_loss,val_acc with --val)\n"
             "  --schedule S        learning-rate schedule: constant (default), step or\n"
             "                      cosine; it steps every update, at fractional epochs\n"
             "  --warmup E          a linear warm-up over the first E epochs (may be\n"
             "                      fractional) from lr/W to lr, W the updates in E epochs\n"
             "  --step-size E       step: multiply the rate by --gamma every E epochs\n"
             "                      (default 1)\n"
             "  --gamma G           step: the factor, > 0 (default 0.5)\n"
             "  --schedule-epochs N cosine: reach 0 after N epochs, warm-up included\n"
             "                      (default --epochs; give it to resume a cosine run)\n"
             "  --augment SPEC      augment the training images on the fly, a comma list of:\n"
             "                      crop:P (pad P zeros on each side, take a random crop of\n"
             "                      the image's size), flip (mirror left-right, half of the\n"
             "                      time; right for clothes, wrong for digits), erase[:P]\n"
             "                      (with probability P, default 0.5, fill a random\n"
             "                      rectangle of 2-40%% of the image with random values);\n"
             "                      e.g. crop:2,flip,erase\n"
             "  --val N             hold out N training samples (a seeded choice) and report\n"
             "                      validation loss and accuracy every epoch\n"
             "  --save-best FILE    with --val: keep the checkpoint of the best validation\n"
             "                      accuracy in FILE\n"
             "  --patience K        with --val: stop when validation accuracy has not\n"
             "                      improved for K epochs\n"
             "  --plot FILE         draw loss and accuracy per epoch (train, validation,\n"
             "                      test) to FILE.png or FILE.svg after every epoch\n"
             "  --tta flip          evaluate (validation, test) on each image and its mirror\n"
             "                      image, averaging the probabilities; for clothes, not\n"
             "                      digits (default none)\n"
             "  --json              one JSON object per epoch on stdout, nothing else\n"
             "  --quiet             no progress bar\n"
             "  --profile           after training, the time, calls and bytes of each kind\n"
             "                      of op over the training steps (in the JSON with --json)\n"
             "Each option may be given once.\n");
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
  O_SMOOTH,
  O_DROPOUT,
  O_BN,
  O_LIMIT,
  O_EVAL_TRAIN,
  O_FILTERS,
  O_THREADS,
  O_SHARDS,
  O_DISTRIBUTED,
  O_DIST_TIMEOUT,
  O_SAVE,
  O_RESUME,
  O_METRICS,
  O_SCHEDULE,
  O_WARMUP,
  O_STEP_SIZE,
  O_GAMMA,
  O_SEPOCHS,
  O_AUGMENT,
  O_VAL,
  O_SAVE_BEST,
  O_PATIENCE,
  O_PLOT,
  O_TTA,
  O_JSON,
  O_QUIET,
  O_PROFILE,
  O_HELP,
  O_END
};

static const struct option train_options[] = {
    {"model", required_argument, 0, O_MODEL},
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
    {"label-smoothing", required_argument, 0, O_SMOOTH},
    {"dropout", required_argument, 0, O_DROPOUT},
    {"batchnorm", no_argument, 0, O_BN},
    {"limit", required_argument, 0, O_LIMIT},
    {"eval-train", required_argument, 0, O_EVAL_TRAIN},
    {"filters", required_argument, 0, O_FILTERS},
    {"threads", required_argument, 0, O_THREADS},
    {"shards", required_argument, 0, O_SHARDS},
    {"distributed", required_argument, 0, O_DISTRIBUTED},
    {"dist-timeout", required_argument, 0, O_DIST_TIMEOUT},
    {"save", required_argument, 0, O_SAVE},
    {"resume", required_argument, 0, O_RESUME},
    {"metrics", required_argument, 0, O_METRICS},
    {"schedule", required_argument, 0, O_SCHEDULE},
    {"warmup", required_argument, 0, O_WARMUP},
    {"step-size", required_argument, 0, O_STEP_SIZE},
    {"gamma", required_argument, 0, O_GAMMA},
    {"schedule-epochs", required_argument, 0, O_SEPOCHS},
    {"augment", required_argument, 0, O_AUGMENT},
    {"val", required_argument, 0, O_VAL},
    {"save-best", required_argument, 0, O_SAVE_BEST},
    {"patience", required_argument, 0, O_PATIENCE},
    {"plot", required_argument, 0, O_PLOT},
    {"tta", required_argument, 0, O_TTA},
    {"json", no_argument, 0, O_JSON},
    {"quiet", no_argument, 0, O_QUIET},
    {"profile", no_argument, 0, O_PROFILE},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0}};

/* Options that a checkpoint fixes: an error to give them with --resume. */
static const int fixed_by_checkpoint[] = {
    O_MODEL,     O_OPTIM, O_LR,      O_SEED, O_HIDDEN,  O_ACT,      O_INIT,
    O_INIT_STD,  O_WD,    O_DROPOUT, O_BN,   O_BATCH,   O_SCHEDULE, O_WARMUP,
    O_STEP_SIZE, O_GAMMA, O_SEPOCHS, O_VAL,  O_AUGMENT, O_SHARDS,   O_SMOOTH};

/* One option's value into o, overrides or the locals of train_parse. */
typedef struct train_parse_state {
  tg_model_config overrides;
  const char *model;
  double lr;
} train_parse_state;

static int train_option(FILE *err, int c, const char *arg, train_opts *o, train_parse_state *s) {
  static const char *const acts[] = {"relu", "sigmoid", "tanh", NULL};
  static const char *const inits[] = {"he", "xavier", "std", NULL};
  long long v;
  switch (c) {
  case O_MODEL:
    s->model = arg;
    return 1;
  case O_DATA:
    o->data = arg;
    return 1;
  case O_EPOCHS:
    return cli_int(err, "train", "epochs", arg, 1, 100000, &o->epochs);
  case O_BATCH:
    return cli_int(err, "train", "batch-size", arg, 1, 1000000, &o->batch);
  case O_OPTIM:
    if (tg_optim_parse(arg, &o->optim.kind) == TG_OK)
      return 1;
    fprintf(err, "tapegrad train: --optimizer: unknown optimizer '%s'\n", arg);
    return 0;
  case O_LR:
    return cli_real(err, "train", "lr", arg, 1e-12, 1e6, &s->lr);
  case O_SEED:
    if (!cli_int(err, "train", "seed", arg, 0, (long long)(~0ULL >> 1), &v))
      return 0;
    o->seed = (unsigned long long)v;
    return 1;
  case O_HIDDEN:
    return parse_hidden(err, "train", arg, &s->overrides);
  case O_ACT:
    return copy_word(err, "activation", arg, s->overrides.activation,
                     sizeof s->overrides.activation, acts);
  case O_INIT:
    return copy_word(err, "init", arg, s->overrides.init, sizeof s->overrides.init, inits);
  case O_INIT_STD:
    return cli_real(err, "train", "init-std", arg, 1e-9, 10, &s->overrides.init_std);
  case O_WD:
    return cli_real(err, "train", "weight-decay", arg, 0, 1e3, &s->overrides.weight_decay);
  case O_SMOOTH:
    return cli_real(err, "train", "label-smoothing", arg, 0, 0.999, &s->overrides.label_smoothing);
  case O_DROPOUT:
    return cli_real(err, "train", "dropout", arg, 0, 0.99, &s->overrides.dropout);
  case O_BN:
    s->overrides.batchnorm = 1;
    return 1;
  case O_LIMIT:
    return cli_int(err, "train", "limit", arg, 1, 1LL << 40, &o->limit);
  case O_EVAL_TRAIN:
    return cli_int(err, "train", "eval-train", arg, 0, 1LL << 40, &o->eval_train);
  case O_FILTERS:
    o->filters = arg;
    return 1;
  case O_THREADS:
    if (!cli_int(err, "train", "threads", arg, 1, 1024, &v))
      return 0;
    o->threads = (int)v;
    return 1;
  case O_SHARDS:
    return cli_int(err, "train", "shards", arg, 1, 65536, &o->shards);
  case O_DISTRIBUTED: {
    static const char *const modes[] = {"auto", "on", "off"};
    for (int i = 0; i < 3; i++)
      if (strcmp(arg, modes[i]) == 0) {
        o->distributed = i; /* DIST_AUTO, DIST_ON, DIST_OFF */
        return 1;
      }
    fprintf(err, "tapegrad train: --distributed: unknown value '%s' (auto, on, off)\n", arg);
    return 0;
  }
  case O_DIST_TIMEOUT:
    return cli_real(err, "train", "dist-timeout", arg, 1, 1e7, &o->dist_timeout);
  case O_SAVE:
    o->save = arg;
    return 1;
  case O_RESUME:
    o->resume = arg;
    return 1;
  case O_METRICS:
    o->metrics = arg;
    return 1;
  case O_SCHEDULE:
    if (tg_schedule_parse(arg, &o->sched.kind) == TG_OK)
      return 1;
    fprintf(err, "tapegrad train: --schedule: unknown schedule '%s' (constant, step, cosine)\n",
            arg);
    return 0;
  case O_WARMUP:
    return cli_real(err, "train", "warmup", arg, 0, 1e5, &o->sched.warmup);
  case O_STEP_SIZE:
    return cli_real(err, "train", "step-size", arg, 1e-6, 1e5, &o->sched.step_size);
  case O_GAMMA:
    return cli_real(err, "train", "gamma", arg, 1e-12, 1e3, &o->sched.gamma);
  case O_SEPOCHS:
    if (!cli_int(err, "train", "schedule-epochs", arg, 1, 100000, &v))
      return 0;
    o->sched.epochs = (double)v;
    return 1;
  case O_AUGMENT: {
    tg_error e = {0};
    if (tg_augment_parse(arg, &o->augment, &e) == TG_OK)
      return 1;
    fprintf(err, "tapegrad train: --%s\n", e.msg);
    return 0;
  }
  case O_VAL:
    return cli_int(err, "train", "val", arg, 1, 1LL << 40, &o->val);
  case O_TTA:
    return cli_tta(err, "train", arg, &o->tta);
  case O_SAVE_BEST:
    o->save_best = arg;
    return 1;
  case O_PATIENCE:
    return cli_int(err, "train", "patience", arg, 1, 100000, &o->patience);
  case O_PLOT:
    o->plot = arg;
    return picture_name(err, "train", "plot", arg);
  case O_JSON:
    o->json = 1;
    return 1;
  case O_QUIET:
    o->quiet = 1;
    return 1;
  case O_PROFILE:
    o->profile = 1;
    return 1;
  }
  return 0;
}

/* Flags that only mean something with another: refused alone, so that a
 * forgotten --schedule step or --val does not go unnoticed. */
static int train_check_schedule(FILE *err, const train_opts *o, const unsigned char *given) {
  static const struct {
    int flag, kind;
  } need_kind[] = {{O_STEP_SIZE, TG_SCHEDULE_STEP},
                   {O_GAMMA, TG_SCHEDULE_STEP},
                   {O_SEPOCHS, TG_SCHEDULE_COSINE}};
  for (size_t i = 0; i < sizeof need_kind / sizeof need_kind[0]; i++)
    if (!o->resume && given[need_kind[i].flag - 256] &&
        o->sched.kind != (tg_schedule_kind)need_kind[i].kind) {
      fprintf(err, "tapegrad train: --%s: only with --schedule %s\n",
              option_name(train_options, need_kind[i].flag),
              tg_schedule_name((tg_schedule_kind)need_kind[i].kind));
      return 0;
    }
  static const int need_val[] = {O_SAVE_BEST, O_PATIENCE};
  for (size_t i = 0; i < 2; i++)
    if (given[need_val[i] - 256] && !given[O_VAL - 256] && !o->resume) {
      fprintf(err, "tapegrad train: --%s: only with --val N\n",
              option_name(train_options, need_val[i]));
      return 0;
    }
  return 1;
}

int train_parse(int argc, char **argv, train_opts *o, FILE *err) {
  memset(o, 0, sizeof *o);
  o->data = "fashion-mnist";
  o->epochs = 5;
  o->batch = 100;
  o->seed = 1;
  o->eval_train = 10000;
  tg_model_defaults("two-layer-net", &o->model, NULL);
  o->optim = tg_optim_defaults(TG_SGD);
  o->sched = tg_schedule_constant(o->optim.lr);
  o->sched.step_size = 1;
  o->sched.gamma = 0.5;
  o->sched.epochs = 0; /* --epochs, below */
  o->best_val_acc = -1;
  o->dist_timeout = 300;
  train_parse_state s;
  memset(&s, 0, sizeof s);
  s.model = "two-layer-net";
  unsigned char given[O_END - 256] = {0};
  getopt_reset();
  int c;
  while ((c = getopt_long(argc, argv, "+:", train_options, NULL)) != -1) {
    if (c == O_HELP) {
      o->help = 1;
      return EXIT_OK;
    }
    if (c < 256 || c >= O_END) {
      getopt_problem(err, "train", train_options, c, argv);
      return EXIT_USAGE;
    }
    if (!once(err, "train", train_options, given, c) || !train_option(err, c, optarg, o, &s))
      return EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(err, "tapegrad train: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  if (!train_check_schedule(err, o, given))
    return EXIT_USAGE;
  if (o->resume) {
    for (size_t i = 0; i < sizeof fixed_by_checkpoint / sizeof fixed_by_checkpoint[0]; i++)
      if (given[fixed_by_checkpoint[i] - 256]) {
        fprintf(err,
                "tapegrad train: --%s cannot be combined with --resume (the checkpoint "
                "fixes it)\n",
                option_name(train_options, fixed_by_checkpoint[i]));
        return EXIT_USAGE;
      }
    return EXIT_OK;
  }
  if (o->shards > o->batch) {
    fprintf(err, "tapegrad train: --shards: %lld micro-batches do not fit a batch of %lld\n",
            o->shards, o->batch);
    return EXIT_USAGE;
  }
  tg_error e = {0};
  if (tg_model_defaults(s.model, &o->model, &e) != TG_OK) {
    fprintf(err, "tapegrad train: --model: %s\n", e.msg);
    return EXIT_USAGE;
  }
  if (given[O_HIDDEN - 256]) {
    o->model.n_hidden = s.overrides.n_hidden;
    memcpy(o->model.hidden, s.overrides.hidden, sizeof o->model.hidden);
  }
  if (s.overrides.activation[0])
    strcpy(o->model.activation, s.overrides.activation);
  if (s.overrides.init[0])
    strcpy(o->model.init, s.overrides.init);
  if (given[O_INIT_STD - 256]) {
    o->model.init_std = s.overrides.init_std;
    if (!s.overrides.init[0])
      strcpy(o->model.init, "std");
  }
  if (given[O_WD - 256])
    o->model.weight_decay = s.overrides.weight_decay;
  if (given[O_SMOOTH - 256])
    o->model.label_smoothing = s.overrides.label_smoothing;
  if (given[O_DROPOUT - 256])
    o->model.dropout = s.overrides.dropout;
  if (given[O_BN - 256])
    o->model.batchnorm = 1;
  if (!given[O_OPTIM - 256])
    tg_optim_parse(tg_model_default_optimizer(s.model), &o->optim.kind);
  tg_optim_kind kind = o->optim.kind;
  o->optim = tg_optim_defaults(kind);
  if (given[O_LR - 256])
    o->optim.lr = s.lr;
  else if (kind == TG_SGD)
    o->optim.lr = 0.1; /* the book's chapter-5 training */
  o->sched.lr = o->optim.lr;
  /* Only the cosine has a length: other schedules keep 0, so the
   * checkpoints of runs of different lengths do not differ by it. */
  if (o->sched.kind == TG_SCHEDULE_COSINE && o->sched.epochs == 0)
    o->sched.epochs = (double)o->epochs;
  tg_error se = {0};
  if (tg_schedule_check(&o->sched, &se) != TG_OK) {
    fprintf(err,
            "tapegrad train: --warmup: %g epochs is not shorter than the cosine's %g "
            "(--schedule-epochs)\n",
            o->sched.warmup, o->sched.epochs);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

// ----------------------------------------------------------------------------
// eval

void eval_usage(FILE *f) {
  fprintf(f, "usage: tapegrad eval --checkpoint FILE [--data D] [--json]\n"
             "                     [--confusion FILE] [--misclassified FILE] [--tta flip]\n"
             "  --confusion FILE      draw the test set's confusion matrix (.png or .svg),\n"
             "                        with the data set's class names\n"
             "  --misclassified FILE  draw the worst-classified test images (the lowest\n"
             "                        probability of the true class) with true and\n"
             "                        predicted labels\n"
             "  --tta flip            predict each image and its mirror image and average\n"
             "                        the probabilities (for clothes, not digits)\n");
}

enum { E_CHECKPOINT = 256, E_DATA, E_JSON, E_HELP, E_CONFUSION, E_MISCLASSIFIED, E_TTA, E_END };

static const struct option eval_options[] = {
    {"checkpoint", required_argument, 0, E_CHECKPOINT},
    {"data", required_argument, 0, E_DATA},
    {"json", no_argument, 0, E_JSON},
    {"confusion", required_argument, 0, E_CONFUSION},
    {"misclassified", required_argument, 0, E_MISCLASSIFIED},
    {"tta", required_argument, 0, E_TTA},
    {"help", no_argument, 0, E_HELP},
    {0, 0, 0, 0}};

int eval_parse(int argc, char **argv, train_opts *o, FILE *err) {
  memset(o, 0, sizeof *o);
  o->data = "fashion-mnist";
  unsigned char given[E_END - 256] = {0};
  getopt_reset();
  int c;
  while ((c = getopt_long(argc, argv, "+:", eval_options, NULL)) != -1) {
    if (c == E_HELP) {
      o->help = 1;
      return EXIT_OK;
    }
    if (c < 256 || c >= E_END) {
      getopt_problem(err, "eval", eval_options, c, argv);
      return EXIT_USAGE;
    }
    if (!once(err, "eval", eval_options, given, c))
      return EXIT_USAGE;
    if (c == E_CHECKPOINT)
      o->resume = optarg;
    else if (c == E_DATA)
      o->data = optarg;
    else if (c == E_CONFUSION || c == E_MISCLASSIFIED) {
      if (!picture_name(err, "eval", c == E_CONFUSION ? "confusion" : "misclassified", optarg))
        return EXIT_USAGE;
      *(c == E_CONFUSION ? &o->confusion : &o->misclassified) = optarg;
    } else if (c == E_TTA) {
      if (!cli_tta(err, "eval", optarg, &o->tta))
        return EXIT_USAGE;
    } else
      o->json = 1;
  }
  if (optind < argc) {
    fprintf(err, "tapegrad eval: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  if (!o->resume) {
    fprintf(err, "tapegrad eval: --checkpoint FILE is required\n");
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

// ----------------------------------------------------------------------------
// gradcheck

void gradcheck_usage(FILE *f) {
  fprintf(f, "usage: tapegrad gradcheck [--model NAME] [--batch-size N] [--seed S]\n"
             "                          [--batchnorm] [--dropout P] [--weight-decay L]\n"
             "                          [--hidden LIST] [--input-size N] [--tolerance X]\n"
             "Checks backward against central differences for every parameter of the\n"
             "model on a random batch and prints the worst relative error of each.\n"
             "--input-size N checks on N x N images instead of the model's own size\n"
             "(alexnet fits sizes 67, 99, ..., 227: the same layers on a smaller image).\n");
}

enum {
  G_MODEL = 256,
  G_BATCH,
  G_SEED,
  G_TOL,
  G_BN,
  G_DROPOUT,
  G_WD,
  G_HIDDEN,
  G_INPUT,
  G_HELP,
  G_END
};

static const struct option gradcheck_options[] = {{"model", required_argument, 0, G_MODEL},
                                                  {"batch-size", required_argument, 0, G_BATCH},
                                                  {"seed", required_argument, 0, G_SEED},
                                                  {"tolerance", required_argument, 0, G_TOL},
                                                  {"batchnorm", no_argument, 0, G_BN},
                                                  {"dropout", required_argument, 0, G_DROPOUT},
                                                  {"weight-decay", required_argument, 0, G_WD},
                                                  {"hidden", required_argument, 0, G_HIDDEN},
                                                  {"input-size", required_argument, 0, G_INPUT},
                                                  {"help", no_argument, 0, G_HELP},
                                                  {0, 0, 0, 0}};

static int gradcheck_option(FILE *err, int c, const char *arg, gradcheck_opts *g,
                            const char **model) {
  switch (c) {
  case G_MODEL:
    *model = arg;
    return 1;
  case G_BATCH:
    return cli_int(err, "gradcheck", "batch-size", arg, 1, 1000, &g->batch);
  case G_SEED:
    return cli_int(err, "gradcheck", "seed", arg, 0, 1LL << 62, &g->seed);
  case G_TOL:
    return cli_real(err, "gradcheck", "tolerance", arg, 1e-15, 1, &g->tol);
  case G_BN:
    g->model.batchnorm = 1;
    return 1;
  case G_DROPOUT:
    return cli_real(err, "gradcheck", "dropout", arg, 0, 0.99, &g->model.dropout);
  case G_WD:
    return cli_real(err, "gradcheck", "weight-decay", arg, 0, 1e3, &g->model.weight_decay);
  case G_HIDDEN:
    return parse_hidden(err, "gradcheck", arg, &g->model);
  case G_INPUT:
    return cli_int(err, "gradcheck", "input-size", arg, 1, 4096, &g->input_size);
  }
  return 0;
}

int gradcheck_parse(int argc, char **argv, gradcheck_opts *g, FILE *err) {
  memset(g, 0, sizeof *g);
  g->batch = 4;
  g->seed = 1;
  g->tol = sizeof(tg_real) == 8 ? 1e-6 : 5e-2;
  const char *model = "two-layer-net";
  unsigned char given[G_END - 256] = {0};
  getopt_reset();
  int c;
  while ((c = getopt_long(argc, argv, "+:", gradcheck_options, NULL)) != -1) {
    if (c == G_HELP) {
      g->help = 1;
      return EXIT_OK;
    }
    if (c < 256 || c >= G_END) {
      getopt_problem(err, "gradcheck", gradcheck_options, c, argv);
      return EXIT_USAGE;
    }
    if (!once(err, "gradcheck", gradcheck_options, given, c) ||
        !gradcheck_option(err, c, optarg, g, &model))
      return EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(err, "tapegrad gradcheck: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  /* The defaults of the kind, then the flags given on top of them. */
  tg_model_config flags = g->model;
  tg_error e = {0};
  if (tg_model_defaults(model, &g->model, &e) != TG_OK) {
    fprintf(err, "tapegrad gradcheck: --model: %s\n", e.msg);
    return EXIT_USAGE;
  }
  g->model.batchnorm = flags.batchnorm;
  g->model.dropout = flags.dropout;
  g->model.weight_decay = flags.weight_decay;
  if (given[G_HIDDEN - 256]) {
    g->model.n_hidden = flags.n_hidden;
    memcpy(g->model.hidden, flags.hidden, sizeof g->model.hidden);
  }
  if (g->input_size > 0)
    g->model.input[1] = g->model.input[2] = g->input_size;
  return EXIT_OK;
}
