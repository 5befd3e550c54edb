/* test_checkpoint.c — saving and loading checkpoints: round trips are
 * bit-exact, the format is checked against bytes assembled here by hand
 * from its description (not by the saver), other precisions and the
 * metadata load, and a checkpoint of another model is refused naming the
 * first mismatch, with every tensor left as it was.
 * test_checkpoint_damage.c holds damaged files and safe saves. Every
 * file lives in a fresh mkdtemp directory, removed at the end of the test.
 */
#include "checkpoint_test_helpers.h"

/* ------------------------------------------------------------------------
 * Round trips and the layout */

START_TEST(test_round_trip_bit_exact) {
  const char *path = tu_path("mlp.ckpt");
  model a, b;
  model_make(&a, 5, NULL, 1);
  model_train(&a, 10);
  model_train(&a, 11);
  const char *meta = "model=mlp hidden=5 optim=adam\nseed=1";
  tg_error err = {0};
  ck_assert_msg(tg_checkpoint_save(path, meta, a.lists, 3, &err) == TG_OK, "%s", err.msg);
  ck_assert_int_eq(tmp_count(".tmp."), 0);

  char got[TG_CHECKPOINT_META_MAX];
  ck_assert_msg(tg_checkpoint_read_meta(path, got, sizeof got, &err) == TG_OK, "%s", err.msg);
  ck_assert_str_eq(got, meta);

  model_make(&b, 5, NULL, 2); /* other values everywhere */
  ck_assert_msg(tg_checkpoint_load(path, b.lists, 3, &err) == TG_OK, "%s", err.msg);
  assert_models_equal(&a, &b);
  tg_optim_sync_step(b.opt);
  ck_assert_int_eq(b.opt->step, 2);

  /* Training resumes exactly where it stopped. */
  model_train(&a, 12);
  model_train(&b, 12);
  assert_models_equal(&a, &b);
  ck_assert_int_eq(b.opt->step, 3);

  model_free(&a);
  model_free(&b);
}
END_TEST

/* The saver's bytes equal the layout written out by hand. */
START_TEST(test_layout_by_hand) {
  const char *path = tu_path("tiny.ckpt");
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 1, NULL);
  tg_tensor *s = tg_params_new(&p, "s", NULL, 0, 0, NULL); /* a scalar */
  w->data[0] = 1.5;
  w->data[1] = -2;
  s->data[0] = 0.25;
  tg_params *lists[] = {&p};
  tg_error err = {0};
  ck_assert_msg(tg_checkpoint_save(path, "m", lists, 1, &err) == TG_OK, "%s", err.msg);

  bytes x = {0};
  b_header(&x, 1, sizeof(tg_real), "m", 2);
  b_tensor_head(&x, "w", 1, (int64_t[]){2});
  if (sizeof(tg_real) == 8) {
    b_f64(&x, 1.5);
    b_f64(&x, -2);
  } else {
    b_f32(&x, 1.5f);
    b_f32(&x, -2);
  }
  b_tensor_head(&x, "s", 0, NULL);
  if (sizeof(tg_real) == 8)
    b_f64(&x, 0.25);
  else
    b_f32(&x, 0.25f);
  b_crc(&x);

  size_t n;
  unsigned char *f = tu_slurp(path, &n);
  ck_assert_int_eq(n, x.n);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(f[i] == x.b[i], "byte %zu: 0x%02x, want 0x%02x", i, f[i], x.b[i]);
  free(f);
  tg_params_free(&p);
}
END_TEST

/* Files written by the other precision's build load converted. */
START_TEST(test_load_other_precision) {
  const char *path = tu_path("prec.ckpt");
  for (int es = 4; es <= 8; es += 4) {
    bytes x = {0};
    b_header(&x, 1, (uint32_t)es, "", 1);
    b_tensor_head(&x, "w", 2, (int64_t[]){1, 3});
    const double v[3] = {0.1, -3.75, 1e30};
    for (int i = 0; i < 3; i++)
      es == 4 ? b_f32(&x, (float)v[i]) : b_f64(&x, v[i]);
    b_crc(&x);
    tu_spit(path, x.b, x.n, 0);

    tg_params p = {0};
    tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){1, 3}, 2, 1, NULL);
    tg_params *lists[] = {&p};
    tg_error err = {0};
    ck_assert_msg(tg_checkpoint_load(path, lists, 1, &err) == TG_OK, "es %d: %s", es, err.msg);
    for (int i = 0; i < 3; i++) {
      /* A float file holds float values; a double one rounds once to the
       * build's type. */
      tg_real want = es == 4 ? (tg_real)(float)v[i] : (tg_real)v[i];
      ck_assert_msg(w->data[i] == want, "es %d, element %d: %.17g, want %.17g", es, i,
                    (double)w->data[i], (double)want);
    }
    tg_params_free(&p);
  }
  /* A double value beyond float's range becomes an infinity in float. */
  bytes x = {0};
  b_header(&x, 1, 8, "", 1);
  b_tensor_head(&x, "w", 1, (int64_t[]){2});
  b_f64(&x, 1e300);
  b_f64(&x, -1e300);
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  tg_params *lists[] = {&p};
  ck_assert_int_eq(tg_checkpoint_load(path, lists, 1, NULL), TG_OK);
  if (sizeof(tg_real) == 4)
    ck_assert(isinf(tg_at(w, 0)) && tg_at(w, 0) > 0 && isinf(tg_at(w, 1)) && tg_at(w, 1) < 0);
  else
    ck_assert(tg_at(w, 0) == 1e300);
  tg_params_free(&p);
}
END_TEST

