/* init.c — the book's weight initialisers: constant, Gaussian with a given
 * standard deviation, Xavier (√(1/fan_in)) and He (√(2/fan_in)).
 *
 * Every random value comes from the generator the caller passes (a tape's
 * or the model's), never from a global one, so a seeded run reproduces.
 * These functions return nothing; rather than leave a silently zero (and
 * so dead) layer, an invalid argument fills the tensor with NaN, which the
 * first forward pass shows and anomaly mode names.
 */
#include "params.h"

#include <math.h>

static void fill_nan(tg_tensor *t) { tg_tensor_fill(t, (tg_real)NAN); }

void tg_init_constant(tg_tensor *t, double v) { tg_tensor_fill(t, (tg_real)v); }

void tg_init_normal(tg_tensor *t, double std, tg_rng *rng) {
  if (!t)
    return;
  if (!rng || !(std >= 0) || !isfinite(std)) {
    fill_nan(t);
    return;
  }
  for (int64_t i = 0; i < t->numel; i++)
    t->data[i] = (tg_real)(std * tg_rng_normal(rng));
  tg_tensor_bump(t);
}

void tg_init_xavier(tg_tensor *t, int64_t fan_in, tg_rng *rng) {
  tg_init_normal(t, fan_in >= 1 ? sqrt(1.0 / (double)fan_in) : NAN, rng);
}

void tg_init_he(tg_tensor *t, int64_t fan_in, tg_rng *rng) {
  tg_init_normal(t, fan_in >= 1 ? sqrt(2.0 / (double)fan_in) : NAN, rng);
}
