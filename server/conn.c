/* Client connections as a transport; see conn.h for the state machine.
 *
 * Happy path: read_cb appends to `in`, frames are cut with proto/frame and
 * handed up (h->on_frame); responses are encoded with proto/codec and
 * appended to `out`; the server's prepare hook calls conn_flush, which
 * hands `out` to the kernel (uv_try_write, the rest through one uv_write).
 *
 * Failure modes: an oversized length prefix or undecodable frame gets an
 * error frame and the connection closes after it is flushed (the stream
 * cannot be resynchronised); EOF or a socket error closes at once; a
 * client that does not read its responses is stopped from sending more
 * once CONN_OUT_HIGH bytes are queued (counting the write in flight), and
 * cut off at CONN_OUT_MAX.
 *
 * Bounds (F4, F10, F11 of the robustness review): at most --max-inflight
 * requests of one connection are in flight; at that count reading stops
 * and resumes from the flush hook once one completes, so a pipelining
 * client is slowed, never refused. Answers that wait for a read barrier
 * are queued behind the connection's output bound (by the layer above:
 * conn_has_room; dispatch_serve), so a
 * batch of barrier waiters is served across loop turns as the socket
 * drains. Every connection's backlog is counted in node-wide totals
 * (conn_account) checked against --output-budget and --sub-budget. After
 * Hello, a connection idle for --idle-timeout-ms (no request, nothing
 * queued; bulk streams excepted) or that leaves a frame unfinished for
 * --frame-timeout-ms is closed by the sweep. */
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/frame.h"

#define CONN_READ_CHUNK (64u * 1024u)
#define CONN_OUT_HIGH   (4u * 1024u * 1024u)
#define CONN_OUT_MAX    (64u * 1024u * 1024u)

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    conn_account(c); /* closed: counts as nothing queued */
    c->set->in_partial -= c->in_accounted;

    buf_close(&c->in);
    buf_close(&c->out);
    buf_close(&c->writing);
    if (c->owner != NULL) {
        c->set->h->on_free(c);
    }
    flip_free(c);
}

static void mark_dirty(struct conn *c);

