/* test_matmul.c — the matrix product: forward values against a plain
 * triple loop accumulated in double (all four transpose combinations, at
 * small shapes, around libxsmm's 64³ boundary, on ragged tiles and at the
 * book's shapes), gradients against central differences, a second
 * derivative against a hand-derived value, the error messages, and
 * results that do not change with the thread count.
 *
 * Expected values never come from the op under test. No op runs in main()
 * (TOOLCHAIN.md: a forked Check test hangs if its parent ran OpenMP).
 */
#include <float.h>
#include <libxsmm.h>
#include <omp.h>

#include "testutil.h"

/* Unit roundoff of tg_real. */
#define U_REAL (sizeof(tg_real) == 8 ? DBL_EPSILON / 2 : FLT_EPSILON / 2)

/* ------------------------------------------------------------------------
 * Helpers */

/* Shape of an operand stored for op(x) = (r, c): (c, r) when transposed. */
static tg_tensor *operand(tg_tape *tape, int64_t r, int64_t c, int trans) {
  int64_t shape[2] = {trans ? c : r, trans ? r : c};
  tg_tensor *t = tg_empty(tape, shape, 2);
  ck_assert_msg(t != NULL, "tg_empty: %s", tg_tape_error(tape));
  tu_fill_uniform(t, tg_tape_rng(tape), -1, 1);
  return t;
}

/* op(x)[i][k] for x stored (r, c) or transposed. */
static double elem(const tg_tensor *x, int trans, int64_t i, int64_t k) {
  return trans ? tg_at(x, k * x->shape[1] + i) : tg_at(x, i * x->shape[1] + k);
}

/* Element checks assert once per matrix, on the first mismatch: every
 * Check assertion costs a write to the parent process. */
typedef struct mismatch {
  int64_t count, i, j;
  double got, want, tol;
} mismatch;

static void compare(mismatch *m, int64_t i, int64_t j, double got, double want, double tol) {
  if (fabs(got - want) <= tol)
    return;
  if (m->count++ == 0)
    *m = (mismatch){1, i, j, got, want, tol};
}

/* Checks c = op(a)·op(b) on every row_step-th row against a loop in
 * double. The tolerance for c[i][j] is 4·√K·u·Σ|a_ik·b_kj| (a rounding
 * error that grows like √K for random data), tight enough that a dropped
 * term or K chunk, a transposed operand or untouched output fails. */
static void check_product(const tg_tensor *c, const tg_tensor *a, const tg_tensor *b, int ta,
                          int tb, int64_t row_step, const char *what) {
  ck_assert_msg(c != NULL, "%s: matmul returned NULL", what);
  const int64_t M = a->shape[ta], K = a->shape[!ta], N = b->shape[!tb];
  ck_assert_msg(c->ndim == 2 && c->shape[0] == M && c->shape[1] == N, "%s: shape %s", what,
                TG_SHAPE(c));
  mismatch bad = {0};
  for (int64_t i = 0; i < M; i += row_step)
    for (int64_t j = 0; j < N; j++) {
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) {
        double p = elem(a, ta, i, k) * elem(b, tb, k, j);
        s += p;
        mag += fabs(p);
      }
      compare(&bad, i, j, tg_at(c, i * N + j), s, 4 * sqrt((double)K) * U_REAL * mag + DBL_MIN);
    }
  ck_assert_msg(bad.count == 0,
                "%s (ta %d, tb %d): %lld elements off; first C[%lld][%lld] = %.17g, loop gives "
                "%.17g (tolerance %.3g)",
                what, ta, tb, (long long)bad.count, (long long)bad.i, (long long)bad.j, bad.got,
                bad.want, bad.tol);
}

/* Runs op(A)(M,K)·op(B)(K,N) with fresh random operands and checks it. */
static void check_shape(int64_t M, int64_t N, int64_t K, int ta, int tb, int64_t row_step) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, (uint64_t)(M * 1000003 + N * 1009 + K * 7 + ta * 2 + tb));
  tg_tensor *a = operand(tape, M, K, ta), *b = operand(tape, K, N, tb);
  tg_tensor *c = tg_matmul_t(tape, a, b, ta, tb);
  char what[96];
  snprintf(what, sizeof what, "(%lld x %lld)·(%lld x %lld)", (long long)M, (long long)K,
           (long long)K, (long long)N);
  ck_assert_msg(c != NULL, "%s: %s", what, tg_tape_error(tape));
  check_product(c, a, b, ta, tb, row_step, what);
  tg_tape_free(tape);
}

