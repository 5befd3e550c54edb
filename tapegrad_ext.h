/* tapegrad_ext.h — the interface for extending the engine, on top of
 * tapegrad.h.
 *
 * For op authors and for tests, not for models: op.h (how an op is
 * written and recorded), parallel.h (the threading of elementwise
 * kernels), arena.h (the allocator behind a step) and composite.h (the
 * composite twins of the fused ops, kept as test oracles). A model never
 * needs it; what it declares may change with the engine's internals.
 */
#ifndef TAPEGRAD_EXT_H
#define TAPEGRAD_EXT_H

#include "arena.h"
#include "composite.h"
#include "op.h"
#include "parallel.h"
#include "tapegrad.h"

#endif
