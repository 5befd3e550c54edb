/* augment.c — random crops and flips (augment.h).
 *
 * One generator per sample, seeded from the sample's key, draws the crop's
 * offsets and then the flip, always in that order and always all of them
 * that the spec asks for, so a sample's picture depends on its key alone.
 * It must not draw from a shared generator: that would tie a sample's
 * augmentation to the batch it sits in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "parallel.h"

tg_status tg_augment_parse(const char *spec, tg_augment *a, tg_error *err) {
  memset(a, 0, sizeof *a);
  const char *p = spec ? spec : "";
  if (!*p)
    return tg_error_set(err, TG_ERR_ARG, "augment: empty; want crop:P, flip or crop:P,flip");
  while (*p) {
    size_t len = strcspn(p, ",");
    char item[32];
    if (len == 0 || len >= sizeof item || (p[len] == ',' && !p[len + 1]))
      return tg_error_set(err, TG_ERR_ARG, "augment: '%s' is not a list of crop:P and flip", spec);
    memcpy(item, p, len);
    item[len] = '\0';
    if (strcmp(item, "flip") == 0 && !a->flip) {
      a->flip = 1;
    } else if (strncmp(item, "crop:", 5) == 0 && !a->crop_pad) {
      char *end;
      long v = strtol(item + 5, &end, 10);
      if (end == item + 5 || *end || v < 1 || v > 64)
        return tg_error_set(err, TG_ERR_ARG, "augment: '%s': the padding must be 1 to 64", item);
      a->crop_pad = (int)v;
    } else {
      return tg_error_set(err, TG_ERR_ARG,
                          "augment: '%s' is unknown or repeated (crop:P and flip, once each)",
                          item);
    }
    p += len + (p[len] == ',');
  }
  return TG_OK;
}

tg_status tg_augment_format(const tg_augment *a, char *buf, size_t cap) {
  int n;
  if (a->crop_pad && a->flip)
    n = snprintf(buf, cap, "crop:%d,flip", a->crop_pad);
  else if (a->crop_pad)
    n = snprintf(buf, cap, "crop:%d", a->crop_pad);
  else
    n = snprintf(buf, cap, "%s", a->flip ? "flip" : "none");
  return n >= 0 && (size_t)n < cap ? TG_OK : TG_ERR_ARG;
}

uint64_t tg_augment_key(uint64_t epoch_seed, int64_t index) {
  /* splitmix64's finaliser over the pair: a change of either bit flips
   * about half of the key's bits. */
  uint64_t z = epoch_seed ^ ((uint64_t)index + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void tg_augment_image(const tg_augment *a, const tg_real *src, tg_real *dst, int64_t rows,
                      int64_t cols, uint64_t key) {
  tg_rng rng;
  tg_rng_seed(&rng, key);
  const int64_t p = a->crop_pad;
  /* dst(r, c) = src(r + dy, c + dx) inside the image, 0 in the padding */
  int64_t dy = p ? (int64_t)tg_rng_below(&rng, (uint64_t)(2 * p + 1)) - p : 0;
  int64_t dx = p ? (int64_t)tg_rng_below(&rng, (uint64_t)(2 * p + 1)) - p : 0;
  int flip = a->flip && tg_rng_below(&rng, 2);
  for (int64_t r = 0; r < rows; r++) {
    tg_real *out = dst + r * cols; /* (cols,) */
    int64_t sr = r + dy;
    if (sr < 0 || sr >= rows) {
      memset(out, 0, (size_t)cols * sizeof *out);
      continue;
    }
    const tg_real *in = src + sr * cols; /* (cols,) */
    for (int64_t c = 0; c < cols; c++) {
      int64_t sc = (flip ? cols - 1 - c : c) + dx;
      out[c] = sc >= 0 && sc < cols ? in[sc] : 0;
    }
  }
}

typedef struct batch_ctx {
  const tg_augment *a;
  const tg_real *src;
  tg_real *dst;
  int64_t rows, cols;
  uint64_t epoch_seed;
  const int64_t *index;
} batch_ctx;

static void augment_range(void *ctx, int64_t lo, int64_t hi) {
  const batch_ctx *c = ctx;
  const int64_t px = c->rows * c->cols;
  for (int64_t i = lo; i < hi; i++)
    tg_augment_image(c->a, c->src + i * px, c->dst + i * px, c->rows, c->cols,
                     tg_augment_key(c->epoch_seed, c->index[i]));
}

void tg_augment_batch(const tg_augment *a, const tg_real *src, tg_real *dst, int64_t count,
                      int64_t rows, int64_t cols, uint64_t epoch_seed, const int64_t *index) {
  batch_ctx c = {a, src, dst, rows, cols, epoch_seed, index};
  /* A few hundred nanoseconds per 28×28 sample, a few operations a pixel:
   * threads only pay off for big batches. */
  tg_parallel_for(count, tg_grain_of(rows * cols), count * rows * cols, augment_range, &c);
}
