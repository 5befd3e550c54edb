/* test_dist.c — the single-process side of data-parallel training: the
 * flat gradient buffer, and the shards' fixed-order sum.
 *
 * The sums are checked bit for bit against the level-by-level pairwise
 * tree written out again here one element at a time, never against
 * reduce.c's stack. Nothing here starts MPI (Check forks each test):
 * shards run with no job (one process), and the stub is tested only in a
 * build without MPI. tests/dist_test.sh covers the ranks.
 */
#include "testutil.h"

/* ------------------------------------------------------------------------
 * The flat gradient buffer */

START_TEST(test_flatten_keeps_values_and_aligns) {
  tg_params p = {0};
  tg_error err = {0};
  tg_tensor *W = tg_params_new(&p, "W", (int64_t[]){3, 5}, 2, 1, &err); /* (3, 5) */
  tg_tensor *m = tg_params_new(&p, "m", (int64_t[]){4}, 1, 0, &err);    /* no grad */
  tg_tensor *b = tg_params_new(&p, "b", (int64_t[]){5}, 1, 1, &err);    /* (5,) */
  tg_tensor *c = tg_params_new(&p, "c", (int64_t[]){1}, 1, 1, &err);    /* (1,) */
  ck_assert_msg(W && m && b && c, "%s", err.msg);
  for (int i = 0; i < 15; i++)
    W->grad->data[i] = (tg_real)(i + 1);
  for (int i = 0; i < 5; i++)
    b->grad->data[i] = (tg_real)(-i - 1);
  c->grad->data[0] = 42;

  ck_assert_int_eq(tg_params_flatten_grads(&p, 6, &err), TG_OK);
  const int64_t q = TG_ALIGN / (int64_t)sizeof(tg_real); /* elements per 64 bytes */
  const int64_t up15 = (15 + q - 1) / q * q, up5 = (5 + q - 1) / q * q, up1 = q;
  ck_assert_int_eq(p.grad_flat_n, up15 + up5 + up1);
  ck_assert_int_eq(p.grad_flat_extra, 6);
  ck_assert_ptr_eq(W->grad->data, p.grad_flat);
  ck_assert_ptr_eq(b->grad->data, p.grad_flat + up15);
  ck_assert_ptr_eq(c->grad->data, p.grad_flat + up15 + up5);
  ck_assert_ptr_null(m->grad);
  for (tg_tensor *t = W; t; t = t == W ? b : t == b ? c : NULL) {
    ck_assert_int_eq((uintptr_t)t->grad->data % TG_ALIGN, 0);
    ck_assert(t->grad->flags & TG_VIEW);
    ck_assert(tg_shape_eq(t, t->grad));
  }
  for (int i = 0; i < 15; i++)
    ck_assert(W->grad->data[i] == (tg_real)(i + 1));
  for (int i = 0; i < 5; i++)
    ck_assert(b->grad->data[i] == (tg_real)(-i - 1));
  ck_assert(c->grad->data[0] == 42);
  /* The padding and the extra elements start at zero. */
  for (int64_t i = 15; i < up15; i++)
    ck_assert(p.grad_flat[i] == 0);
  for (int64_t i = 0; i < 6; i++)
    ck_assert(p.grad_flat[p.grad_flat_n + i] == 0);

  tg_params_zero_grad(&p);
  for (int64_t i = 0; i < p.grad_flat_n; i++)
    ck_assert(p.grad_flat[i] == 0);
  ck_assert_int_eq(tg_params_flatten_grads(&p, 0, &err), TG_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(err.msg, "flat already"));
  tg_params_free(&p);
  ck_assert_ptr_null(p.grad_flat);
  ck_assert_ptr_nonnull(tg_params_new(&p, "W", (int64_t[]){2}, 1, 1, &err));
  tg_error e2 = {0};
  ck_assert_int_eq(tg_params_flatten_grads(&p, -1, &e2), TG_ERR_ARG);
  ck_assert_ptr_null(p.grad_flat);
  ck_assert_int_eq(tg_params_flatten_grads(NULL, 0, &e2), TG_ERR_NULL);
  tg_params_free(&p);
}
END_TEST

/* A two-layer net's weights after a few Adam steps, with or without flat
 * gradients: the same bits. */
