/* tensor.c — shapes, owned tensors and the small utilities every layer
 * shares. Arena tensors are made by the tape (tape.c); nothing here
 * records ops or knows about gradients beyond the grad buffer of a leaf.
 */
#include "tensor.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

tg_status tg_error_vset(tg_error *err, tg_status status, const char *fmt, va_list ap) {
  if (!err || err->status != TG_OK)
    return status;
  err->status = status;
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  return status;
}

tg_status tg_error_set(tg_error *err, tg_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tg_error_vset(err, status, fmt, ap);
  va_end(ap);
  return status;
}

void *tg_aligned_alloc(size_t bytes) {
  size_t n = (bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
  return aligned_alloc(TG_ALIGN, n ? n : TG_ALIGN);
}

char *tg_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0)
    return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (k < n)
    snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
  return buf;
}

tg_status tg_shape_check(const int64_t *shape, int ndim, int64_t *numel, const char *what,
                         tg_error *err) {
  if (ndim < 0 || ndim > TG_MAX_DIMS)
    return tg_error_set(err, TG_ERR_SHAPE, "%s: %d dimensions (at most %d are supported)", what,
                        ndim, TG_MAX_DIMS);
  if (ndim > 0 && !shape)
    return tg_error_set(err, TG_ERR_NULL, "%s: shape is NULL", what);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    char buf[160];
    if (shape[i] < 1)
      return tg_error_set(err, TG_ERR_SHAPE,
                          "%s: dimension %d of %s is %lld (every dimension must be >= 1; "
                          "empty tensors are not supported)",
                          what, i, tg_shape_str(shape, ndim, buf, sizeof buf), (long long)shape[i]);
    if (n > INT64_MAX / shape[i] || n * shape[i] > INT64_MAX / (int64_t)sizeof(tg_real))
      return tg_error_set(err, TG_ERR_SHAPE, "%s: shape %s has too many elements", what,
                          tg_shape_str(shape, ndim, buf, sizeof buf));
    n *= shape[i];
  }
  if (numel)
    *numel = n;
  return TG_OK;
}

int tg_shape_eq(const tg_tensor *a, const tg_tensor *b) {
  if (a->ndim != b->ndim)
    return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return 0;
  return 1;
}

void tg_strides(const int64_t *shape, int ndim, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
}

/* ------------------------------------------------------------------------
 * Owned tensors: the struct, the name and the data in one allocation each */

static tg_tensor *owned_new(const int64_t *shape, int ndim, int64_t numel, const char *name,
                            tg_error *err) {
  size_t name_len = name ? strlen(name) + 1 : 0;
  tg_tensor *t = calloc(1, sizeof *t + name_len);
  tg_real *data = tg_aligned_alloc((size_t)numel * sizeof(tg_real));
  if (!t || !data) {
    free(t);
    free(data);
    char buf[160];
    tg_error_set(err, TG_ERR_MEMORY, "tensor_new: out of memory for %s",
                 tg_shape_str(shape, ndim, buf, sizeof buf));
    return NULL;
  }
  memset(data, 0, (size_t)numel * sizeof(tg_real));
  t->data = data;
  for (int i = 0; i < TG_MAX_DIMS; i++)
    t->shape[i] = i < ndim ? shape[i] : 1;
  t->ndim = ndim;
  t->numel = numel;
  t->flags = TG_OWNED;
  t->node = -1;
  if (name) {
    char *copy = (char *)(t + 1);
    memcpy(copy, name, name_len);
    t->name = copy;
  }
  return t;
}

tg_tensor *tg_tensor_new(const int64_t *shape, int ndim, int requires_grad, const char *name,
                         tg_error *err) {
  int64_t numel;
  if (tg_shape_check(shape, ndim, &numel, "tensor_new", err) != TG_OK)
    return NULL;
  tg_tensor *t = owned_new(shape, ndim, numel, name, err);
  if (t && requires_grad) {
    t->grad = owned_new(shape, ndim, numel, NULL, err);
    if (!t->grad) {
      tg_tensor_free(t);
      return NULL;
    }
    t->flags |= TG_REQUIRES_GRAD;
  }
  return t;
}

void tg_tensor_free(tg_tensor *t) {
  if (!t || !(t->flags & TG_OWNED))
    return;
  if (t->grad && (t->grad->flags & TG_OWNED))
    tg_tensor_free(t->grad);
  free(t->data);
  free(t);
}

void tg_tensor_fill(tg_tensor *t, tg_real v) {
  if (!t)
    return;
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = v;
  tg_tensor_bump(t);
}

void tg_tensor_bump(tg_tensor *t) {
  if (t) {
    t->version++;
    t->flags &= ~(unsigned)TG_ZEROED;
  }
}

void tg_tensor_zero_grad(tg_tensor *t) {
  if (!t || !t->grad || (t->grad->flags & TG_ZEROED))
    return;
  memset(t->grad->data, 0, (size_t)t->grad->numel * sizeof(tg_real));
  t->grad->flags |= TG_ZEROED;
}

void tg_tensor_print(const tg_tensor *t, FILE *f, int64_t max) {
  char buf[160];
  if (!t) {
    fprintf(f, "(null tensor)\n");
    return;
  }
  fprintf(f, "%s%s%s [", t->name ? t->name : "", t->name ? " " : "",
          tg_shape_str(t->shape, t->ndim, buf, sizeof buf));
  int64_t n = t->numel < max ? t->numel : max;
  for (int64_t i = 0; i < n; i++)
    fprintf(f, i ? ", %.6g" : "%.6g", (double)t->data[i]);
  fprintf(f, "%s]\n", n < t->numel ? ", ..." : "");
}
