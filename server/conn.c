/* Client connections; see conn.h for the state machine.
 *
 * Happy path: read_cb appends to `in`, frames are cut with proto/frame,
 * decoded with proto/codec and handed to dispatch; responses are appended
 * to `out`; the server's prepare hook calls conn_flush, which moves `out`
 * into `writing` and issues one uv_write.
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
 * are queued behind the connection's output bound (dispatch_serve), so a
 * batch of barrier waiters is served across loop turns as the socket
 * drains. Every connection's backlog is counted in node-wide totals
 * (conn_account) checked against --output-budget and --sub-budget. After
 * Hello, a connection idle for --idle-timeout-ms (no request, nothing
 * queued; subscribers excepted) or that leaves a frame unfinished for
 * --frame-timeout-ms is closed by the sweep. */
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "pubsub.h"
#include "server.h"

#define CONN_READ_CHUNK (64u * 1024u)
#define CONN_OUT_HIGH   (4u * 1024u * 1024u)
#define CONN_OUT_MAX    (64u * 1024u * 1024u)

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    conn_account(c); /* closed: counts as nothing queued */
    c->srv->in_partial -= c->in_accounted;

    buf_close(&c->in);
    buf_close(&c->out);
    buf_close(&c->writing);
    flip_free(c->client_name);
    flip_free(c);
}

static void mark_dirty(struct conn *c);

static void finish_close(struct conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = 1;
    queue_remove(&c->link); /* from srv->closing */
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
    queue_insert_tail(&c->srv->closing, &c->link);
    c->closing_ms = uv_now(c->srv->loop);
    if (!c->refused) {
        c->srv->n_conns--;
    }
    if (c->sub != NULL) {
        pubsub_unsubscribe(c->sub);
        c->sub = NULL;
    }
    dispatch_detach(c);
    if (!c->write_inflight && buf_len(&c->out) == 0) {
        finish_close(c);
        return;
    }
    /* conn_flush / write_done finish the close once the error frame that
     * explains it is written */
    mark_dirty(c);
}

/* Subscribers are flushed after request/response connections, so a
 * writer's ack is not queued behind thousands of event writes. */
static void mark_dirty(struct conn *c)
{
    if (c->srv->flush_closed) {
        conn_flush(c); /* shutting down: the per-turn hook is gone */
        return;
    }
    if (queue_empty(&c->dirty)) {
        queue_insert_tail(c->sub != NULL ? &c->srv->dirty_subs : &c->srv->dirty,
                          &c->dirty);
    }
}

void conn_send(struct conn *c, const Flip__Response *resp)
{
    int rv = codec_response_encode(resp, c->srv->config.max_frame, &c->out);

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
           c->srv->out_req <= c->srv->config.output_budget;
}

