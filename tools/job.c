/* job.c — what `tapegrad train` does as one rank of an MPI job: messages
 * prefixed with the rank, votes and broadcasts of success, the weight
 * checksum and the configuration check. Every function here works alone
 * too (o->dist NULL: one process, nothing exchanged). It must not hold
 * the training loop (train.c) nor call MPI itself: dist.h only.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "tapegrad CMD: MESSAGE" on stderr, prefixed "[rank r] " on the other
 * ranks of a job: rank 0 speaks for the job. */
void say(const train_opts *o, const char *cmd, const char *fmt, ...) {
  char msg[2 * TG_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (tg_dist_rank(o->dist) > 0)
    fprintf(stderr, "[rank %d] tapegrad %s: %s\n", tg_dist_rank(o->dist), cmd, msg);
  else
    fprintf(stderr, "tapegrad %s: %s\n", cmd, msg);
}

/* Collective: whether every rank's ok is 1. A rank that cannot vote
 * (MPI failing) ends the job. */
int all_ok(train_opts *o, int ok) {
  int n = tg_dist_size(o->dist);
  if (n == 1)
    return ok;
  int votes[256], *v = n <= 256 ? votes : malloc((size_t)n * sizeof *v);
  tg_error err = {0};
  if (!v || tg_dist_allgather(o->dist, &ok, sizeof ok, v, &err) != TG_OK)
    tg_dist_abort(o->dist, v ? err.msg : "tapegrad train: out of memory");
  int all = 1;
  for (int r = 0; r < n; r++)
    all &= v[r] == 1;
  if (v != votes)
    free(v);
  if (!all)
    o->failed_together = 1;
  return all;
}

/* Collective: whether every rank holds the weights, buffers and optimizer
 * state of rank 0; if not, rank 0 names the first rank that differs. */
int same_weights(train_opts *o, tg_model *m, tg_optim *opt, long long epoch) {
  const tg_params *lists[] = {&m->params, &m->buffers, &opt->state};
  tg_error err = {0};
  int st = tg_dist_check_same(o->dist, lists, 3, &err);
  if (st == TG_OK)
    return 1;
  if (st != TG_ERR_ARG)
    tg_dist_abort(o->dist, err.msg);
  if (tg_dist_rank(o->dist) == 0)
    say(o, "train", "after epoch %lld: %s: the ranks are out of step", epoch, err.msg);
  o->failed_together = 1;
  return 0;
}

/* Ranks leave each exchange together, so a rank that reaches the next one
 * before the slowest waits there for it: its wait in step s is the ranks'
 * largest compute time of step s minus its own, and the rest of its time
 * in the exchanges is the messages themselves. */
void step_split(train_opts *o, double *compute, int64_t steps, double exchange, double out[3]) {
  int N = tg_dist_size(o->dist);
  int64_t w = steps + 1; /* a rank's row: its steps, then its exchange total */
  double *all = malloc((size_t)N * (size_t)w * sizeof *all); /* (N, steps + 1) */
  tg_error err = {0};
  compute[steps] = exchange;
  if (!all || tg_dist_allgather(o->dist, compute, w * (int64_t)sizeof *all, all, &err) != TG_OK)
    tg_dist_abort(o->dist, all ? err.msg : "tapegrad train: out of memory");
  out[0] = out[1] = out[2] = 0;
  for (int64_t s = 0; s < steps; s++) {
    double slowest = 0;
    for (int r = 0; r < N; r++)
      slowest = all[r * w + s] > slowest ? all[r * w + s] : slowest;
    for (int r = 0; r < N; r++) {
      out[0] += all[r * w + s];
      out[2] += slowest - all[r * w + s];
    }
  }
  for (int r = 0; r < N; r++)
    out[1] += all[r * w + steps];
  out[1] -= out[2];
  for (int k = 0; k < 3; k++)
    out[k] /= N;
  free(all);
}

/* Collective: rank 0's ok, on every rank; a failure is everyone's. */
int from_root(train_opts *o, int ok) {
  tg_error err = {0};
  if (tg_dist_broadcast(o->dist, &ok, sizeof ok, 0, &err) != TG_OK)
    tg_dist_abort(o->dist, err.msg);
  if (!ok)
    o->failed_together = 1;
  return ok;
}

/* Whether mpirun started this process: the variables of Open MPI, of
 * MPICH's Hydra and of PMIx. */
int under_mpirun(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i]))
      return 1;
  return 0;
}

