/* ch4_numerical_training.c — chapter 4 of "Deep Learning from Scratch":
 * training TwoLayerNet by numerical gradient, next to backpropagation.
 *
 * Reproduces section 4.5 (train_neuralnet.py with numerical_gradient),
 * which the book runs but warns is far too slow, and section 5.7.4's point
 * that backpropagation gives the same gradient for a tiny fraction of the
 * cost. Two copies of TwoLayerNet (784-50-10, ReLU, weights N(0, 0.01²))
 * start from the same weights and see the same mini-batches; one is
 * trained from central differences over every one of its 39,760
 * parameters (two no-grad forward passes per parameter), the other from
 * tg_backward; both with SGD, lr 0.1. The book's batch is 100; here it is
 * 10, because 79,520 forward passes of 100 samples take about a minute per
 * iteration on two cores, and 10 show the same thing in seconds.
 *
 * Prints both losses per iteration, how close the two gradients are at the
 * first iteration, and the time ratio (numerical / backprop); draws
 * numerical_training.png and numerical_training.svg (the two loss curves).
 *
 * h: the book's 1e-4 when tg_real is double. In the float build the loss
 * (about 2.3) carries only ~7 digits and a difference over 2e-4 would be
 * mostly rounding, so h is 1e-2 there.
 *
 * TG_EXAMPLE_QUICK=1 shrinks the network to 784-10-10, the batch to 20 and
 * the run to 3 iterations. Data: the MNIST digits, else Fashion-MNIST.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <plot.h>
#include <tapegrad.h>

#ifdef TG_DOUBLE
#define H 1e-4
#else
#define H 1e-2
#endif
#define MAX_ITERS 16

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The loss of m on (x, t) in no-grad mode; NAN after failing the tape.
 * Everything it puts on the tape is dropped again. */
static double loss_value(tg_tape *tape, tg_model *m, tg_tensor *x, tg_tensor *t) {
  tg_tape_mark mark = tg_tape_get_mark(tape);
  tg_tensor *loss = tg_model_loss(tape, m, tg_model_forward(tape, m, x), t);
  double v = loss ? tg_at(loss, 0) : NAN;
  tg_tape_rewind(tape, mark);
  return v;
}

/* The book's numerical_gradient over every parameter element: writes
 * (L(p + h) − L(p − h)) / 2h into each parameter's gradient buffer. */
static int numerical_gradient(tg_tape *tape, tg_model *m, tg_tensor *x, tg_tensor *t) {
  int was = tg_tape_set_grad(tape, 0);
  for (int k = 0; k < m->params.n; k++) {
    tg_tensor *p = m->params.items[k];
    for (int64_t j = 0; j < p->numel; j++) {
      tg_real v = p->data[j];
      p->data[j] = v + (tg_real)H;
      double l1 = loss_value(tape, m, x, t);
      p->data[j] = v - (tg_real)H;
      double l2 = loss_value(tape, m, x, t);
      p->data[j] = v;
      p->grad->data[j] = (tg_real)((l1 - l2) / (2 * H));
    }
    tg_tensor_bump(p->grad); /* written by hand */
  }
  tg_tape_set_grad(tape, was);
  return tg_tape_status(tape);
}

static int open_data(tg_dataset *train, tg_dataset *test) {
  tg_error err = {0};
  if (tg_dataset_open("mnist-digits", train, test, &err) == TG_OK)
    return 0;
  printf("note: the MNIST digits are not installed (%s); using Fashion-MNIST instead\n\n", err.msg);
  err = (tg_error){0};
  if (tg_dataset_open("fashion-mnist", train, test, &err) == TG_OK)
    return 0;
  fprintf(stderr, "ch4_numerical_training: %s\n", err.msg);
  return 1;
}

/* Largest |a − b| and largest |b| over all gradients of two models. */
static void grad_diff(const tg_model *a, const tg_model *b, double *max_diff, double *max_b) {
  *max_diff = *max_b = 0;
  for (int k = 0; k < a->params.n; k++) {
    const tg_tensor *ga = a->params.items[k]->grad, *gb = b->params.items[k]->grad;
    for (int64_t j = 0; j < ga->numel; j++) {
      *max_diff = fmax(*max_diff, fabs(tg_at(ga, j) - tg_at(gb, j)));
      *max_b = fmax(*max_b, fabs(tg_at(gb, j)));
    }
  }
}

