/* bench_layers.c — the memory-bound side of the engine: every primitive
 * op that is not a matrix product, at three sizes, and the convolution
 * and pooling layers at the book's shapes.
 *
 * (a) Ops at 1e3, 1e5 and 4e6 elements (in L1, in L2, in memory): the
 *     unary and binary ops, a bias broadcast, where, where_pos, a
 *     comparison, reductions over the last and the first axis and over
 *     2×2 pooling windows, permute, transpose, broadcast_to, slice, pad, flip;
 *     forward (with GB/s) and forward+backward through the tape. GB/s
 *     counts the bytes the forward kernel must move: every input element
 *     read once and every output element written once. A memcpy of the
 *     same size in the same run is the ceiling to compare with.
 * (b) Layers at the book's shapes: im2col and col2im, conv2d and
 *     max_pool2d forward and forward+backward (GFLOP/s for conv: 2·N·FN·
 *     C·FH·FW·OH·OW per forward, three times that for both). DeepConvNet's
 *     3×3 layers after the first run as Winograd convolutions
 *     (ops/winograd.c), which multiply 2.25 times less: their GFLOP/s are
 *     effective ones, direct convolution's count over the time.
 *
 * (c) exp, log, tanh and sigmoid at 4e6 elements: the engine's kernels
 *     (ops/vmath.h) against what they replaced in the same run, a plain
 *     loop of libm's function (the old kernels of exp, log and tanh) and
 *     tg_sigmoid_composite (the old tg_sigmoid); GB/s as in (a), and the
 *     ratio. Run it with OMP_NUM_THREADS=1 for the one-thread figure.
 *
 * Every figure is validated before it is timed, against a plain loop in
 * double (all elements for the ops, a sample for the layers). Output: a
 * table, and one JSON line per figure ("bench":"layers", with gbps or
 * gflops). Usage: bench_layers [--quick] [--json] [--layers | --math]
 * (--layers: (b) only; --math: (c) only); OMP_NUM_THREADS sets the
 * threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tapegrad.h"
#include "tapegrad_ext.h" /* tg_sigmoid_composite: the old sigmoid, timed in (c) */

static int json_only;
#define say(...) (json_only ? 0 : printf(__VA_ARGS__))

static void die(const char *what, tg_tape *tape) {
  fprintf(stderr, "bench_layers: %s%s%s\n", what, tape ? ": " : "",
          tape ? tg_tape_error(tape) : "");
  exit(EXIT_FAILURE);
}

/* An owned tensor (it outlives tape resets) of the shape, uniform in
 * [lo, hi), needing grad or not. */
static tg_tensor *filled(tg_rng *rng, const int64_t *shape, int nd, double lo, double hi,
                         int grad) {
  tg_tensor *t = tg_tensor_new(shape, nd, grad, NULL, NULL);
  if (!t)
    die("out of memory", NULL);
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)(lo + (hi - lo) * tg_rng_uniform(rng));
  return t;
}

static void free_all(tg_tensor **t, int n) {
  for (int k = 0; k < n; k++)
    tg_tensor_free(t[k]);
}

/* ------------------------------------------------------------------------
 * (a) Ops. A case builds its inputs for n elements, runs the op, and
 * checks every output element against its loop. */

enum { MAX_IN = 3 };

typedef struct op_case {
  const char *name;
  int n_in;          /* inputs, each of n elements unless shape() says otherwise */
  int positive;      /* inputs in [0.5, 2) (log, sqrt, pow) instead of [-1, 1) */
  int backward;      /* 0: nothing to differentiate (a comparison) */
  double out_per_in; /* output elements per element of input 0 */
  void (*shape)(int64_t n, int64_t shapes[MAX_IN][6], int *nd); /* NULL: all (n,) */
  tg_tensor *(*run)(tg_tape *tape, tg_tensor *const *in);
  double (*ref)(const tg_tensor *const *in, int64_t i); /* output element i */
} op_case;

#define X(k, i) ((double)in[k]->data[i])

