/* idx.c — reading and writing IDX files (the MNIST format), gzipped or plain.
 *
 * zlib's gz* functions read a gzipped file and a plain one alike, so there
 * is one reader. Everything a file says about itself is checked before it
 * is believed: the magic, the element type, the rank, each dimension, and
 * the size the dimensions claim, against a fixed cap and, for a plain file,
 * against the file's real size. A gzipped data part is read into a buffer
 * that grows as bytes really arrive, so a lying header costs nothing.
 * Every message names the file and the byte offset (in the decompressed
 * contents) of what is wrong.
 *
 * Must not: allocate what a header claims before checking it, abort or
 * exit, or know anything about data sets or tensors (dataset.c does).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"

#define IDX_UBYTE    0x08
#define IDX_MAX_RANK 4
/* gzread and gzwrite take an unsigned length and return an int. */
#define IO_CHUNK ((int64_t)1 << 30)
/* The first buffer for a gzipped data part; it doubles as bytes arrive. */
#define GROW_FIRST ((int64_t)1 << 20)
/* Trailing bytes are counted up to this many, then "at least" is said. */
#define TRAIL_MAX ((int64_t)1 << 20)

static const char *type_name(int t) {
  switch (t) {
  case 0x08:
    return "unsigned byte";
  case 0x09:
    return "signed byte";
  case 0x0B:
    return "16-bit integer";
  case 0x0C:
    return "32-bit integer";
  case 0x0D:
    return "float";
  case 0x0E:
    return "double";
  default:
    return NULL;
  }
}

// ----------------------------------------------------------------------------
// Reading

typedef struct reader {
  const char *path;
  gzFile gz;
  int direct;   /* 1: a plain file (no gzip stream) */
  int64_t size; /* the file's size when plain and regular, else -1 */
  int64_t pos;  /* bytes of the contents consumed so far */
  tg_error *err;
} reader;

/* Reads up to n bytes at r->pos. Returns how many were read (fewer than n
 * only at the end of the contents), or -1 when zlib reported an error;
 * r->pos counts the bytes delivered either way. */
static int64_t rd(reader *r, void *buf, int64_t n) {
  int64_t got = 0;
  while (got < n) {
    int64_t want = n - got < IO_CHUNK ? n - got : IO_CHUNK;
    int k = gzread(r->gz, (uint8_t *)buf + got, (unsigned)want);
    if (k < 0) {
      r->pos += got;
      return -1;
    }
    if (k == 0)
      break;
    got += k;
  }
  r->pos += got;
  return got;
}

/* What zlib has to say about the stream, as " (gzip: ...)", or "". zlib
 * prefixes its message with "<fd:N>: ", which names nothing useful. */
static const char *stream_note(reader *r, char *buf, size_t n) {
  int errnum = Z_OK;
  const char *m = gzerror(r->gz, &errnum);
  buf[0] = '\0';
  if (errnum == Z_OK || errnum == Z_STREAM_END || !m)
    return buf;
  const char *sep = strstr(m, ": ");
  snprintf(buf, n, " (%s: %s)", r->direct ? "read error" : "gzip", sep ? sep + 2 : m);
  return buf;
}

/* Reads the n-byte header field `what` that starts at r->pos. */
static int rd_field(reader *r, uint8_t *buf, int n, const char *what) {
  int64_t at = r->pos;
  int64_t got = rd(r, buf, n);
  if (got == n)
    return TG_OK;
  char note[TG_MSG_MAX / 2];
  stream_note(r, note, sizeof note);
  if (at == 0 && got == 0 && !note[0])
    return tg_error_set(r->err, TG_ERR_FORMAT, "%s: the file is empty%s", r->path,
                        r->direct ? "" : " (after decompression)");
  if (got < 0)
    return tg_error_set(r->err, TG_ERR_FORMAT, "%s: byte %lld: the stream is damaged%s", r->path,
                        (long long)r->pos, note);
  return tg_error_set(r->err, TG_ERR_FORMAT,
                      "%s: byte %lld: the file ends inside %s (%d bytes needed, %lld found)%s",
                      r->path, (long long)at, what, n, (long long)got, note);
}

