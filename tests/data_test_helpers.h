/* data_test_helpers.h — what the suites of data/ (test_data.c, the IDX
 * reader; test_dataset.c, data sets and batches) share: a scratch
 * directory per test and IDX files laid out by hand. Header-only.
 */
#ifndef TG_DATA_TEST_HELPERS_H
#define TG_DATA_TEST_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#include "data.h"

#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif

/* ------------------------------------------------------------------------
 * A scratch directory per test, and files in it */

static inline void dir_setup(void) { tu_dir_make("tg_data"); }
static inline void dir_teardown(void) { tu_rm_tree(tu_dir()); }

/* An IDX file's bytes laid out by hand: 0, 0, 0x08, rank, dims (big-endian),
 * then `ndata` data bytes (data NULL: byte i is i * 7 + 1). */
static inline uint8_t *idx_head(const uint32_t *dims, int ndim, const uint8_t *data, size_t ndata,
                                size_t *len) {
  size_t h = 4 + 4 * (size_t)ndim;
  uint8_t *b = malloc(h + ndata);
  b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = (uint8_t)ndim;
  for (int i = 0; i < ndim; i++) {
    b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
    b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
    b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
    b[7 + 4 * i] = (uint8_t)dims[i];
  }
  for (size_t i = 0; i < ndata; i++)
    b[h + i] = data ? data[i] : (uint8_t)(i * 7 + 1);
  *len = h + ndata;
  return b;
}

/* A complete file: the header and every data byte the dims call for. */
static inline uint8_t *idx_bytes(const uint32_t *dims, int ndim, const uint8_t *data, size_t *len) {
  size_t count = 1;
  for (int i = 0; i < ndim; i++)
    count *= dims[i];
  return idx_head(dims, ndim, data, count, len);
}

/* The header of dims and ndata data bytes (zeros), written to path. */
static inline void write_claim(const char *path, const uint32_t *dims, int ndim, size_t ndata,
                               int gz) {
  size_t n;
  uint8_t *zeros = calloc(1, ndata + 1);
  uint8_t *b = idx_head(dims, ndim, zeros, ndata, &n);
  tu_spit(path, b, n, gz);
  free(b);
  free(zeros);
}

/* Writes an IDX file by hand (see idx_bytes). */
static inline void write_idx(const char *path, const uint32_t *dims, int ndim, const uint8_t *data,
                             int gz) {
  size_t n;
  uint8_t *b = idx_bytes(dims, ndim, data, &n);
  tu_spit(path, b, n, gz);
  free(b);
}

/* Asserts that reading path fails with `status` and a message holding the
 * path and every fragment, and that nothing is left to free. */
#define assert_read_fails(path, want_st, ...)                                                      \
  do {                                                                                             \
    const char *frags_[] = {__VA_ARGS__, NULL};                                                    \
    tg_idx out_ = {.data = (uint8_t *)&out_};                                                      \
    tg_error e_ = {0};                                                                             \
    int st_ = tg_idx_read((path), &out_, &e_);                                                     \
    ck_assert_msg(st_ == (want_st), "%s: status %d, want %d (%s)", (path), st_, (want_st),         \
                  e_.msg);                                                                         \
    ck_assert_int_eq(e_.status, st_);                                                              \
    ck_assert_ptr_null(out_.data);                                                                 \
    ck_assert_msg(strstr(e_.msg, (path)) != NULL, "\"%s\" does not name %s", e_.msg, (path));      \
    for (int k_ = 0; frags_[k_]; k_++)                                                             \
      ck_assert_msg(strstr(e_.msg, frags_[k_]) != NULL, "\"%s\" does not mention \"%s\"", e_.msg,  \
                    frags_[k_]);                                                                   \
  } while (0)

#endif