/* Elementwise, same shapes */
static tg_tensor *r_neg(tg_tape *t, tg_tensor *const *in) { return tg_neg(t, in[0]); }
static tg_tensor *r_exp(tg_tape *t, tg_tensor *const *in) { return tg_exp(t, in[0]); }
static tg_tensor *r_log(tg_tape *t, tg_tensor *const *in) { return tg_log(t, in[0]); }
static tg_tensor *r_sqrt(tg_tape *t, tg_tensor *const *in) { return tg_sqrt(t, in[0]); }
static tg_tensor *r_tanh(tg_tape *t, tg_tensor *const *in) { return tg_tanh(t, in[0]); }
static tg_tensor *r_abs(tg_tape *t, tg_tensor *const *in) { return tg_abs(t, in[0]); }
static tg_tensor *r_sigmoid(tg_tape *t, tg_tensor *const *in) { return tg_sigmoid(t, in[0]); }
static tg_tensor *r_add(tg_tape *t, tg_tensor *const *in) { return tg_add(t, in[0], in[1]); }
static tg_tensor *r_sub(tg_tape *t, tg_tensor *const *in) { return tg_sub(t, in[0], in[1]); }
static tg_tensor *r_mul(tg_tape *t, tg_tensor *const *in) { return tg_mul(t, in[0], in[1]); }
static tg_tensor *r_div(tg_tape *t, tg_tensor *const *in) { return tg_div(t, in[0], in[1]); }
static tg_tensor *r_pow(tg_tape *t, tg_tensor *const *in) { return tg_pow(t, in[0], in[1]); }
static tg_tensor *r_max(tg_tape *t, tg_tensor *const *in) { return tg_maximum(t, in[0], in[1]); }
static tg_tensor *r_gt(tg_tape *t, tg_tensor *const *in) { return tg_gt(t, in[0], in[1]); }
static tg_tensor *r_where(tg_tape *t, tg_tensor *const *in) {
  return tg_where(t, tg_gt(t, in[0], tg_scalar(t, 0)), in[1], in[2]);
}
static tg_tensor *r_wpos(tg_tape *t, tg_tensor *const *in) { return tg_where_pos(t, in[0], in[1]); }
static tg_tensor *r_tanh_grad(tg_tape *t, tg_tensor *const *in) {
  return tg_tanh_grad(t, in[0], in[1]);
}
static tg_tensor *r_sigmoid_grad(tg_tape *t, tg_tensor *const *in) {
  return tg_sigmoid_grad(t, in[0], in[1]);
}
static double f_neg(const tg_tensor *const *in, int64_t i) { return -X(0, i); }
static double f_exp(const tg_tensor *const *in, int64_t i) { return exp(X(0, i)); }
static double f_log(const tg_tensor *const *in, int64_t i) { return log(X(0, i)); }
static double f_sigmoid(const tg_tensor *const *in, int64_t i) { return 1 / (1 + exp(-X(0, i))); }
static double f_sqrt(const tg_tensor *const *in, int64_t i) { return sqrt(X(0, i)); }
static double f_tanh(const tg_tensor *const *in, int64_t i) { return tanh(X(0, i)); }
static double f_abs(const tg_tensor *const *in, int64_t i) { return fabs(X(0, i)); }
static double f_add(const tg_tensor *const *in, int64_t i) { return X(0, i) + X(1, i); }
static double f_sub(const tg_tensor *const *in, int64_t i) { return X(0, i) - X(1, i); }
static double f_mul(const tg_tensor *const *in, int64_t i) { return X(0, i) * X(1, i); }
static double f_div(const tg_tensor *const *in, int64_t i) { return X(0, i) / X(1, i); }
static double f_pow(const tg_tensor *const *in, int64_t i) { return pow(X(0, i), X(1, i)); }
static double f_max(const tg_tensor *const *in, int64_t i) { return fmax(X(0, i), X(1, i)); }
static double f_gt(const tg_tensor *const *in, int64_t i) { return X(0, i) > X(1, i); }
static double f_where(const tg_tensor *const *in, int64_t i) {
  return X(0, i) > 0 ? X(1, i) : X(2, i);
}
static double f_wpos(const tg_tensor *const *in, int64_t i) { return X(0, i) > 0 ? X(1, i) : 0; }
static double f_tanh_grad(const tg_tensor *const *in, int64_t i) {
  return X(1, i) * (1 - X(0, i) * X(0, i));
}
static double f_sigmoid_grad(const tg_tensor *const *in, int64_t i) {
  return X(1, i) * (X(0, i) * (1 - X(0, i)));
}

