/* models.c — the book's dense networks, and the table of model kinds
 * (the convolutional ones are in convnets.c).
 *
 * TwoLayerNet (chapter 5) and MultiLayerNetExtend (chapter 6) are one
 * stack: for each hidden size, Affine → [Batch Norm] → activation →
 * [Dropout]; then a last Affine to the classes. TwoLayerNet is the stack
 * with one hidden layer of 50 and weights drawn with std 0.01, as the book
 * has it. Written with the public API only; no gradient code.
 */
#include "model.h"
#include "models_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * The dense stack */

static int64_t input_size(const tg_model_config *c) {
  return c->input[0] * c->input[1] * c->input[2];
}

tg_status tg_model_add_layer(tg_model *m, const int64_t *wshape, int wdims, int64_t fan_in,
                             tg_rng *rng, tg_error *err) {
  const tg_model_config *c = &m->cfg;
  const int64_t out = wdims == 4 ? wshape[0] : wshape[1];
  char name[32];
  snprintf(name, sizeof name, "W%d", m->n_layers + 1);
  tg_tensor *W = tg_params_new(&m->params, name, wshape, wdims, 1, err);
  snprintf(name, sizeof name, "b%d", m->n_layers + 1);
  tg_tensor *b = tg_params_new(&m->params, name, &out, 1, 1, err);
  if (!W || !b)
    return err ? err->status : TG_ERR_MEMORY;
  if (strcmp(c->init, "he") == 0)
    tg_init_he(W, fan_in, rng);
  else if (strcmp(c->init, "xavier") == 0)
    tg_init_xavier(W, fan_in, rng);
  else
    tg_init_normal(W, c->init_std, rng);
  m->W[m->n_layers] = W;
  m->b[m->n_layers++] = b;
  return TG_OK;
}

static int build_dense(tg_model *m, tg_rng *rng, tg_error *err) {
  const tg_model_config *c = &m->cfg;
  int64_t fan_in = input_size(c);
  char name[32];
  for (int i = 0; i <= c->n_hidden; i++) {
    int64_t out = i < c->n_hidden ? c->hidden[i] : c->classes;
    tg_status st = tg_model_add_layer(m, (int64_t[]){fan_in, out}, 2, fan_in, rng, err);
    if (st != TG_OK)
      return st;
    if (i < c->n_hidden && c->batchnorm) {
      snprintf(name, sizeof name, "bn%d", i + 1);
      st = tg_batchnorm_init(&m->bn[i], name, out, &m->params, &m->buffers, err);
      if (st != TG_OK)
        return st;
    }
    fan_in = out;
  }
  return TG_OK;
}

tg_tensor *tg_model_activate(tg_tape *tape, const char *kind, tg_tensor *h) {
  if (strcmp(kind, "sigmoid") == 0)
    return tg_sigmoid(tape, h);
  if (strcmp(kind, "tanh") == 0)
    return tg_tanh(tape, h);
  return tg_relu(tape, h);
}

tg_tensor *tg_model_dropout(tg_tape *tape, tg_model *m, tg_tensor *h, int layer) {
  if (!m->sample_ids)
    return tg_dropout(tape, h, m->cfg.dropout);
  uint64_t key = m->dropout_key ^ (uint64_t)(layer + 1) * 0xd1342543de82ef95ULL;
  return tg_dropout_keyed(tape, h, m->cfg.dropout, key, m->sample_ids);
}

static tg_tensor *forward_dense(tg_tape *tape, tg_model *m, tg_tensor *x) {
  const tg_model_config *c = &m->cfg;
  tg_tensor *h = x; /* (N, D), or (N, C, H, W) that the first affine flattens */
  for (int i = 0; i < c->n_hidden; i++) {
    h = tg_affine(tape, h, m->W[i], m->b[i]);
    if (c->batchnorm)
      h = tg_batchnorm_forward(tape, &m->bn[i], h);
    h = tg_model_activate(tape, c->activation, h);
    if (c->dropout > 0)
      h = tg_model_dropout(tape, m, h, i);
  }
  return tg_affine(tape, h, m->W[c->n_hidden], m->b[c->n_hidden]);
}

static void defaults_two_layer(tg_model_config *c) {
  c->n_hidden = 1;
  c->hidden[0] = 50;
  strcpy(c->activation, "relu");
  strcpy(c->init, "std");
  c->init_std = 0.01;
}

