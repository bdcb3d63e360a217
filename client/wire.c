/* One blocking client connection; see wire.h.
 *
 * Happy path: wire_open resolves the address, connects without blocking
 * (poll for writability, then SO_ERROR), sets TCP_NODELAY, sends Hello and
 * reads HelloResult; wire_call then writes one framed request and reads
 * frames until one whole response is buffered.
 *
 * Failure modes and what they leave behind:
 *   - resolve/connect fails or times out: every resolved address is tried
 *     within the deadline; the connection stays closed.
 *   - the server closed an idle connection (restart, idle timeout): the
 *     socket is readable before we send anything; wire_open notices and
 *     reconnects, so a stale socket never swallows a write.
 *   - error or timeout while writing or reading: the stream position is
 *     unknown, so the connection is closed; the caller learns through
 *     `sent` whether the server may have seen the whole request.
 *   - a frame longer than the frame limit or one that does not decode:
 *     FLIP_TOOBIG / FLIP_PROTO and close (the stream cannot resync). */
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "proto/status.h"

#define WIRE_READ_CHUNK (64u * 1024u)

/* poll() timeout for an absolute deadline: 0 once it has passed. */
static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();

    if (left <= 0) {
        return 0;
    }
    return left > 3600000 ? 3600000 : (int)left;
}

static void set_err(struct wire *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct wire *w, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(w->errmsg, sizeof w->errmsg, "%s: %s", w->addr, what);
}

/* EAGAIN and EWOULDBLOCK are one value on Linux, two on some systems. */
static int would_block(int err)
{
#if EAGAIN == EWOULDBLOCK
    return err == EAGAIN;
#else
    return err == EAGAIN || err == EWOULDBLOCK;
#endif
}

/* errno text without strerror's shared static buffer. */
static const char *errno_text(int err, char *buf, size_t len)
{
    if (strerror_r(err, buf, len) != 0) {
        snprintf(buf, len, "errno %d", err);
    }
    return buf;
}

static void set_errno(struct wire *w, const char *what, int err)
{
    char text[128];

    set_err(w, "%s: %s", what, errno_text(err, text, sizeof text));
}

int wire_addr_split(const char *addr,
                    char *host,
                    size_t host_len,
                    char *port,
                    size_t port_len)
{
    const char *colon;
    const char *h = addr;
    size_t hn;
    size_t pn;
    long pv;
    char *end;

    if (addr == NULL || strlen(addr) > WIRE_ADDR_MAX) {
        return FLIP_INVALID;
    }
    colon = strrchr(addr, ':');
    if (colon == NULL) {
        return FLIP_INVALID;
    }
    hn = (size_t)(colon - addr);
    if (addr[0] == '[') { /* "[::1]:7001": the brackets are not the host */
        if (hn < 2 || addr[hn - 1] != ']') {
            return FLIP_INVALID;
        }
        h = addr + 1;
        hn -= 2;
    } else if (memchr(addr, ':', hn) != NULL) {
        return FLIP_INVALID; /* bare IPv6 is ambiguous without brackets */
    }
    pn = strlen(colon + 1);
    if (hn == 0 || hn >= host_len || pn == 0 || pn >= port_len) {
        return FLIP_INVALID;
    }
    errno = 0;
    pv = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || colon[1] < '0' || colon[1] > '9' ||
        pv < 1 || pv > 65535) {
        return FLIP_INVALID;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    memcpy(port, colon + 1, pn + 1);
    return FLIP_OK;
}

int wire_init(struct wire *w, const char *addr)
{
    char host[WIRE_ADDR_MAX + 1];
    char port[8];

    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->cancel_fd = -1;
    if (wire_addr_split(addr, host, sizeof host, port, sizeof port) !=
        FLIP_OK) {
        return FLIP_INVALID;
    }
    w->addr = flip_strdup(addr);
    if (w->addr == NULL) {
        return FLIP_NOMEM;
    }
    buf_init(&w->in);
    buf_init(&w->out);
    return FLIP_OK;
}

