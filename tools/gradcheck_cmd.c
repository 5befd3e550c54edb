/* gradcheck_cmd.c — `tapegrad gradcheck`: every parameter of a model
 * checked against central differences, on a small random batch.
 *
 * The loss is the one training uses (softmax-with-loss plus weight decay),
 * in train mode, so Batch Norm and Dropout are checked as they train; the
 * tape is reseeded before every evaluation so Dropout draws the same mask
 * each time. Meaningful in the double build (-Dreal=double); the float
 * build can only show gross errors.
 */
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
  gradcheck_opts g;
  int rc = gradcheck_parse(argc, argv, &g, stderr);
  if (rc != EXIT_OK)
    return rc;
  if (g.help) {
    gradcheck_usage(stdout);
    return EXIT_OK;
  }
  tg_error err = {0};
  tg_model_config cfg = g.model;
  long long batch = g.batch, seed = g.seed;
  double tol = g.tol;
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

  int n = m->params.n;
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
