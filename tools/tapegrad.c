/* tapegrad.c — the command-line program: `tapegrad train|eval|gradcheck`.
 *
 * This file only dispatches; each subcommand lives in its own file, and
 * options.c parses their command lines. Exit status: 0 success, 2 a usage error (unknown
 * subcommand or flag, a value out of range), 1 any other failure (bad
 * data, an unreadable or corrupt checkpoint, a save that cannot complete),
 * always with a message on stderr.
 */
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f, "usage: tapegrad COMMAND [options]\n"
             "\n"
             "commands:\n"
             "  train      train a model on MNIST-format data\n"
             "  eval       test accuracy of a checkpoint\n"
             "  gradcheck  compare a model's backward with numerical gradients\n"
             "  predict    classify your own images (PNG or IDX) with a checkpoint\n"
             "\n"
             "`tapegrad COMMAND --help` describes each command's options.\n");
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
  if (strcmp(cmd, "predict") == 0)
    return cmd_predict(argc - 1, argv + 1);
  fprintf(stderr, "tapegrad: unknown command '%s'\n", cmd);
  usage(stderr);
  return EXIT_USAGE;
}
