/* raft/peertcp.c: both ends of a raft peer connection get TCP_NODELAY and
 * TCP_USER_TIMEOUT, and raft_uv's connect request comes back to it as it
 * left (req->data, the callback), on success and on failure. Real raft_uv_tcp
 * transports over 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "../lib/runner.h"
#include "raft/peertcp.h"

struct seen
{
    int accepted;
    int connected;
    int connect_status;
    void *connect_data;
    int accepted_nodelay;
    int connected_nodelay;
    uv_stream_t *streams[2];
    int n_streams;
};

static struct seen seen;

#define USER_TIMEOUT_MS 2345u

/* 1 if the stream has TCP_NODELAY and the wrapper's user timeout. */
static int nodelay_of(uv_stream_t *s)
{
    uv_os_fd_t fd;
    int on = 0;
    unsigned timeout = 0;
    socklen_t len = sizeof on;
    socklen_t tlen = sizeof timeout;

    CHECK_EQ_INT(uv_fileno((uv_handle_t *)s, &fd), 0);
    CHECK_EQ_INT(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    CHECK_EQ_INT(getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, &tlen),
                 0);
    return on != 0 && timeout == USER_TIMEOUT_MS;
}

static void on_accept(struct raft_uv_transport *t,
                      raft_id id,
                      const char *address,
                      struct uv_stream_s *stream)
{
    (void)t;
    CHECK_EQ_INT(id, 2);
    CHECK(strcmp(address, "127.0.0.1:9") == 0);
    seen.accepted++;
    seen.accepted_nodelay = nodelay_of(stream);
    seen.streams[seen.n_streams++] = stream;
}

static void on_connect(struct raft_uv_connect *req,
                       struct uv_stream_s *stream,
                       int status)
{
    seen.connected++;
    seen.connect_status = status;
    seen.connect_data = req->data;
    if (status == 0) {
        seen.connected_nodelay = nodelay_of(stream);
        seen.streams[seen.n_streams++] = stream;
    }
}

