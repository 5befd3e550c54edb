/* gradcheck_cmd.c — `tapegrad gradcheck`: every parameter of a model
 * checked against central differences, on a small random batch.
 *
 * The loss is the one training uses (softmax-with-loss plus weight decay),
 * in train mode, so Batch Norm and Dropout are checked as they train; the
 * tape is reseeded before every evaluation so Dropout draws the same mask
 * each time. Meaningful in the double build (-Dreal=double); the float
 * build can only show gross errors. Steps that cross a ReLU or max-pool
 * kink are checked on a smaller or one-sided step, or counted and not
 * compared (gradcheck.h), and the counts are printed.
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
    /* A step that crossed a kink is checked on a step up to 100 times
     * smaller, or one-sided (four times the rounding of a central one),
     * so its rounding is up to a few hundred times larger; a wrong rule
     * errs by O(1). */
    double kink_tol = fmin(100 * tol, 1);
    printf("%s, batch %lld of (%lld, %lld, %lld), %s build, tolerance %g (%g where a step "
           "crossed a kink)\n",
           cfg.kind, batch, (long long)cfg.input[0], (long long)cfg.input[1],
           (long long)cfg.input[2], TG_REAL_NAME, tol, kink_tol);
    int64_t kinks = 0;
    double worst = 0, kink_worst = 0;
    for (int i = 0; i < n; i++) {
      const tg_tensor *p = m->params.items[i];
      const tg_gradcheck_report *q = &r[i];
      char shape_s[64];
      printf("  %-16s %-12s worst relative error %.3g (%s)", p->name,
             tg_shape_str(p->shape, p->ndim, shape_s, sizeof shape_s), q->worst_rel,
             q->directional ? "random directions" : "every element");
      if (q->kinks > 0)
        printf("; %lld crossed a kink: %lld checked on a smaller or one-sided step (worst %.3g), "
               "%lld not compared",
               (long long)q->kinks, (long long)q->kinks_checked, q->kink_worst_rel,
               (long long)(q->kinks - q->kinks_checked));
      printf("%s\n", q->worst_rel > tol || q->kink_worst_rel > kink_tol ? "  FAIL" : "");
      kinks += q->kinks;
      worst = fmax(worst, q->worst_rel);
      kink_worst = fmax(kink_worst, q->kink_worst_rel);
    }
    int ok = worst <= tol && kink_worst <= kink_tol;
    printf("crossed a kink (ReLU, max-pool; see gradcheck.h): %lld, worst relative error there "
           "%.3g, not compared: %lld\n",
           (long long)kinks, kink_worst, (long long)tg_gradcheck_unchecked(r, n));
    printf("worst over all parameters: %.3g — %s\n", worst, ok ? "ok" : "FAILED");
    rc = ok ? EXIT_OK : EXIT_FAIL;
    if (rc != EXIT_OK && sizeof(tg_real) == 4)
      printf("(in float, central differences lose digits to rounding;\n"
             " the strict check is the double build's: meson setup -Dreal=double)\n");
  }
  free(r);
  tg_tape_free(tape);
  tg_model_free(m);
  return rc;
}
