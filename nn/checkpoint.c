/* checkpoint.c — the checkpoint file: writing it atomically, reading it
 * defensively.
 *
 * Layout (every integer little-endian; version 1):
 *
 *   "TAPEGRAD"                  8 bytes, the magic
 *   u32 version                 1
 *   u32 element size            4 (float build) or 8 (double build)
 *   u32 meta length, meta bytes free text, < TG_CHECKPOINT_META_MAX bytes
 *   u32 tensor count
 *   per tensor:
 *     u16 name length, name     1..65535 bytes, no NUL
 *     u32 ndim                  0..TG_MAX_DIMS
 *     i64 dims[ndim]            each >= 1
 *     values                    numel elements of the element size
 *   u32 CRC-32 (zlib's)         of every byte before it
 *
 * A save writes "<path>.tmp.<pid>" in the target's directory, flushes and
 * fsyncs it, renames it over the target and fsyncs the directory: a crash
 * leaves the old checkpoint or the new one. Every write, flush, sync and
 * close is checked; on failure the temporary file is removed. A process
 * killed mid-save (SIGKILL, power loss) cannot remove its temporary file,
 * so each successful save of a path also removes "<path>.tmp.<pid>" files
 * whose process no longer exists (tests/crash_test.c); a live process's
 * file, or one whose pid was reused since, is left alone.
 *
 * A load reads the whole file into memory, checks magic, version, the
 * structure (every length within the file) and the CRC, then matches
 * every tensor against the lists, and only then copies values. Nothing
 * here may change a tensor before all of that passed, trust a length from
 * the file before bounds-checking it, or read past the buffer.
 */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CK_MAGIC   "TAPEGRAD"
#define CK_VERSION 1u
/* Larger files are refused before allocating: the book's biggest network
 * with Adam state is a few hundred megabytes. */
#define CK_FILE_MAX ((uint64_t)1 << 34)
#define CK_CHUNK    ((size_t)1 << 16)
/* The smallest tensor record: name length, a 1-byte name, ndim 0, one
 * 4-byte value. */
#define CK_MIN_RECORD (2 + 1 + 4 + 4)

/* ------------------------------------------------------------------------
 * Little-endian fields, independent of the host's byte order */

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* zlib takes lengths as uInt: feed it in pieces. */
static uLong crc_update(uLong crc, const unsigned char *p, size_t n) {
  while (n > 0) {
    uInt k = n > ((size_t)1 << 30) ? (uInt)1 << 30 : (uInt)n;
    crc = crc32(crc, p, k);
    p += k;
    n -= k;
  }
  return crc;
}

/* ------------------------------------------------------------------------
 * The lists: names present, short enough and unique over all lists (a
 * file is one flat namespace) */

static int check_lists(const char *what, const char *path, tg_params *const *lists, int nlists,
                       tg_error *err) {
  if (nlists < 0)
    return tg_error_set(err, TG_ERR_ARG, "%s %s: %d lists", what, path, nlists);
  if (nlists > 0 && !lists)
    return tg_error_set(err, TG_ERR_NULL, "%s %s: the list array is NULL", what, path);
  for (int l = 0; l < nlists; l++) {
    if (!lists[l])
      return tg_error_set(err, TG_ERR_NULL, "%s %s: list %d is NULL", what, path, l);
    for (int i = 0; i < lists[l]->n; i++) {
      const tg_tensor *t = lists[l]->items[i];
      if (!t || !t->name || !t->name[0])
        return tg_error_set(err, TG_ERR_ARG, "%s %s: tensor %d of list %d has no name", what, path,
                            i, l);
      if (strlen(t->name) > UINT16_MAX)
        return tg_error_set(err, TG_ERR_ARG,
                            "%s %s: tensor %d of list %d has a %zu-byte name (at most %d)", what,
                            path, i, l, strlen(t->name), UINT16_MAX);
      /* Earlier tensors of every list up to this one. */
      for (int m = 0; m <= l; m++)
        for (int j = 0; j < (m == l ? i : lists[m]->n); j++)
          if (strcmp(lists[m]->items[j]->name, t->name) == 0)
            return tg_error_set(err, TG_ERR_ARG,
                                "%s %s: the name \"%s\" is in list %d and list %d (names in a "
                                "checkpoint are unique)",
                                what, path, t->name, m, l);
    }
  }
  return TG_OK;
}

