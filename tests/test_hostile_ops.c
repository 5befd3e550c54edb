/* test_hostile_ops.c — a catalogue of hostile inputs to every public op
 * (ops.h) and layer (nn.h): NULL at each input, bad shapes, axes, ranges
 * and arguments. Hostile states of the engine (tensors that cannot
 * exist, NaN and Inf, tensors of another step or tape) are in
 * test_hostile_state.c.
 *
 * Each scenario is one Check test (loop tests over tables), so a failure
 * names the scenario. The contract under test (DESIGN.md §7): an op given
 * bad input returns NULL and leaves the tape failed with a message naming
 * the op and, where they matter, the shapes or the argument; it never
 * crashes, hangs or writes out of bounds (the ASan build runs this too),
 * and a failed tape makes every later op return NULL with the first
 * message kept.
 *
 * Empty tensors: a dimension of 0 is refused by tg_shape_check ("empty
 * tensors are not supported"), so every way of making one — tg_empty,
 * tg_tensor_new, reshape, broadcast_to, slice with start == stop — is a
 * clear error rather than an empty result.
 */
#include "testutil.h"

#include <stdint.h>

#include "checkpoint.h"

#include "hostile_test_helpers.h"

/* ========================================================================
 * 1. NULL inputs: every op and layer, NULL at each tensor position, and a
 *    NULL tape. Builders make valid inputs on B and call on T; position k
 *    is replaced by NULL (k < 0: none).
 * ======================================================================== */

typedef tg_tensor *(*null_fn)(tg_tape *B, tg_tape *T, int k);
typedef struct null_case {
  const char *name; /* the op or layer, which the message must name */
  int n;            /* tensor inputs */
  null_fn fn;
} null_case;

#define NC(nm, nin, build, call)                                                                   \
  static tg_tensor *nc_##nm(tg_tape *B, tg_tape *T, int k) {                                       \
    tg_tensor *in[3] = {0};                                                                        \
    tg_tape *T_ = T;                                                                               \
    T = B;                                                                                         \
    build;                                                                                         \
    T = T_;                                                                                        \
    if (k >= 0)                                                                                    \
      in[k] = NULL;                                                                                \
    return call;                                                                                   \
  }

#define U1 in[0] = L2(2, 3)
#define B2 (in[0] = L2(2, 3), in[1] = L2(2, 3))
NC(neg, 1, U1, tg_neg(T, in[0]))
NC(exp, 1, U1, tg_exp(T, in[0]))
NC(log, 1, U1, tg_log(T, in[0]))
NC(sqrt, 1, U1, tg_sqrt(T, in[0]))
NC(tanh, 1, U1, tg_tanh(T, in[0]))
NC(abs, 1, U1, tg_abs(T, in[0]))
NC(add, 2, B2, tg_add(T, in[0], in[1]))
NC(sub, 2, B2, tg_sub(T, in[0], in[1]))
NC(mul, 2, B2, tg_mul(T, in[0], in[1]))
NC(div, 2, B2, tg_div(T, in[0], in[1]))
NC(pow, 2, B2, tg_pow(T, in[0], in[1]))
NC(maximum, 2, B2, tg_maximum(T, in[0], in[1]))
NC(gt, 2, B2, tg_gt(T, in[0], in[1]))
NC(ge, 2, B2, tg_ge(T, in[0], in[1]))
NC(lt, 2, B2, tg_lt(T, in[0], in[1]))
NC(le, 2, B2, tg_le(T, in[0], in[1]))
NC(eq, 2, B2, tg_eq(T, in[0], in[1]))
NC(where, 3, (in[0] = tg_zeros(T, (int64_t[]){2, 3}, 2), in[1] = L2(2, 3), in[2] = L2(2, 3)),
   tg_where(T, in[0], in[1], in[2]))
NC(add_scalar, 1, U1, tg_add_scalar(T, in[0], 2))
NC(mul_scalar, 1, U1, tg_mul_scalar(T, in[0], 2))
NC(pow_scalar, 1, U1, tg_pow_scalar(T, in[0], 2))
NC(sum, 1, U1, tg_sum(T, in[0], NULL, 0, 0))
NC(mean, 1, U1, tg_mean(T, in[0], (int[]){1}, 1, 1))
NC(max, 1, U1, tg_max(T, in[0], (int[]){0}, 1, 0))
NC(max_mask, 1, U1, tg_max_mask(T, in[0], (int[]){1}, 1))
NC(argmax, 1, U1, tg_argmax(T, in[0], 1))
NC(max_scatter, 2, (in[0] = L2(2, 3), in[1] = L1(2)),
   tg_max_scatter(T, in[0], in[1], (int[]){1}, 1))
NC(sum_to, 1, U1, tg_sum_to(T, in[0], (int64_t[]){3}, 1))
NC(reshape, 1, U1, tg_reshape(T, in[0], (int64_t[]){3, 2}, 2))
NC(permute, 1, U1, tg_permute(T, in[0], (int[]){1, 0}))
NC(transpose, 1, U1, tg_transpose(T, in[0]))
NC(broadcast_to, 1, U1, tg_broadcast_to(T, in[0], (int64_t[]){4, 2, 3}, 3))
NC(slice, 1, U1, tg_slice(T, in[0], (int64_t[]){0, 1}, (int64_t[]){1, 3}))
NC(pad, 1, U1, tg_pad(T, in[0], (int64_t[]){1, 0}, (int64_t[]){0, 2}))
NC(flip, 1, U1, tg_flip(T, in[0], -1))
NC(detach, 1, U1, tg_detach(T, in[0]))
NC(matmul, 2, (in[0] = L2(2, 3), in[1] = L2(3, 4)), tg_matmul(T, in[0], in[1]))
NC(matmul_t, 2, (in[0] = L2(3, 2), in[1] = L2(4, 3)), tg_matmul_t(T, in[0], in[1], 1, 1))
NC(matmul_batched, 2, (in[0] = L3(2, 2, 3), in[1] = L1(3)), tg_matmul(T, in[0], in[1]))
NC(bmm, 2, (in[0] = L3(2, 2, 3), in[1] = L3(2, 3, 4)), tg_bmm(T, in[0], in[1]))
NC(im2col, 1, in[0] = L4(1, 2, 4, 4), tg_im2col(T, in[0], 3, 3, 1, 1))
NC(col2im, 1, in[0] = L2(16, 18), tg_col2im(T, in[0], (int64_t[]){1, 2, 4, 4}, 3, 3, 1, 1))
NC(where_pos, 2, B2, tg_where_pos(T, in[0], in[1]))
NC(tanh_grad, 2, B2, tg_tanh_grad(T, in[0], in[1]))
NC(sigmoid_grad, 2, B2, tg_sigmoid_grad(T, in[0], in[1]))
NC(conv, 3, (in[0] = L4(1, 2, 4, 4), in[1] = L4(3, 2, 3, 3), in[2] = L1(3)),
   tg_conv(T, in[0], in[1], in[2], 1, 1))
