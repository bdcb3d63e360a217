/* Server wiring and the per-turn hooks; see server.h.
 *
 * Startup: node (store + raft) -> proposal layer -> client listener ->
 * hooks and signals. Shutdown (SIGINT/SIGTERM or server_stop): stop
 * accepting, close every client, transfer leadership and close raft, then
 * close the remaining handles so uv_run returns. */
#include "server.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "conn.h"
#include "dispatch.h"
#include "lib/err.h"
#include "lib/log.h"
#include "peercheck.h"
#include "raft/aiodefer.h"
#include "session.h"

#define SWEEP_MS            1000
#define SYNC_EVERY_TICKS    5    /* LMDB is MDB_NOSYNC; flush it every 5 s */
#define CLOSE_DEADLINE_MS   5000 /* a peer that never reads its last bytes */
/* Bulk streams (subscribers) written per loop turn. Each is one write(2),
 * which on loopback costs the loop 10-30 us (the receiving side's TCP work
 * runs in the writer's syscall): a heartbeat or a change to 10,000
 * subscribers of one node held a turn for 100-300 ms, and a writer on the
 * node waited behind it (issue 9). */
#define FLUSH_BULK_PER_TURN 256
/* Connections accepted per loop turn: each costs the loop about 20 us,
 * and its Hello and Subscribe arrive a turn later; 10,000 clients
 * reconnecting at once were accepted thousands in one turn (issue 9). */
#define ACCEPTS_PER_TURN    64

static void on_applied(void *data,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes)
{
    struct server *s = data;
    propose_on_applied(&s->propose, index, cmd, outcomes);
    pubsub_on_applied(&s->pubsub, index, cmd, outcomes);
}

static int writes_outstanding(void *data)
{
    return propose_outstanding(data);
}

static void on_restored(void *data, uint64_t index)
{
    struct server *s = data;
    flip_infof("server: state replaced by snapshot at revision %llu",
               (unsigned long long)index);
    propose_on_restored(&s->propose, index);
    pubsub_on_restored(&s->pubsub, index);
}

/* The node's monitor saw raft name another leader, or none. */
static void on_leader(void *data, uint64_t leader_id)
{
    struct server *s = data;

    (void)leader_id; /* pubsub asks the node view, as a heartbeat does */
    pubsub_on_leader(&s->pubsub, uv_now(s->loop));
}

/* redis's beforeSleep: one write per dirty connection per loop turn, at
 * most `max_bulk` of them to bulk streams (the rest on the next turns). */
static void flush_turn(struct server *s, unsigned max_bulk)
{
    pubsub_pump(&s->pubsub);
    dispatch_serve_deferred(&s->disp);
    if (!queue_empty(&s->clients.dirty_bulk)) {
        /* The followers' subscribers wait for the commit index, and this
         * node's own fan-out takes a while with many subscribers. */
        propose_nudge_now(&s->propose);
    }
    conn_set_flush(&s->clients, max_bulk);
}

static void flush_dirty(uv_prepare_t *h)
{
    flush_turn(h->data, FLUSH_BULK_PER_TURN);
}

static void node_closed(struct node *n);

/* pubsub's view of the node */
static void read_node(void *data, struct pubsub_node_state *out)
{
    struct node *n = data;
    const struct node_member *leader = node_leader(n);

    out->leader_id = leader != NULL ? leader->id : 0;
    out->leader_address = leader != NULL ? leader->client_address : NULL;
    out->leaderless_ms = node_leaderless_ms(n);
    out->live = node_live(n);
    out->term = n->term;
    out->cluster_id = node_cluster_id(n);
    out->leader_commit = node_leader_commit(n);
    out->lag = node_lag(n);
}

