/* optim.c — the book's six optimizers (chapter 6): SGD, Momentum,
 * Nesterov, AdaGrad, RMSprop and Adam, with the book's update formulas,
 * in the book's order of operations, and the book's defaults.
 *
 * An update reads each trained parameter's gradient buffer and changes its
 * data in place; it runs outside any tape and records nothing. State lives
 * in owned tensors of opt->state so checkpoints save it like weights. This
 * file must not allocate in tg_optim_step (a training step in steady state
 * calls malloc zero times) nor know anything about a model.
 */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h" /* TG_PAR_MIN */

#ifdef TG_DOUBLE
#define R_SQRT sqrt
#else
#define R_SQRT sqrtf
#endif

/* The book adds 1e-7 to √h and √v so a zero gradient history divides by
 * something. */
#define OPT_EPS ((tg_real)1e-7)

/* The public struct first, so a tg_optim * converts to its impl and back.
 * `trained` is fixed at tg_optim_new: tensors added to the list later are
 * not trained (they have no state), and the state list stays in step with
 * it — state.items[0] is "step", then nslots tensors per trained
 * parameter, in this order. */
typedef struct optim_impl {
  tg_optim pub;
  tg_tensor **trained; /* ntrained parameters, not owned */
  int ntrained;
  int nslots;
} optim_impl;

static const char *const kind_names[] = {"sgd",     "momentum", "nesterov",
                                         "adagrad", "rmsprop",  "adam"};
#define NKINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

/* Per-parameter state slots of each kind, named "<param>.<slot>". */
static int kind_slots(tg_optim_kind kind, const char *slots[2]) {
  switch (kind) {
  case TG_MOMENTUM:
  case TG_NESTEROV:
    slots[0] = "v";
    return 1;
  case TG_ADAGRAD:
  case TG_RMSPROP:
    slots[0] = "h";
    return 1;
  case TG_ADAM:
    slots[0] = "m";
    slots[1] = "v";
    return 2;
  default:
    return 0;
  }
}

