/* models_internal.h — what the model files share: the table row each
 * kind of network fills in. Private to models/: not installed, not
 * exported (hidden visibility).
 */
#ifndef TG_MODELS_INTERNAL_H
#define TG_MODELS_INTERNAL_H

#include "model.h"

typedef struct tg_model_kind {
  const char *name;
  const char *optimizer; /* the book's optimizer for it: "sgd" or "adam" */
  int n_fc;              /* hidden affine layers it needs; -1: any number */
  int batchnorm_ok;      /* 1: --batchnorm applies */
  void (*defaults)(tg_model_config *cfg);
  int (*build)(tg_model *m, tg_rng *rng, tg_error *err);
  tg_model_forward_fn forward;
} tg_model_kind;

/* The convolutional kinds (convnets.c), n of them. */
extern const tg_model_kind tg_convnet_kinds[];
extern const int tg_n_convnet_kinds;

/* Draws W's initial values by cfg's init rule, fan_in inputs per unit. */
void tg_model_init_weight(tg_tensor *W, const tg_model_config *c, int64_t fan_in, tg_rng *rng);

/* cfg's activation applied to h. */
tg_tensor *tg_model_activate(tg_tape *tape, const char *kind, tg_tensor *h);

#endif
