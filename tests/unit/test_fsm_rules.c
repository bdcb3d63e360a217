/* The FSM's write rules over the real store under libraft's fixture:
 * exactly-once request ids, a store size budget, fixed value types, and
 * apply staying total (no abort) on whatever an entry carries. Every
 * test ends with the replicas byte-identical. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "lib/err.h"
#include "raft/dedup.h"
#include "storage/store.h"

/* Outcomes seen by server 0's observer, per applied index. */
#define SEEN_MAX 512
struct seen
{
    uint64_t index[SEEN_MAX];
    struct fsm_outcome out[SEEN_MAX];
    size_t n;
};

static struct seen seen;

static void observe(void *data,
                    uint64_t index,
                    const Flipcmd__Command *cmd,
                    const struct fsm_outcome *outcomes)
{
    (void)data;
    if (cmd == NULL || cmd->n_changes == 0 || seen.n == SEEN_MAX) {
        return;
    }
    seen.index[seen.n] = index;
    seen.out[seen.n] = outcomes[0];
    seen.n++;
}

/* Outcome of the one change of the entry at `index` (as server 0 saw). */
static struct fsm_outcome outcome_at(uint64_t index)
{
    struct fsm_outcome none = { .status = FSM_INVALID };

    for (size_t i = 0; i < seen.n; i++) {
        if (seen.index[i] == index) {
            return seen.out[i];
        }
    }
    CHECK(0);
    return none;
}

static void start(struct cluster *c)
{
    memset(&seen, 0, sizeof seen);
    cluster_start(c, 3);
    c->fsms[0].observer.on_applied = observe;
    cluster_elect(c, 0);
}

static void check_identical(struct cluster *c)
{
    for (unsigned i = 1; i < c->n; i++) {
        CHECK(store_hash(c->stores[i]) == store_hash(c->stores[0]));
        CHECK_EQ_INT(store_bytes(c->stores[i]), store_bytes(c->stores[0]));
    }
}

struct write
{
    Flipcmd__Command cmd;
    Flipcmd__Change ch;
    Flipcmd__Change *chs[1];
    Flip__Value v;
    Flip__RequestId rid;
    uint8_t client[16];
};

/* A one-change entry: SET key (a string value unless changed after) or
 * DELETE when value is NULL; leader time `t`. */
static void write_init(struct write *w,
                       const char *key,
                       const char *value,
                       int64_t t)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;

    memset(w, 0, sizeof *w);
    w->cmd = cmd;
    w->ch = ch;
    flip__value__init(&w->v);
    w->chs[0] = &w->ch;
    w->cmd.has_time_ms = 1;
    w->cmd.time_ms = t;
    w->cmd.has_changelog_keep = 1;
    w->cmd.changelog_keep = 1000;
    w->cmd.n_changes = 1;
    w->cmd.changes = w->chs;
    w->ch.has_op = 1;
    w->ch.key = (char *)key;
    w->ch.actor = (char *)"test";
    if (value != NULL) {
        w->ch.op = FLIPCMD__OP__SET;
        w->ch.value = &w->v;
        w->v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
        w->v.string_value = (char *)value;
    } else {
        w->ch.op = FLIPCMD__OP__DELETE;
    }
}

static void write_id(struct write *w, uint8_t client, uint64_t seq)
{
    flip__request_id__init(&w->rid);
    memset(w->client, client, sizeof w->client);
    w->rid.has_client_id = 1;
    w->rid.client_id.data = w->client;
    w->rid.client_id.len = sizeof w->client;
    w->rid.has_seq = 1;
    w->rid.seq = seq;
    w->ch.request_id = &w->rid;
}

static uint64_t apply(struct cluster *c, struct write *w)
{
    uint64_t index = cluster_apply(c, &w->cmd);

    CHECK(index != 0);
    CHECK(cluster_wait_applied(c, index, 10000));
    return index;
}

static uint64_t dedup_count(struct store *s)
{
    struct store_txn *t = NULL;
    uint64_t n;

    CHECK_EQ_INT(store_begin(s, &t), FLIP_OK);
    n = dedup_rows(t);
    store_abort(t);
    return n;
}