tg_optim_config tg_optim_defaults(tg_optim_kind kind) {
  /* Every field gets the book's default, so switching kind keeps sane
   * values; only the learning rate differs by kind. */
  return (tg_optim_config){
      .kind = kind,
      .lr = kind == TG_ADAM ? 0.001 : 0.01,
      .momentum = 0.9,
      .decay_rate = 0.99,
      .beta1 = 0.9,
      .beta2 = 0.999,
  };
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

tg_status tg_optim_parse(const char *name, tg_optim_kind *kind) {
  if (!name)
    return TG_ERR_ARG;
  for (int k = 0; k < NKINDS; k++) {
    const char *a = name, *b = kind_names[k];
    while (*a && ascii_lower((unsigned char)*a) == *b)
      a++, b++;
    if (!*a && !*b) {
      if (kind)
        *kind = (tg_optim_kind)k;
      return TG_OK;
    }
  }
  return TG_ERR_ARG;
}

const char *tg_optim_name(tg_optim_kind kind) {
  return (int)kind >= 0 && (int)kind < NKINDS ? kind_names[kind] : "unknown";
}

/* ------------------------------------------------------------------------
 * Creation */

static int check_unit(const char *what, double x, const char *kname, tg_error *err) {
  if (x >= 0 && x < 1)
    return TG_OK;
  return tg_error_set(err, TG_ERR_ARG, "optim_new (%s): %s is %g (must be in [0, 1))", kname, what,
                      x);
}

static int check_config(const tg_optim_config *c, tg_error *err) {
  if ((int)c->kind < 0 || (int)c->kind >= NKINDS)
    return tg_error_set(err, TG_ERR_ARG,
                        "optim_new: unknown kind %d (sgd, momentum, nesterov, adagrad, rmsprop "
                        "or adam)",
                        (int)c->kind);
  const char *kname = kind_names[c->kind];
  if (!(c->lr > 0) || !isfinite(c->lr))
    return tg_error_set(err, TG_ERR_ARG, "optim_new (%s): lr is %g (must be finite and > 0)", kname,
                        c->lr);
  switch (c->kind) {
  case TG_MOMENTUM:
  case TG_NESTEROV:
    return check_unit("momentum", c->momentum, kname, err);
  case TG_RMSPROP:
    return check_unit("decay_rate", c->decay_rate, kname, err);
  case TG_ADAM:
    if (check_unit("beta1", c->beta1, kname, err) != TG_OK)
      return TG_ERR_ARG;
    return check_unit("beta2", c->beta2, kname, err);
  default:
    return TG_OK;
  }
}

tg_optim *tg_optim_new(const tg_optim_config *cfg, tg_params *params, tg_error *err) {
  if (!cfg || !params) {
    tg_error_set(err, TG_ERR_NULL, "optim_new: %s is NULL",
                 !cfg ? "the config" : "the parameter list");
    return NULL;
  }
  if (check_config(cfg, err) != TG_OK)
    return NULL;
  const char *kname = kind_names[cfg->kind];

  optim_impl *o = calloc(1, sizeof *o);
  if (!o) {
    tg_error_set(err, TG_ERR_MEMORY, "optim_new (%s): out of memory", kname);
    return NULL;
  }
  o->pub.cfg = *cfg;
  o->pub.params = params;
  const char *slots[2] = {0};
  o->nslots = kind_slots(cfg->kind, slots);
  if (params->n > 0) {
    o->trained = malloc((size_t)params->n * sizeof *o->trained);
    if (!o->trained) {
      tg_error_set(err, TG_ERR_MEMORY, "optim_new (%s): out of memory", kname);
      goto fail;
    }
  }

  if (!tg_params_new(&o->pub.state, "step", (int64_t[]){1}, 1, 0, err))
    goto fail;
  for (int i = 0; i < params->n; i++) {
    tg_tensor *p = params->items[i];
    if (!(p->flags & TG_REQUIRES_GRAD) || !p->grad)
      continue;
    if (!p->name) {
      tg_error_set(err, TG_ERR_ARG, "optim_new (%s): parameter %d has no name", kname, i);
      goto fail;
    }
    for (int s = 0; s < o->nslots; s++) {
      size_t len = strlen(p->name) + strlen(slots[s]) + 2;
      char *name = malloc(len);
      if (!name) {
        tg_error_set(err, TG_ERR_MEMORY, "optim_new (%s): out of memory", kname);
        goto fail;
      }
      snprintf(name, len, "%s.%s", p->name, slots[s]);
      tg_tensor *st = tg_params_new(&o->pub.state, name, p->shape, p->ndim, 0, err);
      free(name);
      if (!st)
        goto fail;
    }
    o->trained[o->ntrained++] = p;
  }
  return &o->pub;

fail:
  tg_params_free(&o->pub.state);
  free(o->trained);
  free(o);
  return NULL;
}

void tg_optim_free(tg_optim *opt) {
  if (!opt)
    return;
  optim_impl *o = (optim_impl *)opt;
  tg_params_free(&o->pub.state);
  free(o->trained);
  free(o);
}

/* ------------------------------------------------------------------------
 * Update kernels: w (n,) parameter data, g (n,) its gradient, state of the
 * same shape. Scalars are computed once in double and rounded to tg_real,
 * so the loops are the book's formulas and nothing else. Elements are
 * independent: threads never change a result. */

/* One update of n elements: w the parameter, g its gradient, s0 and s1
 * the optimizer's state slots (or NULL), and the kernel's scalars. The
 * kernels run on chunks of it (tg_parallel_for). */
typedef struct update {
  tg_real *w;
  tg_real *g;
  tg_real *s0, *s1;
  tg_real lr, k1, k2, k3;
} update;

/* for (int64_t i = lo; i < hi; i++) { body }, with w, g, s0, s1 as
 * restrict pointers so the loop vectorises. */
#define UPDATE_LOOP(...)                                                                           \
  do {                                                                                             \
    const update *u_ = arg;                                                                        \
    tg_real *restrict w = u_->w, *restrict s0 = u_->s0, *restrict s1 = u_->s1;                     \
    tg_real *restrict g = u_->g;                                                                   \
    (void)s0, (void)s1;                                                                            \
    _Pragma("omp simd") for (int64_t i = lo; i < hi; i++) {                                        \
      __VA_ARGS__                                                                                  \
      g[i] = 0;                                                                                    \
    }                                                                                              \
  } while (0)

TG_KERNEL static void sgd(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr = u->lr;
  UPDATE_LOOP(w[i] -= lr * g[i];);
}

/* s0 = v; k1 = momentum */
TG_KERNEL static void momentum(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr = u->lr, mom = u->k1;
  UPDATE_LOOP(s0[i] = mom * s0[i] - lr * g[i]; w[i] += s0[i];);
}

/* s0 = v; k1 = momentum, k2 = momentum², k3 = (1 + momentum)·lr */
TG_KERNEL static void nesterov(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr = u->lr, mom = u->k1, mm = u->k2, c = u->k3;
  UPDATE_LOOP(s0[i] *= mom; s0[i] -= lr * g[i]; w[i] += mm * s0[i]; w[i] -= c * g[i];);
}

/* s0 = h */
TG_KERNEL static void adagrad(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr = u->lr;
  UPDATE_LOOP(s0[i] += g[i] * g[i]; w[i] -= lr * g[i] / (R_SQRT(s0[i]) + OPT_EPS););
}

/* s0 = h; k1 = decay, k2 = 1 − decay */
TG_KERNEL static void rmsprop(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr = u->lr, decay = u->k1, omd = u->k2;
  UPDATE_LOOP(s0[i] *= decay; s0[i] += omd * g[i] * g[i];
              w[i] -= lr * g[i] / (R_SQRT(s0[i]) + OPT_EPS););
}

/* s0 = m, s1 = v; lr = the bias-corrected rate lr_t, k1 = 1 − β1, k2 = 1 − β2 */
TG_KERNEL static void adam(void *arg, int64_t lo, int64_t hi) {
  const update *u = arg;
  const tg_real lr_t = u->lr, omb1 = u->k1, omb2 = u->k2;
  UPDATE_LOOP(s0[i] += omb1 * (g[i] - s0[i]); s1[i] += omb2 * (g[i] * g[i] - s1[i]);
              w[i] -= lr_t * s0[i] / (R_SQRT(s1[i]) + OPT_EPS););
}

void tg_optim_step(tg_optim *opt) {
  if (!opt)
    return;
  optim_impl *o = (optim_impl *)opt;
  const tg_optim_config *c = &opt->cfg;
  opt->step++;
  opt->state.items[0]->data[0] = (tg_real)opt->step;

  /* The book's Adam: lr_t = lr·√(1 − β2^t)/(1 − β1^t). The powers run in
   * double: in float, 0.999^t loses most of its digits within a few
   * thousand steps. */
  double lr_t = 0;
  if (c->kind == TG_ADAM) {
    double t = (double)opt->step;
    lr_t = c->lr * sqrt(1.0 - pow(c->beta2, t)) / (1.0 - pow(c->beta1, t));
  }

  for (int k = 0; k < o->ntrained; k++) {
    tg_tensor *p = o->trained[k];
    if (!(p->flags & TG_REQUIRES_GRAD) || !p->grad)
      continue;
    tg_tensor_bump(p);                /* written below, in place */
    tg_real *w = p->data;             /* p's shape */
    tg_real *g = p->grad->data;       /* p's shape, zeroed by the update */
    tg_tensor **st = opt->state.items + 1 + (int64_t)k * o->nslots;
    int64_t n = p->numel;
    update u = {w,
                g,
                o->nslots > 0 ? st[0]->data : NULL,
                o->nslots > 1 ? st[1]->data : NULL,
                (tg_real)c->lr,
                0,
                0,
                0};
    tg_range_fn kernel = NULL;
    switch (c->kind) {
    case TG_SGD:
      kernel = sgd;
      break;
    case TG_MOMENTUM:
      kernel = momentum, u.k1 = (tg_real)c->momentum;
      break;
    case TG_NESTEROV:
      kernel = nesterov, u.k1 = (tg_real)c->momentum;
      u.k2 = (tg_real)(c->momentum * c->momentum), u.k3 = (tg_real)((1.0 + c->momentum) * c->lr);
      break;
    case TG_ADAGRAD:
      kernel = adagrad;
      break;
    case TG_RMSPROP:
      kernel = rmsprop, u.k1 = (tg_real)c->decay_rate, u.k2 = (tg_real)(1.0 - c->decay_rate);
      break;
    case TG_ADAM:
      kernel = adam, u.lr = (tg_real)lr_t;
      u.k1 = (tg_real)(1.0 - c->beta1), u.k2 = (tg_real)(1.0 - c->beta2);
      break;
    }
    if (kernel) {
      tg_parallel_for(n, TG_GRAIN, n, kernel, &u);
      p->grad->flags |= TG_ZEROED;
    }
  }
  /* The kernels zeroed the gradients they read, in the same pass (a
   * separate memset is one more trip through memory for each); the rest
   * of the list (parameters added later, or frozen) are zeroed here.
   * trained[] is a subsequence of the list, in its order. */
  const tg_params *ps = opt->params;
  for (int i = 0, k = 0; i < ps->n; i++) {
    tg_tensor *p = ps->items[i];
    if (k < o->ntrained && o->trained[k] == p) {
      k++;
      if ((p->flags & TG_REQUIRES_GRAD) && p->grad)
        continue; /* updated above */
    }
    tg_tensor_zero_grad(p);
  }
}

void tg_optim_sync_step(tg_optim *opt) {
  if (!opt)
    return;
  double v = (double)opt->state.items[0]->data[0];
  /* A loaded count is a whole number >= 0; anything else restarts it. */
  opt->step = isfinite(v) && v >= 0 && v < 9.2e18 ? (int64_t)llround(v) : 0;
  opt->state.items[0]->data[0] = (tg_real)opt->step;
}
