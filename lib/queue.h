/* Intrusive circular doubly-linked list, in the style of raft and libuv.
 * A struct queue is embedded in the element; CONTAINER_OF gets it back. */
#ifndef FLIP_LIB_QUEUE_H
#define FLIP_LIB_QUEUE_H

#include <stddef.h>

struct queue
{
    struct queue *next;
    struct queue *prev;
};

#define CONTAINER_OF(ptr, type, field) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

static inline void queue_init(struct queue *q)
{
    q->next = q;
    q->prev = q;
}

static inline int queue_empty(const struct queue *q)
{
    return q->next == q;
}

static inline void queue_insert_tail(struct queue *h, struct queue *q)
{
    q->next = h;
    q->prev = h->prev;
    h->prev->next = q;
    h->prev = q;
}

static inline void queue_remove(struct queue *q)
{
    q->prev->next = q->next;
    q->next->prev = q->prev;
    q->next = q;
    q->prev = q;
}

static inline struct queue *queue_head(const struct queue *h)
{
    return h->next;
}

#define QUEUE_FOREACH(q, h) for ((q) = (h)->next; (q) != (h); (q) = (q)->next)

#endif