NC(conv_relu, 3, (in[0] = L4(1, 2, 4, 4), in[1] = L4(3, 2, 3, 3), in[2] = L1(3)),
   tg_conv_relu(T, in[0], in[1], in[2], 1, 1))
NC(conv_max_pool, 3, (in[0] = L4(1, 2, 4, 4), in[1] = L4(3, 2, 3, 3), in[2] = L1(3)),
   tg_conv_max_pool(T, in[0], in[1], in[2], 1, 1, 2))
NC(conv_grad_x, 2, (in[0] = L4(1, 3, 4, 4), in[1] = L4(3, 2, 3, 3)),
   tg_conv_grad_x(T, in[0], in[1], (int64_t[]){1, 2, 4, 4}, 1, 1))
NC(conv_grad_w, 2, (in[0] = L4(1, 2, 4, 4), in[1] = L4(1, 3, 4, 4)),
   tg_conv_grad_w(T, in[0], in[1], 3, 3, 1, 1))
NC(relu, 1, U1, tg_relu(T, in[0]))
NC(sigmoid, 1, U1, tg_sigmoid(T, in[0]))
NC(step, 1, U1, tg_step(T, in[0]))
NC(identity, 1, U1, tg_identity(T, in[0]))
NC(softmax, 1, U1, tg_softmax(T, in[0], -1))
NC(log_softmax, 1, U1, tg_log_softmax(T, in[0], 1))
NC(mse, 2, B2, tg_mse(T, in[0], in[1]))
NC(cross_entropy, 2,
   (in[0] = L2(2, 3), in[1] = tg_from_values(T, (int64_t[]){2}, 1, (double[]){0, 2})),
   tg_cross_entropy(T, in[0], in[1]))
NC(softmax_cross_entropy, 2,
   (in[0] = L2(2, 3), in[1] = tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, 2})),
   tg_softmax_cross_entropy(T, in[0], in[1]))
NC(one_hot, 1, in[0] = tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, 0}),
   tg_one_hot(T, in[0], 3))
NC(affine, 3, (in[0] = L2(2, 3), in[1] = L2(3, 4), in[2] = L1(4)),
   /* b NULL is legal (no bias): position 2 must then succeed */
   tg_affine(T, in[0], in[1], in[2]))
NC(dropout, 1, U1, tg_dropout(T, in[0], 0.5))
NC(weight_decay, 2, B2, tg_weight_decay(T, in, 2, 0.1))
NC(conv2d, 3, (in[0] = L4(1, 2, 4, 4), in[1] = L4(3, 2, 3, 3), in[2] = L1(3)),
   tg_conv2d(T, in[0], in[1], in[2], 1, 1))
NC(conv2d_relu, 3, (in[0] = L4(1, 2, 4, 4), in[1] = L4(3, 2, 3, 3), in[2] = L1(3)),
   tg_conv2d_relu(T, in[0], in[1], in[2], 1, 1))
NC(max_pool2d, 1, in[0] = L4(1, 2, 4, 4), tg_max_pool2d(T, in[0], 2, 2, 0))
NC(avg_pool2d, 1, in[0] = L4(1, 2, 4, 4), tg_avg_pool2d(T, in[0], 2, 2, 0))
NC(lrn, 1, in[0] = L4(1, 3, 2, 2), tg_lrn(T, in[0], 5, 1e-4, 0.75, 2))
/* joining and indexing (ops/index.c) */
#define IDX2 tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, 0})
NC(concat, 3, (in[0] = L2(2, 3), in[1] = L2(1, 3), in[2] = L2(2, 3)), tg_concat(T, in, 3, 0))
NC(stack, 2, B2, tg_stack(T, in, 2, -1))
NC(index_select, 2, (in[0] = L2(2, 3), in[1] = IDX2), tg_index_select(T, in[0], 0, in[1]))
NC(index_add, 2, (in[0] = L2(2, 3), in[1] = IDX2), tg_index_add(T, in[0], 0, in[1], 3))
/* special functions, compositions and constructors (ops/special.c,
 * compose.c, create.c) */
NC(erf, 1, U1, tg_erf(T, in[0]))
NC(softplus, 1, U1, tg_softplus(T, in[0]))
NC(minimum, 2, (in[0] = L2(2, 3), in[1] = L1(3)), tg_minimum(T, in[0], in[1]))
NC(clamp, 1, U1, tg_clamp(T, in[0], 0.6, 1.2))
NC(leaky_relu, 1, U1, tg_leaky_relu(T, in[0], 0.01))
NC(elu, 1, U1, tg_elu(T, in[0], 1))
NC(gelu, 1, U1, tg_gelu(T, in[0]))
NC(gelu_tanh, 1, U1, tg_gelu_tanh(T, in[0]))
NC(logsumexp, 1, U1, tg_logsumexp(T, in[0], (int[]){-1}, 1, 0))
NC(var, 1, U1, tg_var(T, in[0], (int[]){0}, 1, 1, 1))
NC(ones, 0, (void)in, tg_ones(T, (int64_t[]){2, 3}, 2))
NC(arange, 0, (void)in, tg_arange(T, 0, 5, 1))
NC(rand, 0, (void)in, tg_rand(T, (int64_t[]){2, 3}, 2))
NC(randn, 0, (void)in, tg_randn(T, (int64_t[]){2, 3}, 2))