static void defaults_multi_layer(tg_model_config *c) {
  c->n_hidden = 5;
  for (int i = 0; i < 5; i++)
    c->hidden[i] = 100;
  strcpy(c->activation, "relu");
  strcpy(c->init, "he");
  c->init_std = 0.01;
}

/* ------------------------------------------------------------------------
 * The table of kinds: a new network is one row. */

static const tg_model_kind dense_kinds[] = {
    {"two-layer-net", "sgd", 1, 1, defaults_two_layer, build_dense, forward_dense},
    {"multi-layer-net", "sgd", -1, 1, defaults_multi_layer, build_dense, forward_dense},
};
#define NDENSE (int)(sizeof dense_kinds / sizeof dense_kinds[0])

static const tg_model_kind *kind_at(int i) {
  return i < NDENSE                        ? &dense_kinds[i]
         : i < NDENSE + tg_n_convnet_kinds ? &tg_convnet_kinds[i - NDENSE]
                                           : NULL;
}

static const tg_model_kind *find_kind(const char *name) {
  for (int i = 0; kind_at(i); i++)
    if (strcmp(kind_at(i)->name, name) == 0)
      return kind_at(i);
  return NULL;
}

const char *const *tg_model_kinds(void) {
  static const char *names[NDENSE + 8 + 1];
  for (int i = 0; kind_at(i) && i < NDENSE + 8; i++)
    names[i] = kind_at(i)->name;
  return names;
}

const char *tg_model_default_optimizer(const char *kind) {
  const tg_model_kind *k = kind ? find_kind(kind) : NULL;
  return k ? k->optimizer : NULL;
}

tg_status tg_model_defaults(const char *kind, tg_model_config *cfg, tg_error *err) {
  const tg_model_kind *k = kind ? find_kind(kind) : NULL;
  if (!k)
    return tg_error_set(err, TG_ERR_ARG, "unknown model '%s'", kind ? kind : "(null)");
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->kind, sizeof cfg->kind, "%s", k->name);
  cfg->input[0] = 1;
  cfg->input[1] = 28;
  cfg->input[2] = 28;
  cfg->classes = 10;
  cfg->init_std = 0.01;
  k->defaults(cfg);
  return TG_OK;
}

static int validate(const tg_model_config *c, tg_error *err) {
  const tg_model_kind *k = find_kind(c->kind);
  if (!k)
    return tg_error_set(err, TG_ERR_ARG, "unknown model '%s'", c->kind);
  if (k->n_fc >= 0 && c->n_hidden != k->n_fc)
    return tg_error_set(err, TG_ERR_ARG, "%s has %d hidden affine layer%s, not %d", c->kind,
                        k->n_fc, k->n_fc == 1 ? "" : "s", c->n_hidden);
  if (c->batchnorm && !k->batchnorm_ok)
    return tg_error_set(err, TG_ERR_ARG, "%s has no Batch Norm option", c->kind);
  for (int i = 0; i < 3; i++)
    if (c->input[i] < 1 || c->input[i] > 4096)
      return tg_error_set(err, TG_ERR_ARG, "model input dimension %d is %lld", i,
                          (long long)c->input[i]);
  if (c->classes < 2 || c->classes > 100000)
    return tg_error_set(err, TG_ERR_ARG, "model classes is %lld (2 to 100000)",
                        (long long)c->classes);
  if (c->n_hidden < 0 || c->n_hidden > TG_MODEL_MAX_HIDDEN)
    return tg_error_set(err, TG_ERR_ARG, "%d hidden layers (at most %d)", c->n_hidden,
                        TG_MODEL_MAX_HIDDEN);
  for (int i = 0; i < c->n_hidden; i++)
    if (c->hidden[i] < 1 || c->hidden[i] > 1000000)
      return tg_error_set(err, TG_ERR_ARG, "hidden layer %d has size %lld", i + 1,
                          (long long)c->hidden[i]);
  if (strcmp(c->activation, "relu") && strcmp(c->activation, "sigmoid") &&
      strcmp(c->activation, "tanh"))
    return tg_error_set(err, TG_ERR_ARG, "activation '%s' (relu, sigmoid or tanh)", c->activation);
  if (strcmp(c->init, "he") && strcmp(c->init, "xavier") && strcmp(c->init, "std"))
    return tg_error_set(err, TG_ERR_ARG, "init '%s' (he, xavier or std)", c->init);
  if (!(c->init_std > 0 && c->init_std < 100))
    return tg_error_set(err, TG_ERR_ARG, "init std %g (want > 0)", c->init_std);
  if (!(c->dropout >= 0 && c->dropout < 1))
    return tg_error_set(err, TG_ERR_ARG, "dropout ratio %g (want 0 <= ratio < 1)", c->dropout);
  if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
    return tg_error_set(err, TG_ERR_ARG, "weight decay %g (want >= 0)", c->weight_decay);
  if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
    return tg_error_set(err, TG_ERR_ARG, "label smoothing %g (want 0 <= epsilon < 1)",
                        c->label_smoothing);
  return TG_OK;
}

