/* test_hostile_io.c — a catalogue of hostile files for the two readers:
 * IDX (data/idx.c, data/dataset.c) and checkpoints (nn/checkpoint.c).
 *
 * Every refusal must come back as a status with a message naming the
 * file and, where it applies, the byte offset of what is wrong; nothing
 * may crash, leak (the ASan build runs this), allocate what a header
 * merely claims, or — for checkpoints — change a single model tensor. Loop
 * tests count one Check test per truncation length or flipped byte.
 *
 * Files are made here byte by byte from the formats' descriptions (in
 * data/data.h and nn/checkpoint.c), in a fresh mkdtemp directory per test.
 */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"

static void dir_setup(void) { tu_dir_make("tapegrad-hostile"); }
static void dir_teardown(void) { tu_rm_tree(tu_dir()); }

/* Asserts st != OK and err names every fragment. */
#define assert_refused(st, err, ...)                                                               \
  do {                                                                                             \
    const char *fr_[] = {__VA_ARGS__, NULL};                                                       \
    ck_assert_msg((st) != TG_OK, "accepted, expected a refusal");                                  \
    for (int k_ = 0; fr_[k_]; k_++)                                                                \
      ck_assert_msg(strstr((err).msg, fr_[k_]) != NULL, "\"%s\" does not mention \"%s\"",          \
                    (err).msg, fr_[k_]);                                                           \
  } while (0)

/* ========================================================================
 * IDX
 * ======================================================================== */

/* Big-endian IDX bytes: header for dims, then data. */
static size_t idx_make(unsigned char *out, int type, int rank, const uint32_t *dims,
                       const unsigned char *data, size_t ndata) {
  size_t k = 0;
  out[k++] = 0;
  out[k++] = 0;
  out[k++] = (unsigned char)type;
  out[k++] = (unsigned char)rank;
  for (int i = 0; i < rank; i++)
    for (int s = 24; s >= 0; s -= 8)
      out[k++] = (unsigned char)(dims[i] >> s);
  memcpy(out + k, data, ndata);
  return k + ndata;
}

/* The small valid image file of every truncation test: 2 images of 3×3. */
static size_t small_images(unsigned char *b) {
  unsigned char px[18];
  for (int i = 0; i < 18; i++)
    px[i] = (unsigned char)(i * 13);
  return idx_make(b, 8, 3, (uint32_t[]){2, 3, 3}, px, 18);
}
#define SMALL_LEN 34 /* 4 + 3·4 + 18 */

/* The offset the reader must report for a file cut to len bytes. */
static long expect_offset(size_t len) {
  if (len < 4)
    return 0; /* inside the magic */
  if (len < 16)
    return (long)(len - (len % 4)); /* the dimension that starts there */
  return 16;                        /* the data part starts at 16 */
}

/* Cut the valid file at every length (plain and gzipped: loop index
 * 0..SMALL_LEN-1 plain, SMALL_LEN.. gzipped). */
START_TEST(idx_truncated_at_every_length) {
  unsigned char b[64];
  ck_assert_uint_eq(small_images(b), SMALL_LEN);
  int gz = _i >= SMALL_LEN;
  size_t len = (size_t)(_i % SMALL_LEN);
  const char *p = tu_path(gz ? "cut.gz" : "cut");
  tu_spit(p, b, len, gz);
  tg_idx a;
  tg_error err = {0};
  int st = tg_idx_read(p, &a, &err);
  ck_assert_ptr_null(a.data);
  if (len == 0) {
    assert_refused(st, err, p, "empty");
  } else {
    char off[32];
    snprintf(off, sizeof off, "byte %ld:", expect_offset(len));
    assert_refused(st, err, p, off);
    ck_assert_msg(strstr(err.msg, len < 16 ? "ends inside" : "data truncated"), "%s", err.msg);
  }
  ck_assert_int_eq(st, TG_ERR_FORMAT);
}
END_TEST

