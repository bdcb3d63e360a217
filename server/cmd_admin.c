/* Connection and cluster requests: the Hello handshake and node status. */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "server.h"

#define FLIPD_VERSION "0.1.0"

void cmd_hello(struct conn *c, Flip__Request *req)
{
    const Flip__Hello *h = req->hello;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__HelloResult res = FLIP__HELLO_RESULT__INIT;
    const char *why = NULL;
    char msg[96];

    if (!h->has_protocol_version ||
        h->protocol_version != CODEC_PROTOCOL_VERSION) {
        snprintf(msg, sizeof msg,
                 "protocol version %u is not supported; this server speaks %d",
                 h->has_protocol_version ? h->protocol_version : 0,
                 CODEC_PROTOCOL_VERSION);
        conn_send_error(c, req->id, FLIP__STATUS__UNSUPPORTED_VERSION, msg);
        return;
    }
    if (codec_check_text(h->client_name, CODEC_ACTOR_MAX, &why) != FLIP_OK) {
        conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
                        "client_name: at most 128 bytes of UTF-8");
        return;
    }
    (void)session_set_name(session_of(c), h->client_name);
    session_of(c)->hello_done = 1;
    resp.has_id = 1;
    resp.id = req->id;
    res.has_protocol_version = 1;
    res.protocol_version = CODEC_PROTOCOL_VERSION;
    res.has_node_id = 1;
    res.node_id = server_of(c)->config.id;
    res.has_max_frame = 1;
    res.max_frame = server_of(c)->config.max_frame;
    res.server_version = (char *)FLIPD_VERSION;
    res.cluster_id = node_cluster_id(&server_of(c)->node);
    resp.result_case = FLIP__RESPONSE__RESULT_HELLO;
    resp.hello = &res;
    conn_send(c, &resp);
}

/* Answers a Status request; `hash` is NULL unless the state hash was
 * asked for (and computed). */
static void reply_status(struct conn *c,
                         const Flip__Request *req,
                         const uint64_t *hash)
{
    struct server *s = server_of(c);
    struct node *n = &s->node;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__StatusResult res = FLIP__STATUS_RESULT__INIT;
    Flip__Member members[NODE_MAX_MEMBERS];
    Flip__Member *ptrs[NODE_MAX_MEMBERS];
    const struct node_member *leader = node_leader(n);
    int role = node_role(n);
    const char *role_name = node_role_name(role);

    for (unsigned i = 0; i < n->config.n_members; i++) {
        const struct node_member *m = &n->config.members[i];
        flip__member__init(&members[i]);
        members[i].has_id = 1;
        members[i].id = m->id;
        members[i].raft_address = (char *)(uintptr_t)m->raft_address;
        members[i].client_address = (char *)(uintptr_t)m->client_address;
        members[i].has_voter = 1;
        members[i].voter = 1;
        members[i].has_joined = 1;
        members[i].joined = node_member_joined(n, m->id);
        ptrs[i] = &members[i];
    }
    resp.has_id = 1;
    resp.id = req->id;
    res.has_node_id = 1;
    res.node_id = s->config.id;
    res.role = (char *)(uintptr_t)role_name;
    res.has_term = 1;
    res.term = raft_current_term(&n->raft);
    res.has_leader_id = 1;
    res.leader_id = leader != NULL ? leader->id : 0;
    res.leader_address =
        leader != NULL ? (char *)(uintptr_t)leader->client_address : NULL;
    res.has_applied_revision = 1;
    res.applied_revision = node_applied(n);
    res.has_commit_index = 1;
    res.commit_index = raft_commit_index(&n->raft);
    res.has_last_contact_ms = 1;
    res.last_contact_ms = node_leaderless_ms(n);
    res.n_members = n->config.n_members;
    res.members = ptrs;
    res.has_flag_count = 1;
    res.flag_count = store_count(n->store, STORE_FLAGS);
    res.has_store_bytes = 1;
    res.store_bytes = store_bytes(n->store);
    res.has_max_store_bytes = 1;
    res.max_store_bytes = server_of(c)->config.max_store_bytes;
    res.has_changes_rejected = 1;
    res.changes_rejected = n->fsm.n_rejected;
    res.has_changes_deduplicated = 1;
    res.changes_deduplicated = n->fsm.n_duplicate;
    res.has_loop_busy_max_us = 1;
    res.loop_busy_max_us = s->loopstat.busy_max_ns / 1000;
    res.has_loop_turns_over_1ms = 1;
    res.loop_turns_over_1ms = s->loopstat.over_1ms;
    res.has_loop_turns_over_10ms = 1;
    res.loop_turns_over_10ms = s->loopstat.over_slow;
    res.has_loop_cpu_max_us = 1;
    res.loop_cpu_max_us = s->loopstat.cpu_max_ns / 1000;
    res.has_loop_stalls_over_10ms = 1;
    res.loop_stalls_over_10ms = s->loopstat.over_slow_own;
    if (hash != NULL) {
        res.has_state_hash = 1;
        res.state_hash = *hash;
    }
    res.cluster_id = node_cluster_id(n);
    res.has_live = 1;
    res.live = node_live(n);
    res.has_leader_commit = 1;
    res.leader_commit = node_leader_commit(n);
    res.has_lag = 1;
    res.lag = node_lag(n);
    res.raft_address = s->config.raft_address;
    res.client_address = s->config.client_address;
    resp.result_case = FLIP__RESPONSE__RESULT_STATUS;
    resp.status = &res;
    conn_send(c, &resp);
}

