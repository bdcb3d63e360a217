/* A flipd server without raft over real sockets; see fakeserver.h. */
#include "fakeserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "runner.h"
#include "storage/store.h"
#include "tmpdir.h"

#define FS_WAIT_MS 5000

static void on_applied(void *data,
                       uint64_t index,
                       const Flipcmd__Command *cmd,
                       const struct fsm_outcome *outcomes)
{
    struct server *s = data;
    pubsub_on_applied(&s->pubsub, index, cmd, outcomes);
}

void fs_start(struct fakeserver *f, const char **args, int n)
{
    const char *base[] = { "flipd",
                           "--id",
                           "1",
                           "--data",
                           "unused",
                           "--client",
                           "127.0.0.1:1",
                           "--raft",
                           "127.0.0.1:2",
                           "--cluster",
                           "1=127.0.0.1:2/127.0.0.1:1" };
    char *argv[64];
    int argc = 0;
    char err[256];
    int help = 0;
    struct server *s = &f->s;
    struct sockaddr_in addr;
    int len = sizeof addr;

    memset(f, 0, sizeof *f);
    signal(SIGPIPE, SIG_IGN); /* as flipd: a write to a reset peer fails */
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        argv[argc++] = (char *)(uintptr_t)base[i];
    }
    CHECK(n >= 0 && n < 40);
    for (int i = 0; i < n; i++) {
        argv[argc++] = (char *)(uintptr_t)args[i];
    }
    if (config_parse(&s->config, argc, argv, &help, err, sizeof err) !=
        FLIP_OK) {
        fprintf(stderr, "  config: %s\n", err);
        CHECK(0);
    }
    CHECK_EQ_INT(uv_loop_init(&f->loop), 0);
    tmpdir_make(f->dir, sizeof f->dir);
    CHECK_EQ_INT(store_open(&f->store, f->dir, 64u * 1024u * 1024u), FLIP_OK);

    s->loop = &f->loop;
    server_clients_init(s);
    s->clients.max_conns = 64;
    /* the node: a store and an FSM; raft is never started (node_leader
     * reads no raft state while raft_closing is set) */
    s->node.loop = &f->loop;
    s->node.store = f->store;
    s->node.raft_closing = 1;
    fsm_init(&s->node.fsm, f->store);
    s->node.fsm.raft = &s->node.raft;
    s->node.fsm.observer.data = s;
    s->node.fsm.observer.on_applied = on_applied;
    server_pubsub_init(s);
    uv_timer_stop(&s->pubsub.tick); /* no heartbeats: tests are exact */

    CHECK_EQ_INT(uv_tcp_init(&f->loop, &s->listener), 0);
    CHECK_EQ_INT(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    CHECK_EQ_INT(uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0), 0);
    CHECK_EQ_INT(conn_set_listen(&s->clients, &s->listener, 16), 0);
    CHECK_EQ_INT(
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len), 0);
    f->port = ntohs(addr.sin_port);
}

void fs_stop(struct fakeserver *f)
{
    struct server *s = &f->s;

    s->clients.flush_closed = 1;
    while (!queue_empty(&s->clients.conns)) {
        conn_abort(
            CONTAINER_OF(queue_head(&s->clients.conns), struct conn, link));
    }
    while (!queue_empty(&s->clients.closing)) {
        conn_abort(
            CONTAINER_OF(queue_head(&s->clients.closing), struct conn, link));
    }
    pubsub_close(&s->pubsub);
    uv_close((uv_handle_t *)&s->listener, NULL);
    CHECK_EQ_INT(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&f->loop), 0);
    store_close(f->store);
    tmpdir_remove(f->dir);
}

void fs_flush(struct fakeserver *f)
{
    struct server *s = &f->s;

    pubsub_pump(&s->pubsub);
    while (!queue_empty(&s->clients.dirty)) {
        struct queue *e = queue_head(&s->clients.dirty);
        queue_remove(e);
        conn_flush(CONTAINER_OF(e, struct conn, dirty));
    }
    while (!queue_empty(&s->clients.dirty_bulk)) {
        struct queue *e = queue_head(&s->clients.dirty_bulk);
        queue_remove(e);
        conn_flush(CONTAINER_OF(e, struct conn, dirty));
    }
}

void fs_turn(struct fakeserver *f)
{
    fs_flush(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    fs_flush(f);
}

int fs_connect(struct fakeserver *f, struct conn **c)
{
    struct sockaddr_in addr;
    struct timeval tv = { 5, 0 };
    unsigned before = f->s.clients.n_conns;
    int64_t deadline = clock_mono_ms() + FS_WAIT_MS;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)f->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_EQ_INT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    while (f->s.clients.n_conns == before && clock_mono_ms() < deadline) {
        fs_turn(f);
    }
    CHECK_EQ_INT(f->s.clients.n_conns, before + 1);
    if (c != NULL) {
        *c = CONTAINER_OF(f->s.clients.conns.prev, struct conn, link);
    }
    return fd;
}