/* ------------------------------------------------------------------------
 * Saving */

typedef struct writer {
  FILE *f;
  uLong crc;
  int errnum; /* 0 until a write fails */
} writer;

static void w_bytes(writer *w, const void *p, size_t n) {
  if (w->errnum || n == 0)
    return;
  w->crc = crc_update(w->crc, p, n);
  errno = 0;
  if (fwrite(p, 1, n, w->f) != n)
    w->errnum = errno ? errno : EIO;
}

static void w_u16(writer *w, uint16_t v) {
  unsigned char b[2];
  put_u16(b, v);
  w_bytes(w, b, 2);
}
static void w_u32(writer *w, uint32_t v) {
  unsigned char b[4];
  put_u32(b, v);
  w_bytes(w, b, 4);
}

/* Values in the build's precision, little-endian, through buf (CK_CHUNK
 * bytes). */
static void w_values(writer *w, const tg_tensor *t, unsigned char *buf) {
  const size_t es = sizeof(tg_real);
  const int64_t per = (int64_t)(CK_CHUNK / es);
  for (int64_t i0 = 0; i0 < t->numel && !w->errnum; i0 += per) {
    int64_t n = t->numel - i0 < per ? t->numel - i0 : per;
    for (int64_t i = 0; i < n; i++) {
      tg_real x = t->data[i0 + i];
#ifdef TG_DOUBLE
      uint64_t u;
      memcpy(&u, &x, 8);
      put_u64(buf + i * 8, u);
#else
      uint32_t u;
      memcpy(&u, &x, 4);
      put_u32(buf + i * 4, u);
#endif
    }
    w_bytes(w, buf, (size_t)n * es);
  }
}

static void write_all(writer *w, const char *meta, tg_params *const *lists, int nlists,
                      unsigned char *buf) {
  uint32_t count = 0;
  for (int l = 0; l < nlists; l++)
    count += (uint32_t)lists[l]->n;
  size_t meta_len = strlen(meta);
  w_bytes(w, CK_MAGIC, 8);
  w_u32(w, CK_VERSION);
  w_u32(w, (uint32_t)sizeof(tg_real));
  w_u32(w, (uint32_t)meta_len);
  w_bytes(w, meta, meta_len);
  w_u32(w, count);
  for (int l = 0; l < nlists; l++)
    for (int i = 0; i < lists[l]->n; i++) {
      const tg_tensor *t = lists[l]->items[i];
      size_t len = strlen(t->name);
      w_u16(w, (uint16_t)len);
      w_bytes(w, t->name, len);
      w_u32(w, (uint32_t)t->ndim);
      for (int d = 0; d < t->ndim; d++) {
        unsigned char b[8];
        put_u64(b, (uint64_t)t->shape[d]);
        w_bytes(w, b, 8);
      }
      w_values(w, t, buf);
    }
}

/* The directory holding path ("." when it has no slash). */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (!d)
    return NULL;
  memcpy(d, !slash ? "." : path, n);
  d[n] = '\0';
  return d;
}

/* After the rename: make the directory entry durable. Filesystems that
 * cannot sync a directory say EINVAL; that is not a failure of ours. */
