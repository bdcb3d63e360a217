/* Takes raft_uv's io_destroy off the loop thread (docs/known-issues.md #11).
 *
 * libraft 0.22.1's raft_uv gives every open segment a Linux AIO context and
 * destroys it on the loop thread when the segment is finalised (every
 * snapshot, every full segment): uvWriterCleanUpAndFireCloseCb ->
 * UvOsIoDestroy -> io_destroy -> syscall(__NR_io_destroy, ctx). The kernel
 * makes io_destroy wait for an RCU grace period, 30-45 ms here, and the loop
 * stands still that long. libraft cannot be changed (Debian's package), so
 * flipd defines `syscall` itself: the executable's definition comes first in
 * the dynamic linker's search order, so libraft.so's (and libuv's) PLT
 * references to glibc's `syscall` bind to it (`LD_DEBUG=bindings`). It
 * forwards every call to glibc's, and hands an idle context's io_destroy to
 * a thread of its own. The same way, it keeps raft_uv's segment writes off
 * the loop: on this kernel an io_submit with RWF_NOWAIT|RWF_DSYNC can wait
 * for the disk's cache flush inside the call, so the loop's own submits
 * are answered EAGAIN and raft_uv resubmits them from its thread pool. See
 * aiodefer.c for the rules. */
#ifndef FLIPD_RAFT_AIODEFER_H
#define FLIPD_RAFT_AIODEFER_H

#include <stdint.h>

#define AIODEFER_QUEUE 16 /* contexts waiting for the thread, at most */

struct aiodefer_stats
{
    uint64_t deferred;      /* io_destroy calls handed to the thread */
    uint64_t destroyed;     /* ... that the thread has completed */
    uint64_t failed;        /* ... of which the kernel refused (never seen) */
    uint64_t loop_running;  /* on the loop thread, armed, but synchronous: */
    uint64_t loop_inflight; /*   requests were or may be in flight */
    uint64_t loop_full;     /*   the queue was full */
    uint64_t loop_unknown;  /*   a context this module did not see set up */
    uint64_t disarmed;      /* synchronous: not armed (start-up, close) */
    uint64_t other_thread;  /* synchronous: called on another thread */
    uint64_t to_pool;       /* loop-thread RWF_NOWAIT writes refused (EAGAIN)
                               so raft_uv runs them on its thread pool */
};

/* Arms deferral for io_destroy calls made on the calling thread (the loop
 * thread) and the pool redirect of its RWF_NOWAIT writes, and starts the thread
 * that performs them. Call once raft is running (after raft_start). Returns 0,
 * or an errno value when the thread cannot be started: io_destroy then stays
 * synchronous, as without this module (nothing else changes). */
int aiodefer_start(void);

/* From now on every io_destroy is synchronous again; contexts already
 * queued are still destroyed by the thread. The write redirect stays
 * until aiodefer_stop. Call when raft starts closing:
 * raft_uv's close path may cancel writes still in the kernel. Idempotent;
 * a no-op before aiodefer_start. */
void aiodefer_disarm(void);

/* Disarms, waits until the thread has destroyed every queued context, joins
 * it. Call on the loop thread after the loop has stopped. Idempotent. */
void aiodefer_stop(void);

/* A consistent copy of the counters (for logs and tests). */
void aiodefer_get_stats(struct aiodefer_stats *out);

#endif