/* Header fields that lie, each a named scenario. */
static const struct {
  const char *name;
  unsigned char head[4];
  uint32_t dims[4];
  size_t ndata;
  const char *frag[3];
} idx_bad[] = {
    {"magic_nonzero_first", {1, 0, 8, 1}, {3}, 3, {"byte 0", "bad magic"}},
    {"magic_nonzero_second", {0, 7, 8, 1}, {3}, 3, {"byte 0", "0x00070801"}},
    {"magic_ascii", {'P', 'K', 3, 4}, {3}, 3, {"byte 0", "bad magic"}},
    {"type_float", {0, 0, 0x0D, 1}, {3}, 12, {"byte 2", "0x0d", "float"}},
    {"type_signed_byte", {0, 0, 0x09, 1}, {3}, 3, {"byte 2", "signed byte"}},
    {"type_unknown", {0, 0, 0x42, 1}, {3}, 3, {"byte 2", "unknown element type 0x42"}},
    {"type_zero", {0, 0, 0, 1}, {3}, 3, {"byte 2", "0x00"}},
    {"rank_zero", {0, 0, 8, 0}, {3}, 3, {"byte 3", "rank 0"}},
    {"rank_five", {0, 0, 8, 5}, {1, 1, 1, 1}, 4, {"byte 3", "rank 5"}},
    {"rank_255", {0, 0, 8, 255}, {1}, 0, {"byte 3", "rank 255"}},
    {"dim_zero_first", {0, 0, 8, 2}, {0, 3}, 0, {"byte 4", "dimension 0 of 2 is 0"}},
    {"dim_zero_last", {0, 0, 8, 3}, {2, 2, 0}, 0, {"byte 12", "dimension 2 of 3 is 0"}},
    {"claims_4GiB", {0, 0, 8, 2}, {65536, 65536}, 8, {"byte 4", "limit"}},
    {"claims_max_u32_cubed", {0, 0, 8, 3}, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, 8, {"limit"}},
    {"claims_1GiB_rank4", {0, 0, 8, 4}, {1024, 1024, 1024, 1024}, 8, {"limit"}},
    {"claims_1_9GiB", {0, 0, 8, 3}, {60000, 32768, 1}, 8, {"byte 16", "data truncated"}},
    {"trailing_bytes", {0, 0, 8, 1}, {3}, 5, {"byte 11", "2 trailing bytes"}},
};
#define N_IDX_BAD ((int)(sizeof idx_bad / sizeof idx_bad[0]))

static long maxrss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Plain and gzipped (loop index: 2·case + gz). Lying headers must not
 * allocate what they claim: peak RSS grows by far less than the claim. */
START_TEST(idx_bad_header) {
  int c = _i / 2, gz = _i % 2;
  unsigned char b[128], data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  int rank = idx_bad[c].head[3] > 4 ? (idx_bad[c].head[3] == 5 ? 4 : 1) : idx_bad[c].head[3];
  size_t n = idx_make(b, 0, rank, idx_bad[c].dims, data, idx_bad[c].ndata);
  memcpy(b, idx_bad[c].head, 4);
  const char *p = tu_path(gz ? "bad.gz" : "bad");
  tu_spit(p, b, n, gz);
  long rss0 = maxrss_kb();
  tg_idx a;
  tg_error err = {0};
  int st = tg_idx_read(p, &a, &err);
  ck_assert_msg(st == TG_ERR_FORMAT, "%s: status %d (%s)", idx_bad[c].name, st, err.msg);
  ck_assert_msg(strstr(err.msg, p) != NULL, "%s: \"%s\" does not name the file", idx_bad[c].name,
                err.msg);
  for (int k = 0; k < 3 && idx_bad[c].frag[k]; k++)
    ck_assert_msg(strstr(err.msg, idx_bad[c].frag[k]) != NULL, "%s: \"%s\" lacks \"%s\"",
                  idx_bad[c].name, err.msg, idx_bad[c].frag[k]);
  ck_assert_ptr_null(a.data);
  ck_assert_msg(maxrss_kb() - rss0 < 64 * 1024, "%s: peak RSS grew by %ld kB", idx_bad[c].name,
                maxrss_kb() - rss0);
}
END_TEST

/* gzip streams that are not: garbage after the gzip magic, a cut stream,
 * a flipped CRC in the trailer, a valid stream followed by junk. */