static int sync_dir(const char *path, tg_error *err) {
  char *dir = dir_of(path);
  if (!dir)
    return tg_error_set(err, TG_ERR_MEMORY, "checkpoint_save %s: out of memory", path);
  tg_status st = TG_OK;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    st = tg_error_set(err, TG_ERR_IO,
                      "checkpoint_save %s: the new checkpoint is in place, but its directory %s "
                      "cannot be opened to sync it: %s",
                      path, dir, strerror(errno));
  } else {
    if (fsync(fd) != 0 && errno != EINVAL)
      st = tg_error_set(err, TG_ERR_IO,
                        "checkpoint_save %s: the new checkpoint is in place, but syncing its "
                        "directory %s failed: %s",
                        path, dir, strerror(errno));
    close(fd);
  }
  free(dir);
  return st;
}

/* After a successful save: the temporary files of earlier saves of path
 * whose process is gone (killed mid-save). Best effort: errors are ignored,
 * since the new checkpoint is already in place. */
static void sweep_orphans(const char *path) {
  char *dir = dir_of(path);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t bl = strlen(base);
  DIR *d = dir ? opendir(dir) : NULL;
  free(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, base, bl) != 0 || strncmp(e->d_name + bl, ".tmp.", 5) != 0)
      continue;
    const char *s = e->d_name + bl + 5;
    if (*s < '1' || *s > '9')
      continue;
    char *end;
    errno = 0;
    long pid = strtol(s, &end, 10);
    if (*end || errno || pid <= 0 || pid == (long)getpid() || (long)(pid_t)pid != pid)
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue; /* alive, or not ours to judge (EPERM) */
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

tg_status tg_checkpoint_save(const char *path, const char *meta, tg_params *const *lists,
                             int nlists, tg_error *err) {
  if (!path || !path[0])
    return tg_error_set(err, TG_ERR_ARG, "checkpoint_save: no path");
  if (!meta)
    meta = "";
  if (strlen(meta) >= TG_CHECKPOINT_META_MAX)
    return tg_error_set(err, TG_ERR_ARG,
                        "checkpoint_save %s: the meta text is %zu bytes (at most %d)", path,
                        strlen(meta), TG_CHECKPOINT_META_MAX - 1);
  tg_status st = check_lists("checkpoint_save", path, lists, nlists, err);
  if (st != TG_OK)
    return st;
  int64_t total = 0;
  for (int l = 0; l < nlists; l++)
    total += lists[l]->n;
  if (total > (int64_t)UINT32_MAX)
    return tg_error_set(err, TG_ERR_ARG, "checkpoint_save %s: %lld tensors (at most %u)", path,
                        (long long)total, UINT32_MAX);

  size_t tlen = strlen(path) + 32;
  char *tmp = malloc(tlen);
  unsigned char *buf = malloc(CK_CHUNK);
  if (!tmp || !buf) {
    free(tmp);
    free(buf);
    return tg_error_set(err, TG_ERR_MEMORY, "checkpoint_save %s: out of memory", path);
  }
  snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

  writer w = {.f = fopen(tmp, "wb"), .crc = crc32(0L, Z_NULL, 0)};
  if (!w.f) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot create the temporary file %s: %s",
                      path, tmp, strerror(errno));
    goto out;
  }
  write_all(&w, meta, lists, nlists, buf);
  uLong crc = w.crc;
  w_u32(&w, (uint32_t)crc);
  if (w.errnum) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot write %s: %s", path, tmp,
                      strerror(w.errnum));
    goto fail;
  }
  if (fflush(w.f) != 0) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot flush %s: %s", path, tmp,
                      strerror(errno));
    goto fail;
  }
  if (fsync(fileno(w.f)) != 0) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot sync %s to disk: %s", path, tmp,
                      strerror(errno));
    goto fail;
  }
  FILE *f = w.f;
  w.f = NULL; /* fclose releases the stream even when it fails */
  if (fclose(f) != 0) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot close %s: %s", path, tmp,
                      strerror(errno));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    st = tg_error_set(err, TG_ERR_IO, "checkpoint_save %s: cannot rename %s over it: %s", path, tmp,
                      strerror(errno));
    goto fail;
  }
  st = sync_dir(path, err);
  if (st == TG_OK)
    sweep_orphans(path);
  goto out;

