/* Raft node wiring; see node.h. */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/queue.h"

/* libraft 0.15 (Debian 12's own) commits entries without a real majority
 * and diverges replicas under faults; 0.22.1 from bookworm-backports is the
 * version this code is written and tested against. */
#if !defined(RAFT_VERSION_NUMBER) || RAFT_VERSION_NUMBER < 2201
#error "flipd needs libraft >= 0.22.1 (bookworm-backports); 0.15 is unsafe"
#endif

#define MONITOR_MS 10

static int mkdir_p(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return FLIP_IOERR;
    }
    return FLIP_OK;
}

static int raft_to_flip(int rv)
{
    switch (rv) {
    case 0:
        return FLIP_OK;
    case RAFT_NOMEM:
        return FLIP_NOMEM;
    case RAFT_NOTLEADER:
        return FLIP_NOTLEADER;
    case RAFT_LEADERSHIPLOST:
        return FLIP_LEADERSHIPLOST;
    case RAFT_NOSPACE:
        return FLIP_NOSPACE;
    case RAFT_CORRUPT:
        return FLIP_CORRUPT;
    default:
        return FLIP_IOERR;
    }
}

const char *node_role_name(int role)
{
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

const struct node_member *node_member_by_id(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->config.n_members; i++) {
        if (n->config.members[i].id == id) {
            return &n->config.members[i];
        }
    }
    return NULL;
}

uint64_t node_applied(const struct node *n)
{
    uint64_t raft_idx = raft_last_applied((struct raft *)&n->raft);
    uint64_t store_idx = store_applied_index(n->store);
    /* During restart replay raft's counter trails the store's. */
    return raft_idx > store_idx ? raft_idx : store_idx;
}

int node_role(const struct node *n)
{
    int role = raft_state((struct raft *)&n->raft);
    return n->closing ? -1 : role;
}

int node_is_leader(const struct node *n)
{
    return !n->closing && raft_state((struct raft *)&n->raft) == RAFT_LEADER;
}

const struct node_member *node_leader(const struct node *n)
{
    raft_id id = 0;
    const char *addr = NULL;

    /* during a planned stop the node still knows the new leader, which is
     * where writes arriving meanwhile are redirected */
    if (n->raft_closing) {
        return NULL;
    }
    raft_leader((struct raft *)&n->raft, &id, &addr);
    return id == 0 ? NULL : node_member_by_id(n, id);
}

uint64_t node_leaderless_ms(const struct node *n)
{
    uint64_t now = uv_now(n->loop);
    if (n->leader_id != 0) {
        return 0;
    }
    return now > n->last_contact ? now - n->last_contact : 0;
}

/* libraft 0.22.1 crashes a follower that takes its own snapshot while the
 * leader is installing one on it (assertions in TrailSnapshot and
 * legacyApply in a debug build, SIGSEGV in Debian's): it happens when a
 * follower comes back after a stall or a partition, replays its log past
 * the snapshot threshold, and the leader, which compacted past it, sends
 * InstallSnapshot at the same moment. See docs/known-issues.md. A
 * follower therefore declines local snapshots for a while after any sign
 * that it fell behind: start-up, no known leader, or its loop stalled. */
#define SNAPSHOT_HOLD_EXTRA_MS 3000

static void hold_snapshots(struct node *n, uint64_t now)
{
    uint64_t until = now + 2 * n->config.election_ms + SNAPSHOT_HOLD_EXTRA_MS;
    if (until > n->snapshot_hold) {
        n->snapshot_hold = until;
    }
}

static int snapshot_gate(void *data)
{
    struct node *n = data;
    if (n->snapshot_hold_off) {
        return 1; /* FLIP_NO_SNAPSHOT_HOLD: to reproduce the libraft bug */
    }
    if (raft_state(&n->raft) == RAFT_LEADER) {
        return 1; /* nobody installs a snapshot on the leader */
    }
    return uv_now(n->loop) >= n->snapshot_hold;
}

