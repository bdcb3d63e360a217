/* The last-known-good file; see lkg.h, and client/flip.h for the format.
 *
 * Failure modes: any byte out of place (a torn write by another tool, a
 * truncated copy, bit rot) fails the checksum or a record check, and the
 * whole file is refused; a crash while storing leaves either the old file
 * or the new one, never a mix, because the new image only replaces the
 * old by rename after it is on disk. */
#include "client/lkg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/flag.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"

/* ---- checksum ----------------------------------------------------------- */

uint32_t lkg_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    /* Reflected polynomial 0xEDB88320, four bits at a time. */
    static const uint32_t nibble[16] = { 0x00000000u, 0x1db71064u, 0x3b6e20c8u,
                                         0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
                                         0x4db26158u, 0x5005713cu, 0xedb88320u,
                                         0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
                                         0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u,
                                         0xbdbdf21cu };

    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return ~crc;
}

/* ---- encoding ----------------------------------------------------------- */

static int cmp_flag(const void *a, const void *b)
{
    const struct flip_flag *x = *(const struct flip_flag *const *)a;
    const struct flip_flag *y = *(const struct flip_flag *const *)b;

    return strcmp(x->key, y->key);
}

/* Appends a u32 length and then the bytes. */
static int put_record(struct buf *out, const void *p, size_t n)
{
    int rv = buf_reserve(out, 4 + n);

    if (rv != FLIP_OK) {
        return rv;
    }
    buf_put_u32be(buf_tail(out), (uint32_t)n);
    buf_commit(out, 4);
    if (n > 0) {
        memcpy(buf_tail(out), p, n);
        buf_commit(out, n);
    }
    return FLIP_OK;
}

static int put_flag(struct buf *out, const struct flip_flag *f)
{
    Flip__Flag w = FLIP__FLAG__INIT;
    Flip__Value v = FLIP__VALUE__INIT;
    const char *why = NULL;
    size_t n;
    int rv;

    w.key = f->key;
    (void)flag_value_to_wire(&f->value, &v, &why); /* a table holds no other */
    w.value = &v;
    w.has_revision = 1;
    w.revision = f->revision;
    w.has_create_revision = 1;
    w.create_revision = f->create_revision;
    w.actor = f->actor;
    w.reason = f->reason;
    w.has_time_ms = 1;
    w.time_ms = f->time_ms;
    n = flip__flag__get_packed_size(&w);
    if (n > LKG_MAX_BYTES) {
        return FLIP_TOOBIG;
    }
    rv = buf_reserve(out, 4 + n);
    if (rv != FLIP_OK) {
        return rv;
    }
    buf_put_u32be(buf_tail(out), (uint32_t)n);
    buf_commit(out, 4);
    buf_commit(out, flip__flag__pack(&w, buf_tail(out)));
    return FLIP_OK;
}

int lkg_encode(const struct wcache *c,
               const struct wprefixes *ps,
               struct buf *out)
{
    const struct flip_flag **sorted = NULL;
    const struct flip_flag *f;
    size_t pos = 0;
    size_t k = 0;
    uint8_t *h;
    int rv;

    buf_reset(out); /* start 0: buf_reserve never moves the image */
    if (c->n > 0) {
        sorted = flip_malloc(c->n * sizeof *sorted);
        if (sorted == NULL) {
            return FLIP_NOMEM;
        }
    }
    while ((f = wcache_next(c, &pos)) != NULL) {
        sorted[k++] = f;
    }
    if (k > 0) {
        qsort(sorted, k, sizeof *sorted, cmp_flag);
    }
    rv = buf_reserve(out, LKG_HEADER);
    if (rv != FLIP_OK) {
        goto out;
    }
    buf_commit(out, LKG_HEADER); /* filled in below */
    rv = put_record(out, c->cluster_id, strlen(c->cluster_id));
    for (size_t i = 0; i < ps->n && rv == FLIP_OK; i++) {
        rv = put_record(out, ps->p[i], strlen(ps->p[i]));
    }
    for (size_t i = 0; i < k && rv == FLIP_OK; i++) {
        rv = put_flag(out, sorted[i]);
    }
    if (rv == FLIP_OK && buf_len(out) > LKG_MAX_BYTES) {
        rv = FLIP_TOOBIG;
    }
    if (rv != FLIP_OK) {
        buf_reset(out); /* drop the partial image */
        goto out;
    }
    h = buf_head(out);
    memcpy(h, LKG_MAGIC, 8);
    buf_put_u32be(h + 8, LKG_VERSION);
    buf_put_u64be(h + 16, c->revision);
    buf_put_u32be(h + 24, (uint32_t)ps->n);
    buf_put_u32be(h + 28, (uint32_t)k);
    buf_put_u64be(h + 32, (uint64_t)(buf_len(out) - LKG_HEADER));
    buf_put_u32be(h + 12, lkg_crc32(0, h + 16, buf_len(out) - 16));

out:
    flip_free(sorted);
    return rv;
}