fail:
  if (w.f)
    fclose(w.f);
  unlink(tmp);
out:
  free(tmp);
  free(buf);
  return st;
}

/* ------------------------------------------------------------------------
 * Reading and checking a file */

typedef struct ckfile {
  unsigned char *b; /* n bytes: the whole file */
  size_t n;
  uint32_t es;     /* element size of the stored values */
  size_t meta_off; /* meta_len bytes of meta text at b + meta_off */
  size_t meta_len;
  uint32_t count; /* tensors */
  size_t first;   /* offset of the first tensor record */
  const char *path;
  const char *what; /* "checkpoint_load" or "checkpoint_read_meta" */
} ckfile;

/* One tensor record, pointing into the buffer. */
typedef struct ckentry {
  const char *name; /* name_len bytes, not NUL-terminated */
  int name_len;
  int ndim;
  int64_t shape[TG_MAX_DIMS];
  int64_t numel;
  const unsigned char *values; /* numel · es bytes */
  size_t offset;               /* of the record, for messages */
} ckentry;

/* Bounds check against lim (the byte before the CRC): the file must hold
 * len more bytes at *pos. */
static int need(const ckfile *c, size_t pos, size_t lim, size_t len, const char *field, int index,
                tg_error *err) {
  if (pos <= lim && lim - pos >= len)
    return TG_OK;
  size_t left = pos <= lim ? lim - pos : 0;
  if (index >= 0)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: truncated or corrupt at offset %zu: tensor %d's %s needs %zu "
                        "bytes, %zu are left before the CRC",
                        c->what, c->path, pos, index, field, len, left);
  return tg_error_set(err, TG_ERR_FORMAT,
                      "%s %s: truncated or corrupt at offset %zu: the %s needs %zu bytes, %zu are "
                      "left before the CRC",
                      c->what, c->path, pos, field, len, left);
}

/* Reads the record at *pos (index i) into e and advances *pos. */
static int read_entry(const ckfile *c, size_t *pos, size_t lim, int i, ckentry *e, tg_error *err) {
  size_t p = *pos;
  e->offset = p;
  if (need(c, p, lim, 2, "name length", i, err))
    return TG_ERR_FORMAT;
  e->name_len = get_u16(c->b + p);
  p += 2;
  if (e->name_len == 0)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt at offset %zu: tensor %d has an empty name", c->what,
                        c->path, p - 2, i);
  if (need(c, p, lim, (size_t)e->name_len, "name", i, err))
    return TG_ERR_FORMAT;
  e->name = (const char *)c->b + p;
  if (memchr(e->name, '\0', (size_t)e->name_len))
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt at offset %zu: tensor %d's name holds a NUL byte", c->what,
                        c->path, p, i);
  p += (size_t)e->name_len;
  if (need(c, p, lim, 4, "ndim", i, err))
    return TG_ERR_FORMAT;
  uint32_t ndim = get_u32(c->b + p);
  if (ndim > TG_MAX_DIMS)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt at offset %zu: tensor %d (\"%.*s\") has %u dimensions (at "
                        "most %d)",
                        c->what, c->path, p, i, e->name_len, e->name, ndim, TG_MAX_DIMS);
  p += 4;
  e->ndim = (int)ndim;
  if (need(c, p, lim, 8 * (size_t)ndim, "dims", i, err))
    return TG_ERR_FORMAT;
  /* The values must fit in what is left, so numel is capped by the bytes
   * left before it can overflow. */
  size_t room = (lim - p - 8 * (size_t)ndim) / c->es;
  uint64_t numel = 1;
  for (int d = 0; d < e->ndim; d++) {
    uint64_t dim = get_u64(c->b + p + 8 * (size_t)d);
    e->shape[d] = (int64_t)dim;
    if (dim < 1 || dim > (uint64_t)INT64_MAX || numel > room / dim)
      return tg_error_set(
          err, TG_ERR_FORMAT,
          "%s %s: truncated or corrupt at offset %zu: tensor %d (\"%.*s\") "
          "dimension %d is %lld, which %s",
          c->what, c->path, p + 8 * (size_t)d, i, e->name_len, e->name, d, (long long)(int64_t)dim,
          dim < 1 || dim > (uint64_t)INT64_MAX ? "is not >= 1"
                                               : "makes more values than the file holds");
    numel *= dim;
  }
  p += 8 * (size_t)ndim;
  if (numel > room) /* a scalar (ndim 0) still needs its one value */
    return need(c, p, lim, c->es, "values", i, err);
  e->numel = (int64_t)numel;
  e->values = c->b + p;
  p += (size_t)numel * c->es; /* within lim: numel <= room */
  *pos = p;
  return TG_OK;
}