#define NROW(nm, nin)                                                                              \
  { #nm, nin, nc_##nm }
static const null_case null_cases[] = {
    NROW(neg, 1),
    NROW(exp, 1),
    NROW(log, 1),
    NROW(sqrt, 1),
    NROW(tanh, 1),
    NROW(abs, 1),
    NROW(add, 2),
    NROW(sub, 2),
    NROW(mul, 2),
    NROW(div, 2),
    NROW(pow, 2),
    NROW(maximum, 2),
    NROW(gt, 2),
    NROW(ge, 2),
    NROW(lt, 2),
    NROW(le, 2),
    NROW(eq, 2),
    NROW(where, 3),
    NROW(add_scalar, 1),
    NROW(mul_scalar, 1),
    NROW(pow_scalar, 1),
    NROW(sum, 1),
    NROW(mean, 1),
    NROW(max, 1),
    NROW(max_mask, 1),
    NROW(argmax, 1),
    NROW(max_scatter, 2),
    NROW(sum_to, 1),
    NROW(reshape, 1),
    NROW(permute, 1),
    NROW(transpose, 1),
    NROW(broadcast_to, 1),
    NROW(slice, 1),
    NROW(pad, 1),
    NROW(flip, 1),
    NROW(detach, 1),
    NROW(matmul, 2),
    NROW(matmul_t, 2),
    NROW(matmul_batched, 2),
    NROW(bmm, 2),
    NROW(im2col, 1),
    NROW(col2im, 1),
    NROW(where_pos, 2),
    NROW(tanh_grad, 2),
    NROW(sigmoid_grad, 2),
    NROW(conv, 3),
    NROW(conv_relu, 3),
    NROW(conv_max_pool, 3),
    NROW(conv_grad_x, 2),
    NROW(conv_grad_w, 2),
    NROW(relu, 1),
    NROW(sigmoid, 1),
    NROW(step, 1),
    NROW(identity, 1),
    NROW(softmax, 1),
    NROW(log_softmax, 1),
    NROW(mse, 2),
    NROW(cross_entropy, 2),
    NROW(softmax_cross_entropy, 2),
    NROW(one_hot, 1),
    NROW(affine, 3),
    NROW(dropout, 1),
    NROW(weight_decay, 2),
    NROW(conv2d, 3),
    NROW(conv2d_relu, 3),
    NROW(max_pool2d, 1),
    NROW(avg_pool2d, 1),
    NROW(lrn, 1),
    NROW(concat, 3),
    NROW(stack, 2),
    NROW(index_select, 2),
    NROW(index_add, 2),
    NROW(erf, 1),
    NROW(softplus, 1),
    NROW(minimum, 2),
    NROW(clamp, 1),
    NROW(leaky_relu, 1),
    NROW(elu, 1),
    NROW(gelu, 1),
    NROW(gelu_tanh, 1),
    NROW(logsumexp, 1),
    NROW(var, 1),
    NROW(ones, 0),
    NROW(arange, 0),
    NROW(rand, 0),
    NROW(randn, 0),
};
#define N_NULL_OPS ((int)(sizeof null_cases / sizeof null_cases[0]))

/* Loop index -> (op, position); position n means "NULL tape". */
static int null_index(int i, int *pos) {
  for (int c = 0; c < N_NULL_OPS; c++) {
    if (i <= null_cases[c].n) {
      *pos = i;
      return c;
    }
    i -= null_cases[c].n + 1;
  }
  return -1;
}
static int null_total(void) {
  int n = 0;
  for (int c = 0; c < N_NULL_OPS; c++)
    n += null_cases[c].n + 1;
  return n;
}

/* A NULL input at each position names the op and fails the tape; a NULL
 * tape returns NULL. The optional bias of affine, conv2d(_relu) and
 * conv(_relu) is legal. */
START_TEST(null_inputs) {
  int k = 0;
  int c = null_index(_i, &k);
  const null_case *nc = &null_cases[c];
  tg_tape *B = tg_tape_new();
  tg_tape_seed(B, 1);
  /* Sanity: with nothing NULL the op works on this input. */
  ck_assert_msg(nc->fn(B, B, -1) != NULL, "%s on valid input: %s", nc->name, tg_tape_error(B));
  if (k == nc->n) {
    ck_assert_msg(nc->fn(B, NULL, -1) == NULL, "%s with a NULL tape returned a tensor", nc->name);
  } else {
    tg_tensor *y = nc->fn(B, B, k);
    int optional = k == 2 && (!strcmp(nc->name, "affine") || !strncmp(nc->name, "conv2d", 6) ||
                              !strcmp(nc->name, "conv") || !strcmp(nc->name, "conv_relu") ||
                              !strcmp(nc->name, "conv_max_pool"));
    if (optional) {
      ck_assert_msg(y != NULL, "%s without bias: %s", nc->name, tg_tape_error(B));
    } else {
      ck_assert_msg(y == NULL, "%s with input %d NULL returned a tensor", nc->name, k);
      tu_assert_error(B, "NULL");
      /* The message names the op: its name or, for a composite op, the
       * layer name in front. */
      const char *msg = tg_tape_error(B);
      char want[64];
      snprintf(want, sizeof want, "%s", nc->name);
      if (!strcmp(nc->name, "add_scalar") || !strcmp(nc->name, "mul_scalar") ||
          !strcmp(nc->name, "pow_scalar") || !strcmp(nc->name, "matmul_t") ||
          !strcmp(nc->name, "matmul_batched"))
        want[strcspn(want, "_")] = '\0'; /* reported as add / mul / pow / matmul */
      ck_assert_msg(strstr(msg, want) != NULL, "%s: message \"%s\" does not name it", nc->name,
                    msg);
      /* Sticky: a later op returns NULL and keeps the first message. */
      char first[TG_MSG_MAX];
      snprintf(first, sizeof first, "%s", msg);
      ck_assert_ptr_null(tg_neg(B, L(B, 2, (int64_t)2, (int64_t)2)));
      ck_assert_str_eq(tg_tape_error(B), first);
    }
  }
  tg_tape_free(B);
}
END_TEST

/* DOT export of every op and layer of the table, with and (where it is
 * optional) without a bias: one node line per recorded op, and no input
 * read beyond those the node holds (the ASan build checks the reads). */
START_TEST(dot_every_op) {
  const null_case *nc = &null_cases[_i];
  for (int k = -1; k <= 2; k += 3) {
    int optional =
        !strcmp(nc->name, "affine") || !strcmp(nc->name, "conv2d") || !strcmp(nc->name, "conv");
    if (k == 2 && !optional)
      break;
    tg_tape *B = tg_tape_new();
    tg_tape_seed(B, 1);
    ck_assert_msg(nc->fn(B, B, k) != NULL, "%s: %s", nc->name, tg_tape_error(B));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(tg_tape_write_dot(B, f), TG_OK);
    fclose(f);
    int64_t lines = 0;
    for (const char *p = buf; (p = strstr(p, " [label=\"#")) != NULL; p++)
      lines++;
    ck_assert_msg(lines == tg_tape_get_stats(B).nodes, "%s: %lld node lines for %lld ops:\n%s",
                  nc->name, (long long)lines, (long long)tg_tape_get_stats(B).nodes, buf);
    free(buf);
    tg_tape_free(B);
  }
}
END_TEST

/* ========================================================================
 * 2. Bad shapes, axes, ranges and arguments: each returns NULL and the
 *    message holds every fragment listed.
 * ======================================================================== */

typedef tg_tensor *(*bad_fn)(tg_tape *T);
typedef struct bad_case {
  const char *name;
  bad_fn fn;
  const char *frag[4];
} bad_case;

#define BC(nm, body)                                                                               \
  static tg_tensor *bc_##nm(tg_tape *T) { return body; }

/* mismatched shapes */
BC(add_mismatch, tg_add(T, L2(2, 3), L2(4, 5)))
BC(mul_mismatch_3d, tg_mul(T, L3(2, 3, 4), L2(3, 5)))
BC(where_mismatch, tg_where(T, tg_zeros(T, (int64_t[]){2, 2}, 2), L2(3, 3), L2(3, 3)))
BC(gt_mismatch, tg_gt(T, L1(3), L1(4)))
BC(matmul_inner, tg_matmul(T, L2(100, 784), L2(785, 50)))
BC(matmul_rank3, tg_matmul(T, L3(2, 2, 2), L2(3, 2)))
BC(matmul_rank1, tg_matmul(T, L1(3), L2(4, 2)))
BC(matmul_rank0, tg_matmul(T, tg_scalar(T, 2), L2(1, 2)))
BC(matmul_batch, tg_matmul(T, L3(2, 2, 2), L3(3, 2, 2)))
BC(bmm_rank, tg_bmm(T, L2(2, 2), L3(1, 2, 2)))
BC(bmm_batch, tg_bmm(T, L3(2, 2, 2), L3(3, 2, 2)))
BC(bmm_t_inner, tg_bmm_t(T, L3(2, 3, 2), L3(2, 4, 5), 1, 1))
BC(matmul_t_inner, tg_matmul_t(T, L2(3, 2), L2(4, 5), 1, 1))
BC(mse_mismatch, tg_mse(T, L2(2, 3), L2(3, 2)))
BC(ce_label_count, tg_cross_entropy(T, L2(2, 3), tg_zeros(T, (int64_t[]){3}, 1)))
BC(ce_rank3, tg_cross_entropy(T, L3(2, 3, 4), L3(2, 3, 4)))
BC(sce_onehot_mismatch, tg_softmax_cross_entropy(T, L2(2, 3), L2(2, 4)))
BC(sce_label_range,
   tg_softmax_cross_entropy(T, L2(2, 3), tg_from_values(T, (int64_t[]){2}, 1, (double[]){0, 3})))
BC(sce_label_negative,
   tg_softmax_cross_entropy(T, L2(2, 3), tg_from_values(T, (int64_t[]){2}, 1, (double[]){-1, 0})))
BC(sce_label_nan,
   tg_softmax_cross_entropy(T, L2(2, 3), tg_from_values(T, (int64_t[]){2}, 1, (double[]){NAN, 0})))
BC(affine_mismatch, tg_affine(T, L2(2, 3), L2(4, 5), NULL))
BC(affine_flatten_mismatch, tg_affine(T, L3(2, 3, 2), L2(5, 5), NULL))
BC(affine_bias, tg_affine(T, L2(2, 3), L2(3, 4), L1(5)))
BC(affine_no_batch, tg_affine(T, L1(3), L2(3, 4), NULL))
BC(conv2d_channels, tg_conv2d(T, L4(1, 2, 4, 4), L4(3, 5, 3, 3), NULL, 1, 1))
BC(conv2d_rank, tg_conv2d(T, L2(4, 4), L4(3, 1, 3, 3), NULL, 1, 0))
BC(conv2d_not_exact, tg_conv2d(T, L4(1, 1, 5, 5), L4(1, 1, 2, 2), NULL, 2, 0))
BC(conv2d_window_too_big, tg_conv2d(T, L4(1, 1, 2, 2), L4(1, 1, 5, 5), NULL, 1, 0))
BC(conv2d_stride0, tg_conv2d(T, L4(1, 1, 4, 4), L4(1, 1, 2, 2), NULL, 0, 0))
BC(conv2d_bias, tg_conv2d(T, L4(1, 1, 4, 4), L4(2, 1, 2, 2), L1(3), 2, 0))
BC(pool_size0, tg_max_pool2d(T, L4(1, 1, 4, 4), 0, 1, 0))
BC(pool_negative_pad, tg_avg_pool2d(T, L4(1, 1, 4, 4), 2, 2, -1))
BC(lrn_n0, tg_lrn(T, L4(1, 3, 2, 2), 0, 1e-4, 0.75, 2))
BC(lrn_k0, tg_lrn(T, L4(1, 3, 2, 2), 5, 1e-4, 0.75, 0))
BC(lrn_rank2, tg_lrn(T, L2(3, 2), 5, 1e-4, 0.75, 2))
BC(im2col_rank, tg_im2col(T, L2(4, 4), 2, 2, 1, 0))
BC(im2col_not_exact, tg_im2col(T, L4(1, 1, 5, 5), 2, 2, 2, 0))
BC(im2col_negative_filter, tg_im2col(T, L4(1, 1, 4, 4), -2, 2, 1, 0))
BC(col2im_mismatch, tg_col2im(T, L2(16, 17), (int64_t[]){1, 2, 4, 4}, 3, 3, 1, 1))
BC(col2im_null_shape, tg_col2im(T, L2(16, 18), NULL, 3, 3, 1, 1))
static tg_params bn_p, bn_b;
static tg_tensor *bc_batchnorm_features(tg_tape *T) {
  static tg_batchnorm bn;
  tg_batchnorm_init(&bn, "bn", 4, &bn_p, &bn_b, NULL);
  tg_tensor *y = tg_batchnorm_forward(T, &bn, L2(2, 3));
  tg_params_free(&bn_p);
  tg_params_free(&bn_b);
  return y;
}
BC(batchnorm_null_bn, tg_batchnorm_forward(T, NULL, L2(2, 3)))
static tg_tensor *bc_batchnorm_empty_struct(tg_tape *T) {
  tg_batchnorm bn = {0};
  return tg_batchnorm_forward(T, &bn, L2(2, 3));
}
BC(dropout_ratio1, tg_dropout(T, L2(2, 3), 1.0))
BC(dropout_ratio_nan, tg_dropout(T, L2(2, 3), NAN))
BC(dropout_ratio_negative, tg_dropout(T, L2(2, 3), -0.1))
BC(weight_decay_negative, tg_weight_decay(T, (tg_tensor *[]){L1(2)}, 1, -1))
BC(weight_decay_inf, tg_weight_decay(T, (tg_tensor *[]){L1(2)}, 1, INFINITY))
BC(weight_decay_n_negative, tg_weight_decay(T, (tg_tensor *[]){L1(2)}, -1, 0.1))
BC(weight_decay_array_null, tg_weight_decay(T, NULL, 2, 0.1))
BC(one_hot_range, tg_one_hot(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){1, 7}), 3))
BC(one_hot_fraction, tg_one_hot(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){1.5, 0}), 3))
BC(one_hot_classes0, tg_one_hot(T, tg_from_values(T, (int64_t[]){2}, 1, (double[]){0, 0}), 0))
BC(one_hot_rank2, tg_one_hot(T, L2(2, 2), 3))
/* bad axes */
BC(sum_axis_range, tg_sum(T, L2(2, 3), (int[]){2}, 1, 0))
BC(sum_axis_negative_range, tg_sum(T, L2(2, 3), (int[]){-3}, 1, 0))
BC(sum_axis_repeat, tg_sum(T, L2(2, 3), (int[]){1, -1}, 2, 0))
BC(sum_naxes_negative, tg_sum(T, L2(2, 3), (int[]){0}, -1, 0))
BC(sum_naxes_too_many, tg_sum(T, L2(2, 3), (int[]){0, 1, 0}, 3, 0))
BC(sum_axes_null, tg_sum(T, L2(2, 3), NULL, 2, 0))
BC(mean_axis_huge, tg_mean(T, L2(2, 3), (int[]){1 << 30}, 1, 1))
BC(max_axis_min, tg_max(T, L2(2, 3), (int[]){INT32_MIN}, 1, 0))
BC(max_mask_axis, tg_max_mask(T, L2(2, 3), (int[]){5}, 1))
BC(argmax_axis, tg_argmax(T, L2(2, 3), 2))
BC(max_scatter_dy, tg_max_scatter(T, L2(2, 3), L1(3), (int[]){1}, 1))
BC(argmax_axis_negative, tg_argmax(T, L2(2, 3), -3))
BC(softmax_axis, tg_softmax(T, L2(2, 3), 2))
BC(log_softmax_axis, tg_log_softmax(T, L2(2, 3), -3))
BC(sum_to_incompatible, tg_sum_to(T, L2(2, 3), (int64_t[]){4}, 1))
BC(sum_to_bigger, tg_sum_to(T, L2(2, 3), (int64_t[]){2, 2, 3}, 3))
BC(sum_to_null, tg_sum_to(T, L2(2, 3), NULL, 1))
BC(permute_repeat, tg_permute(T, L3(2, 3, 4), (int[]){0, 0, 1}))
BC(permute_range, tg_permute(T, L2(2, 3), (int[]){0, 2}))
BC(permute_negative, tg_permute(T, L2(2, 3), (int[]){-1, 0}))
BC(permute_null, tg_permute(T, L2(2, 3), NULL))
BC(transpose_1d, tg_transpose(T, L1(3)))
BC(reshape_numel, tg_reshape(T, L2(2, 3), (int64_t[]){4, 2}, 2))
BC(reshape_two_infer, tg_reshape(T, L2(2, 3), (int64_t[]){-1, -1}, 2))
BC(reshape_negative, tg_reshape(T, L2(2, 3), (int64_t[]){-2, -3}, 2))
BC(reshape_zero, tg_reshape(T, L2(2, 3), (int64_t[]){0, 6}, 2))
BC(reshape_rank7, tg_reshape(T, L1(1), (int64_t[]){1, 1, 1, 1, 1, 1, 1}, 7))
BC(reshape_null, tg_reshape(T, L2(2, 3), NULL, 2))
BC(reshape_overflow, tg_reshape(T, L2(2, 3), (int64_t[]){INT64_MAX, 2, 3}, 3))
BC(broadcast_incompatible, tg_broadcast_to(T, L2(2, 3), (int64_t[]){2, 4}, 2))
BC(broadcast_fewer_dims, tg_broadcast_to(T, L2(2, 3), (int64_t[]){3}, 1))
BC(broadcast_zero, tg_broadcast_to(T, L1(1), (int64_t[]){0}, 1))
BC(broadcast_overflow, tg_broadcast_to(T, L1(1), (int64_t[]){1LL << 40, 1LL << 40}, 2))
BC(where_pos_mismatch, tg_where_pos(T, L2(2, 3), L2(3, 2)))
BC(tanh_grad_mismatch, tg_tanh_grad(T, L2(2, 3), L2(3, 2)))
BC(sigmoid_grad_mismatch, tg_sigmoid_grad(T, L2(2, 3), L2(3, 2)))
BC(conv_channels, tg_conv(T, L4(1, 2, 5, 5), L4(3, 4, 3, 3), NULL, 1, 0))
BC(conv_bias, tg_conv(T, L4(1, 2, 5, 5), L4(3, 2, 3, 3), L1(4), 1, 0))
BC(conv_stride, tg_conv(T, L4(1, 2, 6, 6), L4(3, 2, 3, 3), NULL, 2, 0))
BC(conv_relu_channels, tg_conv_relu(T, L4(1, 2, 5, 5), L4(3, 4, 3, 3), NULL, 1, 0))
BC(conv_max_pool_tile, tg_conv_max_pool(T, L4(1, 2, 5, 5), L4(3, 2, 3, 3), NULL, 1, 1, 2))
BC(conv_grad_x_dy, tg_conv_grad_x(T, L4(1, 3, 2, 2), L4(3, 2, 3, 3), (int64_t[]){1, 2, 5, 5}, 1, 0))
BC(conv_grad_x_xshape,
   tg_conv_grad_x(T, L4(1, 3, 3, 3), L4(3, 2, 3, 3), (int64_t[]){1, 2, 1LL << 40, 1LL << 40}, 1, 0))