static void finish_close(struct conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = 1;
    queue_remove(&c->link); /* from set->closing */
    if (!queue_empty(&c->dirty)) {
        queue_remove(&c->dirty);
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

void conn_stop_reading(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->no_more_reads = 1;
}

void conn_abort(struct conn *c)
{
    if (c->state == CONN_OPEN) {
        conn_close(c, NULL);
    }
    finish_close(c);
}

void conn_close(struct conn *c, const char *why)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    c->state = CONN_CLOSING;
    conn_account(c);
    if (why != NULL) {
        flip_infof("conn %llu (%s): closing: %s", (unsigned long long)c->id,
                   c->peer, why);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    queue_remove(&c->link);
    queue_insert_tail(&c->set->closing, &c->link);
    c->closing_ms = uv_now(c->set->loop);
    if (!c->refused) {
        c->set->n_conns--;
    }
    if (c->owner != NULL) {
        c->set->h->on_close(c);
    }
    if (!c->write_inflight && buf_len(&c->out) == 0) {
        finish_close(c);
        return;
    }
    /* conn_flush / write_done finish the close once the error frame that
     * explains it is written */
    mark_dirty(c);
}

/* Bulk streams are flushed after interactive connections, so a writer's
 * ack is not queued behind thousands of event writes. */
static void mark_dirty(struct conn *c)
{
    if (c->set->flush_closed) {
        conn_flush(c); /* shutting down: the per-turn hook is gone */
        return;
    }
    if (queue_empty(&c->dirty)) {
        queue_insert_tail(c->bulk ? &c->set->dirty_bulk : &c->set->dirty,
                          &c->dirty);
    }
}

void conn_set_bulk(struct conn *c, int bulk)
{
    if (!queue_empty(&c->dirty) && c->bulk != bulk) {
        /* output queued before (a Hello answer) goes with the stream's */
        queue_remove(&c->dirty);
        queue_insert_tail(bulk ? &c->set->dirty_bulk : &c->set->dirty,
                          &c->dirty);
    }
    c->bulk = bulk;
    conn_account(c);
}

void conn_discard_output(struct conn *c)
{
    buf_reset(&c->out);
    conn_account(c);
}

void conn_send(struct conn *c, const Flip__Response *resp)
{
    int rv = codec_response_encode(resp, c->set->limits.max_frame, &c->out);

    if (rv == FLIP_TOOBIG && resp->error == NULL) {
        conn_send_error(c, resp->id, FLIP__STATUS__TOO_LARGE,
                        "response exceeds the frame limit");
        return;
    }
    if (rv != FLIP_OK) {
        conn_close(c, "cannot encode response");
        return;
    }
    mark_dirty(c);
    conn_account(c);
    if (c->reading && !conn_has_room(c)) {
        /* A client that does not read its responses, or a node whose
         * output budget is spent: stop reading until this connection's
         * backlog drains (write_done and conn_flush resume). */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

int conn_has_room(const struct conn *c)
{
    return conn_backlog(c) <= CONN_OUT_HIGH &&
           c->set->out_req <= c->set->limits.output_budget;
}

void conn_account(struct conn *c)
{
    struct conn_set *set = c->set;
    /* A closing connection's last bytes go within the close deadline;
     * they do not count against the others' budget. */
    size_t now = c->state == CONN_OPEN ? conn_backlog(c) : 0;

    if (c->accounted_bulk) {
        set->out_bulk -= c->accounted;
    } else {
        set->out_req -= c->accounted;
    }
    c->accounted_bulk = c->bulk;
    c->accounted = now;
    if (c->accounted_bulk) {
        set->out_bulk += now;
    } else {
        set->out_req += now;
    }
}

static void start_reading(struct conn *c);

void conn_ops_changed(struct conn *c)
{
    if (c->state == CONN_OPEN && !c->reading && !c->no_more_reads) {
        mark_dirty(c); /* conn_flush resumes reading when there is room */
    }
}

void conn_check_deadlines(struct conn *c, uint64_t now)
{
    const struct conn_limits *cf = &c->set->limits;
    char msg[96];

    if (c->state != CONN_OPEN) {
        return;
    }
    if (c->reading && c->frame_begun_ms != 0 && buf_len(&c->in) > 0 &&
        now - c->frame_begun_ms > cf->frame_timeout_ms) {
        snprintf(msg, sizeof msg, "frame not completed within %u ms",
                 cf->frame_timeout_ms);
        conn_send_error(c, 0, FLIP__STATUS__PROTOCOL_ERROR, msg);
        conn_close(c, msg);
        return;
    }
    if (cf->idle_timeout_ms != 0 && !c->bulk && c->n_ops == 0 &&
        conn_backlog(c) == 0 && buf_len(&c->in) == 0 &&
        now - c->active_ms > cf->idle_timeout_ms) {
        snprintf(msg, sizeof msg, "idle for more than %u ms",
                 cf->idle_timeout_ms);
        conn_send_error(c, 0, FLIP__STATUS__UNAVAILABLE, msg);
        conn_close(c, msg);
    }
}

void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len)
{
    if (c->state != CONN_OPEN) {
        return;
    }
    if (buf_append(&c->out, frame, len) != FLIP_OK) {
        conn_close(c, "out of memory for output");
        return;
    }
    mark_dirty(c);
    conn_account(c);
}

size_t conn_backlog(const struct conn *c)
{
    return buf_len(&c->out) + buf_len(&c->writing);
}

void conn_send_error(struct conn *c,
                     uint64_t id,
                     Flip__Status status,
                     const char *message)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__Error err = FLIP__ERROR__INIT;

    resp.has_id = 1;
    resp.id = id;
    err.has_status = 1;
    err.status = status;
    err.message = (char *)(uintptr_t)message;
    resp.error = &err;
    conn_send(c, &resp);
}

static void read_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    struct conn *c = h->data;

    (void)hint;
    if (buf_reserve(&c->in, CONN_READ_CHUNK) != FLIP_OK) {
        out->base = NULL;
        out->len = 0;
        return;
    }
    out->base = (char *)buf_tail(&c->in);
    out->len = c->in.cap - c->in.end;
}

static void pause_reading(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* Cuts every complete frame and hands it up while the connection may take
 * more requests; returns how many it handed up. */
static unsigned handle_frames(struct conn *c)
{
    const uint8_t *payload = NULL;
    size_t len = 0;
    char msg[128];
    unsigned n = 0;

    while (c->state == CONN_OPEN && c->reading) {
        int rv;

        if (c->n_ops >= c->set->limits.max_inflight) {
            /* F11: a pipelining client waits here, its frames unread in
             * the socket; conn_ops_changed brings it back. */
            pause_reading(c);
            return n;
        }
        rv = frame_next(&c->in, c->set->limits.max_frame, &payload, &len);
        if (rv == FLIP_AGAIN) {
            return n;
        }
        if (rv == FLIP_TOOBIG) {
            snprintf(msg, sizeof msg,
                     "frame of %u bytes exceeds the limit of %u bytes",
                     buf_get_u32be(buf_head(&c->in)), c->set->limits.max_frame);
            conn_send_error(c, 0, FLIP__STATUS__TOO_LARGE, msg);
            conn_close(c, msg);
            return n;
        }
        /* Consumed first (a handler may re-enter handle_frames at
         * shutdown); consuming moves no bytes, and nothing appends to `in`
         * before on_frame returns, so the payload stays valid. */
        buf_consume(&c->in, FRAME_HEADER + len);
        n++;
        c->set->h->on_frame(c, payload, len);
    }
    return n;
}

/* F10: unfinished frames of every connection together stay within
 * --input-budget; the connection whose read passes it is closed (its frame
 * cannot be dropped without losing the stream). Returns 0 if closed. */
static int input_within_budget(struct conn *c)
{
    struct conn_set *set = c->set;
    char msg[96];

    set->in_partial -= c->in_accounted;
    c->in_accounted = c->state == CONN_OPEN ? buf_len(&c->in) : 0;
    set->in_partial += c->in_accounted;
    if (c->in_accounted == 0 || set->in_partial <= set->limits.input_budget) {
        return 1;
    }
    snprintf(msg, sizeof msg,
             "unfinished frames on this node pass %zu bytes; retry",
             set->limits.input_budget);
    set->in_partial -= c->in_accounted;
    c->in_accounted = 0;
    conn_send_error(c, 0, FLIP__STATUS__UNAVAILABLE, msg);
    conn_close(c, "input budget of the node spent");
    return 0;
}

/* F10: a frame left unfinished is timed from when its first bytes came
 * (or reading resumed); complete frames waiting for room are not timed. */
static void note_partial_frame(struct conn *c, int fresh)
{
    if (buf_len(&c->in) == 0) {
        c->frame_begun_ms = 0;
    } else if (fresh || c->frame_begun_ms == 0) {
        c->frame_begun_ms = uv_now(c->set->loop);
    }
}

static void read_done(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = stream->data;

    (void)b;
    if (n < 0) {
        if (n != UV_EOF && n != UV_ECONNRESET) {
            flip_infof("conn %llu (%s): read: %s", (unsigned long long)c->id,
                       c->peer, uv_strerror((int)n));
        }
        if (buf_len(&c->in) > 0 && n == UV_EOF) {
            flip_infof("conn %llu (%s): closed mid-frame (%zu bytes pending)",
                       (unsigned long long)c->id, c->peer, buf_len(&c->in));
        }
        conn_close(c, NULL);
        return;
    }
    if (n == 0) {
        if (b->base == NULL) {
            conn_close(c, "out of memory for the read buffer");
        }
        return;
    }
    c->active_ms = uv_now(c->set->loop);
    buf_commit(&c->in, (size_t)n);
    note_partial_frame(c, handle_frames(c) > 0);
    if (!input_within_budget(c)) {
        return;
    }
    if (c->bulk && buf_len(&c->in) == 0) {
        buf_close(&c->in); /* an idle stream keeps no read buffer */
    }
}

static void start_reading(struct conn *c)
{
    /* Only this connection's own backlog is checked: once it drained, the
     * connection no longer adds to the node's, and nothing else would wake
     * it (the node-wide budget pauses it again at its next answer). */
    if (c->state != CONN_OPEN || c->reading || c->no_more_reads ||
        c->n_ops >= c->set->limits.max_inflight ||
        conn_backlog(c) > CONN_OUT_HIGH) {
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, read_alloc, read_done) == 0) {
        c->reading = 1;
        /* frames may already be buffered from before the pause */
        handle_frames(c);
        note_partial_frame(c, 1);
        (void)input_within_budget(c); /* re-counts what was consumed */
    }
}

static void write_done(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->write_inflight = 0;
    if (c->closed) {
        return; /* cancelled by uv_close; conn_closed frees the buffers */
    }
    buf_reset(&c->writing);
    conn_account(c);
    c->active_ms = uv_now(c->set->loop);
    if (c->bulk && c->writing.cap > 16u * 1024u) {
        /* streams are many and mostly idle: give memory back */
        buf_close(&c->writing);
    }
    if (status < 0 && c->state == CONN_OPEN) {
        conn_close(c, uv_strerror(status));
    }
    if (c->state == CONN_CLOSING) {
        if (buf_len(&c->out) > 0 && status == 0) {
            mark_dirty(c);
        } else {
            finish_close(c);
        }
        return;
    }
    if (buf_len(&c->out) > 0) {
        mark_dirty(c);
    } else if (!c->reading) {
        start_reading(c);
    }
    if (c->owner != NULL) {
        c->set->h->on_drained(c);
    }
}

/* Drops `b` (output that cannot be written) and closes: at once if the
 * connection was already closing, else after conn_close's own steps. */
static void give_up(struct conn *c, struct buf *b, const char *why)
{
    buf_reset(b);
    if (c->state == CONN_OPEN) {
        conn_close(c, why);
    } else {
        finish_close(c);
    }
}

void conn_flush(struct conn *c)
{
    struct buf tmp;
    uv_buf_t b;
    int rv;

    if (c->write_inflight) {
        return;
    }
    if (buf_len(&c->out) == 0) {
        /* marked by conn_ops_changed: an op finished; read again */
        if (!c->reading) {
            start_reading(c);
        }
        return;
    }
    if (buf_len(&c->out) > CONN_OUT_MAX) {
        give_up(c, &c->out, "client is not reading its responses");
        return;
    }
    /* Most flushes fit in the socket buffer: hand them to the kernel at
     * once, which saves a write request and a callback per connection
     * (thousands per flip with many subscribers). Only a remainder goes
     * through uv_write. */
    b.base = (char *)buf_head(&c->out);
    b.len = buf_len(&c->out);
    rv = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rv == (int)b.len) {
        buf_reset(&c->out);
        conn_account(c);
        if (c->bulk && c->out.cap > 16u * 1024u) {
            buf_close(&c->out);
        }
        if (c->state == CONN_CLOSING) {
            finish_close(c);
            return;
        }
        if (!c->reading) {
            start_reading(c);
        }
        if (c->owner != NULL) {
            c->set->h->on_drained(c);
        }
        return;
    }
    if (rv > 0) {
        buf_consume(&c->out, (size_t)rv);
    } else if (rv != UV_EAGAIN && rv != UV_ENOSYS) {
        give_up(c, &c->out, uv_strerror(rv));
        return;
    }
    /* swap: the filled buffer goes to the kernel, the empty one collects */
    tmp = c->writing;
    c->writing = c->out;
    c->out = tmp;
    b.base = (char *)buf_head(&c->writing);
    b.len = buf_len(&c->writing);
    c->wreq.data = c;
    rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done);
    if (rv != 0) {
        give_up(c, &c->writing, uv_strerror(rv));
        return;
    }
    c->write_inflight = 1;
    conn_account(c);
}