/* Magic, version, element size, meta, every record's bounds, then the
 * CRC. On success c describes the file. */
static int parse(ckfile *c, tg_error *err) {
  const unsigned char *b = c->b;
  size_t n = c->n;
  size_t k = n < 8 ? n : 8;
  if (memcmp(b, CK_MAGIC, k) != 0)
    return tg_error_set(err, TG_ERR_FORMAT, "%s %s: not a tapegrad checkpoint (bad magic)", c->what,
                        c->path);
  if (n < 12)
    return tg_error_set(
        err, TG_ERR_FORMAT,
        "%s %s: truncated at offset %zu: the header needs 12 bytes, the file has %zu", c->what,
        c->path, n < 8 ? (size_t)0 : (size_t)8, n);
  uint32_t version = get_u32(b + 8);
  if (version > CK_VERSION)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: checkpoint version %u is newer than this program's %u", c->what,
                        c->path, version, CK_VERSION);
  if (version == 0)
    return tg_error_set(err, TG_ERR_FORMAT, "%s %s: corrupt: version 0", c->what, c->path);

  /* Everything else lies before the 4-byte CRC. */
  size_t lim = n >= 16 ? n - 4 : 12;
  size_t pos = 12;
  if (need(c, pos, lim, 4, "element size", -1, err))
    return TG_ERR_FORMAT;
  c->es = get_u32(b + pos);
  if (c->es != 4 && c->es != 8)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt at offset %zu: element size %u (4 or 8)", c->what, c->path,
                        pos, c->es);
  pos += 4;
  if (need(c, pos, lim, 4, "meta length", -1, err))
    return TG_ERR_FORMAT;
  uint32_t meta_len = get_u32(b + pos);
  if (meta_len >= TG_CHECKPOINT_META_MAX)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt at offset %zu: a meta text of %u bytes (at most %d)",
                        c->what, c->path, pos, meta_len, TG_CHECKPOINT_META_MAX - 1);
  pos += 4;
  if (need(c, pos, lim, meta_len, "meta text", -1, err))
    return TG_ERR_FORMAT;
  c->meta_off = pos;
  c->meta_len = meta_len;
  pos += meta_len;
  if (need(c, pos, lim, 4, "tensor count", -1, err))
    return TG_ERR_FORMAT;
  c->count = get_u32(b + pos);
  pos += 4;
  if (c->count > (lim - pos) / CK_MIN_RECORD)
    return tg_error_set(
        err, TG_ERR_FORMAT,
        "%s %s: truncated or corrupt at offset %zu: %u tensors cannot fit in the %zu "
        "bytes left",
        c->what, c->path, pos - 4, c->count, lim - pos);
  c->first = pos;
  for (uint32_t i = 0; i < c->count; i++) {
    ckentry e;
    if (read_entry(c, &pos, lim, (int)i, &e, err))
      return TG_ERR_FORMAT;
  }
  if (pos != lim)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: corrupt: %zu unexpected bytes at offset %zu, after the last tensor",
                        c->what, c->path, lim - pos, pos);
  uint32_t want = get_u32(b + lim);
  uint32_t got = (uint32_t)crc_update(crc32(0L, Z_NULL, 0), b, lim);
  if (want != got)
    return tg_error_set(err, TG_ERR_FORMAT,
                        "%s %s: CRC mismatch: the file is corrupt (stored %08x, computed %08x)",
                        c->what, c->path, want, got);
  return TG_OK;
}

