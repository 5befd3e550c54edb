/* gradcheck.c — numerical differentiation as the oracle for backward.
 *
 * Every evaluation runs on the caller's tape between a mark and a rewind,
 * so checking a large function costs its memory once, not once per
 * coordinate. Numerical evaluations run with grad mode off.
 */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"

/* L = Σ w ⊙ y, with Neumaier's compensated sum: for large outputs the
 * rounding of a plain sum differs between L(x + εv) and L(x − εv) by more
 * than the difference being measured. */
static double project(const tg_tensor *y, const double *w) {
  double s = 0, c = 0;
  for (int64_t i = 0; i < y->numel; i++) {
    double v = w[i] * (double)y->data[i], t = s + v;
    c += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

/* Evaluates L with x's data as it is now; NAN on failure. */
static double eval_loss(tg_tape *tape, tg_gradcheck_fn fn, void *ctx, tg_tensor *const *inputs,
                        const double *w, int64_t wn) {
  tg_tape_mark m = tg_tape_get_mark(tape);
  int was = tg_tape_set_grad(tape, 0);
  tg_tensor *y = fn(tape, inputs, ctx);
  double L = (y && y->numel == wn) ? project(y, w) : NAN;
  tg_tape_set_grad(tape, was);
  tg_tape_rewind(tape, m);
  return L;
}

static double rel_err(double a, double n, double floor) {
  double d = fmax(fmax(fabs(a), fabs(n)), floor);
  return fabs(a - n) / d;
}

static void note(tg_gradcheck_report *r, double a, double n, int64_t idx, double floor) {
  double e = rel_err(a, n, floor);
  if (e > r->worst_rel || r->worst_index < 0 || isnan(e)) {
    r->worst_rel = isnan(e) ? INFINITY : e;
    r->worst_index = idx;
    r->analytic = a;
    r->numeric = n;
  }
}

tg_status tg_gradcheck(tg_tape *tape, tg_gradcheck_fn fn, void *ctx, int n,
                       tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                       tg_gradcheck_report *reports) {
  if (!tape || tg_tape_status(tape) != TG_OK)
    return tape ? tg_tape_status(tape) : TG_ERR_NULL;
  if (!fn || n < 1 || !inputs || !reports)
    return tg_tape_fail(tape, TG_ERR_ARG, "gradcheck", "fn, inputs and reports are required");
  if (n > 64)
    return tg_tape_fail(tape, TG_ERR_ARG, "gradcheck", "%d inputs (at most 64)", n);
  tg_gradcheck_opts o = opts ? *opts : (tg_gradcheck_opts){0};
  if (o.eps <= 0)
    o.eps = sizeof(tg_real) == 8 ? 1e-6 : 1e-2;
  if (o.floor <= 0)
    o.floor = 1e-3;
  if (o.elementwise_max <= 0)
    o.elementwise_max = 4096;
  if (o.directions <= 0)
    o.directions = 8;
  tg_rng rng;
  tg_rng_seed(&rng, o.seed);

  tg_tape_mark start = tg_tape_get_mark(tape);
  /* Analytic gradients first: one forward, one backward. */
  tg_tensor *y = fn(tape, inputs, ctx);
  if (!y)
    return tg_tape_fail(tape, TG_ERR_ARG, "gradcheck", "the function returned NULL");
  int64_t wn = y->numel;
  double *w = malloc((size_t)wn * sizeof *w);
  tg_real **grads = calloc((size_t)n, sizeof *grads);
  tg_status st =
      (w && grads) ? TG_OK : tg_tape_fail(tape, TG_ERR_MEMORY, "gradcheck", "out of memory");
  for (int64_t i = 0; st == TG_OK && i < wn; i++)
    w[i] = 0.5 + tg_rng_uniform(&rng); /* in [0.5, 1.5): non-uniform, no zeros */

  tg_tensor *seed = NULL;
  tg_tensor *xs[64];
  int idx[64], nx = 0;
  for (int i = 0; st == TG_OK && i < n; i++) {
    reports[i] = (tg_gradcheck_report){0, -1, 0, 0, 0};
    if (inputs[i] && (inputs[i]->flags & TG_REQUIRES_GRAD) && nx < 64) {
      xs[nx] = inputs[i];
      idx[nx++] = i;
    }
  }
  if (st == TG_OK && nx > 0) {
    seed = tg_empty(tape, y->shape, y->ndim);
    if (seed)
      for (int64_t i = 0; i < wn; i++)
        seed->data[i] = (tg_real)w[i];
    tg_tensor *gx[64];
    st = seed ? tg_grad(tape, y, seed, nx, xs, gx, 0) : tg_tape_status(tape);
    for (int j = 0; st == TG_OK && j < nx; j++) {
      grads[j] = malloc((size_t)xs[j]->numel * sizeof(tg_real));
      if (!grads[j]) {
        st = tg_tape_fail(tape, TG_ERR_MEMORY, "gradcheck", "out of memory");
        break;
      }
      memcpy(grads[j], gx[j]->data, (size_t)xs[j]->numel * sizeof(tg_real));
    }
  }
  if (st == TG_OK)
    tg_tape_rewind(tape, start);

  /* Then the numerical side, input by input. */
  for (int j = 0; st == TG_OK && j < nx; j++) {
    tg_tensor *x = xs[j];
    tg_gradcheck_report *r = &reports[idx[j]];
    if (x->numel <= o.elementwise_max) {
      for (int64_t e = 0; e < x->numel; e++) {
        tg_real keep = x->data[e];
        x->data[e] = (tg_real)(keep + o.eps);
        double lp = eval_loss(tape, fn, ctx, inputs, w, wn);
        x->data[e] = (tg_real)(keep - o.eps);
        double lm = eval_loss(tape, fn, ctx, inputs, w, wn);
        x->data[e] = keep;
        note(r, grads[j][e], (lp - lm) / (2 * o.eps), e, o.floor);
      }
    } else {
      r->directional = 1;
      tg_real *keep = malloc((size_t)x->numel * sizeof(tg_real));
      double *v = malloc((size_t)x->numel * sizeof *v);
      if (!keep || !v) {
        free(keep);
        free(v);
        st = tg_tape_fail(tape, TG_ERR_MEMORY, "gradcheck", "out of memory");
        break;
      }
      memcpy(keep, x->data, (size_t)x->numel * sizeof(tg_real));
      for (int d = 0; d < o.directions; d++) {
        double norm = 0, dot = 0;
        for (int64_t e = 0; e < x->numel; e++) {
          v[e] = tg_rng_normal(&rng);
          norm += v[e] * v[e];
        }
        norm = sqrt(norm);
        for (int64_t e = 0; e < x->numel; e++) {
          v[e] /= norm;
          dot += v[e] * grads[j][e];
        }
        for (int64_t e = 0; e < x->numel; e++)
          x->data[e] = (tg_real)(keep[e] + o.eps * v[e]);
        double lp = eval_loss(tape, fn, ctx, inputs, w, wn);
        for (int64_t e = 0; e < x->numel; e++)
          x->data[e] = (tg_real)(keep[e] - o.eps * v[e]);
        double lm = eval_loss(tape, fn, ctx, inputs, w, wn);
        memcpy(x->data, keep, (size_t)x->numel * sizeof(tg_real));
        note(r, dot, (lp - lm) / (2 * o.eps), d, o.floor);
      }
      free(keep);
      free(v);
    }
    if (tg_tape_status(tape) != TG_OK)
      st = tg_tape_status(tape);
  }
  for (int j = 0; grads && j < nx; j++)
    free(grads[j]);
  free(grads);
  free(w);
  return st;
}

double tg_gradcheck_worst(const tg_gradcheck_report *reports, int n) {
  double worst = 0;
  for (int i = 0; i < n; i++)
    worst = fmax(worst, reports[i].worst_rel);
  return worst;
}

void tg_gradcheck_print(const tg_gradcheck_report *reports, int n, tg_tensor *const *inputs,
                        FILE *f) {
  for (int i = 0; i < n; i++) {
    const tg_gradcheck_report *r = &reports[i];
    const char *name = inputs && inputs[i] && inputs[i]->name ? inputs[i]->name : "";
    if (r->worst_index < 0) {
      fprintf(f, "input %d %s: not checked (no gradient required)\n", i, name);
      continue;
    }
    fprintf(f, "input %d %s: worst relative error %.3g at %s %lld: backward %.10g, numeric %.10g\n",
            i, name, r->worst_rel, r->directional ? "direction" : "element",
            (long long)r->worst_index, r->analytic, r->numeric);
  }
}
