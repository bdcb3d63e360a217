/* The deduplication table; see dedup.h for the layout and bounds. */
#include "dedup.h"

#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

#define ROW_PREFIX "rq/"
#define AGE_PREFIX "rt/"
#define PREFIX_LEN 3
#define ROW_KEY    (PREFIX_LEN + DEDUP_CLIENT_LEN + 8)
#define AGE_KEY    (PREFIX_LEN + 8 + DEDUP_CLIENT_LEN + 8)
#define ROW_VAL    (8 + 1 + 8)
#define COUNT_KEY  "dedup_rows"

int dedup_id_parse(const Flip__RequestId *w, struct dedup_id *out,
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
    return FLIP_OK;
}

static void row_key(uint8_t *k, const struct dedup_id *id)
{
    memcpy(k, ROW_PREFIX, PREFIX_LEN);
    memcpy(k + PREFIX_LEN, id->client, DEDUP_CLIENT_LEN);
    buf_put_u64be(k + PREFIX_LEN + DEDUP_CLIENT_LEN, id->seq);
}

/* Negative leader times (a clock before 1970) age as 0. */
static uint64_t age_of(int64_t time_ms)
{
    return time_ms < 0 ? 0 : (uint64_t)time_ms;
}

static void age_key(uint8_t *k, uint64_t age, const struct dedup_id *id)
{
    memcpy(k, AGE_PREFIX, PREFIX_LEN);
    buf_put_u64be(k + PREFIX_LEN, age);
    memcpy(k + PREFIX_LEN + 8, id->client, DEDUP_CLIENT_LEN);
    buf_put_u64be(k + PREFIX_LEN + 8 + DEDUP_CLIENT_LEN, id->seq);
}

uint64_t dedup_rows(struct store_txn *txn)
{
    const void *v = NULL;
    size_t vlen = 0;

    if (store_txn_get(txn, STORE_META, COUNT_KEY, strlen(COUNT_KEY), &v,
                      &vlen) != FLIP_OK ||
        vlen != 8) {
        return 0;
    }
    return buf_get_u64be(v);
}

static int set_rows(struct store_txn *txn, uint64_t n)
{
    uint8_t raw[8];

    if (n == 0) {
        int rv = store_del(txn, STORE_META, COUNT_KEY, strlen(COUNT_KEY));
        return rv == FLIP_NOTFOUND ? FLIP_OK : rv;
    }
    buf_put_u64be(raw, n);
    return store_put(txn, STORE_META, COUNT_KEY, strlen(COUNT_KEY), raw, 8);
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
        return FLIP_CORRUPT;
    }
    out->status = (enum fsm_status)v[8];
    out->revision = buf_get_u64be(v + 9);
    out->duplicate = 1;
    return FLIP_OK;
}

int dedup_record(struct store_txn *txn,
                 const struct dedup_id *id,
                 int64_t time_ms,
                 const struct fsm_outcome *o)
{
    uint8_t k[ROW_KEY];
    uint8_t a[AGE_KEY];
    uint8_t v[ROW_VAL];
    uint8_t empty = 0;
    int rv;

    row_key(k, id);
    age_key(a, age_of(time_ms), id);
    buf_put_u64be(v, age_of(time_ms));
    v[8] = (uint8_t)o->status;
    buf_put_u64be(v + 9, o->revision);
    rv = store_put(txn, STORE_META, k, sizeof k, v, sizeof v);
    if (rv == FLIP_OK) {
        rv = store_put(txn, STORE_META, a, sizeof a, &empty, 1);
    }
    if (rv == FLIP_OK) {
        rv = set_rows(txn, dedup_rows(txn) + 1);
    }
    return rv;
}

int dedup_expire(struct store_txn *txn,
                 int64_t now_ms,
                 uint64_t window_ms,
                 size_t max_ops)
{
    uint64_t rows = dedup_rows(txn);
    uint64_t now = age_of(now_ms);
    uint64_t start = rows;
    int rv = FLIP_OK;

    for (size_t i = 0; i < max_ops && rows > 0; i++) {
        const uint8_t *key = NULL;
        const void *val = NULL;
        size_t klen = 0;
        size_t vlen = 0;
        struct dedup_id id;
        uint8_t rk[ROW_KEY];
        uint8_t ak[AGE_KEY];
        uint64_t age;

        rv = store_txn_first(txn, STORE_META, AGE_PREFIX, PREFIX_LEN,
                             (const void **)&key, &klen, &val, &vlen);
        if (rv == FLIP_NOTFOUND) {
            rv = FLIP_OK;
            break;
        }
        if (rv != FLIP_OK) {
            break;
        }
        if (klen != AGE_KEY) {
            rv = FLIP_CORRUPT;
            break;
        }
        age = buf_get_u64be(key + PREFIX_LEN);
        if (rows <= DEDUP_MAX_ROWS && age + window_ms >= now) {
            break; /* the oldest row is young enough: so are the rest */
        }
        memcpy(ak, key, AGE_KEY);
        memcpy(id.client, key + PREFIX_LEN + 8, DEDUP_CLIENT_LEN);
        id.seq = buf_get_u64be(key + PREFIX_LEN + 8 + DEDUP_CLIENT_LEN);
        row_key(rk, &id);
        rv = store_del(txn, STORE_META, ak, sizeof ak);
        if (rv == FLIP_OK) {
            rv = store_del(txn, STORE_META, rk, sizeof rk);
        }
        if (rv != FLIP_OK) {
            break;
        }
        rows--;
    }
    if (rv == FLIP_OK && rows != start) {
        rv = set_rows(txn, rows);
    }
    return rv;
}
