/* The pre-bootstrap and cluster-identity checks (server/peercheck.c)
 * against fake members on 127.0.0.1: each fake accepts one connection,
 * records what it was asked, and answers as scripted (a Status naming a
 * cluster, garbage, nothing, a hang). The verdicts and their messages are
 * asserted exactly. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "server/config.h"
#include "server/peercheck.h"

#define CLUSTER_A "0123456789abcdef0123456789abcdef"
#define CLUSTER_B "fedcba9876543210fedcba9876543210"

enum mode
{
    M_STATUS,   /* Hello answer, then a Status answer (header split) */
    M_GARBAGE,  /* a frame that is no Response */
    M_CLOSE,    /* closes right after accepting */
    M_HELLO,    /* answers the Hello only, then closes */
    M_HANG,     /* accepts, reads, never answers */
    M_NOT_LIST, /* nothing listens on the port */
};

struct fake
{
    enum mode mode;
    const char *cluster_id; /* in the Status answer; NULL: none */
    uint64_t joined_id;     /* member listed as joined (0: none) */
    int no_joined_field;    /* member 1's "joined" absent, not false */
    uint64_t applied;
    int lfd;
    int port;
    pthread_t th;
    int accepted;
    int n_req;
    Flip__Request__OpCase ops[4];
};

/* Reads requests until `want` were decoded, EOF or 5 s. */
static void read_requests(struct fake *f, int fd, int want)
{
    struct buf in;
    int64_t deadline = clock_mono_ms() + 5000;

    buf_init(&in);
    while (f->n_req < want && clock_mono_ms() < deadline) {
        const uint8_t *p = NULL;
        size_t len = 0;
        struct pollfd pf = { fd, POLLIN, 0 };
        ssize_t k;

        if (frame_next(&in, FRAME_MAX_DEFAULT, &p, &len) == FLIP_OK) {
            Flip__Request *req = NULL;
            CHECK_EQ_INT(codec_request_decode(p, len, &req), FLIP_OK);
            if (f->n_req < 4) {
                f->ops[f->n_req] = req->op_case;
            }
            f->n_req++;
            codec_request_free(req);
            buf_consume(&in, FRAME_HEADER + len);
            continue;
        }
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        CHECK_EQ_INT(buf_reserve(&in, 4096), FLIP_OK);
        k = recv(fd, buf_tail(&in), 4096, 0);
        if (k <= 0) {
            break;
        }
        buf_commit(&in, (size_t)k);
    }
    buf_close(&in);
}

static void send_response(int fd, const Flip__Response *resp, int split)
{
    struct buf out;
    size_t n;

    buf_init(&out);
    CHECK_EQ_INT(codec_response_encode(resp, FRAME_MAX_DEFAULT, &out), FLIP_OK);
    n = buf_len(&out);
    if (split) {
        /* half a header first: the reader must wait for the rest */
        CHECK(send(fd, buf_head(&out), 2, MSG_NOSIGNAL) == 2);
        usleep(50 * 1000);
        CHECK(send(fd, buf_head(&out) + 2, n - 2, MSG_NOSIGNAL) ==
              (ssize_t)(n - 2));
    } else {
        CHECK(send(fd, buf_head(&out), n, MSG_NOSIGNAL) == (ssize_t)n);
    }
    buf_close(&out);
}

