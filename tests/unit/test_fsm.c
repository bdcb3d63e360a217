/* The real FSM and LMDB store under libraft's deterministic fixture:
 * replication, leader loss, snapshot install to a lagging server, replay
 * skipping and compare-and-set, with every store ending byte-identical. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "lib/err.h"
#include "storage/flags.h"
#include "storage/store.h"

static void check_identical(struct cluster *c)
{
    uint64_t h0 = store_hash(c->stores[0]);
    for (unsigned i = 1; i < c->n; i++) {
        if (store_hash(c->stores[i]) != h0) {
            fprintf(stderr,
                    "  store %u differs from store 0 (applied %llu vs "
                    "%llu)\n",
                    i, (unsigned long long)store_applied_index(c->stores[i]),
                    (unsigned long long)store_applied_index(c->stores[0]));
            CHECK(0);
        }
    }
}

static uint64_t set_n(struct cluster *c, const char *prefix, int n)
{
    uint64_t last = 0;
    char key[32];
    char val[32];

    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s.%d", prefix, i % 17);
        snprintf(val, sizeof val, "v%d", i);
        last = cluster_set(c, key, val, 0, 0);
        CHECK(last != 0);
        raft_fixture_step_n(&c->f, 3);
    }
    return last;
}

/* Entries applied on the leader reach every server, identically. */
TEST(fsm_replicates_to_all, 30)
{
    struct cluster c;
    uint64_t last;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    last = set_n(&c, "rep", 200);
    CHECK(cluster_wait_applied(&c, last, 10000));
    check_identical(&c);
    CHECK_EQ_INT(store_count(c.stores[1], STORE_FLAGS), 17);
    CHECK_EQ_INT(store_applied_index(c.stores[2]), last);
    cluster_stop(&c);
}

/* After the leader dies a new one is elected, writes go on, and the old
 * leader catches up when it comes back. */
TEST(fsm_leader_kill_and_catch_up, 30)
{
    struct cluster c;
    uint64_t last;
    int leader;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    last = set_n(&c, "k", 50);
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_kill(&c.f, 0);
    CHECK(raft_fixture_step_until_has_no_leader(&c.f, 10000));
    CHECK(raft_fixture_step_until_has_leader(&c.f, 10000));
    leader = cluster_leader(&c);
    CHECK(leader == 1 || leader == 2);
    last = set_n(&c, "k", 50);
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_revive(&c.f, 0);
    CHECK(cluster_wait_applied(&c, last, 20000));
    check_identical(&c);
    cluster_stop(&c);
}

/* A server that missed entries the leader already compacted is caught up
 * by snapshot install and ends identical, change log included. */
TEST(fsm_snapshot_install, 30)
{
    struct cluster c;
    uint64_t last;

    cluster_start(&c, 3);
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 10);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 2);
    }
    cluster_elect(&c, 0);
    last = set_n(&c, "s", 5);
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_kill(&c.f, 2);
    last = set_n(&c, "s", 80);
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_revive(&c.f, 2);
    CHECK(cluster_wait_applied(&c, last, 30000));
    CHECK(c.fsms[2].n_restored >= 1);
    check_identical(&c);
    cluster_stop(&c);
}

/* Entries at or below the stored applied index are skipped (restart
 * replay), not applied twice. */
TEST(fsm_skips_replayed_entries, 30)
{
    struct cluster c;
    struct store_txn *t = NULL;
    uint64_t last;

    cluster_start(&c, 3);
    /* Pretend server 2 already applied up to index 6 before a restart. */
    CHECK_EQ_INT(store_begin(c.stores[2], &t), FLIP_OK);
    CHECK_EQ_INT(store_txn_set_applied(t, 6), FLIP_OK);
    CHECK_EQ_INT(store_commit(t), FLIP_OK);
    cluster_elect(&c, 0);
    last = set_n(&c, "r", 10);
    CHECK(cluster_wait_applied(&c, last, 10000));
    CHECK(c.fsms[2].n_skipped >= 1);
    CHECK_EQ_INT(c.fsms[2].n_skipped + c.fsms[2].n_applied,
                 c.fsms[0].n_applied);
    CHECK_EQ_INT(store_applied_index(c.stores[2]), last);
    cluster_stop(&c);
}

