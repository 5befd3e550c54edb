/* predict.c — `tapegrad predict`: a checkpoint's model on your own images.
 *
 * Each input, a PNG (any size, gray or colour) or an IDX image file, is
 * made into the model's input as the training images were made (gray,
 * padded square, area-averaged, bytes scaled by 1/255; image_read.h), and
 * the top classes are printed with their probabilities. An input that
 * cannot be read is reported by name and the others are still predicted;
 * the exit status says that something failed. Its command line is parsed
 * here, not in options.c, because nothing else shares it.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "image_read.h"
#include "pictures.h"

void predict_usage(FILE *f) {
  fprintf(f, "usage: tapegrad predict --checkpoint FILE [options] IMAGE...\n"
             "  IMAGE               a PNG (any size, gray or colour, alpha over black) or an\n"
             "                      IDX image file (every image in it); each is made gray,\n"
             "                      padded to a square, area-averaged to the model's input\n"
             "                      size and scaled as the training data was\n"
             "  --checkpoint FILE   the model (from tapegrad train --save)\n"
             "  --top K             print the K most likely classes (default 3)\n"
             "  --invert            the images are dark on light (drawings, photos of\n"
             "                      paper): invert them, transparency counts as white\n"
             "  --names N           class names: fashion (Fashion-MNIST's ten), digits,\n"
             "                      or none; default: from the checkpoint's data set\n"
             "  --tta flip          predict each image and its mirror image and average the\n"
             "                      probabilities (for clothes, not digits)\n"
             "  --json              one JSON object per input, in input order: file, class,\n"
             "                      name, top (a list of {class, name, p}); an input that\n"
             "                      cannot be read gives {file, error}\n"
             "An unreadable or corrupt image is reported by name and the others are still\n"
             "predicted; the exit status is then 1.\n");
}

typedef struct predict_opts {
  const char *checkpoint;
  long long top;
  int invert, json, help, tta;
  const char *names; /* NULL: from the checkpoint */
  int first_input;   /* argv index of the first IMAGE */
} predict_opts;

static int predict_parse(int argc, char **argv, predict_opts *p, FILE *err) {
  enum { P_CHECKPOINT = 256, P_TOP, P_INVERT, P_NAMES, P_TTA, P_JSON, P_HELP };
  static const struct option table[] = {{"checkpoint", required_argument, 0, P_CHECKPOINT},
                                        {"top", required_argument, 0, P_TOP},
                                        {"invert", no_argument, 0, P_INVERT},
                                        {"names", required_argument, 0, P_NAMES},
                                        {"tta", required_argument, 0, P_TTA},
                                        {"json", no_argument, 0, P_JSON},
                                        {"help", no_argument, 0, P_HELP},
                                        {0, 0, 0, 0}};
  memset(p, 0, sizeof *p);
  p->top = 3;
  optind = 0;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+:", table, NULL)) != -1) {
    switch (c) {
    case P_CHECKPOINT:
      p->checkpoint = optarg;
      break;
    case P_TOP:
      if (!cli_int(err, "predict", "top", optarg, 1, 1000, &p->top))
        return EXIT_USAGE;
      break;
    case P_INVERT:
      p->invert = 1;
      break;
    case P_NAMES:
      if (strcmp(optarg, "fashion") && strcmp(optarg, "digits") && strcmp(optarg, "none")) {
        fprintf(err, "tapegrad predict: --names: unknown value '%s' (fashion, digits, none)\n",
                optarg);
        return EXIT_USAGE;
      }
      p->names = optarg;
      break;
    case P_TTA:
      if (!cli_tta(err, "predict", optarg, &p->tta))
        return EXIT_USAGE;
      break;
    case P_JSON:
      p->json = 1;
      break;
    case P_HELP:
      p->help = 1;
      return EXIT_OK;
    case ':':
      fprintf(err, "tapegrad predict: option %s needs a value\n", argv[optind - 1]);
      return EXIT_USAGE;
    default:
      fprintf(err, "tapegrad predict: unknown option '%s'\ntry 'tapegrad predict --help'\n",
              argv[optind - 1]);
      return EXIT_USAGE;
    }
  }
  if (!p->checkpoint) {
    fprintf(err, "tapegrad predict: --checkpoint FILE is required\n");
    return EXIT_USAGE;
  }
  if (optind >= argc) {
    fprintf(err, "tapegrad predict: no IMAGE given\n");
    return EXIT_USAGE;
  }
  p->first_input = optind;
  return EXIT_OK;
}