BC(conv_grad_w_dy, tg_conv_grad_w(T, L4(1, 2, 5, 5), L4(2, 3, 3, 3), 3, 3, 1, 0))
/* out-of-range slices and pads */
BC(slice_empty, tg_slice(T, L2(2, 3), (int64_t[]){0, 1}, (int64_t[]){2, 1}))
BC(slice_reversed, tg_slice(T, L2(2, 3), (int64_t[]){0, 2}, (int64_t[]){2, 1}))
BC(slice_past_end, tg_slice(T, L2(2, 3), NULL, (int64_t[]){2, 4}))
BC(slice_before_start, tg_slice(T, L2(2, 3), (int64_t[]){-3, 0}, NULL))
BC(slice_int64_min, tg_slice(T, L2(2, 3), (int64_t[]){INT64_MIN, 0}, NULL))
BC(slice_int64_max, tg_slice(T, L2(2, 3), NULL, (int64_t[]){INT64_MAX, 3}))
BC(flip_axis, tg_flip(T, L2(2, 3), 2))
BC(flip_axis_negative, tg_flip(T, L2(2, 3), -3))
BC(pad_negative, tg_pad(T, L2(2, 3), (int64_t[]){0, -1}, NULL))
BC(pad_huge, tg_pad(T, L2(2, 3), (int64_t[]){INT64_MAX, 0}, NULL))
BC(pad_overflow, tg_pad(T, L2(2, 3), (int64_t[]){1LL << 40, 0}, (int64_t[]){0, 1LL << 40}))
/* arena tensors that cannot exist */
BC(empty_zero_dim, tg_empty(T, (int64_t[]){2, 0, 3}, 3))
BC(zeros_negative_dim, tg_zeros(T, (int64_t[]){-4}, 1))
BC(empty_rank7, tg_empty(T, (int64_t[]){1, 1, 1, 1, 1, 1, 1}, 7))
BC(empty_rank_negative, tg_empty(T, (int64_t[]){1}, -1))
BC(empty_overflow_2x32, tg_empty(T, (int64_t[]){1LL << 32, 1LL << 32}, 2))
BC(empty_overflow_max, tg_empty(T, (int64_t[]){INT64_MAX, 2}, 2))
BC(empty_overflow_bytes, tg_empty(T, (int64_t[]){INT64_MAX / 2}, 1))
BC(empty_overflow_6d, tg_empty(T, (int64_t[]){1 << 12, 1 << 12, 1 << 12, 1 << 12, 1 << 12, 2}, 6))
BC(empty_null_shape, tg_empty(T, NULL, 2))
BC(full_exabyte, tg_full(T, (int64_t[]){1LL << 58}, 1, 1))
/* The most elements tg_shape_check allows: header + data pass 2^63 bytes,
 * which once made the arena's block-size doubling overflow to 0 and spin. */