void fs_send(int fd, const Flip__Request *req)
{
    struct buf b;
    size_t off = 0;

    buf_init(&b);
    CHECK_EQ_INT(codec_request_encode(req, 64u * 1024u * 1024u, &b), FLIP_OK);
    while (off < buf_len(&b)) {
        ssize_t n = write(fd, buf_head(&b) + off, buf_len(&b) - off);
        CHECK(n > 0);
        off += (size_t)n;
    }
    buf_close(&b);
}

/* Reads exactly n bytes, turning the loop while none are there; 0 on EOF
 * or reset before them. */
static int read_full(struct fakeserver *f, int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    int64_t deadline = clock_mono_ms() + FS_WAIT_MS;

    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || errno != EAGAIN) {
            return 0;
        }
        CHECK(clock_mono_ms() < deadline);
        fs_turn(f);
    }
    return 1;
}

Flip__Response *fs_recv(struct fakeserver *f, int fd)
{
    uint8_t hdr[FRAME_HEADER];
    uint8_t *payload;
    uint32_t len;
    Flip__Response *r = NULL;

    if (!read_full(f, fd, hdr, sizeof hdr)) {
        return NULL;
    }
    len = buf_get_u32be(hdr);
    payload = malloc(len == 0 ? 1 : len);
    CHECK(payload != NULL);
    CHECK(read_full(f, fd, payload, len));
    CHECK_EQ_INT(codec_response_decode(payload, len, &r), FLIP_OK);
    free(payload);
    return r;
}

int fs_closed(struct fakeserver *f, int fd)
{
    uint8_t tmp[4096];
    int64_t deadline = clock_mono_ms() + FS_WAIT_MS;

    while (clock_mono_ms() < deadline) {
        ssize_t r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            return 1;
        }
        if (r < 0) {
            fs_turn(f);
        }
    }
    return 0;
}

int fs_quiet(struct fakeserver *f, int fd, int turns)
{
    uint8_t b;

    for (int i = 0; i < turns; i++) {
        fs_turn(f);
    }
    return recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

void fs_send_hello(int fd, uint64_t id)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Hello h = FLIP__HELLO__INIT;

    h.has_protocol_version = 1;
    h.protocol_version = CODEC_PROTOCOL_VERSION;
    req.has_id = 1;
    req.id = id;
    req.op_case = FLIP__REQUEST__OP_HELLO;
    req.hello = &h;
    fs_send(fd, &req);
}

void fs_expect_hello(struct fakeserver *f, int fd, uint64_t id)
{
    Flip__Response *r = fs_recv(f, fd);

    CHECK(r != NULL);
    CHECK(r->error == NULL);
    CHECK_EQ_INT(r->id, id);
    CHECK_EQ_INT(r->result_case, FLIP__RESPONSE__RESULT_HELLO);
    codec_response_free(r);
}

void fs_hello(struct fakeserver *f, int fd, uint64_t id)
{
    fs_send_hello(fd, id);
    fs_expect_hello(f, fd, id);
}

/* Applies `buf` (raft_malloc'd, freed here) at `index`. */
static void apply_buffer(struct fakeserver *f,
                         uint64_t index,
                         struct raft_buffer *buf)
{
    void *result = NULL;
    struct fsm *fsm = &f->s.node.fsm;

    f->s.node.raft.last_applied = index - 1;
    CHECK_EQ_INT(fsm->raft_fsm.apply(&fsm->raft_fsm, buf, &result), 0);
    f->s.node.raft.last_applied = index;
    raft_free(buf->base);
    CHECK_EQ_INT(store_applied_index(f->store), index);
}

void fs_apply(struct fakeserver *f,
              uint64_t index,
              const struct cluster_entry *e)
{
    struct raft_buffer buf;

    cluster_encode(e, &buf);
    apply_buffer(f, index, &buf);
}

void fs_apply_raw(struct fakeserver *f,
                  uint64_t index,
                  const void *bytes,
                  size_t len)
{
    struct raft_buffer buf = { raft_malloc(len), len };

    CHECK(buf.base != NULL);
    memcpy(buf.base, bytes, len);
    apply_buffer(f, index, &buf);
}

void fs_apply_one(struct fakeserver *f,
                  uint64_t index,
                  const char *key,
                  const char *value)
{
    struct cluster_change ch = { .key = key, .value = value };
    struct cluster_entry e = { .changes = &ch, .n = 1 };

    fs_apply(f, index, &e);
}

const Flip__Event *fs_event(const Flip__Response *r)
{
    CHECK(r != NULL);
    if (r->error != NULL) {
        fprintf(stderr, "  error %d: %s\n", r->error->status,
                r->error->message != NULL ? r->error->message : "");
    }
    CHECK_EQ_INT(r->result_case, FLIP__RESPONSE__RESULT_EVENT);
    return r->event;
}

Flip__Response *fs_expect_event(struct fakeserver *f,
                                int fd,
                                Flip__EventType type,
                                uint64_t revision)
{
    Flip__Response *r = fs_recv(f, fd);
    const Flip__Event *ev = fs_event(r);

    if (ev->type != type || ev->revision != revision) {
        fprintf(stderr, "  event type %d revision %llu, expected %d at %llu\n",
                ev->type, (unsigned long long)ev->revision, type,
                (unsigned long long)revision);
        CHECK(0);
    }
    return r;
}
