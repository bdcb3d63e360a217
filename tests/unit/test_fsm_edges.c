/* The FSM's refusals and the deduplication table's edges under libraft's
 * fixture: what an entry or the store can hold that apply must answer
 * alike on every replica (invalid changes, an entry that does not decode,
 * a stored record that does not decode, more changes than an entry may
 * carry, malformed or drifted dedup rows, every value kind in the
 * request digest). Every test ends with the replicas byte-identical. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "raft/dedup.h"
#include "storage/identity.h"
#include "storage/store.h"

#define T0     1700000000000
#define DAY_MS (24 * 3600 * 1000)

static void check_identical(struct cluster *c)
{
    for (unsigned i = 1; i < c->n; i++) {
        CHECK(store_hash(c->stores[i]) == store_hash(c->stores[0]));
        CHECK_EQ_INT(store_bytes(c->stores[i]), store_bytes(c->stores[0]));
        CHECK_EQ_INT(store_applied_index(c->stores[i]),
                     store_applied_index(c->stores[0]));
    }
}

static void start(struct cluster *c)
{
    cluster_start(c, 3);
    cluster_elect(c, 0);
}

static uint64_t wait_all(struct cluster *c, uint64_t index)
{
    CHECK(index != 0);
    CHECK(cluster_wait_applied(c, index, 10000));
    return index;
}

/* The same row written into every server's store (as if every replica
 * had it: they hold the same state). */
static void plant(struct cluster *c,
                  enum store_db db,
                  const void *key,
                  size_t klen,
                  const void *val,
                  size_t vlen)
{
    for (unsigned s = 0; s < c->n; s++) {
        struct store_txn *t = NULL;
        CHECK_EQ_INT(store_begin(c->stores[s], &t), FLIP_OK);
        CHECK_EQ_INT(store_put(t, db, key, klen, val, vlen), FLIP_OK);
        CHECK_EQ_INT(store_commit(t), FLIP_OK);
    }
}

/* The dedup table's row count as stored ("dedup_rows", raft/dedup.h). */
static int count_visit(void *arg,
                       const void *key,
                       size_t klen,
                       const void *val,
                       size_t vlen)
{
    const uint8_t *p = val;
    uint64_t *n = arg;
    (void)key;
    (void)klen;
    CHECK_EQ_INT(vlen, 8);
    for (size_t i = 0; i < 8; i++) {
        *n = *n << 8 | p[i];
    }
    return 1;
}

static uint64_t stored_rows(struct store *s)
{
    uint64_t n = 0;

    (void)store_get(s, STORE_META, "dedup_rows", 10, count_visit, &n);
    return n;
}

/* One change, applied everywhere; its raft index. */
static uint64_t write1(struct cluster *c,
                       const struct cluster_change *ch,
                       int64_t time_ms)
{
    struct cluster_entry e = { .changes = ch, .n = 1, .time_ms = time_ms };

    return wait_all(c, cluster_write(c, &e));
}

/* Changes no replica may apply (no op, an unknown op, a bad key, a set
 * without a value, an over-long actor or reason, a request id without a
 * client id or without a sequence number) are refused as invalid,
 * each on its own, beside a valid change of the same entry; an entry that
 * does not decode at all is recorded as a no-op. The counters agree. */
