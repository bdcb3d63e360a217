/* server/conn.c over real sockets (tests/lib/fakeserver.h): what a client
 * sees when an answer is too large, when its connection is at
 * --max-inflight, stops being read, is aborted, resets, or leaves more
 * output unread than a connection may hold. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fakeserver.h"
#include "../lib/runner.h"
#include "lib/err.h"
#include "proto/codec.h"

static void expect_error(struct fakeserver *f,
                         int fd,
                         uint64_t id,
                         Flip__Status status,
                         const char *message)
{
    Flip__Response *r = fs_recv(f, fd);

    CHECK(r != NULL);
    CHECK(r->error != NULL);
    CHECK_EQ_INT(r->id, id);
    CHECK_EQ_INT(r->error->status, status);
    CHECK(strcmp(r->error->message, message) == 0);
    codec_response_free(r);
}

/* An answer over --max-frame (here a page of three 60 KiB flags against
 * the smallest frame, 128 KiB) goes out as TOO_LARGE for its request id,
 * and the connection stays usable. */
TEST(conn_answer_over_frame_limit_is_too_large, 20)
{
    const char *args[] = { "--max-frame", "131072" };
    struct fakeserver f;
    struct conn *c = NULL;
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__ListResult res = FLIP__LIST_RESULT__INIT;
    Flip__Flag fl[3];
    Flip__Flag *ptrs[3];
    Flip__Value v = FLIP__VALUE__INIT;
    char *big = malloc(60001);
    int fd;

    CHECK(big != NULL);
    memset(big, 'x', 60000);
    big[60000] = '\0';
    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = big;
    for (int i = 0; i < 3; i++) {
        flip__flag__init(&fl[i]);
        fl[i].key = "k";
        fl[i].value = &v;
        ptrs[i] = &fl[i];
    }
    res.n_flags = 3;
    res.flags = ptrs;
    resp.has_id = 1;
    resp.id = 9;
    resp.result_case = FLIP__RESPONSE__RESULT_LIST;
    resp.list = &res;

    fs_start(&f, args, 2);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    conn_send(c, &resp);
    expect_error(&f, fd, 9, FLIP__STATUS__TOO_LARGE,
                 "response exceeds the frame limit");
    CHECK_EQ_INT(c->state, CONN_OPEN);
    fs_send_hello(fd, 10);
    fs_expect_hello(&f, fd, 10);
    close(fd);
    fs_stop(&f);
    free(big);
}

/* At --max-inflight the connection's next request waits unread until one
 * in flight finishes (here the two in flight are counted by hand: no raft
 * runs); then it is read and answered. */
TEST(conn_waits_at_max_inflight, 20)
{
    const char *args[] = { "--max-inflight", "2" };
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, args, 2);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    c->n_ops = 2;
    fs_send_hello(fd, 5);
    CHECK(fs_quiet(&f, fd, 20));
    CHECK(!c->reading);
    CHECK(buf_len(&c->in) > 0); /* read, not started */
    conn_ops_changed(c);        /* an op was queued: still at the bound */
    CHECK(fs_quiet(&f, fd, 5));
    CHECK(!c->reading);
    c->n_ops = 1;
    conn_ops_changed(c);
    fs_expect_hello(&f, fd, 5);
    CHECK(c->reading);
    close(fd);
    fs_stop(&f);
}

/* conn_stop_reading (shutdown): later requests are not read, also when an
 * op finishes; what was queued before is still written, and the close
 * that follows reaches the client. */
TEST(conn_stopped_reading_reads_no_more, 20)
{
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    conn_send_error(c, 3, FLIP__STATUS__UNAVAILABLE, "queued before");
    conn_stop_reading(c);
    conn_stop_reading(c); /* idempotent */
    fs_send_hello(fd, 4);
    expect_error(&f, fd, 3, FLIP__STATUS__UNAVAILABLE, "queued before");
    CHECK(fs_quiet(&f, fd, 20));
    conn_ops_changed(c);
    CHECK(fs_quiet(&f, fd, 20));
    CHECK(!c->reading);
    conn_close(c, "test closes");
    CHECK(fs_recv(&f, fd) == NULL); /* EOF, hello 4 never answered */
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    close(fd);
    fs_stop(&f);
}

