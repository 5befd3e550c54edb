/* test_checkpoint_damage.c — checkpoints that are wrong and saves that
 * fail: truncated at any byte, any bit flipped, bad headers, a newer
 * version, a missing file — each an error that names the problem and
 * leaves every tensor as it was; failed saves leave the previous file
 * and no temporary file behind. test_checkpoint.c holds the round trips.
 * Every file lives in a fresh mkdtemp directory, removed at the end of
 * the test.
 */
#include "checkpoint_test_helpers.h"

/* ------------------------------------------------------------------------
 * Damaged files */

START_TEST(test_truncated_at_every_offset) {
  const char *path = tu_path("small.ckpt"), *cut = tu_path("cut.ckpt");
  model a, b;
  model_make(&a, 2, NULL, 1);
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "model=mlp", a.lists, 3, &err), TG_OK);
  size_t n;
  unsigned char *full = tu_slurp(path, &n);

  model_make(&b, 2, NULL, 2);
  snapshot s = snap_take(&b);
  for (size_t len = 0; len < n; len++) {
    tu_spit(cut, full, len, 0);
    err = (tg_error){0};
    int st = tg_checkpoint_load(cut, b.lists, 3, &err);
    ck_assert_msg(st == TG_ERR_FORMAT, "cut at %zu of %zu: status %d (%s)", len, n, st, err.msg);
    ck_assert_msg(strstr(err.msg, "truncated") && strstr(err.msg, "offset"), "cut at %zu: \"%s\"",
                  len, err.msg);
    char meta[64];
    ck_assert_int_eq(tg_checkpoint_read_meta(cut, meta, sizeof meta, NULL), TG_ERR_FORMAT);
  }
  snap_assert_same(&s, &b, "truncated files");
  /* The whole file still loads. */
  ck_assert_int_eq(tg_checkpoint_load(path, b.lists, 3, &err), TG_OK);
  assert_models_equal(&a, &b);

  free(s.v);
  free(full);
  model_free(&a);
  model_free(&b);
}
END_TEST

START_TEST(test_bit_flips) {
  const char *path = tu_path("small.ckpt"), *bad = tu_path("flipped.ckpt");
  model a, b;
  model_make(&a, 2, NULL, 1);
  ck_assert_int_eq(tg_checkpoint_save(path, "m", a.lists, 3, NULL), TG_OK);
  size_t n;
  unsigned char *full = tu_slurp(path, &n);
  model_make(&b, 2, NULL, 2);
  snapshot s = snap_take(&b);
  /* Every bit of every byte: CRC-32 catches any single flipped bit, and
   * the header checks come first. */
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      full[i] ^= (unsigned char)(1u << bit);
      tu_spit(bad, full, n, 0);
      full[i] ^= (unsigned char)(1u << bit);
      tg_error err = {0};
      int st = tg_checkpoint_load(bad, b.lists, 3, &err);
      ck_assert_msg(st == TG_ERR_FORMAT, "bit %d of byte %zu: status %d (%s)", bit, i, st, err.msg);
    }
  snap_assert_same(&s, &b, "flipped bits");
  free(s.v);
  free(full);
  model_free(&a);
  model_free(&b);
}
END_TEST

/* Damage that a CRC cannot see (the CRC recomputed after it) is caught by
 * the header and structure checks. */
