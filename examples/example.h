/* example.h — what the chapter examples share and is not the point of
 * any of them: quick mode for the tests, saving a figure as PNG and SVG,
 * opening the digits (or Fashion-MNIST when they are missing), test
 * accuracy, the net-optimizer-tape triple of the chapter 6 runs with its
 * step on a random batch, and the book's curve smoothing. Each takes the
 * program's name for its messages.
 */
#ifndef TG_EXAMPLE_H
#define TG_EXAMPLE_H

#include <math.h>
#include <plot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tapegrad.h>

/* 1 when TG_EXAMPLE_QUICK is set (and not "0"): run a few seconds only. */
static inline int ex_quick(void) {
  const char *q = getenv("TG_EXAMPLE_QUICK");
  return q && *q && strcmp(q, "0") != 0;
}

/* Writes f to STEM.png and STEM.svg; 1 (and a message) on failure. */
static inline int ex_save_figure(const char *prog, tg_figure *f, const char *stem) {
  const char *exts[] = {".png", ".svg"};
  for (int i = 0; i < 2; i++) {
    char path[256];
    tg_error err = {0};
    snprintf(path, sizeof path, "%s%s", stem, exts[i]);
    if (tg_figure_save(f, path, &err) != TG_OK) {
      fprintf(stderr, "%s: %s\n", prog, err.msg);
      return 1;
    }
    printf("wrote %s\n", path);
  }
  return 0;
}

/* The MNIST digits, or Fashion-MNIST with a note; 1 when neither opens. */
static inline int ex_open_data(const char *prog, tg_dataset *train, tg_dataset *test) {
  tg_error err = {0};
  if (tg_dataset_open("mnist-digits", train, test, &err) == TG_OK)
    return 0;
  printf("note: the MNIST digits are missing (%s); using Fashion-MNIST instead\n", err.msg);
  tg_error err2 = {0};
  if (tg_dataset_open("fashion-mnist", train, test, &err2) == TG_OK)
    return 0;
  fprintf(stderr, "%s: %s\n", prog, err2.msg);
  return 1;
}

/* Accuracy over the first n samples of ds, in eval mode (Dropout off,
 * Batch Norm on running statistics) without grad; NAN (and a message) if
 * the tape fails. */
static inline double ex_accuracy(const char *prog, tg_tape *tape, tg_model *m, const tg_dataset *ds,
                                 int64_t n) {
  int was_train = tg_tape_set_train(tape, 0), was_grad = tg_tape_set_grad(tape, 0);
  double correct = 0;
  for (int64_t start = 0; start < n; start += 250) {
    int64_t count = n - start < 250 ? n - start : 250;
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, ds, NULL, start, count, 0, &t); /* (count, 1, 28, 28) */
    double acc = tg_accuracy(tape, tg_model_forward(tape, m, x), t);
    if (tg_tape_status(tape) != TG_OK) {
      fprintf(stderr, "%s: evaluation: %s\n", prog, tg_tape_error(tape));
      correct = NAN;
      tg_tape_reset(tape);
      break;
    }
    correct += acc * (double)count;
    tg_tape_reset(tape);
  }
  tg_tape_set_train(tape, was_train);
  tg_tape_set_grad(tape, was_grad);
  return correct / (double)n;
}

/* A model with its optimizer and tape, as the chapter 6 runs train them. */
typedef struct {
  tg_model *m;
  tg_optim *opt;
  tg_tape *tape;
} ex_run;

/* Builds the model from cfg with its weights drawn from model_seed, an
 * optimizer of kind at lr (its other settings the defaults) and a tape
 * seeded with tape_seed; 1 (and a message) on failure, r freed then. */
static inline int ex_run_new(const char *prog, ex_run *r, const tg_model_config *cfg,
                             uint64_t model_seed, tg_optim_kind kind, double lr,
                             uint64_t tape_seed) {
  tg_error err = {0};
  tg_rng rng;
  tg_rng_seed(&rng, model_seed);
  r->m = tg_model_new(cfg, &rng, &err);
  tg_optim_config oc = tg_optim_defaults(kind);
  oc.lr = lr;
  r->opt = r->m ? tg_optim_new(&oc, &r->m->params, &err) : NULL;
  r->tape = tg_tape_new();
  if (!r->opt || !r->tape) {
    fprintf(stderr, "%s: %s\n", prog, err.msg[0] ? err.msg : "out of memory");
    tg_tape_free(r->tape);
    tg_optim_free(r->opt);
    tg_model_free(r->m);
    *r = (ex_run){0};
    return 1;
  }
  tg_tape_seed(r->tape, tape_seed);
  return 0;
}

