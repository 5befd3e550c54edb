/* tensor.h — the n-dimensional array every op reads and writes.
 *
 * A tensor is contiguous, row-major, at most TG_MAX_DIMS dimensions, with
 * 64-byte-aligned data of type tg_real. It lives either in a tape's arena
 * (intermediates: valid until the next tg_tape_reset) or on the heap
 * (parameters and other long-lived leaves: valid until tg_tensor_free).
 * This header knows nothing about ops or gradients beyond the fields that
 * the tape fills in.
 *
 * Fields are for reading. Writing into `data` is allowed for leaves you own
 * (inputs, parameters), followed by tg_tensor_bump(t); every other field is
 * the engine's.
 *
 * Versions: every write through the API (tg_tensor_fill, the initialisers,
 * an optimizer step, a checkpoint load) bumps t->version, and each recorded
 * op keeps the versions of its inputs and output. Backward refuses a node
 * whose tensors changed since it was recorded, naming the tensor and the
 * op, instead of differentiating at values the forward never saw. A raw
 * write into `data` must call tg_tensor_bump; in anomaly mode the tape also
 * checksums what each op saved, so a raw write that skipped the bump is
 * caught too. A view (reshape) has a counter of its own: writes through
 * its base are caught by the checksums of anomaly mode only.
 *
 * Zeroed gradients: tg_tensor_zero_grad and an optimizer step, which
 * zeroes the gradients it reads, mark a gradient TG_ZEROED; backward's
 * writes into it and tg_tensor_bump clear the mark. A gradient already
 * marked is not cleared again, so zeroing at the top of a step after the
 * optimizer's costs nothing. A raw write into a gradient must therefore
 * call tg_tensor_bump on it too, like any raw write.
 */
#ifndef TG_TENSOR_H
#define TG_TENSOR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tapegrad_config.h"
#include "tg_api.h"

#ifdef TG_DOUBLE
typedef double tg_real;
#define TG_REAL_NAME "double"
#else
typedef float tg_real;
#define TG_REAL_NAME "float"
#endif

#define TG_MAX_DIMS 6
#define TG_ALIGN    64

/* Every struct of the library is typedef'd to its own name, `tg_` prefixed. */
typedef struct tg_tape tg_tape;
typedef struct tg_tensor tg_tensor;

/* An error: a status (0 = success) and a message that says what was wrong.
 * Every function that reports success or failure returns a tg_status. */
typedef enum tg_status {
  TG_OK = 0,
  TG_ERR_SHAPE,   /* shapes or axes that do not fit the op */
  TG_ERR_ARG,     /* any other invalid argument */
  TG_ERR_NULL,    /* a NULL input */
  TG_ERR_MEMORY,  /* the system refused memory */
  TG_ERR_ANOMALY, /* NaN or Inf seen in anomaly mode */
  TG_ERR_GRAD,    /* a gradient that cannot be taken */
  TG_ERR_IO,      /* a file could not be read or written */
  TG_ERR_FORMAT,  /* a file's contents are not what they claim */
} tg_status;

#define TG_MSG_MAX 512
typedef struct tg_error {
  tg_status status;
  char msg[TG_MSG_MAX];
} tg_error;

/* Records status and a printf-style message in err (which may be NULL);
 * keeps the first error when err already holds one. Returns status. The
 * one place an error is recorded: the tape's own error goes through it
 * too (tg_tape_fail, tg_op_fail). */
TG_API tg_status tg_error_set(tg_error *err, tg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
TG_API tg_status tg_error_vset(tg_error *err, tg_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

enum tg_tensor_flags {
  TG_REQUIRES_GRAD = 1u << 0, /* gradients flow into or through it */
  TG_OWNED = 1u << 1,         /* heap storage, freed by tg_tensor_free */
  TG_VIEW = 1u << 2,          /* data belongs to another tensor */
  TG_ZEROED = 1u << 3,        /* data all zero since the last write (see below) */
};

struct tg_tensor {
  tg_real *data;              /* numel elements, TG_ALIGN-aligned */
  int64_t shape[TG_MAX_DIMS]; /* shape[0..ndim-1]; the rest are 1 */
  int64_t numel;              /* product of the shape; 1 for a scalar */
  int ndim;                   /* 0 (scalar) .. TG_MAX_DIMS */
  unsigned flags;             /* enum tg_tensor_flags */
  int32_t node;               /* producing node on the tape; -1 for a leaf */
  uint32_t gen;               /* the tape generation it belongs to */
  uint32_t version;           /* bumped by every write through the API */
  tg_tape *tape;              /* the owning tape; NULL when TG_OWNED */
  tg_tensor *grad;            /* leaves: accumulated gradient, same shape */
  tg_tensor *gacc;            /* engine's: gradient during one backward */
  const char *name;           /* optional, for messages and checkpoints */
};

/* ---------------------------------------------------------------------
 * Shapes */

/* Checks ndim in [0, TG_MAX_DIMS], every dim >= 1 and a product that fits
 * in int64. On success stores the product in *numel and returns TG_OK;
 * otherwise fills err with a message prefixed by `what`. */
TG_API tg_status tg_shape_check(const int64_t *shape, int ndim, int64_t *numel, const char *what,
                                tg_error *err);

/* Writes "(2, 3, 4)" into buf (always NUL-terminated); returns buf. */
TG_API char *tg_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);

/* t's shape string in a temporary buffer, for messages: TG_SHAPE(x). */
#define TG_SHAPE(t) tg_shape_str((t)->shape, (t)->ndim, (char[160]){0}, 160)

/* 1 when the two shapes are equal. */
TG_API int tg_shape_eq(const tg_tensor *a, const tg_tensor *b);

/* Row-major strides in elements. */
TG_API void tg_strides(const int64_t *shape, int ndim, int64_t *strides);

/* ---------------------------------------------------------------------
 * Owned (heap) tensors: parameters, data sets, anything outliving a step */

/* A zero-filled owned tensor. With requires_grad, a zeroed gradient buffer
 * of the same shape is allocated too (t->grad). Returns NULL and fills err
 * on an invalid shape or when memory runs out. `name` is copied. */
TG_API tg_tensor *tg_tensor_new(const int64_t *shape, int ndim, int requires_grad, const char *name,
                                tg_error *err);

/* Frees an owned tensor and its gradient; NULL is a no-op. Arena tensors
 * are never freed by the caller (tg_tape_reset releases them). */
TG_API void tg_tensor_free(tg_tensor *t);

/* Sets every element (data only) and bumps the version. */
TG_API void tg_tensor_fill(tg_tensor *t, tg_real v);

/* Says that t's data was written by hand (t->data[i] = ...): bumps its
 * version, so that a backward over ops recorded before the write fails
 * instead of using the new values, and drops its TG_ZEROED mark. NULL is
 * a no-op. */
TG_API void tg_tensor_bump(tg_tensor *t);

/* Zeroes the gradient buffer of an owned leaf, if it has one and it is
 * not marked TG_ZEROED already, and marks it. */
TG_API void tg_tensor_zero_grad(tg_tensor *t);

/* Element at a flat row-major index, as double (handy in tests). */
static inline double tg_at(const tg_tensor *t, int64_t i) { return (double)t->data[i]; }

/* Prints shape and (up to `max` leading) values. */
TG_API void tg_tensor_print(const tg_tensor *t, FILE *f, int64_t max);

/* Aligned heap allocation (size rounded up to TG_ALIGN); free with free(). */
TG_API void *tg_aligned_alloc(size_t bytes);

#endif