/* conn_abort drops what was queued: the client sees the connection end
 * without the queued answer. */
TEST(conn_abort_drops_queued_output, 20)
{
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    conn_send_error(c, 3, FLIP__STATUS__UNAVAILABLE, "never sent");
    conn_abort(c);
    CHECK(queue_empty(&f.s.clients.dirty));
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK(fs_recv(&f, fd) == NULL);
    close(fd);
    fs_stop(&f);
}

/* Waits (bounded) until the server side of `c` sees the client's reset. */
static void wait_reset(struct conn *c)
{
    uv_os_fd_t sfd;
    struct pollfd p;

    CHECK_EQ_INT(uv_fileno((uv_handle_t *)&c->tcp, &sfd), 0);
    p.fd = sfd;
    p.events = POLLIN;
    p.revents = 0;
    CHECK_EQ_INT(poll(&p, 1, 5000), 1);
}

static void reset_client(int fd)
{
    struct linger l = { 1, 0 };

    CHECK_EQ_INT(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    close(fd);
}

/* A client that reset its connection: the next answer's write fails and
 * the connection is closed and freed at once. */
TEST(conn_write_to_reset_client_closes, 20)
{
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    reset_client(fd);
    wait_reset(c);
    conn_send_error(c, 3, FLIP__STATUS__UNAVAILABLE, "to nobody");
    conn_flush(c); /* before the loop reads the reset */
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK(queue_empty(&f.s.clients.conns));
    fs_turn(&f);
    CHECK(queue_empty(&f.s.clients.closing));

    /* the same while the connection is closing: its last answer fails */
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    conn_send_error(c, 4, FLIP__STATUS__UNAVAILABLE, "last words");
    conn_close(c, "test closes");
    CHECK(!queue_empty(&f.s.clients.closing));
    reset_client(fd);
    wait_reset(c);
    conn_flush(c);
    CHECK(queue_empty(&f.s.clients.closing));
    fs_stop(&f);
}

/* A client that resets in the middle of a frame: the connection closes
 * and its unfinished input is no longer counted against --input-budget. */
TEST(conn_reset_mid_frame_closes, 20)
{
    struct fakeserver f;
    struct conn *c = NULL;
    uint8_t half[6] = { 0, 0, 0, 40, 0x08, 0x01 };
    int fd;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    CHECK_EQ_INT(write(fd, half, sizeof half), (ssize_t)sizeof half);
    for (int i = 0; i < 1000 && f.s.clients.in_partial == 0; i++) {
        fs_turn(&f);
    }
    CHECK_EQ_INT(f.s.clients.in_partial, sizeof half);
    reset_client(fd);
    for (int i = 0; i < 1000 && f.s.clients.n_conns > 0; i++) {
        fs_turn(&f);
    }
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    fs_turn(&f);
    CHECK_EQ_INT(f.s.clients.in_partial, 0);
    fs_stop(&f);
}

/* Queues `mib` frames of 1 MiB to c without flushing. */
static void queue_mib(struct conn *c, unsigned mib)
{
    size_t n = 1024u * 1024u;
    uint8_t *frame = calloc(1, n);

    CHECK(frame != NULL);
    for (unsigned i = 0; i < mib; i++) {
        conn_send_frame(c, frame, n);
    }
    free(frame);
}

/* More than 64 MiB queued for a client that does not read: the output is
 * dropped and the connection closed, without a byte of it sent; a
 * connection already closing is closed the same way. */
TEST(conn_output_past_max_is_cut, 60)
{
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;
    int fd2;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    queue_mib(c, 65);
    CHECK(conn_backlog(c) > 64u * 1024u * 1024u);
    conn_flush(c);
    CHECK_EQ_INT(c->state, CONN_CLOSING);
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK(fs_recv(&f, fd) == NULL);
    close(fd);

    fd2 = fs_connect(&f, &c);
    queue_mib(c, 65);
    conn_close(c, "test closes with output queued");
    conn_send_frame(c, (const uint8_t *)"x", 1); /* ignored once closing */
    conn_flush(c);
    CHECK(queue_empty(&f.s.clients.closing));
    CHECK(fs_recv(&f, fd2) == NULL);
    close(fd2);
    fs_stop(&f);
}

/* The sweep leaves a connection alone before its Hello, and with
 * --idle-timeout-ms 0 never closes it for idling. */
TEST(conn_deadlines_wait_for_hello, 20)
{
    const char *args[] = { "--idle-timeout-ms", "0" };
    struct fakeserver f;
    struct conn *c = NULL;
    int fd;

    fs_start(&f, args, 2);
    fd = fs_connect(&f, &c);
    conn_check_deadlines(c, c->active_ms + 86400000u);
    CHECK(fs_quiet(&f, fd, 5));
    fs_hello(&f, fd, 1);
    conn_check_deadlines(c, c->active_ms + 86400000u);
    CHECK(fs_quiet(&f, fd, 5));
    CHECK_EQ_INT(c->state, CONN_OPEN);
    close(fd);
    fs_stop(&f);
}

/* A frame left unfinished is cut at --frame-timeout-ms after its first
 * bytes, not before: PROTOCOL_ERROR, then the close. */
TEST(conn_unfinished_frame_times_out, 20)
{
    const char *args[] = { "--frame-timeout-ms", "500" };
    uint8_t half[6] = { 0, 0, 0, 40, 0x08, 0x01 };
    struct fakeserver f;
    struct conn *c = NULL;
    uint64_t begun;
    int fd;

    fs_start(&f, args, 2);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    CHECK_EQ_INT(write(fd, half, sizeof half), (ssize_t)sizeof half);
    for (int i = 0; i < 1000 && c->frame_begun_ms == 0; i++) {
        fs_turn(&f);
    }
    begun = c->frame_begun_ms;
    CHECK(begun != 0);
    conn_check_deadlines(c, begun + 500);
    CHECK(fs_quiet(&f, fd, 5));
    conn_check_deadlines(c, begun + 501);
    expect_error(&f, fd, 0, FLIP__STATUS__PROTOCOL_ERROR,
                 "frame not completed within 500 ms");
    CHECK(fs_recv(&f, fd) == NULL);
    close(fd);
    fs_stop(&f);
}

/* While the server shuts down (no per-turn hook any more), an answer is
 * handed to the socket at once. */
TEST(conn_shutdown_writes_at_once, 20)
{
    struct fakeserver f;
    struct conn *c = NULL;
    uint8_t b;
    int fd;

    fs_start(&f, NULL, 0);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    f.s.clients.flush_closed = 1;
    conn_send_error(c, 3, FLIP__STATUS__UNAVAILABLE, "shutting down");
    CHECK(queue_empty(&f.s.clients.dirty));
    CHECK_EQ_INT(recv(fd, &b, 1, MSG_PEEK), 1); /* no loop turn needed */
    expect_error(&f, fd, 3, FLIP__STATUS__UNAVAILABLE, "shutting down");
    close(fd);
    fs_stop(&f);
}

/* An error answer that itself cannot be encoded within --max-frame (its
 * message is longer than a frame) closes the connection: there is nothing
 * smaller to say. Closing again, or an op finishing, changes nothing. */
TEST(conn_unencodable_error_closes, 20)
{
    const char *args[] = { "--max-frame", "131072" };
    struct fakeserver f;
    struct conn *c = NULL;
    char *msg = malloc(140001);
    int fd;

    CHECK(msg != NULL);
    memset(msg, 'm', 140000);
    msg[140000] = '\0';
    fs_start(&f, args, 2);
    fd = fs_connect(&f, &c);
    fs_hello(&f, fd, 1);
    conn_send_error(c, 3, FLIP__STATUS__INTERNAL, msg);
    CHECK_EQ_INT(c->state, CONN_CLOSING);
    conn_close(c, "again");
    conn_ops_changed(c);
    conn_check_deadlines(c, c->active_ms + 86400000u);
    CHECK(fs_recv(&f, fd) == NULL);
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    close(fd);
    fs_stop(&f);
    free(msg);
}

/* A client with small socket buffers, connected; *c is the server side,
 * whose send buffer is small too. */
static int slow_client(struct fakeserver *f, struct conn **c)
{
    int small = 32768;
    uv_os_fd_t sfd;
    int fd = fs_connect(f, c);

    CHECK_EQ_INT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
                 0);
    CHECK_EQ_INT(uv_fileno((uv_handle_t *)&(*c)->tcp, &sfd), 0);
    CHECK_EQ_INT(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
                 0);
    return fd;
}

