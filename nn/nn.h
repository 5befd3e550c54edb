/* nn.h — the book's layers and losses, each a composition of primitive
 * ops (ops.h). Nothing here has a backward of its own: the engine derives
 * every gradient, and the book's hand-derived formulas are the tests.
 *
 * Shapes: x (N, D) for dense layers; labels are (N,) tensors holding class
 * indices as tg_real, or (N, C) one-hot rows. Errors follow ops.h: NULL
 * and a tape message naming the layer and the shapes.
 */
#ifndef TG_NN_H
#define TG_NN_H

#include "ops.h"
#include "params.h"

/* ---------------------------------------------------------------------
 * Activations (and tg_sigmoid, a fused op in ops.h) */
TG_API tg_tensor *tg_relu(tg_tape *tape, tg_tensor *x); /* where(x > 0, x, 0): gradient 0 at 0 */
TG_API tg_tensor *tg_step(tg_tape *tape, tg_tensor *x); /* x > 0 as 1/0; a constant */
TG_API tg_tensor *tg_identity(tg_tape *tape, tg_tensor *x);
/* Along axis (negative counts from the end); a detached max is subtracted
 * first, so logits like (1010, 1000, 990) are safe. */
TG_API tg_tensor *tg_softmax(tg_tape *tape, tg_tensor *x, int axis);
TG_API tg_tensor *tg_log_softmax(tg_tape *tape, tg_tensor *x, int axis);

/* ---------------------------------------------------------------------
 * Losses (scalars) */
/* The book's mean_squared_error: ½ Σ (y − t)² over every element; y and
 * t of one shape (no broadcasting). */
TG_API tg_tensor *tg_mse(tg_tape *tape, tg_tensor *y, tg_tensor *t);
/* The book's cross_entropy_error on probabilities y (N, C):
 * −Σ t·log(y + 1e-7) / N; t one-hot (N, C) or labels (N,). As in the book,
 * a single y (C,) is a batch of one, with t (C,) one-hot or one label. */
TG_API tg_tensor *tg_cross_entropy(tg_tape *tape, tg_tensor *y, tg_tensor *t);
/* Softmax-with-loss on logits (N, C), mean over the batch, computed
 * through log_softmax (no log of 0); t one-hot (N, C) or labels (N,). Its
 * gradient is the book's (softmax(x) − t)/N. */
TG_API tg_tensor *tg_softmax_cross_entropy(tg_tape *tape, tg_tensor *logits, tg_tensor *t);
/* One-hot (N, C) constant rows from labels (N,); a label outside [0, C),
 * or not an integer, is an error naming it and its row. */
TG_API tg_tensor *tg_one_hot(tg_tape *tape, tg_tensor *labels, int64_t classes);
/* Fraction of rows whose argmax equals the label (labels (N,) or one-hot
 * (N, C)); NAN after failing the tape. Nothing is recorded. */
TG_API double tg_accuracy(tg_tape *tape, tg_tensor *logits, tg_tensor *t);

/* ---------------------------------------------------------------------
 * Layers */
/* Affine: x·W + b; x (N, D) — or (N, ...) flattened to (N, D) — W (D, M),
 * b (M,) or NULL. */
TG_API tg_tensor *tg_affine(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b);

/* Inverted Dropout: in train mode (tg_tape_training) each element is kept
 * with probability 1 − ratio and scaled by 1/(1 − ratio), the mask a
 * constant drawn from the tape's generator (tg_tape_seed fixes it); in
 * eval mode the identity (x itself is returned). ratio in [0, 1). */
TG_API tg_tensor *tg_dropout(tg_tape *tape, tg_tensor *x, double ratio);
/* The same with each sample's mask a function of (key, ids[r]) alone:
 * row r of x (N, ...) draws from a generator seeded by the pair, so a
 * sample gets the same mask whatever batch or shard it is computed in.
 * ids (N,): the samples' indices in the data set. */
TG_API tg_tensor *tg_dropout_keyed(tg_tape *tape, tg_tensor *x, double ratio, uint64_t key,
                                   const int64_t *ids);