/* Special functions and compositions (ops/special.c, ops/compose.c) */
static tg_tensor *r_erf(tg_tape *t, tg_tensor *const *in) { return tg_erf(t, in[0]); }
static tg_tensor *r_softplus(tg_tape *t, tg_tensor *const *in) { return tg_softplus(t, in[0]); }
static tg_tensor *r_gelu(tg_tape *t, tg_tensor *const *in) { return tg_gelu(t, in[0]); }
static tg_tensor *r_gelu_tanh(tg_tape *t, tg_tensor *const *in) { return tg_gelu_tanh(t, in[0]); }
static tg_tensor *r_min(tg_tape *t, tg_tensor *const *in) { return tg_minimum(t, in[0], in[1]); }
static double f_erf(const tg_tensor *const *in, int64_t i) { return erf(X(0, i)); }
static double f_softplus(const tg_tensor *const *in, int64_t i) { return log1p(exp(X(0, i))); }
static double f_gelu(const tg_tensor *const *in, int64_t i) {
  return 0.5 * X(0, i) * erfc(-X(0, i) / sqrt(2));
}
static double f_gelu_tanh(const tg_tensor *const *in, int64_t i) {
  const double x = X(0, i);
  return 0.5 * x * (1 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
}
static double f_min(const tg_tensor *const *in, int64_t i) { return fmin(X(0, i), X(1, i)); }

/* Rows of 100: (n/100, 100), and a bias (100,) */
#define ROW 100
static void s_rows(int64_t n, int64_t s[MAX_IN][6], int *nd) {
  s[0][0] = n / ROW, s[0][1] = ROW, s[1][0] = ROW, nd[0] = 2, nd[1] = 1;
}
static tg_tensor *r_bias(tg_tape *t, tg_tensor *const *in) { return tg_add(t, in[0], in[1]); }
static double f_bias(const tg_tensor *const *in, int64_t i) { return X(0, i) + X(1, i % ROW); }
static tg_tensor *r_sum_last(tg_tape *t, tg_tensor *const *in) {
  return tg_sum(t, in[0], (const int[]){1}, 1, 0);
}
static double f_sum_last(const tg_tensor *const *in, int64_t i) {
  double s = 0;
  for (int64_t k = 0; k < ROW; k++)
    s += X(0, i * ROW + k);
  return s;
}
static tg_tensor *r_max_last(tg_tape *t, tg_tensor *const *in) {
  return tg_max(t, in[0], (const int[]){1}, 1, 0);
}
static double f_max_last(const tg_tensor *const *in, int64_t i) {
  double m = X(0, i * ROW);
  for (int64_t k = 1; k < ROW; k++)
    m = fmax(m, X(0, i * ROW + k));
  return m;
}
static tg_tensor *r_sum_first(tg_tape *t, tg_tensor *const *in) {
  return tg_sum(t, in[0], (const int[]){0}, 1, 0);
}
static double f_sum_first(const tg_tensor *const *in, int64_t i) {
  double s = 0;
  for (int64_t r = 0; r < in[0]->shape[0]; r++)
    s += X(0, r * ROW + i);
  return s;
}
static tg_tensor *r_lse_last(tg_tape *t, tg_tensor *const *in) {
  return tg_logsumexp(t, in[0], (const int[]){-1}, 1, 0);
}
static double f_lse_last(const tg_tensor *const *in, int64_t i) {
  double s = 0;
  for (int64_t k = 0; k < ROW; k++)
    s += exp(X(0, i * ROW + k));
  return log(s);
}
static tg_tensor *r_transpose(tg_tape *t, tg_tensor *const *in) { return tg_transpose(t, in[0]); }
static double f_transpose(const tg_tensor *const *in, int64_t i) {
  const int64_t R = in[0]->shape[0]; /* y (ROW, R): y[c, r] = x[r, c] */
  return X(0, (i % R) * ROW + i / R);
}
static tg_tensor *r_slice(tg_tape *t, tg_tensor *const *in) {
  return tg_slice(t, in[0], (const int64_t[]){0, 25}, (const int64_t[]){in[0]->shape[0], 75});
}
static double f_slice(const tg_tensor *const *in, int64_t i) {
  return X(0, (i / 50) * ROW + 25 + i % 50);
}
static tg_tensor *r_pad(tg_tape *t, tg_tensor *const *in) {
  return tg_pad(t, in[0], (const int64_t[]){0, 2}, (const int64_t[]){0, 2});
}
static double f_pad(const tg_tensor *const *in, int64_t i) {
  const int64_t r = i / (ROW + 4), c = i % (ROW + 4) - 2;
  return c < 0 || c >= ROW ? 0 : X(0, r * ROW + c);
}

static tg_tensor *r_flip(tg_tape *t, tg_tensor *const *in) { return tg_flip(t, in[0], -1); }
static double f_flip(const tg_tensor *const *in, int64_t i) {
  return X(0, i / ROW * ROW + (ROW - 1 - i % ROW));
}

/* Joining and gathering (ops/index.c): rows of ROW */
static void s_rows2(int64_t n, int64_t s[MAX_IN][6], int *nd) {
  s[0][0] = s[1][0] = n / ROW, s[0][1] = s[1][1] = ROW, nd[0] = nd[1] = 2;
}
static tg_tensor *r_concat(tg_tape *t, tg_tensor *const *in) {
  return tg_concat(t, (tg_tensor *[]){in[0], in[1]}, 2, 1); /* (R, 2·ROW) */
}
static double f_concat(const tg_tensor *const *in, int64_t i) {
  const int64_t r = i / (2 * ROW), c = i % (2 * ROW);
  return c < ROW ? X(0, r * ROW + c) : X(1, r * ROW + c - ROW);
}
static tg_tensor *r_stack(tg_tape *t, tg_tensor *const *in) {
  return tg_stack(t, (tg_tensor *[]){in[0], in[1]}, 2, 0); /* (2, n) */
}
static double f_stack(const tg_tensor *const *in, int64_t i) {
  return i < in[0]->numel ? X(0, i) : X(1, i - in[0]->numel);
}
/* Every row gathered in reverse order (an embedding lookup of R ids). */
static tg_tensor *reversed_rows(tg_tape *t, const tg_tensor *x) {
  return tg_arange(t, (double)x->shape[0] - 1, -1, -1);
}
static tg_tensor *r_index_select(tg_tape *t, tg_tensor *const *in) {
  return tg_index_select(t, in[0], 0, reversed_rows(t, in[0]));
}
static tg_tensor *r_index_add(tg_tape *t, tg_tensor *const *in) {
  return tg_index_add(t, in[0], 0, reversed_rows(t, in[0]), in[0]->shape[0]);
}
static double f_reversed_rows(const tg_tensor *const *in, int64_t i) {
  const int64_t R = in[0]->shape[0];
  return X(0, (R - 1 - i / ROW) * ROW + i % ROW);
}
static tg_tensor *r_clamp(tg_tape *t, tg_tensor *const *in) {
  return tg_clamp(t, in[0], -0.5, 0.5);
}
static double f_clamp(const tg_tensor *const *in, int64_t i) {
  return fmin(fmax(X(0, i), -0.5), 0.5);
}
static tg_tensor *r_leaky(tg_tape *t, tg_tensor *const *in) {
  return tg_leaky_relu(t, in[0], 0.01f);
}
static double f_leaky(const tg_tensor *const *in, int64_t i) {
  return X(0, i) > 0 ? X(0, i) : (double)0.01f * X(0, i);
}
static tg_tensor *r_elu(tg_tape *t, tg_tensor *const *in) { return tg_elu(t, in[0], 1); }
static double f_elu(const tg_tensor *const *in, int64_t i) {
  return X(0, i) > 0 ? X(0, i) : expm1(X(0, i));
}

/* broadcast_to: (1, 100) -> (n/100, 100); its input is a row */
static void s_row(int64_t n, int64_t s[MAX_IN][6], int *nd) {
  (void)n;
  s[0][0] = 1, s[0][1] = ROW, nd[0] = 2;
}
static int64_t bcast_rows;
static tg_tensor *r_bcast(tg_tape *t, tg_tensor *const *in) {
  return tg_broadcast_to(t, in[0], (const int64_t[]){bcast_rows, ROW}, 2);
}
static double f_bcast(const tg_tensor *const *in, int64_t i) { return X(0, i % ROW); }

/* permute (B, 10, 10, 10) -> (B, 10(c), 10(h), 10(w)) as (N, H, W, C) ->
 * (N, C, H, W), the composite convolution's layout change */
static void s_nhwc(int64_t n, int64_t s[MAX_IN][6], int *nd) {
  s[0][0] = n / 1000, s[0][1] = s[0][2] = s[0][3] = 10, nd[0] = 4;
}
static tg_tensor *r_permute(tg_tape *t, tg_tensor *const *in) {
  return tg_permute(t, in[0], (const int[]){0, 3, 1, 2});
}
static double f_permute(const tg_tensor *const *in, int64_t i) {
  const int64_t b = i / 1000, c = i / 100 % 10, h = i / 10 % 10, w = i % 10;
  return X(0, ((b * 10 + h) * 10 + w) * 10 + c);
}

/* 2×2 pooling windows: x (B, 1, 12, 2, 12, 2) (B images of 24×24) */
static void s_pool(int64_t n, int64_t s[MAX_IN][6], int *nd) {
  const int64_t v[6] = {n / 576 > 0 ? n / 576 : 1, 1, 12, 2, 12, 2};
  memcpy(s[0], v, sizeof v);
  nd[0] = 6;
}
static tg_tensor *r_pool(tg_tape *t, tg_tensor *const *in) {
  return tg_max(t, in[0], (const int[]){3, 5}, 2, 0);
}
static double f_pool(const tg_tensor *const *in, int64_t i) {
  const int64_t b = i / 144, oh = i / 12 % 12, ow = i % 12;
  double m = -INFINITY;
  for (int r = 0; r < 2; r++)
    for (int l = 0; l < 2; l++)
      m = fmax(m, X(0, b * 576 + (oh * 2 + r) * 24 + ow * 2 + l));
  return m;
}

static const op_case ops[] = {
    {"neg", 1, 0, 1, 1, NULL, r_neg, f_neg},
    {"exp", 1, 0, 1, 1, NULL, r_exp, f_exp},
    {"log", 1, 1, 1, 1, NULL, r_log, f_log},
    {"sqrt", 1, 1, 1, 1, NULL, r_sqrt, f_sqrt},
    {"tanh", 1, 0, 1, 1, NULL, r_tanh, f_tanh},
    {"sigmoid", 1, 0, 1, 1, NULL, r_sigmoid, f_sigmoid},
    {"abs", 1, 0, 1, 1, NULL, r_abs, f_abs},
    {"add", 2, 0, 1, 1, NULL, r_add, f_add},
    {"sub", 2, 0, 1, 1, NULL, r_sub, f_sub},
    {"mul", 2, 0, 1, 1, NULL, r_mul, f_mul},
    {"div", 2, 1, 1, 1, NULL, r_div, f_div},
    {"pow", 2, 1, 1, 1, NULL, r_pow, f_pow},
    {"maximum", 2, 0, 1, 1, NULL, r_max, f_max},
    {"minimum", 2, 0, 1, 1, NULL, r_min, f_min},
    {"erf", 1, 0, 1, 1, NULL, r_erf, f_erf},
    {"softplus", 1, 0, 1, 1, NULL, r_softplus, f_softplus},
    {"gelu", 1, 0, 1, 1, NULL, r_gelu, f_gelu},
    {"gelu_tanh", 1, 0, 1, 1, NULL, r_gelu_tanh, f_gelu_tanh},
    {"gt", 2, 0, 0, 1, NULL, r_gt, f_gt},
    {"where", 3, 0, 1, 1, NULL, r_where, f_where},
    {"where_pos", 2, 0, 1, 1, NULL, r_wpos, f_wpos},
    {"tanh_grad", 2, 0, 1, 1, NULL, r_tanh_grad, f_tanh_grad},
    {"sigmoid_grad", 2, 0, 1, 1, NULL, r_sigmoid_grad, f_sigmoid_grad},
    {"add_bias", 2, 0, 1, 1, s_rows, r_bias, f_bias},
    {"sum_last", 1, 0, 1, 1.0 / ROW, s_rows, r_sum_last, f_sum_last},
    {"max_last", 1, 0, 1, 1.0 / ROW, s_rows, r_max_last, f_max_last},
    {"sum_first", 1, 0, 1, -ROW, s_rows, r_sum_first, f_sum_first},
    {"logsumexp_last", 1, 0, 1, 1.0 / ROW, s_rows, r_lse_last, f_lse_last},
    {"max_pool_2x2", 1, 0, 1, 0.25, s_pool, r_pool, f_pool},
    {"permute", 1, 0, 1, 1, s_nhwc, r_permute, f_permute},
    {"transpose", 1, 0, 1, 1, s_rows, r_transpose, f_transpose},
    {"broadcast_to", 1, 0, 1, -1, s_row, r_bcast, f_bcast},
    {"slice", 1, 0, 1, 0.5, s_rows, r_slice, f_slice},
    {"pad", 1, 0, 1, 1.04, s_rows, r_pad, f_pad},
    {"flip", 1, 0, 1, 1, s_rows, r_flip, f_flip},
    {"concat", 2, 0, 1, 2, s_rows2, r_concat, f_concat},
    {"stack", 2, 0, 1, 2, NULL, r_stack, f_stack},
    {"index_select", 1, 0, 1, 1, s_rows, r_index_select, f_reversed_rows},
    {"index_add", 1, 0, 1, 1, s_rows, r_index_add, f_reversed_rows},
    {"clamp", 1, 0, 1, 1, NULL, r_clamp, f_clamp},
    {"leaky_relu", 1, 0, 1, 1, NULL, r_leaky, f_leaky},
    {"elu", 1, 0, 1, 1, NULL, r_elu, f_elu},
};

/* The op's inputs for n elements. */
static void make_inputs(const op_case *c, int64_t n, int grad, tg_tensor **in) {
  tg_rng rng;
  tg_rng_seed(&rng, 3);
  int64_t shapes[MAX_IN][6];
  int nd[MAX_IN];
  for (int k = 0; k < MAX_IN; k++)
    shapes[k][0] = n, nd[k] = 1;
  if (c->shape)
    c->shape(n, shapes, nd);
  bcast_rows = n / ROW;
  for (int k = 0; k < c->n_in; k++)
    in[k] = filled(&rng, shapes[k], nd[k], c->positive ? 0.5 : -1, c->positive ? 2 : 1,
                   grad && c->run != r_gt); /* a comparison's inputs cannot */
}

/* Bytes the forward must move: inputs read, output written. */
static double op_bytes(tg_tensor *const *in, int n_in, const tg_tensor *y) {
  double b = (double)y->numel;
  for (int k = 0; k < n_in; k++)
    b += (double)in[k]->numel;
  return b * sizeof(tg_real);
}

static void validate_op(const op_case *c, int64_t n) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *in[MAX_IN];
  make_inputs(c, n, 0, in);
  tg_tensor *y = c->run(tape, in);
  if (!y)
    die(c->name, tape);
  const double tol = sizeof(tg_real) == 8 ? 1e-12 : 3e-6;
  for (int64_t i = 0; i < y->numel; i++) {
    double want = c->ref((const tg_tensor *const *)in, i), got = y->data[i];
    if (!(fabs(got - want) <= tol * fmax(1, fabs(want)) * (c->ref == f_sum_first ? 1e3 : 1))) {
      fprintf(stderr, "bench_layers: %s of %lld: element %lld is %.9g, want %.9g\n", c->name,
              (long long)n, (long long)i, got, want);
      exit(EXIT_FAILURE);
    }
  }
  tg_tape_free(tape);
  free_all(in, c->n_in);
}

