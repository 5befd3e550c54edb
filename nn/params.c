/* params.c — named lists of owned tensors: a model's parameters and
 * buffers, and an optimizer's state.
 *
 * A list owns its tensors and keeps them in the order they were added, so
 * optimizers and checkpoints see the same order every run. It never
 * touches a tape: everything here works on owned tensors outside any
 * forward pass. The initialisers live in init.c.
 */
#include "params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

tg_tensor *tg_params_new(tg_params *p, const char *name, const int64_t *shape, int ndim,
                         int requires_grad, tg_error *err) {
  if (!p) {
    tg_error_set(err, TG_ERR_NULL, "params_new: the list is NULL");
    return NULL;
  }
  if (!name || !name[0]) {
    tg_error_set(err, TG_ERR_ARG, "params_new: every tensor of a list needs a non-empty name");
    return NULL;
  }
  if (tg_params_find(p, name)) {
    tg_error_set(err, TG_ERR_ARG, "params_new: duplicate name \"%s\" (names in a list are unique)",
                 name);
    return NULL;
  }
  /* The tensor's own message says what was wrong with the shape; prefix
   * it with the name so a model with fifty tensors points at one. */
  tg_error inner = {0};
  tg_tensor *t = tg_tensor_new(shape, ndim, requires_grad, name, &inner);
  if (!t) {
    tg_error_set(err, inner.status, "params_new \"%s\": %s", name, inner.msg);
    return NULL;
  }
  if (p->n == p->cap) {
    int cap = p->cap ? 2 * p->cap : 8;
    tg_tensor **items = realloc(p->items, (size_t)cap * sizeof *items);
    if (!items) {
      tg_tensor_free(t);
      tg_error_set(err, TG_ERR_MEMORY, "params_new \"%s\": out of memory growing the list", name);
      return NULL;
    }
    p->items = items;
    p->cap = cap;
  }
  p->items[p->n++] = t;
  return t;
}

tg_tensor *tg_params_find(const tg_params *p, const char *name) {
  if (!p || !name)
    return NULL;
  for (int i = 0; i < p->n; i++)
    if (p->items[i]->name && strcmp(p->items[i]->name, name) == 0)
      return p->items[i];
  return NULL;
}

int64_t tg_params_numel(const tg_params *p) {
  int64_t n = 0;
  for (int i = 0; p && i < p->n; i++)
    n += p->items[i]->numel;
  return n;
}

void tg_params_zero_grad(tg_params *p) {
  for (int i = 0; p && i < p->n; i++)
    tg_tensor_zero_grad(p->items[i]);
}

/* The sum of squares runs in double: a float accumulator over millions of
 * small gradients loses most of their contribution. */
double tg_params_grad_norm(const tg_params *p) {
  double ss = 0;
  for (int i = 0; p && i < p->n; i++) {
    const tg_tensor *g = p->items[i]->grad;
    if (!g)
      continue;
    for (int64_t k = 0; k < g->numel; k++)
      ss += (double)g->data[k] * (double)g->data[k];
  }
  return sqrt(ss);
}

double tg_params_clip_grad_norm(tg_params *p, double max_norm) {
  double norm = tg_params_grad_norm(p);
  /* A NaN/Inf norm cannot be scaled into range (Inf·0 is NaN); leave the
   * gradients as they are so the caller can see and report it. */
  if (!(max_norm >= 0) || !isfinite(norm) || norm <= max_norm)
    return norm;
  tg_real scale = (tg_real)(max_norm / norm);
  for (int i = 0; i < p->n; i++) {
    tg_tensor *g = p->items[i]->grad;
    if (!g)
      continue;
    for (int64_t k = 0; k < g->numel; k++)
      g->data[k] *= scale;
    tg_tensor_bump(g);
  }
  return norm;
}

/* Slices start on TG_ALIGN bytes so vector kernels see aligned grads. */
static int64_t align_up(int64_t n) {
  const int64_t q = TG_ALIGN / (int64_t)sizeof(tg_real);
  return (n + q - 1) / q * q;
}

tg_status tg_params_flatten_grads(tg_params *p, int64_t extra, tg_error *err) {
  if (!p)
    return tg_error_set(err, TG_ERR_NULL, "params_flatten_grads: the list is NULL");
  if (p->grad_flat || extra < 0)
    return tg_error_set(err, TG_ERR_ARG,
                        p->grad_flat ? "params_flatten_grads: the gradients are flat already"
                                     : "params_flatten_grads: extra %lld < 0",
                        (long long)extra);
  int64_t n = 0;
  for (int i = 0; i < p->n; i++)
    if (p->items[i]->grad)
      n += align_up(p->items[i]->grad->numel);
  tg_real *flat = tg_aligned_alloc((size_t)(n + extra) * sizeof(tg_real));
  /* The views are allocated before anything changes: on failure the list
   * is as it was. */
  tg_tensor **views = calloc((size_t)(p->n ? p->n : 1), sizeof *views);
  int ok = flat && views;
  for (int i = 0; ok && i < p->n; i++)
    if (p->items[i]->grad)
      ok = (views[i] = malloc(sizeof **views)) != NULL;
  if (!ok) {
    for (int i = 0; views && i < p->n; i++)
      free(views[i]);
    free(views);
    free(flat);
    return tg_error_set(err, TG_ERR_MEMORY,
                        "params_flatten_grads: out of memory for %lld gradient elements",
                        (long long)(n + extra));
  }
  memset(flat, 0, (size_t)(n + extra) * sizeof(tg_real));
  int64_t off = 0;
  for (int i = 0; i < p->n; i++) {
    tg_tensor *g = p->items[i]->grad;
    if (!g)
      continue;
    *views[i] = *g;
    views[i]->data = flat + off;
    views[i]->flags = TG_VIEW; /* tg_tensor_free leaves it to us */
    memcpy(views[i]->data, g->data, (size_t)g->numel * sizeof(tg_real));
    tg_tensor_free(g);
    p->items[i]->grad = views[i];
    off += align_up(views[i]->numel);
  }
  free(views);
  p->grad_flat = flat;
  p->grad_flat_n = n;
  p->grad_flat_extra = extra;
  return TG_OK;
}

void tg_params_free(tg_params *p) {
  if (!p)
    return;
  for (int i = 0; i < p->n; i++) {
    tg_tensor *t = p->items[i];
    if (p->grad_flat && t->grad && (t->grad->flags & TG_VIEW)) {
      free(t->grad); /* a view struct of tg_params_flatten_grads */
      t->grad = NULL;
    }
    tg_tensor_free(t);
  }
  free(p->items);
  free(p->grad_flat);
  *p = (tg_params){0};
}
