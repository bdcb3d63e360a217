/* The deduplication table; see dedup.h for the layout and bounds. */
#include "dedup.h"

#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"

#define ROW_PREFIX "rq/"
#define AGE_PREFIX "rt/"
#define PREFIX_LEN 3
#define ROW_KEY    (PREFIX_LEN + DEDUP_CLIENT_LEN + 8)
#define AGE_KEY    (PREFIX_LEN + 8 + DEDUP_CLIENT_LEN + 8)
#define ROW_VAL    (8 + 1 + 8 + 8)
#define COUNT_KEY  "dedup_rows"
#define CLOCK_KEY  "dedup_clock"

int dedup_id_parse(const Flip__RequestId *w,
                   struct dedup_id *out,
                   const char **why)
{
    if (!w->has_client_id || w->client_id.len != DEDUP_CLIENT_LEN) {
        *why = "request_id.client_id must be exactly 16 bytes";
        return FLIP_INVALID;
    }
    if (!w->has_seq || w->seq == 0) {
        *why = "request_id.seq must be at least 1";
        return FLIP_INVALID;
    }
    memcpy(out->client, w->client_id.data, DEDUP_CLIENT_LEN);
    out->seq = w->seq;
    out->digest = 0;
    return FLIP_OK;
}

/* ---- content digest ---------------------------------------------------- */

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME  1099511628211ull

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t x)
{
    uint8_t raw[8];

    buf_put_u64be(raw, x);
    return fnv(h, raw, sizeof raw);
}

/* Strings are hashed with their length, so "ab"+"c" and "a"+"bc" differ. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    return fnv(fnv_u64(h, n), s != NULL ? s : "", n);
}

static uint64_t value_digest(uint64_t h, const Flip__Value *v)
{
    uint64_t bits = 0;

    if (v == NULL) {
        return fnv_u64(h, 0);
    }
    h = fnv_u64(h, (uint64_t)v->kind_case);
    switch (v->kind_case) {
    case FLIP__VALUE__KIND_BOOL_VALUE:
        return fnv_u64(h, v->bool_value != 0);
    case FLIP__VALUE__KIND_INT_VALUE:
        return fnv_u64(h, (uint64_t)v->int_value);
    case FLIP__VALUE__KIND_DOUBLE_VALUE:
        memcpy(&bits, &v->double_value, sizeof bits);
        return fnv_u64(h, bits);
    case FLIP__VALUE__KIND_STRING_VALUE:
        return fnv_str(h, v->string_value);
    case FLIP__VALUE__KIND_JSON_VALUE:
        return fnv_str(h, v->json_value);
    default:
        return h;
    }
}

int dedup_id_of(const Flipcmd__Change *ch,
                struct dedup_id *out,
                const char **why)
{
    uint64_t h = FNV_OFFSET;
    int rv = dedup_id_parse(ch->request_id, out, why);

    if (rv != FLIP_OK) {
        return rv;
    }
    h = fnv_u64(h, (uint64_t)ch->op);
    h = fnv_str(h, ch->key);
    h = value_digest(h, ch->op == FLIPCMD__OP__SET ? ch->value : NULL);
    h = fnv_u64(h, ch->has_expected_revision != 0);
    h = fnv_u64(h, ch->has_expected_revision ? ch->expected_revision : 0);
    h = fnv_u64(h, ch->has_change_type && ch->change_type);
    out->digest = h;
    return FLIP_OK;
}

/* ---- rows ---------------------------------------------------------------- */

static void row_key(uint8_t *k, const struct dedup_id *id)
{
    memcpy(k, ROW_PREFIX, PREFIX_LEN);
    memcpy(k + PREFIX_LEN, id->client, DEDUP_CLIENT_LEN);
    buf_put_u64be(k + PREFIX_LEN + DEDUP_CLIENT_LEN, id->seq);
}

static void age_key(uint8_t *k, uint64_t age, const struct dedup_id *id)
{
    memcpy(k, AGE_PREFIX, PREFIX_LEN);
    buf_put_u64be(k + PREFIX_LEN, age);
    memcpy(k + PREFIX_LEN + 8, id->client, DEDUP_CLIENT_LEN);
    buf_put_u64be(k + PREFIX_LEN + 8 + DEDUP_CLIENT_LEN, id->seq);
}

/* A counter row: absent (or malformed) reads as 0; a store error is
 * returned, never read as 0: a count or clock that differs on one replica
 * would make its table differ from the others' for ever. */
static int meta_get(struct store_txn *txn, const char *name, uint64_t *out)
{
    const void *v = NULL;
    size_t vlen = 0;
    int rv = store_txn_get(txn, STORE_META, name, strlen(name), &v, &vlen);

    *out = 0;
    if (rv == FLIP_NOTFOUND || (rv == FLIP_OK && vlen != 8)) {
        return FLIP_OK;
    }
    if (rv == FLIP_OK) {
        *out = buf_get_u64be(v);
    }
    return rv;
}

/* A counter row exists only while it is not 0. */
static int meta_set(struct store_txn *txn, const char *name, uint64_t n)
{
    uint8_t raw[8];

    if (n == 0) {
        int rv = store_del(txn, STORE_META, name, strlen(name));
        return rv == FLIP_NOTFOUND ? FLIP_OK : rv;
    }
    buf_put_u64be(raw, n);
    return store_put(txn, STORE_META, name, strlen(name), raw, 8);
}

