/* The process's server struct: the one piece of global state in flipd. It
 * wires the raft node, the proposal layer, the client listener and every
 * client connection onto one libuv loop.
 *
 * Event-loop manners (redis's): handlers never write to sockets; they
 * append frames to the connection's output buffer and mark it dirty. One
 * uv_prepare hook (flush_dirty) hands every dirty buffer to uv_write once
 * per loop turn, at most FLUSH_BULK_PER_TURN (server.c) of them to bulk
 * streams, the others on the next turns. Closing is deferred the same
 * way. */
#ifndef FLIP_SERVER_SERVER_H
#define FLIP_SERVER_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "lib/queue.h"
#include "loopstat.h"
#include "pubsub.h"
#include "raft/node.h"
#include "raft/propose.h"
#include "raft/propose_uv.h"

struct server
{
    uv_loop_t *loop;
    struct config config;
    struct node node;
    struct propose propose;
    struct propose_uv propose_host; /* its timers, on the loop */
    struct pubsub pubsub;
    uv_tcp_t listener;
    uv_prepare_t flush;       /* per-turn output flush */
    struct loopstat loopstat; /* how long each turn held the loop */
    uv_timer_t sweep;         /* handshake deadlines */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sigpipe;
    struct conn_set clients; /* every client connection, and their bounds */
    struct dispatch disp;    /* requests in flight, node-wide */
    int stopping;
    int listener_started;
    int hooks_started;
    uv_work_t sync_req; /* periodic LMDB flush off the loop */
    int sync_busy;
    unsigned sweep_ticks;
    int exit_code;
    uint64_t logged_refused_conns; /* clients.n_refused_conns, last logged */
    /* the state hash (cmd_admin.c): one walk at a time, off the loop */
    uv_work_t hash_req;
    int hash_busy;
    uint64_t hash_value;       /* written by the worker, read in hash_done */
    struct queue hash_running; /* ops the walk in progress answers */
    struct queue hash_waiting; /* ops for the next walk */
    size_t hash_n_waiting;
    /* called by the walk that a stop waited for (server_stop_after_hash,
     * set by server_start): the handlers never call up into server.c */
    void (*hash_stopped)(struct server *s);
};

/* Starts everything on `loop`. On failure returns a FLIP_* code with a
 * message already logged. */
int server_start(struct server *s, uv_loop_t *loop, const struct config *c);
/* Sets up s->clients (limits from s->config; the handler table over
 * sessions), s->disp and the state-hash queues on s->loop; max_conns is
 * the caller's. */
void server_clients_init(struct server *s);
/* Builds s->pubsub over s->node's store, a view of s->node and the
 * client connections (after node_init; server_start calls it). */
void server_pubsub_init(struct server *s);
/* Begins an orderly stop (also triggered by SIGINT/SIGTERM): stop
 * accepting, close clients, transfer leadership, close raft. uv_run
 * returns when done. */
void server_stop(struct server *s);
/* The rest of a stop that waited for a state-hash walk to leave the store
 * (raft closes the store); s->hash_stopped. */
void server_stop_after_hash(struct server *s);

#endif