/* Batch Normalization over the batch axis of x (N, D), or per channel of
 * x (N, C, H, W) over (N, H, W) (the book's code normalises each of the
 * C·H·W positions instead). Train mode: batch mean and (biased) variance,
 * xn = (x − mu)/√(var + eps), y = gamma·xn + beta, and then, outside the
 * tape, running = momentum·running + (1 − momentum)·batch; eval mode: the
 * running statistics, as constants. The book's defaults: momentum 0.9,
 * eps 1e-6 (the book writes 10e-7). */
typedef struct tg_batchnorm {
  tg_tensor *gamma;        /* (D,) parameter, init 1 */
  tg_tensor *beta;         /* (D,) parameter, init 0 */
  tg_tensor *running_mean; /* (D,) buffer, init 0 */
  tg_tensor *running_var;  /* (D,) buffer, init 0 */
  double momentum;         /* in [0, 1] */
  double eps;              /* >= 0 */
} tg_batchnorm;

/* Creates gamma/beta in params and the running statistics in buffers,
 * named prefix + ".gamma", ".beta", ".running_mean", ".running_var", and
 * sets the defaults. Returns TG_OK, or a status with err filled (a name
 * already in a list leaves both lists unchanged). */
TG_API tg_status tg_batchnorm_init(tg_batchnorm *bn, const char *prefix, int64_t features,
                                   tg_params *params, tg_params *buffers, tg_error *err);
/* y (x's shape). Named _forward because C gives a typedef and a function
 * one namespace: the type owns tg_batchnorm. */
TG_API tg_tensor *tg_batchnorm_forward(tg_tape *tape, tg_batchnorm *bn, tg_tensor *x);

/* Weight decay: ½ λ Σ_i ‖W_i‖² over W[0..n-1] (a scalar); λ >= 0. */
TG_API tg_tensor *tg_weight_decay(tg_tape *tape, tg_tensor *const *W, int n, double lambda);

/* ---------------------------------------------------------------------
 * Convolution, pooling and LRN (nn/conv.c), compositions of conv,
 * im2col and the other ops. Spatial sizes follow im2col (ops.h): OH = (H + 2·pad −
 * FH)/stride + 1 must be exact, else an error naming the layer, x, the
 * window, stride and pad. Padding is zeros (they count in max and mean,
 * as in the book). */
/* x (N, C, H, W), W (FN, C, FH, FW), b (FN,) or NULL -> (N, FN, OH, OW) */
TG_API tg_tensor *tg_conv2d(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b, int64_t stride,
                            int64_t pad);
/* tg_relu(tg_conv2d(...)) as the fused op conv_relu: the same values and
 * gradients, without the pre-activation tensor and ReLU's pass over it. */
TG_API tg_tensor *tg_conv2d_relu(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                 int64_t stride, int64_t pad);
/* tg_max_pool2d(tg_conv2d(...), size, size, 0) as the fused op
 * conv_max_pool: the same values and gradients (the first maximum of
 * each window), without the convolution's (N, FN, OH, OW) output. The
 * windows must tile OH×OW, as max_pool2d's must. */
TG_API tg_tensor *tg_conv2d_max_pool(tg_tape *tape, tg_tensor *x, tg_tensor *W, tg_tensor *b,
                                     int64_t stride, int64_t pad, int64_t size);
/* x (N, C, H, W) -> (N, C, OH, OW), windows size×size. Max-pooling's gradient goes to the first
 * maximum of each window in row-major order (tg_max's tie rule). */
TG_API tg_tensor *tg_max_pool2d(tg_tape *tape, tg_tensor *x, int64_t size, int64_t stride,
                                int64_t pad);
TG_API tg_tensor *tg_avg_pool2d(tg_tape *tape, tg_tensor *x, int64_t size, int64_t stride,
                                int64_t pad);
/* Local Response Normalization across channels (AlexNet): y = x / (k + alpha·Σ x²)^beta, the sum
 * over the n channels centred on c (clipped at the edges); AlexNet uses n 5, alpha 1e-4, beta
 * 0.75, k 2. The window runs from c − ⌊n/2⌋ to c + ⌊(n−1)/2⌋; n >= 1, alpha >= 0, k > 0. */
TG_API tg_tensor *tg_lrn(tg_tape *tape, tg_tensor *x, int64_t n, double alpha, double beta,
                         double k);

#endif