static void answer(struct fake *f, int fd)
{
    Flip__Response resp = FLIP__RESPONSE__INIT;
    Flip__HelloResult hr = FLIP__HELLO_RESULT__INIT;
    Flip__StatusResult st = FLIP__STATUS_RESULT__INIT;
    Flip__Member m1 = FLIP__MEMBER__INIT;
    Flip__Member m2 = FLIP__MEMBER__INIT;
    Flip__Member *members[2] = { &m1, &m2 };

    resp.has_id = 1;
    resp.id = 1;
    resp.result_case = FLIP__RESPONSE__RESULT_HELLO;
    resp.hello = &hr;
    send_response(fd, &resp, 0);
    if (f->mode == M_HELLO) {
        return;
    }
    /* member 1 (the node checking): joined only if scripted (else the
     * field is false or absent); member 9 joined */
    m1.has_id = 1;
    m1.id = 1;
    m1.has_joined = !f->no_joined_field;
    m1.joined = f->joined_id == 1;
    m2.has_id = 1;
    m2.id = 9;
    m2.has_joined = 1;
    m2.joined = 1;
    st.n_members = 2;
    st.members = members;
    st.cluster_id = (char *)(uintptr_t)f->cluster_id;
    st.has_applied_revision = 1;
    st.applied_revision = f->applied;
    resp.id = 2;
    resp.result_case = FLIP__RESPONSE__RESULT_STATUS;
    resp.status = &st;
    send_response(fd, &resp, 1);
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    struct pollfd pf = { f->lfd, POLLIN, 0 };
    int fd;

    if (poll(&pf, 1, 5000) != 1) {
        return NULL;
    }
    fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    f->accepted = 1;
    switch (f->mode) {
    case M_STATUS:
    case M_HELLO:
        read_requests(f, fd, 2);
        answer(f, fd);
        break;
    case M_GARBAGE: {
        static const uint8_t junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
        read_requests(f, fd, 2);
        CHECK(send(fd, junk, sizeof junk, MSG_NOSIGNAL) == sizeof junk);
        break;
    }
    case M_HANG:
        read_requests(f, fd, 2);
        read_requests(f, fd, 3); /* until the checker gives up and closes */
        break;
    default:
        break;
    }
    close(fd);
    return NULL;
}

/* Binds 127.0.0.1:0; listens unless the fake is M_NOT_LIST (then the
 * port is closed again: connecting is refused). */
static void fake_start(struct fake *f)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(f->lfd >= 0);
    CHECK(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == 0);
    f->port = ntohs(sa.sin_port);
    if (f->mode == M_NOT_LIST) {
        close(f->lfd);
        f->lfd = -1;
        return;
    }
    CHECK(listen(f->lfd, 4) == 0);
    CHECK(pthread_create(&f->th, NULL, fake_run, f) == 0);
}

static void fake_join(struct fake *f)
{
    if (f->mode == M_NOT_LIST) {
        return;
    }
    CHECK(pthread_join(f->th, NULL) == 0);
    close(f->lfd);
}

static void check_msg(const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "  got  %s\n  want %s\n", got, want);
    }
    CHECK(strcmp(got, want) == 0);
}

/* Node 1 (this one, data in /srv/flip) and one member per fake, ids
 * 2, 3, ... */
static void make_config(struct config *c, struct fake *fakes, int n)
{
    memset(c, 0, sizeof *c);
    c->id = 1;
    snprintf(c->data_dir, sizeof c->data_dir, "/srv/flip");
    c->n_members = (unsigned)n + 1;
    c->members[0].id = 1;
    snprintf(c->members[0].client_address, NODE_ADDR_MAX, "127.0.0.1:1");
    for (int i = 0; i < n; i++) {
        c->members[i + 1].id = (uint64_t)i + 2;
        snprintf(c->members[i + 1].client_address, NODE_ADDR_MAX,
                 "127.0.0.1:%d", fakes[i].port);
    }
}

static void start_all(struct fake *f, int n)
{
    for (int i = 0; i < n; i++) {
        fake_start(&f[i]);
    }
}

static void join_all(struct fake *f, int n)
{
    for (int i = 0; i < n; i++) {
        fake_join(&f[i]);
    }
}

/* A member that holds a cluster and lists this node as joined refuses the
 * bootstrap, named with its revision; it was asked Hello, then Status. */