START_TEST(idx_gzip_garbage) {
  unsigned char good[64];
  size_t n = small_images(good);
  tu_spit(tu_path("ok.gz"), good, n, 1);
  size_t gl;
  unsigned char *g = tu_slurp(tu_path("ok.gz"), &gl);
  unsigned char junk[200] = {0x1f, 0x8b, 0x08, 0x00};
  for (int i = 4; i < 200; i++)
    junk[i] = (unsigned char)(i * 37 + 11);
  const struct {
    const char *name;
    const unsigned char *b;
    size_t n;
    int flip; /* byte index from the end to flip, 0: none */
  } cases[] = {
      {"junk.gz", junk, sizeof junk, 0},
      {"cut.gz", g, gl - 6, 0},
      {"crc.gz", g, gl, 8},
      {"deflate.gz", g, gl, (int)gl - 12},
  };
  for (int c = 0; c < 4; c++) {
    unsigned char *b = malloc(cases[c].n + 1);
    memcpy(b, cases[c].b, cases[c].n);
    if (cases[c].flip)
      b[cases[c].n - (size_t)cases[c].flip] ^= 0x55;
    const char *p = tu_path(cases[c].name);
    tu_spit(p, b, cases[c].n, 0);
    free(b);
    tg_idx a;
    tg_error err = {0};
    int st = tg_idx_read(p, &a, &err);
    assert_refused(st, err, p, "byte ");
    ck_assert_ptr_null(a.data);
  }
  free(g);
}
END_TEST

START_TEST(idx_directory_missing_null) {
  tg_idx a;
  tg_error err = {0};
  assert_refused(tg_idx_read(tu_dir(), &a, &err), err, tu_dir(), "directory");
  tg_error e2 = {0};
  const char *p = tu_path("no-such-file");
  assert_refused(tg_idx_read(p, &a, &e2), e2, p, "No such file");
  ck_assert_int_eq(e2.status, TG_ERR_IO);
  tg_error e3 = {0};
  ck_assert_int_eq(tg_idx_read(NULL, &a, &e3), TG_ERR_NULL);
  ck_assert_int_eq(tg_idx_read(p, NULL, NULL), TG_ERR_NULL);
  /* /dev/null: a character device, empty. */
  tg_error e4 = {0};
  assert_refused(tg_idx_read("/dev/null", &a, &e4), e4, "/dev/null", "empty");
}
END_TEST

/* Data sets: count mismatch, label out of range, wrong ranks. */
static void write_set(const char *im, const char *lb, uint32_t nim, uint32_t nlb, uint8_t bad) {
  unsigned char b[4096], px[4 * 4 * 8] = {0}, labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  if (bad)
    labels[nlb - 1] = bad;
  tu_spit(im, b, idx_make(b, 8, 3, (uint32_t[]){nim, 4, 4}, px, nim * 16), 0);
  tu_spit(lb, b, idx_make(b, 8, 1, (uint32_t[]){nlb}, labels, nlb), 1);
}

START_TEST(dataset_counts_and_labels) {
  const char *im = tu_path("im"), *lb = tu_path("lb.gz");
  tg_dataset ds;
  write_set(im, lb, 5, 4, 0);
  tg_error e1 = {0};
  assert_refused(tg_dataset_load(im, lb, 10, &ds, &e1), e1, lb, im, "byte 4", "4 labels");
  ck_assert_ptr_null(ds.pixels);
  write_set(im, lb, 4, 4, 10);
  tg_error e2 = {0};
  assert_refused(tg_dataset_load(im, lb, 10, &ds, &e2), e2, lb, "byte 11", "label 10", "index 3");
  write_set(im, lb, 4, 4, 200);
  tg_error e3 = {0};
  assert_refused(tg_dataset_load(im, lb, 10, &ds, &e3), e3, "label 200");
  /* Swapped: labels as images (rank 1 where 3 is needed). */
  write_set(im, lb, 4, 4, 0);
  tg_error e4 = {0};
  assert_refused(tg_dataset_load(lb, im, 10, &ds, &e4), e4, lb, "byte 3", "rank 1");
  tg_error e5 = {0};
  assert_refused(tg_dataset_load(im, lb, 0, &ds, &e5), e5, "0 classes");
  tg_error e6 = {0};
  assert_refused(tg_dataset_load(im, tu_path("none"), 10, &ds, &e6), e6, "none", "cannot open");
  ck_assert_ptr_null(ds.labels);
  /* A valid set still loads (the files above were sound but for one thing). */
  tg_error e7 = {0};
  ck_assert_int_eq(tg_dataset_load(im, lb, 10, &ds, &e7), TG_OK);
  tg_dataset_free(&ds);
}
END_TEST

