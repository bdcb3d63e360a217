/* The snapshot format; see snapshot.h. Nothing here keeps state between
 * calls or logs: snapshot_write runs on a worker thread (raft/fsm.c). */
#include "snapshot.h"

#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

#define SNAP_MAGIC  "FLS1"
#define SNAP_HEADER 16 /* magic, version, index */
#define SNAP_DB_HDR 12 /* db, rows */
#define SNAP_ROW    8  /* klen, vlen */
#define SNAP_TAIL   8  /* checksum */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME  1099511628211ull

/* ---- writing ------------------------------------------------------------- */

/* Pass 1 counts rows and bytes per db; pass 2 copies and hashes into `out`.
 * Both read the same read view, so pass 2 must find exactly what pass 1
 * counted (checked: a mismatch is a bug, FLIP_INTERNAL). */
struct snap_out
{
    uint8_t *p;    /* NULL during pass 1 */
    size_t size;   /* bytes produced (or counted) so far */
    size_t cap;    /* pass 2: the buffer's size */
    uint64_t hash; /* pass 2 only */
    uint64_t rows[STORE_NDB];
    enum store_db db;
    int overflow; /* pass 2 found more than pass 1 counted */
    const atomic_int *cancel;
    int cancelled;
};

static void emit(struct snap_out *o, const void *data, size_t n)
{
    const uint8_t *src = data;
    uint64_t h = o->hash;

    if (o->p == NULL) {
        o->size += n;
        return;
    }
    if (o->cap - o->size < n) {
        o->overflow = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        o->p[o->size + i] = src[i];
        h = (h ^ src[i]) * FNV_PRIME;
    }
    o->hash = h;
    o->size += n;
}

static int emit_row(void *arg,
                    const void *key,
                    size_t klen,
                    const void *val,
                    size_t vlen)
{
    struct snap_out *o = arg;
    uint8_t hdr[SNAP_ROW];

    buf_put_u32be(hdr, (uint32_t)klen);
    buf_put_u32be(hdr + 4, (uint32_t)vlen);
    emit(o, hdr, sizeof hdr);
    emit(o, key, klen);
    emit(o, val, vlen);
    if (o->p == NULL) {
        o->rows[o->db]++;
    }
    if (o->cancel != NULL &&
        atomic_load_explicit(o->cancel, memory_order_relaxed)) {
        o->cancelled = 1;
    }
    return o->overflow || o->cancelled;
}

static int emit_all(struct store_reader *r, struct snap_out *o, uint64_t index)
{
    uint8_t hdr[SNAP_HEADER];
    int more = 0;

    memcpy(hdr, SNAP_MAGIC, 4);
    buf_put_u32be(hdr + 4, SNAPSHOT_VERSION);
    buf_put_u64be(hdr + 8, index);
    emit(o, hdr, sizeof hdr);
    for (int db = 0; db < STORE_NDB; db++) {
        uint8_t dbh[SNAP_DB_HDR];
        int rv;

        o->db = (enum store_db)db;
        buf_put_u32be(dbh, (uint32_t)db);
        buf_put_u64be(dbh + 4, o->rows[db]); /* pass 1: not yet known */
        emit(o, dbh, sizeof dbh);
        rv = store_reader_scan(r, o->db, NULL, 0, NULL, 0, 0, emit_row, o,
                               &more);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    if (o->cancelled) {
        return FLIP_AGAIN;
    }
    return o->overflow ? FLIP_INTERNAL : FLIP_OK;
}

int snapshot_write(struct store_reader *r,
                   void *(*alloc)(size_t),
                   const atomic_int *cancel,
                   void **buf,
                   size_t *len,
                   uint64_t *index)
{
    struct snap_out o;
    uint8_t tail[SNAP_TAIL];
    uint64_t at = store_reader_applied(r);
    int rv;

    memset(&o, 0, sizeof o);
    o.cancel = cancel;
    rv = emit_all(r, &o, at);
    if (rv != FLIP_OK) {
        return rv;
    }
    o.cap = o.size + SNAP_TAIL;
    o.p = alloc(o.cap);
    if (o.p == NULL) {
        return FLIP_NOMEM;
    }
    o.size = 0;
    o.hash = FNV_OFFSET;
    rv = emit_all(r, &o, at);
    if (rv != FLIP_OK || o.size + SNAP_TAIL != o.cap) {
        /* The caller's allocator has no matching free here: hand the
         * buffer back with a zero length; the caller frees it. */
        *buf = o.p;
        *len = 0;
        return rv != FLIP_OK ? rv : FLIP_INTERNAL;
    }
    buf_put_u64be(tail, o.hash);
    memcpy(o.p + o.size, tail, sizeof tail);
    *buf = o.p;
    *len = o.cap;
    *index = at;
    return FLIP_OK;
}

/* ---- reading ------------------------------------------------------------- */

int snapshot_index(const void *buf, size_t len, uint64_t *index)
{
    const uint8_t *p = buf;

    if (len < SNAP_HEADER + SNAP_TAIL || memcmp(p, SNAP_MAGIC, 4) != 0 ||
        buf_get_u32be(p + 4) != SNAPSHOT_VERSION) {
        return FLIP_CORRUPT;
    }
    *index = buf_get_u64be(p + 8);
    return FLIP_OK;
}

/* Walks the rows of `p` (len bytes including the checksum), checking every
 * length against the end; `cb` may be NULL (check only). */
static int walk(const uint8_t *p, size_t len, snapshot_row_cb cb, void *arg)
{
    size_t body = len - SNAP_TAIL;
    size_t off = SNAP_HEADER;

    for (int db = 0; db < STORE_NDB; db++) {
        uint64_t rows;

        if (body - off < SNAP_DB_HDR ||
            buf_get_u32be(p + off) != (uint32_t)db) {
            return FLIP_CORRUPT;
        }
        rows = buf_get_u64be(p + off + 4);
        off += SNAP_DB_HDR;
        for (uint64_t i = 0; i < rows; i++) {
            size_t kl;
            size_t vl;
            int rv;

            if (body - off < SNAP_ROW) {
                return FLIP_CORRUPT;
            }
            kl = buf_get_u32be(p + off);
            vl = buf_get_u32be(p + off + 4);
            off += SNAP_ROW;
            if (kl == 0 || body - off < kl || body - off - kl < vl) {
                return FLIP_CORRUPT;
            }
            if (cb != NULL) {
                rv = cb(arg, (enum store_db)db, p + off, kl, p + off + kl, vl);
                if (rv != 0) {
                    return rv;
                }
            }
            off += kl + vl;
        }
    }
    return off == body ? FLIP_OK : FLIP_CORRUPT;
}

int snapshot_check(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t index;
    uint64_t h = FNV_OFFSET;

    if (snapshot_index(buf, len, &index) != FLIP_OK) {
        return FLIP_CORRUPT;
    }
    for (size_t i = 0; i < len - SNAP_TAIL; i++) {
        h = (h ^ p[i]) * FNV_PRIME;
    }
    if (h != buf_get_u64be(p + len - SNAP_TAIL)) {
        return FLIP_CORRUPT;
    }
    return walk(p, len, NULL, NULL);
}

int snapshot_rows(const void *buf, size_t len, snapshot_row_cb cb, void *arg)
{
    if (len < SNAP_HEADER + SNAP_TAIL) {
        return FLIP_CORRUPT;
    }
    return walk(buf, len, cb, arg);
}
