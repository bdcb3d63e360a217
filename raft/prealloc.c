/* Blocks allocated ahead of the store's data file; see prealloc.h.
 *
 * The job allocates in slices: ext4_fallocate holds the inode lock that a
 * commit's pwrite also takes, so one call over 64 MiB could hold a commit
 * back for as long as it takes; a slice is over in well under a
 * millisecond. Only the loop thread reads or writes the fields, except
 * `from`, `to` and `err`, which belong to the job while `busy`. */
#define _GNU_SOURCE
#include "prealloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"

#define SLICE ((uint64_t)8 << 20)

struct prealloc
{
    uv_loop_t *loop;
    int fd;
    uint64_t reserved; /* blocks below it are allocated */
    uint64_t jobs;
    int busy;
    int closing;
    int failed; /* refused once: no more attempts */
    uv_work_t work;
    uint64_t from, to;
    int err;
};

int prealloc_open(struct prealloc **out, uv_loop_t *loop, int fd)
{
    struct prealloc *p = flip_calloc(1, sizeof *p);

    *out = NULL;
    if (p == NULL) {
        close(fd);
        return FLIP_NOMEM;
    }
    p->loop = loop;
    p->fd = fd;
    p->work.data = p;
    *out = p;
    return FLIP_OK;
}

static void job_run(uv_work_t *w)
{
    struct prealloc *p = w->data;
    uint64_t off;

    p->err = 0;
    for (off = p->from; off < p->to; off += SLICE) {
        uint64_t len = p->to - off < SLICE ? p->to - off : SLICE;
        if (fallocate(p->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) !=
            0) {
            p->err = errno;
            return;
        }
    }
}

static void destroy(struct prealloc *p)
{
    close(p->fd);
    flip_free(p);
}

static void job_done(uv_work_t *w, int status)
{
    struct prealloc *p = w->data;

    p->busy = 0;
    if (p->closing) {
        destroy(p);
        return;
    }
    if (status != 0 || p->err != 0) {
        p->failed = 1;
        flip_warnf(
            "prealloc: allocating the store's file ahead failed (%s);"
            " commits allocate their own blocks from now on",
            status != 0 ? uv_strerror(status) : strerror(p->err));
        return;
    }
    p->reserved = p->to;
    p->jobs++;
}

void prealloc_note(struct prealloc *p, uint64_t end)
{
    uint64_t margin = end / 8;

    if (p == NULL || p->busy || p->failed || p->closing) {
        return;
    }
    if (margin < PREALLOC_MIN_AHEAD) {
        margin = PREALLOC_MIN_AHEAD;
    }
    if (margin > PREALLOC_MAX_AHEAD) {
        margin = PREALLOC_MAX_AHEAD;
    }
    if (end + margin / 2 <= p->reserved) {
        return;
    }
    /* below `end` LMDB has written every page itself */
    p->from = p->reserved > end ? p->reserved : end;
    p->to = end + margin;
    if (uv_queue_work(p->loop, &p->work, job_run, job_done) != 0) {
        p->failed = 1;
        return;
    }
    p->busy = 1;
}

uint64_t prealloc_reserved(const struct prealloc *p)
{
    return p->reserved;
}

uint64_t prealloc_jobs(const struct prealloc *p)
{
    return p->jobs;
}

void prealloc_close(struct prealloc *p)
{
    if (p == NULL) {
        return;
    }
    if (p->busy) {
        p->closing = 1; /* job_done frees it */
        return;
    }
    destroy(p);
}