static void check_all_transposes(int64_t M, int64_t N, int64_t K, int64_t row_step) {
  for (int t = 0; t < 4; t++)
    check_shape(M, N, K, t >> 1, t & 1, row_step);
}

/* ------------------------------------------------------------------------
 * Forward */

START_TEST(test_hand_values) {
  /* [[1, 2], [3, 4]]·[[5, 6], [7, 8]] = [[19, 22], [43, 50]], and the
   * transposed forms of the same two matrices. */
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){5, 6, 7, 8});
  tu_assert_values(tg_matmul(tape, a, b), ((double[]){19, 22, 43, 50}), TU_VALUE_TOL);
  tu_assert_values(tg_matmul_t(tape, a, b, 1, 0), ((double[]){26, 30, 38, 44}), TU_VALUE_TOL);
  tu_assert_values(tg_matmul_t(tape, a, b, 0, 1), ((double[]){17, 23, 39, 53}), TU_VALUE_TOL);
  tu_assert_values(tg_matmul_t(tape, a, b, 1, 1), ((double[]){23, 31, 34, 46}), TU_VALUE_TOL);
  /* A row times a column, and a column times a row. */
  tg_tensor *r = tg_from_values(tape, (int64_t[]){1, 3}, 2, (double[]){1, 2, 3});
  tu_assert_values(tg_matmul_t(tape, r, r, 0, 1), ((double[]){14}), TU_VALUE_TOL);
  tu_assert_values(tg_matmul_t(tape, r, r, 1, 0), ((double[]){1, 2, 3, 2, 4, 6, 3, 6, 9}),
                   TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_small_shapes) {
  check_all_transposes(3, 5, 4, 1);
  check_all_transposes(1, 1, 1, 1);
  check_all_transposes(7, 1, 9, 1);
  check_all_transposes(1, 9, 7, 1);
}
END_TEST

/* Around libxsmm's 64³ limit: its own gemm hands larger shapes to BLAS,
 * and with the no-BLAS stub linked leaves C untouched, which this catches
 * at 65 and 100. */
START_TEST(test_around_64) {
  check_all_transposes(63, 63, 63, 1);
  check_all_transposes(64, 64, 64, 1);
  check_all_transposes(65, 65, 65, 1);
  check_all_transposes(100, 100, 100, 1);
  check_all_transposes(128, 300, 70, 1);
}
END_TEST

/* Ragged last tiles along M and N and a ragged last K chunk, threaded. */
START_TEST(test_ragged_tiles) {
  check_all_transposes(257, 515, 1001, 5);
  check_all_transposes(33, 700, 90, 1);
}
END_TEST

/* The book's two-layer net: X (100, 784)·W (784, 50), then its backward
 * products dX = dY·Wᵀ and dW = Xᵀ·dY, which is how the engine runs them. */
START_TEST(test_book_affine) {
  check_shape(100, 50, 784, 0, 0, 1);
  check_shape(100, 784, 50, 0, 1, 1);
  check_shape(784, 50, 100, 1, 0, 1);
}
END_TEST

/* A few columns past a whole number of AVX-512 vectors (N = 3·lanes + r,
 * r up to lanes/8) are computed apart from the JIT's tiles (matmul.c):
 * dot products along K, or along M when A is transposed. Odd M (rows past
 * a block of four, and past a vector), K with a ragged last vector, K too
 * short for the dot products, and a C of several column tiles. */
START_TEST(test_remainder_columns) {
  const int64_t lanes = 64 / (int64_t)sizeof(tg_real);
  for (int64_t r = 1; r <= lanes / 8; r++) {
    check_all_transposes(37, 3 * lanes + r, 130, 1);
    check_all_transposes(5, 3 * lanes + r, 1000, 1);
    check_all_transposes(101, 3 * lanes + r, 20, 1);
    check_all_transposes(203, 17 * lanes + r, 97, 1);
  }
}
END_TEST