START_TEST(dataset_open_hostile_dirs) {
  tg_dataset tr, te;
  tg_error e1 = {0};
  assert_refused(tg_dataset_open(tu_dir(), &tr, &te, &e1), e1, "train-images-idx3-ubyte",
                 "not found");
  tg_error e2 = {0};
  const char *f = tu_path("plainfile");
  tu_spit(f, "x", 1, 0);
  assert_refused(tg_dataset_open(f, &tr, &te, &e2), e2, "plainfile");
  tg_error e3 = {0};
  assert_refused(tg_dataset_open(tu_path("nowhere"), &tr, &te, &e3), e3, "nowhere");
  /* The four names exist but are directories. */
  const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; i++)
    mkdir(tu_path(names[i]), 0700);
  tg_error e4 = {0};
  assert_refused(tg_dataset_open(tu_dir(), &tr, &te, &e4), e4, "train-images-idx3-ubyte");
  ck_assert_ptr_null(tr.pixels);
  ck_assert_ptr_null(te.pixels);
}
END_TEST

/* ========================================================================
 * Checkpoints
 * ======================================================================== */

typedef struct model {
  tg_params w, buf;
} model;

static void model_make(model *m, const char *wname, int64_t cols) {
  memset(m, 0, sizeof *m);
  tg_error err = {0};
  tg_tensor *W = tg_params_new(&m->w, wname, (int64_t[]){2, cols}, 2, 1, &err);
  tg_tensor *b = tg_params_new(&m->w, "b", (int64_t[]){cols}, 1, 1, &err);
  tg_tensor *r = tg_params_new(&m->buf, "bn.running_var", (int64_t[]){cols}, 1, 0, &err);
  tg_tensor *s = tg_params_new(&m->buf, "step", NULL, 0, 0, &err);
  ck_assert_msg(W && b && r && s, "%s", err.msg);
  for (int64_t i = 0; i < W->numel; i++)
    W->data[i] = (tg_real)(0.25 * (double)i - 1);
  for (int64_t i = 0; i < cols; i++) {
    b->data[i] = (tg_real)(10 + i);
    r->data[i] = (tg_real)(0.5 + i);
  }
  s->data[0] = 42;
}

static void model_fill(model *m, tg_real v) {
  tg_params *l[2] = {&m->w, &m->buf};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < l[k]->n; i++)
      for (int64_t j = 0; j < l[k]->items[i]->numel; j++)
        l[k]->items[i]->data[j] = v + (tg_real)(j + 7 * i + 31 * k);
}

/* All values, in order, into a malloc'd buffer (for before/after). */
static tg_real *model_snap(const model *m, size_t *n) {
  const tg_params *l[2] = {&m->w, &m->buf};
  size_t total = (size_t)(tg_params_numel(l[0]) + tg_params_numel(l[1])), k = 0;
  tg_real *v = malloc(total * sizeof *v);
  for (int a = 0; a < 2; a++)
    for (int i = 0; i < l[a]->n; i++)
      for (int64_t j = 0; j < l[a]->items[i]->numel; j++)
        v[k++] = l[a]->items[i]->data[j];
  *n = total;
  return v;
}

static void model_free(model *m) {
  tg_params_free(&m->w);
  tg_params_free(&m->buf);
}

/* Loads path into a model filled with a known pattern; asserts refusal,
 * the fragments and that not one value changed. */
static void load_refused(const char *path, const char *f1, const char *f2) {
  model m;
  model_make(&m, "W", 3);
  model_fill(&m, -3);
  size_t n0, n1;
  tg_real *before = model_snap(&m, &n0);
  tg_params *lists[2] = {&m.w, &m.buf};
  tg_error err = {0};
  int st = tg_checkpoint_load(path, lists, 2, &err);
  ck_assert_msg(st != TG_OK, "%s was accepted", path);
  ck_assert_msg(strstr(err.msg, path), "\"%s\" does not name the file", err.msg);
  if (f1)
    ck_assert_msg(strstr(err.msg, f1), "\"%s\" lacks \"%s\"", err.msg, f1);
  if (f2)
    ck_assert_msg(strstr(err.msg, f2), "\"%s\" lacks \"%s\"", err.msg, f2);
  tg_real *after = model_snap(&m, &n1);
  ck_assert_int_eq(n0, n1);
  ck_assert_msg(memcmp(before, after, n0 * sizeof *before) == 0, "%s changed the model", path);
  /* The meta reader refuses the same file (or its structure is fine and
   * only the model differs: then it must succeed). */
  char meta[64];
  tg_error e2 = {0};
  int ms = tg_checkpoint_read_meta(path, meta, sizeof meta, &e2);
  ck_assert(ms == TG_OK || strstr(e2.msg, path));
  free(before);
  free(after);
  model_free(&m);
}