struct flag_rev
{
    uint64_t revision;
    char value[32];
};

static int rev_visit(void *arg,
                     const void *key,
                     size_t klen,
                     const void *val,
                     size_t vlen)
{
    struct flag_rev *fr = arg;
    Flip__Flag *f = NULL;
    (void)key;
    (void)klen;
    CHECK_EQ_INT(flags_decode(val, vlen, &f), FLIP_OK);
    fr->revision = f->revision;
    snprintf(fr->value, sizeof fr->value, "%s", f->value->string_value);
    flags_free(f);
    return 1;
}

/* Compare-and-set is decided in apply, identically on every server. */
TEST(fsm_compare_and_set, 30)
{
    struct cluster c;
    struct flag_rev fr;
    uint64_t i1;
    uint64_t i2;
    uint64_t i3;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    i1 = cluster_set(&c, "cas.k", "first", 1, 0); /* create if absent */
    CHECK(cluster_wait_applied(&c, i1, 10000));
    i2 = cluster_set(&c, "cas.k", "second", 1, 0); /* exists: conflict */
    CHECK(cluster_wait_applied(&c, i2, 10000));
    for (unsigned s = 0; s < 3; s++) {
        CHECK_EQ_INT(
            store_get(c.stores[s], STORE_FLAGS, "cas.k", 5, rev_visit, &fr),
            FLIP_OK);
        CHECK_EQ_INT(fr.revision, i1);
        CHECK(strcmp(fr.value, "first") == 0);
    }
    i3 = cluster_set(&c, "cas.k", "third", 1, i1); /* matches */
    CHECK(cluster_wait_applied(&c, i3, 10000));
    CHECK_EQ_INT(
        store_get(c.stores[1], STORE_FLAGS, "cas.k", 5, rev_visit, &fr),
        FLIP_OK);
    CHECK_EQ_INT(fr.revision, i3);
    CHECK(strcmp(fr.value, "third") == 0);
    check_identical(&c);
    cluster_stop(&c);
}

/* ---- reasons, deletes, multi-change entries, CAS edges ---------------------
 * Entries as the server proposes them (cluster_write): with a reason,
 * deletes, several changes in one entry, stale/future/zero expected
 * revisions. Every replica must apply them alike (byte-identical stores)
 * and answer the same outcome. */

struct flag_state
{
    int found;
    uint64_t revision;
    uint64_t create_revision;
    char value[32];
    char reason[64];
};

static int state_visit(void *arg,
                       const void *key,
                       size_t klen,
                       const void *val,
                       size_t vlen)
{
    struct flag_state *st = arg;
    Flip__Flag *f = NULL;
    (void)key;
    (void)klen;
    CHECK_EQ_INT(flags_decode(val, vlen, &f), FLIP_OK);
    st->found = 1;
    st->revision = f->revision;
    st->create_revision = f->create_revision;
    snprintf(st->value, sizeof st->value, "%s",
             f->value != NULL ? f->value->string_value : "");
    snprintf(st->reason, sizeof st->reason, "%s",
             f->reason != NULL ? f->reason : "");
    flags_free(f);
    return 1;
}

static struct flag_state flag_on(struct cluster *c, unsigned s, const char *k)
{
    struct flag_state st;
    int rv;

    memset(&st, 0, sizeof st);
    rv = store_get(c->stores[s], STORE_FLAGS, k, strlen(k), state_visit, &st);
    CHECK(rv == FLIP_OK || rv == FLIP_NOTFOUND);
    return st;
}

/* Writes entry `e`, waits until every server applied it; its index. */
static uint64_t write_all(struct cluster *c,
                          const struct cluster_change *chs,
                          size_t n)
{
    struct cluster_entry e = { .changes = chs, .n = n };
    uint64_t i = cluster_write(c, &e);

    CHECK(i != 0);
    CHECK(cluster_wait_applied(c, i, 10000));
    return i;
}

