/* Blocks allocated ahead of the store's data file; see prealloc.h.
 *
 * The job allocates in slices: ext4_fallocate holds the inode lock that a
 * commit's pwrite also takes, so one call over 64 MiB would hold a commit
 * back for the whole allocation; a slice is a short metadata update (it
 * can still wait, like the commit itself, when writeback or the journal
 * holds what it needs). Only the loop thread reads or writes the fields,
 * except `from`, `to`, `err` and `short_of_space`, which belong to the job
 * while `busy`. */
#define _GNU_SOURCE
#include "prealloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/heap.h"
#include "lib/log.h"

#define SLICE      ((uint64_t)8 << 20)
#define EXT4_MAGIC 0xEF53 /* statfs f_type of ext2/3/4 */

struct prealloc
{
    uv_loop_t *loop;
    int fd;
    uint64_t keep_free;
    uint64_t reserved;      /* blocks below it are allocated */
    uint64_t wait_end;      /* short of space: no job until the end passes it */
    uint64_t wait_end_next; /* ... the end the running job covers */
    uint64_t jobs;
    int busy;
    int closing;
    int inert; /* not ext4, or refused: no more attempts */
    uv_work_t work;
    uint64_t from, to;
    int err;
    int short_of_space;
};

int prealloc_open(struct prealloc **out,
                  uv_loop_t *loop,
                  int fd,
                  uint64_t keep_free)
{
    struct prealloc *p = flip_calloc(1, sizeof *p);
    struct statfs fs;

    *out = NULL;
    if (p == NULL) {
        close(fd);
        return FLIP_NOMEM;
    }
    p->loop = loop;
    p->fd = fd;
    p->keep_free = keep_free;
    p->work.data = p;
    p->inert = fstatfs(fd, &fs) != 0 || fs.f_type != EXT4_MAGIC;
    *out = p;
    return FLIP_OK;
}

static void job_run(uv_work_t *w)
{
    struct prealloc *p = w->data;
    struct statvfs vfs;
    uint64_t off;

    p->err = 0;
    p->short_of_space = 0;
    if (fstatvfs(p->fd, &vfs) != 0) {
        p->err = errno;
        return;
    }
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize <
        p->to - p->from + p->keep_free) {
        p->short_of_space = 1;
        p->to = p->from; /* nothing allocated */
        return;
    }
    for (off = p->from; off < p->to; off += SLICE) {
        uint64_t len = p->to - off < SLICE ? p->to - off : SLICE;
        if (fallocate(p->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) !=
            0) {
            p->err = errno;
            p->short_of_space = errno == ENOSPC;
            p->to = off; /* the slices before it are allocated */
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
    if (status != 0 || (p->err != 0 && !p->short_of_space)) {
        p->inert = 1;
        flip_warnf(
            "prealloc: allocating the store's file ahead failed (%s);"
            " commits allocate their own blocks from now on",
            status != 0 ? uv_strerror(status) : strerror(p->err));
        return;
    }
    if (p->to > p->reserved) {
        p->reserved = p->to; /* short of space: the slices done */
    }
    if (p->short_of_space) {
        p->wait_end = p->wait_end_next;
        return;
    }
    p->jobs++;
}

void prealloc_note(struct prealloc *p, uint64_t end, uint64_t limit)
{
    uint64_t margin = end / 8;

    if (p == NULL || p->busy || p->inert || p->closing || end < p->wait_end) {
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
    p->to = end + margin < limit ? end + margin : limit;
    p->wait_end_next = end + margin;
    if (p->from >= p->to) {
        return;
    }
    if (uv_queue_work(p->loop, &p->work, job_run, job_done) != 0) {
        p->inert = 1;
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

int prealloc_busy(const struct prealloc *p)
{
    return p->busy;
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
