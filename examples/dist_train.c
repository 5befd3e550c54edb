/* dist_train.c — data-parallel training from C with tg_dist_*: a
 * two-layer net written by hand, its own training loop, any number of
 * ranks, the same weights to the bit.
 *
 *   build/examples/dist_train                        # one process
 *   mpirun -np 2 build/examples/dist_train           # two ranks, same result
 *   mpirun -np 2 build/examples/dist_train --shards 4 --optim adam --save w.bin
 *
 * The data are synthetic (three Gaussian blobs in 20 dimensions, from the
 * seed), so the program needs no file. Every global batch of --batch
 * samples is --shards micro-batches; each rank computes its consecutive
 * share of them and tg_dist_shard_allreduce sums their gradients in one
 * fixed tree, so 1, 2 or 4 ranks with the same --shards end with the same
 * weights (--save writes them raw, from rank 0, to compare with cmp).
 * --batchnorm adds a Batch Norm layer, whose running statistics travel
 * with the gradients. Any error ends the whole job through tg_dist_abort,
 * prefixed with the rank; the watchdog (--timeout) ends a job that stalls.
 * It must not read anything that differs between ranks except the rank.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

enum { D = 20, H = 32, C = 3, SAMPLES = 960 };

typedef struct options {
  int shards, batch, steps, batchnorm;
  unsigned long long seed;
  double timeout;
  const char *optim, *save;
} options;

static void usage(void) {
  fprintf(stderr, "usage: dist_train [--shards V] [--batch B] [--steps S] [--optim sgd|adam]\n"
                  "                  [--seed N] [--batchnorm] [--timeout SEC] [--save FILE]\n");
}

static int parse(int argc, char **argv, options *o) {
  *o = (options){.shards = 2, .batch = 96, .steps = 50, .seed = 1, .optim = "sgd"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--batchnorm")) {
      o->batchnorm = 1;
      continue;
    }
    if (!v)
      return -1;
    i++;
    if (!strcmp(a, "--shards"))
      o->shards = atoi(v);
    else if (!strcmp(a, "--batch"))
      o->batch = atoi(v);
    else if (!strcmp(a, "--steps"))
      o->steps = atoi(v);
    else if (!strcmp(a, "--seed"))
      o->seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--timeout"))
      o->timeout = atof(v);
    else if (!strcmp(a, "--optim"))
      o->optim = v;
    else if (!strcmp(a, "--save"))
      o->save = v;
    else
      return -1;
  }
  return o->shards >= 1 && o->batch >= o->shards && o->batch % o->shards == 0 && o->steps >= 0 ? 0
                                                                                               : -1;
}

/* x (SAMPLES, D), labels (SAMPLES,): blob c centred at 2·e_c. */
static void make_data(unsigned long long seed, tg_real *x, tg_real *labels) {
  tg_rng rng;
  tg_rng_seed(&rng, seed ^ 0x5eedda7aull);
  for (int i = 0; i < SAMPLES; i++) {
    int c = i % C;
    labels[i] = (tg_real)c;
    for (int j = 0; j < D; j++)
      x[i * D + j] = (tg_real)(tg_rng_normal(&rng) + (j == c ? 2.0 : 0.0));
  }
}

typedef struct net {
  tg_params params, buffers;
  tg_tensor *W1, *b1, *W2, *b2; /* (D, H), (H,), (H, C), (C,) */
  tg_batchnorm bn;
  int batchnorm;
} net;

static int net_init(net *n, int batchnorm, tg_rng *rng, tg_error *err) {
  n->batchnorm = batchnorm;
  n->W1 = tg_params_new(&n->params, "W1", (int64_t[]){D, H}, 2, 1, err);
  n->b1 = tg_params_new(&n->params, "b1", (int64_t[]){H}, 1, 1, err);
  n->W2 = tg_params_new(&n->params, "W2", (int64_t[]){H, C}, 2, 1, err);
  n->b2 = tg_params_new(&n->params, "b2", (int64_t[]){C}, 1, 1, err);
  if (!n->W1 || !n->b1 || !n->W2 || !n->b2)
    return TG_ERR_MEMORY;
  tg_init_he(n->W1, D, rng);
  tg_init_he(n->W2, H, rng);
  if (batchnorm)
    return tg_batchnorm_init(&n->bn, "bn", H, &n->params, &n->buffers, err);
  return TG_OK;
}

/* The loss of samples idx[0..b-1]: a scalar on the tape. */
static tg_tensor *net_loss(tg_tape *tape, net *n, const tg_real *x, const tg_real *labels,
                           const int64_t *idx, int64_t b) {
  tg_tensor *xb = tg_empty(tape, (int64_t[]){b, D}, 2); /* (b, D) */
  tg_tensor *tb = tg_empty(tape, (int64_t[]){b}, 1);    /* (b,) */
  if (!xb || !tb)
    return NULL;
  for (int64_t i = 0; i < b; i++) {
    memcpy(xb->data + i * D, x + idx[i] * D, D * sizeof(tg_real));
    tb->data[i] = labels[idx[i]];
  }
  tg_tensor *h = tg_affine(tape, xb, n->W1, n->b1); /* (b, H) */
  if (n->batchnorm)
    h = tg_batchnorm_forward(tape, &n->bn, h);
  tg_tensor *logits = tg_affine(tape, tg_relu(tape, h), n->W2, n->b2); /* (b, C) */
  return tg_softmax_cross_entropy(tape, logits, tb);
}