tg_model *tg_model_new(const tg_model_config *cfg, tg_rng *rng, tg_error *err) {
  if (!cfg || !rng) {
    tg_error_set(err, TG_ERR_NULL, "model_new: config and generator are required");
    return NULL;
  }
  if (validate(cfg, err) != TG_OK)
    return NULL;
  tg_model *m = calloc(1, sizeof *m);
  if (!m) {
    tg_error_set(err, TG_ERR_MEMORY, "model_new: out of memory");
    return NULL;
  }
  m->cfg = *cfg;
  m->forward = find_kind(cfg->kind)->forward;
  if (find_kind(cfg->kind)->build(m, rng, err) != TG_OK) {
    tg_model_free(m);
    return NULL;
  }
  return m;
}

void tg_model_free(tg_model *m) {
  if (!m)
    return;
  tg_params_free(&m->params);
  tg_params_free(&m->buffers);
  free(m);
}

/* The one enlargement there is, the documented one: the book's gray
 * 28×28 images (MNIST, Fashion-MNIST) into an AlexNet-style model, of
 * several channels and larger than 28×28 (AlexNet's 3×227×227). */
#define DIGIT_SIZE 28

/* How samples of shape s (nd values: (C, H, W), or (D,) flat) meet c's
 * input (C, H, W): FIT_AS_IS (that shape, or as many values flat),
 * FIT_ENLARGE (the case above) or FIT_NONE. Every other size or channel
 * count is FIT_NONE: 14×14 data in a 28×28 network, enlarged silently,
 * would train at chance on what the network was not meant to see. */
enum { FIT_NONE, FIT_AS_IS, FIT_ENLARGE };
static int fit_of(const tg_model_config *c, const int64_t *s, int nd) {
  int64_t C = c->input[0], H = c->input[1], W = c->input[2];
  if (nd == 1 && s[0] == C * H * W)
    return FIT_AS_IS;
  if (nd != 3)
    return FIT_NONE;
  if (s[0] == C && s[1] == H && s[2] == W)
    return FIT_AS_IS;
  if (s[0] == 1 && s[1] == DIGIT_SIZE && s[2] == DIGIT_SIZE && C > 1 && H > DIGIT_SIZE &&
      W > DIGIT_SIZE)
    return FIT_ENLARGE;
  return FIT_NONE;
}

/* Whether c takes gray 28×28 images by enlarging them, for messages. */
static int takes_digits(const tg_model_config *c) {
  return fit_of(c, (int64_t[]){1, DIGIT_SIZE, DIGIT_SIZE}, 3) == FIT_ENLARGE;
}

tg_status tg_model_check_input(const tg_model *m, const int64_t *sample, int ndim, tg_error *err) {
  if (!m || !sample)
    return tg_error_set(err, TG_ERR_NULL, "model_check_input: model and sample shape are required");
  const tg_model_config *c = &m->cfg;
  if (ndim < 1 || ndim > TG_MAX_DIMS)
    return tg_error_set(err, TG_ERR_SHAPE, "model_check_input: samples of %d dimensions", ndim);
  if (ndim <= 3) {
    int64_t s[3] = {1, 1, 1}; /* (H, W) as one channel */
    memcpy(s + (ndim == 1 ? 0 : 3 - ndim), sample, (size_t)ndim * sizeof *s);
    if (fit_of(c, s, ndim == 1 ? 1 : 3) != FIT_NONE)
      return TG_OK;
  }
  char got[160];
  return tg_error_set(err, TG_ERR_SHAPE,
                      "samples %s do not fit %s, which takes (%lld, %lld, %lld) or %lld values "
                      "flat%s",
                      tg_shape_str(sample, ndim, got, sizeof got), c->kind, (long long)c->input[0],
                      (long long)c->input[1], (long long)c->input[2],
                      (long long)(c->input[0] * c->input[1] * c->input[2]),
                      takes_digits(c) ? ", or gray (1, 28, 28) images, which it enlarges" : "");
}