START_TEST(test_meta) {
  const char *path = tu_path("meta.ckpt");
  tg_params p = {0};
  tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  tg_params *lists[] = {&p};
  tg_error err = {0};

  /* NULL meta is the empty text. */
  ck_assert_int_eq(tg_checkpoint_save(path, NULL, lists, 1, &err), TG_OK);
  char buf[64] = "junk";
  ck_assert_int_eq(tg_checkpoint_read_meta(path, buf, sizeof buf, &err), TG_OK);
  ck_assert_str_eq(buf, "");

  /* The largest meta text fits; one more byte is refused. */
  char big[TG_CHECKPOINT_META_MAX + 1];
  memset(big, 'x', sizeof big);
  big[TG_CHECKPOINT_META_MAX - 1] = '\0';
  ck_assert_msg(tg_checkpoint_save(path, big, lists, 1, &err) == TG_OK, "%s", err.msg);
  char got[TG_CHECKPOINT_META_MAX];
  ck_assert_int_eq(tg_checkpoint_read_meta(path, got, sizeof got, &err), TG_OK);
  ck_assert_str_eq(got, big);
  /* A buffer too small for it is an error, not a cut text. */
  ck_assert_int_eq(tg_checkpoint_read_meta(path, buf, sizeof buf, &err), TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, "4095 bytes") && strstr(err.msg, path), "%s", err.msg);

  big[TG_CHECKPOINT_META_MAX - 1] = 'x';
  big[TG_CHECKPOINT_META_MAX] = '\0';
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_save(path, big, lists, 1, &err), TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, "meta") && strstr(err.msg, "4096"), "%s", err.msg);
  /* ...and the previous file stays. */
  ck_assert_int_eq(tg_checkpoint_read_meta(path, got, sizeof got, NULL), TG_OK);
  ck_assert_int_eq(strlen(got), TG_CHECKPOINT_META_MAX - 1);

  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_read_meta(path, NULL, 10, &err), TG_ERR_ARG);
  tg_params_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------
 * Another model: the first mismatch named, nothing changed */

START_TEST(test_other_model_is_refused) {
  const char *path = tu_path("mlp.ckpt");
  model a, b;
  model_make(&a, 5, NULL, 1);
  tg_error err = {0};
  ck_assert_msg(tg_checkpoint_save(path, "", a.lists, 3, &err) == TG_OK, "%s", err.msg);

  /* Wider hidden layer: W1 is the first tensor that differs. */
  model_make(&b, 6, NULL, 2);
  snapshot s = snap_take(&b);
  ck_assert_int_eq(tg_checkpoint_load(path, b.lists, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "W1: shape (4, 5) in the file, (4, 6) in the model") &&
                    strstr(err.msg, path),
                "%s", err.msg);
  snap_assert_same(&s, &b, "shape mismatch");
  free(s.v);
  model_free(&b);

  /* The model has a tensor the file lacks. */
  model_make(&b, 5, "b3", 2);
  s = snap_take(&b);
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_load(path, b.lists, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "b3: missing from the file"), "%s", err.msg);
  snap_assert_same(&s, &b, "missing tensor");
  free(s.v);
  model_free(&b);

  /* The file has a tensor the model lacks (and its Adam state). */
  model_free(&a);
  model_make(&a, 5, "conv1.W", 1);
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_save(path, "", a.lists, 3, &err), TG_OK);
  model_make(&b, 5, NULL, 2);
  s = snap_take(&b);
  ck_assert_int_eq(tg_checkpoint_load(path, b.lists, 3, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "conv1.W: not in the model"), "%s", err.msg);
  snap_assert_same(&s, &b, "extra tensor");
  free(s.v);

  /* Without the optimizer list, the file's state tensors are extra. */
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_load(path, b.lists, 2, &err), TG_ERR_SHAPE);
  ck_assert_msg(strstr(err.msg, "not in the model"), "%s", err.msg);

  model_free(&a);
  model_free(&b);
}
END_TEST

START_TEST(test_list_errors) {
  const char *path = tu_path("dup.ckpt");
  tg_params p = {0}, q = {0};
  tg_params_new(&p, "step", (int64_t[]){1}, 1, 0, NULL);
  tg_params_new(&q, "step", (int64_t[]){1}, 1, 0, NULL);
  tg_params *lists[] = {&p, &q};
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "", lists, 2, &err), TG_ERR_ARG);
  ck_assert_msg(strstr(err.msg, "\"step\" is in list 0 and list 1"), "%s", err.msg);
  ck_assert_int_eq(tmp_count("dup"), 0); /* refused before any file */
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_load(path, lists, 2, &err), TG_ERR_ARG);

  tg_params *nul[] = {&p, NULL};
  err = (tg_error){0};
  ck_assert_int_eq(tg_checkpoint_save(path, "", nul, 2, &err), TG_ERR_NULL);
  ck_assert_int_eq(tg_checkpoint_save(NULL, "", lists, 1, NULL), TG_ERR_ARG);

  /* No lists at all is an empty checkpoint. */
  ck_assert_int_eq(tg_checkpoint_save(path, "empty", NULL, 0, NULL), TG_OK);
  ck_assert_int_eq(tg_checkpoint_load(path, NULL, 0, NULL), TG_OK);
  tg_params_free(&p);
  tg_params_free(&q);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("format");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_round_trip_bit_exact);
  tcase_add_test(tc, test_layout_by_hand);
  tcase_add_test(tc, test_load_other_precision);
  tcase_add_test(tc, test_meta);
  suite_add_tcase(s, tc);
  tc = tcase_create("mismatch");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_other_model_is_refused);
  tcase_add_test(tc, test_list_errors);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