uint64_t dedup_rows(struct store_txn *txn)
{
    uint64_t n = 0;

    (void)meta_get(txn, COUNT_KEY, &n);
    return n;
}

int dedup_clock(struct store_txn *txn, int64_t time_ms, uint64_t *now)
{
    uint64_t prev = 0;
    uint64_t t = time_ms < 0 ? 0 : (uint64_t)time_ms;
    int rv = meta_get(txn, CLOCK_KEY, &prev);

    if (rv != FLIP_OK) {
        return rv;
    }
    *now = t > prev ? t : prev;
    return *now != prev ? meta_set(txn, CLOCK_KEY, *now) : FLIP_OK;
}

int dedup_lookup(struct store_txn *txn,
                 const struct dedup_id *id,
                 struct fsm_outcome *out)
{
    uint8_t k[ROW_KEY];
    const uint8_t *v = NULL;
    size_t vlen = 0;
    int rv;

    row_key(k, id);
    rv = store_txn_get(txn, STORE_META, k, sizeof k, (const void **)&v, &vlen);
    if (rv != FLIP_OK) {
        return rv;
    }
    if (vlen != ROW_VAL) {
        /* every replica holds the same row: treating it as absent is
         * deterministic, and aborting apply on it would be for ever */
        flip_warnf("dedup: a row of %zu bytes, expected %d; ignored", vlen,
                   ROW_VAL);
        return FLIP_NOTFOUND;
    }
    if (buf_get_u64be(v + 17) != id->digest) {
        return FLIP_CONFLICT;
    }
    memset(out, 0, sizeof *out);
    out->status = (enum fsm_status)v[8];
    out->revision = buf_get_u64be(v + 9);
    out->duplicate = 1;
    return FLIP_OK;
}

int dedup_record(struct store_txn *txn,
                 const struct dedup_id *id,
                 uint64_t now,
                 const struct fsm_outcome *o)
{
    uint8_t k[ROW_KEY];
    uint8_t a[AGE_KEY];
    uint8_t v[ROW_VAL];
    uint8_t empty = 0;
    int rv;

    row_key(k, id);
    age_key(a, now, id);
    buf_put_u64be(v, now);
    v[8] = (uint8_t)o->status;
    buf_put_u64be(v + 9, o->revision);
    buf_put_u64be(v + 17, id->digest);
    rv = store_put(txn, STORE_META, k, sizeof k, v, sizeof v);
    if (rv == FLIP_OK) {
        rv = store_put(txn, STORE_META, a, sizeof a, &empty, 1);
    }
    return rv;
}

/* Deletes the age row `key` and the row it indexes (NOTFOUND is fine:
 * nothing else deletes them, but a missing one must not stop apply). */
static int drop(struct store_txn *txn, const uint8_t *key)
{
    struct dedup_id id;
    uint8_t ak[AGE_KEY];
    uint8_t rk[ROW_KEY];
    int rv;

    memcpy(ak, key, AGE_KEY);
    memcpy(id.client, key + PREFIX_LEN + 8, DEDUP_CLIENT_LEN);
    id.seq = buf_get_u64be(key + PREFIX_LEN + 8 + DEDUP_CLIENT_LEN);
    row_key(rk, &id);
    rv = store_del(txn, STORE_META, ak, sizeof ak);
    if (rv == FLIP_OK || rv == FLIP_NOTFOUND) {
        rv = store_del(txn, STORE_META, rk, sizeof rk);
    }
    return rv == FLIP_NOTFOUND ? FLIP_OK : rv;
}

int dedup_expire(struct store_txn *txn,
                 uint64_t now,
                 uint64_t window_ms,
                 uint64_t added,
                 size_t max_ops)
{
    uint64_t start = 0;
    uint64_t rows;
    int rv = meta_get(txn, COUNT_KEY, &start);

    if (rv != FLIP_OK) {
        return rv;
    }
    rows = start + added;

    for (size_t i = 0; i < max_ops && rows > 0; i++) {
        const uint8_t *key = NULL;
        const void *val = NULL;
        size_t klen = 0;
        size_t vlen = 0;

        rv = store_txn_first(txn, STORE_META, AGE_PREFIX, PREFIX_LEN,
                             (const void **)&key, &klen, &val, &vlen);
        if (rv == FLIP_NOTFOUND) {
            rv = FLIP_OK;
            rows = 0; /* the count drifted; no row is left */
            break;
        }
        if (rv != FLIP_OK) {
            break;
        }
        if (klen != AGE_KEY) {
            /* cannot be: only dedup_record writes "rt/" rows */
            rv = store_del(txn, STORE_META, key, klen);
            if (rv != FLIP_OK) {
                break;
            }
            continue;
        }
        if (rows <= DEDUP_MAX_ROWS &&
            buf_get_u64be(key + PREFIX_LEN) + window_ms >= now) {
            break; /* the oldest row is young enough: so are the rest */
        }
        rv = drop(txn, key);
        if (rv != FLIP_OK) {
            break;
        }
        rows--;
    }
    if (rv == FLIP_OK && rows != start) {
        rv = meta_set(txn, COUNT_KEY, rows);
    }
    return rv;
}

int dedup_known(struct store *s, const struct dedup_id *id)
{
    uint8_t k[ROW_KEY];

    row_key(k, id);
    return store_has(s, STORE_META, k, sizeof k);
}
