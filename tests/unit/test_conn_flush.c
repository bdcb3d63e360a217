/* server/conn.c's per-turn flush (conn_set_flush) over real sockets: every
 * interactive connection is written at once, bulk streams at most a bound
 * per call with the loop kept awake for the rest, and output a connection
 * queued before it became a stream goes with the stream's; connections are
 * accepted a bounded number per loop turn. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/fakeserver.h"
#include "../lib/runner.h"
#include "lib/heap.h"

enum
{
    N = 3
};

static const uint8_t bytes[8] = { 0, 0, 0, 4, 1, 2, 3, 4 };

/* N connections past Hello, each with 8 bytes queued, bulk or not. */
static void start(struct fakeserver *f, struct conn **cs, int *fds, int bulk)
{
    fs_start(f, NULL, 0);
    for (int i = 0; i < N; i++) {
        fds[i] = fs_connect(f, &cs[i]);
        fs_hello(f, fds[i], 1); /* turns the loop: flushes everything */
    }
    for (int i = 0; i < N; i++) {
        conn_set_bulk(cs[i], bulk);
        conn_send_frame(cs[i], bytes, sizeof bytes);
        CHECK_EQ_INT(conn_backlog(cs[i]), sizeof bytes);
    }
}

static void stop_n(struct fakeserver *f, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    conn_set_close(&f->s.clients);
    fs_stop(f);
}

static void stop(struct fakeserver *f, int *fds)
{
    stop_n(f, fds, N);
}

/* A flush call writes at most max_bulk bulk streams, oldest first, and
 * keeps the loop from sleeping until the next calls wrote the rest. A
 * fan-out to thousands of subscribers so takes several loop turns instead
 * of holding one (issue 9). */
TEST(conn_flush_bulk_bounded_per_turn, 20)
{
    struct fakeserver f;
    struct conn *cs[N];
    int fds[N];

    start(&f, cs, fds, 1);
    conn_set_flush(&f.s.clients, 2);
    CHECK_EQ_INT(conn_backlog(cs[0]), 0);
    CHECK_EQ_INT(conn_backlog(cs[1]), 0);
    CHECK_EQ_INT(conn_backlog(cs[2]), sizeof bytes);
    CHECK(uv_is_active((uv_handle_t *)&f.s.clients.more));
    conn_set_flush(&f.s.clients, 2);
    CHECK_EQ_INT(conn_backlog(cs[2]), 0);
    CHECK(!uv_is_active((uv_handle_t *)&f.s.clients.more));
    stop(&f, fds);
}

/* Interactive connections (a writer's answer) are never held back. */
TEST(conn_flush_interactive_all_at_once, 20)
{
    struct fakeserver f;
    struct conn *cs[N];
    int fds[N];

    start(&f, cs, fds, 0);
    conn_set_flush(&f.s.clients, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(conn_backlog(cs[i]), 0);
    }
    CHECK(!uv_is_active((uv_handle_t *)&f.s.clients.more));
    stop(&f, fds);
}

/* Output queued while a connection was interactive (a new subscriber's
 * Hello answer) moves with it when it turns bulk: thousands of new
 * subscribers in one turn are written under the bulk bound too. */
TEST(conn_flush_turned_bulk_is_bulk, 20)
{
    struct fakeserver f;
    struct conn *cs[N];
    int fds[N];

    start(&f, cs, fds, 0);
    conn_set_bulk(cs[1], 1);
    conn_set_flush(&f.s.clients, 0);
    CHECK_EQ_INT(conn_backlog(cs[0]), 0);
    CHECK_EQ_INT(conn_backlog(cs[1]), sizeof bytes);
    CHECK_EQ_INT(conn_backlog(cs[2]), 0);
    CHECK(uv_is_active((uv_handle_t *)&f.s.clients.more));
    conn_set_flush(&f.s.clients, 1);
    CHECK_EQ_INT(conn_backlog(cs[1]), 0);
    stop(&f, fds);
}

/* A client connected to the fake server's port; the server has not
 * accepted it yet. */
static int raw_connect(const struct fakeserver *f)
{
    struct sockaddr_in a = { 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Past max_accepts in one turn the next connection waits in the listener
 * (libuv stops watching it), and the next flush lets it in: a reconnect
 * storm of thousands is accepted a bounded number per turn (issue 9). */
TEST(conn_accepts_bounded_per_turn, 20)
{
    struct fakeserver f;
    int fds[N];

    fs_start(&f, NULL, 0);
    f.s.clients.max_accepts = 2;
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(&f);
    }
    for (int i = 0; i < 10; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    CHECK_EQ_INT(f.s.clients.n_conns, 2);
    CHECK(f.s.clients.held != NULL);
    conn_set_flush(&f.s.clients, 1);
    CHECK_EQ_INT(f.s.clients.n_conns, N);
    CHECK(f.s.clients.held == NULL);
    stop(&f, fds);
}

static int fail_once(void *data)
{
    int *left = data;

    return *left > 0 && (*left)-- > 0;
}

/* A connection whose struct cannot be allocated stays in the listener and
 * is let in by the next turn: dropping it without uv_accept left libuv
 * holding it with the listener unwatched, and the node never accepted a
 * client again (review of session 5). */
TEST(conn_accept_out_of_memory_retried, 20)
{
    struct fakeserver f;
    int fds[1];
    int left = 1;

    fs_start(&f, NULL, 0);
    flip_heap_set_fault(fail_once, &left);
    fds[0] = raw_connect(&f);
    for (int i = 0; i < 10 && left > 0; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    flip_heap_set_fault(NULL, NULL);
    CHECK_EQ_INT(left, 0);
    CHECK_EQ_INT(f.s.clients.n_conns, 0);
    CHECK(f.s.clients.held != NULL);
    conn_set_flush(&f.s.clients, 1);
    CHECK_EQ_INT(f.s.clients.n_conns, 1);
    CHECK(f.s.clients.held == NULL);
    stop_n(&f, fds, 1);
}