static char *long_message(void)
{
    char *msg = malloc(30001);

    CHECK(msg != NULL);
    memset(msg, 'm', 30000);
    msg[30000] = '\0';
    return msg;
}

/* Queues 40 errors of 30 KB (ids from..from+39) and flushes: more than
 * the socket takes, so part of it waits in a write request. */
static void queue_long_answers(struct conn *c, uint64_t from, const char *msg)
{
    for (uint64_t id = from; id < from + 40; id++) {
        conn_send_error(c, id, FLIP__STATUS__UNAVAILABLE, msg);
    }
    conn_flush(c);
    CHECK(c->write_inflight);
}

/* A server and a slow client Hello'd, with answers 10..49 partly in a
 * write request; returns the client's fd. */
static int write_in_flight(struct fakeserver *f,
                           struct conn **c,
                           const char *msg)
{
    int fd;

    fs_start(f, NULL, 0);
    fd = slow_client(f, c);
    fs_hello(f, fd, 1);
    queue_long_answers(*c, 10, msg);
    return fd;
}

/* A connection closed while a write is in flight and more is queued
 * writes everything queued before the close, in order, then closes. */
TEST(conn_close_writes_the_queue_first, 30)
{
    struct fakeserver f;
    struct conn *c = NULL;
    char *msg = long_message();
    int fd;

    fd = write_in_flight(&f, &c, msg);
    queue_long_answers(c, 50, msg); /* queued behind the write */
    CHECK(buf_len(&c->out) > 0);
    conn_close(c, "test closes");
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    for (uint64_t id = 10; id < 90; id++) {
        expect_error(&f, fd, id, FLIP__STATUS__UNAVAILABLE, msg);
    }
    CHECK(fs_recv(&f, fd) == NULL);
    close(fd);
    fs_stop(&f);
    free(msg);
}