/* A write resent with its request id is applied once: the resend gets the
 * first outcome, adds no change row and leaves the flag as it was. */
TEST(fsm_request_id_applies_once, 30)
{
    struct cluster c;
    struct write w;
    struct fsm_outcome o;
    uint64_t first;
    uint64_t again;

    start(&c);
    write_init(&w, "pay.kill", "on", 1000);
    write_id(&w, 0xab, 1);
    first = apply(&c, &w);
    o = outcome_at(first);
    CHECK(o.status == FSM_OK && o.revision == first && !o.duplicate);
    again = apply(&c, &w);
    o = outcome_at(again);
    CHECK(o.status == FSM_OK && o.revision == first && o.duplicate);
    CHECK_EQ_INT(store_count(c.stores[0], STORE_CHANGES), 1);
    CHECK_EQ_INT(dedup_count(c.stores[1]), 1);
    /* the same sequence number from another client is its own write */
    write_id(&w, 0xcd, 1);
    again = apply(&c, &w);
    o = outcome_at(again);
    CHECK(o.status == FSM_OK && o.revision == again && !o.duplicate);
    check_identical(&c);
    cluster_stop(&c);
}

/* A compare-and-set that applied is not told CONFLICT when resent, and a
 * delete that applied is not told NOT_FOUND (H1's wrong answers). */
TEST(fsm_request_id_resent_cas_and_delete, 30)
{
    struct cluster c;
    struct write w;
    struct fsm_outcome o;
    uint64_t first;
    uint64_t idx;

    start(&c);
    write_init(&w, "pay.kill", "on", 1000);
    w.ch.has_expected_revision = 1;
    w.ch.expected_revision = 0;
    write_id(&w, 1, 7);
    first = apply(&c, &w);
    idx = apply(&c, &w);
    o = outcome_at(idx);
    CHECK(o.status == FSM_OK && o.revision == first);
    write_init(&w, "pay.kill", NULL, 1001);
    write_id(&w, 1, 8);
    first = apply(&c, &w);
    CHECK(outcome_at(first).status == FSM_OK);
    idx = apply(&c, &w);
    o = outcome_at(idx);
    CHECK(o.status == FSM_OK && o.revision == first && o.duplicate);
    check_identical(&c);
    cluster_stop(&c);
}

/* Rows leave the table once older than the entry-stamped window (then a
 * resend is a new write, as documented), and a malformed id is refused. */
TEST(fsm_request_id_window_and_validation, 30)
{
    struct cluster c;
    struct write w;
    struct write other;
    uint64_t idx;

    start(&c);
    write_init(&w, "a.b", "1", 1000);
    w.cmd.has_dedup_window_ms = 1;
    w.cmd.dedup_window_ms = 500;
    write_id(&w, 3, 1);
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    CHECK_EQ_INT(dedup_count(c.stores[0]), 1);
    write_init(&other, "c.d", "1", 1400); /* inside the window */
    other.cmd.has_dedup_window_ms = 1;
    other.cmd.dedup_window_ms = 500;
    apply(&c, &other);
    CHECK_EQ_INT(dedup_count(c.stores[0]), 1);
    other.cmd.time_ms = 1600; /* past it */
    apply(&c, &other);
    CHECK_EQ_INT(dedup_count(c.stores[0]), 0);
    CHECK_EQ_INT(dedup_count(c.stores[2]), 0);
    /* a 15-byte client id or seq 0: the change is refused, not applied */
    write_init(&w, "e.f", "1", 1700);
    write_id(&w, 4, 1);
    w.rid.client_id.len = 15;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_INVALID);
    write_id(&w, 4, 0);
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_INVALID);
    CHECK_EQ_INT(store_count(c.stores[0], STORE_FLAGS), 2);
    check_identical(&c);
    cluster_stop(&c);
}

/* An entry whose value carries 70 KB of unknown fields (F1: it aborted
 * every replica, for ever) is applied without them: apply never aborts,
 * and the stored record holds only the validated members. */
