/* libraft's heap with big frees on a thread; see bigfree.h.
 *
 * glibc's malloc_usable_size tells a big block from the rest at the cost of
 * reading its header, so every other free goes straight through; with the
 * mmap threshold fixed at BIGFREE_MIN (bigfree_start), exactly the blocks
 * in a mapping of their own are big. A queued
 * block's first word links the list (every block here is megabytes long);
 * the thread takes the whole list at once and frees it outside the lock. */
#define _GNU_SOURCE
#include "bigfree.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLICE ((size_t)4 << 20)

static void *heap_malloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void *heap_calloc(void *data, size_t nmemb, size_t size)
{
    (void)data;
    return calloc(nmemb, size);
}

static void *heap_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return realloc(ptr, size);
}

static void *heap_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    return aligned_alloc(alignment, size);
}

/* Only whole pages strictly inside the block (and past its link word) are
 * dropped, so glibc's bookkeeping around it is never touched. */
static void free_sliced(void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)p + sizeof(void *) + page - 1) / page * page;
    uintptr_t end = ((uintptr_t)p + len) / page * page;

    for (uintptr_t a = start; a < end; a += SLICE) {
        size_t n = end - a < SLICE ? end - a : SLICE;
        (void)madvise((void *)a, n, MADV_DONTNEED); /* only an optimisation */
    }
    free(p);
}

static void heap_free(void *data, void *ptr)
{
    struct bigfree *b = data;

    if (ptr == NULL || malloc_usable_size(ptr) < BIGFREE_MIN) {
        free(ptr);
        return;
    }
    pthread_mutex_lock(&b->mu);
    if (b->stop) { /* a late free while stopping: the thread may be gone */
        pthread_mutex_unlock(&b->mu);
        free(ptr);
        return;
    }
    *(void **)ptr = b->head;
    b->head = ptr;
    b->n_deferred++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void heap_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)alignment;
    heap_free(data, ptr);
}

static void *run(void *arg)
{
    struct bigfree *b = arg;

    pthread_mutex_lock(&b->mu);
    for (;;) {
        void *list = b->head;
        uint64_t n = 0;

        if (list == NULL) {
            if (b->stop) {
                break;
            }
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        b->head = NULL;
        pthread_mutex_unlock(&b->mu);
        while (list != NULL) {
            void *next = *(void **)list;
            free_sliced(list, malloc_usable_size(list));
            list = next;
            n++;
        }
        pthread_mutex_lock(&b->mu);
        b->n_freed += n;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int bigfree_start(struct bigfree *b)
{
    int rv;

    b->heap.data = b;
    b->heap.malloc = heap_malloc;
    b->heap.free = heap_free;
    b->heap.calloc = heap_calloc;
    b->heap.realloc = heap_realloc;
    b->heap.aligned_alloc = heap_aligned_alloc;
    b->heap.aligned_free = heap_aligned_free;
    b->head = NULL;
    b->stop = 0;
    b->running = 0;
    b->n_deferred = 0;
    b->n_freed = 0;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    rv = pthread_create(&b->thread, NULL, run, b);
    if (rv != 0) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        return rv;
    }
    b->running = 1;
    /* glibc serves a block from its own mapping only above a threshold
     * that it raises, up to 32 MiB, each time such a block is freed; from
     * then on blocks of 4-32 MiB would come from the main arena, and the
     * thread's free of one would hold the arena's mutex (and trim the heap
     * with brk) while the loop waits to malloc. A fixed threshold keeps
     * every block of BIGFREE_MIN or more in a mapping of its own; the trim
     * threshold, fixed with it, is set where the dynamic one would be. */
    (void)mallopt(M_MMAP_THRESHOLD, (int)BIGFREE_MIN);
    (void)mallopt(M_TRIM_THRESHOLD, (int)(2 * BIGFREE_MIN));
    raft_heap_set(&b->heap);
    return 0;
}

void bigfree_stop(struct bigfree *b)
{
    if (!b->running) {
        return;
    }
    raft_heap_set_default();
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    b->running = 0;
}

void bigfree_counts(struct bigfree *b, uint64_t *deferred, uint64_t *freed)
{
    if (!b->running) { /* stopped: the thread is joined */
        *deferred = b->n_deferred;
        *freed = b->n_freed;
        return;
    }
    pthread_mutex_lock(&b->mu);
    *deferred = b->n_deferred;
    *freed = b->n_freed;
    pthread_mutex_unlock(&b->mu);
}
