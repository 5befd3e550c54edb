/* schedule.c — learning-rate schedules (schedule.h): the rate of an update
 * as a function of its position, nothing else.
 *
 * It must not keep a counter of its own: the caller passes the update's
 * index, so a resumed run recomputes exactly the rates of an unbroken one.
 * A constant schedule without warm-up returns lr itself, untouched, so
 * training with it is bit-identical to training without a schedule.
 */
#include <math.h>
#include <string.h>

#include "schedule.h"

static const char *const names[] = {"constant", "step", "cosine"};
static const double PI = 3.14159265358979323846;

tg_schedule tg_schedule_constant(double lr) {
  return (tg_schedule){
      .kind = TG_SCHEDULE_CONSTANT, .lr = lr, .step_size = 1, .gamma = 0.1, .epochs = 1};
}

tg_status tg_schedule_parse(const char *name, tg_schedule_kind *kind) {
  for (int i = 0; name && i < (int)(sizeof names / sizeof names[0]); i++)
    if (strcmp(name, names[i]) == 0) {
      *kind = (tg_schedule_kind)i;
      return TG_OK;
    }
  return TG_ERR_ARG;
}

const char *tg_schedule_name(tg_schedule_kind kind) {
  return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

tg_status tg_schedule_check(const tg_schedule *s, tg_error *err) {
  if ((unsigned)s->kind >= sizeof names / sizeof names[0])
    return tg_error_set(err, TG_ERR_ARG, "schedule: unknown kind %d", (int)s->kind);
  if (!(s->lr > 0) || !isfinite(s->lr))
    return tg_error_set(err, TG_ERR_ARG, "schedule: lr is %g (must be finite and > 0)", s->lr);
  if (!(s->warmup >= 0) || !isfinite(s->warmup))
    return tg_error_set(err, TG_ERR_ARG, "schedule: warmup is %g (must be finite and >= 0)",
                        s->warmup);
  if (s->kind == TG_SCHEDULE_STEP && (!(s->step_size > 0) || !isfinite(s->step_size)))
    return tg_error_set(err, TG_ERR_ARG, "schedule: step_size is %g (must be finite and > 0)",
                        s->step_size);
  if (s->kind == TG_SCHEDULE_STEP && (!(s->gamma > 0) || !isfinite(s->gamma)))
    return tg_error_set(err, TG_ERR_ARG, "schedule: gamma is %g (must be finite and > 0)",
                        s->gamma);
  if (s->kind == TG_SCHEDULE_COSINE && (!(s->epochs > s->warmup) || !isfinite(s->epochs)))
    return tg_error_set(err, TG_ERR_ARG,
                        "schedule: cosine over %g epochs, not more than the warm-up's %g",
                        s->epochs, s->warmup);
  return TG_OK;
}

double tg_schedule_lr(const tg_schedule *s, int64_t step, int64_t steps_per_epoch) {
  double per = steps_per_epoch > 0 ? (double)steps_per_epoch : 1.0;
  double w = s->warmup * per; /* updates of warm-up */
  if ((double)(step + 1) < w)
    return s->lr * (double)(step + 1) / w;
  double u = (double)step / per - s->warmup;
  if (u < 0)
    u = 0;
  switch (s->kind) {
  case TG_SCHEDULE_STEP:
    return s->lr * pow(s->gamma, floor(u / s->step_size));
  case TG_SCHEDULE_COSINE: {
    double f = u / (s->epochs - s->warmup);
    return s->lr * 0.5 * (1.0 + cos(PI * (f < 1 ? f : 1)));
  }
  default:
    return s->lr;
  }
}

void tg_schedule_apply(const tg_schedule *s, tg_optim *opt, int64_t step, int64_t steps_per_epoch) {
  opt->cfg.lr = tg_schedule_lr(s, step, steps_per_epoch);
}
