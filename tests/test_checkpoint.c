/* test_checkpoint.c — saving and loading checkpoints.
 *
 * The format is checked against bytes assembled here by hand from its
 * description (not by the saver), round trips are bit-exact, and every
 * way a file can be wrong — truncated at any byte, any bit flipped, a
 * newer version, another model — is an error that names the problem and
 * leaves every tensor as it was. Saves that fail leave the previous file
 * and no temporary file behind. Every file lives in a fresh mkdtemp
 * directory, removed at the end of the test.
 */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "optim.h"
#include "params.h"

/* ------------------------------------------------------------------------
 * A scratch directory per test */

static char tmpdir[4096];
/* The process that runs the suite (set before Check forks the tests):
 * every scratch directory's name carries it. */
static long owner;

static const char *tmp_base(void) {
  const char *base = getenv("TMPDIR");
  return base && base[0] ? base : ".";
}

static void tmp_setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s/tapegrad-ckpt-%ld-XXXXXX", tmp_base(), owner);
  ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp %s failed", tmpdir);
}

static void tmp_teardown(void) { tu_rm_tree(tmpdir); }

/* In the parent, around each test case: a failed assertion ends a forked
 * test before its checked teardown, so the parent sweeps what its tests
 * left. */
static void owner_setup(void) { owner = (long)getpid(); }

static void owner_teardown(void) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "tapegrad-ckpt-%ld-", owner);
  DIR *d = opendir(tmp_base());
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      char p[4400];
      snprintf(p, sizeof p, "%s/%s", tmp_base(), e->d_name);
      tu_rm_tree(p);
    }
  closedir(d);
}

static char *tmp_path(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
  return buf;
}

