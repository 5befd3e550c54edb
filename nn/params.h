/* params.h — a model's named, long-lived tensors, and their initialisers.
 *
 * A tg_params list owns owned tensors (tg_tensor_new): parameters, which
 * are trained and have gradients, or buffers, which are saved but not
 * trained (Batch Norm's running statistics) — a model keeps one list of
 * each. Optimizers and checkpoints work on lists, so they never need to
 * know a model. Names are unique within a list.
 */
#ifndef TG_PARAMS_H
#define TG_PARAMS_H

#include "tape.h"

typedef struct tg_params {
  tg_tensor **items; /* n owned tensors, in the order they were added */
  int n;
  int cap;
  /* After tg_params_flatten_grads: the one buffer all gradients view,
   * grad_flat_n elements of gradients (each starting TG_ALIGN-aligned,
   * zero padding between) followed by grad_flat_extra spare elements. */
  tg_real *grad_flat;
  int64_t grad_flat_n;
  int64_t grad_flat_extra;
} tg_params;

/* Creates a zero-filled owned tensor named `name` and adds it (with a
 * gradient buffer when requires_grad). Returns it, or NULL with err filled
 * (empty name, invalid shape, duplicate name, out of memory). A zeroed
 * struct is an empty list. */
TG_API tg_tensor *tg_params_new(tg_params *p, const char *name, const int64_t *shape, int ndim,
                                int requires_grad, tg_error *err);

/* The tensor called name, or NULL. */
TG_API tg_tensor *tg_params_find(const tg_params *p, const char *name);

/* Total number of elements over the list. */
TG_API int64_t tg_params_numel(const tg_params *p);

/* Zeroes every gradient buffer. */
TG_API void tg_params_zero_grad(tg_params *p);

/* The global L2 norm of all gradients. */
TG_API double tg_params_grad_norm(const tg_params *p);

/* Scales all gradients by max_norm / norm when their global norm is above
 * max_norm; returns the norm before clipping. A NaN or infinite norm, or a
 * max_norm that is not >= 0, leaves the gradients as they are. */
TG_API double tg_params_clip_grad_norm(tg_params *p, double max_norm);

/* Moves every gradient buffer of the list into one contiguous buffer,
 * TG_ALIGN-aligned, allocated once: each tensor's grad becomes a view of
 * its slice (values kept, so no result changes), and `extra` (>= 0) more
 * zeroed elements follow the gradients for the caller's own use (e.g.
 * statistics exchanged with them). Call it once, before training; tensors
 * added later keep their own gradient. TG_OK, or TG_ERR_ARG (called
 * twice, extra < 0) / TG_ERR_MEMORY with err filled, the list unchanged. */
TG_API tg_status tg_params_flatten_grads(tg_params *p, int64_t extra, tg_error *err);

/* Frees every tensor and the list itself (the struct is reusable after). */
TG_API void tg_params_free(tg_params *p);

/* ---------------------------------------------------------------------
 * Initialisers: fill t->data from the generator (never a global one).
 * fan_in is the number of inputs of each unit (D of a (D, M) weight;
 * C·FH·FW of a convolution filter). A NULL t is a no-op; an invalid
 * argument (NULL rng, std < 0 or not finite, fan_in < 1) fills t with NaN
 * so the first forward pass shows it instead of training a dead layer. */
TG_API void tg_init_constant(tg_tensor *t, double v);
TG_API void tg_init_normal(tg_tensor *t, double std, tg_rng *rng);
TG_API void tg_init_xavier(tg_tensor *t, int64_t fan_in, tg_rng *rng); /* std √(1/fan_in) */
TG_API void tg_init_he(tg_tensor *t, int64_t fan_in, tg_rng *rng);     /* std √(2/fan_in) */

#endif
