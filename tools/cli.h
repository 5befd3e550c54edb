/* cli.h — what the subcommands of the tapegrad program share: exit codes,
 * option parsing helpers, and the training session. Program code only:
 * the library never prints or exits.
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include <stdio.h>

#include "augment.h"
#include "data.h"
#include "dist.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };
enum { DIST_AUTO = 0, DIST_ON, DIST_OFF };

/* Parsers for option values: write "tapegrad OP: --NAME: why" to err and
 * return 0 when the value is malformed or outside [lo, hi]. */
int cli_int(FILE *err, const char *cmd, const char *name, const char *s, long long lo, long long hi,
            long long *out);
int cli_real(FILE *err, const char *cmd, const char *name, const char *s, double lo, double hi,
             double *out);
/* --tta: "flip" (1) or "none" (0) into *tta. */
int cli_tta(FILE *err, const char *cmd, const char *s, int *tta);

/* The scores the program predicts from, (N, classes): the model's logits,
 * or with tta the log-probabilities averaged over x and its mirror image
 * (tg_model_forward_flip_tta). Both read as logits. */
static inline tg_tensor *cli_scores(tg_tape *tape, tg_model *m, tg_tensor *x, int tta) {
  return tta ? tg_model_forward_flip_tta(tape, m, x) : tg_model_forward(tape, m, x);
}

/* A training or evaluation run's settings, from the command line or a
 * checkpoint. */
typedef struct train_opts {
  tg_model_config model;
  tg_optim_config optim;
  const char *data;
  char data_name[256]; /* the data set a checkpoint was trained on ("" unknown) */
  long long epochs;
  long long batch;
  unsigned long long seed;
  long long limit;       /* train on the first `limit` samples; 0 = all */
  long long eval_train;  /* train accuracy over this many samples; 0 = all */
  const char *filters;   /* PREFIX of the filter pictures, or NULL */
  long long start_epoch; /* epochs already done (resume) */
  const char *save;
  const char *resume;
  const char *metrics;
  tg_schedule sched;         /* lr from optim.lr; epochs: cosine's length */
  tg_augment augment;        /* of the training batches; zeroed = none */
  long long val;             /* samples held out for validation; 0 = none */
  const char *save_best;     /* checkpoint of the best validation accuracy */
  const char *plot;          /* learning curves (.png/.svg), redrawn every epoch */
  const char *confusion;     /* eval: the confusion matrix picture */
  const char *misclassified; /* eval: the worst-classified test images */
  long long patience;        /* stop after this many epochs without gain; 0 = never */
  int tta;                   /* evaluate with the mirror images too (--tta flip) */
  double best_val_acc;       /* the best so far (-1: none yet), and its epoch */
  long long best_epoch;
  int json;
  int quiet;
  int profile;         /* print the op profile of the training steps */
  int threads;         /* OpenMP threads (per rank); 0 = the default */
  long long shards;    /* V micro-batches per global batch; 0 = one per rank */
  int distributed;     /* DIST_AUTO, DIST_ON or DIST_OFF */
  double dist_timeout; /* the watchdog's seconds */
  tg_dist *dist;       /* the job, when distributed (NULL: one process) */
  int failed_together; /* every rank knows of the failure: exit without MPI_Abort */
  int help;            /* --help was given: print the usage, do nothing else */
} train_opts;

/* `tapegrad gradcheck`'s settings. */
typedef struct gradcheck_opts {
  tg_model_config model; /* the kind's defaults with the flags applied */
  long long batch;
  long long seed;
  long long input_size; /* images of input_size x input_size; 0: the model's */
  double tol;
  int help;
} gradcheck_opts;

/* Command-line parsers (options.c). Each parses argv[1..argc-1] (argv[0] is
 * the subcommand) into its struct and returns EXIT_OK, or EXIT_USAGE after
 * writing one message naming the problem to err. They have no side effects
 * beyond that (no file is opened, no thread count set), leave argv as it
 * is, and give the same result however often they are called. */
int train_parse(int argc, char **argv, train_opts *o, FILE *err);
int eval_parse(int argc, char **argv, train_opts *o, FILE *err); /* checkpoint in o->resume */
int gradcheck_parse(int argc, char **argv, gradcheck_opts *g, FILE *err);
void train_usage(FILE *f);
void eval_usage(FILE *f);
void gradcheck_usage(FILE *f);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_predict(int argc, char **argv); /* predict.c */
void predict_usage(FILE *f);

/* Builds the model and optimizer of the checkpoint o->resume into *m and
 * *opt (o filled from its header), saying what failed on stderr as
 * "tapegrad CMD: ...". EXIT_OK, EXIT_FAIL or EXIT_USAGE. */
int session_open(train_opts *o, const char *cmd, tg_model **m, tg_optim **opt);

/* One rank of a job (job.c); with o->dist NULL, one process alone. */
/* "tapegrad CMD: MESSAGE" on stderr, "[rank r] " before it on ranks r > 0. */
void say(const train_opts *o, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Collective votes: whether every rank's ok is 1 (all_ok), rank 0's ok
 * (from_root). A failure known to all sets o->failed_together. */
int all_ok(train_opts *o, int ok);
int from_root(train_opts *o, int ok);
/* Collective: whether every rank holds rank 0's weights, buffers and
 * optimizer state (a checksum); rank 0 names the first that differs. */
int same_weights(train_opts *o, tg_model *m, tg_optim *opt, long long epoch);
/* Collective: an epoch's steps split into compute, exchange and wait
 * seconds (out[0..2], means over the ranks), from this rank's compute
 * seconds per step, compute (steps + 1,: the last slot is scratch), and
 * its seconds inside the exchanges. */
void step_split(train_opts *o, double *compute, int64_t steps, double exchange, double out[3]);
/* Whether mpirun (Open MPI, MPICH's Hydra, PMIx) started this process. */
int under_mpirun(void);
/* Collective: compares the settings (m NULL: the command line's, before
 * anything else is exchanged; else the model's and its parameters'
 * shapes) across ranks. EXIT_OK, or EXIT_USAGE with the field named. */
int check_job(train_opts *o, const tg_model *m);

/* Checkpoint text header: the model configuration, the optimizer and the
 * run's counters, as key=value lines. */
int session_meta_write(const train_opts *o, long long epochs_done, char *buf, size_t cap);
int session_meta_read(const char *meta, train_opts *o, long long *epochs_done, tg_error *err);

/* The tape's op profile (tape.h) on f: a title and the table, or with
 * json one line {"profile":[{"op":...,"calls":...,"fwd_s":...,
 * "bw_calls":...,"bw_s":...,"fwd_bytes":...,"bw_bytes":...},...]}. */
void print_profile(const tg_tape *tape, int json, FILE *f);

#endif