static void train_small(int flat, tg_params *p) {
  tg_error err = {0};
  tg_rng rng;
  tg_rng_seed(&rng, 7);
  tg_tensor *W1 = tg_params_new(p, "W1", (int64_t[]){6, 8}, 2, 1, &err); /* (6, 8) */
  tg_tensor *b1 = tg_params_new(p, "b1", (int64_t[]){8}, 1, 1, &err);
  tg_tensor *W2 = tg_params_new(p, "W2", (int64_t[]){8, 3}, 2, 1, &err); /* (8, 3) */
  tg_tensor *b2 = tg_params_new(p, "b2", (int64_t[]){3}, 1, 1, &err);
  ck_assert_msg(W1 && b1 && W2 && b2, "%s", err.msg);
  tg_init_he(W1, 6, &rng);
  tg_init_he(W2, 8, &rng);
  if (flat)
    ck_assert_int_eq(tg_params_flatten_grads(p, 0, &err), TG_OK);
  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  tg_optim *o = tg_optim_new(&c, p, &err);
  tg_tape *tape = tg_tape_new();
  ck_assert(o && tape);
  for (int s = 0; s < 5; s++) {
    tg_tensor *x = tg_empty(tape, (int64_t[]){10, 6}, 2); /* (10, 6) */
    tg_tensor *t = tg_empty(tape, (int64_t[]){10}, 1);    /* (10,) */
    tu_fill_signed(x, &rng, 0.1, 2);
    for (int i = 0; i < 10; i++)
      t->data[i] = (tg_real)(i % 3);
    tg_tensor *h = tg_relu(tape, tg_affine(tape, x, W1, b1));
    tg_tensor *l = tg_softmax_cross_entropy(tape, tg_affine(tape, h, W2, b2), t);
    ck_assert_msg(l && tg_backward(tape, l, NULL) == TG_OK, "%s", tg_tape_error(tape));
    tg_optim_step(o);
    tg_tape_reset(tape);
  }
  tg_optim_free(o);
  tg_tape_free(tape);
}

START_TEST(test_flat_gradients_change_no_result) {
  tg_params a = {0}, b = {0};
  train_small(0, &a);
  train_small(1, &b);
  ck_assert_ptr_null(a.grad_flat);
  ck_assert_ptr_nonnull(b.grad_flat);
  for (int i = 0; i < a.n; i++)
    ck_assert_msg(memcmp(a.items[i]->data, b.items[i]->data,
                         (size_t)a.items[i]->numel * sizeof(tg_real)) == 0,
                  "%s differs", a.items[i]->name);
  tg_params_free(&a);
  tg_params_free(&b);
}
END_TEST

/* ------------------------------------------------------------------------
 * Shards */

/* Shard k's value of element i: six decades of magnitude, so that the
 * order of additions shows in the bits. */
static tg_real shard_value(int k, int64_t i) {
  tg_rng r;
  tg_rng_seed(&r, 100u * (uint64_t)k + (uint64_t)i);
  return (tg_real)(tg_rng_normal(&r) * pow(10.0, 6 * tg_rng_uniform(&r) - 3));
}

/* The level-by-level pairwise tree over V shards, divided by V. */
static tg_real tree_mean(int V, int64_t i, tg_real *rank_order) {
  tg_real v[64], serial = 0;
  for (int k = 0; k < V; k++) {
    v[k] = shard_value(k, i);
    serial += v[k];
  }
  for (int m = V; m > 1;) {
    int n = 0;
    for (int j = 0; j < m; j += 2)
      v[n++] = j + 1 < m ? v[j] + v[j + 1] : v[j];
    m = n;
  }
  *rank_order = serial / (tg_real)V;
  return v[0] / (tg_real)V;
}