/* The reference checkpoint of the model, its bytes in *n. */
static unsigned char *ref_checkpoint(const char *path, size_t *n) {
  model m;
  model_make(&m, "W", 3);
  tg_params *lists[2] = {&m.w, &m.buf};
  tg_error err = {0};
  ck_assert_msg(tg_checkpoint_save(path, "kind=hostile\n", lists, 2, &err) == TG_OK, "%s", err.msg);
  model_free(&m);
  return tu_slurp(path, n);
}

static size_t ref_len(void) {
  /* 8 magic + 3·4 + 13 meta + 4 count; W: 2+1+4+16+24 = 47;
   * b: 2+1+4+8+12 = 27; bn.running_var: 2+14+4+8+12 = 40; step: 2+4+4+0+4;
   * CRC 4. Values are tg_real. */
  size_t es = sizeof(tg_real);
  return 8 + 12 + 13 + 4 + (2 + 1 + 4 + 16 + 6 * es) + (2 + 1 + 4 + 8 + 3 * es) +
         (2 + 14 + 4 + 8 + 3 * es) + (2 + 4 + 4 + es) + 4;
}

START_TEST(ckpt_truncated_at_every_length) {
  size_t n;
  unsigned char *b = ref_checkpoint(tu_path("ref.ckpt"), &n);
  ck_assert_uint_eq(n, ref_len());
  size_t len = (size_t)_i * n / 100; /* 100 lengths spread over 0..n-1 */
  const char *p = tu_path("cut.ckpt");
  tu_spit(p, b, len, 0);
  load_refused(p, len >= 8 ? "offset" : NULL, NULL);
  free(b);
}
END_TEST

/* Every single byte flipped (all bits): refused, model untouched. */
START_TEST(ckpt_every_byte_flipped) {
  size_t n;
  unsigned char *b = ref_checkpoint(tu_path("ref.ckpt"), &n);
  for (size_t i = 0; i < n; i++) {
    b[i] ^= 0xFF;
    const char *p = tu_path("flip.ckpt");
    tu_spit(p, b, n, 0);
    load_refused(p, NULL, NULL);
    b[i] ^= 0xFF;
  }
  /* And single bits, which a weak check could miss. */
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit += 3) {
      b[i] ^= (unsigned char)(1u << bit);
      const char *p = tu_path("bit.ckpt");
      tu_spit(p, b, n, 0);
      load_refused(p, NULL, NULL);
      b[i] ^= (unsigned char)(1u << bit);
    }
  free(b);
}
END_TEST

/* Rewrites the CRC of a buffer after an edit, so only the edit is seen. */
static void fix_crc(unsigned char *b, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, b, (uInt)(n - 4));
  for (int i = 0; i < 4; i++)
    b[n - 4 + i] = (unsigned char)(c >> (8 * i));
}

START_TEST(ckpt_semantic_refusals) {
  size_t n;
  unsigned char *b = ref_checkpoint(tu_path("ref.ckpt"), &n);
  const char *p = tu_path("x.ckpt");
  /* Future version, with a correct CRC. */
  b[8] = 2;
  fix_crc(b, n);
  tu_spit(p, b, n, 0);
  load_refused(p, "version 2", "newer");
  b[8] = 0;
  fix_crc(b, n);
  tu_spit(p, b, n, 0);
  load_refused(p, "version 0", NULL);
  b[8] = 1;
  /* Element size 2. */
  b[12] = 2;
  fix_crc(b, n);
  tu_spit(p, b, n, 0);
  load_refused(p, "element size 2", "offset 12");
  b[12] = (unsigned char)sizeof(tg_real);
  fix_crc(b, n);
  /* Zero-length and magic-only files. */
  tu_spit(p, "", 0, 0);
  load_refused(p, "12 bytes", NULL);
  tu_spit(p, "TAPEGRAD", 8, 0);
  load_refused(p, "truncated", NULL);
  tu_spit(p, "PK\3\4 a zip file", 15, 0);
  load_refused(p, "bad magic", NULL);
  /* A directory, a missing file, /dev/null. */
  load_refused(tu_dir(), "not a regular file", NULL);
  load_refused(tu_path("missing.ckpt"), "cannot open", NULL);
  load_refused("/dev/null", "not a regular file", NULL);
  /* Tensor count that cannot fit. */
  memcpy(b + 8 + 12 + 13, (unsigned char[]){0xff, 0xff, 0xff, 0xff}, 4);
  fix_crc(b, n);
  tu_spit(p, b, n, 0);
  load_refused(p, "4294967295 tensors", "offset 33");
  free(b);
}
END_TEST