void wire_close(struct wire *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    buf_reset(&w->in);
    w->node_id = 0;
    w->cluster_id[0] = '\0';
}

void wire_destroy(struct wire *w)
{
    wire_close(w);
    buf_close(&w->in);
    buf_close(&w->out);
    flip_free(w->addr);
    w->addr = NULL;
}

/* Waits until fd is ready for `events`, the deadline passes or the
 * connection's cancel_fd becomes readable. FLIP_OK, FLIP_TIMEOUT,
 * FLIP_CLOSED (cancelled) or FLIP_IOERR (errno set). */
static int wait_fd(const struct wire *w, int fd, short events, int64_t deadline)
{
    struct pollfd p[2];
    nfds_t n_fds = w->cancel_fd >= 0 ? 2 : 1;
    int n;

    for (;;) {
        p[0].fd = fd;
        p[0].events = events;
        p[0].revents = 0;
        p[1].fd = w->cancel_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = poll(p, n_fds, remaining_ms(deadline));
        if (n > 0 && n_fds == 2 && p[1].revents != 0) {
            return FLIP_CLOSED;
        }
        if (n > 0) {
            return FLIP_OK; /* errors surface from the next recv/send */
        }
        if (n == 0) {
            return FLIP_TIMEOUT;
        }
        if (errno != EINTR) {
            return FLIP_IOERR;
        }
    }
}

/* One non-blocking connect to one resolved address. Returns the socket or
 * -1 with *rv set and w->errmsg filled. */
static int connect_one(struct wire *w,
                       const struct addrinfo *ai,
                       int64_t deadline,
                       int *rv)
{
    int fd;
    int err = 0;
    int one = 1;
    socklen_t len = sizeof err;

    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        set_errno(w, "socket", errno);
        *rv = FLIP_IOERR;
        return -1;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        set_errno(w, "fcntl", errno);
        *rv = FLIP_IOERR;
        goto err_after_socket;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            set_errno(w, "connect", errno);
            *rv = FLIP_IOERR;
            goto err_after_socket;
        }
        *rv = wait_fd(w, fd, POLLOUT, deadline);
        if (*rv == FLIP_TIMEOUT) {
            set_err(w, "connect: timed out");
            goto err_after_socket;
        }
        if (*rv == FLIP_CLOSED) {
            set_err(w, "connect: cancelled");
            goto err_after_socket;
        }
        if (*rv != FLIP_OK) {
            set_errno(w, "poll", errno);
            goto err_after_socket;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            set_errno(w, "connect", err);
            *rv = FLIP_IOERR;
            goto err_after_socket;
        }
    }
    /* Requests are small and latency-bound: never wait for Nagle. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *rv = FLIP_OK;
    return fd;

err_after_socket:
    close(fd);
    return -1;
}

static int connect_any(struct wire *w, int64_t deadline)
{
    char host[WIRE_ADDR_MAX + 1];
    char port[8];
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    const struct addrinfo *ai;
    int gai;
    int rv = FLIP_IOERR;

    /* wire_init validated the address already. */
    (void)wire_addr_split(w->addr, host, sizeof host, port, sizeof port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        set_err(w, "resolve: %s", gai_strerror(gai));
        return FLIP_IOERR;
    }
    /* "localhost" may resolve to ::1 and 127.0.0.1 while the node listens
     * on only one of them: try each until one answers. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        w->fd = connect_one(w, ai, deadline, &rv);
        if (w->fd >= 0 || rv == FLIP_TIMEOUT || rv == FLIP_CLOSED) {
            break;
        }
    }
    freeaddrinfo(res);
    return rv;
}

/* True when an idle socket has something to say: EOF, RST or stray bytes.
 * Any of these means it must not carry the next request. */
static int idle_socket_dead(const struct wire *w)
{
    struct pollfd p;

    if (buf_len(&w->in) > 0) {
        return 1;
    }
    p.fd = w->fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) != 0;
}