static void row(const char *name, int64_t n, int threads, series *s, double gbps, double gflops) {
  double med = median(s);
  say("  %-40s %9lld %3d %10.1f %10.1f %10.1f", name, (long long)n, threads, 1e6 * med,
      1e6 * s->v[0], 1e6 * s->v[s->n - 1]);
  if (gbps >= 0)
    say(" %8.2f GB/s", gbps);
  if (gflops >= 0)
    say(" %8.2f GF/s", gflops);
  say("\n");
  if (json_only)
    json_line("layers", name, s, threads, gflops, gbps, -1);
}

/* Forward alone (no grad) and forward + backward (dy of ones). */
static void bench_op(const op_case *c, int64_t n, const budget *b, int threads) {
  validate_op(c, n);
  char name[96];
  for (int both = 0; both < 1 + c->backward; both++) {
    tg_tape *tape = tg_tape_new();
    tg_tensor *in[MAX_IN];
    make_inputs(c, n, both, in);
    tg_tensor *y = c->run(tape, in);
    if (!y)
      die(c->name, tape);
    const double bytes = op_bytes(in, c->n_in, y);
    tg_tensor *dy = tg_tensor_new(y->shape, y->ndim, 0, NULL, NULL); /* ones, y's shape */
    for (int64_t i = 0; dy && i < dy->numel; i++)
      dy->data[i] = 1;
    series s = {.n = 0};
    for (int w = 0; w < b->warmup; w++) {
      tg_tape_reset(tape);
      if (!(y = c->run(tape, in)) || (both && tg_backward(tape, y, dy) != TG_OK))
        die(c->name, tape);
    }
    const double start = now_s();
    while (more(&s, b, start)) {
      tg_tape_reset(tape);
      const double t0 = now_s();
      y = c->run(tape, in);
      if (!y || (both && tg_backward(tape, y, dy) != TG_OK))
        die(c->name, tape);
      s.v[s.n++] = now_s() - t0;
    }
    snprintf(name, sizeof name, "%s/%s", c->name, both ? "fwd+bwd" : "fwd");
    row(name, n, threads, &s, both ? -1 : bytes / median(&s) / 1e9, -1);
    tg_tape_free(tape);
    tg_tensor_free(dy);
    free_all(in, c->n_in);
  }
}

