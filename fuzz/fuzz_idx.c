/* fuzz_idx.c — a libFuzzer target for the IDX reader.
 *
 * The first input byte picks the container: odd means the rest is written
 * gzipped (so the fuzzer explores IDX contents behind the gzip path, which
 * it could not reach by mutating compressed bytes), even means it is
 * written as it is (which also reaches zlib with raw, damaged gzip streams
 * when the rest starts with 1f 8b). Either way tg_idx_read must return,
 * with TG_OK and a consistent array or with a message naming the file,
 * and never allocate more than the bytes present allow.
 *
 * Built only with clang and only on request (fuzz/meson.build); must not
 * be linked into the library or the tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"

static char path[4096];

static void remove_input(void) { unlink(path); }

static void put(const uint8_t *b, size_t n, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb1");
    if (!f)
      abort();
    if (n && gzwrite(f, b, (unsigned)n) != (int)n)
      abort();
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n)
      abort();
    fclose(f);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!path[0]) {
    /* TMPDIR=/dev/shm keeps the per-input file off the disk (faster). */
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz_idx_%ld", dir && dir[0] ? dir : "/tmp", (long)getpid());
    atexit(remove_input);
  }
  if (size < 1 || size > (1u << 20))
    return 0;
  put(data + 1, size - 1, data[0] & 1);
  tg_idx a;
  tg_error err = {0};
  if (tg_idx_read(path, &a, &err) == TG_OK) {
    int64_t n = 1;
    for (int i = 0; i < a.ndim; i++)
      n *= a.dims[i];
    if (n != a.count || a.count > (int64_t)size * 1100 || !a.data)
      abort();
    tg_idx_free(&a);
  } else if (!strstr(err.msg, path) || a.data) {
    abort();
  }
  return 0;
}