/* SimpleConvNet's convolution as im2col: col (57600, 25)·W (25, 30) and
 * its backward; dW = colᵀ·dY has a (25, 30) result and K = 57600, which
 * the engine splits along K into partial sums. */
START_TEST(test_book_conv) {
  check_shape(57600, 30, 25, 0, 0, 97);
  check_shape(57600, 25, 30, 0, 1, 97);
  check_shape(25, 30, 57600, 1, 0, 1);
}
END_TEST

/* The deep net's fully connected layer: (100, 4320)·(4320, 100). */
START_TEST(test_book_fc) {
  check_shape(100, 100, 4320, 0, 0, 1);
  check_shape(100, 4320, 100, 0, 1, 3);
  check_shape(4320, 100, 100, 1, 0, 7);
}
END_TEST

/* ------------------------------------------------------------------------
 * Gradients */

typedef struct tmode {
  int ta, tb;
} tmode;

static tg_tensor *mm_fn(tg_tape *tape, tg_tensor *const *in, void *ctx) {
  const tmode *m = ctx;
  return tg_matmul_t(tape, in[0], in[1], m->ta, m->tb);
}

static void gradcheck_shape(int64_t M, int64_t N, int64_t K, int ta, int tb) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, (uint64_t)(11 + ta * 2 + tb));
  tmode m = {ta, tb};
  tg_tensor *in[2] = {tg_requires_grad(tape, operand(tape, M, K, ta)),
                      tg_requires_grad(tape, operand(tape, K, N, tb))};
  tu_assert_gradcheck(tape, mm_fn, &m, 2, in, TU_GRAD_TOL);
  tg_tape_free(tape);
}

START_TEST(test_gradcheck) {
  for (int t = 0; t < 4; t++) {
    gradcheck_shape(3, 5, 4, t >> 1, t & 1);
    gradcheck_shape(1, 6, 2, t >> 1, t & 1);
  }
}
END_TEST

/* Gradients at a tiled, threaded shape (too large for a strict central
 * difference in double: the rounding of the projected loss dominates),
 * against loops written from the definition: for G = ∂L/∂C,
 * ∂L/∂op(A)[m][k] = Σ_n G[m][n]·op(B)[k][n] and
 * ∂L/∂op(B)[k][n] = Σ_m op(A)[m][k]·G[m][n], stored in A's and B's layout. */
static void check_backward(int64_t M, int64_t N, int64_t K, int ta, int tb) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, (uint64_t)(70 + ta * 2 + tb));
  tg_tensor *A = tg_requires_grad(tape, operand(tape, M, K, ta));
  tg_tensor *B = tg_requires_grad(tape, operand(tape, K, N, tb));
  tg_tensor *G = operand(tape, M, N, 0);
  ck_assert_int_eq(tg_backward(tape, tg_matmul_t(tape, A, B, ta, tb), G), TG_OK);
  mismatch da = {0}, db = {0};
  for (int64_t m = 0; m < M; m += 3)
    for (int64_t k = 0; k < K; k++) {
      double s = 0, mag = 0;
      for (int64_t n = 0; n < N; n++) {
        double p = tg_at(G, m * N + n) * elem(B, tb, k, n);
        s += p;
        mag += fabs(p);
      }
      compare(&da, m, k, tg_at(A->grad, ta ? k * M + m : m * K + k), s,
              4 * sqrt((double)N) * U_REAL * mag + DBL_MIN);
    }
  for (int64_t k = 0; k < K; k += 5)
    for (int64_t n = 0; n < N; n++) {
      double s = 0, mag = 0;
      for (int64_t m = 0; m < M; m++) {
        double p = elem(A, ta, m, k) * tg_at(G, m * N + n);
        s += p;
        mag += fabs(p);
      }
      compare(&db, k, n, tg_at(B->grad, tb ? n * K + k : k * N + n), s,
              4 * sqrt((double)M) * U_REAL * mag + DBL_MIN);
    }
  ck_assert_msg(da.count == 0, "ta %d tb %d: dA at op index (%lld, %lld) = %.17g, want %.17g", ta,
                tb, (long long)da.i, (long long)da.j, da.got, da.want);
  ck_assert_msg(db.count == 0, "ta %d tb %d: dB at op index (%lld, %lld) = %.17g, want %.17g", ta,
                tb, (long long)db.i, (long long)db.j, db.got, db.want);
  tg_tape_free(tape);
}