static void bench_memcpy(int64_t n, const budget *b, int threads) {
  tg_real *src = malloc((size_t)n * sizeof *src), *dst = malloc((size_t)n * sizeof *dst);
  if (!src || !dst)
    die("out of memory", NULL);
  for (int64_t i = 0; i < n; i++)
    src[i] = (tg_real)i;
  for (int w = 0; w < b->warmup; w++)
    memcpy(dst, src, (size_t)n * sizeof *src);
  if (memcmp(dst, src, (size_t)n * sizeof *src) != 0)
    die("memcpy", NULL);
  series s = {.n = 0};
  const double start = now_s();
  while (more(&s, b, start)) {
    const double t0 = now_s();
    memcpy(dst, src, (size_t)n * sizeof *src);
    s.v[s.n++] = now_s() - t0;
  }
  row("memcpy", n, threads, &s, 2.0 * (double)n * sizeof *src / median(&s) / 1e9, -1);
  free(src), free(dst);
}

/* ------------------------------------------------------------------------
 * (c) The transcendental kernels against what they replaced. */

#ifdef TG_DOUBLE
#define LIBM(name) name
#else
#define LIBM(name) name##f
#endif

/* The old kernels of exp, log and tanh: libm's function in a loop. */
#define LIBM_LOOP(name)                                                                            \
  static tg_tensor *old_##name(tg_tape *t, tg_tensor *const *in) {                                 \
    tg_tensor *y = tg_empty(t, in[0]->shape, in[0]->ndim);                                         \
    for (int64_t i = 0; y && i < y->numel; i++)                                                    \
      y->data[i] = LIBM(name)(in[0]->data[i]);                                                     \
    return y;                                                                                      \
  }
