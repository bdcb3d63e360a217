/* A blocking keep-alive HTTP/1.1 connection to etcd's JSON gateway, for
 * the bench programs that have one request in progress at a time
 * (bigstore's fillers and readiness poll, fanout's etcd writer). kvbench
 * pipelines over non-blocking sockets and parses with bench/httpmini.h
 * itself. */
#ifndef FLIPD_BENCH_BHTTP_H
#define FLIPD_BENCH_BHTTP_H

#include <stddef.h>

#include "baddr.h"

#define BENCH_HTTP_IN   65536u /* one whole response, headers included */
#define BENCH_HTTP_BODY 16384u

struct bench_http
{
    struct bench_addr a;
    int fd; /* -1: connected by the next call */
    unsigned timeout_ms;
    size_t n_in;
    char in[BENCH_HTTP_IN];
    char body[BENCH_HTTP_BODY]; /* the last response's, de-chunked */
};

/* Resolves addr ("host:port") into *h, not connected yet: 0, or -1. */
int bench_http_init(struct bench_http *h,
                    const char *addr,
                    unsigned timeout_ms);

/* Sends req[0..len) and reads one whole response into h->body, connecting
 * first if needed; every send and receive is bounded by the timeout. The
 * HTTP status, or -1 (connect, send or receive failed, timed out, or a
 * malformed or oversized response) with the connection closed. A
 * "Connection: close" answer closes it too. */
int bench_http_call(struct bench_http *h, const char *req, size_t len);

void bench_http_close(struct bench_http *h);

#endif