TEST(peercheck_refuses_wiped_member, 20)
{
    struct fake f[1] = { { .mode = M_STATUS,
                           .cluster_id = CLUSTER_A,
                           .joined_id = 1,
                           .applied = 42 } };
    struct config c;
    char err[1024] = "";
    char want[1024];

    start_all(f, 1);
    make_config(&c, f, 1);
    CHECK_EQ_INT(peercheck_run(&c, err, sizeof err), FLIP_INVALID);
    join_all(f, 1);
    snprintf(want, sizeof want,
             "refusing to bootstrap: the data directory /srv/flip is empty, "
             "but node 2 (127.0.0.1:%d) holds cluster " CLUSTER_A
             " (revision 42), which this member already held data of. "
             "Restore this node's backup into /srv/flip, or replace the "
             "member (deploy/README.md, \"Replacing a node\")",
             f[0].port);
    check_msg(err, want);
    CHECK_EQ_INT(f[0].n_req, 2);
    CHECK_EQ_INT(f[0].ops[0], FLIP__REQUEST__OP_HELLO);
    CHECK_EQ_INT(f[0].ops[1], FLIP__REQUEST__OP_STATUS);
}

/* Bootstraps when no answer holds this node: a cluster that never
 * recorded it (late first start; "joined" false or absent), a malformed cluster
 * id, garbage, a closed connection, a Hello-only answer, a refused port, an
 * address that is no IPv4 HOST:PORT. Every member was still asked. */
TEST(peercheck_bootstraps_without_evidence, 20)
{
    struct fake f[7] = {
        { .mode = M_STATUS, .cluster_id = CLUSTER_A, .joined_id = 0 },
        { .mode = M_STATUS, .cluster_id = CLUSTER_A, .no_joined_field = 1 },
        { .mode = M_STATUS, .cluster_id = "NOT-A-CLUSTER-ID", .joined_id = 1 },
        { .mode = M_GARBAGE },
        { .mode = M_CLOSE },
        { .mode = M_HELLO, .cluster_id = CLUSTER_A, .joined_id = 1 },
        { .mode = M_NOT_LIST },
    };
    struct config c;
    char err[256] = "untouched";

    start_all(f, 7);
    make_config(&c, f, 7);
    c.n_members = 9;
    c.members[8].id = 9;
    snprintf(c.members[8].client_address, NODE_ADDR_MAX, "no-address");
    CHECK_EQ_INT(peercheck_run(&c, err, sizeof err), FLIP_OK);
    join_all(f, 7);
    CHECK(strcmp(err, "untouched") == 0);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(f[i].accepted, 1);
    }
    CHECK_EQ_INT(f[0].n_req, 2);
    CHECK_EQ_INT(f[1].n_req, 2);
    CHECK_EQ_INT(f[2].n_req, 2);
    CHECK_EQ_INT(f[5].n_req, 2);
}

/* One member that accepts and never answers costs only its share of the
 * deadline: the member after it is still asked, and its answer refuses. */
TEST(peercheck_hung_member_does_not_hide_others, 20)
{
    struct fake f[2] = {
        { .mode = M_HANG },
        { .mode = M_STATUS,
          .cluster_id = CLUSTER_B,
          .joined_id = 1,
          .applied = 7 },
    };
    struct config c;
    char err[1024] = "";
    int64_t t0;

    start_all(f, 2);
    make_config(&c, f, 2);
    t0 = clock_mono_ms();
    CHECK_EQ_INT(peercheck_run(&c, err, sizeof err), FLIP_INVALID);
    /* not a timing assertion: the whole check is bounded by design */
    CHECK(clock_mono_ms() - t0 < 60000);
    join_all(f, 2);
    CHECK_EQ_INT(f[0].accepted, 1);
    CHECK_EQ_INT(f[1].n_req, 2);
    CHECK(strstr(err, "but node 3 (127.0.0.1:") != NULL);
    CHECK(strstr(err, "holds cluster " CLUSTER_B " (revision 7)") != NULL);
}

/* peercheck_cluster: no own id asks nobody; a member of the same cluster
 * or of none yet is fine; a member of another cluster refuses the start
 * with both ids named. */