LIBM_LOOP(exp)
LIBM_LOOP(log)
LIBM_LOOP(tanh)
static tg_tensor *old_sigmoid(tg_tape *t, tg_tensor *const *in) {
  return tg_sigmoid_composite(t, in[0]);
}

typedef struct math_case {
  const char *name;
  int positive;                                        /* as op_case's */
  tg_tensor *(*before)(tg_tape *, tg_tensor *const *); /* the old path */
  const op_case *after;                                /* the op, in ops[] */
} math_case;

static const op_case *op_named(const char *name) {
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    if (strcmp(ops[o].name, name) == 0)
      return &ops[o];
  die(name, NULL);
  return NULL;
}

/* The median seconds of run (forward only) on in, after checking its
 * output against c's loop. */
static double time_forward(const op_case *c, tg_tensor *(*run)(tg_tape *, tg_tensor *const *),
                           tg_tensor *const *in, const budget *b, series *s) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *y = run(tape, in);
  if (!y)
    die(c->name, tape);
  const double tol = sizeof(tg_real) == 8 ? 1e-12 : 3e-6;
  for (int64_t i = 0; i < y->numel; i++) {
    double want = c->ref((const tg_tensor *const *)in, i), got = y->data[i];
    if (!(fabs(got - want) <= tol * fmax(1, fabs(want)))) {
      fprintf(stderr, "bench_layers: %s: element %lld is %.9g, want %.9g\n", c->name, (long long)i,
              got, want);
      exit(EXIT_FAILURE);
    }
  }
  for (int w = 0; w < b->warmup; w++) {
    tg_tape_reset(tape);
    if (!run(tape, in))
      die(c->name, tape);
  }
  s->n = 0;
  const double start = now_s();
  while (more(s, b, start)) {
    tg_tape_reset(tape);
    const double t0 = now_s();
    if (!run(tape, in))
      die(c->name, tape);
    s->v[s->n++] = now_s() - t0;
  }
  tg_tape_free(tape);
  return median(s);
}

static void bench_math(int64_t n, const budget *b, int threads) {
  const math_case cases[] = {{"exp", 0, old_exp, op_named("exp")},
                             {"log", 1, old_log, op_named("log")},
                             {"tanh", 0, old_tanh, op_named("tanh")},
                             {"sigmoid", 0, old_sigmoid, op_named("sigmoid")}};
  say("exp, log, tanh, sigmoid on %lld elements: before (libm loop; sigmoid: its composite) "
      "and after (ops/vmath.h)\n",
      (long long)n);
  static series s[2]; /* large: off the stack */
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const math_case *m = &cases[k];
    tg_tensor *in[MAX_IN];
    make_inputs(m->after, n, 0, in);
    const double bytes = 2.0 * (double)n * sizeof(tg_real); /* read x, write y */
    double gbps[2];
    for (int after = 0; after < 2; after++) {
      const double med =
          time_forward(m->after, after ? m->after->run : m->before, in, b, &s[after]);
      gbps[after] = bytes / med / 1e9;
      char name[96];
      snprintf(name, sizeof name, "%s/%s", m->name, after ? "after" : "before");
      row(name, n, threads, &s[after], gbps[after], -1);
    }
    say("  %-40s %.2fx\n", "after/before", gbps[1] / gbps[0]);
    free_all(in, m->after->n_in);
  }
}

