/* The flag domain over the store; see flags.h for the record format. */
#include "flags.h"

#include <string.h>

#include "lib/assert.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/command.h"

/* Every record of a valid change fits FLAGS_RECORD_MAX, by construction:
 * apply admits at most a CODEC_VALUE_MAX value, a CODEC_KEY_MAX key, a
 * CODEC_ACTOR_MAX actor and a CODEC_REASON_MAX reason (bytes),
 * flags_record_of_change keeps only the value's known members and adds
 * three varints (revision, create_revision, time_ms). Each field costs at
 * most a tag byte and a 3-byte length besides (the value twice: Flag.value
 * holds a Value), each varint at most 11 bytes. So apply has no "record
 * too big" path to take or to test. */
_Static_assert(FLAGS_RECORD_MAX >= CODEC_VALUE_MAX + 2 * 4 + CODEC_KEY_MAX + 4 +
                                       CODEC_ACTOR_MAX + 4 + CODEC_REASON_MAX +
                                       4 + 3 * 11,
               "a valid change's record must fit FLAGS_RECORD_MAX");

/* ---- the record ---------------------------------------------------------- */

int flags_decode(const void *buf, size_t len, Flip__Flag **out)
{
    int short_of_memory = 0;
    ProtobufCAllocator a = codec_allocator_noting(&short_of_memory);

    *out = flip__flag__unpack(&a, len, buf);
    if (*out == NULL) {
        return short_of_memory ? FLIP_NOMEM : FLIP_CORRUPT;
    }
    return FLIP_OK;
}

void flags_free(Flip__Flag *flag)
{
    if (flag != NULL) {
        flip__flag__free_unpacked(flag, &codec_allocator);
    }
}

void flags_record_of_change(const Flipcmd__Command *cmd,
                            size_t i,
                            uint64_t revision,
                            uint64_t create_revision,
                            Flip__Flag *rec,
                            Flip__Value *value)
{
    const Flipcmd__Change *ch = cmd->changes[i];

    flip__flag__init(rec);
    rec->has_revision = 1;
    rec->revision = revision;
    rec->has_create_revision = 1;
    rec->create_revision = create_revision;
    rec->actor = ch->actor;
    rec->reason = ch->reason;
    rec->has_time_ms = cmd->has_time_ms;
    rec->time_ms = cmd->time_ms;
    if (ch->op != FLIPCMD__OP__SET) {
        return; /* a deletion: no value */
    }
    if (value == NULL) {
        rec->value = ch->value;
        return;
    }
    command_value_copy(ch->value, value);
    rec->value = value;
}

void flags_as_read(Flip__Flag *rec, const char *key)
{
    rec->key = (char *)(uintptr_t)key;
    if (rec->value == NULL) {
        rec->has_deleted = 1;
        rec->deleted = 1;
    }
}

size_t flags_pack(const Flip__Flag *rec, uint8_t *out)
{
    size_t len = flip__flag__get_packed_size(rec);

    flip_assert(len <= FLAGS_RECORD_MAX); /* by construction, see above */
    return flip__flag__pack(rec, out);
}

uint64_t flags_change_row_bytes(size_t rlen, size_t klen)
{
    return STORE_CHANGE_KEY + rlen + klen + 3;
}

/* ---- the flag now -------------------------------------------------------- */

static int head_of(const void *rec, size_t rlen, struct flags_head *out)
{
    Flip__Flag *f = NULL;
    int rv = flags_decode(rec, rlen, &f);

    if (rv != FLIP_OK) {
        return rv;
    }
    out->revision = f->revision;
    out->create_revision =
        f->has_create_revision ? f->create_revision : f->revision;
    out->kind =
        f->value != NULL ? f->value->kind_case : FLIP__VALUE__KIND__NOT_SET;
    flags_free(f);
    return FLIP_OK;
}

int flags_txn_head(struct store_txn *txn,
                   const char *key,
                   size_t klen,
                   struct flags_head *out)
{
    const void *rec = NULL;
    size_t rlen = 0;
    int rv;

    memset(out, 0, sizeof *out);
    rv = store_txn_get(txn, STORE_FLAGS, key, klen, &rec, &rlen);
    if (rv == FLIP_NOTFOUND) {
        return FLIP_OK;
    }
    if (rv != FLIP_OK) {
        return rv;
    }
    out->bytes = klen + rlen;
    return head_of(rec, rlen, out);
}

struct head_ctx
{
    struct flags_head *out;
    int rv;
};

static int head_visit(void *arg,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen)
{
    struct head_ctx *h = arg;

    (void)key;
    h->out->bytes = klen + vlen;
    h->rv = head_of(val, vlen, h->out);
    return 1;
}

int flags_head(struct store *s,
               const char *key,
               size_t klen,
               struct flags_head *out)
{
    struct head_ctx h = { out, FLIP_OK };
    int rv;