START_TEST(test_backward_values) {
  for (int t = 0; t < 4; t++)
    check_backward(100, 50, 784, t >> 1, t & 1);
}
END_TEST

/* Only the inputs that need a gradient get one; an owned parameter's
 * gradient buffer accumulates dW = Xᵀ·dY. */
START_TEST(test_backward_into_param) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = tg_tensor_new((int64_t[]){4, 3}, 2, 1, "W", NULL); /* (4, 3) */
  tu_fill_uniform(W, tg_tape_rng(tape), -1, 1);
  tg_tensor *x = operand(tape, 2, 4, 0);  /* (2, 4), no gradient */
  tg_tensor *dy = operand(tape, 2, 3, 0); /* (2, 3) */
  tg_tensor *y = tg_matmul(tape, x, W);
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_OK);
  ck_assert_ptr_null(x->grad);
  double want[12];
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 3; j++)
      want[k * 3 + j] = tg_at(x, k) * tg_at(dy, j) + tg_at(x, 4 + k) * tg_at(dy, 3 + j);
  tu_assert_values(W->grad, want, TU_VALUE_TOL);
  /* A second backward before a reset adds again. */
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_OK);
  for (int i = 0; i < 12; i++)
    want[i] *= 2;
  tu_assert_values(W->grad, want, TU_VALUE_TOL);
  tg_tape_free(tape);
  tg_tensor_free(W);
}
END_TEST

/* tg_backward has the product's rule add a parameter's gradient straight
 * into its buffer (tg_grad_into) instead of returning it for the engine to
 * add. From a zeroed buffer that must give the bits of the gradient
 * tg_grad returns (the engine's path, checked against loops above), on 1
 * and on 2 threads, including a dB whose inner dimension is split into
 * slices (dB = Aᵀ·dY over 8192 rows). A buffer holding a gradient gets the
 * sum, and a parameter in two products gets both. */
static void check_into(int64_t M, int64_t N, int64_t K, int ta, int tb, int threads, int again) {
  omp_set_num_threads(threads);
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, (uint64_t)(M + N + K + ta * 2 + tb));
  /* Arena memory that is not zero, for the products' scratch. */
  ck_assert_ptr_nonnull(tg_full(tape, (int64_t[]){1 << 23}, 1, 7));
  tg_tape_reset(tape);
  int64_t sa[2] = {ta ? K : M, ta ? M : K}, sb[2] = {tb ? N : K, tb ? K : N};
  tg_tensor *A = tg_tensor_new(sa, 2, 1, "A", NULL), *B = tg_tensor_new(sb, 2, 1, "B", NULL);
  ck_assert(A && B && A->grad && B->grad);
  tu_fill_uniform(A, tg_tape_rng(tape), -1, 1);
  tu_fill_uniform(B, tg_tape_rng(tape), -1, 1);
  tg_tensor *dy = operand(tape, M, N, 0);
  tg_tensor *y = tg_matmul_t(tape, A, B, ta, tb), *g[2];
  ck_assert_int_eq(tg_grad(tape, y, dy, 2, (tg_tensor *[]){A, B}, g, 0), TG_OK);
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_OK);
  char what[96];
  snprintf(what, sizeof what, "(%lld, %lld, %lld) ta %d tb %d on %d threads", (long long)M,
           (long long)N, (long long)K, ta, tb, threads);
  ck_assert_msg(memcmp(A->grad->data, g[0]->data, (size_t)A->numel * sizeof(tg_real)) == 0 &&
                    memcmp(B->grad->data, g[1]->data, (size_t)B->numel * sizeof(tg_real)) == 0,
                "%s: the gradients added into the buffers differ from tg_grad's", what);
  /* Again without zeroing, and B in a second product: the buffers sum. */
  if (!again) {
    tg_tape_free(tape);
    tg_tensor_free(A);
    tg_tensor_free(B);
    return;
  }
  tg_tensor *y2 = tg_add(tape, tg_matmul_t(tape, A, B, ta, tb), tg_matmul_t(tape, A, B, ta, tb));
  ck_assert_int_eq(tg_backward(tape, y2, dy), TG_OK);
  mismatch bad = {0};
  for (int k = 0; k < 2; k++) {
    const tg_tensor *buf = k ? B->grad : A->grad, *gk = g[k];
    for (int64_t i = 0; i < gk->numel; i++) {
      double want = 3 * tg_at(gk, i), tol = 1e-4 * (fabs(want) + 1);
      compare(&bad, k, i, tg_at(buf, i), want, tol);
    }
  }
  ck_assert_msg(bad.count == 0, "%s: %lld elements are not 3 gradients; %s[%lld] = %.9g, want %.9g",
                what, (long long)bad.count, bad.i ? "dB" : "dA", (long long)bad.j, bad.got,
                bad.want);
  tg_tape_free(tape);
  tg_tensor_free(A);
  tg_tensor_free(B);
}