/* ------------------------------------------------------------------------
 * (b) Layers at the book's shapes. */

typedef struct layer_case {
  const char *name;
  int64_t n, c, h, w;    /* x */
  int64_t fn, f, s, pad; /* conv: FN filters f×f; pool: window f, stride s */
} layer_case;

static const layer_case convs[] = {
    {"simple-convnet conv1", 100, 1, 28, 28, 30, 5, 1, 0},
    {"deep-convnet conv1", 100, 1, 28, 28, 16, 3, 1, 1},
    {"deep-convnet conv2", 100, 16, 28, 28, 16, 3, 1, 1},
    {"deep-convnet conv3", 100, 16, 14, 14, 32, 3, 1, 1},
    {"deep-convnet conv4", 100, 32, 14, 14, 32, 3, 1, 2},
    {"deep-convnet conv5", 100, 32, 8, 8, 64, 3, 1, 1},
    {"deep-convnet conv6", 100, 64, 8, 8, 64, 3, 1, 1},
};
static const layer_case pools[] = {
    {"simple-convnet pool", 100, 30, 24, 24, 0, 2, 2, 0},
    {"deep-convnet pool1", 100, 16, 28, 28, 0, 2, 2, 0},
    {"deep-convnet pool3", 100, 64, 8, 8, 0, 2, 2, 0},
};

enum { L_IM2COL, L_COL2IM, L_CONV, L_POOL };

typedef struct layer_run {
  int kind;
  const layer_case *l;
  tg_tensor *x, *W, *b, *col; /* owned inputs */
} layer_run;

static int64_t out_size(int64_t size, int64_t f, int64_t s, int64_t pad) {
  return (size + 2 * pad - f) / s + 1;
}

static tg_tensor *layer_fwd(tg_tape *tape, const layer_run *r) {
  const layer_case *l = r->l;
  switch (r->kind) {
  case L_IM2COL:
    return tg_im2col(tape, r->x, l->f, l->f, l->s, l->pad);
  case L_COL2IM:
    return tg_col2im(tape, r->col, r->x->shape, l->f, l->f, l->s, l->pad);
  case L_CONV:
    return tg_conv2d(tape, r->x, r->W, r->b, l->s, l->pad);
  default:
    return tg_max_pool2d(tape, r->x, l->f, l->s, l->pad);
  }
}

/* x[n, c, i, j], 0 in the padding. */
static double px(const tg_tensor *x, int64_t n, int64_t c, int64_t i, int64_t j) {
  const int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];
  return i < 0 || i >= H || j < 0 || j >= W ? 0 : x->data[((n * C + c) * H + i) * W + j];
}

/* A sample of outputs against their definitions. */
static void validate_layer(tg_tape *tape, const layer_run *r, const tg_tensor *y) {
  const layer_case *l = r->l;
  const int64_t OH = out_size(l->h, l->f, l->s, l->pad), OW = out_size(l->w, l->f, l->s, l->pad);
  const int64_t K = l->c * l->f * l->f;
  for (int k = 0; k < 64; k++) {
    const int64_t i = (int64_t)((double)y->numel * tg_rng_uniform(tg_tape_rng(tape)));
    double want = 0;
    if (r->kind == L_IM2COL) { /* col[(n, oh, ow), (c, kh, kw)] */
      const int64_t row = i / K, col = i % K, n = row / (OH * OW), oh = row / OW % OH,
                    ow = row % OW, c = col / (l->f * l->f), kh = col / l->f % l->f, kw = col % l->f;
      want = px(r->x, n, c, oh * l->s - l->pad + kh, ow * l->s - l->pad + kw);
    } else if (r->kind == L_COL2IM) { /* x[n, c, i, j]: Σ of the col entries that read it */
      const int64_t n = i / (l->c * l->h * l->w), c = i / (l->h * l->w) % l->c,
                    ih = i / l->w % l->h, iw = i % l->w;
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          const int64_t kh = ih - (oh * l->s - l->pad), kw = iw - (ow * l->s - l->pad);
          if (kh >= 0 && kh < l->f && kw >= 0 && kw < l->f)
            want += r->col->data[((n * OH + oh) * OW + ow) * K + (c * l->f + kh) * l->f + kw];
        }
    } else if (r->kind == L_CONV) { /* y[n, f, oh, ow] = b[f] + Σ W·x */
      const int64_t n = i / (l->fn * OH * OW), f = i / (OH * OW) % l->fn, oh = i / OW % OH,
                    ow = i % OW;
      want = r->b->data[f];
      for (int64_t c = 0; c < l->c; c++)
        for (int64_t kh = 0; kh < l->f; kh++)
          for (int64_t kw = 0; kw < l->f; kw++)
            want += r->W->data[((f * l->c + c) * l->f + kh) * l->f + kw] *
                    px(r->x, n, c, oh * l->s - l->pad + kh, ow * l->s - l->pad + kw);
    } else { /* the window's max */
      const int64_t n = i / (l->c * OH * OW), c = i / (OH * OW) % l->c, oh = i / OW % OH,
                    ow = i % OW;
      want = -INFINITY;
      for (int64_t kh = 0; kh < l->f; kh++)
        for (int64_t kw = 0; kw < l->f; kw++)
          want = fmax(want, px(r->x, n, c, oh * l->s - l->pad + kh, ow * l->s - l->pad + kw));
    }
    const double tol = sizeof(tg_real) == 8 ? 1e-10 : 1e-4;
    if (!(fabs(y->data[i] - want) <= tol * fmax(1, fabs(want)))) {
      fprintf(stderr, "bench_layers: %s: element %lld is %.9g, want %.9g\n", l->name, (long long)i,
              (double)y->data[i], want);
      exit(EXIT_FAILURE);
    }
  }
}

