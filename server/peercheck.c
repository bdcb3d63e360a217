/* The pre-bootstrap check; see peercheck.h. Runs before the loop starts,
 * so it uses plain blocking-with-deadline sockets. */
#include "peercheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/log.h"
#include "proto/codec.h"
#include "proto/frame.h"

/* What one member said. */
struct answer
{
    int answered;
    char cluster_id[IDENTITY_ID_LEN + 1];
    int self_joined;
    uint64_t applied;
};

/* Waits for `events` on fd until `deadline`; 1 ready, 0 not. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = { fd, events, 0 };
    int64_t left;

    for (;;) {
        left = deadline - clock_mono_ms();
        if (left <= 0) {
            return 0;
        }
        int rc = poll(&p, 1, (int)left);
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            return 0;
        }
    }
}

static int dial(const char *address, int64_t deadline)
{
    char host[NODE_ADDR_MAX];
    struct sockaddr_in sa;
    int port = 0;
    int err = 0;
    socklen_t elen = sizeof err;
    int fd;

    if (config_split_address(address, host, sizeof host, &port) != FLIP_OK) {
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    if (!wait_fd(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
            return FLIP_IOERR;
        } else if (!wait_fd(fd, POLLOUT, deadline)) {
            return FLIP_TIMEOUT;
        }
    }
    return FLIP_OK;
}

static void take_status(const Flip__StatusResult *st,
                        uint64_t self,
                        struct answer *a)
{
    a->answered = 1;
    if (st->cluster_id != NULL && identity_valid(st->cluster_id)) {
        snprintf(a->cluster_id, sizeof a->cluster_id, "%s", st->cluster_id);
    }
    a->applied = st->applied_revision;
    for (size_t i = 0; i < st->n_members; i++) {
        if (st->members[i]->id == self && st->members[i]->has_joined &&
            st->members[i]->joined) {
            a->self_joined = 1;
        }
    }
}

/* Hello + Status to one member; fills *a when it answers in time. */
static void ask(const char *address,
                uint64_t self,
                int64_t deadline,
                struct answer *a)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Hello hello = FLIP__HELLO__INIT;
    Flip__StatusRequest sreq = FLIP__STATUS_REQUEST__INIT;
    struct buf io;
    int fd = dial(address, deadline);

    memset(a, 0, sizeof *a);
    if (fd < 0) {
        return;
    }
    buf_init(&io);
    req.has_id = 1;
    req.id = 1;
    req.op_case = FLIP__REQUEST__OP_HELLO;
    req.hello = &hello;
    hello.has_protocol_version = 1;
    hello.protocol_version = CODEC_PROTOCOL_VERSION;
    hello.client_name = (char *)"flipd-peercheck";
    if (codec_request_encode(&req, FRAME_MAX_DEFAULT, &io) != FLIP_OK) {
        goto out;
    }
    req.id = 2;
    req.op_case = FLIP__REQUEST__OP_STATUS;
    req.status = &sreq;
    if (codec_request_encode(&req, FRAME_MAX_DEFAULT, &io) != FLIP_OK ||
        send_all(fd, buf_head(&io), buf_len(&io), deadline) != FLIP_OK) {
        goto out;
    }
    buf_reset(&io);
    while (!a->answered) {
        const uint8_t *payload = NULL;
        size_t len = 0;
        Flip__Response *resp = NULL;
        int rv = frame_next(&io, FRAME_MAX_DEFAULT, &payload, &len);

        if (rv == FLIP_OK) {
            if (codec_response_decode(payload, len, &resp) != FLIP_OK) {
                break;
            }
            if (resp->result_case == FLIP__RESPONSE__RESULT_STATUS &&
                resp->status != NULL) {
                take_status(resp->status, self, a);
            }
            codec_response_free(resp);
            buf_consume(&io, FRAME_HEADER + len);
            continue;
        }
        if (rv != FLIP_AGAIN || !wait_fd(fd, POLLIN, deadline) ||
            buf_reserve(&io, 4096) != FLIP_OK) {
            break;
        }
        ssize_t k = recv(fd, buf_tail(&io), 4096, 0);
        if (k <= 0 && !(k < 0 && (errno == EAGAIN || errno == EINTR))) {
            break;
        }
        if (k > 0) {
            buf_commit(&io, (size_t)k);
        }
    }