static uint32_t be32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* The magic and the dimensions, checked; leaves r->pos at the data. */
static int read_header(reader *r, tg_idx *out) {
  uint8_t m[4];
  tg_status st = rd_field(r, m, 4, "the magic number");
  if (st != TG_OK)
    return st;
  if (m[0] || m[1])
    return tg_error_set(r->err, TG_ERR_FORMAT,
                        "%s: byte 0: bad magic 0x%02x%02x%02x%02x (an IDX file starts with two "
                        "zero bytes, e.g. 0x00000803)",
                        r->path, m[0], m[1], m[2], m[3]);
  if (m[2] != IDX_UBYTE) {
    const char *name = type_name(m[2]);
    if (name)
      return tg_error_set(r->err, TG_ERR_FORMAT,
                          "%s: byte 2: element type 0x%02x (%s) is not supported (only 0x08, "
                          "unsigned byte)",
                          r->path, m[2], name);
    return tg_error_set(r->err, TG_ERR_FORMAT,
                        "%s: byte 2: unknown element type 0x%02x (IDX types are 0x08..0x0e; "
                        "only 0x08, unsigned byte, is supported)",
                        r->path, m[2]);
  }
  if (m[3] < 1 || m[3] > IDX_MAX_RANK)
    return tg_error_set(r->err, TG_ERR_FORMAT,
                        "%s: byte 3: rank %d (an IDX array here has 1 to %d dimensions)", r->path,
                        m[3], IDX_MAX_RANK);
  out->ndim = m[3];
  for (int i = 0; i < out->ndim; i++) {
    char what[48];
    uint8_t b[4];
    snprintf(what, sizeof what, "dimension %d of %d", i, out->ndim);
    int64_t at = r->pos;
    if ((st = rd_field(r, b, 4, what)) != TG_OK)
      return st;
    out->dims[i] = be32(b);
    if (out->dims[i] == 0)
      return tg_error_set(r->err, TG_ERR_FORMAT, "%s: byte %lld: dimension %d of %d is 0", r->path,
                          (long long)at, i, out->ndim);
  }
  /* Checked by division before each multiplication, so the product never
   * overflows; the double is only for the message. */
  int64_t n = 1;
  double approx = 1;
  for (int i = 0; i < out->ndim; i++)
    approx *= (double)out->dims[i];
  for (int i = 0; i < out->ndim; i++) {
    if (out->dims[i] > TG_IDX_MAX_BYTES / n) {
      char ds[160];
      tg_shape_str(out->dims, out->ndim, ds, sizeof ds);
      return tg_error_set(r->err, TG_ERR_FORMAT,
                          "%s: byte 4: the dimensions %s claim %.4g bytes, more than the "
                          "reader's limit of %lld",
                          r->path, ds, approx, (long long)TG_IDX_MAX_BYTES);
    }
    n *= out->dims[i];
  }
  out->count = n;
  return TG_OK;
}

static int fail_truncated(reader *r, const tg_idx *out, int64_t at, int64_t found) {
  char ds[160], note[TG_MSG_MAX / 2];
  tg_shape_str(out->dims, out->ndim, ds, sizeof ds);
  stream_note(r, note, sizeof note);
  return tg_error_set(r->err, TG_ERR_FORMAT,
                      "%s: byte %lld: data truncated: %lld bytes expected for %s, %lld found%s",
                      r->path, (long long)at, (long long)out->count, ds, (long long)found, note);
}