static int draw(const double *loss_num, const double *loss_bp, int iters, double ratio) {
  double it[MAX_ITERS];
  for (int i = 0; i < iters; i++)
    it[i] = i + 1;
  char title[128];
  snprintf(title, sizeof title, "TwoLayerNet: numerical gradient vs backprop (%.0fx slower)",
           ratio);
  double lo = INFINITY, hi = -INFINITY, diff[MAX_ITERS];
  for (int i = 0; i < iters; i++) {
    lo = fmin(lo, fmin(loss_num[i], loss_bp[i]));
    hi = fmax(hi, fmax(loss_num[i], loss_bp[i]));
    diff[i] = fabs(loss_num[i] - loss_bp[i]); /* 0 at iteration 1: not drawn on a log axis */
  }
  double pad = hi > lo ? 0.1 * (hi - lo) : 1e-3;
  tg_figure *f = tg_figure_new(1, 2, 1100, 460);
  tg_figure_title(f, title);
  tg_axes *ax = tg_figure_axes(f, 0, 0);
  tg_axes_line(ax, it, loss_num, iters, "numerical gradient",
               &(tg_line_style){.marker = TG_MARKER_CIRCLE, .marker_size = 5, .width = 3});
  tg_axes_line(
      ax, it, loss_bp, iters, "backprop",
      &(tg_line_style){.marker = TG_MARKER_CROSS, .marker_size = 6, .dash = TG_DASH_DASHED});
  tg_axes_title(ax, "mini-batch loss (before each update)");
  tg_axes_xlabel(ax, "iteration");
  tg_axes_ylabel(ax, "loss");
  tg_axes_xlim(ax, 0.5, iters + 0.5);
  tg_axes_ylim(ax, lo - pad, hi + 3 * pad);
  tg_axes_legend(ax, TG_LEGEND_UPPER_RIGHT);
  tg_axes_grid(ax, 1);
  ax = tg_figure_axes(f, 0, 1);
  tg_axes_line(ax, it, diff, iters, NULL, &(tg_line_style){.marker = TG_MARKER_SQUARE});
  tg_axes_title(ax, "|loss (numerical) - loss (backprop)|");
  tg_axes_xlabel(ax, "iteration");
  tg_axes_ylog(ax, 1);
  tg_axes_xlim(ax, 0.5, iters + 0.5);
  tg_axes_grid(ax, 1);
  int rc = 0;
  const char *paths[2] = {"numerical_training.png", "numerical_training.svg"};
  for (int i = 0; i < 2 && rc == 0; i++) {
    tg_error err = {0};
    if (tg_figure_save(f, paths[i], &err) != TG_OK) {
      fprintf(stderr, "ch4_numerical_training: cannot save %s: %s\n", paths[i], err.msg);
      rc = 1;
    } else {
      printf("wrote %s\n", paths[i]);
    }
  }
  tg_figure_free(f);
  return rc;
}

