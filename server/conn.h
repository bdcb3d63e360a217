/* One client connection, as a transport: bytes in -> frames handed up;
 * frames out through a per-connection buffer flushed once per loop turn.
 * It knows nothing of what the frames mean: the layer above (the session,
 * wired by server.c) gets them through a small handler table, and owns
 * whatever it hangs on the connection (c->owner).
 *
 * States: OPEN (reading, handing frames up) -> CLOSING (no more reads;
 * flush what is queued, e.g. the error frame that explains the close, then
 * uv_close) -> freed in the close callback, after h->on_free.
 *
 * One flag shapes the transport's policy: `bulk` (set by the layer above
 * for a long-lived stream, e.g. a subscription) means flushed after the
 * interactive connections, a bounded number of them per loop turn
 * (conn_set_flush), counted in the bulk output total, exempt from the
 * idle timeout, and holding no buffer memory while idle. */
#ifndef FLIP_SERVER_CONN_H
#define FLIP_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "flip.pb-c.h"
#include "lib/buf.h"
#include "lib/queue.h"

struct conn;

/* Calls up from the transport; every one runs on the loop, never from
 * inside a conn_* call the layer above made, except on_close (from
 * conn_close, which the layer above may call itself). */
struct conn_handler
{
    /* Accepted: hang the owner on c->owner. Non-zero refuses the
     * connection (out of memory); it is closed at once. */
    int (*on_open)(void *data, struct conn *c);
    /* One complete frame's payload (header cut off); valid during the
     * call only. */
    void (*on_frame)(struct conn *c, const uint8_t *payload, size_t len);
    /* Queued output was handed to the kernel (a write completed, or a
     * flush took all of it): a stream may queue more. */
    void (*on_drained)(struct conn *c);
    /* The connection is closing: nothing more is read, nothing queued
     * from now on is sent. Called once. */
    void (*on_close)(struct conn *c);
    /* The connection is gone: free the owner. Called once, after
     * on_close (also for a connection refused at accept). */
    void (*on_free)(struct conn *c);
};

/* The limits of every connection (a subset of the server's config). */
struct conn_limits
{
    unsigned max_frame;        /* --max-frame */
    unsigned max_inflight;     /* --max-inflight: c->n_ops that stop reads */
    size_t output_budget;      /* --output-budget: interactive backlog */
    size_t input_budget;       /* --input-budget: unfinished frames */
    unsigned frame_timeout_ms; /* --frame-timeout-ms */
    unsigned idle_timeout_ms;  /* --idle-timeout-ms; 0: never */
};

/* Every connection of one listener, and the node-wide totals they share. */
struct conn_set
{
    uv_loop_t *loop;
    const struct conn_handler *h;
    void *h_data; /* handed to h->on_open */
    struct conn_limits limits;
    struct queue conns;       /* every open struct conn */
    struct queue dirty;       /* conns with output to write */
    struct queue dirty_bulk;  /* bulk conns with output, flushed last */
    struct queue closing;     /* conns flushing their last bytes */
    unsigned n_conns;         /* open, not refused */
    unsigned max_conns;       /* --max-conns clamped to the fd limit */
    uint64_t n_refused_conns; /* connections refused at the limit */
    uint64_t next_conn_id;
    int flush_closed; /* shutting down: conns flush without a hook */
    uv_idle_t more;   /* active while bulk output waits for a turn */
    int more_init;    /* `more` exists: made at the first flush, so a set
                       * that never flushes has no handle to close */
    /* Accepts per loop turn (0: no bound). Past it, libuv holds the next
     * connection and stops watching the listener until conn_set_flush
     * takes it: a reconnect storm is let in a bounded number per turn. */
    unsigned max_accepts;
    unsigned accepted; /* since the last conn_set_flush */
    uv_stream_t *held; /* its listener holds a connection for us */
    int backlog;       /* conn_set_listen's, to listen again */
    size_t out_req;    /* bytes queued to interactive connections */
    size_t out_bulk;   /* bytes queued to bulk connections */
    size_t in_partial; /* bytes of unfinished frames, all conns */
};

enum conn_state
{
    CONN_OPEN,
    CONN_CLOSING
};