void server_clients_init(struct server *s)
{
    const struct config *c = &s->config;

    conn_set_init(&s->clients, s->loop);
    s->clients.limits.max_frame = c->max_frame;
    s->clients.limits.max_inflight = c->max_inflight;
    s->clients.limits.output_budget = c->output_budget;
    s->clients.limits.input_budget = c->input_budget;
    s->clients.limits.frame_timeout_ms = c->frame_timeout_ms;
    s->clients.limits.idle_timeout_ms = c->idle_timeout_ms;
    s->clients.h = &dispatch_conn_handler;
    s->clients.h_data = &s->disp;
    dispatch_init(&s->disp, s, &s->node);
    s->disp.self_id = c->id;
    s->disp.node_inflight = c->node_inflight;
    queue_init(&s->hash_running);
    queue_init(&s->hash_waiting);
}

void server_pubsub_init(struct server *s)
{
    const struct config *c = &s->config;
    struct pubsub_config pc;
    struct pubsub_node view = { &s->node, read_node };
    struct pubsub_sink sink;

    memset(&pc, 0, sizeof pc);
    pc.node_id = c->id;
    pc.max_frame = c->max_frame;
    pc.sub_buffer = c->sub_buffer;
    pc.heartbeat_ms = c->sub_heartbeat_ms;
    pc.sub_budget = c->sub_budget;
    pc.snapshot_ms = c->sub_snapshot_ms;
    pc.snapshot_pin = c->sub_snapshot_pin;
    pc.election_ms = c->election_ms;
    pc.max_store_bytes = c->max_store_bytes;
    session_sink(&sink, &s->clients);
    pubsub_init(&s->pubsub, s->loop, s->node.store, &pc, &view, &sink);
}

static void sync_run(uv_work_t *req)
{
    struct server *s = req->data;
    store_sync(s->node.store);
}

static void sync_after(uv_work_t *req, int status)
{
    struct server *s = req->data;
    (void)status;
    s->sync_busy = 0;
    if (s->stopping) {
        /* server_stop waited for this sync: the store it flushed is closed
         * with the node, so only now */
        node_close(&s->node, node_closed);
    }
}

static void sweep_tick(uv_timer_t *t)
{
    struct server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct queue *e;
    struct queue *next;

    if (s->clients.flush_closed) {
        /* shutting down: give peers a second to take their last answers */
        for (e = s->clients.closing.next; e != &s->clients.closing; e = next) {
            struct conn *c = CONTAINER_OF(e, struct conn, link);
            next = e->next;
            if (now - c->closing_ms > 1000) {
                conn_abort(c);
            }
        }
        if (queue_empty(&s->clients.closing)) {
            uv_close((uv_handle_t *)&s->sweep, NULL);
        }
        return;
    }

    for (e = s->clients.conns.next; e != &s->clients.conns; e = next) {
        struct conn *c = CONTAINER_OF(e, struct conn, link);
        next = e->next;
        session_check_deadlines(c, now);
    }
    if (s->clients.n_refused_conns != s->logged_refused_conns) {
        /* one line per sweep, not one per connection of a flood */
        flip_warnf("server: refused %llu connections over the limit of %u",
                   (unsigned long long)(s->clients.n_refused_conns -
                                        s->logged_refused_conns),
                   s->clients.max_conns);
        s->logged_refused_conns = s->clients.n_refused_conns;
    }
    for (e = s->clients.closing.next; e != &s->clients.closing; e = next) {
        struct conn *c = CONTAINER_OF(e, struct conn, link);
        next = e->next;
        if (now - c->closing_ms > CLOSE_DEADLINE_MS) {
            conn_abort(c);
        }
    }
    if (++s->sweep_ticks % SYNC_EVERY_TICKS == 0 && !s->sync_busy &&
        !s->stopping) {
        s->sync_req.data = s;
        if (uv_queue_work(s->loop, &s->sync_req, sync_run, sync_after) == 0) {
            s->sync_busy = 1;
        }
    }
}

/* F5: client sockets, raft's peer sockets and segment files, snapshots
 * and LMDB share one descriptor table. Clients get what the limit leaves
 * after --fd-reserve, so a flood of connections cannot starve raft (which
 * does not survive a failed open; docs/known-issues.md #7). */