/* Valid checkpoints of other models: the message names the tensor. */
START_TEST(ckpt_other_model) {
  const char *p = tu_path("other.ckpt");
  model o;
  tg_error err = {0};
  /* Same names, W (2, 4) and b (4,). */
  model_make(&o, "W", 4);
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&o.w, &o.buf}, 2, &err), TG_OK);
  model_free(&o);
  load_refused(p, "W: shape (2, 4) in the file, (2, 3) in the model", NULL);
  /* Renamed weight. */
  model_make(&o, "W1", 3);
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&o.w, &o.buf}, 2, &err), TG_OK);
  model_free(&o);
  load_refused(p, "W1: not in the model", NULL);
  /* Only the weights: the buffers are missing. */
  model_make(&o, "W", 3);
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&o.w}, 1, &err), TG_OK);
  model_free(&o);
  load_refused(p, "missing from the file", "bn.running_var");
  /* An extra tensor. */
  model_make(&o, "W", 3);
  tg_params_new(&o.buf, "extra", (int64_t[]){1}, 1, 0, &err);
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&o.w, &o.buf}, 2, &err), TG_OK);
  model_free(&o);
  load_refused(p, "extra: not in the model", NULL);
  /* A scalar where the model has (1,). */
  model_make(&o, "W", 3);
  tg_params_free(&o.buf);
  tg_params_new(&o.buf, "bn.running_var", (int64_t[]){3}, 1, 0, &err);
  tg_params_new(&o.buf, "step", (int64_t[]){1}, 1, 0, &err);
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&o.w, &o.buf}, 2, &err), TG_OK);
  model_free(&o);
  load_refused(p, "step: shape (1,) in the file, () in the model", NULL);
}
END_TEST

/* A save that cannot complete leaves the previous checkpoint as it was
 * and no temporary file. As root a read-only directory is writable, so
 * the write is made to fail by RLIMIT_FSIZE (EFBIG) as well. */
static int count_entries(void) {
  DIR *d = opendir(tu_dir());
  int k = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    k += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return k;
}

START_TEST(ckpt_save_failures_keep_previous) {
  size_t n0;
  char p[4400];
  snprintf(p, sizeof p, "%s", tu_path("keep.ckpt"));
  unsigned char *ref = ref_checkpoint(p, &n0);
  model m;
  model_make(&m, "W", 3);
  model_fill(&m, 5);
  tg_params *lists[2] = {&m.w, &m.buf};
  /* 1. Read-only directory. */
  ck_assert_int_eq(chmod(tu_dir(), 0500), 0);
  tg_error e1 = {0};
  int st = tg_checkpoint_save(p, NULL, lists, 2, &e1);
  chmod(tu_dir(), 0700);
  if (geteuid() != 0) {
    assert_refused(st, e1, p, "temporary file", "Permission denied");
  } else if (st == TG_OK) {
    /* root writes anyway: restore the reference for what follows */
    tu_spit(p, ref, n0, 0);
  }
  /* 2. The file system refuses the bytes (a full disk). */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 64;
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  tg_error e2 = {0};
  st = tg_checkpoint_save(p, NULL, lists, 2, &e2);
  setrlimit(RLIMIT_FSIZE, &old);
  assert_refused(st, e2, p, "cannot");
  ck_assert_int_eq(e2.status, TG_ERR_IO);
  /* 3. The directory does not exist; 4. its "directory" is a file; 5. the
   * target is a directory. */
  tg_error e3 = {0};
  assert_refused(tg_checkpoint_save(tu_path("nodir/x.ckpt"), NULL, lists, 2, &e3), e3, "nodir",
                 "No such file");
  tg_error e4 = {0};
  char fp[4500];
  snprintf(fp, sizeof fp, "%s/x.ckpt", p);
  assert_refused(tg_checkpoint_save(fp, NULL, lists, 2, &e4), e4, "Not a directory");
  mkdir(tu_path("adir"), 0700);
  tg_error e5 = {0};
  assert_refused(tg_checkpoint_save(tu_path("adir"), NULL, lists, 2, &e5), e5, "adir", "rename");
  rmdir(tu_path("adir"));
  /* 6. Bad arguments touch no file. */
  tg_error e6 = {0};
  char big[TG_CHECKPOINT_META_MAX + 1];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_refused(tg_checkpoint_save(p, big, lists, 2, &e6), e6, "meta");
  tg_error e7 = {0};
  assert_refused(tg_checkpoint_save(p, NULL, (tg_params *[]){&m.w, &m.w}, 2, &e7), e7, "unique");
  tg_error e8 = {0};
  assert_refused(tg_checkpoint_save(p, NULL, NULL, 1, &e8), e8, "NULL");
  /* The previous checkpoint is byte-identical, nothing else is left. */
  size_t n1;
  unsigned char *now = tu_slurp(p, &n1);
  ck_assert_uint_eq(n0, n1);
  ck_assert_msg(memcmp(ref, now, n0) == 0, "the previous checkpoint changed");
  ck_assert_int_eq(count_entries(), 1);
  free(ref);
  free(now);
  model_free(&m);
}
END_TEST