static void check_flag(struct cluster *c,
                       const char *key,
                       const char *value,
                       uint64_t revision)
{
    for (unsigned s = 0; s < c->n; s++) {
        struct flag_state st = flag_on(c, s, key);
        if (value == NULL) {
            CHECK(!st.found);
            continue;
        }
        CHECK(st.found);
        CHECK(strcmp(st.value, value) == 0);
        CHECK_EQ_INT(st.revision, revision);
    }
}

/* A CAS whose expected revision is stale, in the future, or 0 for an
 * existing flag is a conflict on every server, answered with the current
 * revision, and writes nothing; the matching one applies. Deletes too. */
TEST(fsm_cas_stale_future_zero, 30)
{
    struct cluster c;
    uint64_t i1;
    uint64_t i2;
    uint64_t i;
    struct cluster_change ch = { .key = "cas.k", .value = "v1", .cas = 1 };

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    i1 = write_all(&c, &ch, 1); /* expected 0: absent, created */
    cluster_check_outcome(&c, i1, 0, FSM_OK, i1);
    ch.value = "v2";
    ch.expected = i1;
    i2 = write_all(&c, &ch, 1); /* matches */
    cluster_check_outcome(&c, i2, 0, FSM_OK, i2);
    check_flag(&c, "cas.k", "v2", i2);

    ch.value = "stale";
    ch.expected = i1;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_CONFLICT, i2);
    ch.value = "future";
    ch.expected = i2 + 1000;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_CONFLICT, i2);
    ch.value = "zero";
    ch.expected = 0;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_CONFLICT, i2);
    check_flag(&c, "cas.k", "v2", i2);

    ch.value = NULL; /* deletes: stale, future, then matching */
    ch.expected = i1;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_CONFLICT, i2);
    ch.expected = i2 + 1;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_CONFLICT, i2);
    check_flag(&c, "cas.k", "v2", i2);
    ch.expected = i2;
    i = write_all(&c, &ch, 1);
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    check_flag(&c, "cas.k", NULL, 0);
    check_identical(&c);
    cluster_stop(&c);
}

/* A delete removes the flag on every server and logs a change row; a delete
 * of a missing flag is NOT_FOUND and writes nothing; the key can be created
 * again afterwards, with a new create revision. */
TEST(fsm_delete_removes_the_flag, 30)
{
    struct cluster c;
    struct cluster_change set = { .key = "del.k", .value = "on" };
    struct cluster_change del = { .key = "del.k" };
    uint64_t i1;
    uint64_t i2;
    uint64_t i3;
    uint64_t rows;
    uint64_t hash;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    i1 = write_all(&c, &set, 1);
    rows = store_count(c.stores[0], STORE_CHANGES);
    i2 = write_all(&c, &del, 1);
    cluster_check_outcome(&c, i2, 0, FSM_OK, i2);
    check_flag(&c, "del.k", NULL, 0);
    CHECK_EQ_INT(store_count(c.stores[1], STORE_CHANGES), rows + 1);
    CHECK_EQ_INT(store_count(c.stores[2], STORE_FLAGS), 0);
    hash = store_hash(c.stores[1]);
    i3 = write_all(&c, &del, 1); /* nothing to delete */
    cluster_check_outcome(&c, i3, 0, FSM_NOTFOUND, 0);
    CHECK_EQ_INT(store_count(c.stores[1], STORE_CHANGES), rows + 1);
    CHECK(store_hash(c.stores[1]) != hash); /* only the applied index */
    i3 = write_all(&c, &set, 1);
    for (unsigned s = 0; s < 3; s++) {
        struct flag_state st = flag_on(&c, s, "del.k");
        CHECK(st.found);
        CHECK_EQ_INT(st.create_revision, i3);
        CHECK(i3 > i1);
    }
    check_identical(&c);
    cluster_stop(&c);
}

/* One entry of several changes (as group commit builds them): each change
 * gets its own outcome, in order, and a second change to the same key in
 * the entry is refused as invalid; reasons are stored. */
