/* Growable byte buffer with a read cursor.
 *
 * Owner: whoever embeds the struct buf; buf_close frees the storage. Bytes
 * are appended at the end and consumed from the front; consumed space is
 * reclaimed lazily by buf_compact (called by buf_reserve). */
#ifndef FLIP_LIB_BUF_H
#define FLIP_LIB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf
{
    uint8_t *data; /* flip_malloc'd storage, or NULL */
    size_t cap;    /* bytes allocated */
    size_t start;  /* first unread byte */
    size_t end;    /* one past the last written byte */
};

void buf_init(struct buf *b);
void buf_close(struct buf *b);
/* Unread bytes. */
static inline size_t buf_len(const struct buf *b)
{
    return b->end - b->start;
}
static inline uint8_t *buf_head(const struct buf *b)
{
    return b->data + b->start;
}
/* Makes room for n more bytes at the tail. FLIP_NOMEM on failure, in which
 * case the buffer is unchanged. */
int buf_reserve(struct buf *b, size_t n);
/* Appends n bytes. FLIP_NOMEM leaves the buffer unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Marks n bytes as written after the caller filled buf_tail(). */
static inline uint8_t *buf_tail(const struct buf *b)
{
    return b->data + b->end;
}
static inline void buf_commit(struct buf *b, size_t n)
{
    b->end += n;
}
/* Drops n unread bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Drops everything; keeps the allocation. */
void buf_reset(struct buf *b);

/* Big-endian helpers used by every on-wire and on-disk format. */
static inline void buf_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t buf_get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void buf_put_u64be(uint8_t *p, uint64_t v)
{
    buf_put_u32be(p, (uint32_t)(v >> 32));
    buf_put_u32be(p + 4, (uint32_t)v);
}
static inline uint64_t buf_get_u64be(const uint8_t *p)
{
    return ((uint64_t)buf_get_u32be(p) << 32) | buf_get_u32be(p + 4);
}

#endif