static void bench_layer(int kind, const layer_case *l, const budget *b, int threads) {
  static const char *const kinds[] = {"im2col", "col2im", "conv2d", "max_pool2d"};
  tg_rng rng;
  tg_rng_seed(&rng, 5);
  const int64_t OH = out_size(l->h, l->f, l->s, l->pad), OW = out_size(l->w, l->f, l->s, l->pad);
  const int64_t K = l->c * l->f * l->f;
  const int grads = kind == L_CONV || kind == L_POOL;
  for (int both = 0; both < 1 + grads; both++) {
    layer_run r = {kind, l,    filled(&rng, (int64_t[]){l->n, l->c, l->h, l->w}, 4, -1, 1, both),
                   NULL, NULL, NULL};
    if (kind == L_CONV) {
      r.W = filled(&rng, (int64_t[]){l->fn, l->c, l->f, l->f}, 4, -0.3, 0.3, both);
      r.b = filled(&rng, (int64_t[]){l->fn}, 1, -1, 1, both);
    }
    if (kind == L_COL2IM)
      r.col = filled(&rng, (int64_t[]){l->n * OH * OW, K}, 2, -1, 1, 0);
    tg_tape *tape = tg_tape_new();
    tg_tape_seed(tape, 6);
    tg_tensor *y = layer_fwd(tape, &r);
    if (!y)
      die(l->name, tape);
    validate_layer(tape, &r, y);
    tg_tensor *dy = tg_tensor_new(y->shape, y->ndim, 0, NULL, NULL);
    for (int64_t i = 0; dy && i < dy->numel; i++)
      dy->data[i] = 1;
    series s = {.n = 0};
    for (int w = 0; w < b->warmup; w++) {
      tg_tape_reset(tape);
      if (!(y = layer_fwd(tape, &r)) || (both && tg_backward(tape, y, dy) != TG_OK))
        die(l->name, tape);
    }
    const double start = now_s();
    while (more(&s, b, start)) {
      tg_tape_reset(tape);
      const double t0 = now_s();
      y = layer_fwd(tape, &r);
      if (!y || (both && tg_backward(tape, y, dy) != TG_OK))
        die(l->name, tape);
      s.v[s.n++] = now_s() - t0;
    }
    char name[128];
    snprintf(name, sizeof name, "%s %s/%s", l->name, kinds[kind], both ? "fwd+bwd" : "fwd");
    const double flops = 2.0 * (double)(l->n * l->fn * K * OH * OW) * (both ? 3 : 1);
    const tg_tensor *in = kind == L_COL2IM ? r.col : r.x;
    const double bytes = ((double)in->numel + (double)y->numel) * sizeof(tg_real);
    if (kind == L_CONV)
      row(name, r.x->numel, threads, &s, -1, flops / median(&s) / 1e9);
    else
      row(name, r.x->numel, threads, &s, both ? -1 : bytes / median(&s) / 1e9, -1);
    tg_tape_free(tape);
    tg_tensor *own[5] = {r.x, r.W, r.b, r.col, dy};
    free_all(own, 5);
  }
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  budget b = {.seconds = 0.2, .warmup = 2, .min_reps = 5};
  int layers_only = 0, math_only = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      b = (budget){.seconds = 0.01, .warmup = 1, .min_reps = 3};
    } else if (strcmp(argv[i], "--json") == 0) {
      json_only = 1;
    } else if (strcmp(argv[i], "--layers") == 0) {
      layers_only = 1;
    } else if (strcmp(argv[i], "--math") == 0) {
      math_only = 1;
    } else {
      fprintf(stderr, "usage: %s [--quick] [--json] [--layers | --math]\n", argv[0]);
      return EXIT_FAILURE;
    }
  }
  const int threads = tg_threads();
  say("bench_layers: tg_real = %s, %d OpenMP threads, %s budget per figure\n", TG_REAL_NAME,
      threads, b.seconds < 0.2 ? "quick" : "full");
  say("  %-40s %9s %3s %10s %10s %10s\n", "figure", "elements", "thr", "median us", "min us",
      "max us");
  const int64_t sizes[3] = {1000, 100000, 4000000}; /* L1, L2, memory */
  if (!layers_only)
    bench_math(sizes[2], &b, threads);
  if (math_only)
    return EXIT_SUCCESS;
  for (int k = 0; k < 3 && !layers_only; k++) {
    say("ops on %lld elements (input 0)\n", (long long)sizes[k]);
    bench_memcpy(sizes[k], &b, threads);
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
      bench_op(&ops[o], sizes[k], &b, threads);
  }
  say("layers at the book's shapes (elements: x)\n");
  for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
    bench_layer(L_IM2COL, &convs[i], &b, threads);
    bench_layer(L_COL2IM, &convs[i], &b, threads);
    bench_layer(L_CONV, &convs[i], &b, threads);
  }
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
    bench_layer(L_POOL, &pools[i], &b, threads);
  return EXIT_SUCCESS;
}
