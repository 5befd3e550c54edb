/* gradcheck.h — backward's gradients against central differences.
 *
 * The function under test maps n input tensors to one output of any
 * shape. gradcheck reduces the output to a scalar L = Σ w ⊙ y with a fixed
 * random, non-uniform weighting w (a plain sum would hide a transposed
 * gradient), takes ∂L/∂x from the tape, and compares it with
 * (L(x + εe) − L(x − εe)) / 2ε: along every coordinate e for inputs of at
 * most elementwise_max elements, along random unit directions v (comparing
 * ⟨∇L, v⟩) for larger ones.
 *
 * The relative error of a pair is |a − n| / max(|a|, |n|, floor).
 */
#ifndef TG_GRADCHECK_H
#define TG_GRADCHECK_H

#include "tape.h"

/* Builds the output from inputs on tape; returns NULL on failure. */
typedef tg_tensor *(*tg_gradcheck_fn)(tg_tape *tape, tg_tensor *const *inputs, void *ctx);

typedef struct tg_gradcheck_opts {
  double eps;              /* step; 0 = 1e-6 (double) or 1e-2 (float) */
  double floor;            /* denominator floor; 0 = 1e-3 */
  int64_t elementwise_max; /* 0 = 4096 */
  int directions;          /* random directions for larger inputs; 0 = 8 */
  uint64_t seed;           /* for the weighting and the directions */
} tg_gradcheck_opts;

typedef struct tg_gradcheck_report {
  double worst_rel;    /* worst relative error over this input */
  int64_t worst_index; /* its element, or its direction number */
  double analytic;     /* backward's value there */
  double numeric;      /* central difference there */
  int directional;     /* 1 when checked along random directions */
} tg_gradcheck_report;

/* Checks every input that requires grad (others get worst_rel = 0).
 * inputs must be leaves that stay valid: owned tensors, or arena tensors
 * made before the call (gradcheck rewinds the tape to where it found it).
 * Returns TG_OK, or the tape's status if fn or backward failed. reports
 * has n entries. */
TG_API tg_status tg_gradcheck(tg_tape *tape, tg_gradcheck_fn fn, void *ctx, int n,
                              tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                              tg_gradcheck_report *reports);

/* Worst relative error over all inputs of a report array. */
TG_API double tg_gradcheck_worst(const tg_gradcheck_report *reports, int n);

/* One line per input: "input 1 (W): worst rel 3.2e-09 at [17]: 0.5 vs 0.5". */
TG_API void tg_gradcheck_print(const tg_gradcheck_report *reports, int n, tg_tensor *const *inputs,
                               FILE *f);

#endif