static int hello(struct wire *w, const char *client_name, int64_t deadline)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Hello h = FLIP__HELLO__INIT;
    Flip__Response *resp = NULL;
    const Flip__HelloResult *hr;
    int sent = 0;
    int rv;

    h.has_protocol_version = 1;
    h.protocol_version = CODEC_PROTOCOL_VERSION;
    h.client_name = (char *)client_name;
    req.op_case = FLIP__REQUEST__OP_HELLO;
    req.hello = &h;
    rv = wire_call(w, &req, deadline, &resp, &sent);
    if (rv != FLIP_OK) {
        /* Even when the socket survived (e.g. no memory to encode), an
         * open socket means "greeted" to wire_open: close it. */
        goto err;
    }
    if (resp->error != NULL && resp->error->status != FLIP__STATUS__OK) {
        rv = status_to_flip(resp->error->status);
        set_err(w, "hello refused: %s",
                resp->error->message != NULL ? resp->error->message
                                             : flip_strerror(rv));
        goto err;
    }
    if (resp->result_case != FLIP__RESPONSE__RESULT_HELLO) {
        rv = FLIP_PROTO;
        set_err(w, "hello: unexpected answer");
        goto err;
    }
    hr = resp->hello;
    if (hr->has_protocol_version &&
        hr->protocol_version != CODEC_PROTOCOL_VERSION) {
        rv = FLIP_UNSUPPORTED;
        set_err(w, "server speaks protocol version %u",
                (unsigned)hr->protocol_version);
        goto err;
    }
    w->node_id = hr->has_node_id ? hr->node_id : 0;
    if (hr->cluster_id != NULL &&
        strlen(hr->cluster_id) < sizeof w->cluster_id) {
        memcpy(w->cluster_id, hr->cluster_id, strlen(hr->cluster_id) + 1);
    }
    if (hr->has_max_frame && hr->max_frame > 0) {
        w->max_frame =
            hr->max_frame < WIRE_FRAME_CAP ? hr->max_frame : WIRE_FRAME_CAP;
    }
    codec_response_free(resp);
    return FLIP_OK;

err:
    codec_response_free(resp);
    wire_close(w);
    return rv;
}

int wire_open(struct wire *w, const char *client_name, int64_t deadline)
{
    int rv;

    if (w->fd >= 0) {
        if (!idle_socket_dead(w)) {
            return FLIP_OK;
        }
        wire_close(w);
    }
    w->next_id = 1;
    w->max_frame = FRAME_MAX_DEFAULT;
    rv = connect_any(w, deadline);
    if (rv != FLIP_OK) {
        return rv;
    }
    return hello(w, client_name, deadline);
}

int wire_send(struct wire *w, Flip__Request *req, int64_t deadline)
{
    const uint8_t *p;
    size_t left;
    ssize_t n;
    int rv;

    if (w->fd < 0) {
        set_err(w, "not connected");
        return FLIP_CLOSED;
    }
    req->has_id = 1;
    req->id = w->next_id++;
    buf_reset(&w->out);
    rv = codec_request_encode(req, w->max_frame, &w->out);
    if (rv != FLIP_OK) {
        /* Nothing was written: the connection stays usable. */
        set_err(w, "encode request: %s", flip_strerror(rv));
        return rv;
    }
    p = buf_head(&w->out);
    left = buf_len(&w->out);
    while (left > 0) {
        n = send(w->fd, p, left, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            left -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && would_block(errno)) {
            rv = wait_fd(w, w->fd, POLLOUT, deadline);
            if (rv == FLIP_TIMEOUT) {
                set_err(w, "send: timed out");
                goto err;
            }
            if (rv == FLIP_CLOSED) {
                set_err(w, "send: cancelled");
                goto err;
            }
            if (rv != FLIP_OK) {
                set_errno(w, "poll", errno);
                goto err;
            }
            continue;
        }
        set_errno(w, "send", n < 0 ? errno : EPIPE);
        rv = FLIP_IOERR;
        goto err;
    }
    return FLIP_OK;

err:
    wire_close(w);
    return rv;
}