TEST(fsm_unknown_value_fields_never_stored, 30)
{
    struct cluster c;
    struct write w;
    ProtobufCMessageUnknownField junk;
    static uint8_t bytes[70000];
    uint64_t idx;

    start(&c);
    write_init(&w, "poison.flag", "x", 1000);
    w.v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    w.v.bool_value = 1;
    /* protobuf-c keeps a length-delimited unknown field with its length
     * prefix: varint(69997) then the bytes */
    memset(bytes, 'j', sizeof bytes);
    bytes[0] = (uint8_t)(0x80 | (69997 & 0x7f));
    bytes[1] = (uint8_t)(0x80 | ((69997 >> 7) & 0x7f));
    bytes[2] = (uint8_t)(69997 >> 14);
    junk.tag = 100;
    junk.wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    junk.len = sizeof bytes;
    junk.data = bytes;
    w.v.base.n_unknown_fields = 1;
    w.v.base.unknown_fields = &junk;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    CHECK(store_bytes(c.stores[0]) < 200);
    check_identical(&c);
    cluster_stop(&c);
}

/* A store at its budget drops the oldest change-log rows first, then
 * refuses a set with STORE_FULL, the same on every replica; deletes still
 * work and make room again. */
TEST(fsm_store_budget, 60)
{
    struct cluster c;
    struct write w;
    static char big[8000];
    char key[32];
    uint64_t idx = 0;
    int full_at = -1;

    start(&c);
    memset(big, 'v', sizeof big - 1);
    for (int i = 0; i < 40 && full_at < 0; i++) {
        snprintf(key, sizeof key, "big.%d", i);
        write_init(&w, key, big, 1000 + i);
        w.cmd.has_max_store_bytes = 1;
        w.cmd.max_store_bytes = 100000;
        idx = apply(&c, &w);
        if (outcome_at(idx).status == FSM_STORE_FULL) {
            full_at = i;
        } else {
            CHECK(outcome_at(idx).status == FSM_OK);
        }
        CHECK(store_bytes(c.stores[0]) <= 100000);
    }
    CHECK(full_at > 6); /* history went first: ~12 flags fit, not ~6 */
    CHECK(store_compacted(c.stores[0]) > 0);
    CHECK(store_count(c.stores[1], STORE_FLAGS) == (uint64_t)full_at);
    /* replacing a flag by a value no larger still works when full: a kill
     * switch can always be flipped */
    write_init(&w, "big.3", big, 1999);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 100000;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    write_init(&w, "big.0", NULL, 2000);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 100000;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    snprintf(key, sizeof key, "big.%d", full_at);
    write_init(&w, key, big, 2001);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 100000;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    check_identical(&c);
    cluster_stop(&c);
}

/* A store over its budget (an operator lowered --max-store-bytes below the
 * live state) still flips an existing switch: a set that does not grow the
 * live state goes through even when not even its change row fits, and one
 * that grows it is refused STORE_FULL. */
TEST(fsm_store_over_budget_still_flips, 30)
{
    struct cluster c;
    struct write w;
    char key[32];
    uint64_t idx;

    start(&c);
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k.%d", i);
        write_init(&w, key, "on", 1000 + i);
        idx = apply(&c, &w);
        CHECK(outcome_at(idx).status == FSM_OK);
    }
    write_init(&w, "k.1", "no", 2000);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 1;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    write_init(&w, "k.new", "on", 2001);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 1;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_STORE_FULL);
    check_identical(&c);
    cluster_stop(&c);
}

/* A flag's value type is fixed unless the change says change_type; an
 * entry from before the rule (no change_type at all) is not checked. */