static unsigned conn_limit(const struct config *c)
{
    struct rlimit rl;
    rlim_t room;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return c->max_conns;
    }
    room = rl.rlim_cur > c->fd_reserve ? rl.rlim_cur - c->fd_reserve : 0;
    if (room < 1) {
        room = 1;
    }
    if (room >= c->max_conns) {
        return c->max_conns;
    }
    flip_warnf(
        "server: --max-conns %u does not fit the descriptor limit "
        "%llu minus %u kept for raft and the store; serving at most "
        "%u connections (raise LimitNOFILE / ulimit -n)",
        c->max_conns, (unsigned long long)rl.rlim_cur, c->fd_reserve,
        (unsigned)room);
    return (unsigned)room;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;

    if (signum == SIGPIPE) {
        return;
    }
    flip_infof("server: received %s, stopping",
               signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(s);
}

static int start_listener(struct server *s)
{
    char host[NODE_ADDR_MAX];
    struct sockaddr_in addr;
    int port = 0;
    int rv;

    config_split_address(s->config.client_address, host, sizeof host, &port);
    uv_ip4_addr(host, port, &addr);
    uv_tcp_init(s->loop, &s->listener);
    s->listener_started = 1;
    rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = conn_set_listen(&s->clients, &s->listener, 1024);
    }
    if (rv != 0) {
        flip_errorf("server: cannot listen on %s: %s", s->config.client_address,
                    uv_strerror(rv));
        return FLIP_IOERR;
    }
    flip_infof("server: serving clients on %s", s->config.client_address);
    return FLIP_OK;
}

int server_start(struct server *s, uv_loop_t *loop, const struct config *c)
{
    struct node_config nc;
    char cid[IDENTITY_ID_LEN + 1];
    int rv;

    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->config = *c;
    server_clients_init(s);
    s->clients.max_conns = conn_limit(c);
    s->clients.max_accepts = ACCEPTS_PER_TURN;
    s->hash_stopped = server_stop_after_hash;

    memset(&nc, 0, sizeof nc);
    nc.id = c->id;
    nc.join = c->join[0] != '\0';
    nc.data_dir = s->config.data_dir;
    nc.bind_address =
        s->config.raft_bind[0] != '\0' ? s->config.raft_bind : NULL;
    memcpy(nc.members, c->members, sizeof nc.members);
    nc.n_members = c->n_members;
    nc.election_ms = c->election_ms;
    nc.heartbeat_ms = c->heartbeat_ms;
    nc.snapshot_threshold = c->snapshot_threshold;
    nc.snapshot_trailing = c->snapshot_trailing;
    nc.segment_size = c->segment_size;
    nc.max_store_bytes = c->max_store_bytes;
    if (nc.join) {
        flip_infof(
            "server: joining: waiting to be added (flipctl "
            "--endpoints %s member add %llu %s %s)",
            c->join, (unsigned long long)c->id, c->raft_address,
            c->client_address);
    } else if (node_data_is_new(s->config.data_dir)) {
        rv = peercheck_run(&s->config, s->node.errmsg, sizeof s->node.errmsg);
        if (rv != FLIP_OK) {
            flip_errorf("server: %s", s->node.errmsg);
            return rv;
        }
    }
    rv = node_init(&s->node, loop, &nc);
    if (rv != FLIP_OK) {
        flip_errorf("server: %s", s->node.errmsg);
        return rv;
    }
    s->node.fsm.observer.data = s;
    s->node.fsm.observer.on_applied = on_applied;
    s->node.fsm.observer.on_restored = on_restored;
    propose_uv_init(&s->propose_host, &s->propose, &s->node, c->changelog_keep);
    s->propose.max_store_bytes = c->max_store_bytes;
    s->node.outstanding = writes_outstanding;
    s->node.outstanding_data = &s->propose;
    server_pubsub_init(s);
    s->node.observer.data = s;
    s->node.observer.on_leader = on_leader;
    rv = identity_get(s->node.store, cid);
    if (rv == FLIP_OK && peercheck_cluster(&s->config, cid, s->node.errmsg,
                                           sizeof s->node.errmsg) != FLIP_OK) {
        flip_errorf("server: %s", s->node.errmsg);
        return FLIP_INVALID;
    }
    /* Listen before raft starts: a port clash must fail fast and clean. */
    rv = start_listener(s);
    if (rv != FLIP_OK) {
        return rv;
    }
    rv = node_start(&s->node);
    if (rv != FLIP_OK) {
        flip_errorf("server: %s", s->node.errmsg);
        return rv;
    }
    s->hooks_started = 1;
    /* the meter first: libuv runs the prepare hook started last first, and
     * the meter must come after the flush to count it in its own turn */
    if (loopstat_start(&s->loopstat, loop) != FLIP_OK) {
        flip_warnf(
            "server: the loop stall meter is off (libuv refused "
            "idle-time metrics)");
    }
    uv_prepare_init(loop, &s->flush);
    s->flush.data = s;
    uv_prepare_start(&s->flush, flush_dirty);
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, sweep_tick, SWEEP_MS, SWEEP_MS);
    uv_signal_init(loop, &s->sigint);
    uv_signal_init(loop, &s->sigterm);
    uv_signal_init(loop, &s->sigpipe);
    s->sigint.data = s;
    s->sigterm.data = s;
    s->sigpipe.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigpipe, on_signal, SIGPIPE);
    return FLIP_OK;
}