BC(empty_max_bytes, tg_empty(T, (int64_t[]){INT64_MAX / (int64_t)sizeof(tg_real)}, 1))
BC(from_values_null, tg_from_values(T, (int64_t[]){2}, 1, NULL))
BC(requires_grad_non_leaf, tg_requires_grad(T, tg_neg(T, L1(2))))
/* joining and indexing (ops/index.c) */
BC(concat_mismatch, tg_concat(T, (tg_tensor *[]){L2(2, 3), L2(2, 4)}, 2, 0))
BC(concat_rank, tg_concat(T, (tg_tensor *[]){L2(2, 3), L3(2, 3, 1)}, 2, 1))
BC(concat_axis, tg_concat(T, (tg_tensor *[]){L2(2, 3), L2(2, 3)}, 2, -3))
BC(concat_none, tg_concat(T, (tg_tensor *[]){L2(2, 3)}, 0, 0))
BC(concat_null_array, tg_concat(T, NULL, 2, 0))
BC(concat_scalars, tg_concat(T, (tg_tensor *[]){tg_scalar(T, 1), tg_scalar(T, 2)}, 2, 0))
BC(stack_mismatch, tg_stack(T, (tg_tensor *[]){L2(2, 3), L2(3, 2)}, 2, 0))
BC(stack_axis, tg_stack(T, (tg_tensor *[]){L2(2, 3), L2(2, 3)}, 2, 3))
BC(stack_rank7, tg_stack(T, (tg_tensor *[]){L(T, 6, 1LL, 1LL, 1LL, 1LL, 1LL, 2LL)}, 1, 0))
BC(index_select_range,
   tg_index_select(T, L2(4, 3), 0, tg_from_values(T, (int64_t[]){3}, 1, (double[]){0, 4, 1})))
