/* gradcheck.c — numerical differentiation as the oracle for backward,
 * aware of kinks; and the fingerprints of decisions that show them.
 *
 * Every evaluation runs on the caller's tape between a mark and a rewind,
 * so checking a large function costs its memory once, not once per
 * coordinate. Evaluations keep the caller's grad mode, so a function that
 * takes gradients itself can be checked. Nothing here knows an op: kinked
 * ops fingerprint their own decisions (op.h's tg_kinked_op).
 */
#include "gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tape_internal.h"

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

/* ------------------------------------------------------------------------
 * Decision fingerprints (op.h's tg_kinked_op) */

uint64_t tg_hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}

/* 32 elements' decisions a word, each word hashed: decide functions call
 * this over a whole batch's activations. */
uint64_t tg_hash_signs(const tg_real *x, int64_t n, int both) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int64_t i = 0; i < n; i += 32) {
    uint64_t w = 0;
    for (int64_t k = 0; k < 32 && i + k < n; k++)
      w |= (uint64_t)(x[i + k] > 0) << (2 * k) | (uint64_t)(both && x[i + k] < 0) << (2 * k + 1);
    h = tg_hash_bytes(h, &w, sizeof w);
  }
  return tg_hash_bytes(h, &n, sizeof n);
}

/* ------------------------------------------------------------------------
 * Evaluations */

/* What is fixed during one check. */
typedef struct gc_fn {
  tg_tape *tape;
  tg_gradcheck_fn fn;
  void *ctx;
  tg_tensor *const *inputs;
  const double *w; /* the weighting, (wn,) */
  int64_t wn;
  double L0;   /* L at the unperturbed inputs */
  uint64_t d0; /* and the fingerprint of its decisions */
} gc_fn;

/* L and the fingerprint of the decisions taken computing it. */
typedef struct gc_eval {
  double L;
  uint64_t d;
} gc_eval;

/* Runs fn with the inputs as they are now, fingerprinting its decisions;
 * L is NAN on failure. Grad mode stays as the caller set it, so fn may
 * itself call tg_grad (a gradient penalty); the tape is rewound after. */
static gc_eval eval_fn(const gc_fn *g) {
  tg_tape *tape = g->tape;
  tg_tape_mark m = tg_tape_get_mark(tape);
  int was = tape->deciding;
  uint64_t before = tape->decisions;
  tape->deciding = 1;
  tape->decisions = 0;
  tg_tensor *y = g->fn(tape, g->inputs, g->ctx);
  gc_eval r = {(y && y->numel == g->wn) ? project(y, g->w) : NAN, tape->decisions};
  tape->deciding = was;
  tape->decisions = before;
  tg_tape_rewind(tape, m);
  return r;
}

/* A perturbation: element e of x moved by t (e >= 0), or the whole of x
 * moved from keep along the unit direction v (e < 0). */
typedef struct gc_move {
  tg_tensor *x;
  int64_t e;
  const tg_real *keep; /* x's data unperturbed, x->numel of them */
  const double *v;
} gc_move;

static gc_eval eval_at(const gc_fn *g, const gc_move *mv, double t) {
  tg_tensor *x = mv->x;
  if (mv->e >= 0)
    x->data[mv->e] = (tg_real)(mv->keep[mv->e] + t);
  else
    for (int64_t i = 0; i < x->numel; i++)
      x->data[i] = (tg_real)(mv->keep[i] + t * mv->v[i]);
  gc_eval r = eval_fn(g);
  if (mv->e >= 0)
    x->data[mv->e] = mv->keep[mv->e];
  else
    memcpy(x->data, mv->keep, (size_t)x->numel * sizeof(tg_real));
  return r;
}

/* Kink-aware numerical derivative along mv. A step whose ends (x ± h)
 * took the decisions x took stays on the smooth piece backward
 * differentiated: the central difference there is the oracle. When a
 * comparison, a ReLU's sign or a max's position flips within the step
 * (a bias moves every pre-activation of its channel; a pre-activation of
 * exactly 0, from a window of zeros and a zero bias, flips at any step),
 * the difference measures a slope backward never took, so it is not
 * compared. The step shrinks KINK_SHRINK-fold up to KINK_STEPS times, and
 * at each step a side whose ends x + s and x + 2s both took x's decisions
 * gives the second-order one-sided difference
 *   (−3 L(x) + 4 L(x + s) − L(x + 2s)) / 2s,
 * which differentiates x's own piece from that side. GC_KINK: every step
 * crossed on both sides (x sits where no side keeps its decisions, as
 * |x| at 0, whose gradient there is the subgradient 0). */
enum { KINK_STEPS = 3, KINK_SHRINK = 10 };
enum { GC_SMOOTH, GC_AROUND_KINK, GC_KINK };