out:
    buf_close(&io);
    close(fd);
}

/* Asks every other member, each within an even share of what is left of
 * PEERCHECK_MS (one hung peer, which accepts but never answers, cannot
 * leave the others unasked); calls judge on each answer and stops at the
 * first non-zero verdict. */
static int ask_all(const struct config *c,
                   int (*judge)(const struct config *c,
                                const struct node_member *m,
                                const struct answer *a,
                                const char *own,
                                char *errmsg,
                                size_t len),
                   const char *own,
                   char *errmsg,
                   size_t len,
                   unsigned *answered)
{
    int64_t deadline = clock_mono_ms() + PEERCHECK_MS;
    unsigned left = c->n_members > 0 ? c->n_members - 1 : 0;

    *answered = 0;
    for (unsigned i = 0; i < c->n_members; i++) {
        const struct node_member *m = &c->members[i];
        struct answer a;
        int64_t now = clock_mono_ms();
        int rv;

        if (m->id == c->id) {
            continue;
        }
        ask(m->client_address, c->id,
            now + (deadline - now) / (int64_t)(left > 0 ? left : 1), &a);
        left--;
        if (!a.answered) {
            continue;
        }
        (*answered)++;
        rv = judge(c, m, &a, own, errmsg, len);
        if (rv != FLIP_OK) {
            return rv;
        }
    }
    return FLIP_OK;
}

static int judge_empty(const struct config *c,
                       const struct node_member *m,
                       const struct answer *a,
                       const char *own,
                       char *errmsg,
                       size_t len)
{
    (void)own;
    if (a->cluster_id[0] != '\0' && a->self_joined) {
        snprintf(errmsg, len,
                 "refusing to bootstrap: the data directory %s is empty, "
                 "but node %llu (%s) holds cluster %s (revision %llu), "
                 "which this member already held data of. Restore this "
                 "node's backup into %s, or replace the member "
                 "(deploy/README.md, \"Replacing a node\")",
                 c->data_dir, (unsigned long long)m->id, m->client_address,
                 a->cluster_id, (unsigned long long)a->applied, c->data_dir);
        return FLIP_INVALID;
    }
    if (a->cluster_id[0] != '\0') {
        flip_infof(
            "peercheck: node %llu holds cluster %s, which never "
            "recorded this node: a late first start, bootstrapping",
            (unsigned long long)m->id, a->cluster_id);
    }
    return FLIP_OK;
}

int peercheck_run(const struct config *c, char *errmsg, size_t len)
{
    unsigned answered = 0;
    int rv = ask_all(c, judge_empty, NULL, errmsg, len, &answered);

    if (rv == FLIP_OK) {
        flip_infof(
            "peercheck: empty data directory; %u of %u other "
            "members answered, none holds data of this node: "
            "bootstrapping",
            answered, c->n_members - 1);
    }
    return rv;
}

static int judge_cluster(const struct config *c,
                         const struct node_member *m,
                         const struct answer *a,
                         const char *own,
                         char *errmsg,
                         size_t len)
{
    if (a->cluster_id[0] == '\0' || strcmp(a->cluster_id, own) == 0) {
        return FLIP_OK;
    }
    snprintf(errmsg, len,
             "refusing to start: the data directory %s holds cluster %s, "
             "but node %llu (%s) belongs to cluster %s: this directory is "
             "another cluster's (an old backup, or a cluster that was "
             "rebuilt). Restore a backup of this member taken from cluster "
             "%s, or replace the member (deploy/README.md, \"Replacing a "
             "node\")",
             c->data_dir, own, (unsigned long long)m->id, m->client_address,
             a->cluster_id, a->cluster_id);
    return FLIP_INVALID;
}

int peercheck_cluster(const struct config *c,
                      const char *own,
                      char *errmsg,
                      size_t len)
{
    unsigned answered = 0;

    if (own == NULL || own[0] == '\0') {
        return FLIP_OK; /* not committed yet, or an older data directory */
    }
    return ask_all(c, judge_cluster, own, errmsg, len, &answered);
}
