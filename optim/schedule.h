/* schedule.h — learning-rate schedules for any optimizer: constant, step
 * decay and cosine, each with an optional linear warm-up in front.
 *
 * A schedule is a pure function of the update's position in training, so
 * it keeps no state beyond its configuration and resumes exactly from a
 * checkpoint that stores that configuration. It steps per update, at
 * fractional epochs: update k (0-based) of a run with S updates per epoch
 * sits at t = k / S epochs. It writes only the optimizer's cfg.lr and
 * never touches parameters or optimizer state.
 */
#ifndef TG_SCHEDULE_H
#define TG_SCHEDULE_H

#include "optim.h"

typedef enum tg_schedule_kind {
  TG_SCHEDULE_CONSTANT,
  TG_SCHEDULE_STEP,
  TG_SCHEDULE_COSINE,
} tg_schedule_kind;

/* With W = warmup·S updates of warm-up, update k uses
 *   lr·(k + 1)/W                      while k + 1 < W (linear warm-up),
 * and afterwards, at u = max(0, t − warmup) epochs past the warm-up,
 *   constant  lr
 *   step      lr·gamma^floor(u / step_size)
 *   cosine    lr·½(1 + cos(π·min(1, u / (epochs − warmup))))
 * so cosine reaches 0 at `epochs` and stays there. */
typedef struct tg_schedule {
  tg_schedule_kind kind;
  double lr;        /* the base rate (the optimizer's configured lr) */
  double warmup;    /* epochs of linear warm-up, >= 0 (0: none) */
  double step_size; /* step: epochs between decays, > 0 */
  double gamma;     /* step: factor per decay, > 0 */
  double epochs;    /* cosine: the whole length, warm-up included, > warmup */
} tg_schedule;

/* A constant schedule at lr: step_size 1, gamma 0.1, no warm-up. */
TG_API tg_schedule tg_schedule_constant(double lr);

/* "constant", "step", "cosine"; TG_OK or TG_ERR_ARG. tg_schedule_name is
 * the inverse ("?" for an unknown kind). */
TG_API tg_status tg_schedule_parse(const char *name, tg_schedule_kind *kind);
TG_API const char *tg_schedule_name(tg_schedule_kind kind);

/* TG_OK, or TG_ERR_ARG with err naming the bad field (lr <= 0, a negative
 * warm-up, step_size or gamma <= 0, cosine epochs <= warmup, any value
 * not finite, an unknown kind). */
TG_API tg_status tg_schedule_check(const tg_schedule *s, tg_error *err);

/* The rate of update `step` (0-based, counted from the start of training)
 * when an epoch has steps_per_epoch (>= 1) updates. */
TG_API double tg_schedule_lr(const tg_schedule *s, int64_t step, int64_t steps_per_epoch);

/* Sets opt->cfg.lr to tg_schedule_lr(s, step, steps_per_epoch): call it
 * before each tg_optim_step. */
TG_API void tg_schedule_apply(const tg_schedule *s, tg_optim *opt, int64_t step,
                              int64_t steps_per_epoch);

#endif
