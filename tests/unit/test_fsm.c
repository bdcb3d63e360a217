/* The real FSM and LMDB store under libraft's deterministic fixture:
 * replication, leader loss, snapshot install to a lagging server, replay
 * skipping and compare-and-set, with every store ending byte-identical. */
#include <stdio.h>
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "lib/err.h"
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
    CHECK_EQ_INT(fsm_decode_record(val, vlen, &f), FLIP_OK);
    fr->revision = f->revision;
    snprintf(fr->value, sizeof fr->value, "%s", f->value->string_value);
    fsm_free_record(f);
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
