/* Frame I/O for fake nodes; see fakewire.h. */
#include "fakewire.h"

#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/heap.h"
#include "proto/codec.h"
#include "runner.h"

static int recv_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;

    while (n > 0) {
        ssize_t k = recv(fd, b, n, 0);
        if (k <= 0) {
            return 0;
        }
        b += k;
        n -= (size_t)k;
    }
    return 1;
}

Flip__Request *fakewire_recv(int fd)
{
    Flip__Request *req = NULL;
    uint8_t hdr[4];
    uint8_t *body;
    uint32_t len;

    if (!recv_all(fd, hdr, sizeof hdr)) {
        return NULL;
    }
    len = buf_get_u32be(hdr);
    body = flip_malloc(len > 0 ? len : 1);
    if (body != NULL && recv_all(fd, body, len)) {
        (void)codec_request_decode(body, len, &req);
    }
    flip_free(body);
    return req;
}

void fakewire_send(int fd, const Flip__Response *r)
{
    struct buf b;
    const uint8_t *p;
    size_t n;

    buf_init(&b);
    CHECK_EQ_INT(codec_response_encode(r, 1u << 24, &b), FLIP_OK);
    p = buf_head(&b);
    n = buf_len(&b);
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    buf_close(&b);
}
