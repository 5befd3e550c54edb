/* tapegrad.c — the command-line program: `tapegrad train|eval|gradcheck`.
 *
 * This file only dispatches and holds the value parsers; each subcommand
 * lives in its own file. Exit status: 0 success, 2 a usage error (unknown
 * subcommand or flag, a value out of range), 1 any other failure (bad
 * data, an unreadable or corrupt checkpoint, a save that cannot complete),
 * always with a message on stderr.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f, "usage: tapegrad COMMAND [options]\n"
             "\n"
             "commands:\n"
             "  train      train a model on MNIST-format data\n"
             "  eval       test accuracy of a checkpoint\n"
             "  gradcheck  compare a model's backward with numerical gradients\n"
             "\n"
             "`tapegrad COMMAND --help` describes each command's options.\n");
}

int cli_int(const char *cmd, const char *name, const char *s, long long lo, long long hi,
            long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE) {
    fprintf(stderr, "tapegrad %s: --%s: '%s' is not an integer\n", cmd, name, s);
    return 0;
  }
  if (v < lo || v > hi) {
    fprintf(stderr, "tapegrad %s: --%s: %lld is out of range (%lld to %lld)\n", cmd, name, v, lo,
            hi);
    return 0;
  }
  *out = v;
  return 1;
}

int cli_real(const char *cmd, const char *name, const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) {
    fprintf(stderr, "tapegrad %s: --%s: '%s' is not a finite number\n", cmd, name, s);
    return 0;
  }
  if (v < lo || v > hi) {
    fprintf(stderr, "tapegrad %s: --%s: %g is out of range (%g to %g)\n", cmd, name, v, lo, hi);
    return 0;
  }
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "train") == 0)
    return cmd_train(argc - 1, argv + 1);
  if (strcmp(cmd, "eval") == 0)
    return cmd_eval(argc - 1, argv + 1);
  if (strcmp(cmd, "gradcheck") == 0)
    return cmd_gradcheck(argc - 1, argv + 1);
  fprintf(stderr, "tapegrad: unknown command '%s'\n", cmd);
  usage(stderr);
  return EXIT_USAGE;
}
