/* fuzz_checkpoint.c — a libFuzzer target for the checkpoint reader.
 *
 * Each input is written as it is to a file and handed to
 * tg_checkpoint_read_meta and to tg_checkpoint_load with a small fixed
 * model: "W" (2, 3), "b" (3,) in one list, "s" (a scalar) in another — the
 * shapes of the seed corpus (tests/fuzz-corpus/checkpoint/), so mutations
 * reach the matching and copying code too. Both calls must return; a
 * refused file must leave every model tensor bit-identical and give a
 * message naming the file; an accepted one must have passed its CRC. The
 * element size byte lets the fuzzer reach both the float and the double
 * decoders from either build.
 *
 * Built only with clang and only on request (fuzz/meson.build); must not be
 * linked into the library or the tests. TMPDIR=/dev/shm keeps the
 * per-input file off the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"

static char path[4096];
static tg_params weights, extra;
static tg_real before[16];

static void cleanup(void) {
  unlink(path);
  tg_params_free(&weights);
  tg_params_free(&extra);
}

static void setup(void) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/fuzz_checkpoint_%ld", dir && dir[0] ? dir : "/tmp",
           (long)getpid());
  tg_error err = {0};
  if (!tg_params_new(&weights, "W", (int64_t[]){2, 3}, 2, 1, &err) ||
      !tg_params_new(&weights, "b", (int64_t[]){3}, 1, 1, &err) ||
      !tg_params_new(&extra, "s", NULL, 0, 0, &err))
    abort();
  atexit(cleanup);
}

/* The model's 10 values, in list order. */
static int snapshot(tg_real *out) {
  int k = 0;
  tg_params *lists[2] = {&weights, &extra};
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < lists[l]->n; i++)
      for (int64_t j = 0; j < lists[l]->items[i]->numel; j++)
        out[k++] = lists[l]->items[i]->data[j];
  return k;
}

/* Fills the model with a pattern no valid load of the corpus produces. */
static void poison(void) {
  tg_params *lists[2] = {&weights, &extra};
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < lists[l]->n; i++)
      for (int64_t j = 0; j < lists[l]->items[i]->numel; j++)
        lists[l]->items[i]->data[j] = (tg_real)(-1000 - 7 * j - 100 * i - 1000 * l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!path[0])
    setup();
  if (size > (1u << 20))
    return 0;
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size))
    abort();
  fclose(f);

  char meta[TG_CHECKPOINT_META_MAX];
  tg_error err = {0};
  int st = tg_checkpoint_read_meta(path, meta, sizeof meta, &err);
  if (st != TG_OK && !strstr(err.msg, path))
    abort();
  if (st == TG_OK && strlen(meta) >= sizeof meta)
    abort();

  poison();
  int n = snapshot(before);
  tg_params *lists[2] = {&weights, &extra};
  tg_error lerr = {0};
  int ls = tg_checkpoint_load(path, lists, 2, &lerr);
  if (ls != TG_OK) {
    tg_real after[16];
    snapshot(after);
    if (memcmp(before, after, (size_t)n * sizeof(tg_real)) != 0 || !strstr(lerr.msg, path))
      abort();
  }
  /* A file the loader accepts is structurally valid, so the meta reader
   * must accept it as well. */
  if (ls == TG_OK && st != TG_OK)
    abort();
  /* Another subset of names: the same file, a model of one list. */
  tg_error serr = {0};
  if (tg_checkpoint_load(path, lists, 1, &serr) == TG_OK && ls == TG_OK)
    abort(); /* both cannot be exact matches of the file */
  return 0;
}