START_TEST(test_backward_into_buffer) {
  for (int t = 0; t < 4; t++)
    check_into(70, 40, 600, t >> 1, t & 1, 1, 1); /* row tiles, K chunks */
  /* Products of 2e7 flops and more, threaded (slow under valgrind: once). */
  check_into(37, 300, 1000, 1, 1, 2, 0); /* ragged tiles, Bᵀ made by the threads */
  check_into(8192, 128, 16, 0, 0, 1, 0); /* dB = Aᵀ·dY in K slices */
  check_into(8192, 128, 16, 0, 0, 2, 0);
  for (int t = 0; t < 4; t++) /* the TwoLayerNet's columns past 48 */
    check_into(100, 50, 784, t >> 1, t & 1, 1, 1);
}
END_TEST

/* Grad of grad. For y = A·B seeded with W: gA = W·Bᵀ and gB = Aᵀ·W. Then
 * L2 = Σ V ⊙ gA gives dL2/dB = Vᵀ·W (and nothing for A), and
 * L3 = Σ V' ⊙ gB gives dL3/dA = W·V'ᵀ. With A = [[1, 2], [3, 4]],
 * B = [[5, 6], [7, 8]], W = [[1, 2], [3, 4]], V = [[1, 2], [0, 1]]:
 * gA = [[17, 23], [39, 53]], Vᵀ·W = [[1, 2], [5, 8]]. */
START_TEST(test_second_order) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *A =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4}));
  tg_tensor *B =
      tg_requires_grad(tape, tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){5, 6, 7, 8}));
  tg_tensor *W = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
  tg_tensor *V = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 0, 1});
  tg_tensor *y = tg_matmul(tape, A, B);
  tg_tensor *xs[2] = {A, B}, *g[2];
  ck_assert_int_eq(tg_grad(tape, y, W, 2, xs, g, 1), TG_OK);
  tu_assert_values(g[0], ((double[]){17, 23, 39, 53}), TU_VALUE_TOL);
  tu_assert_values(g[1], ((double[]){10, 14, 14, 20}), TU_VALUE_TOL); /* Aᵀ·W */
  ck_assert_msg(g[0]->flags & TG_REQUIRES_GRAD, "gA was not recorded with create_graph");
  ck_assert_int_eq(tg_backward(tape, g[0], V), TG_OK);
  tu_assert_values(B->grad, ((double[]){1, 2, 5, 8}), TU_VALUE_TOL);
  ck_assert_ptr_null(A->grad);
  /* L3 = Σ V ⊙ gB: dL3/dA = W·Vᵀ = [[5, 2], [11, 4]]. */
  ck_assert_int_eq(tg_backward(tape, g[1], V), TG_OK);
  tu_assert_values(A->grad, ((double[]){5, 2, 11, 4}), TU_VALUE_TOL);
  tg_tape_free(tape);
}
END_TEST