TEST(peercheck_cluster_identity, 20)
{
    struct config c;
    char err[1024] = "untouched";
    char want[1024];

    {
        struct fake f[1] = { { .mode = M_STATUS, .cluster_id = CLUSTER_A } };
        start_all(f, 1);
        make_config(&c, f, 1);
        CHECK_EQ_INT(peercheck_cluster(&c, NULL, err, sizeof err), FLIP_OK);
        CHECK_EQ_INT(peercheck_cluster(&c, "", err, sizeof err), FLIP_OK);
        CHECK_EQ_INT(f[0].accepted, 0);
        /* now the fake is asked: same cluster as ours */
        CHECK_EQ_INT(peercheck_cluster(&c, CLUSTER_A, err, sizeof err),
                     FLIP_OK);
        join_all(f, 1);
        CHECK_EQ_INT(f[0].n_req, 2);
        CHECK(strcmp(err, "untouched") == 0);
    }
    {
        struct fake f[2] = {
            { .mode = M_STATUS, .cluster_id = NULL },
            { .mode = M_STATUS, .cluster_id = CLUSTER_B },
        };
        start_all(f, 2);
        make_config(&c, f, 2);
        CHECK_EQ_INT(peercheck_cluster(&c, CLUSTER_A, err, sizeof err),
                     FLIP_INVALID);
        join_all(f, 2);
        CHECK_EQ_INT(f[0].n_req, 2);
        snprintf(want, sizeof want,
                 "refusing to start: the data directory /srv/flip holds "
                 "cluster " CLUSTER_A
                 ", but node 3 (127.0.0.1:%d) belongs "
                 "to cluster " CLUSTER_B
                 ": this directory is another "
                 "cluster's (an old backup, or a cluster that was rebuilt). "
                 "Restore a backup of this member taken from cluster " CLUSTER_B
                 ", or replace the member (deploy/README.md, \"Replacing a "
                 "node\")",
                 f[1].port);
        check_msg(err, want);
    }
}

/* A hand-made config that does not list this node, or lists nobody: every
 * listed member is still asked (each within its share of the deadline),
 * and with none the check passes at once. */
TEST(peercheck_config_without_self, 20)
{
    struct fake f[2] = {
        { .mode = M_STATUS, .cluster_id = CLUSTER_A },
        { .mode = M_STATUS, .cluster_id = CLUSTER_A },
    };
    struct config c;
    char err[256] = "untouched";

    start_all(f, 2);
    make_config(&c, f, 2);
    /* drop member 1 (this node) from the list */
    memmove(&c.members[0], &c.members[1], 2 * sizeof c.members[0]);
    c.n_members = 2;
    CHECK_EQ_INT(peercheck_cluster(&c, CLUSTER_A, err, sizeof err), FLIP_OK);
    join_all(f, 2);
    CHECK_EQ_INT(f[0].n_req, 2);
    CHECK_EQ_INT(f[1].n_req, 2);
    c.n_members = 0;
    CHECK_EQ_INT(peercheck_run(&c, err, sizeof err), FLIP_OK);
    CHECK(strcmp(err, "untouched") == 0);
}

/* Out of descriptors (RLIMIT_NOFILE reached): no member can be asked, so
 * none answers and the node bootstraps; nothing is leaked or crashed. */
TEST(peercheck_no_descriptor_left, 20)
{
    struct fake f[1] = { { .mode = M_NOT_LIST } };
    struct config c;
    char err[256] = "untouched";
    struct rlimit rl;
    struct rlimit saved;
    int fd;

    start_all(f, 1);
    make_config(&c, f, 1);
    fd = dup(0);
    CHECK(fd >= 0);
    close(fd);
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    saved = rl;
    rl.rlim_cur = (rlim_t)fd; /* the lowest free descriptor is now too high */
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHECK(socket(AF_INET, SOCK_STREAM, 0) < 0 && errno == EMFILE);
    CHECK_EQ_INT(peercheck_run(&c, err, sizeof err), FLIP_OK);
    CHECK(strcmp(err, "untouched") ==
          0); /* back, so that a coverage build can write its counters */
    CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
}
