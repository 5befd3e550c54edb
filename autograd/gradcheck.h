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
 *
 * Kinks. Where the function is only piecewise smooth (ReLU, max-pooling,
 * maximum, abs, where, comparisons), a central difference whose step
 * changes one of those decisions measures a slope backward never took:
 * moving a bias moves thousands of pre-activations, and one of exactly 0
 * (a window of zeros, a zero bias) flips at any step. While gradcheck
 * evaluates the function, every such op fingerprints its decisions (the
 * mask, the signs, the max's positions; op.h's tg_kinked_op), and a
 * comparison is made only on a step whose ends took the decisions of the
 * unperturbed point, the piece backward differentiated. A coordinate (or
 * direction) whose central step at eps changed a decision "crossed a
 * kink": it is checked instead with the step shrunk (up to 100-fold), or
 * one-sided on a side that keeps the point's decisions (second order:
 * (−3 L(x) + 4 L(x + s) − L(x + 2s)) / 2s), and counted apart, its error
 * in kink_worst_rel; when every step crosses on both sides (|x| at 0,
 * whose gradient there is the subgradient 0) it is counted and not
 * compared. A wrong rule on a smooth piece is never excused this way:
 * it errs on the coordinates that cross nothing, and on the kinked ones
 * checked one-sided.
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
  double worst_rel;    /* worst relative error over the comparisons that crossed no kink */
  int64_t worst_index; /* its element, or its direction number (-1: none) */
  double analytic;     /* backward's value there */
  double numeric;      /* central difference there */
  int directional;     /* 1 when checked along random directions */
  /* Added with kink detection (fields after these may follow; initialise
   * reports by name, or let tg_gradcheck fill them). */
  int64_t checked;          /* elements or directions compared at step eps, crossing no kink */
  int64_t kinks;            /* elements or directions whose step eps crossed a kink */
  int64_t kinks_checked;    /* of kinks, compared on a smaller or one-sided step */
  double kink_worst_rel;    /* worst relative error over those */
  int64_t kink_worst_index; /* its element or direction (-1: none) */
} tg_gradcheck_report;

/* Checks every input that requires grad (others get worst_rel = 0 and
 * checked = kinks = 0). inputs must be leaves that stay valid: owned
 * tensors, or arena tensors made before the call (gradcheck rewinds the
 * tape to where it found it). fn runs in the caller's grad mode (on, for
 * backward to work), so it may call tg_grad itself (a gradient penalty,
 * L = f(x) + |∂f/∂x|²); it must compute the same function each time (a
 * function that draws from the tape's generator reseeds it first).
 * Returns TG_OK, or the tape's status if fn or backward failed. reports
 * has n entries. */
TG_API tg_status tg_gradcheck(tg_tape *tape, tg_gradcheck_fn fn, void *ctx, int n,
                              tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                              tg_gradcheck_report *reports);

/* Worst relative error over all inputs of a report array, kinked
 * comparisons (kink_worst_rel) included: a smaller or one-sided step
 * carries more rounding, but a wrong rule errs by far more. */
TG_API double tg_gradcheck_worst(const tg_gradcheck_report *reports, int n);

/* Elements or directions that crossed a kink at every step: not compared. */
TG_API int64_t tg_gradcheck_unchecked(const tg_gradcheck_report *reports, int n);

/* One line per input: "input 1 W: worst relative error 3.2e-09 at element
 * 17: backward 0.5, numeric 0.5", and when some crossed a kink, "; 3 of
 * 120 crossed a kink: 2 checked on a smaller or one-sided step, worst
 * 4e-09 at element 5; 1 not compared". */
TG_API void tg_gradcheck_print(const tg_gradcheck_report *reports, int n, tg_tensor *const *inputs,
                               FILE *f);

#endif
