/* mkdata.c — writes a small synthetic MNIST-format data set for the
 * program's end-to-end tests: 28×28 images (or SIZE×SIZE) whose class is
 * the position of a bright bar, plus noise, so a network can learn it in
 * one epoch.
 * usage: mkdata DIR N_TRAIN N_TEST SEED [SIZE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

static int write_set(const char *dir, const char *prefix, int64_t n, int64_t size, tg_rng *rng) {
  const int64_t px = size * size;
  tg_idx images = {3, {n, size, size}, n * px, malloc((size_t)(n * px))};
  tg_idx labels = {1, {n}, n, malloc((size_t)n)};
  tg_error err = {0};
  char path[4096];
  int ok = images.data && labels.data;
  for (int64_t i = 0; ok && i < n; i++) {
    int c = (int)tg_rng_below(rng, 10);
    labels.data[i] = (uint8_t)c;
    for (int64_t p = 0; p < px; p++) {
      int64_t row = p / size * 28 / size; /* as on 28 rows */
      int bar = row >= 2 + 2 * c && row < 4 + 2 * c;
      images.data[i * px + p] =
          (uint8_t)(bar ? 200 + tg_rng_below(rng, 56) : tg_rng_below(rng, 60));
    }
  }
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
  ok = ok && tg_idx_write(path, &images, &err) == TG_OK;
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
  ok = ok && tg_idx_write(path, &labels, &err) == TG_OK;
  if (!ok)
    fprintf(stderr, "mkdata: %s\n", err.msg[0] ? err.msg : "out of memory");
  free(images.data);
  free(labels.data);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: mkdata DIR N_TRAIN N_TEST SEED [SIZE]\n");
    return 2;
  }
  tg_rng rng;
  tg_rng_seed(&rng, strtoull(argv[4], NULL, 10));
  const int64_t size = argc == 6 ? atoll(argv[5]) : 28;
  if (size < 1 || size > 1000) {
    fprintf(stderr, "mkdata: SIZE %s out of 1..1000\n", argv[5]);
    return 2;
  }
  return write_set(argv[1], "train", atoll(argv[2]), size, &rng) &&
                 write_set(argv[1], "t10k", atoll(argv[3]), size, &rng)
             ? 0
             : 1;
}