TEST(fsm_edge_invalid_changes, 30)
{
    struct cluster c;
    char actor[CODEC_ACTOR_MAX + 2];
    char reason[CODEC_REASON_MAX + 2];
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch[9];
    Flipcmd__Change *chs[9];
    Flip__Value v = FLIP__VALUE__INIT;
    Flip__Value none = FLIP__VALUE__INIT;
    const char *keys[9] = { "e.noop",     "e.badop", "e bad key",
                            "e.noval",    "e.actor", "e.reason",
                            "e.noclient", "e.noseq", "e.ok" };
    Flip__RequestId no_client = FLIP__REQUEST_ID__INIT;
    Flip__RequestId no_seq = FLIP__REQUEST_ID__INIT;
    uint8_t client[16] = { 0 };
    uint8_t junk[16];
    uint64_t i;

    memset(actor, 'a', sizeof actor - 1);
    actor[sizeof actor - 1] = '\0';
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    v.bool_value = 1;
    for (int k = 0; k < 9; k++) {
        flipcmd__change__init(&ch[k]);
        chs[k] = &ch[k];
        ch[k].has_op = 1;
        ch[k].op = FLIPCMD__OP__SET;
        ch[k].key = (char *)keys[k];
        ch[k].actor = "test";
        ch[k].value = &v;
    }
    ch[0].has_op = 0;
    ch[1].op = (Flipcmd__Op)7;
    ch[3].value = &none;
    ch[4].actor = actor;
    ch[5].reason = reason;
    no_client.has_seq = 1;
    no_client.seq = 1;
    no_seq.has_client_id = 1;
    no_seq.client_id.data = client;
    no_seq.client_id.len = sizeof client;
    ch[6].request_id = &no_client;
    ch[7].request_id = &no_seq;
    cmd.n_changes = 9;
    cmd.changes = chs;

    start(&c);
    i = wait_all(&c, cluster_apply(&c, &cmd));
    for (size_t k = 0; k < 8; k++) {
        cluster_check_outcome(&c, i, k, FSM_INVALID, 0);
    }
    cluster_check_outcome(&c, i, 8, FSM_OK, i);
    CHECK_EQ_INT(store_count(c.stores[1], STORE_FLAGS), 1);
    memset(junk, 0xee, sizeof junk);
    i = wait_all(&c, cluster_propose_raw(&c, junk, sizeof junk));
    for (unsigned s = 0; s < 3; s++) {
        CHECK_EQ_INT(c.fsms[s].n_rejected, 8);
        CHECK_EQ_INT(c.fsms[s].n_invalid, 1);
        CHECK_EQ_INT(store_applied_index(c.stores[s]), i);
    }
    check_identical(&c);
    cluster_stop(&c);
}

/* A stored record that does not decode (written by a broken flipd, or a
 * bit flip every replica shares) is never overwritten or deleted on a
 * guess: a set or a delete of its key is refused as invalid, everywhere
 * alike, and the row stays as it is. */
TEST(fsm_edge_stored_record_does_not_decode, 30)
{
    struct cluster c;
    struct cluster_change set = { .key = "bad.k", .value = "v" };
    struct cluster_change del = { .key = "bad.k" };
    const uint8_t garbage[5] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    uint64_t i;

    start(&c);
    plant(&c, STORE_FLAGS, "bad.k", 5, garbage, sizeof garbage);
    i = write1(&c, &set, 0);
    cluster_check_outcome(&c, i, 0, FSM_INVALID, 0);
    i = write1(&c, &del, 0);
    cluster_check_outcome(&c, i, 0, FSM_INVALID, 0);
    CHECK(store_has(c.stores[2], STORE_FLAGS, "bad.k", 5));
    CHECK_EQ_INT(store_count(c.stores[0], STORE_CHANGES), 0);
    check_identical(&c);
    cluster_stop(&c);
}

/* An entry applies at most FSM_MAX_CHANGES changes; the rest are not
 * applied anywhere. */
TEST(fsm_edge_max_changes, 60)
{
    struct cluster c;
    enum
    {
        N = FSM_MAX_CHANGES + 3
    };
    static Flipcmd__Change ch[N];
    static Flipcmd__Change *chs[N];
    static char keys[N][16];
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flip__Value v = FLIP__VALUE__INIT;
    uint64_t i;

    v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    v.int_value = 1;
    for (int k = 0; k < N; k++) {
        snprintf(keys[k], sizeof keys[k], "cap.%04d", k);
        flipcmd__change__init(&ch[k]);
        chs[k] = &ch[k];
        ch[k].has_op = 1;
        ch[k].op = FLIPCMD__OP__SET;
        ch[k].key = keys[k];
        ch[k].actor = "test";
        ch[k].value = &v;
    }
    cmd.n_changes = N;
    cmd.changes = chs;
    start(&c);
    i = wait_all(&c, cluster_apply(&c, &cmd));
    for (unsigned s = 0; s < 3; s++) {
        CHECK_EQ_INT(store_count(c.stores[s], STORE_FLAGS), FSM_MAX_CHANGES);
        CHECK(store_has(c.stores[s], STORE_FLAGS, keys[FSM_MAX_CHANGES - 1],
                        strlen(keys[FSM_MAX_CHANGES - 1])));
        CHECK(!store_has(c.stores[s], STORE_FLAGS, keys[FSM_MAX_CHANGES],
                         strlen(keys[FSM_MAX_CHANGES])));
        CHECK_EQ_INT(store_applied_index(c.stores[s]), i);
    }
    check_identical(&c);
    cluster_stop(&c);
}

