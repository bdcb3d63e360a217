/* One client connection: bytes in -> frames -> dispatch; responses out
 * through a per-connection buffer flushed once per loop turn.
 *
 * States: OPEN (reading, dispatching) -> CLOSING (no more reads; flush what
 * is queued, e.g. the error frame that explains the close, then uv_close)
 * -> freed in the close callback. Requests still in flight when the
 * connection closes (proposals, read barriers) are detached: they complete
 * later and free themselves without replying. */
#ifndef FLIP_SERVER_CONN_H
#define FLIP_SERVER_CONN_H

#include <stdint.h>

#include <uv.h>

#include "flip.pb-c.h"
#include "lib/buf.h"
#include "lib/queue.h"

struct server;

enum conn_state
{
    CONN_OPEN,
    CONN_CLOSING
};

struct conn
{
    struct server *srv;
    uv_tcp_t tcp;
    uint64_t id;
    enum conn_state state;
    struct queue link;  /* in srv->conns */
    struct queue dirty; /* in srv->dirty while out has bytes to write */
    struct queue ops;   /* struct op in flight for this connection */
    struct buf in;      /* received bytes not yet framed */
    struct buf out;     /* frames queued for the next flush */
    struct buf writing; /* bytes owned by the in-flight uv_write */
    uv_write_t wreq;
    int write_inflight;
    int reading;
    int hello_done;
    uint64_t accepted_ms;
    uint64_t closing_ms; /* when conn_close ran; bounds a stuck flush */
    int closed;          /* uv_close issued */
    int no_more_reads;   /* shutdown: answer what is in flight, read no more */
    struct sub *sub;     /* this connection's subscription, if any */
    char *client_name;   /* from Hello; owned */
    char peer[64];

    /* Resource bounds (conn.c's header comment). */
    struct queue ready;      /* struct op whose answer waits for output room */
    struct queue deferred;   /* in srv->deferred while `ready` is not empty */
    unsigned n_ops;          /* ops in flight (in `ops` or `ready`) */
    size_t accounted;        /* backlog counted in srv->out_req or out_sub */
    int accounted_sub;       /* which of the two counters holds it */
    size_t in_accounted;     /* buffered input counted in srv->in_partial */
    uint64_t active_ms;      /* last request read or answer written */
    uint64_t frame_begun_ms; /* when `in` last went from empty to not */
    int refused;             /* over the connection limit; never counted */
};

/* Accepts a connection from the listener. Logs and drops it on failure. */
void conn_accept(struct server *s);

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
/* Re-counts c's backlog in the server's node-wide output totals. */
void conn_account(struct conn *c);
/* Idle, frame-completion deadlines; called by the server's sweep. */
void conn_check_deadlines(struct conn *c, uint64_t now);

#endif