TEST(fsm_multi_change_entry, 30)
{
    struct cluster c;
    struct cluster_change setup[2] = { { .key = "m.c", .value = "old" },
                                       { .key = "m.d", .value = "keep" } };
    uint64_t base;
    uint64_t i;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    base = write_all(&c, setup, 2);
    cluster_check_outcome(&c, base, 0, FSM_OK, base);
    cluster_check_outcome(&c, base, 1, FSM_OK, base);
    {
        struct cluster_change chs[5] = {
            { .key = "m.a", .value = "1", .reason = "ticket 7" },
            { .key = "m.b", .value = "2", .cas = 1, .expected = 0 },
            { .key = "m.c" }, /* delete */
            { .key = "m.a", .value = "again" },
            { .key = "m.d", .value = "x", .cas = 1, .expected = base + 9 },
        };
        i = write_all(&c, chs, 5);
    }
    cluster_check_outcome(&c, i, 0, FSM_OK, i);
    cluster_check_outcome(&c, i, 1, FSM_OK, i);
    cluster_check_outcome(&c, i, 2, FSM_OK, i);
    cluster_check_outcome(&c, i, 3, FSM_INVALID, 0);
    cluster_check_outcome(&c, i, 4, FSM_CONFLICT, base);
    check_flag(&c, "m.a", "1", i);
    check_flag(&c, "m.b", "2", i);
    check_flag(&c, "m.c", NULL, 0);
    check_flag(&c, "m.d", "keep", base);
    for (unsigned s = 0; s < 3; s++) {
        CHECK(strcmp(flag_on(&c, s, "m.a").reason, "ticket 7") == 0);
    }
    check_identical(&c);
    cluster_stop(&c);
}

/* A server caught up by snapshot install ends identical, reasons, deletes
 * and multi-change entries included, and goes on applying after it. */
TEST(fsm_snapshot_install_keeps_everything, 30)
{
    struct cluster c;
    char key[32];
    char reason[32];
    char old[32];
    uint64_t last = 0;

    cluster_start(&c, 3);
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 10);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 2);
    }
    cluster_elect(&c, 0);
    last = set_n(&c, "s", 3);
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_kill(&c.f, 2);
    for (int n = 0; n < 40; n++) {
        struct cluster_change chs[3];
        struct cluster_entry e = { .changes = chs, .n = 3 };

        /* a new key with a reason per entry (most are in the snapshot and
         * never written again), a key every entry rewrites, and a delete
         * of an earlier key or a set */
        memset(chs, 0, sizeof chs);
        snprintf(key, sizeof key, "snap.%d", n);
        snprintf(reason, sizeof reason, "reason %d", n);
        snprintf(old, sizeof old, "snap.%d", n - 2);
        chs[0].key = key;
        chs[0].value = "v";
        chs[0].reason = reason;
        chs[1].key = "snap.group";
        chs[1].value = reason;
        chs[1].reason = "grouped";
        chs[2].key = n % 5 == 4 ? old : "s.0";
        chs[2].value = n % 5 == 4 ? NULL : (n % 2 ? "odd" : "even");
        last = cluster_write(&c, &e);
        CHECK(last != 0);
        raft_fixture_step_n(&c.f, 3);
    }
    CHECK(cluster_wait_applied(&c, last, 10000));
    raft_fixture_revive(&c.f, 2);
    CHECK(cluster_wait_applied(&c, last, 30000));
    CHECK(c.fsms[2].n_restored >= 1);
    CHECK(strcmp(flag_on(&c, 2, "snap.group").reason, "grouped") == 0);
    CHECK(strcmp(flag_on(&c, 2, "snap.1").reason, "reason 1") == 0);
    CHECK(!flag_on(&c, 2, "snap.2").found); /* deleted at n = 4 */
    check_identical(&c);
    CHECK_EQ_INT(store_compacted(c.stores[2]), store_compacted(c.stores[0]));
    CHECK_EQ_INT(store_bytes(c.stores[2]), store_bytes(c.stores[0]));
    last = set_n(&c, "after", 3);
    CHECK(cluster_wait_applied(&c, last, 10000));
    check_identical(&c);
    cluster_stop(&c);
}