/* A save killed mid-way leaves "<path>.tmp.<pid>"; the next successful
 * save removes those of dead processes only (tests/crash_test.c kills
 * real savers). */
START_TEST(ckpt_save_sweeps_orphans) {
  char p[4400], dead[4500], live[4500], other[4500];
  snprintf(p, sizeof p, "%s", tu_path("s.ckpt"));
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  waitpid(pid, NULL, 0); /* pid is now a process that does not exist */
  snprintf(dead, sizeof dead, "%s.tmp.%ld", p, (long)pid);
  snprintf(live, sizeof live, "%s.tmp.%ld", p, (long)getppid());
  snprintf(other, sizeof other, "%s.tmp.x%ld", p, (long)pid);
  tu_spit(dead, "half", 4, 0);
  tu_spit(live, "busy", 4, 0);
  tu_spit(other, "mine", 4, 0);
  model m;
  model_make(&m, "W", 3);
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(p, NULL, (tg_params *[]){&m.w, &m.buf}, 2, &err), TG_OK);
  ck_assert_msg(access(dead, F_OK) != 0, "the orphan of a dead saver is still there");
  ck_assert_msg(access(live, F_OK) == 0, "the file of a live process was removed");
  ck_assert_msg(access(other, F_OK) == 0, "a file that is not a temporary one was removed");
  model_free(&m);
}
END_TEST

/* A loaded checkpoint with a meta text longer than the buffer, NULLs. */
START_TEST(ckpt_meta_and_null_arguments) {
  size_t n;
  const char *p = tu_path("ref.ckpt");
  free(ref_checkpoint(p, &n));
  char small[4];
  tg_error e1 = {0};
  assert_refused(tg_checkpoint_read_meta(p, small, sizeof small, &e1), e1, p, "buffer");
  tg_error e2 = {0};
  assert_refused(tg_checkpoint_read_meta(p, NULL, 10, &e2), e2, p);
  tg_error e3 = {0};
  ck_assert_int_ne(tg_checkpoint_load(NULL, NULL, 0, &e3), TG_OK);
  tg_error e4 = {0};
  assert_refused(tg_checkpoint_load(p, NULL, 2, &e4), e4, p, "NULL");
  tg_error e5 = {0};
  assert_refused(tg_checkpoint_load(p, NULL, -1, &e5), e5, p, "-1 lists");
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("hostile_io");
  TCase *tc = tcase_create("idx");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_loop_test(tc, idx_truncated_at_every_length, 0, 2 * SMALL_LEN);
  tcase_add_loop_test(tc, idx_bad_header, 0, 2 * N_IDX_BAD);
  tcase_add_test(tc, idx_gzip_garbage);
  tcase_add_test(tc, idx_directory_missing_null);
  tcase_add_test(tc, dataset_counts_and_labels);
  tcase_add_test(tc, dataset_open_hostile_dirs);
  suite_add_tcase(s, tc);
  tc = tcase_create("checkpoint");
  tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
  tcase_add_loop_test(tc, ckpt_truncated_at_every_length, 0, 100);
  tcase_add_test(tc, ckpt_every_byte_flipped);
  tcase_add_test(tc, ckpt_semantic_refusals);
  tcase_add_test(tc, ckpt_other_model);
  tcase_add_test(tc, ckpt_save_failures_keep_previous);
  tcase_add_test(tc, ckpt_save_sweeps_orphans);
  tcase_add_test(tc, ckpt_meta_and_null_arguments);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
