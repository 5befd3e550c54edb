/* profile.c — `tapegrad train --profile`'s report: the tape's op profile
 * as the library's table for people, or as one JSON line for scripts.
 * Prints what the library measured; measures nothing itself.
 */
#include "cli.h"

void print_profile(const tg_tape *tape, int json, FILE *f) {
  enum { MAX_KINDS = 256 }; /* more than the profiler keeps */
  tg_op_profile rows[MAX_KINDS];
  const int n = tg_tape_get_profile(tape, rows, MAX_KINDS);
  if (!json) {
    fprintf(f, "op profile of the training steps (self time per kind of op; evaluation not "
               "included):\n");
    tg_tape_write_profile(tape, f);
    return;
  }
  fprintf(f, "{\"profile\":[");
  for (int i = 0; i < n && i < MAX_KINDS; i++)
    fprintf(f,
            "%s{\"op\":\"%s\",\"calls\":%lld,\"fwd_s\":%.6f,\"bw_calls\":%lld,\"bw_s\":%.6f,"
            "\"fwd_bytes\":%lld,\"bw_bytes\":%lld}",
            i ? "," : "", rows[i].name, (long long)rows[i].calls, rows[i].fwd_s,
            (long long)rows[i].bw_calls, rows[i].bw_s, (long long)rows[i].fwd_bytes,
            (long long)rows[i].bw_bytes);
  fprintf(f, "]}\n");
}
