/* bhttp.h. The timeout is SO_RCVTIMEO/SO_SNDTIMEO: it bounds each send and
 * receive, so a trickling answer can take longer; the callers' runs have
 * their own overall bound. */
#include "bhttp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/httpmini.h"

int bench_http_init(struct bench_http *h, const char *addr, unsigned timeout_ms)
{
    h->fd = -1;
    h->n_in = 0;
    h->timeout_ms = timeout_ms;
    return bench_addr_resolve(addr, strlen(addr), &h->a);
}

void bench_http_close(struct bench_http *h)
{
    if (h->fd >= 0) {
        close(h->fd);
    }
    h->fd = -1;
    h->n_in = 0;
}

static int http_connect(struct bench_http *h)
{
    struct timeval tv = { .tv_sec = h->timeout_ms / 1000,
                          .tv_usec = (h->timeout_ms % 1000) * 1000 };
    int one = 1;

    h->fd = socket(h->a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        return -1;
    }
    (void)setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(h->fd, (const struct sockaddr *)&h->a.sa, h->a.salen) != 0) {
        bench_http_close(h);
        return -1;
    }
    (void)setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    h->n_in = 0;
    return 0;
}

int bench_http_call(struct bench_http *h, const char *req, size_t len)
{
    size_t off = 0;

    if (h->fd < 0 && http_connect(h) != 0) {
        return -1;
    }
    while (off < len) {
        ssize_t w = send(h->fd, req + off, len - off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            bench_http_close(h);
            return -1;
        }
        off += (size_t)w;
    }
    for (;;) {
        struct http_head hd;
        size_t blen = 0;
        long used =
            http_response(h->in, h->n_in, &hd, h->body, sizeof h->body, &blen);
        ssize_t r;

        if (used > 0) {
            memmove(h->in, h->in + used, h->n_in - (size_t)used);
            h->n_in -= (size_t)used;
            if (hd.close) {
                bench_http_close(h);
            }
            return hd.status;
        }
        if (used < 0 || h->n_in == sizeof h->in) {
            bench_http_close(h);
            return -1;
        }
        r = recv(h->fd, h->in + h->n_in, sizeof h->in - h->n_in, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            bench_http_close(h);
            return -1;
        }
        h->n_in += (size_t)r;
    }
}