static void node_closed(struct node *n)
{
    struct server *s = CONTAINER_OF(n, struct server, node);

    /* Connections closed earlier may still be flushing their last frame;
     * keep the flush hook until the loop has nothing else. */
    propose_close(&s->propose);
    /* raft has answered every proposal by now; the last connections go
     * once their answers are written (conn_close flushes first). */
    while (!queue_empty(&s->clients.conns)) {
        struct conn *c =
            CONTAINER_OF(queue_head(&s->clients.conns), struct conn, link);
        conn_send_error(c, 0, FLIP__STATUS__UNAVAILABLE,
                        "node is shutting down");
        conn_close(c, NULL);
    }
    s->node.observer.on_leader = NULL;
    pubsub_close(&s->pubsub);
    if (!s->hooks_started) {
        return;
    }
    flush_turn(s, UINT_MAX);
    s->clients.flush_closed = 1; /* conns now write without the hook */
    uv_close((uv_handle_t *)&s->flush, NULL);
    conn_set_close(&s->clients);
    loopstat_stop(&s->loopstat);
    /* the sweep stays until the last connection is gone (see sweep_tick) */
    uv_timer_start(&s->sweep, sweep_tick, 50, 50);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigpipe, NULL);
}

void server_stop(struct server *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = 1;
    /* raft_uv's close path may cancel writes still in the kernel: from here
     * on it destroys their AIO contexts itself, synchronously */
    aiodefer_disarm();
    if (s->listener_started) {
        uv_close((uv_handle_t *)&s->listener, NULL);
    }
    if (s->hash_busy) {
        return; /* the walk reads the store; hash_done goes on from here */
    }
    server_stop_after_hash(s);
}

void server_stop_after_hash(struct server *s)
{
    /* Clients stay connected while leadership moves and raft settles what
     * was proposed: a proposed write must be answered with its real outcome
     * (committed, or LEADERSHIP_LOST: unknown), never with a blanket
     * UNAVAILABLE, which means "not applied, retry" and would make the
     * client apply it twice. New writes meanwhile are redirected to the new
     * leader (never proposed here). Connections close in node_closed.
     * A background sync still running on the threadpool uses the store
     * node_close frees: the node closes once it is done (sync_after); no
     * new one starts while stopping. */
    if (s->sync_busy) {
        return;
    }
    node_close(&s->node, node_closed);
}