int main(void) {
  const char *q = getenv("TG_EXAMPLE_QUICK");
  int quick = q && strcmp(q, "1") == 0;
  int iters = quick ? 3 : 5;
  int64_t batch = quick ? 20 : 10;
  int64_t hidden = quick ? 10 : 50;

  tg_dataset train, test;
  if (open_data(&train, &test))
    return 1;
  tg_error err = {0};
  tg_model_config cfg;
  tg_model *m_num = NULL, *m_bp = NULL;
  tg_optim *o_num = NULL, *o_bp = NULL;
  int64_t *order = malloc((size_t)train.n * sizeof *order);
  tg_tape *tape = tg_tape_new();
  tg_rng r1, r2;
  int rc = 1;
  if (!tape || !order) {
    fprintf(stderr, "ch4_numerical_training: out of memory\n");
    goto done;
  }
  tg_rng_seed(&r1, 42);
  tg_rng_seed(&r2, 42); /* the same seed: the same initial weights */
  tg_optim_config oc = tg_optim_defaults(TG_SGD);
  oc.lr = 0.1;
  if (tg_model_defaults("two-layer-net", &cfg, &err) == TG_OK) {
    cfg.hidden[0] = hidden;
    m_num = tg_model_new(&cfg, &r1, &err);
    m_bp = tg_model_new(&cfg, &r2, &err);
  }
  if (m_num && m_bp) {
    o_num = tg_optim_new(&oc, &m_num->params, &err);
    o_bp = tg_optim_new(&oc, &m_bp->params, &err);
  }
  if (!o_num || !o_bp) {
    fprintf(stderr, "ch4_numerical_training: %s\n", err.msg);
    goto done;
  }
  tg_tape_seed(tape, 7);
  tg_shuffle(order, train.n, tg_tape_rng(tape));

  printf("TwoLayerNet 784-%lld-10 (%lld parameters), batch %lld, SGD lr 0.1, h = %g (tg_real is "
         "%s)%s\n\n",
         (long long)hidden, (long long)tg_params_numel(&m_num->params), (long long)batch, H,
         TG_REAL_NAME, quick ? "; quick run (TG_EXAMPLE_QUICK=1)" : "");
  printf("iter   loss (numerical)   loss (backprop)   seconds (numerical)   seconds (backprop)\n");
  double loss_num[MAX_ITERS], loss_bp[MAX_ITERS], t_num = 0, t_bp = 0;
  for (int i = 0; i < iters; i++) {
    tg_tensor *t = NULL;
    tg_tensor *x = tg_dataset_batch(tape, &train, order, i * batch, batch, 1, &t); /* (B, 784) */
    if (!x)
      break;
    /* Numerical: the loss, then every parameter's central difference. */
    double t0 = now();
    int was = tg_tape_set_grad(tape, 0);
    loss_num[i] = loss_value(tape, m_num, x, t);
    tg_tape_set_grad(tape, was);
    if (numerical_gradient(tape, m_num, x, t) != TG_OK)
      break;
    double t1 = now();
    /* Backprop: one forward pass on the tape and one backward pass. It
     * takes well under a millisecond, so it is timed as the fastest of 5
     * runs (the first 4 undone) to keep a busy machine out of the ratio. */
    double t_best = INFINITY;
    tg_tensor *loss = NULL;
    for (int r = 0; r < 5; r++) {
      tg_tape_mark mark = tg_tape_get_mark(tape);
      double t2 = now();
      loss = tg_model_loss(tape, m_bp, tg_model_forward(tape, m_bp, x), t);
      if (!loss || tg_backward(tape, loss, NULL) != TG_OK)
        break;
      t_best = fmin(t_best, now() - t2);
      if (r < 4) {
        tg_params_zero_grad(&m_bp->params);
        tg_tape_rewind(tape, mark);
      }
    }
    if (tg_tape_status(tape) != TG_OK)
      break;
    loss_bp[i] = tg_at(loss, 0);
    t_num += t1 - t0;
    t_bp += t_best;
    printf("%4d   %16.6f   %15.6f   %19.3f   %18.6f\n", i + 1, loss_num[i], loss_bp[i], t1 - t0,
           t_best);
    if (i == 0) {
      double d, g;
      grad_diff(m_num, m_bp, &d, &g);
      printf("       (same weights at iteration 1: largest |numerical - backprop| gradient "
             "difference %.2e, largest |gradient| %.2e)\n",
             d, g);
    }
    tg_optim_step(o_num);
    tg_optim_step(o_bp);
    tg_tape_reset(tape);
  }
  if (tg_tape_status(tape) != TG_OK) {
    fprintf(stderr, "ch4_numerical_training: %s\n", tg_tape_error(tape));
    goto done;
  }
  double ratio = t_num / t_bp;
  printf("\ntime: numerical %.2f s, backprop %.4f s: numerical / backprop = %.0f\n", t_num, t_bp,
         ratio);
  printf("(book, section 5.7.4: backprop is far faster; the losses above should agree to about "
         "%s)\n",
         sizeof(tg_real) == sizeof(float) ? "4 digits in float" : "8 digits in double");
  rc = draw(loss_num, loss_bp, iters, ratio);

done:
  tg_plot_release_caches();
  tg_optim_free(o_num);
  tg_optim_free(o_bp);
  tg_model_free(m_num);
  tg_model_free(m_bp);
  tg_tape_free(tape);
  free(order);
  tg_dataset_free(&train);
  tg_dataset_free(&test);
  return rc;
}
