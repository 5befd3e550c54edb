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
 * op.h: for writing new ops.
 *
 * Above the engine: nn.h the book's layers and losses; params.h parameter
 * sets and initialisers; optim.h the optimizers; checkpoint.h saving and
 * loading; data.h IDX files and data sets; model.h the dense models;
 * plot.h figures and image grids (PNG or SVG, drawn with cairo).
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "checkpoint.h"
#include "data.h"
#include "dist.h"
#include "gradcheck.h"
#include "model.h"
#include "nn.h"
#include "op.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "plot.h"
#include "tape.h"
#include "tensor.h"

#endif