/* ---- decoding ----------------------------------------------------------- */

/* Cursor over the body. */
struct reader
{
    const uint8_t *p;
    size_t left;
};

/* Next u32-length-prefixed record; FLIP_CORRUPT when it overruns. */
static int next_record(struct reader *r, const uint8_t **rec, size_t *len)
{
    uint32_t n;

    if (r->left < 4) {
        return FLIP_CORRUPT;
    }
    n = buf_get_u32be(r->p);
    if (n > r->left - 4) {
        return FLIP_CORRUPT;
    }
    *rec = r->p + 4;
    *len = n;
    r->p += 4 + (size_t)n;
    r->left -= 4 + (size_t)n;
    return FLIP_OK;
}

/* Version 2: the cluster the state came from, "" when unknown. */
static int read_cluster_id(struct reader *r,
                           struct wcache *out,
                           const char **why)
{
    const uint8_t *rec;
    size_t len;

    if (next_record(r, &rec, &len) != FLIP_OK || len > WCACHE_CLUSTER_ID_MAX ||
        memchr(rec, '\0', len) != NULL) {
        *why = "bad cluster id record";
        return FLIP_CORRUPT;
    }
    memcpy(out->cluster_id, rec, len);
    out->cluster_id[len] = '\0';
    return FLIP_OK;
}

static int read_prefixes(struct reader *r,
                         uint32_t count,
                         struct wprefixes *out,
                         const char **why)
{
    char **list = NULL;
    const uint8_t *rec;
    size_t len;
    uint32_t i;
    int rv = FLIP_OK;

    if (count > WCACHE_MAX_PREFIXES) {
        *why = "more prefixes than a watch can have";
        return FLIP_CORRUPT;
    }
    list = flip_calloc(count > 0 ? count : 1, sizeof *list);
    if (list == NULL) {
        return FLIP_NOMEM;
    }
    for (i = 0; i < count; i++) {
        if (next_record(r, &rec, &len) != FLIP_OK || len > CODEC_KEY_MAX) {
            *why = "prefix record overruns the file";
            rv = FLIP_CORRUPT;
            break;
        }
        list[i] = flip_strndup((const char *)rec, len);
        if (list[i] == NULL) {
            rv = FLIP_NOMEM;
            break;
        }
    }
    if (rv == FLIP_OK) {
        /* A file always holds a normalised set, at least "". */
        rv = wprefixes_make(out, (const char *const *)list, count, why);
        if (rv == FLIP_INVALID || (rv == FLIP_OK && count == 0)) {
            *why = rv == FLIP_OK ? "no prefix" : "bad prefix";
            wprefixes_clear(out);
            rv = FLIP_CORRUPT;
        }
    }
    for (uint32_t k = 0; k < count; k++) {
        flip_free(list[k]);
    }
    flip_free(list);
    return rv;
}