static void check(tg_dist *d, int status, const tg_error *err) {
  if (status != TG_OK)
    tg_dist_abort(d, err->msg);
}

int main(int argc, char **argv) {
  options o;
  if (parse(argc, argv, &o) != 0) { /* every rank sees the same arguments */
    usage();
    return 2;
  }
  tg_error err = {0};
  tg_dist *d = tg_dist_new(&argc, &argv, &(tg_dist_options){.timeout = o.timeout}, &err);
  if (!d) {
    fprintf(stderr, "dist_train: %s\n", err.msg);
    return 1;
  }
  int rank = tg_dist_rank(d);

  /* Everything that must agree across ranks, checked before any step. */
  char shards[16], batch[16], seed[24], steps[16];
  snprintf(shards, sizeof shards, "%d", o.shards);
  snprintf(batch, sizeof batch, "%d", o.batch);
  snprintf(seed, sizeof seed, "%llu", o.seed);
  snprintf(steps, sizeof steps, "%d", o.steps);
  const tg_dist_field cfg[] = {{"model", o.batchnorm ? "20-32-bn-3" : "20-32-3"},
                               {"optimizer", o.optim},
                               {"seed", seed},
                               {"batch", batch},
                               {"shards", shards},
                               {"steps", steps}};
  check(d, tg_dist_check_config(d, cfg, (int)(sizeof cfg / sizeof cfg[0]), &err), &err);

  tg_real *x = malloc(SAMPLES * D * sizeof *x), *labels = malloc(SAMPLES * sizeof *labels);
  int64_t *order = malloc(SAMPLES * sizeof *order);
  tg_tape *tape = tg_tape_new();
  if (!x || !labels || !order || !tape)
    tg_dist_abort(d, "dist_train: out of memory");
  make_data(o.seed, x, labels);
  tg_rng rng;
  tg_rng_seed(&rng, o.seed);
  net n = {0};
  check(d, net_init(&n, o.batchnorm, &rng, &err), &err);

  tg_optim_kind kind;
  if (tg_optim_parse(o.optim, &kind) != TG_OK)
    tg_dist_abort(d, "dist_train: --optim takes sgd, momentum, nesterov, adagrad, rmsprop, adam");
  tg_optim_config oc = tg_optim_defaults(kind);
  if (kind == TG_SGD)
    oc.lr = 0.1;
  tg_optim *opt = tg_optim_new(&oc, &n.params, &err);
  if (!opt)
    tg_dist_abort(d, err.msg);
  tg_dist_shards *s = tg_dist_shards_new(d, &n.params, &n.buffers, o.shards, &err);
  if (!s)
    tg_dist_abort(d, err.msg);
  int first, count;
  tg_dist_shard_range(s, &first, &count);
  int64_t per = o.batch / o.shards; /* samples per shard */

  for (int64_t i = 0; i < SAMPLES; i++)
    order[i] = i;
  int64_t pos = SAMPLES;
  for (int step = 0; step < o.steps; step++) {
    if (pos + o.batch > SAMPLES) { /* a new epoch: the same shuffle on every rank */
      for (int64_t i = SAMPLES - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(&rng, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      pos = 0;
    }
    tg_dist_shard_begin(s);
    tg_real loss = 0; /* this rank's shards' losses, summed */
    for (int k = first; k < first + count; k++) {
      tg_tensor *l = net_loss(tape, &n, x, labels, order + pos + k * per, per);
      if (!l || tg_backward(tape, l, NULL) != TG_OK) {
        char msg[TG_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "dist_train: step %d: %s", step, tg_tape_error(tape));
        tg_dist_abort(d, msg);
      }
      loss += l->data[0];
      tg_tape_reset(tape);
      check(d, tg_dist_shard_accumulate(s, &err), &err);
    }
    check(d, tg_dist_shard_allreduce(s, &err), &err);
    tg_optim_step(opt);
    pos += o.batch;
    /* Only for printing: the mean loss over all shards. */
    check(d, tg_dist_allreduce(d, &loss, 1, &err), &err);
    if (rank == 0 && (step % 10 == 0 || step == o.steps - 1))
      printf("step %3d  loss %.6f\n", step, (double)loss / o.shards);
  }

  if (o.save && rank == 0) {
    FILE *f = fopen(o.save, "wb");
    for (int i = 0; f && i < n.params.n; i++)
      fwrite(n.params.items[i]->data, sizeof(tg_real), (size_t)n.params.items[i]->numel, f);
    for (int i = 0; f && i < n.buffers.n; i++)
      fwrite(n.buffers.items[i]->data, sizeof(tg_real), (size_t)n.buffers.items[i]->numel, f);
    if (!f || fclose(f) != 0)
      tg_dist_abort(d, "dist_train: cannot write --save file");
  }
  if (rank == 0)
    printf("%d rank%s, %d shards of %lld samples, %s: done\n", tg_dist_size(d),
           tg_dist_size(d) > 1 ? "s" : "", o.shards, (long long)per, o.optim);
  tg_dist_shards_free(s);
  tg_optim_free(opt);
  tg_params_free(&n.params);
  tg_params_free(&n.buffers);
  tg_tape_free(tape);
  free(x);
  free(labels);
  free(order);
  tg_dist_free(d);
  return 0;
}