/* s as a JSON string (quotes, backslashes and control characters
 * escaped), or null when s is NULL. */
static void json_string(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++)
    if (*c == '"' || *c == '\\')
      fprintf(f, "\\%c", *c);
    else if (*c < 0x20)
      fprintf(f, "\\u%04x", *c);
    else
      fputc(*c, f);
  fputc('"', f);
}

/* One input's images: n of them, (n, rows, cols) bytes, or an error. */
typedef struct input {
  int64_t n;
  uint8_t *pixels;
  int is_idx;
  tg_error err;
} input;

static void read_input(const char *path, int64_t rows, int64_t cols, int invert, input *in) {
  memset(in, 0, sizeof *in);
  const int64_t px = rows * cols;
  unsigned char sig[8] = {0};
  FILE *f = fopen(path, "rb");
  if (!f) {
    tg_error_set(&in->err, TG_ERR_IO, "%s: %s", path, strerror(errno));
    return;
  }
  size_t got = fread(sig, 1, 8, f);
  fclose(f);
  if (got == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0) {
    in->pixels = malloc((size_t)px);
    if (!in->pixels) {
      tg_error_set(&in->err, TG_ERR_MEMORY, "%s: out of memory", path);
      return;
    }
    if (tg_image_read_png(path, rows, cols, invert, in->pixels, &in->err) == TG_OK)
      in->n = 1;
    return;
  }
  /* Not a PNG: an IDX image file (rank 3), or an error naming the file. */
  tg_idx idx;
  tg_error ierr = {0};
  if (tg_idx_read(path, &idx, &ierr) != TG_OK) {
    tg_error_set(&in->err, ierr.status, "%s (neither a PNG nor a readable IDX image file)",
                 ierr.msg);
    return;
  }
  if (idx.ndim != 3) {
    tg_error_set(&in->err, TG_ERR_FORMAT, "%s: an IDX file of rank %d, not images (rank 3)", path,
                 idx.ndim);
    tg_idx_free(&idx);
    return;
  }
  const int64_t n = idx.dims[0], h = idx.dims[1], w = idx.dims[2];
  double *src = malloc(sizeof(double) * (size_t)(h * w)), *dst = malloc(sizeof(double) * px);
  in->pixels = malloc((size_t)(n * px));
  if (!src || !dst || !in->pixels) {
    tg_error_set(&in->err, TG_ERR_MEMORY, "%s: out of memory", path);
  } else {
    for (int64_t i = 0; i < n; i++) {
      for (int64_t k = 0; k < h * w; k++) {
        double v = idx.data[i * h * w + k];
        src[k] = invert ? 255 - v : v;
      }
      tg_image_area_average(src, h, w, dst, rows, cols);
      for (int64_t k = 0; k < px; k++)
        in->pixels[i * px + k] = (uint8_t)floor(dst[k] + 0.5);
    }
    in->n = n;
    in->is_idx = 1;
  }
  free(src);
  free(dst);
  tg_idx_free(&idx);
}