/* One flag record into the table (when `want` matches it). */
static int read_flag(struct reader *r,
                     const struct wprefixes *want,
                     struct wcache *out,
                     const char **why)
{
    Flip__Flag *w = NULL;
    struct flip_flag *f = NULL;
    struct flip_flag *old = NULL;
    const uint8_t *rec;
    size_t len;
    int deleted = 0;
    int short_of_memory = 0;
    ProtobufCAllocator a = codec_allocator_noting(&short_of_memory);
    int rv;

    if (next_record(r, &rec, &len) != FLIP_OK) {
        *why = "flag record overruns the file";
        return FLIP_CORRUPT;
    }
    /* protobuf-c answers NULL for garbage and for a short allocation
     * alike: a good file must not be refused (and later overwritten) for
     * want of memory. */
    w = flip__flag__unpack(&a, len, rec);
    if (w == NULL) {
        if (short_of_memory) {
            return FLIP_NOMEM;
        }
        *why = "flag record does not decode";
        return FLIP_CORRUPT;
    }
    f = wcache_flag_new();
    rv = f != NULL ? wcache_flag_from_wire(w, f, &deleted, why) : FLIP_NOMEM;
    flip__flag__free_unpacked(w, &a);
    if (rv == FLIP_PROTO || (rv == FLIP_OK && deleted)) {
        *why = rv == FLIP_OK ? "flag record marked deleted" : *why;
        rv = FLIP_CORRUPT;
    }
    if (rv == FLIP_OK && !wprefixes_match(want, f->key)) {
        wcache_flag_free(f);
        return FLIP_OK; /* valid, but not watched any more */
    }
    if (rv == FLIP_OK && wcache_get(out, f->key) != NULL) {
        *why = "a key appears twice";
        rv = FLIP_CORRUPT;
    }
    if (rv == FLIP_OK) {
        rv = wcache_put(out, f, &old);
    }
    if (rv != FLIP_OK) {
        wcache_flag_free(f);
    }
    return rv;
}

int lkg_decode(const uint8_t *p,
               size_t n,
               const struct wprefixes *want,
               struct wcache *out,
               int *resumable,
               const char **why)
{
    struct wprefixes had = { NULL, 0 };
    struct reader r;
    uint32_t n_prefixes;
    uint32_t n_flags;
    uint32_t version;
    int rv;

    *resumable = 0;
    if (n < LKG_HEADER) {
        *why = "shorter than its header (truncated)";
        return FLIP_CORRUPT;
    }
    if (memcmp(p, LKG_MAGIC, 8) != 0) {
        *why = "not a flipd last-known-good file";
        return FLIP_CORRUPT;
    }
    version = buf_get_u32be(p + 8);
    if (version != 1 && version != LKG_VERSION) {
        *why = "written in a format version this library does not read";
        return FLIP_CORRUPT;
    }
    if (buf_get_u64be(p + 32) != (uint64_t)(n - LKG_HEADER)) {
        *why = "size does not match its header (truncated or extended)";
        return FLIP_CORRUPT;
    }
    if (buf_get_u32be(p + 12) != lkg_crc32(0, p + 16, n - 16)) {
        *why = "checksum mismatch";
        return FLIP_CORRUPT;
    }
    n_prefixes = buf_get_u32be(p + 24);
    n_flags = buf_get_u32be(p + 28);
    r.p = p + LKG_HEADER;
    r.left = n - LKG_HEADER;
    if (n_flags > r.left / 4) {
        *why = "more flags than the file can hold";
        return FLIP_CORRUPT;
    }
    rv = version >= 2 ? read_cluster_id(&r, out, why) : FLIP_OK;
    if (rv == FLIP_OK) {
        rv = read_prefixes(&r, n_prefixes, &had, why);
    }
    for (uint32_t i = 0; i < n_flags && rv == FLIP_OK; i++) {
        rv = read_flag(&r, want, out, why);
    }
    if (rv == FLIP_OK && r.left != 0) {
        *why = "bytes after the last record";
        rv = FLIP_CORRUPT;
    }
    if (rv == FLIP_OK) {
        out->revision = buf_get_u64be(p + 16);
        *resumable = wprefixes_cover(&had, want);
    } else {
        wcache_clear(out);
    }
    wprefixes_clear(&had);
    return rv;
}

/* ---- files -------------------------------------------------------------- */