BC(index_select_negative, tg_index_select(T, L2(4, 3), 1, tg_scalar(T, -1)))
BC(index_select_fraction, tg_index_select(T, L2(4, 3), 1, tg_scalar(T, 1.5)))
BC(index_select_axis, tg_index_select(T, L2(4, 3), 2, tg_scalar(T, 0)))
BC(index_select_rank,
   tg_index_select(T, L3(4, 3, 2), 0, tg_zeros(T, (int64_t[]){1, 1, 1, 1, 1}, 5)))
BC(index_add_range, tg_index_add(T, L2(2, 3), 0, IDX2, 1))
BC(index_add_shape, tg_index_add(T, L2(3, 3), 0, IDX2, 4))
BC(index_add_n, tg_index_add(T, L2(2, 3), 0, IDX2, 0))
BC(index_add_axis, tg_index_add(T, L2(2, 3), -3, IDX2, 4))
/* compositions and constructors */
BC(minimum_mismatch, tg_minimum(T, L2(2, 3), L2(4, 5)))
BC(clamp_empty, tg_clamp(T, L2(2, 3), 1, 0))
BC(clamp_nan, tg_clamp(T, L2(2, 3), NAN, 1))
BC(logsumexp_axis, tg_logsumexp(T, L2(2, 3), (int[]){2}, 1, 0))
BC(logsumexp_repeat, tg_logsumexp(T, L2(2, 3), (int[]){1, -1}, 2, 0))
BC(logsumexp_axes_null, tg_logsumexp(T, L2(2, 3), NULL, 1, 0))
BC(var_axis, tg_var(T, L2(2, 3), (int[]){-3}, 1, 0, 0))
BC(var_correction, tg_var(T, L2(2, 3), (int[]){0}, 1, 2, 0))
BC(var_correction_negative, tg_var(T, L2(2, 3), NULL, 0, -1, 0))
BC(arange_step0, tg_arange(T, 0, 5, 0))
BC(arange_empty, tg_arange(T, 5, 0, 1))
BC(arange_inf, tg_arange(T, 0, INFINITY, 1))
BC(ones_zero_dim, tg_ones(T, (int64_t[]){2, 0}, 2))
BC(randn_negative_dim, tg_randn(T, (int64_t[]){-3}, 1))

#define BROW(nm, ...)                                                                              \
  {                                                                                                \
#nm, bc_##nm, { __VA_ARGS__ }                                                                  \
  }