/* The same through every transpose combination: C = op(A)·op(B) seeded
 * with W gives ∂/∂op(A) = W·op(B)ᵀ, stored like A; with V stored like A,
 * L2 = Σ V ⊙ gA = Σ_{m,k,n} op(V)[m][k]·W[m][n]·op(B)[k][n], so
 * dL2/d op(B) = op(V)ᵀ·W, written back in B's stored layout. */
START_TEST(test_second_order_transposed) {
  const int64_t M = 3, K = 4, N = 5;
  for (int t = 0; t < 4; t++) {
    int ta = t >> 1, tb = t & 1;
    tg_tape *tape = tg_tape_new();
    tg_tape_seed(tape, (uint64_t)(40 + t));
    tg_tensor *A = tg_requires_grad(tape, operand(tape, M, K, ta));
    tg_tensor *B = tg_requires_grad(tape, operand(tape, K, N, tb));
    tg_tensor *W = operand(tape, M, N, 0);
    tg_tensor *V = operand(tape, M, K, ta); /* stored like A */
    tg_tensor *xs[1] = {A}, *g[1];
    ck_assert_int_eq(tg_grad(tape, tg_matmul_t(tape, A, B, ta, tb), W, 1, xs, g, 1), TG_OK);
    ck_assert_int_eq(tg_backward(tape, g[0], V), TG_OK);
    double want[20];
    for (int64_t k = 0; k < K; k++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t m = 0; m < M; m++)
          s += elem(V, ta, m, k) * tg_at(W, m * N + n);
        want[tb ? n * K + k : k * N + n] = s;
      }
    tu_assert_values(B->grad, want, TU_VALUE_TOL);
    ck_assert_ptr_null(A->grad);
    tg_tape_free(tape);
  }
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors */

START_TEST(test_error_inner) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *x = tg_requires_grad(tape, tg_zeros(tape, (int64_t[]){100, 784}, 2));
  tg_tensor *w = tg_zeros(tape, (int64_t[]){784, 50}, 2);
  tg_tensor *bad = tg_zeros(tape, (int64_t[]){785, 50}, 2);
  ck_assert_ptr_nonnull(tg_matmul(tape, x, w)); /* recorded: op #0 */
  ck_assert_ptr_null(tg_matmul(tape, x, bad));
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_SHAPE);
  ck_assert_str_eq(tg_tape_error(tape),
                   "matmul (op #1): inner dimensions differ: (100, 784) @ (785, 50)");
  /* The tape stays failed: the next op returns NULL and the first message
   * is kept. */
  ck_assert_ptr_null(tg_matmul(tape, x, w));
  tu_assert_error(tape, "(100, 784) @ (785, 50)");
  tg_tape_reset(tape);

  x = tg_zeros(tape, (int64_t[]){784, 100}, 2);
  bad = tg_zeros(tape, (int64_t[]){50, 785}, 2);
  ck_assert_ptr_null(tg_matmul_t(tape, x, bad, 1, 1));
  ck_assert_str_eq(tg_tape_error(tape),
                   "matmul (op #0): inner dimensions differ: (784, 100)^T @ (50, 785)^T");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_ndim) {
  tg_tape *tape = tg_tape_new();
  /* tg_matmul takes other ranks (test_newops.c); matmul_t does not. */
  tg_tensor *a3 = tg_zeros(tape, (int64_t[]){2, 3, 4}, 3);
  tg_tensor *b = tg_zeros(tape, (int64_t[]){4, 5}, 2);
  ck_assert_ptr_null(tg_matmul_t(tape, a3, b, 0, 0));
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_SHAPE);
  tu_assert_error(tape, "matmul (op #0)", "2-D", "(2, 3, 4) @ (4, 5)");
  tg_tape_reset(tape);

  tg_tensor *v = tg_zeros(tape, (int64_t[]){4}, 1);
  b = tg_zeros(tape, (int64_t[]){4, 5}, 2);
  ck_assert_ptr_null(tg_matmul_t(tape, b, v, 1, 0));
  tu_assert_error(tape, "2-D", "(4, 5)^T @ (4,)");
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_matmul(tape, tg_scalar(tape, 2), tg_scalar(tape, 3)));
  tu_assert_error(tape, "1-D", "() @ ()");
  tg_tape_free(tape);
}
END_TEST