/* Dedup rows no flipd writes (a request row of another size, an age row
 * of another key length) and a row count that drifted from the rows:
 * the malformed request row reads as absent (the write applies, and its
 * row is written anew), the odd age row is deleted when the table
 * expires, and a count with no rows behind it goes back to 0. */
TEST(fsm_edge_dedup_malformed_rows, 30)
{
    struct cluster c;
    struct cluster_change a = { .key = "dd.a", .value = "1", .request_seq = 9 };
    struct cluster_change b = { .key = "dd.b",
                                .value = "1",
                                .request_seq = 10 };
    struct cluster_change plain = { .key = "dd.c", .value = "1" };
    uint8_t rq[3 + 16 + 8];
    const uint8_t short_row[4] = { 1, 2, 3, 4 };
    const uint8_t odd_age[4] = { 'r', 't', '/', 0 };
    const uint8_t five[8] = { 0, 0, 0, 0, 0, 0, 0, 5 };
    struct fsm_outcome out;
    uint64_t i;

    start(&c);
    memcpy(rq, "rq/", 3);
    memset(rq + 3, 0x5a, 16); /* cluster_write's client id */
    memset(rq + 19, 0, 8);
    rq[26] = 9; /* seq 9 */
    plant(&c, STORE_META, rq, sizeof rq, short_row, sizeof short_row);
    i = write1(&c, &a, T0);
    out = cluster_outcome(&c, 1, i, 0);
    CHECK(out.status == FSM_OK && !out.duplicate && out.revision == i);
    i = write1(&c, &a, T0); /* now a real duplicate */
    out = cluster_outcome(&c, 2, i, 0);
    CHECK(out.status == FSM_OK && out.duplicate);
    CHECK_EQ_INT(stored_rows(c.stores[0]), 1);

    /* an age row sorting first, of the wrong length; then a write far past
     * the window: the odd row goes, and so does dd.a's */
    plant(&c, STORE_META, odd_age, sizeof odd_age, "", 1);
    write1(&c, &b, T0 + DAY_MS);
    for (unsigned s = 0; s < 3; s++) {
        CHECK(!store_has(c.stores[s], STORE_META, odd_age, sizeof odd_age));
        CHECK_EQ_INT(stored_rows(c.stores[s]), 1); /* dd.b's own */
    }

    /* an old age row whose request row is gone: expired all the same; a
     * malformed clock row reads as 0 and is written anew */
    {
        uint8_t age[3 + 8 + 16 + 8];
        memcpy(age, "rt/", 3);
        memset(age + 3, 0, 8);
        age[10] = 1; /* time 1 */
        memset(age + 11, 0x77, 16);
        memset(age + 27, 0, 8);
        age[34] = 1;
        plant(&c, STORE_META, age, sizeof age, "", 1);
        plant(&c, STORE_META, "dedup_clock", 11, "bad", 3);
        write1(&c, &b, T0 + DAY_MS + 1); /* a duplicate of dd.b's id */
        for (unsigned s = 0; s < 3; s++) {
            CHECK(!store_has(c.stores[s], STORE_META, age, sizeof age));
        }
    }

    /* a count of 5 with one row behind it, then past the window again */
    plant(&c, STORE_META, "dedup_rows", 10, five, sizeof five);
    i = write1(&c, &plain, T0 + 2 * DAY_MS);
    for (unsigned s = 0; s < 3; s++) {
        CHECK_EQ_INT(stored_rows(c.stores[s]), 0);
        CHECK(!store_has(c.stores[s], STORE_META, "dedup_rows", 10));
    }
    CHECK_EQ_INT(store_applied_index(c.stores[0]), i);
    check_identical(&c);
    cluster_stop(&c);
}