/* Polls raft's state; libraft 0.22 has no state-change callback. */
static void monitor_tick(uv_timer_t *t)
{
    struct node *n = t->data;
    int role;
    raft_id leader = 0;
    const char *addr = NULL;

    if (n->closing) {
        return;
    }
    role = raft_state(&n->raft);
    raft_leader(&n->raft, &leader, &addr);
    n->term = raft_current_term(&n->raft);
    if (leader != 0) {
        n->last_contact = uv_now(n->loop);
    }
    if (leader == 0 || uv_now(n->loop) - n->last_tick > n->config.election_ms) {
        hold_snapshots(n, uv_now(n->loop));
    }
    n->last_tick = uv_now(n->loop);
    if (role != n->role) {
        int old = n->role;
        n->role = role;
        flip_infof("raft: %s -> %s (term %llu)", node_role_name(old),
                   node_role_name(role), (unsigned long long)n->term);
        if (n->observer.on_role != NULL) {
            n->observer.on_role(n->observer.data, old, role);
        }
    }
    if (leader != n->leader_id) {
        n->leader_id = leader;
        if (leader != 0) {
            flip_infof("raft: leader is node %llu (term %llu)",
                       (unsigned long long)leader, (unsigned long long)n->term);
        } else {
            flip_infof("raft: no leader (term %llu)",
                       (unsigned long long)n->term);
        }
        if (n->observer.on_leader != NULL) {
            n->observer.on_leader(n->observer.data, leader);
        }
    }
}

static int bootstrap(struct node *n)
{
    struct raft_configuration conf;
    int rv;

    raft_configuration_init(&conf);
    for (unsigned i = 0; i < n->config.n_members; i++) {
        const struct node_member *m = &n->config.members[i];
        rv = raft_configuration_add(&conf, m->id, m->raft_address, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return rv;
        }
    }
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 0; /* state exists: a plain restart */
    }
    if (rv == 0) {
        flip_infof("raft: bootstrapped a %u-node cluster", n->config.n_members);
    }
    return rv;
}

/* ---- raft_io entry points of the shim (raft/ioshim.h) ---------------- */

static struct ioshim *shim_of(struct raft_io *io)
{
    return &CONTAINER_OF(io, struct node, io)->shim;
}

static int shim_send(struct raft_io *io,
                     struct raft_io_send *req,
                     const struct raft_message *m,
                     raft_io_send_cb cb)
{
    return ioshim_send(shim_of(io), req, m, cb);
}

static void shim_recv(struct raft_io *io, struct raft_message *m)
{
    ioshim_recv(shim_of(io), m);
}

static void shim_tick(struct raft_io *io)
{
    ioshim_tick(shim_of(io));
}

static int shim_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    return ioshim_start(shim_of(io), msecs, tick, recv, shim_tick, shim_recv);
}

static int shim_truncate(struct raft_io *io, raft_index index)
{
    return ioshim_truncate(shim_of(io), index);
}

static int shim_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    return ioshim_snapshot_put(shim_of(io), trailing, req, snapshot, cb);
}

/* After raft_init (which may call into io) and before raft_start. */
static void shim_install(struct node *n)
{
    ioshim_init(&n->shim, &n->raft, &n->io);
    n->io.send = shim_send;
    n->io.start = shim_start;
    n->io.snapshot_put = shim_snapshot_put;
    n->io.truncate = shim_truncate;
    /* a truncation rewrites at most a segment and opens the next one */
    ioshim_set_room(
        &n->shim, n->raft_dir,
        2u * (n->config.segment_size != 0 ? (uint64_t)n->config.segment_size
                                          : UINT64_C(8) * 1024u * 1024u));
}

