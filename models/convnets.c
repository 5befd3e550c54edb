/* convnets.c — the book's convolutional networks, each a list of layers.
 *
 * A network is a table of layers (convolution, pooling, LRN, affine,
 * activation, Dropout) that one builder and one forward walk in order:
 * SimpleConvNet and DeepConvNet of chapters 7 and 8, LeNet-5 and AlexNet
 * as the book describes them. Weights are named W1, W2, ... in layer order
 * (convolutions and affines alike), as the book names them. Written with
 * the public API only (nn.h); no gradient code.
 */
#include <stdio.h>
#include <string.h>

#include "models_internal.h"

typedef enum { END, CONV, MAXPOOL, AVGPOOL, LRN, AFFINE, ACT, DROPOUT } layer_kind;

/* CONV: n filters of size×size; pools: size×size windows; AFFINE: to the
 * next hidden size of the configuration, the last one to the classes. */
typedef struct layer {
  layer_kind kind;
  int64_t n, size, stride, pad;
} layer;

typedef struct net {
  const char *name;
  layer l[24]; /* up to the first END */
} net;

#define C(n, size, stride, pad)                                                                    \
  { CONV, n, size, stride, pad }
#define MAX(size, stride)                                                                          \
  { MAXPOOL, 0, size, stride, 0 }
#define AVG(size, stride)                                                                          \
  { AVGPOOL, 0, size, stride, 0 }
#define A                                                                                          \
  { ACT, 0, 0, 0, 0 }
#define F                                                                                          \
  { AFFINE, 0, 0, 0, 0 }
#define D                                                                                          \
  { DROPOUT, 0, 0, 0, 0 }
#define L                                                                                          \
  { LRN, 0, 0, 0, 0 }

/* AlexNet's LRN (Krizhevsky et al. 2012, section 3.3). */
#define LRN_N     5
#define LRN_ALPHA 1e-4
#define LRN_BETA  0.75
#define LRN_K     2.0

static const net nets[] = {
    /* conv 30×5×5 → ReLU → max-pool 2×2 → Affine 100 → ReLU → Affine 10 */
    {"simple-convnet", {C(30, 5, 1, 0), A, MAX(2, 2), F, A, F}},
    /* 3×3 convs 16, 16, pool, 32, 32 (pad 2, so 14 → 16), pool, 64, 64,
     * pool → Affine 50 → ReLU → Dropout → Affine 10 → Dropout, as the
     * book's deep_convnet.py has it (Dropout after the last affine too). */
    {"deep-convnet",
     {C(16, 3, 1, 1),
      A,
      C(16, 3, 1, 1),
      A,
      MAX(2, 2),
      C(32, 3, 1, 1),
      A,
      C(32, 3, 1, 2),
      A,
      MAX(2, 2),
      C(64, 3, 1, 1),
      A,
      C(64, 3, 1, 1),
      A,
      MAX(2, 2),
      F,
      A,
      D,
      F,
      D}},
    /* LeNet-5 on 28×28: conv 6×5×5 (pad 2 gives the original's 32×32
     * geometry) → sigmoid → average 2×2 → conv 16×5×5 → sigmoid → average
     * 2×2 → Affine 120 → sigmoid → Affine 84 → sigmoid → Affine 10. */
    {"lenet", {C(6, 5, 1, 2), A, AVG(2, 2), C(16, 5, 1, 0), A, AVG(2, 2), F, A, F, A, F}},
    /* AlexNet on 3×227×227, one tower: conv 96×11×11/4 → ReLU → LRN →
     * max 3×3/2 → conv 256×5×5 → ReLU → LRN → max 3×3/2 → conv 384, 384,
     * 256 of 3×3 → max 3×3/2 → Affine 4096 → ReLU → Dropout → Affine 4096
     * → ReLU → Dropout → Affine classes. */
    {"alexnet",
     {C(96, 11, 4, 0),
      A,
      L,
      MAX(3, 2),
      C(256, 5, 1, 2),
      A,
      L,
      MAX(3, 2),
      C(384, 3, 1, 1),
      A,
      C(384, 3, 1, 1),
      A,
      C(256, 3, 1, 1),
      A,
      MAX(3, 2),
      F,
      A,
      D,
      F,
      A,
      D,
      F}},
};