    memset(out, 0, sizeof *out);
    rv = store_get(s, STORE_FLAGS, key, klen, head_visit, &h);
    if (rv == FLIP_NOTFOUND) {
        return FLIP_OK;
    }
    return rv != FLIP_OK ? rv : h.rv;
}

/* ---- scans --------------------------------------------------------------- */

int flags_row_decode(const struct flags_row *row, Flip__Flag **out)
{
    char *key = NULL;
    int rv = flags_decode(row->rec, row->rlen, out);

    if (rv != FLIP_OK) {
        *out = NULL;
        return rv;
    }
    if (row->key == NULL) {
        flags_as_read(*out, (*out)->key); /* a change row holds its key */
        return FLIP_OK;
    }
    /* the record does not hold its key: give the decoded copy one */
    key = flip_strndup(row->key, row->klen);
    if (key == NULL) {
        flags_free(*out);
        *out = NULL;
        return FLIP_NOMEM;
    }
    (*out)->key = key;
    return FLIP_OK;
}

struct scan_ctx
{
    flags_row_cb cb;
    void *arg;
    int changes; /* the change log, not the flags db */
};

static int row_visit(void *arg,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen)
{
    struct scan_ctx *sc = arg;
    struct flags_row row;

    memset(&row, 0, sizeof row);
    row.bytes = klen + vlen;
    row.rec = val;
    row.rlen = vlen;
    if (sc->changes) {
        if (klen != STORE_CHANGE_KEY) {
            return 0;
        }
        row.revision = store_change_key_revision(key);
        row.position = store_change_key_position(key);
    } else {
        row.key = key;
        row.klen = klen;
    }
    return sc->cb(sc->arg, &row);
}

int flags_scan(struct store *s,
               const char *prefix,
               const char *after,
               size_t alen,
               size_t limit,
               flags_row_cb cb,
               void *arg,
               int *more)
{
    struct scan_ctx sc = { cb, arg, 0 };

    return store_scan(s, STORE_FLAGS, prefix,
                      prefix != NULL ? strlen(prefix) : 0, after, alen, limit,
                      row_visit, &sc, more);
}

int flags_reader_scan(struct store_reader *r,
                      const char *prefix,
                      const char *after,
                      size_t alen,
                      size_t limit,
                      flags_row_cb cb,
                      void *arg,
                      int *more)
{
    struct scan_ctx sc = { cb, arg, 0 };

    return store_reader_scan(r, STORE_FLAGS, prefix,
                             prefix != NULL ? strlen(prefix) : 0, after, alen,
                             limit, row_visit, &sc, more);
}

int changes_after(struct store *s,
                  uint64_t revision,
                  flags_row_cb cb,
                  void *arg)
{
    struct scan_ctx sc = { cb, arg, 1 };
    uint8_t after[STORE_CHANGE_KEY];
    int more = 0;

    /* the last key a row of `revision` can have: the scan starts past it */
    store_change_key(after, revision, UINT32_MAX);
    return store_scan(s, STORE_CHANGES, NULL, 0, after, sizeof after, 0,
                      row_visit, &sc, &more);
}

struct get_ctx
{
    Flip__Flag *flag;
    int rv;
};

static int get_row(void *arg, const struct flags_row *row)
{
    struct get_ctx *g = arg;

    g->rv = flags_row_decode(row, &g->flag);
    return 1;
}

int flags_get(struct store *s, const char *key, Flip__Flag **out)
{
    struct get_ctx g = { NULL, FLIP_OK };
    struct scan_ctx sc = { get_row, &g, 0 };
    int rv;

    *out = NULL;
    rv = store_get(s, STORE_FLAGS, key, strlen(key), row_visit, &sc);
    if (rv == FLIP_OK && g.rv != FLIP_OK) {
        rv = g.rv;
    }
    if (rv != FLIP_OK) {
        flags_free(g.flag);
        return rv;
    }
    *out = g.flag;
    return FLIP_OK;
}

/* ---- writes -------------------------------------------------------------- */

int flags_txn_put(struct store_txn *txn,
                  const char *key,
                  size_t klen,
                  const uint8_t *rec,
                  size_t rlen)
{
    return store_put(txn, STORE_FLAGS, key, klen, rec, rlen);
}

int flags_txn_del(struct store_txn *txn, const char *key, size_t klen)
{
    return store_del(txn, STORE_FLAGS, key, klen);
}

int flags_txn_log(struct store_txn *txn,
                  uint64_t revision,
                  uint32_t position,
                  const char *key,
                  const Flip__Flag *rec)
{
    Flip__Flag row = *rec; /* the same record, with its key */
    uint8_t packed[FLAGS_RECORD_MAX];
    size_t len;

    row.key = (char *)(uintptr_t)key;
    len = flags_pack(&row, packed);
    return store_change_append(txn, revision, position, packed, len);
}