START_TEST(test_bad_headers_and_structure) {
  const char *path = tu_path("bad.ckpt");
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  w->data[0] = 1;
  tg_params *lists[] = {&p};
  ck_assert_int_eq(tg_checkpoint_save(path, "", lists, 1, NULL), TG_OK);
  size_t n;
  unsigned char *good = tu_slurp(path, &n);
  unsigned char *b = malloc(n + 16);

  /* A future version, with a correct CRC. */
  memcpy(b, good, n);
  b[8] = 2;
  fix_crc(b, n);
  tu_spit(path, b, n, 0);
  ck_assert_int_eq(
      assert_load_fails(path, "checkpoint version 2 is newer than this program's 1", path),
      TG_ERR_FORMAT);
  char meta[16];
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_read_meta(path, meta, sizeof meta, &err), TG_ERR_FORMAT);
  ck_assert_msg(strstr(err.msg, "version 2 is newer"), "%s", err.msg);

  /* A wrong magic. */
  memcpy(b, good, n);
  memcpy(b, "TAPEGRAF", 8);
  fix_crc(b, n);
  tu_spit(path, b, n, 0);
  assert_load_fails(path, "not a tapegrad checkpoint", "magic");
  tu_spit(path, "PK\3\4", 4, 0); /* short and foreign */
  assert_load_fails(path, "bad magic", NULL);

  /* A CRC that does not match. */
  memcpy(b, good, n);
  b[n - 1] ^= 0x80;
  tu_spit(path, b, n, 0);
  assert_load_fails(path, "CRC mismatch: the file is corrupt", NULL);

  /* Element size 5. */
  memcpy(b, good, n);
  b[12] = 5;
  fix_crc(b, n);
  tu_spit(path, b, n, 0);
  assert_load_fails(path, "element size 5", NULL);

  /* Bytes after the last tensor. */
  memcpy(b, good, n - 4);
  memcpy(b + n - 4, "junk", 4);
  fix_crc(b, n + 4);
  tu_spit(path, b, n + 4, 0);
  assert_load_fails(path, "4 unexpected bytes", NULL);

  /* A dimension of 2^62: more values than the file holds, no overflow. */
  bytes x = {0};
  b_header(&x, 1, sizeof(tg_real), "", 1);
  b_tensor_head(&x, "w", 2, (int64_t[]){INT64_C(1) << 62, 4});
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "more values than the file holds", NULL);
  /* A dimension of 0, and one that is negative as i64. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 1, (int64_t[]){0});
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "dimension 0 is 0", NULL);
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 1, (int64_t[]){-3});
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "is -3", NULL);
  /* Seven dimensions. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1});
  b_f32(&x, 1);
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "7 dimensions", NULL);
  /* A tensor count far beyond the file. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 4000000000u);
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "4000000000 tensors cannot fit", NULL);
  /* The same tensor twice (valid structure and CRC). */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 2);
  for (int k = 0; k < 2; k++) {
    b_tensor_head(&x, "w", 1, (int64_t[]){2});
    b_f32(&x, 1);
    b_f32(&x, 2);
  }
  b_crc(&x);
  tu_spit(path, x.b, x.n, 0);
  assert_load_fails(path, "w: twice in the file", NULL);
  /* An empty file; a directory where the file should be. */
  tu_spit(path, "", 0, 0);
  assert_load_fails(path, "truncated at offset 0", NULL);
  ck_assert_int_eq(assert_load_fails(tu_dir(), "not a regular file", tu_dir()), TG_ERR_IO);

  free(b);
  free(good);
  tg_params_free(&p);
}
END_TEST

START_TEST(test_missing_file) {
  const char *path = tu_path("never-saved.ckpt");
  ck_assert_int_eq(assert_load_fails(path, "cannot open", path), TG_ERR_IO);
  char meta[16];
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_read_meta(path, meta, sizeof meta, &err), TG_ERR_IO);
  ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "No such file"), "%s", err.msg);
}
END_TEST

/* ------------------------------------------------------------------------
 * Saving safely */

START_TEST(test_save_into_missing_directory) {
  const char *path = tu_path("no-such-dir/mlp.ckpt");
  model a;
  model_make(&a, 3, NULL, 1);
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "", a.lists, 3, &err), TG_ERR_IO);
  ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "cannot create") &&
                    strstr(err.msg, "No such file or directory"),
                "%s", err.msg);
  ck_assert_int_eq(tmp_count(""), 0);
  model_free(&a);
}
END_TEST

/* The target is a directory: everything is written, the rename fails,
 * the temporary file is removed and the directory is untouched. */
START_TEST(test_save_onto_a_directory) {
  const char *path = tu_path("taken"), *inner = tu_path("taken/keep");
  ck_assert_int_eq(mkdir(path, 0755), 0);
  tu_spit(inner, "x", 1, 0);
  model a;
  model_make(&a, 3, NULL, 1);
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "", a.lists, 3, &err), TG_ERR_IO);
  ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "rename"), "%s", err.msg);
  ck_assert_int_eq(tmp_count(".tmp."), 0);
  ck_assert_int_eq(tmp_count(""), 1);
  struct stat sb;
  ck_assert(stat(inner, &sb) == 0 && sb.st_size == 1);
  unlink(inner);
  model_free(&a);
}
END_TEST

