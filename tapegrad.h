/* tapegrad.h — the whole public API in one include.
 *
 * A tape records every op of the forward pass; backward walks it in
 * reverse. The smallest complete program:
 *
 *   #include <tapegrad.h>
 *   tg_tape *tape = tg_tape_new();
 *   tg_tensor *x = tg_tensor_new((int64_t[]){1}, 1, 1, "x", NULL);
 *   x->data[0] = 3;
 *   tg_tensor *y = tg_mul(tape, x, tg_mul(tape, x, x));   // y = x^3
 *   tg_backward(tape, y, NULL);                            // x->grad = 27
 *   printf("%g\n", tg_at(x->grad, 0));
 *   tg_tape_free(tape);
 *   tg_tensor_free(x);
 *
 * tensor.h: shapes, owned tensors.   tape.h: the tape, modes, backward.
 * ops.h: the primitive ops.          gradcheck.h: numerical gradient checks.
 *
 * Above the engine: nn.h the book's layers and losses; params.h parameter
 * sets and initialisers; optim.h the optimizers; checkpoint.h saving and
 * loading; data.h IDX files and data sets; model.h the book's networks.
 *
 * Errors, one policy for the whole library. Every failure is recorded by
 * one setter (tg_error_set) as a tg_status and a message; functions that
 * report success or failure return a tg_status (TG_OK = 0). What carries
 * the error depends on the object: an op or layer records it in its tape
 * ("who (op #k): what, with the shapes"), returns NULL, and every later op
 * on that tape, or given that NULL, returns NULL at once, so the caller
 * checks once (tg_tape_status, tg_tape_error) and tg_tape_reset clears it;
 * a figure keeps its first error the same way (tg_figure_status); calls
 * without a tape or figure (owned tensors, files, checkpoints, data sets,
 * configurations) take a tg_error *err, fill it (the first error wins; it
 * may be NULL) and return its status. A NULL tape or figure is accepted
 * everywhere and does nothing: its status is TG_ERR_NULL. Initialisers
 * given invalid arguments fill the tensor with NaN, which anomaly mode
 * names at the first op that reads it. Nothing aborts on bad input;
 * assert guards the engine's own invariants only.
 *
 * Not included here: tapegrad_ext.h, for writing new ops (op.h, arena.h)
 * and the composite twins of the fused ops (test oracles); plot.h, figures
 * and image grids, which live in their own library (pkg-config
 * tapegrad-plot) so that only programs that draw link cairo.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "augment.h"
#include "checkpoint.h"
#include "data.h"
#include "dist.h"
#include "gradcheck.h"
#include "holdout.h"
#include "model.h"
#include "nn.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "schedule.h"
#include "tape.h"
#include "tensor.h"

#endif