static const net *net_of(const char *name) {
  for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
    if (strcmp(nets[i].name, name) == 0)
      return &nets[i];
  return NULL;
}

/* Output size of a window of `size` sliding by stride over n + 2·pad, or
 * -1 when the window does not fit or the steps do not divide exactly. */
static int64_t out_size(int64_t n, const layer *l) {
  int64_t span = n + 2 * l->pad - l->size;
  if (span < 0 || span % l->stride)
    return -1;
  return span / l->stride + 1;
}

/* Creates the parameters, walking the shapes through the layers. */
static int build_net(tg_model *m, tg_rng *rng, tg_error *err) {
  const tg_model_config *c = &m->cfg;
  const net *nt = net_of(c->kind);
  int64_t ch = c->input[0], h = c->input[1], w = c->input[2], flat = 0; /* flat: after an affine */
  int fc = 0;
  for (int i = 0; nt->l[i].kind != END; i++) {
    const layer *l = &nt->l[i];
    if (l->kind == CONV || l->kind == MAXPOOL || l->kind == AVGPOOL) {
      int64_t oh = flat ? -1 : out_size(h, l), ow = flat ? -1 : out_size(w, l);
      if (oh < 1 || ow < 1)
        return tg_error_set(err, TG_ERR_ARG,
                            "%s: layer %d (%s %lldx%lld, stride %lld, pad %lld) does not fit its "
                            "input (%lld, %lld, %lld)",
                            c->kind, i + 1, l->kind == CONV ? "conv" : "pool", (long long)l->size,
                            (long long)l->size, (long long)l->stride, (long long)l->pad,
                            (long long)ch, (long long)h, (long long)w);
      h = oh;
      w = ow;
    }
    if (l->kind == CONV || l->kind == AFFINE) {
      int64_t fan_in = l->kind == CONV ? ch * l->size * l->size : (flat ? flat : ch * h * w);
      int64_t out = l->kind == CONV ? l->n : fc < c->n_hidden ? c->hidden[fc] : c->classes;
      int64_t wshape[4] = {out, ch, l->size, l->size}, fshape[2] = {fan_in, out};
      tg_status st = l->kind == CONV ? tg_model_add_layer(m, wshape, 4, fan_in, rng, err)
                                     : tg_model_add_layer(m, fshape, 2, fan_in, rng, err);
      if (st != TG_OK)
        return st;
      if (l->kind == CONV)
        ch = out;
      else {
        flat = out;
        fc++;
      }
    }
  }
  return TG_OK;
}