static int conn_accept(struct conn_set *set, uv_stream_t *listener)
{
    struct conn *c;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    int rv;

    if (set->max_accepts != 0 && set->accepted >= set->max_accepts) {
        set->held = listener;
        return 0;
    }
    c = flip_calloc(1, sizeof *c);
    if (c == NULL) {
        /* left in the listener, as past max_accepts: not accepting it
         * would leave libuv holding it with the listener unwatched */
        flip_errorf("listener: out of memory for a connection; retrying");
        set->held = listener; /* the next flush tries again */
        return 0;
    }
    set->accepted++;
    c->set = set;
    c->id = ++set->next_conn_id;
    queue_init(&c->dirty);
    buf_init(&c->in);
    buf_init(&c->out);
    buf_init(&c->writing);
    uv_tcp_init(set->loop, &c->tcp);
    c->tcp.data = c;
    rv = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rv != 0) {
        flip_warnf("listener: accept: %s", uv_strerror(rv));
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return rv;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0 &&
        ss.ss_family == AF_INET) {
        char host[32];
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        uv_ip4_name(in, host, sizeof host);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, ntohs(in->sin_port));
    }
    c->accepted_ms = uv_now(set->loop);
    c->active_ms = c->accepted_ms;
    c->state = CONN_OPEN;
    queue_insert_tail(&set->conns, &c->link);
    if (set->n_conns >= set->max_conns) {
        /* Not counted: the limit keeps descriptors for raft and the
         * store (F5), and this one goes as soon as its error is out. */
        c->refused = 1;
        set->n_refused_conns++;
        conn_send_error(c, 0, FLIP__STATUS__UNAVAILABLE,
                        "too many connections on this node");
        conn_close(c, NULL);
        return 0;
    }
    set->n_conns++;
    if (set->h->on_open(set->h_data, c) != 0) {
        conn_close(c, "out of memory for a session");
        return 0;
    }
    start_reading(c);
    return 0;
}