/* The request digest covers every value kind: a resend with the same
 * value is a duplicate, one with another value under the same id is
 * refused as a reused id, for bool, int, double, JSON and string. */
TEST(fsm_edge_dedup_digest_every_kind, 30)
{
    struct cluster c;
    Flip__Value v[5][2];
    uint64_t i;

    for (int k = 0; k < 5; k++) {
        flip__value__init(&v[k][0]);
        flip__value__init(&v[k][1]);
    }
    v[0][0].kind_case = v[0][1].kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    v[0][0].bool_value = 1;
    v[1][0].kind_case = v[1][1].kind_case = FLIP__VALUE__KIND_INT_VALUE;
    v[1][0].int_value = 42;
    v[1][1].int_value = 43;
    v[2][0].kind_case = v[2][1].kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
    v[2][0].double_value = 0.25;
    v[2][1].double_value = 0.5;
    v[3][0].kind_case = v[3][1].kind_case = FLIP__VALUE__KIND_JSON_VALUE;
    v[3][0].json_value = "{\"a\":1}";
    v[3][1].json_value = "{\"a\":2}";
    v[4][0].kind_case = v[4][1].kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v[4][0].string_value = "s";
    v[4][1].string_value = "t";
    start(&c);
    for (int k = 0; k < 5; k++) {
        char key[16];
        struct cluster_change ch = { .key = key,
                                     .v = &v[k][0],
                                     .request_seq = (uint64_t)k + 1 };

        snprintf(key, sizeof key, "dg.%d", k);
        i = write1(&c, &ch, T0 + k);
        cluster_check_outcome(&c, i, 0, FSM_OK, i);
        i = write1(&c, &ch, T0 + k);
        CHECK(cluster_outcome(&c, 0, i, 0).duplicate);
        ch.v = &v[k][1];
        i = write1(&c, &ch, T0 + k);
        cluster_check_outcome(&c, i, 0, FSM_INVALID, 0);
    }
    CHECK_EQ_INT(store_count(c.stores[0], STORE_FLAGS), 5);
    check_identical(&c);
    cluster_stop(&c);
}

/* The cluster identity an entry carries: the first well-formed id is
 * stored and never replaced, malformed ones (not 32 lowercase hex digits)
 * are ignored, each joined member is recorded; a stored id of the wrong
 * length reads as none. Alike on every server. */
TEST(fsm_edge_cluster_identity, 30)
{
    struct cluster c;
    struct cluster_change ch = { .key = "id.k", .value = "v" };
    const char *ids[5] = { "0123456789ABCDEF0123456789abcdef",   /* upper */
                           "0123456789abcdef",                   /* short */
                           "0123456789abcdef0123456789abcdefff", /* long */
                           "0123456789abcdef0123456789abcdef",
                           "fedcba9876543210fedcba9876543210" };
    char got[IDENTITY_ID_LEN + 1];

    start(&c);
    CHECK_EQ_INT(identity_get(c.stores[0], got), FLIP_NOTFOUND);
    for (int k = 0; k < 5; k++) {
        struct cluster_entry e = { .changes = &ch,
                                   .n = 1,
                                   .cluster_id = ids[k],
                                   .joined_member = k == 3 ? 7 : 0 };
        wait_all(&c, cluster_write(&c, &e));
        for (unsigned s = 0; s < 3; s++) {
            CHECK_EQ_INT(identity_get(c.stores[s], got),
                         k < 3 ? FLIP_NOTFOUND : FLIP_OK);
            if (k >= 3) {
                CHECK(strcmp(got, ids[3]) == 0);
            }
        }
    }
    CHECK(!identity_valid(NULL));
    for (unsigned s = 0; s < 3; s++) {
        CHECK(identity_joined(c.stores[s], 7));
        CHECK(!identity_joined(c.stores[s], 4));
    }
    check_identical(&c);
    plant(&c, STORE_META, "cluster_id", 10, "abc", 3);
    CHECK_EQ_INT(identity_get(c.stores[1], got), FLIP_NOTFOUND);
    CHECK_EQ_INT(got[0], '\0');
    cluster_stop(&c);
}