TEST(fsm_type_is_fixed, 30)
{
    struct cluster c;
    struct write w;
    uint64_t created;
    uint64_t idx;
    struct fsm_outcome o;

    start(&c);
    write_init(&w, "pay.kill", "x", 1000);
    w.v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    w.v.bool_value = 1;
    w.ch.has_change_type = 1;
    created = apply(&c, &w);
    write_init(&w, "pay.kill", "TRUE", 1001);
    w.ch.has_change_type = 1;
    idx = apply(&c, &w);
    o = outcome_at(idx);
    CHECK(o.status == FSM_TYPE_MISMATCH && o.revision == created);
    w.ch.change_type = 1;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    w.v.kind_case = FLIP__VALUE__KIND_INT_VALUE;
    w.v.int_value = 3;
    w.ch.has_change_type = 0;
    w.ch.change_type = 0;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    check_identical(&c);
    cluster_stop(&c);
}

/* A set refused for size costs nothing: the change log it could not have
 * made room in anyway is left as it was (subscribers behind keep their
 * resume point). */
TEST(fsm_refused_set_keeps_history, 30)
{
    struct cluster c;
    struct write w;
    static char mid[3000];
    static char big[40000];
    char key[32];
    uint64_t rows;
    uint64_t compacted;
    uint64_t idx;

    start(&c);
    memset(mid, 'm', sizeof mid - 1);
    memset(big, 'b', sizeof big - 1);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "mid.%d", i);
        write_init(&w, key, mid, 1000 + i);
        w.cmd.has_max_store_bytes = 1;
        w.cmd.max_store_bytes = 100000;
        idx = apply(&c, &w);
        CHECK(outcome_at(idx).status == FSM_OK);
    }
    rows = store_count(c.stores[0], STORE_CHANGES);
    compacted = store_compacted(c.stores[0]);
    CHECK(rows > 0);
    write_init(&w, "big.one", big, 2000);
    w.cmd.has_max_store_bytes = 1;
    w.cmd.max_store_bytes = 100000;
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_STORE_FULL);
    CHECK_EQ_INT(store_count(c.stores[0], STORE_CHANGES), rows);
    CHECK_EQ_INT(store_compacted(c.stores[0]), compacted);
    check_identical(&c);
    cluster_stop(&c);
}

/* A request id reused for another change (two processes sharing one after
 * a fork, a client bug) is refused, never answered with the first
 * change's outcome; the first change is untouched. */
TEST(fsm_request_id_reused_for_other_content, 30)
{
    struct cluster c;
    struct write w;
    uint64_t first;
    uint64_t idx;

    start(&c);
    write_init(&w, "a.one", "1", 1000);
    write_id(&w, 9, 1);
    first = apply(&c, &w);
    CHECK(outcome_at(first).status == FSM_OK);
    write_init(&w, "a.two", "2", 1001);
    write_id(&w, 9, 1);
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_INVALID);
    CHECK(!outcome_at(idx).duplicate);
    CHECK_EQ_INT(store_count(c.stores[0], STORE_FLAGS), 1);
    /* the same content again is still a resend */
    write_init(&w, "a.one", "1", 1002);
    write_id(&w, 9, 1);
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).duplicate && outcome_at(idx).revision == first);
    check_identical(&c);
    cluster_stop(&c);
}

/* A leader whose clock is behind does not make new rows look old: the
 * table keeps time by the highest stamp seen, so rows written under the
 * slow clock stay for the whole window after it. */
TEST(fsm_request_id_clock_never_goes_back, 30)
{
    struct cluster c;
    struct write w;
    struct write other;
    uint64_t idx;

    start(&c);
    write_init(&other, "x.y", "1", 100000);
    other.cmd.has_dedup_window_ms = 1;
    other.cmd.dedup_window_ms = 500;
    apply(&c, &other);
    write_init(&w, "a.b", "1", 1000); /* a leader 99 s behind */
    w.cmd.has_dedup_window_ms = 1;
    w.cmd.dedup_window_ms = 500;
    write_id(&w, 5, 1);
    idx = apply(&c, &w);
    CHECK(outcome_at(idx).status == FSM_OK);
    other.cmd.time_ms = 100400; /* inside the window of the table's clock */
    apply(&c, &other);
    CHECK_EQ_INT(dedup_count(c.stores[0]), 1);
    idx = apply(&c, &w); /* the resend is still recognised */
    CHECK(outcome_at(idx).duplicate);
    check_identical(&c);
    cluster_stop(&c);
}