static void on_listen(uv_stream_t *listener, int status)
{
    if (status < 0) {
        flip_warnf("listener: %s", uv_strerror(status));
        return;
    }
    (void)conn_accept(listener->data, listener);
}

int conn_set_listen(struct conn_set *set, uv_tcp_t *listener, int backlog)
{
    listener->data = set;
    set->backlog = backlog;
    return uv_listen((uv_stream_t *)listener, backlog, on_listen);
}

static void flush_more(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from sleeping: the next flush goes on */
}

void conn_set_flush(struct conn_set *set, unsigned max_bulk)
{
    unsigned n = 0;
    uv_stream_t *held = set->held;

    set->accepted = 0;
    set->held = NULL;
    if (held != NULL && !set->flush_closed &&
        !uv_is_closing((uv_handle_t *)held) && conn_accept(set, held) != 0) {
        /* uv_accept failed outside libuv's accept loop, which left the
         * listener unwatched: listening again watches it again */
        int rv = uv_listen(held, set->backlog, on_listen);
        if (rv != 0) {
            flip_errorf("listener: cannot listen again: %s", uv_strerror(rv));
        }
    }

    while (!queue_empty(&set->dirty)) {
        struct queue *e = queue_head(&set->dirty);
        queue_remove(e);
        conn_flush(CONTAINER_OF(e, struct conn, dirty));
    }
    while (!queue_empty(&set->dirty_bulk) && n < max_bulk) {
        struct queue *e = queue_head(&set->dirty_bulk);
        queue_remove(e);
        conn_flush(CONTAINER_OF(e, struct conn, dirty));
        n++;
    }
    if (!set->more_init) {
        uv_idle_init(set->loop, &set->more);
        set->more_init = 1;
    }
    if (queue_empty(&set->dirty_bulk) ||
        uv_is_closing((uv_handle_t *)&set->more)) {
        uv_idle_stop(&set->more);
    } else {
        uv_idle_start(&set->more, flush_more);
    }
}

void conn_set_close(struct conn_set *set)
{
    if (set->more_init && !uv_is_closing((uv_handle_t *)&set->more)) {
        uv_close((uv_handle_t *)&set->more, NULL);
    }
}

void conn_set_init(struct conn_set *set, uv_loop_t *loop)
{
    memset(set, 0, sizeof *set);
    set->loop = loop;
    queue_init(&set->conns);
    queue_init(&set->dirty);
    queue_init(&set->dirty_bulk);
    queue_init(&set->closing);
}