/* Prints one prediction from logits (classes,), the top k. */
static void print_one(const predict_opts *p, const char *file, int64_t index, int is_idx,
                      const tg_real *logits, int classes, const char *const *names) {
  double prob[256], mx = -INFINITY, sum = 0;
  int order[256];
  for (int j = 0; j < classes; j++)
    mx = logits[j] > mx ? logits[j] : mx;
  for (int j = 0; j < classes; j++)
    sum += prob[j] = exp((double)logits[j] - mx);
  for (int j = 0; j < classes; j++) {
    prob[j] /= sum;
    order[j] = j;
  }
  /* Insertion sort by probability, ties to the lower class. */
  for (int j = 1; j < classes; j++)
    for (int q = j; q > 0 && prob[order[q]] > prob[order[q - 1]]; q--) {
      int t = order[q];
      order[q] = order[q - 1];
      order[q - 1] = t;
    }
  int k = p->top < classes ? (int)p->top : classes;
  if (p->json) {
    printf("{\"file\":");
    json_string(stdout, file);
    if (is_idx)
      printf(",\"index\":%lld", (long long)index);
    printf(",\"class\":%d,\"name\":", order[0]);
    json_string(stdout, names ? names[order[0]] : NULL);
    printf(",\"top\":[");
    for (int j = 0; j < k; j++) {
      printf("%s{\"class\":%d,\"name\":", j ? "," : "", order[j]);
      json_string(stdout, names ? names[order[j]] : NULL);
      printf(",\"p\":%.6f}", prob[order[j]]);
    }
    printf("]}\n");
    return;
  }
  if (is_idx)
    printf("%s[%lld]:", file, (long long)index);
  else
    printf("%s:", file);
  for (int j = 0; j < k; j++) {
    if (names)
      printf("  %s %.3f", names[order[j]], prob[order[j]]);
    else
      printf("  %d %.3f", order[j], prob[order[j]]);
  }
  printf("\n");
}

int cmd_predict(int argc, char **argv) {
  predict_opts p;
  int rc = predict_parse(argc, argv, &p, stderr);
  if (rc != EXIT_OK)
    return rc;
  if (p.help) {
    predict_usage(stdout);
    return EXIT_OK;
  }
  train_opts o;
  memset(&o, 0, sizeof o);
  o.resume = p.checkpoint;
  o.data = "";
  tg_model *m = NULL;
  tg_optim *opt = NULL;
  rc = session_open(&o, "predict", &m, &opt);
  if (rc != EXIT_OK) {
    tg_optim_free(opt);
    tg_model_free(m);
    return EXIT_FAIL; /* a checkpoint with a bad configuration is bad data */
  }
  const int classes = (int)o.model.classes;
  const char *const *names = class_names(p.names, o.data_name, classes);
  const int64_t rows = o.model.input[1], cols = o.model.input[2];
  tg_tape *tape = tg_tape_new();
  if (!tape) {
    fprintf(stderr, "tapegrad predict: out of memory\n");
    rc = EXIT_FAIL;
  }
  tg_tape_set_train(tape, 0);
  tg_tape_set_grad(tape, 0);
  for (int a = p.first_input; tape && a < argc; a++) {
    input in;
    read_input(argv[a], rows, cols, p.invert, &in);
    if (in.n == 0) {
      fprintf(stderr, "tapegrad predict: %s\n", in.err.msg);
      if (p.json) {
        printf("{\"file\":");
        json_string(stdout, argv[a]);
        printf(",\"error\":");
        json_string(stdout, in.err.msg);
        printf("}\n");
      }
      rc = EXIT_FAIL;
      free(in.pixels);
      continue;
    }
    /* The images as a data set, so they are scaled by the training path. */
    tg_dataset ds = {.n = in.n,
                     .rows = rows,
                     .cols = cols,
                     .classes = classes,
                     .pixels = in.pixels,
                     .labels = calloc((size_t)in.n, 1)};
    for (int64_t start = 0; ds.labels && start < in.n; start += 100) {
      int64_t count = in.n - start < 100 ? in.n - start : 100;
      tg_tensor *x = tg_dataset_batch(tape, &ds, NULL, start, count, 0, NULL);
      tg_tensor *logits = cli_scores(tape, m, x, p.tta); /* (count, classes) */
      if (!logits) {
        fprintf(stderr, "tapegrad predict: %s: %s\n", argv[a], tg_tape_error(tape));
        rc = EXIT_FAIL;
        break;
      }
      for (int64_t i = 0; i < count; i++)
        print_one(&p, argv[a], start + i, in.is_idx, logits->data + i * classes, classes, names);
      tg_tape_reset(tape);
    }
    if (!ds.labels) {
      fprintf(stderr, "tapegrad predict: out of memory\n");
      rc = EXIT_FAIL;
    }
    tg_dataset_free(&ds);
    fflush(stdout);
  }
  tg_tape_free(tape);
  tg_optim_free(opt);
  tg_model_free(m);
  return rc;
}
