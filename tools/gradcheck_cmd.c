/* gradcheck_cmd.c — `tapegrad gradcheck`: every parameter of a model
 * checked against central differences, on a small random batch.
 *
 * The loss is the one training uses (softmax-with-loss plus weight decay),
 * in train mode, so Batch Norm and Dropout are checked as they train; the
 * tape is reseeded before every evaluation so Dropout draws the same mask
 * each time. Meaningful in the double build (-Dreal=double); the float
 * build can only show gross errors.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gradcheck.h"

typedef struct gc_ctx {
  tg_model *m;
  tg_tensor *x, *t;
  uint64_t seed;
} gc_ctx;

static tg_tensor *model_loss(tg_tape *tape, tg_tensor *const *in, void *arg) {
  (void)in; /* the inputs are the model's own parameters */
  gc_ctx *c = arg;
  tg_tape_seed(tape, c->seed);
  return tg_model_loss(tape, c->m, tg_model_forward(tape, c->m, c->x), c->t);
}

int cmd_gradcheck(int argc, char **argv) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                       {"batch-size", required_argument, 0, 'b'},
                                       {"seed", required_argument, 0, 's'},
                                       {"tolerance", required_argument, 0, 't'},
                                       {"batchnorm", no_argument, 0, 'n'},
                                       {"dropout", required_argument, 0, 'd'},
                                       {"weight-decay", required_argument, 0, 'w'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *model = "two-layer-net";
  long long batch = 4, seed = 1;
  double tol = sizeof(tg_real) == 8 ? 1e-6 : 5e-2, dropout = 0, wd = 0;
  int bn = 0;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'm':
      model = optarg;
      break;
    case 'b':
      if (!cli_int("gradcheck", "batch-size", optarg, 1, 1000, &batch))
        return EXIT_USAGE;
      break;
    case 's':
      if (!cli_int("gradcheck", "seed", optarg, 0, 1LL << 62, &seed))
        return EXIT_USAGE;
      break;
    case 't':
      if (!cli_real("gradcheck", "tolerance", optarg, 1e-15, 1, &tol))
        return EXIT_USAGE;
      break;
    case 'n':
      bn = 1;
      break;
    case 'd':
      if (!cli_real("gradcheck", "dropout", optarg, 0, 0.99, &dropout))
        return EXIT_USAGE;
      break;
    case 'w':
      if (!cli_real("gradcheck", "weight-decay", optarg, 0, 1e3, &wd))
        return EXIT_USAGE;
      break;
    case 'h':
      printf("usage: tapegrad gradcheck [--model NAME] [--batch-size N] [--seed S]\n"
             "                          [--batchnorm] [--dropout P] [--weight-decay L]\n"
             "                          [--tolerance X]\n"
             "Checks backward against central differences for every parameter of the\n"
             "model on a random batch and prints the worst relative error of each.\n");
      return EXIT_OK;
    default:
      fprintf(stderr, "tapegrad gradcheck: unknown option or missing value '%s'\n",
              argv[optind - 1]);
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "tapegrad gradcheck: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  tg_error err = {0};
  tg_model_config cfg;
  if (tg_model_defaults(model, &cfg, &err) != TG_OK) {
    fprintf(stderr, "tapegrad gradcheck: --model: %s\n", err.msg);
    return EXIT_USAGE;
  }
  cfg.batchnorm = bn;
  cfg.dropout = dropout;
  cfg.weight_decay = wd;
  tg_rng rng;
  tg_rng_seed(&rng, (uint64_t)seed);
  tg_model *m = tg_model_new(&cfg, &rng, &err);
  tg_tape *tape = tg_tape_new();
  if (!m || !tape) {
    fprintf(stderr, "tapegrad gradcheck: %s\n", m ? "out of memory" : err.msg);
    tg_model_free(m);
    return EXIT_FAIL;
  }
  /* Random pixels in [0, 1) and labels: (batch, C, H, W), (batch,). */
  int64_t shape[4] = {batch, cfg.input[0], cfg.input[1], cfg.input[2]};
  gc_ctx ctx = {m, tg_empty(tape, shape, 4), tg_empty(tape, (int64_t[]){batch}, 1), (uint64_t)seed};
  for (int64_t i = 0; ctx.x && i < ctx.x->numel; i++)
    ctx.x->data[i] = (tg_real)tg_rng_uniform(&rng);
  for (int64_t i = 0; ctx.t && i < batch; i++)
    ctx.t->data[i] = (tg_real)tg_rng_below(&rng, (uint64_t)cfg.classes);

  int n = m->params.n, rc = EXIT_OK;
  tg_gradcheck_report *r = calloc((size_t)n, sizeof *r);
  tg_gradcheck_opts o = {.seed = (uint64_t)seed, .elementwise_max = 256};
  if (!r || tg_gradcheck(tape, model_loss, &ctx, n, m->params.items, &o, r) != TG_OK) {
    fprintf(stderr, "tapegrad gradcheck: %s\n", r ? tg_tape_error(tape) : "out of memory");
    rc = EXIT_FAIL;
  } else {
    printf("%s, batch %lld, %s build, tolerance %g\n", cfg.kind, batch, TG_REAL_NAME, tol);
    for (int i = 0; i < n; i++) {
      const tg_tensor *p = m->params.items[i];
      char shape_s[64];
      printf("  %-16s %-12s worst relative error %.3g (%s)%s\n", p->name,
             tg_shape_str(p->shape, p->ndim, shape_s, sizeof shape_s), r[i].worst_rel,
             r[i].directional ? "random directions" : "every element",
             r[i].worst_rel > tol ? "  FAIL" : "");
    }
    double worst = tg_gradcheck_worst(r, n);
    printf("worst over all parameters: %.3g — %s\n", worst, worst <= tol ? "ok" : "FAILED");
    rc = worst <= tol ? EXIT_OK : EXIT_FAIL;
    if (rc != EXIT_OK && sizeof(tg_real) == 4)
      printf("(in float, central differences cross ReLU kinks and lose digits to rounding;\n"
             " the strict check is the double build's: meson setup -Dreal=double)\n");
  }
  free(r);
  tg_tape_free(tape);
  tg_model_free(m);
  return rc;
}
