/* Framing; see frame.h. */
#include "frame.h"

#include "lib/err.h"

int frame_next(const struct buf *in,
               size_t max,
               const uint8_t **payload,
               size_t *len)
{
    size_t have = buf_len(in);
    uint32_t n;

    if (have < FRAME_HEADER) {
        return FLIP_AGAIN;
    }
    n = buf_get_u32be(buf_head(in));
    if (n > max) {
        return FLIP_TOOBIG;
    }
    if (have - FRAME_HEADER < n) {
        return FLIP_AGAIN;
    }
    *payload = buf_head(in) + FRAME_HEADER;
    *len = n;
    return FLIP_OK;
}

void frame_put_header(uint8_t *out, size_t len)
{
    buf_put_u32be(out, (uint32_t)len);
}