/* x as the model's input (N, C, H, W): as it is, reshaped from flat
 * (N, C·H·W), or, for the gray 28×28 images of fit_of, enlarged by the
 * largest integer factor that fits (pixel replication), centred with
 * zero padding and repeated over the channels. Anything else is an error
 * naming the model and both shapes. */
static tg_tensor *fit_input(tg_tape *tape, const tg_model_config *c, tg_tensor *x) {
  if (!x)
    return NULL;
  int64_t n = x->shape[0], C = c->input[0], H = c->input[1], W = c->input[2];
  int fit = x->ndim == 2 || x->ndim == 4 ? fit_of(c, x->shape + 1, x->ndim - 1) : FIT_NONE;
  if (fit == FIT_AS_IS)
    return x->ndim == 4 ? x : tg_reshape(tape, x, (int64_t[]){n, C, H, W}, 4);
  if (fit == FIT_ENLARGE) {
    int64_t h = x->shape[2], w = x->shape[3];
    int64_t f = H / h < W / w ? H / h : W / w; /* (N, 1, h, w) -> (N, 1, f·h, f·w) */
    tg_tensor *y = tg_reshape(tape, x, (int64_t[]){n, 1, h, 1, w, 1}, 6);
    y = tg_broadcast_to(tape, y, (int64_t[]){n, 1, h, f, w, f}, 6);
    y = tg_reshape(tape, y, (int64_t[]){n, 1, h * f, w * f}, 4);
    int64_t ph = H - h * f, pw = W - w * f;
    y = tg_pad(tape, y, (int64_t[]){0, 0, ph / 2, pw / 2},
               (int64_t[]){0, 0, ph - ph / 2, pw - pw / 2});
    return tg_broadcast_to(tape, y, (int64_t[]){n, C, H, W}, 4);
  }
  tg_tape_fail(tape, TG_ERR_SHAPE, "model_forward",
               "input %s does not fit %s's (N, %lld, %lld, %lld) or (N, %lld)%s",
               tg_shape_str(x->shape, x->ndim, (char[160]){0}, 160), c->kind, (long long)C,
               (long long)H, (long long)W, (long long)(C * H * W),
               takes_digits(c) ? " (gray (N, 1, 28, 28) images are enlarged to fit)" : "");
  return NULL;
}

tg_tensor *tg_model_forward(tg_tape *tape, tg_model *m, tg_tensor *x) {
  if (!m) {
    tg_tape_fail(tape, TG_ERR_NULL, "model_forward", "model is NULL");
    return NULL;
  }
  return m->forward(tape, m, fit_input(tape, &m->cfg, x));
}

tg_tensor *tg_model_forward_flip_tta(tg_tape *tape, tg_model *m, tg_tensor *x) {
  if (!m) {
    tg_tape_fail(tape, TG_ERR_NULL, "model_forward_flip_tta", "model is NULL");
    return NULL;
  }
  tg_tensor *fx = fit_input(tape, &m->cfg, x); /* (N, C, H, W) */
  tg_tensor *views[2] = {tg_log_softmax(tape, m->forward(tape, m, fx), -1),
                         tg_log_softmax(tape, m->forward(tape, m, tg_flip(tape, fx, -1)), -1)};
  /* log ½(p + q) from log p and log q, without leaving the log domain. */
  tg_tensor *lse = tg_logsumexp(tape, tg_stack(tape, views, 2, 0), (int[]){0}, 1, 0);
  return tg_add_scalar(tape, lse, (tg_real)-log(2.0));
}

tg_tensor *tg_model_loss(tg_tape *tape, tg_model *m, tg_tensor *logits, tg_tensor *labels) {
  const double eps = m->cfg.label_smoothing;
  if (eps > 0 && labels) { /* labels (N,) or rows (N, C) -> smoothed rows (N, C) */
    tg_tensor *rows = labels->ndim == 1 ? tg_one_hot(tape, labels, m->cfg.classes) : labels;
    labels = tg_add_scalar(tape, tg_mul_scalar(tape, rows, (tg_real)(1 - eps)),
                           (tg_real)(eps / (double)m->cfg.classes));
  }
  tg_tensor *loss = tg_softmax_cross_entropy(tape, logits, labels);
  if (m->cfg.weight_decay > 0)
    loss = tg_add(tape, loss, tg_weight_decay(tape, m->W, m->n_layers, m->cfg.weight_decay));
  return loss;
}

/* ------------------------------------------------------------------------
 * Configuration text */

