/* ch6_hyperparam.c — the book's section 6.5 (hyperparameter_optimization.py):
 * random search for the learning rate and the weight decay, judged on a
 * validation set that is neither training nor test data.
 *
 * The first 500 training digits are shuffled; 20% (100) become the
 * validation set, the other 400 the training set. Each of 100 trials draws
 * lr = 10^U(−6, −2) and λ = 10^U(−8, −4), trains a fresh 7-layer net (6
 * hidden layers of 100, ReLU, He init, weight decay λ) with SGD, batch 100
 * drawn at random as the book does, for 50 epochs (the book's numbers),
 * and records train and validation accuracy after every epoch. The 5 best
 * trials by final validation accuracy are printed with their values, and
 * the best 20 drawn in a grid (Figure 6-24): good runs have lr near 1e-3 to
 * 1e-2, while the weight decay matters little in this range.
 *
 * Writes ch6_hyperparam.{png,svg}. TG_EXAMPLE_QUICK=1 runs 10 trials of 3
 * epochs.
 */
#include "example.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { POOL = 500, N_VAL = 100, N_TRAIN = POOL - N_VAL, BATCH = 100, MAX_EPOCHS = 50 };
enum { MAX_TRIALS = 100, N_DRAW = 20, DRAW_COLS = 5 };

typedef struct trial {
  double lr, weight_decay;
  double train_acc[MAX_EPOCHS], val_acc[MAX_EPOCHS];
} trial;

/* Accuracy over the samples idx[0..n) of ds, in eval mode without grad;
 * NAN (and a message) if the tape fails. */
static double accuracy(tg_tape *tape, tg_model *m, const tg_dataset *ds, const int64_t *idx,
                       int64_t n) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
  tg_tensor *t = NULL;
  tg_tensor *x = tg_dataset_batch(tape, ds, idx, 0, n, 1, &t); /* (n, 784) */
  double acc = tg_accuracy(tape, tg_model_forward(tape, m, x), t);
  if (tg_tape_status(tape) != TG_OK) {
    fprintf(stderr, "ch6_hyperparam: evaluation: %s\n", tg_tape_error(tape));
    acc = NAN;
  }
  tg_tape_reset(tape);
  tg_tape_set_train(tape, was_train);
  tg_tape_set_grad(tape, was_grad);
  return acc;
}

/* One trial: trains on idx[N_VAL..POOL), validates on idx[0..N_VAL). */
static int run_trial(const tg_dataset *ds, const int64_t *idx, int epochs, uint64_t seed,
                     trial *tr) {
  tg_model_config cfg;
  tg_model_defaults("multi-layer-net", &cfg, NULL); /* ReLU, He */
  cfg.n_hidden = 6;
  for (int i = 0; i < 6; i++)
    cfg.hidden[i] = 100;
  cfg.weight_decay = tr->weight_decay;
  ex_run r;
  if (ex_run_new("ch6_hyperparam", &r, &cfg, seed, TG_SGD, tr->lr, seed))
    return 1;
  int rc = 0;
  for (int e = 0; e < epochs; e++) {
    for (int it = 0; it < N_TRAIN / BATCH && !rc; it++)
      rc = ex_step("ch6_hyperparam", &r, ds, idx + N_VAL, N_TRAIN, BATCH, NULL);
    if (rc)
      break;
    tr->train_acc[e] = accuracy(r.tape, r.m, ds, idx + N_VAL, N_TRAIN);
    tr->val_acc[e] = accuracy(r.tape, r.m, ds, idx, N_VAL);
    if (isnan(tr->train_acc[e]) || isnan(tr->val_acc[e])) {
      rc = 1;
      break;
    }
  }
  ex_run_free(&r);
  return rc;
}

static int final_epoch; /* epochs - 1, for the sort */

static int by_val_acc(const void *a, const void *b) {
  double va = ((const trial *)a)->val_acc[final_epoch];
  double vb = ((const trial *)b)->val_acc[final_epoch];
  return va < vb ? 1 : va > vb ? -1 : 0;
}

int main(void) {
  int quick = ex_quick();
  int trials = quick ? 10 : MAX_TRIALS, epochs = quick ? 3 : MAX_EPOCHS;
  tg_dataset train = {0}, test = {0};
  if (ex_open_data("ch6_hyperparam", &train, &test)) {
    tg_plot_release_caches();
    return 1;
  }
  trial *tr = calloc((size_t)trials, sizeof *tr);
  if (!tr) {
    fprintf(stderr, "ch6_hyperparam: out of memory\n");
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return 1;
  }
  /* The first 500 samples, shuffled: idx[0..100) validate, the rest train. */
  tg_rng rng;
  tg_rng_seed(&rng, 1);
  int64_t idx[POOL];
  tg_shuffle(idx, POOL, &rng);
  printf("random search: %d trials, %d epochs each on %d samples, %d for validation\n", trials,
         epochs, N_TRAIN, N_VAL);
  int rc = 0;
  for (int k = 0; k < trials && !rc; k++) {
    tr[k].weight_decay = pow(10, -8 + 4 * tg_rng_uniform(&rng));
    tr[k].lr = pow(10, -6 + 4 * tg_rng_uniform(&rng));
    rc = run_trial(&train, idx, epochs, 100 + (uint64_t)k, &tr[k]);
    if (!rc)
      printf("  trial %3d  val acc %.2f  train acc %.3f  | lr %.3g, weight decay %.3g\n", k + 1,
             tr[k].val_acc[epochs - 1], tr[k].train_acc[epochs - 1], tr[k].lr, tr[k].weight_decay);
  }
  if (!rc) {
    final_epoch = epochs - 1;
    qsort(tr, (size_t)trials, sizeof *tr, by_val_acc);
    printf("=========== Hyper-Parameter Optimization Result ===========\n");
    for (int k = 0; k < 5 && k < trials; k++)
      printf("Best-%d (val acc: %.2f) | lr: %.4g, weight decay: %.4g\n", k + 1,
             tr[k].val_acc[epochs - 1], tr[k].lr, tr[k].weight_decay);
    int draw = trials < N_DRAW ? trials : N_DRAW;
    int rows = (draw + DRAW_COLS - 1) / DRAW_COLS;
    tg_figure *fig = tg_figure_new(rows, DRAW_COLS, 1300, 250 * rows + 40);
    tg_figure_title(fig, "best trials: validation accuracy (solid), train accuracy (dashed)");
    double ep[MAX_EPOCHS];
    for (int e = 0; e < epochs; e++)
      ep[e] = e + 1;
    for (int k = 0; k < draw; k++) {
      tg_axes *ax = tg_figure_axes(fig, k / DRAW_COLS, k % DRAW_COLS);
      char title[64];
      snprintf(title, sizeof title, "Best-%d: lr %.2g, wd %.2g", k + 1, tr[k].lr,
               tr[k].weight_decay);
      tg_axes_title(ax, title);
      tg_axes_line(ax, ep, tr[k].val_acc, epochs, "val", NULL);
      tg_axes_line(ax, ep, tr[k].train_acc, epochs, "train",
                   &(tg_line_style){.dash = TG_DASH_DASHED});
      tg_axes_ylim(ax, 0, 1);
      tg_axes_xlim(ax, 0, epochs);
      tg_axes_legend(ax, TG_LEGEND_NONE);
    }
    rc = ex_save_figure("ch6_hyperparam", fig, "ch6_hyperparam");
    tg_figure_free(fig);
  }
  free(tr);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  tg_plot_release_caches();
  return rc ? 1 : 0;
}
