/* test_core.c — placeholder suite until the core tests land. */
#include "testutil.h"

START_TEST(test_placeholder) { ck_assert(1); }
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("core");
  TCase *tc = tcase_create("placeholder");
  tcase_add_test(tc, test_placeholder);
  suite_add_tcase(s, tc);
  return s;
}

TU_MAIN(make_suite)