static void errno_msg(char *msg,
                      size_t len,
                      const char *what,
                      const char *path,
                      int err)
{
    char text[128];

    if (strerror_r(err, text, sizeof text) != 0) {
        snprintf(text, sizeof text, "errno %d", err);
    }
    snprintf(msg, len, "%s %s: %s", what, path, text);
}

int lkg_load(const char *path,
             const struct wprefixes *want,
             struct wcache *out,
             int *resumable,
             char *msg,
             size_t msg_len)
{
    struct stat st;
    uint8_t *data = NULL;
    const char *why = "";
    size_t size;
    size_t got = 0;
    ssize_t n;
    int fd;
    int err;
    int rv;

    *resumable = 0;
    msg[0] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        errno_msg(msg, msg_len, "last-known-good file", path, err);
        return err == ENOENT ? FLIP_NOTFOUND : FLIP_IOERR;
    }
    /* errno only means something when fstat failed */
    err = fstat(fd, &st) != 0 ? errno : 0;
    if (err != 0 || !S_ISREG(st.st_mode)) {
        if (err == 0) {
            snprintf(msg, msg_len, "last-known-good file %s: not a file", path);
        } else {
            errno_msg(msg, msg_len, "last-known-good file", path, err);
        }
        close(fd);
        return FLIP_IOERR;
    }
    if ((uint64_t)st.st_size > LKG_MAX_BYTES) {
        snprintf(msg, msg_len, "last-known-good file %s: larger than %u bytes",
                 path, LKG_MAX_BYTES);
        close(fd);
        return FLIP_TOOBIG;
    }
    size = (size_t)st.st_size;
    data = flip_malloc(size > 0 ? size : 1);
    if (data == NULL) {
        close(fd);
        return FLIP_NOMEM;
    }
    err = 0;
    while (got < size) {
        n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
        }
        if (n <= 0) {
            break; /* EOF: it shrank under us; lkg_decode refuses that */
        }
        got += (size_t)n;
    }
    if (err != 0) {
        errno_msg(msg, msg_len, "reading last-known-good file", path, err);
        rv = FLIP_IOERR;
    } else {
        rv = lkg_decode(data, got, want, out, resumable, &why);
        if (rv == FLIP_CORRUPT) {
            snprintf(msg, msg_len,
                     "last-known-good file %s ignored: %s (it will be "
                     "rewritten once the watch is live)",
                     path, why);
        }
    }
    close(fd);
    flip_free(data);
    return rv;
}

/* Writes all n bytes. 0 or an errno value. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    ssize_t k;

    while (n > 0) {
        k = write(fd, p, n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return k < 0 ? errno : EIO;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path, so the rename is durable. */
static int sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t len;
    int fd;
    int err = 0;

    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else {
        len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof dir) {
            return ENAMETOOLONG;
        }
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0) {
        return errno;
    }
    if (fsync(fd) != 0 && errno != EINVAL) {
        err = errno; /* EINVAL: a filesystem that cannot sync directories */
    }
    close(fd);
    return err;
}

int lkg_store(const char *path,
              const uint8_t *p,
              size_t n,
              char *msg,
              size_t msg_len)
{
    char tmp[4096];
    const char *what = "creating";
    int fd;
    int err;

    msg[0] = '\0';
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >=
        sizeof tmp) {
        snprintf(msg, msg_len, "last-known-good file name too long");
        return FLIP_IOERR;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        goto err;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    what = "writing";
    err = write_all(fd, p, n);
    if (err == 0 && fsync(fd) != 0) {
        err = errno;
    }
    if (close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err == 0 && rename(tmp, path) != 0) {
        what = "renaming";
        err = errno;
    }
    if (err != 0) {
        (void)unlink(tmp);
        goto err;
    }
    what = "syncing the directory of";
    err = sync_dir(path);
    if (err != 0) {
        goto err; /* renamed, but perhaps not durable yet */
    }
    return FLIP_OK;

err:
    errno_msg(msg, msg_len, what, path, err);
    return err == ENOSPC || err == EDQUOT ? FLIP_NOSPACE : FLIP_IOERR;
}