tg_status tg_model_config_write(const tg_model_config *c, char *buf, size_t cap) {
  char hidden[TG_MODEL_MAX_HIDDEN * 12 + 1] = "";
  size_t k = 0;
  for (int i = 0; i < c->n_hidden; i++)
    k += (size_t)snprintf(hidden + k, sizeof hidden - k, i ? ",%lld" : "%lld",
                          (long long)c->hidden[i]);
  int n = snprintf(buf, cap,
                   "model=%s\ninput=%lld,%lld,%lld\nclasses=%lld\nhidden=%s\nactivation=%s\n"
                   "init=%s\ninit_std=%.17g\nbatchnorm=%d\ndropout=%.17g\nweight_decay=%.17g\n",
                   c->kind, (long long)c->input[0], (long long)c->input[1], (long long)c->input[2],
                   (long long)c->classes, hidden, c->activation, c->init, c->init_std, c->batchnorm,
                   c->dropout, c->weight_decay);
  /* Written only when used, so that the configurations (and checkpoints)
   * of models without it stay as they were. */
  if (n >= 0 && (size_t)n < cap && c->label_smoothing > 0)
    n += snprintf(buf + n, cap - (size_t)n, "label_smoothing=%.17g\n", c->label_smoothing);
  return n >= 0 && (size_t)n < cap ? TG_OK : TG_ERR_ARG;
}

/* Parses up to max comma-separated integers; returns how many, or -1. */
static int parse_ints(const char *s, int64_t *out, int max) {
  int n = 0;
  if (*s == '\0')
    return 0;
  for (;;) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || n == max)
      return -1;
    out[n++] = v;
    if (*end == '\0')
      return n;
    if (*end != ',')
      return -1;
    s = end + 1;
  }
}

static int parse_double(const char *s, double *out) {
  char *end;
  *out = strtod(s, &end);
  return end != s && *end == '\0';
}

tg_status tg_model_config_read(const char *text, tg_model_config *c, tg_error *err) {
  memset(c, 0, sizeof *c);
  c->init_std = 0.01;
  int seen_model = 0;
  const char *p = text;
  while (p && *p) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[512];
    if (len >= sizeof line)
      return tg_error_set(err, TG_ERR_FORMAT, "model config: line too long");
    memcpy(line, p, len);
    line[len] = '\0';
    p = eol ? eol + 1 : NULL;
    char *eq = strchr(line, '=');
    if (!eq)
      continue; /* other programs' lines (optimizer, epoch) are not ours */
    *eq = '\0';
    const char *key = line, *val = eq + 1;
    int ok = 1;
    if (strcmp(key, "model") == 0) {
      ok = strlen(val) < sizeof c->kind;
      if (ok)
        strcpy(c->kind, val);
      seen_model = 1;
    } else if (strcmp(key, "input") == 0) {
      ok = parse_ints(val, c->input, 3) == 3;
    } else if (strcmp(key, "classes") == 0) {
      int64_t v = 0;
      ok = parse_ints(val, &v, 1) == 1;
      c->classes = v;
    } else if (strcmp(key, "hidden") == 0) {
      c->n_hidden = parse_ints(val, c->hidden, TG_MODEL_MAX_HIDDEN);
      ok = c->n_hidden >= 0;
    } else if (strcmp(key, "activation") == 0) {
      ok = strlen(val) < sizeof c->activation;
      if (ok)
        strcpy(c->activation, val);
    } else if (strcmp(key, "init") == 0) {
      ok = strlen(val) < sizeof c->init;
      if (ok)
        strcpy(c->init, val);
    } else if (strcmp(key, "init_std") == 0) {
      ok = parse_double(val, &c->init_std);
    } else if (strcmp(key, "batchnorm") == 0) {
      ok = strcmp(val, "0") == 0 || strcmp(val, "1") == 0;
      c->batchnorm = val[0] == '1';
    } else if (strcmp(key, "dropout") == 0) {
      ok = parse_double(val, &c->dropout);
    } else if (strcmp(key, "weight_decay") == 0) {
      ok = parse_double(val, &c->weight_decay);
    } else if (strcmp(key, "label_smoothing") == 0) {
      ok = parse_double(val, &c->label_smoothing);
    }
    if (!ok)
      return tg_error_set(err, TG_ERR_FORMAT, "model config: bad value '%s' for %s", val, key);
  }
  if (!seen_model)
    return tg_error_set(err, TG_ERR_FORMAT, "model config: no model= line");
  return validate(c, err);
}