static const bad_case bad_cases[] = {
    BROW(add_mismatch, "add", "(2, 3)", "(4, 5)"),
    BROW(mul_mismatch_3d, "mul", "(2, 3, 4)", "(3, 5)"),
    BROW(where_mismatch, "where", "(2, 2)", "(3, 3)"),
    BROW(gt_mismatch, "gt", "(3,)", "(4,)"),
    BROW(matmul_inner, "matmul", "(100, 784)", "(785, 50)"),
    BROW(matmul_rank3, "matmul", "inner", "(2, 2, 2) @ (3, 2)"),
    BROW(matmul_rank1, "matmul", "inner", "(3,) @ (4, 2)"),
    BROW(matmul_rank0, "matmul", "1-D", "() @ (1, 2)"),
    BROW(matmul_batch, "matmul", "batch", "(2, 2, 2) @ (3, 2, 2)"),
    BROW(bmm_rank, "bmm", "3-D", "(2, 2) @ (1, 2, 2)"),
    BROW(bmm_batch, "bmm", "(2, 2, 2) @ (3, 2, 2)"),
    BROW(bmm_t_inner, "bmm", "inner", "(2, 3, 2)^T @ (2, 4, 5)^T"),
    BROW(matmul_t_inner, "matmul", "(3, 2)", "(4, 5)"),
    BROW(mse_mismatch, "mse", "(2, 3)", "(3, 2)"),
    BROW(ce_label_count, "cross_entropy", "(2, 3)", "(3,)"),
    BROW(ce_rank3, "cross_entropy", "(2, 3, 4)"),
    BROW(sce_onehot_mismatch, "softmax_cross_entropy", "(2, 3)", "(2, 4)"),
    BROW(sce_label_range, "3", "row 1"),
    BROW(sce_label_negative, "-1", "row 0"),
    BROW(sce_label_nan, "nan", "row 0"),
    BROW(affine_mismatch, "affine", "(2, 3)", "(4, 5)"),
    BROW(affine_flatten_mismatch, "affine", "(2, 3, 2)", "(5, 5)"),
    BROW(affine_bias, "affine", "(5,)", "(3, 4)"),
    BROW(affine_no_batch, "affine", "(3,)"),
    BROW(conv2d_channels, "conv2d", "(1, 2, 4, 4)", "(3, 5, 3, 3)"),
    BROW(conv2d_rank, "conv2d", "(4, 4)"),
    BROW(conv2d_not_exact, "conv2d", "(1, 1, 5, 5)"),
    BROW(conv2d_window_too_big, "conv2d", "(1, 1, 2, 2)"),
    BROW(conv2d_stride0, "conv2d", "stride"),
    BROW(conv2d_bias, "conv2d", "(3,)"),
    BROW(pool_size0, "max_pool2d"),
    BROW(pool_negative_pad, "avg_pool2d"),
    BROW(lrn_n0, "lrn"),
    BROW(lrn_k0, "lrn"),
    BROW(lrn_rank2, "lrn", "(3, 2)"),
    BROW(im2col_rank, "im2col", "(4, 4)"),
    BROW(im2col_not_exact, "im2col"),
    BROW(im2col_negative_filter, "im2col"),
    BROW(col2im_mismatch, "col2im", "(16, 17)"),
    BROW(col2im_null_shape, "col2im"),
    BROW(batchnorm_features, "batchnorm", "(2, 3)"),
    BROW(batchnorm_null_bn, "batchnorm", "bn is NULL"),
    BROW(batchnorm_empty_struct, "batchnorm", "NULL"),
    BROW(dropout_ratio1, "dropout", "ratio 1"),
    BROW(dropout_ratio_nan, "dropout", "nan"),
    BROW(dropout_ratio_negative, "dropout", "-0.1"),
    BROW(weight_decay_negative, "weight_decay", "-1"),
    BROW(weight_decay_inf, "weight_decay", "inf"),
    BROW(weight_decay_n_negative, "weight_decay", "-1"),
    BROW(weight_decay_array_null, "weight_decay", "NULL"),
    BROW(one_hot_range, "one_hot", "7", "row 1"),
    BROW(one_hot_fraction, "one_hot", "1.5", "row 0"),
    BROW(one_hot_classes0, "one_hot", "0 classes"),
    BROW(one_hot_rank2, "one_hot", "(2, 2)"),
    BROW(sum_axis_range, "sum", "(2, 3)"),
    BROW(sum_axis_negative_range, "sum", "-3"),
    BROW(sum_axis_repeat, "sum", "(2, 3)"),
    BROW(sum_naxes_negative, "sum"),
    BROW(sum_naxes_too_many, "sum"),
    BROW(sum_axes_null, "sum"),
    BROW(mean_axis_huge, "mean", "(2, 3)"),
    BROW(max_axis_min, "max", "(2, 3)"),
    BROW(max_mask_axis, "max_mask", "5"),
    BROW(argmax_axis, "argmax", "2"),
    BROW(max_scatter_dy, "max_scatter", "(3,)", "(2, 3)"),
    BROW(argmax_axis_negative, "argmax", "-3"),
    BROW(softmax_axis, "softmax", "axis 2", "(2, 3)"),
    BROW(log_softmax_axis, "log_softmax", "axis -3"),
    BROW(sum_to_incompatible, "sum_to", "(2, 3)", "(4,)"),
    BROW(sum_to_bigger, "sum_to", "(2, 3)", "(2, 2, 3)"),
    BROW(sum_to_null, "sum_to"),
    BROW(permute_repeat, "permute", "[0, 0, 1]"),
    BROW(permute_range, "permute", "[0, 2]"),
    BROW(permute_negative, "permute", "[-1, 0]"),
    BROW(permute_null, "permute", "NULL"),
    BROW(transpose_1d, "transpose", "(3,)"),
    BROW(reshape_numel, "reshape", "(2, 3)", "(4, 2)"),
    BROW(reshape_two_infer, "reshape", "(2, 3)"),
    BROW(reshape_negative, "reshape", "(2, 3)"),
    BROW(reshape_zero, "reshape"),
    BROW(reshape_rank7, "reshape", "7"),
    BROW(reshape_null, "reshape", "NULL"),
    BROW(reshape_overflow, "reshape"),
    BROW(broadcast_incompatible, "broadcast_to", "(2, 3)", "(2, 4)"),
    BROW(broadcast_fewer_dims, "broadcast_to", "(2, 3)", "(3,)"),
    BROW(broadcast_zero, "broadcast_to"),
    BROW(where_pos_mismatch, "where_pos", "(2, 3)", "(3, 2)"),
    BROW(tanh_grad_mismatch, "tanh_grad", "(2, 3)", "(3, 2)"),
    BROW(sigmoid_grad_mismatch, "sigmoid_grad", "(2, 3)", "(3, 2)"),
    BROW(conv_channels, "conv", "(1, 2, 5, 5)", "(3, 4, 3, 3)", "same C"),
    BROW(conv_bias, "conv", "b (4,)", "must be (3,)"),
    BROW(conv_stride, "conv", "not a multiple of stride 2"),
    BROW(conv_relu_channels, "conv_relu", "(1, 2, 5, 5)", "(3, 4, 3, 3)", "same C"),
    BROW(conv_max_pool_tile, "conv_max_pool", "(1, 2, 5, 5)", "do not tile the 5×5"),
    BROW(conv_grad_x_dy, "conv_grad_x", "dy (1, 3, 2, 2)", "must be (1, 3, 3, 3)"),
    BROW(conv_grad_x_xshape, "conv_grad_x", "1099511627776"),
    BROW(conv_grad_w_dy, "conv_grad_w", "dy (2, 3, 3, 3)", "must be (1, FN, 3, 3)"),
    /* Named by the op itself, not by the allocation behind it ("empty"). */
    BROW(broadcast_overflow, "broadcast_to (op #", "cannot broadcast (1,) to",
         "(1099511627776, 1099511627776)", "too many elements"),
    BROW(slice_empty, "slice", "axis 1", "(2, 3)"),
    BROW(slice_reversed, "slice", "axis 1", "[2:1]"),
    BROW(slice_past_end, "slice", "axis 1", "[0:4]"),
    BROW(slice_before_start, "slice", "axis 0", "[-3:2]"),
    BROW(slice_int64_min, "slice", "axis 0"),
    BROW(slice_int64_max, "slice", "axis 0"),
    BROW(flip_axis, "flip", "axis 2", "(2, 3)"),
    BROW(flip_axis_negative, "flip", "axis -3", "(2, 3)"),
    BROW(pad_negative, "pad", "axis 1", "(2, 3)"),
    BROW(pad_huge, "pad", "axis 0", "too large"),
    BROW(pad_overflow, "pad", "too many elements"),
    BROW(empty_zero_dim, "empty", "(2, 0, 3)", "empty tensors are not supported"),
    BROW(zeros_negative_dim, "empty", "-4"),
    BROW(empty_rank7, "empty", "7 dimensions"),
    BROW(empty_rank_negative, "empty", "-1 dimensions"),
    BROW(empty_overflow_2x32, "empty", "(4294967296, 4294967296)", "too many elements"),
    BROW(empty_overflow_max, "empty", "too many elements"),
    BROW(empty_overflow_bytes, "empty", "too many elements"),
    BROW(empty_overflow_6d, "empty", "too many elements"),
    BROW(empty_null_shape, "empty", "NULL"),
    BROW(full_exabyte, "out of memory", "(288230376151711744,)"),
    BROW(empty_max_bytes, "out of memory"),
    BROW(from_values_null, "from_values", "NULL"),
    BROW(requires_grad_non_leaf, "requires_grad", "not a leaf"),
    BROW(concat_mismatch, "concat", "(2, 4)", "(2, 3)", "axis 0"),
    BROW(concat_rank, "concat", "(2, 3, 1)", "(2, 3)"),
    BROW(concat_axis, "concat", "axis -3", "(2, 3)"),
    BROW(concat_none, "concat", "at least one input"),
    BROW(concat_null_array, "concat", "NULL"),
    BROW(concat_scalars, "concat", "scalars"),
    BROW(stack_mismatch, "stack", "(3, 2)", "(2, 3)"),
    BROW(stack_axis, "stack", "axis 3", "(2, 3)"),
    BROW(stack_rank7, "stack", "7 dimensions"),
    BROW(index_select_range, "index_select", "index 4", "position 1", "[0, 4)"),
    BROW(index_select_negative, "index_select", "index -1", "[0, 3)"),
    BROW(index_select_fraction, "index_select", "1.5", "not an integer"),
    BROW(index_select_axis, "index_select", "axis 2", "(4, 3)"),
    BROW(index_select_rank, "index_select", "(4, 3, 2)", "(1, 1, 1, 1, 1)", "7 dimensions"),
    BROW(index_add_range, "index_add", "index 1", "[0, 1)"),
    BROW(index_add_shape, "index_add", "(3, 3)", "(2,)"),
    BROW(index_add_n, "index_add", "0"),
    BROW(index_add_axis, "index_add", "axis -3"),
    BROW(minimum_mismatch, "minimum", "(2, 3)", "(4, 5)"),
    BROW(clamp_empty, "clamp", "[1, 0]", "(2, 3)"),
    BROW(clamp_nan, "clamp", "nan"),
    BROW(logsumexp_axis, "logsumexp", "axis 2", "(2, 3)"),
    BROW(logsumexp_repeat, "logsumexp", "axis -1", "repeated"),
    BROW(logsumexp_axes_null, "logsumexp", "NULL"),
    BROW(var_axis, "var", "axis -3", "(2, 3)"),
    BROW(var_correction, "var", "correction 2", "2 elements"),
    BROW(var_correction_negative, "var", "correction -1"),
    BROW(arange_step0, "arange", "steps of 0"),
    BROW(arange_empty, "arange", "[5, 0)"),
    BROW(arange_inf, "arange", "inf"),
    BROW(ones_zero_dim, "empty", "(2, 0)"),
    BROW(randn_negative_dim, "empty", "-3"),
};
#define N_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