/* Reads path whole into c->b. */
static int read_file(ckfile *c, tg_error *err) {
  FILE *f = fopen(c->path, "rb");
  if (!f)
    return tg_error_set(err, TG_ERR_IO, "%s %s: cannot open: %s", c->what, c->path,
                        strerror(errno));
  tg_status st = TG_OK;
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    st = tg_error_set(err, TG_ERR_IO, "%s %s: cannot stat: %s", c->what, c->path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(sb.st_mode)) {
    st = tg_error_set(err, TG_ERR_IO, "%s %s: not a regular file", c->what, c->path);
    goto out;
  }
  if (sb.st_size < 0 || (uint64_t)sb.st_size > CK_FILE_MAX || (uint64_t)sb.st_size > SIZE_MAX) {
    st = tg_error_set(err, TG_ERR_FORMAT,
                      "%s %s: %lld bytes is larger than any checkpoint (at most %llu)", c->what,
                      c->path, (long long)sb.st_size, (unsigned long long)CK_FILE_MAX);
    goto out;
  }
  c->n = (size_t)sb.st_size;
  c->b = malloc(c->n ? c->n : 1);
  if (!c->b) {
    st = tg_error_set(err, TG_ERR_MEMORY, "%s %s: out of memory for %zu bytes", c->what, c->path,
                      c->n);
    goto out;
  }
  errno = 0;
  size_t got = fread(c->b, 1, c->n, f);
  if (got != c->n) {
    st = tg_error_set(err, TG_ERR_IO, "%s %s: read %zu of %zu bytes: %s", c->what, c->path, got,
                      c->n, errno ? strerror(errno) : "the file shrank");
    free(c->b);
    c->b = NULL;
  }
out:
  fclose(f);
  return st;
}

/* ------------------------------------------------------------------------
 * Loading */

static tg_real decode(const unsigned char *p, uint32_t es) {
  if (es == 4) {
    uint32_t u = get_u32(p);
    float x;
    memcpy(&x, &u, 4);
    return (tg_real)x;
  }
  uint64_t u = get_u64(p);
  double x;
  memcpy(&x, &u, 8);
#ifdef TG_DOUBLE
  return x;
#else
  /* Out of float's range: Annex F makes it ±Inf; say so explicitly. */
  return x > FLT_MAX ? INFINITY : x < -FLT_MAX ? -INFINITY : (float)x;
#endif
}

/* Every record against the model's tensors (flat, nt of them), first
 * mismatch named; matched[k] says which model tensor a record has. */
static int match(const ckfile *c, tg_tensor **model, int nt, tg_tensor **dest, char *matched,
                 tg_error *err) {
  size_t pos = c->first;
  for (uint32_t i = 0; i < c->count; i++) {
    ckentry e;
    if (read_entry(c, &pos, c->n - 4, (int)i, &e, err)) /* checked by parse already */
      return TG_ERR_FORMAT;
    int k = 0;
    for (; k < nt; k++)
      if (strlen(model[k]->name) == (size_t)e.name_len &&
          memcmp(model[k]->name, e.name, (size_t)e.name_len) == 0)
        break;
    if (k == nt)
      return tg_error_set(err, TG_ERR_SHAPE, "%s %s: %.*s: not in the model", c->what, c->path,
                          e.name_len, e.name);
    if (matched[k])
      return tg_error_set(err, TG_ERR_FORMAT,
                          "%s %s: %.*s: twice in the file (at offset %zu again)", c->what, c->path,
                          e.name_len, e.name, e.offset);
    const tg_tensor *t = model[k];
    int same = t->ndim == e.ndim;
    for (int d = 0; same && d < e.ndim; d++)
      same = t->shape[d] == e.shape[d];
    if (!same) {
      char fs[160], ms[160];
      return tg_error_set(err, TG_ERR_SHAPE, "%s %s: %.*s: shape %s in the file, %s in the model",
                          c->what, c->path, e.name_len, e.name,
                          tg_shape_str(e.shape, e.ndim, fs, sizeof fs),
                          tg_shape_str(t->shape, t->ndim, ms, sizeof ms));
    }
    matched[k] = 1;
    dest[i] = model[k];
  }
  for (int k = 0; k < nt; k++)
    if (!matched[k])
      return tg_error_set(err, TG_ERR_SHAPE, "%s %s: %s: missing from the file", c->what, c->path,
                          model[k]->name);
  return TG_OK;
}

