/* model.h — the book's networks behind one small interface.
 *
 * A model is its configuration, its parameters and its buffers; forward
 * maps a batch to logits. Everything the program does with a model —
 * train, evaluate, gradcheck, checkpoint — goes through this header, so a
 * new network is one more entry in models.c's table. Models are written
 * with the public API only (nn.h, ops.h), as users write theirs.
 */
#ifndef TG_MODEL_H
#define TG_MODEL_H

#include "nn.h"

#define TG_MODEL_MAX_HIDDEN 8

typedef struct tg_model_config {
  char kind[32];                       /* "two-layer-net", "multi-layer-net", ... */
  int64_t input[3];                    /* per-sample shape (C, H, W): (1, 28, 28) */
  int64_t classes;                     /* 10 */
  int64_t hidden[TG_MODEL_MAX_HIDDEN]; /* hidden layer sizes */
  int n_hidden;
  char activation[16]; /* "relu", "sigmoid" or "tanh" */
  char init[16];       /* "he", "xavier" or "std" */
  double init_std;     /* with init "std" */
  int batchnorm;       /* 1: Batch Norm after each hidden affine */
  double dropout;      /* ratio after each hidden activation; 0: none */
  double weight_decay; /* λ of ½λΣ‖W‖² */
  /* ε of the loss's label smoothing: softmax cross-entropy against the
   * targets (1 − ε)·one-hot + ε/classes (PyTorch's label_smoothing);
   * 0 <= ε < 1, 0: none. */
  double label_smoothing;
} tg_model_config;

typedef struct tg_model tg_model;
typedef tg_tensor *(*tg_model_forward_fn)(tg_tape *tape, tg_model *m, tg_tensor *x);

struct tg_model {
  tg_model_config cfg;
  tg_params params;  /* trained */
  tg_params buffers; /* saved, not trained (running statistics) */
  /* Layer i's weight and bias (pointers into params); weight decay covers
   * every W. */
  tg_tensor *W[TG_MODEL_MAX_HIDDEN + 8];
  tg_tensor *b[TG_MODEL_MAX_HIDDEN + 8];
  int n_layers;
  tg_batchnorm bn[TG_MODEL_MAX_HIDDEN + 8];
  tg_model_forward_fn forward;
  /* Set by a training loop for one forward (NULL otherwise): the batch's
   * samples' indices in the data set (N,), so that each sample's Dropout
   * masks depend on (dropout_key, its index, the layer) alone and not on
   * the batch or shard it is computed in (tg_dropout_keyed). */
  const int64_t *sample_ids;
  uint64_t dropout_key;
};

/* The defaults of a kind: the book's hyper-parameters (two-layer-net:
 * 784-50-10, ReLU, weights N(0, 0.01²); multi-layer-net: 784-100×5-10,
 * ReLU, He). Returns TG_OK or TG_ERR_ARG for an unknown kind. */
TG_API tg_status tg_model_defaults(const char *kind, tg_model_config *cfg, tg_error *err);

/* The kinds known, NULL-terminated, for help texts. */
TG_API const char *const *tg_model_kinds(void);

/* The optimizer the book trains a kind with ("sgd" or "adam"), or NULL
 * for an unknown kind. */
TG_API const char *tg_model_default_optimizer(const char *kind);

/* Builds and initialises a model from the generator. NULL with err on an
 * invalid configuration (names the field) or out of memory. */
TG_API tg_model *tg_model_new(const tg_model_config *cfg, tg_rng *rng, tg_error *err);
TG_API void tg_model_free(tg_model *m);

/* Logits (N, classes) for x (N, C, H, W) or (N, C·H·W). One mismatch is
 * fitted: gray 28×28 images x (N, 1, 28, 28) into a model of several
 * channels larger than 28×28 (the book's digits into AlexNet's
 * 3×227×227) are enlarged by the largest integer factor that fits (pixel
 * replication, ×8 for AlexNet), centred with zero padding and repeated
 * over the channels. Any other shape fails the tape with TG_ERR_SHAPE
 * naming the model and both shapes; no image is resized otherwise. */
TG_API tg_tensor *tg_model_forward(tg_tape *tape, tg_model *m, tg_tensor *x);

/* Test-time augmentation: log-probabilities (N, classes), the log of the
 * mean of the softmax of the logits for x and for x mirrored left to
 * right (flip of the image's last axis), as one prediction. They can
 * stand in for logits: argmax, accuracy and softmax_cross_entropy read
 * them the same way. Mirroring suits clothes (Fashion-MNIST), not digits.
 * x as tg_model_forward takes it. */
TG_API tg_tensor *tg_model_forward_flip_tta(tg_tape *tape, tg_model *m, tg_tensor *x);

/* Whether samples of shape `sample` ((C, H, W), (H, W) for one channel,
 * or (D,) flat) are inputs tg_model_forward takes. TG_OK, or TG_ERR_SHAPE
 * with "samples (1, 14, 14) do not fit two-layer-net, which takes
 * (1, 28, 28) or 784 values flat". Call it where a data set meets a
 * model, before the first step. */
TG_API tg_status tg_model_check_input(const tg_model *m, const int64_t *sample, int ndim,
                                      tg_error *err);

/* The training loss: softmax-with-loss of logits against labels (N,),
 * plus the weight-decay term. */
TG_API tg_tensor *tg_model_loss(tg_tape *tape, tg_model *m, tg_tensor *logits, tg_tensor *labels);

/* The configuration as "key=value" lines (what checkpoints carry), and
 * back. Reading checks every key and value and names the first bad one. */
TG_API tg_status tg_model_config_write(const tg_model_config *cfg, char *buf, size_t cap);
TG_API tg_status tg_model_config_read(const char *text, tg_model_config *cfg, tg_error *err);

#endif
