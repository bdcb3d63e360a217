/* The process's server struct: the one piece of global state in flipd. It
 * wires the raft node, the proposal layer, the client listener and every
 * client connection onto one libuv loop.
 *
 * Event-loop manners (redis's): handlers never write to sockets; they
 * append frames to the connection's output buffer and mark it dirty. One
 * uv_prepare hook (server_flush) hands every dirty buffer to uv_write once
 * per loop turn. Closing is deferred the same way. */
#ifndef FLIP_SERVER_SERVER_H
#define FLIP_SERVER_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "lib/queue.h"
#include "loopstat.h"
#include "pubsub.h"
#include "raft/node.h"
#include "raft/propose.h"

struct server
{
    uv_loop_t *loop;
    struct config config;
    struct node node;
    struct propose propose;
    struct pubsub pubsub;
    uv_tcp_t listener;
    uv_prepare_t flush;       /* per-turn output flush */
    struct loopstat loopstat; /* how long each turn held the loop */
    uv_timer_t sweep;         /* handshake deadlines */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sigpipe;
    struct queue conns;      /* every open struct conn */
    struct queue dirty;      /* conns with output to write */
    struct queue closing;    /* conns flushing their last bytes */
    struct queue dirty_subs; /* subscriber conns with output, flushed last */
    unsigned n_conns;
    int stopping;
    int listener_started;
    int hooks_started;
    int flush_closed;   /* shutting down: conns flush without the hook */
    uv_work_t sync_req; /* periodic LMDB flush off the loop */
    int sync_busy;
    unsigned sweep_ticks;
    int exit_code;
    uint64_t next_conn_id;

    /* Resource bounds (docs/protocol.md section 10). */
    struct queue deferred;    /* conns holding answers until output drains */
    unsigned max_conns;       /* --max-conns clamped to the fd limit */
    unsigned n_ops;           /* requests in flight, every connection */
    size_t out_req;           /* bytes queued to request connections */
    size_t out_sub;           /* bytes queued to subscribers */
    size_t in_partial;        /* bytes of unfinished frames, all conns */
    uint64_t n_refused_busy;  /* requests refused at --max-inflight-node */
    uint64_t n_refused_conns; /* connections refused at the limit */
    uint64_t logged_refused_conns;
    /* the state hash (cmd_admin.c): one walk at a time, off the loop */
    uv_work_t hash_req;
    int hash_busy;
    uint64_t hash_value;       /* written by the worker, read in hash_done */
    struct queue hash_running; /* ops the walk in progress answers */
    struct queue hash_waiting; /* ops for the next walk */
    size_t hash_n_waiting;
};

/* Starts everything on `loop`. On failure returns a FLIP_* code with a
 * message already logged. */
int server_start(struct server *s, uv_loop_t *loop, const struct config *c);
/* Begins an orderly stop (also triggered by SIGINT/SIGTERM): stop
 * accepting, close clients, transfer leadership, close raft. uv_run
 * returns when done. */
void server_stop(struct server *s);
/* The rest of a stop that waited for a state-hash walk to leave the store
 * (raft closes the store). */
void server_stop_after_hash(struct server *s);

#endif