struct conn
{
    struct conn_set *set;
    void *owner; /* the layer above's, from h->on_open */
    uv_tcp_t tcp;
    uint64_t id;
    enum conn_state state;
    struct queue link;  /* in set->conns, then set->closing */
    struct queue dirty; /* in set->dirty(_bulk) while out has bytes */
    struct buf in;      /* received bytes not yet framed */
    struct buf out;     /* frames queued for the next flush */
    struct buf writing; /* bytes owned by the in-flight uv_write */
    uv_write_t wreq;
    int write_inflight;
    int reading;
    int bulk; /* a long-lived stream (see the header comment) */
    uint64_t accepted_ms;
    uint64_t closing_ms; /* when conn_close ran; bounds a stuck flush */
    int closed;          /* uv_close issued */
    int no_more_reads;   /* shutdown: answer what is in flight, read no more */
    char peer[64];

    /* Resource bounds (conn.c's header comment). */
    unsigned n_ops;          /* frames handed up and not yet answered, as
                              * the layer above counts them (it changes
                              * n_ops and calls conn_ops_changed) */
    size_t accounted;        /* backlog counted in set->out_req or out_bulk */
    int accounted_bulk;      /* which of the two counters holds it */
    size_t in_accounted;     /* buffered input counted in set->in_partial */
    uint64_t active_ms;      /* last frame read or answer written */
    uint64_t frame_begun_ms; /* when `in` last went from empty to not */
    int refused;             /* over the connection limit; never counted */
};

/* Initialises an empty set on `loop`; the caller fills limits, max_conns,
 * h and h_data. */
void conn_set_init(struct conn_set *set, uv_loop_t *loop);

/* Listens on `listener` (bound by the caller; its data becomes `set`) and
 * accepts its connections into the set, at most max_accepts a loop turn:
 * past that, and when a connection cannot be allocated, libuv holds the
 * next one and stops watching the listener until conn_set_flush takes it.
 * The caller closes the listener. */
int conn_set_listen(struct conn_set *set, uv_tcp_t *listener, int backlog);

/* Queues one response frame. Encoding failures (too big, no memory) are
 * turned into an error response; the connection stays usable. */
void conn_send(struct conn *c, const Flip__Response *resp);
/* Queues an error response for request `id`. */
void conn_send_error(struct conn *c,
                     uint64_t id,
                     Flip__Status status,
                     const char *message);
/* Stops reading, flushes what is queued, then closes. Idempotent. */
void conn_close(struct conn *c, const char *why);
/* Hands queued output to the kernel; called by the server's flush hook. */
void conn_flush(struct conn *c);
/* The per-turn flush: accepts a connection held back by max_accepts, then
 * writes every interactive connection with output, then at most
 * `max_bulk` bulk streams, oldest first. Bulk streams left over are
 * written by the next calls, and meanwhile the loop does not sleep. So
 * a fan-out to thousands of streams takes several turns, and the loop
 * serves other work between them. */
void conn_set_flush(struct conn_set *set, unsigned max_bulk);
/* Closes the set's own handle (before the loop is closed). */
void conn_set_close(struct conn_set *set);
/* Drops the output queued and not yet handed to the kernel (a stream cut
 * off: the error that explains it is all the peer needs now). */
void conn_discard_output(struct conn *c);
/* Marks c as a bulk stream (see the header comment), or not. */
void conn_set_bulk(struct conn *c, int bulk);
/* Queues an already-encoded frame (header included), e.g. one event shared
 * by every subscriber. FLIP_NOMEM closes the connection. */
void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len);
/* Bytes queued or being written: what a slow reader has not taken yet. */
size_t conn_backlog(const struct conn *c);
/* Stops reading requests (shutdown: the connection only waits for the
 * answers of requests already in flight). */
void conn_stop_reading(struct conn *c);
/* Closes now, dropping unsent output: for a flush that never completes. */
void conn_abort(struct conn *c);
/* An op of `c` finished or was queued: reading may resume (at the next
 * flush, never from inside the caller's callback). */
void conn_ops_changed(struct conn *c);
/* True when an answer to `c` may be queued now without passing the
 * per-connection or the node-wide output bound. */
int conn_has_room(const struct conn *c);
/* Re-counts c's backlog in the set's node-wide output totals. */
void conn_account(struct conn *c);
/* Idle, frame-completion deadlines; called by the sweep once the layer
 * above let the client in (its handshake deadline is its own). */
void conn_check_deadlines(struct conn *c, uint64_t now);

#endif
