/* optim.h — the book's optimizers over a parameter list.
 *
 * Updates read each parameter's gradient buffer, change its data in
 * place, then zero the gradient. They run outside any tape. State
 * (velocities, moments, the step count) lives in owned tensors in a
 * tg_params list, so it can be inspected and checkpointed like weights.
 */
#ifndef TG_OPTIM_H
#define TG_OPTIM_H

#include "params.h"

typedef enum tg_optim_kind {
  TG_SGD,
  TG_MOMENTUM,
  TG_NESTEROV,
  TG_ADAGRAD,
  TG_RMSPROP,
  TG_ADAM,
} tg_optim_kind;

typedef struct tg_optim_config {
  tg_optim_kind kind;
  double lr;
  double momentum;   /* Momentum, Nesterov */
  double decay_rate; /* RMSprop */
  double beta1;      /* Adam */
  double beta2;      /* Adam */
} tg_optim_config;

/* The book's defaults for a kind (e.g. SGD lr 0.01; Adam lr 0.001, 0.9,
 * 0.999; Momentum 0.9; RMSprop decay 0.99). */
TG_API tg_optim_config tg_optim_defaults(tg_optim_kind kind);

/* "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"; TG_OK or
 * TG_ERR_ARG. tg_optim_name is the inverse. */
TG_API tg_status tg_optim_parse(const char *name, tg_optim_kind *kind);
TG_API const char *tg_optim_name(tg_optim_kind kind);

typedef struct tg_optim {
  tg_optim_config cfg;
  tg_params *params; /* not owned */
  tg_params state;   /* owned: "<param>.<slot>" tensors and the scalar "step" */
  int64_t step;      /* updates done (mirrored in the "step" tensor) */
} tg_optim;

/* Returns a new optimizer for params (every tensor of the list that
 * requires grad now; tensors added to the list later are not trained), or
 * NULL with err filled (invalid config: unknown kind, lr <= 0 or not
 * finite, the kind's momentum/decay_rate/betas outside [0, 1)). Fields
 * the kind does not use are not read. State is created zeroed: "step"
 * (shape (1,)) first, then per trained parameter "<name>.v" (Momentum,
 * Nesterov), "<name>.h" (AdaGrad, RMSprop) or "<name>.m", "<name>.v"
 * (Adam). params must outlive the optimizer. */
TG_API tg_optim *tg_optim_new(const tg_optim_config *cfg, tg_params *params, tg_error *err);
TG_API void tg_optim_free(tg_optim *opt);

/* One update of every trained parameter that still requires grad, from
 * its gradient; then zeroes every gradient of the list and counts the
 * step (opt->step and the "step" tensor). Allocates nothing. */
TG_API void tg_optim_step(tg_optim *opt);

/* After the "step" tensor was loaded from a checkpoint: re-reads it (a
 * negative or non-finite value restarts the count at 0). In the float
 * build the tensor counts exactly up to 2^24 steps. */
TG_API void tg_optim_sync_step(tg_optim *opt);

#endif