/* A port nobody listens on right now (bound, read, closed). */
static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0);
    CHECK_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ_INT(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    for (int i = 0; i < 10000 && *flag == 0; i++) { /* 10 s at most */
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void stream_closed(uv_handle_t *h)
{
    raft_free(h);
}

static void transport_closed(struct raft_uv_transport *t)
{
    (void)t;
}

static void start(struct peertcp *p, uv_loop_t *loop, raft_id id, const char *a)
{
    memset(p, 0, sizeof *p);
    p->transport.version = 1;
    CHECK_EQ_INT(raft_uv_tcp_init(&p->transport, loop), 0);
    peertcp_wrap(p, loop, USER_TIMEOUT_MS);
    CHECK_EQ_INT(p->transport.init(&p->transport, id, a), 0);
}

static void stop(struct peertcp *p, uv_loop_t *loop)
{
    p->transport.close(&p->transport, transport_closed);
    uv_run(loop, UV_RUN_NOWAIT);
    raft_uv_tcp_close(&p->transport);
}

/* Closes the streams seen, both transports and the loop. */
static void finish(uv_loop_t *loop,
                   struct peertcp *client,
                   struct peertcp *server)
{
    for (int i = 0; i < seen.n_streams; i++) {
        uv_close((uv_handle_t *)seen.streams[i], stream_closed);
    }
    stop(client, loop);
    stop(server, loop);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

TEST(peertcp_both_ends_get_nodelay, 30)
{
    uv_loop_t loop;
    struct peertcp server;
    struct peertcp client;
    struct raft_uv_connect req;
    char addr[32];
    int marker;

    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    start(&server, &loop, 1, addr);
    CHECK_EQ_INT(server.transport.listen(&server.transport, on_accept), 0);
    start(&client, &loop, 2, "127.0.0.1:9");

    req.data = &marker;
    CHECK_EQ_INT(
        client.transport.connect(&client.transport, &req, 1, addr, on_connect),
        0);
    CHECK(req.data != &marker); /* parked while the connect runs */
    run_until(&loop, &seen.connected);
    run_until(&loop, &seen.accepted);
    CHECK_EQ_INT(seen.connect_status, 0);
    CHECK(seen.connect_data == &marker);
    CHECK(req.data == &marker);
    CHECK_EQ_INT(seen.connected_nodelay, 1);
    CHECK_EQ_INT(seen.accepted_nodelay, 1);
    CHECK_EQ_INT(client.n_nodelay, 1);
    CHECK_EQ_INT(server.n_nodelay, 1);

    finish(&loop, &client, &server);
}

TEST(peertcp_failed_connect_comes_back_unchanged, 30)
{
    uv_loop_t loop;
    struct peertcp client;
    struct raft_uv_connect req;
    char addr[32];
    int marker;

    memset(&seen, 0, sizeof seen);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    start(&client, &loop, 2, "127.0.0.1:9");
    req.data = &marker;
    CHECK_EQ_INT(
        client.transport.connect(&client.transport, &req, 1, addr, on_connect),
        0);
    run_until(&loop, &seen.connected);
    CHECK_EQ_INT(seen.connected, 1);
    CHECK(seen.connect_status != 0);
    CHECK(seen.connect_data == &marker);
    CHECK_EQ_INT(client.n_nodelay, 0);
    stop(&client, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* The user timeout follows the election timeout, never under 2 s. */
TEST(peertcp_user_timeout_follows_the_election_timeout, 5)
{
    CHECK_EQ_INT(peertcp_user_timeout_ms(150), 2000);
    CHECK_EQ_INT(peertcp_user_timeout_ms(500), 2000);
    CHECK_EQ_INT(peertcp_user_timeout_ms(1000), 4000);
}

/* A raft_uv retry delay: a tenth of the election timeout, at least a
 * heartbeat, at most raft_uv's own 1 s. */
TEST(peertcp_retry_delay_follows_the_timeouts, 5)
{
    CHECK_EQ_INT(peertcp_retry_delay_ms(10, 500), 50);
    CHECK_EQ_INT(peertcp_retry_delay_ms(30, 300), 30);
    CHECK_EQ_INT(peertcp_retry_delay_ms(100, 600000), 1000);
}

static raft_id reached_id;
static unsigned reached_refused;
static int reached_calls;

static void on_reached(struct peertcp *p,
                       raft_id id,
                       unsigned refused,
                       uint64_t waited_ms)
{
    (void)p;
    (void)waited_ms;
    reached_id = id;
    reached_refused = refused;
    reached_calls++;
}

/* Connects a peer refused are counted, and the first one it accepts
 * reports them once (the leader's log line for a restarted follower). */
TEST(peertcp_refused_connects_reported_when_reached, 30)
{
    uv_loop_t loop;
    struct peertcp server;
    struct peertcp client;
    struct raft_uv_connect req;
    char addr[32];

    memset(&seen, 0, sizeof seen);
    reached_calls = 0;
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    start(&client, &loop, 2, "127.0.0.1:9");
    client.reached_cb = on_reached;
    for (int i = 1; i <= 2; i++) {
        CHECK_EQ_INT(client.transport.connect(&client.transport, &req, 1, addr,
                                              on_connect),
                     0);
        run_until(&loop, &seen.connected);
        CHECK(seen.connect_status != 0);
        seen.connected = 0;
        CHECK_EQ_INT((int)client.n_refused, i);
    }
    CHECK_EQ_INT(reached_calls, 0);
    start(&server, &loop, 1, addr);
    CHECK_EQ_INT(server.transport.listen(&server.transport, on_accept), 0);
    CHECK_EQ_INT(
        client.transport.connect(&client.transport, &req, 1, addr, on_connect),
        0);
    run_until(&loop, &seen.connected);
    run_until(&loop, &seen.accepted);
    CHECK_EQ_INT(seen.connect_status, 0);
    CHECK_EQ_INT(reached_calls, 1);
    CHECK_EQ_INT((int)reached_id, 1);
    CHECK_EQ_INT((int)reached_refused, 2);

    finish(&loop, &client, &server);
}
