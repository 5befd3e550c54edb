/* hostile_test_helpers.h — what the two hostile catalogues
 * (test_hostile_ops.c, test_hostile_state.c) share: ASan told to let
 * exabyte requests fail as the library expects, and arena leaves built in
 * one expression. Header-only; include it once per suite.
 */
#ifndef TG_HOSTILE_TEST_HELPERS_H
#define TG_HOSTILE_TEST_HELPERS_H

#include <stdarg.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
/* Exabyte requests must come back NULL (an error) instead of ASan's abort;
 * the library's answer to them is what is tested. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* An arena leaf (requires grad) of the given dims, values in [0.5, 1.5):
 * positive and away from kinks, so only the hostile part matters. */
static tg_tensor *L(tg_tape *t, int nd, ...) {
  int64_t s[TG_MAX_DIMS] = {0};
  va_list ap;
  va_start(ap, nd);
  for (int i = 0; i < nd; i++)
    s[i] = va_arg(ap, int64_t);
  va_end(ap);
  return tu_leaf(t, s, nd, 0.5, 1.5);
}
#define L1(a)          L(T, 1, (int64_t)(a))
#define L2(a, b)       L(T, 2, (int64_t)(a), (int64_t)(b))
#define L3(a, b, c)    L(T, 3, (int64_t)(a), (int64_t)(b), (int64_t)(c))
#define L4(a, b, c, d) L(T, 4, (int64_t)(a), (int64_t)(b), (int64_t)(c), (int64_t)(d))

#endif