void conn_account(struct conn *c)
{
    struct server *s = c->srv;
    /* A closing connection's last bytes go within the close deadline;
     * they do not count against the others' budget. */
    size_t now = c->state == CONN_OPEN ? conn_backlog(c) : 0;

    if (c->accounted_sub) {
        s->out_sub -= c->accounted;
    } else {
        s->out_req -= c->accounted;
    }
    c->accounted_sub = c->sub != NULL;
    c->accounted = now;
    if (c->accounted_sub) {
        s->out_sub += now;
    } else {
        s->out_req += now;
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
    const struct config *cf = &c->srv->config;
    char msg[96];

    if (c->state != CONN_OPEN || !c->hello_done) {
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
    if (cf->idle_timeout_ms != 0 && c->sub == NULL && c->n_ops == 0 &&
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

/* Cuts and dispatches every complete frame while the connection may take
 * more requests; returns how many it dispatched. */
static unsigned handle_frames(struct conn *c)
{
    const uint8_t *payload = NULL;
    size_t len = 0;
    char msg[128];
    unsigned n = 0;

    while (c->state == CONN_OPEN && c->reading) {
        Flip__Request *req = NULL;
        int nul;
        int rv;

        if (c->n_ops >= c->srv->config.max_inflight) {
            /* F11: a pipelining client waits here, its frames unread in
             * the socket; conn_ops_changed brings it back. */
            pause_reading(c);
            return n;
        }
        rv = frame_next(&c->in, c->srv->config.max_frame, &payload, &len);
        if (rv == FLIP_AGAIN) {
            return n;
        }
        if (rv == FLIP_TOOBIG) {
            snprintf(msg, sizeof msg,
                     "frame of %u bytes exceeds the limit of %u bytes",
                     buf_get_u32be(buf_head(&c->in)), c->srv->config.max_frame);
            conn_send_error(c, 0, FLIP__STATUS__TOO_LARGE, msg);
            conn_close(c, msg);
            return n;
        }
        rv = codec_request_decode(payload, len, &req);
        /* checked on the frame: the decoded strings cannot show a NUL */
        nul = rv == FLIP_OK && codec_request_has_nul(payload, len);
        buf_consume(&c->in, FRAME_HEADER + len);
        if (rv != FLIP_OK) {
            conn_send_error(c, 0, FLIP__STATUS__PROTOCOL_ERROR,
                            "frame is not a valid Request message");
            conn_close(c, "undecodable frame");
            return n;
        }
        n++;
        if (nul) {
            conn_send_error(c, req->id, FLIP__STATUS__INVALID_ARGUMENT,
                            "a text field contains U+0000 (NUL), which "
                            "flipd does not store");
            codec_request_free(req);
            continue;
        }
        dispatch_request(c, req);
    }
    return n;
}

/* F10: unfinished frames of every connection together stay within
 * --input-budget; the connection whose read passes it is closed (its frame
 * cannot be dropped without losing the stream). Returns 0 if closed. */
static int input_within_budget(struct conn *c)
{
    struct server *s = c->srv;
    char msg[96];

    s->in_partial -= c->in_accounted;
    c->in_accounted = c->state == CONN_OPEN ? buf_len(&c->in) : 0;
    s->in_partial += c->in_accounted;
    if (c->in_accounted == 0 || s->in_partial <= s->config.input_budget) {
        return 1;
    }
    snprintf(msg, sizeof msg,
             "unfinished frames on this node pass %zu bytes; retry",
             s->config.input_budget);
    s->in_partial -= c->in_accounted;
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
        c->frame_begun_ms = uv_now(c->srv->loop);
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
    c->active_ms = uv_now(c->srv->loop);
    buf_commit(&c->in, (size_t)n);
    note_partial_frame(c, handle_frames(c) > 0);
    if (!input_within_budget(c)) {
        return;
    }
    if (c->sub != NULL && buf_len(&c->in) == 0) {
        buf_close(&c->in); /* an idle subscriber keeps no read buffer */
    }
}

static void start_reading(struct conn *c)
{
    /* Only this connection's own backlog is checked: once it drained, the
     * connection no longer adds to the node's, and nothing else would wake
     * it (the node-wide budget pauses it again at its next answer). */
    if (c->state != CONN_OPEN || c->reading || c->no_more_reads ||
        c->n_ops >= c->srv->config.max_inflight ||
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
    c->active_ms = uv_now(c->srv->loop);
    if (c->sub != NULL && c->writing.cap > 16u * 1024u) {
        /* subscribers are many and mostly idle: give memory back */
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
    if (c->sub != NULL) {
        pubsub_drained(c->sub);
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
        buf_reset(&c->out);
        if (c->state == CONN_OPEN) {
            conn_close(c, "client is not reading its responses");
        } else {
            finish_close(c);
        }
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
        if (c->sub != NULL && c->out.cap > 16u * 1024u) {
            buf_close(&c->out);
        }
        if (c->state == CONN_CLOSING) {
            finish_close(c);
            return;
        }
        if (!c->reading) {
            start_reading(c);
        }
        if (c->sub != NULL) {
            pubsub_drained(c->sub);
        }
        return;
    }
    if (rv > 0) {
        buf_consume(&c->out, (size_t)rv);
    } else if (rv != UV_EAGAIN && rv != UV_ENOSYS) {
        buf_reset(&c->out);
        if (c->state == CONN_OPEN) {
            conn_close(c, uv_strerror(rv));
        } else {
            finish_close(c);
        }
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
        buf_reset(&c->writing);
        if (c->state == CONN_OPEN) {
            conn_close(c, uv_strerror(rv));
        } else {
            finish_close(c);
        }
        return;
    }
    c->write_inflight = 1;
    conn_account(c);
}

void conn_accept(struct server *s)
{
    struct conn *c = flip_calloc(1, sizeof *c);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    int rv;

    if (c == NULL) {
        flip_errorf("listener: out of memory for a connection");
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    queue_init(&c->dirty);
    queue_init(&c->ops);
    queue_init(&c->ready);
    queue_init(&c->deferred);
    buf_init(&c->in);
    buf_init(&c->out);
    buf_init(&c->writing);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    rv = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp);
    if (rv != 0) {
        flip_warnf("listener: accept: %s", uv_strerror(rv));
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
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
    c->accepted_ms = uv_now(s->loop);
    c->active_ms = c->accepted_ms;
    c->state = CONN_OPEN;
    queue_insert_tail(&s->conns, &c->link);
    if (s->n_conns >= s->max_conns) {
        /* Not counted: the limit keeps descriptors for raft and the
         * store (F5), and this one goes as soon as its error is out. */
        c->refused = 1;
        s->n_refused_conns++;
        conn_send_error(c, 0, FLIP__STATUS__UNAVAILABLE,
                        "too many connections on this node");
        conn_close(c, NULL);
        return;
    }
    s->n_conns++;
    start_reading(c);
}
