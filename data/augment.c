/* augment.c — random crops, flips and erasing (augment.h).
 *
 * One generator per sample, seeded from the sample's key, draws the crop's
 * offsets, then the flip, then the erasing, always in that order and
 * always each draw that the spec asks for, so a sample's picture depends
 * on its key alone, and adding erase to a spec leaves the crops and flips
 * of every key as they were. It must not draw from a shared generator:
 * that would tie a sample's augmentation to the batch it sits in.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "parallel.h" /* tg_parallel_for */

#define WANT "crop:P, flip and erase[:P]"

tg_status tg_augment_parse(const char *spec, tg_augment *a, tg_error *err) {
  memset(a, 0, sizeof *a);
  const char *p = spec ? spec : "";
  if (!*p)
    return tg_error_set(err, TG_ERR_ARG, "augment: empty; want a list of " WANT);
  while (*p) {
    size_t len = strcspn(p, ",");
    char item[32];
    if (len == 0 || len >= sizeof item || (p[len] == ',' && !p[len + 1]))
      return tg_error_set(err, TG_ERR_ARG, "augment: '%s' is not a list of " WANT, spec);
    memcpy(item, p, len);
    item[len] = '\0';
    char *end;
    if (strcmp(item, "flip") == 0 && !a->flip) {
      a->flip = 1;
    } else if (strncmp(item, "crop:", 5) == 0 && !a->crop_pad) {
      long v = strtol(item + 5, &end, 10);
      if (end == item + 5 || *end || v < 1 || v > 64)
        return tg_error_set(err, TG_ERR_ARG, "augment: '%s': the padding must be 1 to 64", item);
      a->crop_pad = (int)v;
    } else if (strcmp(item, "erase") == 0 && !a->erase) {
      a->erase = 0.5; /* the paper's default */
    } else if (strncmp(item, "erase:", 6) == 0 && !a->erase) {
      double v = strtod(item + 6, &end);
      if (end == item + 6 || *end || !(v > 0 && v <= 1))
        return tg_error_set(err, TG_ERR_ARG,
                            "augment: '%s': the probability must be above 0 and at most 1", item);
      a->erase = v;
    } else {
      return tg_error_set(err, TG_ERR_ARG,
                          "augment: '%s' is unknown or repeated (" WANT ", once each)", item);
    }
    p += len + (p[len] == ',');
  }
  return TG_OK;
}

tg_status tg_augment_format(const tg_augment *a, char *buf, size_t cap) {
  char crop[24] = "", erase[40] = "";
  if (a->crop_pad)
    snprintf(crop, sizeof crop, "crop:%d", a->crop_pad);
  if (a->erase > 0) {
    /* the fewest digits that read back as the same double: 0.5, not
     * 0.50000000000000000 */
    for (int digits = 1; digits <= 17; digits++) {
      snprintf(erase, sizeof erase, "erase:%.*g", digits, a->erase);
      if (strtod(erase + 6, NULL) == a->erase)
        break;
    }
  }
  const char *part[3] = {crop, a->flip ? "flip" : "", erase};
  char all[96] = "";
  for (int i = 0; i < 3; i++)
    if (*part[i])
      snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", *all ? "," : "", part[i]);
  int n = snprintf(buf, cap, "%s", *all ? all : "none");
  return n >= 0 && (size_t)n < cap ? TG_OK : TG_ERR_ARG;
}

int tg_augment_active(const tg_augment *a) { return a->crop_pad || a->flip || a->erase > 0; }

uint64_t tg_augment_key(uint64_t epoch_seed, int64_t index) {
  /* splitmix64's finaliser over the pair: a change of either bit flips
   * about half of the key's bits. */
  uint64_t z = epoch_seed ^ ((uint64_t)index + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Random erasing as Zhong et al. describe it, with two choices of ours:
 * the aspect ratio is log-uniform (as torchvision's), so tall and wide
 * rectangles are equally likely, where the paper's uniform ratio in
 * [0.3, 3.3] makes 77% of them tall; and the fill is random values in
 * [0, 1), the paper's best fill, in the range of the data's pixels
 * (zeros would look like the background of Fashion-MNIST's pictures, a
 * smaller garment rather than a hidden part of one). A rectangle that
 * does not fit is drawn again, 10 times at most, as torchvision does; the
 * paper retries without end. x: (rows, cols). */
static void erase_rect(tg_rng *rng, tg_real *x, int64_t rows, int64_t cols) {
  const double area = (double)rows * (double)cols;
  for (int attempt = 0; attempt < 10; attempt++) {
    double s = area * (0.02 + 0.38 * tg_rng_uniform(rng));
    double ratio = pow(0.3, 1 - 2 * tg_rng_uniform(rng)); /* h/w in [0.3, 1/0.3] */
    int64_t h = (int64_t)lround(sqrt(s * ratio)), w = (int64_t)lround(sqrt(s / ratio));
    if (h < 1 || w < 1 || h > rows || w > cols)
      continue;
    int64_t top = (int64_t)tg_rng_below(rng, (uint64_t)(rows - h + 1));
    int64_t left = (int64_t)tg_rng_below(rng, (uint64_t)(cols - w + 1));
    for (int64_t r = top; r < top + h; r++)
      for (int64_t c = left; c < left + w; c++)
        x[r * cols + c] = (tg_real)tg_rng_uniform(rng);
    return;
  }
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
  int erase = a->erase > 0 && tg_rng_uniform(&rng) < a->erase;
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
  if (erase)
    erase_rect(&rng, dst, rows, cols);
}

typedef struct batch_ctx {
  const tg_augment *a;
  const tg_real *src;
  tg_real *dst;
  int64_t rows, cols;
  uint64_t epoch_seed;
  const int64_t *index;
} batch_ctx;

static void batch_images(void *arg, int64_t lo, int64_t hi) {
  const batch_ctx *c = arg;
  const int64_t px = c->rows * c->cols;
  for (int64_t i = lo; i < hi; i++)
    tg_augment_image(c->a, c->src + i * px, c->dst + i * px, c->rows, c->cols,
                     tg_augment_key(c->epoch_seed, c->index[i]));
}

void tg_augment_batch(const tg_augment *a, const tg_real *src, tg_real *dst, int64_t count,
                      int64_t rows, int64_t cols, uint64_t epoch_seed, const int64_t *index) {
  /* A few hundred nanoseconds per 28×28 sample, about half an element
   * operation per pixel: threads only pay off for big batches. */
  batch_ctx c = {a, src, dst, rows, cols, epoch_seed, index};
  const int64_t px = rows * cols;
  tg_parallel_for(count, tg_grain_of(px / 2), count * px / 2, batch_images, &c);
}