/* A record at the bounds of a valid change (a 64 KiB value, a 256-byte
 * key, a 1 KiB reason) is applied, not refused: fsm.c's FSM_RECORD_MAX
 * holds it by construction. One byte more of value is refused as
 * invalid. */
TEST(fsm_edge_largest_record, 30)
{
    struct cluster c;
    static char value[CODEC_VALUE_MAX + 2];
    static char key[CODEC_KEY_MAX + 1];
    static char reason[CODEC_REASON_MAX + 1];
    struct cluster_change ch = { .key = key, .value = value, .reason = reason };
    uint64_t i;

    memset(value, 'v', CODEC_VALUE_MAX);
    memset(key, 'k', CODEC_KEY_MAX);
    memset(reason, 'r', CODEC_REASON_MAX);
    start(&c);
    i = write1(&c, &ch, 0);
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    CHECK_EQ_INT(store_count(c.stores[2], STORE_FLAGS), 1);
    value[CODEC_VALUE_MAX] = 'v';
    i = write1(&c, &ch, 0);
    cluster_check_outcome(&c, i, 0, FSM_INVALID, 0);
    check_identical(&c);
    cluster_stop(&c);
}

/* Expiry is bounded per entry (n_changes + DEDUP_EXPIRE_SLACK rows), so a
 * write long after many others expires some of them now and the rest with
 * later entries. An entry without a leader time (every leader stamps one;
 * an older flipd's entry may not) still records its id, at time 0, and
 * expires nothing. */
TEST(fsm_edge_dedup_expiry_is_bounded, 60)
{
    struct cluster c;
    struct cluster_change ch = { .key = "ex.k", .value = "v" };
    const uint64_t n = 2 * DEDUP_EXPIRE_SLACK + 8;
    uint64_t i = 0;

    start(&c);
    for (uint64_t k = 1; k <= n; k++) {
        ch.request_seq = k;
        write1(&c, &ch, T0);
    }
    CHECK_EQ_INT(stored_rows(c.stores[0]), n);
    ch.request_seq = n + 1;
    write1(&c, &ch, T0 + DAY_MS); /* one change: 1 + slack expire */
    CHECK_EQ_INT(stored_rows(c.stores[1]), n + 1 - (1 + DEDUP_EXPIRE_SLACK));
    ch.request_seq = n + 2;
    i = write1(&c, &ch, -1);
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    CHECK_EQ_INT(stored_rows(c.stores[2]), n + 2 - (1 + DEDUP_EXPIRE_SLACK));
    check_identical(&c);
    cluster_stop(&c);
}

/* A stored record of an older flipd, without create_revision, counts its
 * revision as its creation: a set on it keeps that as create_revision.
 * One without a value (no flipd writes it) is replaced by a set. */
TEST(fsm_edge_record_without_create_revision, 30)
{
    struct cluster c;
    struct cluster_change ch = { .key = "old.k", .value = "new" };
    Flip__Flag rec = FLIP__FLAG__INIT;
    Flip__Value v = FLIP__VALUE__INIT;
    uint8_t packed[256];
    size_t len;
    uint64_t i;

    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = "old";
    rec.value = &v;
    rec.has_revision = 1;
    rec.revision = 1;
    len = flip__flag__pack(&rec, packed);
    start(&c);
    plant(&c, STORE_FLAGS, "old.k", 5, packed, len);
    i = write1(&c, &ch, 0);
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    CHECK_EQ_INT(cluster_outcome(&c, 0, i, 0).create_revision, 1);
    rec.value = NULL;
    len = flip__flag__pack(&rec, packed);
    plant(&c, STORE_FLAGS, "old.k", 5, packed, len);
    i = write1(&c, &ch, 0);
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    check_identical(&c);
    cluster_stop(&c);
}