int node_init(struct node *n, uv_loop_t *loop, const struct node_config *cfg)
{
    char fsm_dir[600];
    const struct node_member *self;
    unsigned seed = 0;
    int rv;

    memset(n, 0, sizeof *n);
    n->loop = loop;
    n->config = *cfg;
    self = node_member_by_id(n, cfg->id);
    if (self == NULL) {
        snprintf(n->errmsg, sizeof n->errmsg,
                 "node id %llu is not in the cluster list",
                 (unsigned long long)cfg->id);
        return FLIP_INVALID;
    }
    if (cfg->heartbeat_ms == 0 || cfg->heartbeat_ms >= cfg->election_ms) {
        /* libraft checks this with an assert compiled out of Debian's build */
        snprintf(n->errmsg, sizeof n->errmsg,
                 "heartbeat (%u ms) must be below the election timeout (%u ms)",
                 cfg->heartbeat_ms, cfg->election_ms);
        return FLIP_INVALID;
    }
    snprintf(fsm_dir, sizeof fsm_dir, "%s/fsm", cfg->data_dir);
    snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft", cfg->data_dir);
    if (mkdir_p(cfg->data_dir) != FLIP_OK || mkdir_p(fsm_dir) != FLIP_OK ||
        mkdir_p(n->raft_dir) != FLIP_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "cannot create %s: %s",
                 cfg->data_dir, strerror(errno));
        return FLIP_IOERR;
    }
    rv = store_open(&n->store, fsm_dir, STORE_MAPSIZE_DEFAULT);
    if (rv != FLIP_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "cannot open store in %s: %s",
                 fsm_dir, flip_strerror(rv));
        return rv;
    }
    fsm_init(&n->fsm, n->store);
    n->fsm.gate = snapshot_gate;
    n->snapshot_hold_off = getenv("FLIP_NO_SNAPSHOT_HOLD") != NULL;
    n->fsm.gate_data = n;
    n->transport.version = 1; /* 0.22: RAFT_INVALID otherwise */
    rv = raft_uv_tcp_init(&n->transport, loop);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft transport: %s",
                 raft_strerror(rv));
        goto err_after_store;
    }
    if (cfg->bind_address != NULL) {
        rv = raft_uv_tcp_set_bind_address(&n->transport, cfg->bind_address);
        if (rv != 0) {
            snprintf(n->errmsg, sizeof n->errmsg, "raft bind address %s: %s",
                     cfg->bind_address, raft_strerror(rv));
            raft_uv_tcp_close(&n->transport);
            goto err_after_store;
        }
    }
    rv = raft_uv_init(&n->io, loop, n->raft_dir, &n->transport);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft io in %s: %s", n->raft_dir,
                 n->io.errmsg);
        goto err_after_transport;
    }
    if (cfg->segment_size != 0) {
        raft_uv_set_segment_size(&n->io, cfg->segment_size);
    }
    rv = raft_init(&n->raft, &n->io, &n->fsm.raft_fsm, cfg->id,
                   self->raft_address);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft init: %s",
                 raft_errmsg(&n->raft));
        goto err_after_io;
    }
    n->fsm.raft = &n->raft;
    /* below the shim, so it counts a local snapshot from its start */
    fsm_offload_snapshots(&n->fsm, loop, &n->io);
    shim_install(n);
    raft_set_election_timeout(&n->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&n->raft, true);
    if (cfg->segment_size != 0 && cfg->segment_size < 8u * 1024u * 1024u) {
        /* The default 4 MiB threshold rejects every write with small
         * segments (16-bit KiB capacity counter in raft_uv 0.22). */
        raft_set_capacity_threshold(&n->raft, 0);
    }
    if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed) {
        raft_seed(&n->raft, seed);
    }
    rv = bootstrap(n);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft bootstrap: %s",
                 raft_strerror(rv));
        goto err_after_raft;
    }
    return FLIP_OK;

err_after_raft:
    /* raft_init succeeded: the io and transport are released by raft_close,
     * which needs the loop; the caller runs the loop once after failure. */
    n->closing = 1;
    raft_close(&n->raft, NULL);
    store_close(n->store);
    n->store = NULL;
    return raft_to_flip(rv);
err_after_io:
    raft_uv_close(&n->io);
err_after_transport:
    raft_uv_tcp_close(&n->transport);
err_after_store:
    store_close(n->store);
    n->store = NULL;
    return raft_to_flip(rv);
}

