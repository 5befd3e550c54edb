/* fuzz_cli.c — a libFuzzer target for the command-line parsers (options.c).
 *
 * The input is a command line, its words separated by NUL bytes:
 * "train\0--epochs\0-1". The first word picks the parser (eval, gradcheck,
 * anything else: train) and becomes argv[0], as it is for the subcommands.
 * Each word is copied into its own allocation, so ASan sees a read past
 * any of them. Checked for every input:
 *   - the result is EXIT_OK or EXIT_USAGE;
 *   - a usage error writes one message, success writes nothing;
 *   - a success leaves every value inside the range the program relies on;
 *   - parsing again, after the two other parsers ran on the same words,
 *     gives the same result, message and options (getopt's global state is
 *     reset by each parser) and leaves argv as it was.
 * A violation aborts, which libFuzzer reports as a crash.
 *
 * Built only with clang and only on request (fuzz/meson.build); must not
 * be linked into the program or the library.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_WORDS 64

enum { P_TRAIN, P_EVAL, P_GRADCHECK };

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz_cli: %s:%d: %s does not hold\n", __FILE__, __LINE__, #cond);           \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static int bounded(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

/* A text form of what a parser produced, to compare two runs. */
static void dump_model(FILE *f, const tg_model_config *m) {
  CHECK(bounded(m->kind, sizeof m->kind) && bounded(m->activation, sizeof m->activation) &&
        bounded(m->init, sizeof m->init));
  fprintf(f, "%s %s %s %d %.17g %d %.17g %.17g %lld:", m->kind, m->activation, m->init, m->n_hidden,
          m->init_std, m->batchnorm, m->dropout, m->weight_decay, (long long)m->classes);
  for (int i = 0; i < m->n_hidden && i < TG_MODEL_MAX_HIDDEN; i++)
    fprintf(f, " %lld", (long long)m->hidden[i]);
  fputc('\n', f);
}

static void dump_train(FILE *f, const train_opts *o) {
  dump_model(f, &o->model);
  fprintf(f, "%d %.17g %.17g %.17g %.17g %.17g\n", (int)o->optim.kind, o->optim.lr,
          o->optim.momentum, o->optim.decay_rate, o->optim.beta1, o->optim.beta2);
  fprintf(f, "%p %p %p %p %p %lld %lld %llu %lld %lld %lld %d %d %d %d\n", (const void *)o->data,
          (const void *)o->filters, (const void *)o->save, (const void *)o->resume,
          (const void *)o->metrics, o->epochs, o->batch, o->seed, o->limit, o->eval_train,
          o->start_epoch, o->json, o->quiet, o->threads, o->help);
}

/* The ranges the program relies on after a successful parse. */
static void check_train(const train_opts *o, int train) {
  CHECK(o->data != NULL);
  if (o->help)
    return;
  if (!train) {
    CHECK(o->resume != NULL);
    return;
  }
  CHECK(o->epochs >= 1 && o->epochs <= 100000);
  CHECK(o->batch >= 1 && o->batch <= 1000000);
  CHECK(o->limit >= 0 && o->eval_train >= 0);
  CHECK(o->threads >= 0 && o->threads <= 1024);
  if (!o->resume) {
    const tg_model_config *m = &o->model;
    CHECK(isfinite(o->optim.lr) && o->optim.lr > 0);
    CHECK(m->n_hidden >= 0 && m->n_hidden <= TG_MODEL_MAX_HIDDEN);
    for (int i = 0; i < m->n_hidden; i++)
      CHECK(m->hidden[i] >= 1);
    CHECK(m->dropout >= 0 && m->dropout < 1);
    CHECK(m->weight_decay >= 0 && isfinite(m->weight_decay));
    CHECK(isfinite(m->init_std) && m->init_std >= 0);
    CHECK(m->kind[0] != '\0');
  }
}

static void check_gradcheck(const gradcheck_opts *g) {
  if (g->help)
    return;
  CHECK(g->batch >= 1 && g->batch <= 1000);
  CHECK(g->seed >= 0);
  CHECK(isfinite(g->tol) && g->tol > 0 && g->tol <= 1);
  CHECK(g->model.dropout >= 0 && g->model.dropout < 1);
  CHECK(g->model.kind[0] != '\0');
}

/* Runs parser p on argv; returns its exit code, its message (malloc'd, in
 * *msg) and the text form of its options (malloc'd, in *opts). */
static int run(int p, int argc, char **argv, char **msg, char **opts) {
  size_t msg_n = 0, opts_n = 0;
  FILE *err = open_memstream(msg, &msg_n), *out = open_memstream(opts, &opts_n);
  CHECK(err && out);
  int rc;
  if (p == P_GRADCHECK) {
    gradcheck_opts g;
    rc = gradcheck_parse(argc, argv, &g, err);
    if (rc == EXIT_OK) {
      check_gradcheck(&g);
      dump_model(out, &g.model);
      fprintf(out, "%lld %lld %.17g %d\n", g.batch, g.seed, g.tol, g.help);
    }
  } else {
    train_opts o;
    rc = p == P_EVAL ? eval_parse(argc, argv, &o, err) : train_parse(argc, argv, &o, err);
    if (rc == EXIT_OK) {
      check_train(&o, p == P_TRAIN);
      dump_train(out, &o);
    }
  }
  CHECK(fclose(err) == 0 && fclose(out) == 0);
  CHECK(rc == EXIT_OK || rc == EXIT_USAGE);
  if (rc == EXIT_OK)
    CHECK(msg_n == 0);
  else
    CHECK(msg_n > 0 && (*msg)[msg_n - 1] == '\n' && strlen(*msg) == msg_n);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *argv[MAX_WORDS + 1], *saved[MAX_WORDS];
  int argc = 0;
  size_t i = 0;
  while (i <= size && argc < MAX_WORDS) {
    const uint8_t *end = memchr(data + i, 0, size - i);
    size_t n = end ? (size_t)(end - (data + i)) : size - i;
    argv[argc] = malloc(n + 1);
    CHECK(argv[argc]);
    memcpy(argv[argc], data + i, n);
    argv[argc][n] = '\0';
    saved[argc] = argv[argc];
    argc++;
    i += n + 1;
  }
  argv[argc] = NULL;

  int p = strcmp(argv[0], "eval") == 0        ? P_EVAL
          : strcmp(argv[0], "gradcheck") == 0 ? P_GRADCHECK
                                              : P_TRAIN;
  char *msg1, *opts1, *msg2, *opts2, *m, *o;
  int rc1 = run(p, argc, argv, &msg1, &opts1);
  for (int q = P_TRAIN; q <= P_GRADCHECK; q++)
    if (q != p) {
      run(q, argc, argv, &m, &o);
      free(m);
      free(o);
    }
  int rc2 = run(p, argc, argv, &msg2, &opts2);
  CHECK(rc1 == rc2);
  CHECK(strcmp(msg1, msg2) == 0);
  CHECK(strcmp(opts1, opts2) == 0);
  for (int k = 0; k < argc; k++)
    CHECK(argv[k] == saved[k]); /* not permuted */
  free(msg1);
  free(opts1);
  free(msg2);
  free(opts2);
  for (int k = 0; k < argc; k++)
    free(argv[k]);
  return 0;
}