static tg_tensor *forward_net(tg_tape *tape, tg_model *m, tg_tensor *x) {
  const tg_model_config *c = &m->cfg;
  const net *nt = net_of(c->kind);
  tg_tensor *h = x; /* (N, C, H, W) until the first affine flattens it to (N, D) */
  const int relu = strcmp(c->activation, "relu") == 0;
  int k = 0;
  for (int i = 0; nt->l[i].kind != END; i++) {
    const layer *l = &nt->l[i];
    switch (l->kind) {
    case CONV:
      if (relu && nt->l[i + 1].kind == ACT && nt->l[i + 2].kind == MAXPOOL &&
          nt->l[i + 2].pad == 0 && nt->l[i + 2].stride == nt->l[i + 2].size) {
        /* conv, ReLU, max-pool with windows that tile: the pooling fused
         * into the convolution, ReLU after it (they commute: see ACT). */
        const layer *p = &nt->l[i + 2];
        h = tg_relu(tape,
                    tg_conv2d_max_pool(tape, h, m->W[k], m->b[k], l->stride, l->pad, p->size));
        i += 2;
      } else if (relu && nt->l[i + 1].kind == ACT && nt->l[i + 2].kind != MAXPOOL) {
        /* ReLU fused into the convolution (ReLU before a pooling runs
         * after it instead, below: cheaper still). */
        h = tg_conv2d_relu(tape, h, m->W[k], m->b[k], l->stride, l->pad);
        i++;
      } else {
        h = tg_conv2d(tape, h, m->W[k], m->b[k], l->stride, l->pad);
      }
      k++;
      break;
    case MAXPOOL:
      h = tg_max_pool2d(tape, h, l->size, l->stride, l->pad);
      break;
    case AVGPOOL:
      h = tg_avg_pool2d(tape, h, l->size, l->stride, l->pad);
      break;
    case LRN:
      h = tg_lrn(tape, h, LRN_N, LRN_ALPHA, LRN_BETA, LRN_K);
      break;
    case AFFINE:
      h = tg_affine(tape, h, m->W[k], m->b[k]);
      k++;
      break;
    case ACT:
      if (relu && nt->l[i + 1].kind == MAXPOOL) {
        /* ReLU then max-pooling, computed as max-pooling then ReLU: ReLU
         * is monotone and exactly 0 on (−∞, 0], so both give the same
         * values and route the gradient to the same element of each
         * window (tests/test_models.c compares the bits), on a quarter
         * of the elements with a quarter of the memory. (A window that
         * holds a NaN can differ: ReLU turns NaN into 0.) */
        const layer *p = &nt->l[++i];
        h = tg_relu(tape, tg_max_pool2d(tape, h, p->size, p->stride, p->pad));
      } else {
        h = tg_model_activate(tape, c->activation, h);
      }
      break;
    case DROPOUT:
      if (c->dropout > 0)
        h = tg_model_dropout(tape, m, h, i);
      break;
    case END:
      break;
    }
  }
  return h;
}

/* ------------------------------------------------------------------------
 * Defaults: the book's hyper-parameters */

static void defaults_simple(tg_model_config *c) {
  c->n_hidden = 1;
  c->hidden[0] = 100;
  strcpy(c->activation, "relu");
  strcpy(c->init, "std"); /* SimpleConvNet's weight_init_std = 0.01 */
  c->init_std = 0.01;
}

static void defaults_deep(tg_model_config *c) {
  c->n_hidden = 1;
  c->hidden[0] = 50;
  strcpy(c->activation, "relu");
  strcpy(c->init, "he");
  c->dropout = 0.5;
}

static void defaults_lenet(tg_model_config *c) {
  c->n_hidden = 2;
  c->hidden[0] = 120;
  c->hidden[1] = 84;
  strcpy(c->activation, "sigmoid");
  strcpy(c->init, "xavier"); /* the book's choice for sigmoid */
}

/* He init rather than the paper's N(0, 0.01²) with biases of 1: the
 * paper's needed its learning-rate schedule to get going. */
static void defaults_alexnet(tg_model_config *c) {
  c->input[0] = 3;
  c->input[1] = 227;
  c->input[2] = 227;
  c->n_hidden = 2;
  c->hidden[0] = 4096;
  c->hidden[1] = 4096;
  strcpy(c->activation, "relu");
  strcpy(c->init, "he");
  c->dropout = 0.5;
}

const tg_model_kind tg_convnet_kinds[] = {
    {"simple-convnet", "adam", 1, 0, defaults_simple, build_net, forward_net},
    {"deep-convnet", "adam", 1, 0, defaults_deep, build_net, forward_net},
    {"lenet", "adam", 2, 0, defaults_lenet, build_net, forward_net},
    {"alexnet", "adam", 2, 0, defaults_alexnet, build_net, forward_net},
};
const int tg_n_convnet_kinds = sizeof tg_convnet_kinds / sizeof tg_convnet_kinds[0];