static inline void ex_run_free(ex_run *r) {
  tg_tape_free(r->tape);
  tg_optim_free(r->opt);
  tg_model_free(r->m);
  *r = (ex_run){0};
}

/* One optimizer step on batch (at most 256) samples of ds drawn at random
 * with replacement, as the book draws them, from the first n, or from
 * pick[0..n) when pick is not NULL; *loss (when loss is not NULL) gets
 * the batch's loss. 1 (and a message) when the tape fails: a loss gone to
 * NAN is a result to show, not a failure. */
static inline int ex_step(const char *prog, ex_run *r, const tg_dataset *ds, const int64_t *pick,
                          int64_t n, int batch, double *loss) {
  int64_t idx[256];
  for (int i = 0; i < batch; i++) {
    int64_t k = (int64_t)tg_rng_below(tg_tape_rng(r->tape), (uint64_t)n);
    idx[i] = pick ? pick[k] : k;
  }
  tg_tensor *t = NULL;
  tg_tensor *x = tg_dataset_batch(r->tape, ds, idx, 0, batch, 1, &t); /* (batch, 784) */
  tg_tensor *l = tg_model_loss(r->tape, r->m, tg_model_forward(r->tape, r->m, x), t);
  if (!l || tg_backward(r->tape, l, NULL) != TG_OK) {
    fprintf(stderr, "%s: %s\n", prog, tg_tape_error(r->tape));
    tg_tape_reset(r->tape);
    return 1;
  }
  if (loss)
    *loss = tg_at(l, 0);
  tg_optim_step(r->opt);
  tg_tape_reset(r->tape);
  return 0;
}

/* The modified Bessel function I0, for the Kaiser window below. */
static inline double ex_bessel_i0(double x) {
  double sum = 1, term = 1;
  for (int k = 1; k < 50; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
  }
  return sum;
}

/* The book's smooth_curve: a Kaiser window of 11 (beta 2) over the curve
 * with its ends mirrored (np.r_[x[10:0:-1], x, x[-1:-11:-1]]: the first
 * point is not repeated, the last one is). */
static inline void ex_smooth_curve(const double *x, double *y, int n) {
  enum { W = 11, H = W / 2 };
  double w[W], wsum = 0;
  for (int i = 0; i < W; i++) {
    double r = 2.0 * i / (W - 1) - 1;
    w[i] = ex_bessel_i0(2 * sqrt(1 - r * r)) / ex_bessel_i0(2);
    wsum += w[i];
  }
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = -H; j <= H; j++) {
      int k = i + j;
      k = k < 0 ? -k : k >= n ? 2 * n - 1 - k : k;
      k = k < 0 ? 0 : k >= n ? n - 1 : k; /* curves shorter than the window */
      s += w[j + H] * x[k];
    }
    y[i] = s / wsum;
  }
}

/* One row of a loss table and one curve of its figure: loss[0..n)
 * smoothed as the book into smooth[0..n), printed at every quarter and at
 * the last step after whatever label the caller printed, drawn on ax. */
static inline void ex_loss_row(tg_axes *ax, const char *label, const double *loss, double *smooth,
                               int n) {
  ex_smooth_curve(loss, smooth, n);
  for (int it = 0; it < n; it += n / 4)
    printf(" %8.4f", smooth[it]);
  printf(" %8.4f\n", smooth[n - 1]);
  tg_axes_line(ax, NULL, smooth, n, label, NULL);
}

/* Labels the loss figure (losses from 0 to ymax over the iterations) and
 * saves it as STEM.png and STEM.svg; 1 (and a message) on failure. */
static inline int ex_save_loss_figure(const char *prog, tg_figure *fig, tg_axes *ax, double ymax,
                                      const char *title, const char *stem) {
  tg_axes_xlabel(ax, "iterations");
  tg_axes_ylabel(ax, "loss");
  tg_axes_ylim(ax, 0, ymax);
  tg_axes_legend(ax, TG_LEGEND_UPPER_RIGHT);
  tg_axes_title(ax, title);
  return ex_save_figure(prog, fig, stem);
}

#endif