START_TEST(bad_arguments) {
  const bad_case *bc = &bad_cases[_i];
  tg_tape *T = tg_tape_new();
  tg_tape_seed(T, 2);
  tg_tensor *y = bc->fn(T);
  ck_assert_msg(y == NULL, "%s: returned a tensor instead of an error", bc->name);
  ck_assert_msg(tg_tape_status(T) != TG_OK, "%s: NULL but the tape is OK", bc->name);
  const char *msg = tg_tape_error(T);
  for (int k = 0; k < 4 && bc->frag[k]; k++)
    ck_assert_msg(strstr(msg, bc->frag[k]) != NULL, "%s: \"%s\" does not mention \"%s\"", bc->name,
                  msg, bc->frag[k]);
  /* The tape recovers after a reset. */
  tg_tape_reset(T);
  ck_assert_ptr_nonnull(tg_neg(T, L1(2)));
  tg_tape_free(T);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("hostile_ops");
  TCase *tc = tcase_create("null");
  tcase_add_loop_test(tc, null_inputs, 0, null_total());
  tcase_add_loop_test(tc, dot_every_op, 0, N_NULL_OPS);
  suite_add_tcase(s, tc);
  tc = tcase_create("arguments");
  tcase_add_loop_test(tc, bad_arguments, 0, N_BAD);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
