/* Growable byte buffer; see buf.h. */
#include "buf.h"

#include <string.h>

#include "err.h"
#include "heap.h"

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof *b);
}

void buf_close(struct buf *b)
{
    flip_free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b)
{
    b->start = 0;
    b->end = 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= buf_len(b)) {
        buf_reset(b);
        return;
    }
    b->start += n;
}

int buf_reserve(struct buf *b, size_t n)
{
    size_t len = buf_len(b);
    size_t cap;
    uint8_t *data;

    if (b->cap - b->end >= n) {
        return FLIP_OK;
    }
    /* Reuse consumed space at the front before growing. */
    if (b->start > 0 && b->cap - len >= n) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return FLIP_OK;
    }
    cap = b->cap == 0 ? 256 : b->cap;
    while (cap - len < n) {
        if (cap > SIZE_MAX / 2) {
            return FLIP_NOMEM;
        }
        cap *= 2;
    }
    data = flip_malloc(cap);
    if (data == NULL) {
        return FLIP_NOMEM;
    }
    if (len > 0) {
        memcpy(data, b->data + b->start, len);
    }
    flip_free(b->data);
    b->data = data;
    b->cap = cap;
    b->start = 0;
    b->end = len;
    return FLIP_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rv = buf_reserve(b, n);
    if (rv != FLIP_OK) {
        return rv;
    }
    if (n > 0) {
        memcpy(b->data + b->end, p, n);
    }
    b->end += n;
    return FLIP_OK;
}