/* Collective: the settings every rank must share, compared by hash
 * (dist.h) before anything else is exchanged; a mismatch names the
 * field, on every rank. `params` adds the parameters' names and shapes
 * (after build). */
int check_job(train_opts *o, const tg_model *m) {
  if (tg_dist_size(o->dist) == 1)
    return EXIT_OK;
  char model[1024] = "", optim[256], nums[10][32], sched[256], aug[64] = "", params[4096] = "";
  tg_model_config_write(&o->model, model, sizeof model);
  tg_augment_format(&o->augment, aug, sizeof aug);
  const tg_optim_config *c = &o->optim;
  snprintf(optim, sizeof optim, "%s lr=%.17g momentum=%.17g decay_rate=%.17g beta=%.17g,%.17g",
           tg_optim_name(c->kind), c->lr, c->momentum, c->decay_rate, c->beta1, c->beta2);
  snprintf(sched, sizeof sched, "%s warmup=%.17g step=%.17g gamma=%.17g epochs=%.17g",
           tg_schedule_name(o->sched.kind), o->sched.warmup, o->sched.step_size, o->sched.gamma,
           o->sched.epochs);
  long long v[10] = {(long long)o->seed, o->batch, o->shards,   o->epochs,    o->limit,
                     o->eval_train,      o->val,   o->patience, tg_threads(), o->tta};
  for (int i = 0; i < 10; i++)
    snprintf(nums[i], sizeof nums[i], "%lld", v[i]);
  size_t len = 0;
  for (int l = 0; m && l < 2; l++) {
    const tg_params *p = l ? &m->buffers : &m->params;
    for (int i = 0; i < p->n && len < sizeof params - 64; i++) {
      const tg_tensor *t = p->items[i];
      len += (size_t)snprintf(params + len, sizeof params - len, "%s(", t->name);
      for (int d = 0; d < t->ndim && len < sizeof params - 32; d++)
        len += (size_t)snprintf(params + len, sizeof params - len, "%s%lld", d ? "," : "",
                                (long long)t->shape[d]);
      len += (size_t)snprintf(params + len, sizeof params - len, ") ");
    }
  }
  const tg_dist_field before[] = {{"resume", o->resume ? o->resume : ""},
                                  {"model", model},
                                  {"optimizer", optim},
                                  {"seed", nums[0]},
                                  {"batch", nums[1]},
                                  {"shards", nums[2]},
                                  {"epochs", nums[3]},
                                  {"limit", nums[4]},
                                  {"eval-train", nums[5]},
                                  {"val", nums[6]},
                                  {"patience", nums[7]},
                                  {"threads", nums[8]},
                                  {"tta", nums[9]},
                                  {"schedule", sched},
                                  {"augment", aug},
                                  {"data", o->data ? o->data : ""},
                                  {"save", o->save ? o->save : ""},
                                  {"save-best", o->save_best ? o->save_best : ""}};
  const tg_dist_field after[] = {{"model", model}, {"parameters", params}};
  tg_error err = {0};
  int st = m ? tg_dist_check_config(o->dist, after, 2, &err)
             : tg_dist_check_config(o->dist, before, (int)(sizeof before / sizeof before[0]), &err);
  if (st == TG_OK)
    return EXIT_OK;
  say(o, "train", "%s", err.msg);
  o->failed_together = 1;
  return err.status == TG_ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
}