START_TEST(test_error_null) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_zeros(tape, (int64_t[]){2, 2}, 2);
  ck_assert_ptr_null(tg_matmul(NULL, a, a));
  ck_assert_ptr_null(tg_matmul(tape, NULL, a));
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_NULL);
  tu_assert_error(tape, "matmul (op #0)", "input 0 is NULL");
  tg_tape_reset(tape);
  a = tg_zeros(tape, (int64_t[]){2, 2}, 2);
  ck_assert_ptr_null(tg_matmul_t(tape, a, NULL, 1, 1));
  tu_assert_error(tape, "input 1 is NULL");
  tg_tape_free(tape);
}
END_TEST

/* Anomaly mode names the op whose output holds NaN. */
START_TEST(test_anomaly) {
  tg_tape *tape = tg_tape_new();
  tg_tape_set_anomaly(tape, 1);
  tg_tensor *a = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, NAN, 3, 4});
  tg_tensor *b = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 0, 0, 1});
  ck_assert_ptr_null(tg_matmul(tape, a, b));
  ck_assert_int_eq(tg_tape_status(tape), TG_ERR_ANOMALY);
  tu_assert_error(tape, "matmul (op #0)", "NaN");
  tg_tape_free(tape);
}
END_TEST

/* With grad mode off nothing is recorded. */
/* In anomaly mode a weight's gradient is checked before it reaches the
 * buffer: the product's rule is not offered the buffer there, so a NaN in
 * dW is named and the buffer keeps its zeros. */
START_TEST(test_anomaly_in_backward) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *W = tg_tensor_new((int64_t[]){2, 2}, 2, 1, "W", NULL); /* (2, 2) */
  ck_assert(tape && W && W->grad);
  tg_tape_set_anomaly(tape, 1);
  tg_tensor *x = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, 2, 3, 4});
  tg_tensor *dy = tg_from_values(tape, (int64_t[]){2, 2}, 2, (double[]){1, NAN, 0, 1});
  tg_tensor *y = tg_matmul(tape, x, W);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(tg_backward(tape, y, dy), TG_ERR_ANOMALY);
  tu_assert_error(tape, "matmul (op #", "NaN");
  for (int i = 0; i < 4; i++)
    ck_assert(tg_at(W->grad, i) == 0);
  tg_tape_free(tape);
  tg_tensor_free(W);
}
END_TEST

START_TEST(test_no_grad) {
  tg_tape *tape = tg_tape_new();
  tg_tensor *a = tg_requires_grad(tape, operand(tape, 3, 4, 0));
  tg_tape_set_grad(tape, 0);
  tg_tensor *b = operand(tape, 4, 2, 0);
  tg_tensor *c = tg_matmul(tape, a, b);
  ck_assert_ptr_nonnull(c);
  ck_assert_int_eq(tg_tape_get_stats(tape).nodes, 0);
  ck_assert_msg(!(c->flags & TG_REQUIRES_GRAD), "output requires grad in no-grad mode");
  tg_tape_free(tape);
}
END_TEST

/* ------------------------------------------------------------------------
 * Threads: the tiling depends on the shape only and each element is
 * computed by the same kernel calls on whichever thread, so the results on
 * 1 and 2 threads must be bitwise equal (not merely close). The shapes
 * are above the one-thread limit of 20 MFLOP: row and column tiles, the
 * transposition of B by the threads or before them, and the K split with
 * partial sums. */