tg_status tg_checkpoint_load(const char *path, tg_params *const *lists, int nlists, tg_error *err) {
  if (!path || !path[0])
    return tg_error_set(err, TG_ERR_ARG, "checkpoint_load: no path");
  tg_status st = check_lists("checkpoint_load", path, lists, nlists, err);
  if (st != TG_OK)
    return st;
  ckfile c = {.path = path, .what = "checkpoint_load"};
  st = read_file(&c, err);
  if (st != TG_OK)
    return st;
  st = parse(&c, err);

  int nt = 0;
  for (int l = 0; l < nlists; l++)
    nt += lists[l]->n;
  tg_tensor **model = NULL, **dest = NULL;
  char *matched = NULL;
  if (st == TG_OK) {
    /* Each record match() accepts takes a model tensor of its own, so it
     * fills at most nt entries of dest, whatever count says. */
    model = malloc(((size_t)nt + 1) * sizeof *model);
    dest = malloc(((size_t)nt + 1) * sizeof *dest);
    matched = calloc((size_t)nt + 1, 1);
    if (!model || !dest || !matched)
      st = tg_error_set(err, TG_ERR_MEMORY, "checkpoint_load %s: out of memory", path);
  }
  if (st == TG_OK) {
    for (int l = 0, k = 0; l < nlists; l++)
      for (int i = 0; i < lists[l]->n; i++)
        model[k++] = lists[l]->items[i];
  }
  if (st == TG_OK)
    st = match(&c, model, nt, dest, matched, err);
  if (st == TG_OK) {
    /* Everything checked: only now do tensors change. */
    size_t pos = c.first;
    for (uint32_t i = 0; i < c.count; i++) {
      ckentry e;
      read_entry(&c, &pos, c.n - 4, (int)i, &e, NULL);
      tg_real *x = dest[i]->data;
      for (int64_t j = 0; j < e.numel; j++)
        x[j] = decode(e.values + (size_t)j * c.es, c.es);
      tg_tensor_bump(dest[i]);
    }
  }
  free(model);
  free(dest);
  free(matched);
  free(c.b);
  return st;
}

tg_status tg_checkpoint_read_meta(const char *path, char *meta, size_t cap, tg_error *err) {
  if (!path || !path[0])
    return tg_error_set(err, TG_ERR_ARG, "checkpoint_read_meta: no path");
  if (!meta || cap == 0)
    return tg_error_set(err, TG_ERR_ARG, "checkpoint_read_meta %s: no buffer for the meta text",
                        path);
  meta[0] = '\0';
  ckfile c = {.path = path, .what = "checkpoint_read_meta"};
  tg_status st = read_file(&c, err);
  if (st != TG_OK)
    return st;
  st = parse(&c, err);
  if (st == TG_OK && c.meta_len >= cap)
    st = tg_error_set(err, TG_ERR_ARG,
                      "checkpoint_read_meta %s: the meta text is %zu bytes, the buffer holds %zu",
                      path, c.meta_len, cap - 1);
  if (st == TG_OK) {
    memcpy(meta, c.b + c.meta_off, c.meta_len);
    meta[c.meta_len] = '\0';
  }
  free(c.b);
  return st;
}