/* Aborted while a write is in flight: the write is cancelled, the
 * connection freed, the client sees the end of the stream. */
TEST(conn_abort_cancels_the_write, 30)
{
    struct fakeserver f;
    struct conn *c = NULL;
    char *msg = long_message();
    int fd;

    fd = write_in_flight(&f, &c, msg);
    conn_close(c, "test closes"); /* the client never reads: stuck */
    CHECK(!queue_empty(&f.s.clients.closing));
    conn_abort(c);
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK(fs_closed(&f, fd));
    fs_turn(&f);
    CHECK(queue_empty(&f.s.clients.closing));
    CHECK_EQ_INT(f.s.clients.out_req, 0);
    close(fd);
    fs_stop(&f);
    free(msg);
}

/* A client that resets while a write to it is in flight: the connection
 * is closed and its queued bytes no longer count against the node's
 * --output-budget. */
TEST(conn_reset_during_write_closes, 30)
{
    struct fakeserver f;
    struct conn *c = NULL;
    char *msg = long_message();
    int fd;

    fd = write_in_flight(&f, &c, msg);
    CHECK(f.s.clients.out_req > 0);
    reset_client(fd);
    for (int i = 0; i < 1000 && f.s.clients.n_conns > 0; i++) {
        fs_turn(&f);
    }
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    fs_turn(&f);
    CHECK(queue_empty(&f.s.clients.conns));
    CHECK(queue_empty(&f.s.clients.closing));
    CHECK_EQ_INT(f.s.clients.out_req, 0);

    /* a connection no longer read (shutdown) learns it from the write */
    fd = slow_client(&f, &c);
    fs_hello(&f, fd, 1);
    queue_long_answers(c, 10, msg);
    conn_stop_reading(c);
    reset_client(fd);
    for (int i = 0; i < 1000 && f.s.clients.n_conns > 0; i++) {
        fs_turn(&f);
    }
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK_EQ_INT(f.s.clients.out_req, 0);
    fs_stop(&f);
    free(msg);
}