/* ---- the state hash, off the loop (F7) -----------------------------------
 *
 * Hashing walks the whole store: hundreds of milliseconds for a few hundred
 * MB, far past an election timeout if it ran on the loop. It runs on the
 * threadpool over its own LMDB read transaction (the env is MDB_NOTLS), one
 * at a time per node. Requests that arrive meanwhile wait for the next
 * walk, which starts after they arrived, and share its result; more than
 * HASH_MAX_WAITING waiting get UNAVAILABLE. A stop waits for the walk
 * (s->hash_stopped), since the store closes with raft. */

#define HASH_MAX_WAITING 256

static void hash_start(struct server *s);

static void hash_run(uv_work_t *w)
{
    struct server *s = w->data;
    s->hash_value = store_hash(s->node.store);
}

static void hash_done(uv_work_t *w, int status)
{
    struct server *s = w->data;
    uint64_t h = s->hash_value;

    s->hash_busy = 0;
    while (!queue_empty(&s->hash_running)) {
        struct op *op =
            CONTAINER_OF(queue_head(&s->hash_running), struct op, wait_link);
        queue_remove(&op->wait_link);
        if (op->conn != NULL) {
            if (status == 0) {
                reply_status(op->conn, op->req, &h);
            } else {
                conn_send_error(op->conn, op->req->id, FLIP__STATUS__INTERNAL,
                                "the state hash was not computed");
            }
        }
        op_free(op);
    }
    if (s->stopping) {
        while (!queue_empty(&s->hash_waiting)) {
            struct op *op = CONTAINER_OF(queue_head(&s->hash_waiting),
                                         struct op, wait_link);
            queue_remove(&op->wait_link);
            s->hash_n_waiting--;
            if (op->conn != NULL) {
                conn_send_error(op->conn, op->req->id,
                                FLIP__STATUS__UNAVAILABLE,
                                "node is shutting down");
            }
            op_free(op);
        }
        if (s->hash_stopped != NULL) {
            s->hash_stopped(s);
        }
        return;
    }
    if (!queue_empty(&s->hash_waiting)) {
        hash_start(s);
    }
}

static void hash_start(struct server *s)
{
    /* everyone waiting now is answered by this walk */
    while (!queue_empty(&s->hash_waiting)) {
        struct queue *e = queue_head(&s->hash_waiting);
        queue_remove(e);
        queue_insert_tail(&s->hash_running, e);
    }
    s->hash_n_waiting = 0;
    s->hash_req.data = s;
    if (uv_queue_work(s->loop, &s->hash_req, hash_run, hash_done) == 0) {
        s->hash_busy = 1;
        return;
    }
    hash_done(&s->hash_req, UV_ENOMEM); /* answers them with an error */
}

void cmd_status(struct conn *c, Flip__Request *req)
{
    struct server *s = server_of(c);
    struct op *op;

    if (!req->status->has_include_hash || !req->status->include_hash) {
        reply_status(c, req, NULL);
        return;
    }
    if (s->stopping || s->hash_n_waiting >= HASH_MAX_WAITING) {
        conn_send_error(c, req->id, FLIP__STATUS__UNAVAILABLE,
                        s->stopping ? "node is shutting down"
                                    : "too many state hashes waiting; retry");
        return;
    }
    op = op_new(c, req);
    if (op == NULL) {
        dispatch_error(c, req->id, FLIP_NOMEM, NULL);
        return;
    }
    queue_insert_tail(&s->hash_waiting, &op->wait_link);
    s->hash_n_waiting++;
    if (!s->hash_busy) {
        hash_start(s);
    }
}