int node_start(struct node *n)
{
    int rv = raft_start(&n->raft);

    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "raft start: %s",
                 raft_errmsg(&n->raft));
        return raft_to_flip(rv);
    }
    n->role = raft_state(&n->raft);
    n->last_contact = uv_now(n->loop);
    n->last_tick = uv_now(n->loop);
    hold_snapshots(n, uv_now(n->loop));
    uv_timer_init(n->loop, &n->monitor);
    n->monitor_started = 1;
    n->monitor.data = n;
    uv_timer_start(&n->monitor, monitor_tick, MONITOR_MS, MONITOR_MS);
    flip_infof("raft: started node %llu at %s, applied index %llu",
               (unsigned long long)n->config.id,
               node_member_by_id(n, n->config.id)->raft_address,
               (unsigned long long)store_applied_index(n->store));
    return FLIP_OK;
}

static void monitor_closed(uv_handle_t *h)
{
    struct node *n = h->data;
    void (*cb)(struct node *) = n->close_cb;

    store_close(n->store);
    n->store = NULL;
    flip_infof("raft: node closed");
    if (cb != NULL) {
        cb(n);
    }
}

static void raft_closed(struct raft *r)
{
    struct node *n = r->data;

    /* io and transport are fully stopped once raft's close callback runs */
    ioshim_close(&n->shim);
    flip_infof(
        "raft: libraft workarounds used: %llu snapshot terms fixed, "
        "%llu installs held back, %llu ignored installs kept, %llu "
        "answers repeated",
        (unsigned long long)n->shim.n_terms_fixed,
        (unsigned long long)n->shim.n_deferred,
        (unsigned long long)n->shim.n_freed,
        (unsigned long long)n->shim.n_repeats);
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
    if (n->monitor_started) {
        uv_close((uv_handle_t *)&n->monitor, monitor_closed);
    } else {
        n->monitor.data = n;
        monitor_closed((uv_handle_t *)&n->monitor);
    }
}

static void drain_tick(uv_timer_t *t);

static void do_close(struct node *n)
{
    if (n->raft_closing) {
        return;
    }
    n->raft_closing = 1;
    n->closing = 1;
    if (n->transfer_timer_started) {
        uv_close((uv_handle_t *)&n->transfer_timer, NULL);
        n->transfer_timer_started = 0;
    }
    if (n->monitor_started) {
        uv_timer_stop(&n->monitor);
    }
    n->raft.data = n;
    raft_close(&n->raft, raft_closed);
}

static void transfer_done(struct raft_transfer *req)
{
    struct node *n = req->data;
    raft_id id = 0;
    const char *addr = NULL;

    if (n->raft_closing) {
        return; /* fired by raft_close after our timeout */
    }
    raft_leader(&n->raft, &id, &addr);
    flip_infof("raft: leadership transfer %s (leader now %llu)",
               id != 0 && id != n->config.id ? "done" : "did not complete",
               (unsigned long long)id);
    if (n->outstanding != NULL && n->outstanding(n->outstanding_data)) {
        /* let the new leader commit what we proposed, and apply tell us */
        n->drain_deadline = uv_now(n->loop) + n->config.election_ms;
        uv_timer_stop(&n->transfer_timer);
        uv_timer_start(&n->transfer_timer, drain_tick, 5, 5);
        return;
    }
    do_close(n);
}

static void drain_tick(uv_timer_t *t)
{
    struct node *n = t->data;

    if (!n->outstanding(n->outstanding_data) ||
        uv_now(n->loop) >= n->drain_deadline) {
        do_close(n);
    }
}

/* A transfer to a peer that is itself stopping never completes; bound it. */
static void transfer_timeout(uv_timer_t *t)
{
    struct node *n = t->data;
    flip_infof("raft: leadership transfer timed out; closing anyway");
    do_close(n);
}

void node_close(struct node *n, void (*cb)(struct node *n))
{
    n->close_cb = cb;
    if (raft_state(&n->raft) == RAFT_LEADER && n->config.n_members > 1) {
        n->transfer.data = n;
        if (raft_transfer(&n->raft, &n->transfer, 0, transfer_done) == 0) {
            n->closing = 1; /* refuse new work while the transfer runs */
            uv_timer_init(n->loop, &n->transfer_timer);
            n->transfer_timer.data = n;
            n->transfer_timer_started = 1;
            uv_timer_start(&n->transfer_timer, transfer_timeout,
                           n->config.election_ms, 0);
            return;
        }
    }
    do_close(n);
}