static int derivative(const gc_fn *g, const gc_move *mv, double eps, double *num) {
  double h = eps;
  for (int k = 0; k < KINK_STEPS; k++, h /= KINK_SHRINK) {
    gc_eval side[2] = {eval_at(g, mv, h), eval_at(g, mv, -h)};
    if (side[0].d == g->d0 && side[1].d == g->d0) {
      *num = (side[0].L - side[1].L) / (2 * h);
      return k == 0 ? GC_SMOOTH : GC_AROUND_KINK;
    }
    for (int i = 0; i < 2; i++) {
      double s = i ? -h : h;
      if (side[i].d != g->d0)
        continue;
      gc_eval far = eval_at(g, mv, 2 * s);
      if (far.d == g->d0) {
        *num = (-3 * g->L0 + 4 * side[i].L - far.L) / (2 * s);
        return GC_AROUND_KINK;
      }
    }
  }
  return GC_KINK;
}

static double rel_err(double a, double n, double floor) {
  double d = fmax(fmax(fabs(a), fabs(n)), floor);
  return fabs(a - n) / d;
}

/* Folds one comparison into the worst (*worst, *index, ...) so far. */
static void note(double *worst, int64_t *index, double *ra, double *rn, double a, double n,
                 int64_t idx, double floor) {
  double e = rel_err(a, n, floor);
  if (e > *worst || *index < 0 || isnan(e)) {
    *worst = isnan(e) ? INFINITY : e;
    *index = idx;
    if (ra) {
      *ra = a;
      *rn = n;
    }
  }
}

/* Checks the analytic a against the numerical derivative along mv
 * (element or direction number idx) and records the outcome in r. */
static void check_one(const gc_fn *g, const gc_move *mv, double a, int64_t idx,
                      const tg_gradcheck_opts *o, tg_gradcheck_report *r) {
  double num = 0;
  int kind = derivative(g, mv, o->eps, &num);
  if (kind == GC_SMOOTH) {
    r->checked++;
    note(&r->worst_rel, &r->worst_index, &r->analytic, &r->numeric, a, num, idx, o->floor);
    return;
  }
  r->kinks++;
  if (kind == GC_AROUND_KINK) {
    r->kinks_checked++;
    note(&r->kink_worst_rel, &r->kink_worst_index, NULL, NULL, a, num, idx, o->floor);
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
    reports[i] = (tg_gradcheck_report){.worst_index = -1, .kink_worst_index = -1};
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

  /* Then the numerical side, input by input, from L and the decisions at
   * the inputs as given. */
  gc_fn g = {tape, fn, ctx, inputs, w, wn, 0, 0};
  if (st == TG_OK && nx > 0) {
    gc_eval base = eval_fn(&g);
    g.L0 = base.L;
    g.d0 = base.d;
  }
  for (int j = 0; st == TG_OK && j < nx; j++) {
    tg_tensor *x = xs[j];
    tg_gradcheck_report *r = &reports[idx[j]];
    tg_real *keep = malloc((size_t)x->numel * sizeof(tg_real));
    double *v = x->numel > o.elementwise_max ? malloc((size_t)x->numel * sizeof *v) : NULL;
    if (!keep || (x->numel > o.elementwise_max && !v)) {
      free(keep);
      st = tg_tape_fail(tape, TG_ERR_MEMORY, "gradcheck", "out of memory");
      break;
    }
    memcpy(keep, x->data, (size_t)x->numel * sizeof(tg_real));
    if (!v) {
      for (int64_t e = 0; e < x->numel; e++)
        check_one(&g, &(gc_move){x, e, keep, NULL}, grads[j][e], e, &o, r);
    } else {
      r->directional = 1;
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
        check_one(&g, &(gc_move){x, -1, keep, v}, dot, d, &o, r);
      }
    }
    free(keep);
    free(v);
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
    worst = fmax(worst, fmax(reports[i].worst_rel, reports[i].kink_worst_rel));
  return worst;
}

int64_t tg_gradcheck_unchecked(const tg_gradcheck_report *reports, int n) {
  int64_t k = 0;
  for (int i = 0; i < n; i++)
    k += reports[i].kinks - reports[i].kinks_checked;
  return k;
}

void tg_gradcheck_print(const tg_gradcheck_report *reports, int n, tg_tensor *const *inputs,
                        FILE *f) {
  for (int i = 0; i < n; i++) {
    const tg_gradcheck_report *r = &reports[i];
    const char *name = inputs && inputs[i] && inputs[i]->name ? inputs[i]->name : "";
    const char *what = r->directional ? "direction" : "element";
    if (r->checked + r->kinks == 0) {
      fprintf(f, "input %d %s: not checked (no gradient required)\n", i, name);
      continue;
    }
    fprintf(f, "input %d %s: ", i, name);
    if (r->worst_index >= 0)
      fprintf(f, "worst relative error %.3g at %s %lld: backward %.10g, numeric %.10g",
              r->worst_rel, what, (long long)r->worst_index, r->analytic, r->numeric);
    else
      fprintf(f, "no %s crossed no kink", what);
    if (r->kinks > 0) {
      fprintf(f, "; %lld of %lld crossed a kink: %lld checked on a smaller or one-sided step",
              (long long)r->kinks, (long long)(r->checked + r->kinks), (long long)r->kinks_checked);
      if (r->kink_worst_index >= 0)
        fprintf(f, ", worst %.3g at %s %lld", r->kink_worst_rel, what,
                (long long)r->kink_worst_index);
      fprintf(f, "; %lld not compared", (long long)(r->kinks - r->kinks_checked));
    }
    fputc('\n', f);
  }
}
