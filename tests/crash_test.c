/* crash_test.c — checkpoints survive a SIGKILL at any moment.
 *
 * A child process saves a model's checkpoint in a tight loop, alternating
 * two self-consistent contents A and B (every value and the meta text say
 * which one); the parent kills it with SIGKILL after a random delay of 0 to
 * about four saves' time — before its first save, inside a write, a flush,
 * an fsync, the rename — many times over. After every kill the file must load cleanly
 * and equal A or B exactly, and temporary files may only be those of
 * killed savers that no later save has swept yet (nn/checkpoint.c removes
 * them); after a final save there are none.
 *
 * A plain program, not a Check suite (it forks on its own and must not
 * run under Check's fork). usage: crash_test [KILLS] (default 200); exit
 * status 0 on success. Runs in a fresh directory under $TMPDIR or /tmp.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"

#define ROWS 128
#define COLS 256 /* W is 128 KB in float: writes take long enough to be hit */

static char dir[4096], path[4200];

/* The value of element i of tensor k in content c (0 = A, 1 = B); exact
 * in float and double. */
static tg_real value(int c, int k, int64_t i) {
  return (tg_real)((c ? 1000.0 : -1000.0) + (double)k * 0.5 + (double)(i % 4093) * 0.25);
}

static void fill(tg_params *p, int c) {
  for (int k = 0; k < p->n; k++)
    for (int64_t i = 0; i < p->items[k]->numel; i++)
      p->items[k]->data[i] = value(c, k, i);
}

/* 0 = A, 1 = B, -1 = neither (mixed or other values). */
static int which(const tg_params *p) {
  for (int c = 0; c < 2; c++) {
    int ok = 1;
    for (int k = 0; ok && k < p->n; k++)
      for (int64_t i = 0; ok && i < p->items[k]->numel; i++)
        ok = p->items[k]->data[i] == value(c, k, i);
    if (ok)
      return c;
  }
  return -1;
}

static int make_model(tg_params *p) {
  tg_error err = {0};
  memset(p, 0, sizeof *p);
  if (!tg_params_new(p, "W", (int64_t[]){ROWS, COLS}, 2, 0, &err) ||
      !tg_params_new(p, "b", (int64_t[]){COLS}, 1, 0, &err) ||
      !tg_params_new(p, "step", NULL, 0, 0, &err)) {
    fprintf(stderr, "crash_test: %s\n", err.msg);
    return 0;
  }
  return 1;
}

/* The child: saves A, B, A, ... until killed. */
static void saver(void) {
  tg_params p;
  if (!make_model(&p))
    _exit(3);
  tg_params *lists[1] = {&p};
  for (int c = 0;; c ^= 1) {
    fill(&p, c);
    tg_error err = {0};
    if (tg_checkpoint_save(path, c ? "content=B" : "content=A", lists, 1, &err) != TG_OK) {
      fprintf(stderr, "crash_test: child save failed: %s\n", err.msg);
      _exit(4);
    }
  }
}

/* Entries of dir with ".tmp." in their name. */
static int count_tmp(void) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int k = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    k += strstr(e->d_name, ".tmp.") != NULL;
  closedir(d);
  return k;
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      char p[4400];
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
      }
    }
    closedir(d);
  }
  rmdir(dir);
}

/* xorshift64*: the delays (the kills' timing is the point, not the seed). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int kills = argc > 1 ? atoi(argv[1]) : 200;
  if (kills < 1) {
    fprintf(stderr, "usage: crash_test [KILLS >= 1]\n");
    return 2;
  }
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/tapegrad-crash-XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(dir)) {
    perror("crash_test: mkdtemp");
    return 1;
  }
  snprintf(path, sizeof path, "%s/model.ckpt", dir);

  tg_params p;
  if (!make_model(&p))
    return 1;
  tg_params *lists[1] = {&p};
  tg_error err = {0};
  fill(&p, 0);
  if (tg_checkpoint_save(path, "content=A", lists, 1, &err) != TG_OK) {
    fprintf(stderr, "crash_test: first save: %s\n", err.msg);
    return 1;
  }

  /* The delays scale with how long a save takes here (fsync dominates on
   * a disk, nothing on tmpfs): up to about four saves' time. */
  double ts = now_s();
  for (int i = 0; i < 3; i++)
    if (tg_checkpoint_save(path, "content=A", lists, 1, &err) != TG_OK) {
      fprintf(stderr, "crash_test: save: %s\n", err.msg);
      return 1;
    }
  unsigned span = (unsigned)((now_s() - ts) / 3 * 4e6) + 500;
  if (span > 100000)
    span = 100000;

  int failures = 0, seen[2] = {0, 0}, max_tmp = 0;
  double t0 = now_s();
  for (int k = 0; k < kills && failures < 5; k++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("crash_test: fork");
      return 1;
    }
    if (pid == 0)
      saver();
    /* 0..6 ms in µs, a third of them under 300 µs (early in a save). */
    uint64_t r = next_rand();
    unsigned delay = (unsigned)(r % 3 == 0 ? (r >> 8) % 300 : (r >> 8) % span);
    nanosleep(&(struct timespec){0, (long)delay * 1000}, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      fprintf(stderr, "crash_test: kill %d: the saver ended by itself (status %d)\n", k, status);
      failures++;
      continue;
    }
    fill(&p, 0);
    p.items[0]->data[0] = 12345; /* neither A nor B: a load must overwrite it */
    tg_error le = {0};
    char meta[64];
    tg_error me = {0};
    if (tg_checkpoint_load(path, lists, 1, &le) != TG_OK ||
        tg_checkpoint_read_meta(path, meta, sizeof meta, &me) != TG_OK) {
      fprintf(stderr, "crash_test: kill %d after %u us: the checkpoint does not load: %s%s\n", k,
              (unsigned)delay, le.msg, me.msg);
      failures++;
      continue;
    }
    int c = which(&p);
    if (c < 0 || strcmp(meta, c ? "content=B" : "content=A") != 0) {
      fprintf(stderr, "crash_test: kill %d after %u us: contents are neither A nor B (meta %s)\n",
              k, (unsigned)delay, meta);
      failures++;
      continue;
    }
    seen[c]++;
    int t = count_tmp();
    if (t > max_tmp)
      max_tmp = t;
  }
  /* One more save by a live process sweeps every orphan. */
  int left_before = count_tmp();
  fill(&p, 1);
  tg_error fe = {0};
  if (tg_checkpoint_save(path, "content=B", lists, 1, &fe) != TG_OK) {
    fprintf(stderr, "crash_test: final save: %s\n", fe.msg);
    failures++;
  }
  int left_after = count_tmp();
  if (left_after != 0) {
    fprintf(stderr, "crash_test: %d temporary files left after a successful save\n", left_after);
    failures++;
  }
  printf("crash_test: %d kills (delays 0..%u us) in %.1f s: %d loaded as A, %d as B; temporary "
         "files: at most %d at once, %d before the final save, %d after; %d failures\n",
         kills, span, now_s() - t0, seen[0], seen[1], max_tmp, left_before, left_after, failures);
  tg_params_free(&p);
  remove_dir();
  return failures ? 1 : 0;
}