/* Reads out->count data bytes into a malloc'd out->data. */
static int read_data(reader *r, tg_idx *out) {
  int64_t at = r->pos;
  if (r->size >= 0) {
    /* A plain file: its size settles truncation and trailing bytes before
     * anything is allocated. */
    int64_t avail = r->size - at;
    if (avail < out->count)
      return fail_truncated(r, out, at, avail);
    if (avail > out->count)
      return tg_error_set(r->err, TG_ERR_FORMAT,
                          "%s: byte %lld: %lld trailing bytes after the data (an IDX file ends "
                          "with its last element)",
                          r->path, (long long)(at + out->count), (long long)(avail - out->count));
  }
  int64_t cap = r->size >= 0 || out->count < GROW_FIRST ? out->count : GROW_FIRST;
  uint8_t *buf = malloc((size_t)cap);
  if (!buf)
    return tg_error_set(r->err, TG_ERR_MEMORY, "%s: out of memory for %lld bytes of data", r->path,
                        (long long)cap);
  int64_t got = 0;
  for (;;) {
    int64_t k = rd(r, buf + got, cap - got);
    if (k > 0)
      got += k;
    if (k < 0 || got < cap) {
      free(buf);
      if (k < 0) {
        char note[TG_MSG_MAX / 2];
        return tg_error_set(r->err, TG_ERR_FORMAT, "%s: byte %lld: the stream is damaged%s",
                            r->path, (long long)r->pos, stream_note(r, note, sizeof note));
      }
      return fail_truncated(r, out, at, r->pos - at);
    }
    if (cap == out->count)
      break;
    int64_t next = cap > out->count / 2 ? out->count : 2 * cap;
    uint8_t *grown = realloc(buf, (size_t)next);
    if (!grown) {
      free(buf);
      return tg_error_set(r->err, TG_ERR_MEMORY, "%s: out of memory for %lld bytes of data",
                          r->path, (long long)next);
    }
    buf = grown;
    cap = next;
  }
  out->data = buf;
  return TG_OK;
}

/* Nothing may follow the data; reading on also lets zlib check the gzip
 * trailer (CRC and length). */
static int check_end(reader *r) {
  int64_t at = r->pos, extra = 0;
  uint8_t buf[4096];
  while (extra < TRAIL_MAX) {
    int64_t k = rd(r, buf, sizeof buf);
    if (k <= 0)
      break;
    extra += k;
  }
  char note[TG_MSG_MAX / 2];
  if (extra == 0 && stream_note(r, note, sizeof note)[0])
    return tg_error_set(r->err, TG_ERR_FORMAT, "%s: byte %lld: the stream is damaged%s", r->path,
                        (long long)r->pos, note);
  if (extra > 0)
    return tg_error_set(r->err, TG_ERR_FORMAT,
                        "%s: byte %lld: %s%lld trailing bytes after the data (an IDX file ends "
                        "with its last element)",
                        r->path, (long long)at, extra >= TRAIL_MAX ? "at least " : "",
                        (long long)extra);
  return TG_OK;
}

tg_status tg_idx_read(const char *path, tg_idx *out, tg_error *err) {
  if (out)
    memset(out, 0, sizeof *out);
  if (!path || !out)
    return tg_error_set(err, TG_ERR_NULL, "idx_read: %s is NULL", path ? "out" : "path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return tg_error_set(err, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return tg_error_set(err, TG_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return tg_error_set(err, TG_ERR_IO, "%s: is a directory, not an IDX file", path);
  }
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    close(fd);
    return tg_error_set(err, TG_ERR_MEMORY, "%s: out of memory opening the file", path);
  }
  gzbuffer(gz, 1u << 17); /* before gzdirect, which starts reading */
  reader r = {.path = path, .gz = gz, .size = -1, .err = err};
  r.direct = gzdirect(gz);
  if (r.direct && S_ISREG(st.st_mode))
    r.size = (int64_t)st.st_size;

  tg_status status = read_header(&r, out);
  if (status == TG_OK)
    status = read_data(&r, out);
  if (status == TG_OK)
    status = check_end(&r);
  gzclose_r(gz);
  if (status != TG_OK)
    tg_idx_free(out);
  return status;
}

void tg_idx_free(tg_idx *idx) {
  if (!idx)
    return;
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}

