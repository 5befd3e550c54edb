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

/* Adds layer k = m->n_layers + 1: parameters "Wk" of wshape (wdims
 * dimensions), drawn by cfg's init rule with fan_in inputs per unit, and
 * "bk" of wshape[0] zeros for a convolution (wdims 4) or wshape[1] for an
 * affine layer (wdims 2). */
tg_status tg_model_add_layer(tg_model *m, const int64_t *wshape, int wdims, int64_t fan_in,
                             tg_rng *rng, tg_error *err);

/* Dropout of cfg's ratio after the layer-th dropout site: keyed per
 * sample when m->sample_ids is set, from the tape's generator otherwise. */
tg_tensor *tg_model_dropout(tg_tape *tape, tg_model *m, tg_tensor *h, int layer);

/* cfg's activation applied to h. */
tg_tensor *tg_model_activate(tg_tape *tape, const char *kind, tg_tensor *h);

#endif