/* Number of entries in the scratch directory whose name contains frag. */
static int tmp_count(const char *frag) {
  DIR *d = opendir(tmpdir);
  ck_assert_ptr_nonnull(d);
  int k = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, frag))
      k++;
  closedir(d);
  return k;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  ck_assert_int_eq(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void spit(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  ck_assert_int_eq(fwrite(b, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

/* ------------------------------------------------------------------------
 * A small model: an MLP's weights, Batch Norm's running statistics as
 * buffers, and Adam's state — the three lists a program saves. */

typedef struct model {
  tg_params params, buffers;
  tg_optim *opt;
  tg_params *lists[3];
} model;

/* hidden sets the shapes; extra (may be NULL) names one more parameter;
 * seed fills every value, gradients included. */
static void model_make(model *m, int64_t hidden, const char *extra, uint64_t seed) {
  memset(m, 0, sizeof *m);
  tg_error err = {0};
  tg_params_new(&m->params, "W1", (int64_t[]){4, hidden}, 2, 1, &err);
  tg_params_new(&m->params, "b1", (int64_t[]){hidden}, 1, 1, &err);
  tg_params_new(&m->params, "W2", (int64_t[]){hidden, 3}, 2, 1, &err);
  tg_params_new(&m->params, "b2", (int64_t[]){3}, 1, 1, &err);
  if (extra)
    tg_params_new(&m->params, extra, (int64_t[]){2, 1, 2}, 3, 1, &err);
  tg_params_new(&m->buffers, "bn1.running_mean", (int64_t[]){hidden}, 1, 0, &err);
  tg_params_new(&m->buffers, "bn1.running_var", (int64_t[]){hidden}, 1, 0, &err);
  ck_assert_msg(err.status == TG_OK, "%s", err.msg);
  tg_optim_config c = tg_optim_defaults(TG_ADAM);
  m->opt = tg_optim_new(&c, &m->params, &err);
  ck_assert_msg(m->opt != NULL, "%s", err.msg);
  m->lists[0] = &m->params;
  m->lists[1] = &m->buffers;
  m->lists[2] = &m->opt->state;

  tg_rng r;
  tg_rng_seed(&r, seed);
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < m->lists[l]->n; i++) {
      tg_tensor *t = m->lists[l]->items[i];
      tu_fill_uniform(t, &r, -2, 2);
      if (t->grad)
        tu_fill_uniform(t->grad, &r, -1, 1);
    }
  tg_params_find(&m->opt->state, "step")->data[0] = 0;
}

static void model_free(model *m) {
  tg_optim_free(m->opt);
  tg_params_free(&m->params);
  tg_params_free(&m->buffers);
}

/* Random gradients, one optimizer step. */
static void model_train(model *m, uint64_t seed) {
  tg_rng r;
  tg_rng_seed(&r, seed);
  for (int i = 0; i < m->params.n; i++)
    tu_fill_uniform(m->params.items[i]->grad, &r, -1, 1);
  tg_optim_step(m->opt);
}

/* Every value of every list, in order, as raw tg_real. */
typedef struct snapshot {
  tg_real *v;
  int64_t n;
} snapshot;

static snapshot snap_take(model *m) {
  snapshot s = {0};
  for (int l = 0; l < 3; l++)
    s.n += tg_params_numel(m->lists[l]);
  s.v = malloc((size_t)s.n * sizeof(tg_real));
  int64_t k = 0;
  for (int l = 0; l < 3; l++)
    for (int i = 0; i < m->lists[l]->n; i++) {
      const tg_tensor *t = m->lists[l]->items[i];
      memcpy(s.v + k, t->data, (size_t)t->numel * sizeof(tg_real));
      k += t->numel;
    }
  return s;
}

/* Asserts that m holds exactly the values of s, bit for bit. */
static void snap_assert_same(const snapshot *s, model *m, const char *what) {
  snapshot now = snap_take(m);
  ck_assert_int_eq(now.n, s->n);
  int same = memcmp(now.v, s->v, (size_t)s->n * sizeof(tg_real)) == 0;
  free(now.v);
  ck_assert_msg(same, "%s: the model changed", what);
}

/* Two models hold the same values in every tensor, bit for bit. */
static void assert_models_equal(model *a, model *b) {
  for (int l = 0; l < 3; l++) {
    ck_assert_int_eq(a->lists[l]->n, b->lists[l]->n);
    for (int i = 0; i < a->lists[l]->n; i++) {
      const tg_tensor *x = a->lists[l]->items[i], *y = b->lists[l]->items[i];
      ck_assert_str_eq(x->name, y->name);
      ck_assert_msg(memcmp(x->data, y->data, (size_t)x->numel * sizeof(tg_real)) == 0, "%s differs",
                    x->name);
    }
  }
}

/* ------------------------------------------------------------------------
 * Files assembled by hand from the format's description */

typedef struct bytes {
  unsigned char b[4096];
  size_t n;
} bytes;

static void b_raw(bytes *x, const void *p, size_t n) {
  ck_assert(x->n + n <= sizeof x->b);
  memcpy(x->b + x->n, p, n);
  x->n += n;
}
static void b_le(bytes *x, uint64_t v, int width) {
  for (int i = 0; i < width; i++)
    x->b[x->n++] = (unsigned char)(v >> (8 * i));
}
static void b_f32(bytes *x, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  b_le(x, u, 4);
}
static void b_f64(bytes *x, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  b_le(x, u, 8);
}
static void b_header(bytes *x, uint32_t version, uint32_t es, const char *meta, uint32_t count) {
  b_raw(x, "TAPEGRAD", 8);
  b_le(x, version, 4);
  b_le(x, es, 4);
  b_le(x, strlen(meta), 4);
  b_raw(x, meta, strlen(meta));
  b_le(x, count, 4);
}
static void b_tensor_head(bytes *x, const char *name, int ndim, const int64_t *dims) {
  b_le(x, strlen(name), 2);
  b_raw(x, name, strlen(name));
  b_le(x, (uint32_t)ndim, 4);
  for (int d = 0; d < ndim; d++)
    b_le(x, (uint64_t)dims[d], 8);
}
static void b_crc(bytes *x) { b_le(x, crc32(crc32(0L, Z_NULL, 0), x->b, (uInt)x->n), 4); }

/* Puts a correct CRC back after editing a file's bytes. */
static void fix_crc(unsigned char *b, size_t n) {
  uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(n - 4));
  for (int i = 0; i < 4; i++)
    b[n - 4 + i] = (unsigned char)(c >> (8 * i));
}

/* Loading path into a one-tensor list "w" of shape (2,) must fail, say
 * every fragment and leave w's values alone. Returns the status. */
static int assert_load_fails(const char *path, const char *frag1, const char *frag2) {
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  w->data[0] = 11;
  w->data[1] = 12;
  tg_params *lists[] = {&p};
  tg_error err = {0};
  int st = tg_checkpoint_load(path, lists, 1, &err);
  ck_assert_msg(st != TG_OK && err.status == st, "loaded a bad file (%s)", frag1);
  ck_assert_msg(strstr(err.msg, frag1) && (!frag2 || strstr(err.msg, frag2)),
                "\"%s\" lacks \"%s\" / \"%s\"", err.msg, frag1, frag2 ? frag2 : "");
  ck_assert(w->data[0] == 11 && w->data[1] == 12);
  tg_params_free(&p);
  return st;
}

/* ------------------------------------------------------------------------
 * Round trips and the layout */

START_TEST(test_round_trip_bit_exact) {
  char path[4400];
  tmp_path("mlp.ckpt", path, sizeof path);
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
  char path[4400];
  tmp_path("tiny.ckpt", path, sizeof path);
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
  unsigned char *f = slurp(path, &n);
  ck_assert_int_eq(n, x.n);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(f[i] == x.b[i], "byte %zu: 0x%02x, want 0x%02x", i, f[i], x.b[i]);
  free(f);
  tg_params_free(&p);
}
END_TEST

/* Files written by the other precision's build load converted. */
START_TEST(test_load_other_precision) {
  char path[4400];
  tmp_path("prec.ckpt", path, sizeof path);
  for (int es = 4; es <= 8; es += 4) {
    bytes x = {0};
    b_header(&x, 1, (uint32_t)es, "", 1);
    b_tensor_head(&x, "w", 2, (int64_t[]){1, 3});
    const double v[3] = {0.1, -3.75, 1e30};
    for (int i = 0; i < 3; i++)
      es == 4 ? b_f32(&x, (float)v[i]) : b_f64(&x, v[i]);
    b_crc(&x);
    spit(path, x.b, x.n);

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
  spit(path, x.b, x.n);
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
  char path[4400];
  tmp_path("meta.ckpt", path, sizeof path);
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
  char path[4400];
  tmp_path("mlp.ckpt", path, sizeof path);
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
  char path[4400];
  tmp_path("dup.ckpt", path, sizeof path);
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

/* ------------------------------------------------------------------------
 * Damaged files */

START_TEST(test_truncated_at_every_offset) {
  char path[4400], cut[4400];
  tmp_path("small.ckpt", path, sizeof path);
  tmp_path("cut.ckpt", cut, sizeof cut);
  model a, b;
  model_make(&a, 2, NULL, 1);
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "model=mlp", a.lists, 3, &err), TG_OK);
  size_t n;
  unsigned char *full = slurp(path, &n);

  model_make(&b, 2, NULL, 2);
  snapshot s = snap_take(&b);
  for (size_t len = 0; len < n; len++) {
    spit(cut, full, len);
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
  char path[4400], bad[4400];
  tmp_path("small.ckpt", path, sizeof path);
  tmp_path("flipped.ckpt", bad, sizeof bad);
  model a, b;
  model_make(&a, 2, NULL, 1);
  ck_assert_int_eq(tg_checkpoint_save(path, "m", a.lists, 3, NULL), TG_OK);
  size_t n;
  unsigned char *full = slurp(path, &n);
  model_make(&b, 2, NULL, 2);
  snapshot s = snap_take(&b);
  /* Every bit of every byte: CRC-32 catches any single flipped bit, and
   * the header checks come first. */
  for (size_t i = 0; i < n; i++)
    for (int bit = 0; bit < 8; bit++) {
      full[i] ^= (unsigned char)(1u << bit);
      spit(bad, full, n);
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
  char path[4400];
  tmp_path("bad.ckpt", path, sizeof path);
  tg_params p = {0};
  tg_tensor *w = tg_params_new(&p, "w", (int64_t[]){2}, 1, 0, NULL);
  w->data[0] = 1;
  tg_params *lists[] = {&p};
  ck_assert_int_eq(tg_checkpoint_save(path, "", lists, 1, NULL), TG_OK);
  size_t n;
  unsigned char *good = slurp(path, &n);
  unsigned char *b = malloc(n + 16);

  /* A future version, with a correct CRC. */
  memcpy(b, good, n);
  b[8] = 2;
  fix_crc(b, n);
  spit(path, b, n);
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
  spit(path, b, n);
  assert_load_fails(path, "not a tapegrad checkpoint", "magic");
  spit(path, "PK\3\4", 4); /* short and foreign */
  assert_load_fails(path, "bad magic", NULL);

  /* A CRC that does not match. */
  memcpy(b, good, n);
  b[n - 1] ^= 0x80;
  spit(path, b, n);
  assert_load_fails(path, "CRC mismatch: the file is corrupt", NULL);

  /* Element size 5. */
  memcpy(b, good, n);
  b[12] = 5;
  fix_crc(b, n);
  spit(path, b, n);
  assert_load_fails(path, "element size 5", NULL);

  /* Bytes after the last tensor. */
  memcpy(b, good, n - 4);
  memcpy(b + n - 4, "junk", 4);
  fix_crc(b, n + 4);
  spit(path, b, n + 4);
  assert_load_fails(path, "4 unexpected bytes", NULL);

  /* A dimension of 2^62: more values than the file holds, no overflow. */
  bytes x = {0};
  b_header(&x, 1, sizeof(tg_real), "", 1);
  b_tensor_head(&x, "w", 2, (int64_t[]){INT64_C(1) << 62, 4});
  b_crc(&x);
  spit(path, x.b, x.n);
  assert_load_fails(path, "more values than the file holds", NULL);
  /* A dimension of 0, and one that is negative as i64. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 1, (int64_t[]){0});
  b_crc(&x);
  spit(path, x.b, x.n);
  assert_load_fails(path, "dimension 0 is 0", NULL);
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 1, (int64_t[]){-3});
  b_crc(&x);
  spit(path, x.b, x.n);
  assert_load_fails(path, "is -3", NULL);
  /* Seven dimensions. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 1);
  b_tensor_head(&x, "w", 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1});
  b_f32(&x, 1);
  b_crc(&x);
  spit(path, x.b, x.n);
  assert_load_fails(path, "7 dimensions", NULL);
  /* A tensor count far beyond the file. */
  x = (bytes){0};
  b_header(&x, 1, 4, "", 4000000000u);
  b_crc(&x);
  spit(path, x.b, x.n);
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
  spit(path, x.b, x.n);
  assert_load_fails(path, "w: twice in the file", NULL);
  /* An empty file; a directory where the file should be. */
  spit(path, "", 0);
  assert_load_fails(path, "truncated at offset 0", NULL);
  ck_assert_int_eq(assert_load_fails(tmpdir, "not a regular file", tmpdir), TG_ERR_IO);

  free(b);
  free(good);
  tg_params_free(&p);
}
END_TEST

START_TEST(test_missing_file) {
  char path[4400];
  tmp_path("never-saved.ckpt", path, sizeof path);
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
  char path[4400];
  tmp_path("no-such-dir/mlp.ckpt", path, sizeof path);
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
  char path[4400], inner[4400];
  tmp_path("taken", path, sizeof path);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  tmp_path("taken/keep", inner, sizeof inner);
  spit(inner, "x", 1);
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
  char path[4400];
  tmp_path("mlp.ckpt", path, sizeof path);
  model small, big;
  model_make(&small, 2, NULL, 1);
  model_make(&big, 200, NULL, 2); /* ~ 40 kB of values */
  tg_error err = {0};
  ck_assert_int_eq(tg_checkpoint_save(path, "old", small.lists, 3, &err), TG_OK);
  size_t n_old;
  unsigned char *old = slurp(path, &n_old);

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
  unsigned char *now = slurp(path, &n_now);
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
  char path[4400];
  tmp_path("mlp.ckpt", path, sizeof path);
  model a, b, c;
  model_make(&a, 4, NULL, 1);
  model_make(&b, 4, NULL, 2);
  ck_assert_int_eq(tg_checkpoint_save(path, "first", a.lists, 3, NULL), TG_OK);
  size_t n_old;
  unsigned char *old = slurp(path, &n_old);
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
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("format");
  tcase_add_unchecked_fixture(tc, owner_setup, owner_teardown);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_round_trip_bit_exact);
  tcase_add_test(tc, test_layout_by_hand);
  tcase_add_test(tc, test_load_other_precision);
  tcase_add_test(tc, test_meta);
  suite_add_tcase(s, tc);
  tc = tcase_create("mismatch");
  tcase_add_unchecked_fixture(tc, owner_setup, owner_teardown);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_other_model_is_refused);
  tcase_add_test(tc, test_list_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("damage");
  tcase_add_unchecked_fixture(tc, owner_setup, owner_teardown);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_truncated_at_every_offset);
  tcase_add_test(tc, test_bit_flips);
  tcase_add_test(tc, test_bad_headers_and_structure);
  tcase_add_test(tc, test_missing_file);
  suite_add_tcase(s, tc);
  tc = tcase_create("save");
  tcase_add_unchecked_fixture(tc, owner_setup, owner_teardown);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, test_save_into_missing_directory);
  tcase_add_test(tc, test_save_onto_a_directory);
  tcase_add_test(tc, test_failed_write_keeps_the_old_file);
  tcase_add_test(tc, test_save_replaces_atomically);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
