/* raft/ioshim.c's receive decisions on a real libraft follower (raft_fixture
 * over the real FSM): which InstallSnapshot messages it holds back while a
 * local snapshot write is in flight (known-issues #1). The shim is called
 * directly, with a recorder in libraft's place. */
#include <string.h>

#include "../lib/cluster.h"
#include "../lib/runner.h"
#include "raft/ioshim.h"

static unsigned n_delivered;

/* Stands in for libraft's receive callback: takes the message and frees
 * its payload, as libraft would once done with it. */
static void recorder(struct raft_io *io, struct raft_message *m)
{
    (void)io;
    n_delivered++;
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
    }
}

/* An InstallSnapshot from server 1 (the leader) in `term`, covering up to
 * (last_index, last_term); the payload is heap memory the receiver owns. */
static struct raft_message install(raft_term term,
                                   raft_index last_index,
                                   raft_term last_term)
{
    struct raft_message m;

    memset(&m, 0, sizeof m);
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.server_id = 1;
    m.server_address = "1";
    m.install_snapshot.version = 0;
    m.install_snapshot.term = term;
    m.install_snapshot.last_index = last_index;
    m.install_snapshot.last_term = last_term;
    raft_configuration_init(&m.install_snapshot.conf);
    m.install_snapshot.conf_index = 1;
    m.install_snapshot.data.len = 8;
    m.install_snapshot.data.base = raft_malloc(8);
    CHECK(m.install_snapshot.data.base != NULL);
    memset(m.install_snapshot.data.base, 0, 8);
    return m;
}

/* While a local snapshot write is in flight every live install is held:
 * one beyond the follower's log, and one inside it whose term differs from
 * the follower's entry there (a tail from a deposed leader), which libraft
 * would also start installing and park behind the local write, the NULL
 * dereference of known-issues #1 (correctness review M2). A stale-term
 * install, or any install with no local write in flight, goes through. */
TEST(ioshim_holds_every_live_install_during_local_put, 30)
{
    struct cluster c;
    struct ioshim sh;
    struct raft *r;
    struct raft_message m;
    raft_index last;
    raft_term term;
    uint64_t index = 0;

    cluster_start(&c, 3);
    cluster_elect(&c, 0);
    for (int i = 0; i < 4; i++) {
        index = cluster_set(&c, "k", "v", 0, 0);
        CHECK(index != 0);
    }
    CHECK(cluster_wait_applied(&c, index, 10000));
    r = raft_fixture_get(&c.f, 1);
    CHECK(raft_state(r) == RAFT_FOLLOWER);
    last = raft_last_index(r);
    term = raft_current_term(r);
    CHECK(last >= 3);

    ioshim_init(&sh, r, r->io);
    sh.raft_recv = recorder;
    sh.local_puts = 1; /* a local snapshot_put is in flight */
    n_delivered = 0;

    /* beyond the log: held */
    m = install(term, last + 10, term);
    ioshim_recv(&sh, &m);
    CHECK_EQ_INT(n_delivered, 0);
    CHECK_EQ_INT(sh.n_deferred, 1);

    /* inside the log, conflicting term: held too (replaces the first) */
    m = install(term + 1, last - 1, term + 1);
    ioshim_recv(&sh, &m);
    CHECK_EQ_INT(n_delivered, 0);
    CHECK_EQ_INT(sh.n_deferred, 2);
    CHECK_EQ_INT(sh.n_dropped, 1);
    CHECK(sh.has_deferred);
    CHECK_EQ_INT(sh.deferred.install_snapshot.last_index, last - 1);

    /* a stale term is not live: libraft only answers it */
    m = install(term - 1, last + 10, term - 1);
    ioshim_recv(&sh, &m);
    CHECK_EQ_INT(n_delivered, 1);

    /* no local write in flight: nothing to race, delivered at once */
    sh.local_puts = 0;
    m = install(term + 1, last - 1, term + 1);
    ioshim_recv(&sh, &m);
    CHECK_EQ_INT(n_delivered, 2);
    CHECK_EQ_INT(sh.n_deferred, 2);

    ioshim_close(&sh); /* frees the one still held */
    cluster_stop(&c);
}