/* Reads what the socket has (at most one chunk), waiting for it until
 * `deadline`; with WIRE_NO_WAIT, FLIP_AGAIN (nothing set, nothing closed)
 * when there is nothing yet. */
static int read_some(struct wire *w, int64_t deadline)
{
    ssize_t n;
    int rv;

    rv = buf_reserve(&w->in, WIRE_READ_CHUNK);
    if (rv != FLIP_OK) {
        set_err(w, "receive: out of memory");
        return rv;
    }
    for (;;) {
        n = recv(w->fd, buf_tail(&w->in), WIRE_READ_CHUNK, 0);
        if (n > 0) {
            buf_commit(&w->in, (size_t)n);
            return FLIP_OK;
        }
        if (n == 0) {
            set_err(w, "connection closed by server");
            return FLIP_CLOSED;
        }
        if (errno == EINTR) {
            continue;
        }
        if (!would_block(errno)) {
            set_errno(w, "recv", errno);
            return FLIP_IOERR;
        }
        if (deadline == WIRE_NO_WAIT) {
            return FLIP_AGAIN;
        }
        rv = wait_fd(w, w->fd, POLLIN, deadline);
        if (rv == FLIP_TIMEOUT) {
            set_err(w, "no answer within the deadline");
            return rv;
        }
        if (rv == FLIP_CLOSED) {
            set_err(w, "cancelled");
            return rv;
        }
        if (rv != FLIP_OK) {
            set_errno(w, "poll", errno);
            return rv;
        }
    }
}

int wire_recv(struct wire *w, int64_t deadline, Flip__Response **out)
{
    const uint8_t *payload;
    size_t len;
    int rv;

    *out = NULL;
    if (w->fd < 0) {
        set_err(w, "not connected");
        return FLIP_CLOSED;
    }
    for (;;) {
        rv = frame_next(&w->in, w->max_frame, &payload, &len);
        if (rv == FLIP_OK) {
            break;
        }
        if (rv == FLIP_TOOBIG) {
            set_err(w, "response frame over the %zu-byte limit", w->max_frame);
            goto err;
        }
        rv = read_some(w, deadline);
        if (rv == FLIP_AGAIN) {
            return rv; /* WIRE_NO_WAIT: the stream is intact */
        }
        if (rv != FLIP_OK) {
            goto err;
        }
    }
    rv = codec_response_decode(payload, len, out);
    buf_consume(&w->in, FRAME_HEADER + len);
    if (rv != FLIP_OK) {
        set_err(w, "undecodable response: %s", flip_strerror(rv));
        goto err;
    }
    return FLIP_OK;

err:
    wire_close(w);
    return rv;
}

int wire_call(struct wire *w,
              Flip__Request *req,
              int64_t deadline,
              Flip__Response **out,
              int *sent)
{
    Flip__Response *resp = NULL;
    uint64_t id;
    int rv;

    *out = NULL;
    *sent = 0;
    rv = wire_send(w, req, deadline);
    if (rv != FLIP_OK) {
        return rv;
    }
    *sent = 1;
    rv = wire_recv(w, deadline, &resp);
    if (rv != FLIP_OK) {
        return rv;
    }
    id = resp->has_id ? resp->id : 0;
    if (id == 0 && resp->error != NULL) {
        /* A connection-level error: it answers the request in flight, and
         * the server closes the connection after sending it. */
        wire_close(w);
    } else if (id != req->id) {
        /* One request in flight per connection: any other id means the
         * stream is confused. */
        set_err(w, "response id %llu for request %llu", (unsigned long long)id,
                (unsigned long long)req->id);
        codec_response_free(resp);
        wire_close(w);
        return FLIP_PROTO;
    }
    *out = resp;
    return FLIP_OK;
}