// ----------------------------------------------------------------------------
// Writing

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int check_idx(const char *path, const tg_idx *idx, tg_error *err) {
  if (!idx || !idx->data)
    return tg_error_set(err, TG_ERR_NULL, "%s: idx_write: %s is NULL", path,
                        idx ? "idx->data" : "idx");
  if (idx->ndim < 1 || idx->ndim > IDX_MAX_RANK)
    return tg_error_set(err, TG_ERR_ARG, "%s: idx_write: rank %d (1 to %d are supported)", path,
                        idx->ndim, IDX_MAX_RANK);
  int64_t n = 1;
  for (int i = 0; i < idx->ndim; i++) {
    if (idx->dims[i] < 1 || idx->dims[i] > (int64_t)UINT32_MAX)
      return tg_error_set(err, TG_ERR_ARG,
                          "%s: idx_write: dimension %d is %lld (IDX dimensions are 1..2^32-1)",
                          path, i, (long long)idx->dims[i]);
    if (n > INT64_MAX / idx->dims[i])
      return tg_error_set(err, TG_ERR_ARG, "%s: idx_write: the dimensions overflow", path);
    n *= idx->dims[i];
  }
  if (n != idx->count) {
    char ds[160];
    tg_shape_str(idx->dims, idx->ndim, ds, sizeof ds);
    return tg_error_set(err, TG_ERR_ARG, "%s: idx_write: count %lld is not the product of %s", path,
                        (long long)idx->count, ds);
  }
  return TG_OK;
}

tg_status tg_idx_write(const char *path, const tg_idx *idx, tg_error *err) {
  if (!path)
    return tg_error_set(err, TG_ERR_NULL, "idx_write: path is NULL");
  tg_status st = check_idx(path, idx, err);
  if (st != TG_OK)
    return st;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    return tg_error_set(err, TG_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  /* "T": zlib writes the bytes as they are, without a gzip stream. */
  gzFile gz = gzdopen(fd, ends_with(path, ".gz") ? "wb" : "wbT");
  if (!gz) {
    close(fd);
    return tg_error_set(err, TG_ERR_MEMORY, "%s: out of memory opening the file", path);
  }
  uint8_t header[4 + 4 * IDX_MAX_RANK] = {0, 0, IDX_UBYTE, (uint8_t)idx->ndim};
  for (int i = 0; i < idx->ndim; i++) {
    uint32_t d = (uint32_t)idx->dims[i];
    uint8_t *b = header + 4 + 4 * i;
    b[0] = (uint8_t)(d >> 24);
    b[1] = (uint8_t)(d >> 16);
    b[2] = (uint8_t)(d >> 8);
    b[3] = (uint8_t)d;
  }
  int ok = gzwrite(gz, header, (unsigned)(4 + 4 * idx->ndim)) == 4 + 4 * idx->ndim;
  for (int64_t done = 0; ok && done < idx->count;) {
    int64_t k = idx->count - done < IO_CHUNK ? idx->count - done : IO_CHUNK;
    ok = gzwrite(gz, idx->data + done, (unsigned)k) == (int)k;
    done += k;
  }
  /* zlib's message lives in the gzFile, which gzclose frees: copy it. */
  char why[TG_MSG_MAX / 2] = "";
  if (!ok) {
    int errnum = Z_OK;
    const char *m = gzerror(gz, &errnum);
    const char *sep = m ? strstr(m, ": ") : NULL;
    snprintf(why, sizeof why, "%s", errnum == Z_ERRNO || !m ? strerror(errno) : sep ? sep + 2 : m);
  }
  int closed = gzclose_w(gz);
  if (ok && closed != Z_OK)
    snprintf(why, sizeof why, "%s",
             closed == Z_ERRNO ? strerror(errno) : "zlib could not finish the stream");
  if (!ok || closed != Z_OK)
    return tg_error_set(err, TG_ERR_IO, "%s: write failed: %s", path, why);
  return TG_OK;
}