START_TEST(test_shards_sum_in_the_pairwise_tree) {
  int order_matters = 0;
  for (int V = 1; V <= 17; V++) {
    tg_params p = {0}, buf = {0};
    tg_error err = {0};
    tg_tensor *g = tg_params_new(&p, "g", (int64_t[]){37}, 1, 1, &err);  /* (37,) */
    tg_tensor *r = tg_params_new(&buf, "r", (int64_t[]){3}, 1, 0, &err); /* (3,) buffer */
    ck_assert_msg(g && r, "%s", err.msg);
    for (int i = 0; i < 3; i++)
      r->data[i] = (tg_real)(10 + i);
    tg_dist_shards *s = tg_dist_shards_new(NULL, &p, &buf, V, &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    int first = -1, count = -1;
    tg_dist_shard_range(s, &first, &count);
    ck_assert(first == 0 && count == V);
    for (int step = 0; step < 2; step++) { /* the second step reuses the stack */
      for (int i = 0; i < 3; i++)
        r->data[i] = (tg_real)(10 + i);
      tg_dist_shard_begin(s);
      for (int k = 0; k < V; k++) {
        /* Every shard starts from zero gradients and the step's buffers. */
        for (int i = 0; i < 37; i++)
          ck_assert(g->grad->data[i] == 0);
        for (int i = 0; i < 3; i++)
          ck_assert(r->data[i] == (tg_real)(10 + i));
        for (int i = 0; i < 37; i++)
          g->grad->data[i] = shard_value(k, i);
        for (int i = 0; i < 3; i++)
          r->data[i] = shard_value(k, 1000 + i); /* as a forward pass updates it */
        ck_assert_int_eq(tg_dist_shard_accumulate(s, &err), TG_OK);
      }
      ck_assert_int_eq(tg_dist_shard_allreduce(s, &err), TG_OK);
      for (int i = 0; i < 37; i++) {
        tg_real serial, want = tree_mean(V, i, &serial);
        ck_assert_msg(memcmp(&want, &g->grad->data[i], sizeof want) == 0,
                      "V = %d, element %d: %.9g, the tree gives %.9g", V, i,
                      (double)g->grad->data[i], (double)want);
        order_matters += serial != want;
      }
      for (int i = 0; i < 3; i++) {
        tg_real serial, want = tree_mean(V, 1000 + i, &serial);
        ck_assert_msg(memcmp(&want, &r->data[i], sizeof want) == 0, "V = %d, buffer %d", V, i);
      }
    }
    tg_dist_shards_free(s);
    tg_params_free(&p);
    tg_params_free(&buf);
  }
  /* The comparison can see an order change: rank order differs. */
  ck_assert_int_gt(order_matters, 0);
}
END_TEST

START_TEST(test_shard_errors) {
  tg_params p = {0}, buf = {0};
  tg_error err = {0};
  ck_assert_ptr_nonnull(tg_params_new(&p, "w", (int64_t[]){4}, 1, 1, &err));
  ck_assert_ptr_nonnull(tg_params_new(&buf, "r", (int64_t[]){2}, 1, 0, &err));
  ck_assert_ptr_null(tg_dist_shards_new(NULL, &p, NULL, 0, &err));
  ck_assert_int_eq(err.status, TG_ERR_ARG);
  err = (tg_error){0};
  ck_assert_ptr_null(tg_dist_shards_new(NULL, NULL, NULL, 2, &err));
  ck_assert_int_eq(err.status, TG_ERR_ARG);

  /* Flat already, without room for the buffers. */
  err = (tg_error){0};
  ck_assert_int_eq(tg_params_flatten_grads(&p, 1, &err), TG_OK);
  ck_assert_ptr_null(tg_dist_shards_new(NULL, &p, &buf, 2, &err));
  ck_assert_ptr_nonnull(strstr(err.msg, "room for 1 buffer elements"));

  err = (tg_error){0};
  tg_dist_shards *s = tg_dist_shards_new(NULL, &p, NULL, 2, &err);
  ck_assert_msg(s != NULL, "%s", err.msg);
  tg_dist_shard_begin(s);
  ck_assert_int_eq(tg_dist_shard_accumulate(s, &err), TG_OK);
  ck_assert_int_eq(tg_dist_shard_allreduce(s, &err), TG_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(err.msg, "1 of this rank's 2 shards"));
  err = (tg_error){0};
  ck_assert_int_eq(tg_dist_shard_accumulate(s, &err), TG_OK);
  ck_assert_int_eq(tg_dist_shard_accumulate(s, &err), TG_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(err.msg, "2 shards a step"));
  tg_dist_shards_free(s);
  tg_dist_shards_free(NULL);
  tg_params_free(&p);
  tg_params_free(&buf);
}
END_TEST

/* ------------------------------------------------------------------------
 * The job without MPI */

START_TEST(test_single_rank_job) {
  tg_error err = {0};
  ck_assert_int_eq(tg_dist_rank(NULL), 0);
  ck_assert_int_eq(tg_dist_size(NULL), 1);
#ifdef TG_HAVE_MPI
  ck_assert_int_eq(tg_dist_available(), 1);
#else
  ck_assert_int_eq(tg_dist_available(), 0);
  tg_dist *d = tg_dist_new(NULL, NULL, NULL, &err);
  ck_assert_msg(d != NULL, "%s", err.msg);
  ck_assert_int_eq(tg_dist_size(d), 1);
  ck_assert_int_eq(tg_dist_rank(d), 0);
  tg_real x[3] = {1.5, -2, 3};
  ck_assert_int_eq(tg_dist_allreduce(d, x, 3, &err), TG_OK);
  ck_assert(x[0] == (tg_real)1.5 && x[1] == -2 && x[2] == 3);
  tg_dist_field f[] = {{"seed", "1"}};
  ck_assert_int_eq(tg_dist_check_config(d, f, 1, &err), TG_OK);
  tg_dist_free(d);
#endif
  ck_assert_ptr_null(tg_dist_new(NULL, NULL, &(tg_dist_options){.bucket_bytes = -1}, &err));
  ck_assert_int_eq(err.status, TG_ERR_ARG);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("dist");
  TCase *tc = tcase_create("flat");
  tcase_add_test(tc, test_flatten_keeps_values_and_aligns);
  tcase_add_test(tc, test_flat_gradients_change_no_result);
  suite_add_tcase(s, tc);
  tc = tcase_create("shards");
  tcase_add_test(tc, test_shards_sum_in_the_pairwise_tree);
  tcase_add_test(tc, test_shard_errors);
  tcase_add_test(tc, test_single_rank_job);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