static void check_threads(int64_t M, int64_t N, int64_t K, int ta, int tb) {
  tg_tape *tape = tg_tape_new();
  tg_tape_seed(tape, 99);
  tg_tensor *a = operand(tape, M, K, ta), *b = operand(tape, K, N, tb);
  omp_set_num_threads(1);
  tg_tensor *c1 = tg_matmul_t(tape, a, b, ta, tb);
  omp_set_num_threads(2);
  ck_assert_int_eq(omp_get_max_threads(), 2);
  tg_tensor *c2 = tg_matmul_t(tape, a, b, ta, tb);
  ck_assert_msg(c1 && c2, "%s", tg_tape_error(tape));
  mismatch bad = {0};
  for (int64_t i = 0; i < c1->numel; i++)
    compare(&bad, i, 0, tg_at(c2, i), tg_at(c1, i), 0);
  ck_assert_msg(bad.count == 0,
                "(%lld, %lld, %lld) ta %d tb %d: %lld elements differ; element %lld is %.17g on "
                "1 thread, %.17g on 2",
                (long long)M, (long long)N, (long long)K, ta, tb, (long long)bad.count,
                (long long)bad.i, bad.want, bad.got);
  check_product(c2, a, b, ta, tb, 7, "threaded");
  tg_tape_free(tape);
}

START_TEST(test_thread_count) {
  for (int t = 0; t < 4; t++)
    check_threads(200, 100, 784, t >> 1, t & 1);
  check_threads(25, 30, 57600, 1, 0);
  check_threads(300, 1000, 200, 0, 1); /* Bᵀ made by the threads, by column tiles */
  check_threads(100, 4320, 100, 0, 1);
  check_threads(2000, 100, 300, 0, 1); /* one column tile: Bᵀ made first */
  for (int t = 0; t < 4; t++)          /* columns past 48, in their own work items */
    check_threads(300, 50, 784, t >> 1, t & 1);
}
END_TEST

/* The OpenBLAS path: products from 5 MFLOP up when libxsmm targets AVX2
 * (older CPUs; valgrind), which the engine reads per product. Retargeting
 * libxsmm makes any x86 machine take it (AVX2 code runs on AVX-512). */
START_TEST(test_blas_path) {
  const int was = libxsmm_get_target_archid(); /* initialises libxsmm first */
  libxsmm_set_target_archid(LIBXSMM_X86_AVX2);
  check_all_transposes(400, 390, 385, 7);
  check_all_transposes(100, 50, 784, 1);
  for (int t = 0; t < 4; t++) {
    check_threads(200, 100, 784, t >> 1, t & 1);
    check_into(100, 50, 784, t >> 1, t & 1, 1, t == 0); /* beta 1 through BLAS */
  }
  /* Still the JIT there: a small product, and one split along K. */
  check_all_transposes(64, 64, 64, 1);
  check_shape(25, 30, 57600, 1, 0, 1);
  libxsmm_set_target_archid(was);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *make_suite(void) {
  Suite *s = suite_create("matmul");
  TCase *fwd = tcase_create("forward");
  tcase_add_test(fwd, test_hand_values);
  tcase_add_test(fwd, test_small_shapes);
  tcase_add_test(fwd, test_around_64);
  tcase_add_test(fwd, test_ragged_tiles);
  tcase_add_test(fwd, test_book_affine);
  tcase_add_test(fwd, test_remainder_columns);
  tcase_add_test(fwd, test_book_conv);
  tcase_add_test(fwd, test_book_fc);
  suite_add_tcase(s, fwd);

  TCase *grad = tcase_create("gradient");
  tcase_add_test(grad, test_gradcheck);
  tcase_add_test(grad, test_backward_values);
  tcase_add_test(grad, test_backward_into_param);
  tcase_add_test(grad, test_backward_into_buffer);
  tcase_add_test(grad, test_second_order);
  tcase_add_test(grad, test_second_order_transposed);
  suite_add_tcase(s, grad);

  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_error_inner);
  tcase_add_test(err, test_error_ndim);
  tcase_add_test(err, test_error_null);
  tcase_add_test(err, test_anomaly);
  tcase_add_test(err, test_anomaly_in_backward);
  tcase_add_test(err, test_no_grad);
  suite_add_tcase(s, err);

  TCase *thr = tcase_create("engines");
  tcase_add_test(thr, test_thread_count);
  tcase_add_test(thr, test_blas_path);
  suite_add_tcase(s, thr);
  return s;
}

TU_MAIN(make_suite)