/* A write that fails half-way (the file-size limit stands in for a full
 * disk): the error names the path and the step, the old checkpoint is
 * byte-for-byte intact and no temporary file remains. No assertion runs
 * while the limit is low, since Check itself writes files. */
START_TEST(test_failed_write_keeps_the_old_file) {
  const char *path = tu_path("mlp.ckpt");
  model small, big;
  model_make(&small, 2, NULL, 1);
  model_make(&big, 200, NULL, 2); /* ~ 40 kB of values */
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "old", small.lists, 3, &err), TG_OK);
  size_t n_old;
  unsigned char *old = tu_slurp(path, &n_old);

  struct rlimit saved;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit low = saved;
  low.rlim_cur = 8192;
  int set = setrlimit(RLIMIT_FSIZE, &low);
  int st = tg_checkpoint_save(path, "new", big.lists, 3, &err);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, prev);

  ck_assert_int_eq(set, 0);
  ck_assert_int_eq(st, TG_ERR_IO);
  ck_assert_msg(strstr(err.msg, path) &&
                    (strstr(err.msg, "cannot write") || strstr(err.msg, "cannot flush") ||
                     strstr(err.msg, "cannot close")),
                "%s", err.msg);
  ck_assert_int_eq(tmp_count(".tmp."), 0);
  size_t n_now;
  unsigned char *now = tu_slurp(path, &n_now);
  ck_assert(n_now == n_old && memcmp(now, old, n_old) == 0);
  char meta[8];
  ck_assert_int_eq(tg_checkpoint_read_meta(path, meta, sizeof meta, NULL), TG_OK);
  ck_assert_str_eq(meta, "old");

  free(old);
  free(now);
  model_free(&small);
  model_free(&big);
}
END_TEST

/* A save over an existing checkpoint replaces it by rename: a reader that
 * opened the old file keeps reading the whole old file, the path then
 * names a new file with the new content, and no temporary file remains. */
START_TEST(test_save_replaces_atomically) {
  const char *path = tu_path("mlp.ckpt");
  model a, b, c;
  model_make(&a, 4, NULL, 1);
  model_make(&b, 4, NULL, 2);
  ck_assert_int_eq(tg_checkpoint_save(path, "first", a.lists, 3, NULL), TG_OK);
  size_t n_old;
  unsigned char *old = tu_slurp(path, &n_old);
  struct stat before, after;
  ck_assert_int_eq(stat(path, &before), 0);
  FILE *reader = fopen(path, "rb");
  ck_assert_ptr_nonnull(reader);

  tg_error err = {0};
  ck_assert_msg(tg_checkpoint_save(path, "second", b.lists, 3, &err) == TG_OK, "%s", err.msg);

  ck_assert_int_eq(stat(path, &after), 0);
  ck_assert_msg(before.st_ino != after.st_ino, "the file was rewritten in place");
  unsigned char *seen = malloc(n_old + 1);
  ck_assert_int_eq(fread(seen, 1, n_old + 1, reader), n_old);
  ck_assert(memcmp(seen, old, n_old) == 0);
  fclose(reader);
  ck_assert_int_eq(tmp_count(".tmp."), 0);
  ck_assert_int_eq(tmp_count(""), 1);

  model_make(&c, 4, NULL, 3);
  ck_assert_int_eq(tg_checkpoint_load(path, c.lists, 3, &err), TG_OK);
  assert_models_equal(&b, &c);
  char meta[16];
  ck_assert_int_eq(tg_checkpoint_read_meta(path, meta, sizeof meta, NULL), TG_OK);
  ck_assert_str_eq(meta, "second");

  free(seen);
  free(old);
  model_free(&a);
  model_free(&b);
  model_free(&c);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("checkpoint_damage");
  TCase *tc = tcase_create("damage");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_truncated_at_every_offset);
  tcase_add_test(tc, test_bit_flips);
  tcase_add_test(tc, test_bad_headers_and_structure);
  tcase_add_test(tc, test_missing_file);
  suite_add_tcase(s, tc);
  tc = tcase_create("save");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_save_into_missing_directory);
  tcase_add_test(tc, test_save_onto_a_directory);
  tcase_add_test(tc, test_failed_write_keeps_the_old_file);
  tcase_add_test(tc, test_save_replaces_atomically);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
