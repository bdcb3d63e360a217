/* raft_uv's io_destroy, off the loop thread (docs/known-issues.md #11).
 *
 * Why. raft_uv (libraft 0.22.1) writes each open segment through a Linux
 * AIO context of its own and destroys it on the loop thread when the
 * segment is finalised: after every snapshot (which forces a rollover) and
 * every full segment. io_destroy(2) returns only after an RCU grace period
 * (kill_ioctx, then wait for the context's references): 30-45 ms measured
 * here, during which the leader answers nothing. The call sits deep in
 * raft_uv (uvWriterCleanUpAndFireCloseCb -> UvOsIoDestroy -> io_destroy, a
 * one-line `syscall(__NR_io_destroy, ctx)` in src/syscall.c) and Debian's
 * libraft.so exports none of these; its one way out is its PLT reference
 * to `syscall@GLIBC_2.2.5`. flipd's executable defines `syscall` (below),
 * so the dynamic linker binds libraft's (and libuv's) references to it, and
 * it forwards every call to glibc's own (dlsym(RTLD_NEXT)), six long
 * arguments, as glibc's does.
 *
 * The happy path. raft is running (aiodefer_start was called on the loop
 * thread) and the loop thread asks to destroy a context with no request in
 * flight: the context goes on a small queue, the call returns 0 at once
 * (raft_uv ignores the result anyway) and the module's thread destroys it.
 * Nothing else about the context changes: raft_uv has already closed the
 * segment's file and its eventfd, and forgets the context.
 *
 * When is a context idle? raft_uv 0.22.1 writes a segment one request at a
 * time and finalises it only after that request's completion was read
 * (uvAliveSegmentWriteCb, uvAppendMaybeStart and
 * uvFinalizeCurrentAliveSegmentOnceIdle check that no write is in flight;
 * raft_io close waits for the write in flight the same way). UvWriterClose
 * can still cancel requests in its poll queue: it fires their callbacks
 * with RAFT_CANCELED while the kernel still has them, then destroys the
 * context and frees the segment and its write buffer in the close callback
 * that follows. That is safe only because io_destroy waits until the kernel
 * is done with every request of the context ("otherwise kernel keep using
 * user-space buffers even if user thinks the context is destroyed",
 * fs/aio.c); deferred, the buffer would be freed under a running write. So
 * the module does not trust the call site: it counts, per context, the
 * requests submitted and not yet reaped
 * (io_submit adds before the call, io_getevents subtracts after it, so the
 * count never falls below the truth), and defers only a context whose count
 * is 0.
 *
 * Failure modes, each answered by a synchronous io_destroy, exactly what
 * raft_uv did before, and counted (struct aiodefer_stats):
 *   - requests may be in flight (count above 0);
 *   - the context was not seen being set up (table full);
 *   - the queue is full (AIODEFER_QUEUE contexts waiting: each holds a few
 *     pages of ring and counts against fs.aio-max-nr until destroyed);
 *   - the call is not on the loop thread (raft_uv's thread-pool fallback);
 *   - the module is not armed: before aiodefer_start (raft_init's probe),
 *     and from aiodefer_disarm on, which flipd calls when it starts to stop
 *     the node, so raft_uv's close path (cancellations) is synchronous;
 *   - the thread could not be started (aiodefer_start's error).
 * A deferred io_destroy the kernel refuses is counted as failed and logged
 * at stop; the context then stays until the process exits (the kernel
 * frees every context at exit). aiodefer_stop drains the queue and joins
 * the thread after the loop has stopped. A crash loses nothing: the kernel
 * destroys what was queued.
 *
 * Writes. raft_uv's probe finds that this kernel takes io_submit with
 * RWF_NOWAIT, so it submits each segment write from the loop thread and
 * waits for the eventfd. But RWF_NOWAIT only covers waiting for locks and
 * allocation: with RWF_DSYNC, when the direct write completes inside the
 * call (a fast virtual disk does), ext4 issues the cache flush right there
 * (iomap_dio_complete -> ext4_sync_file -> blkdev_issue_flush), so the
 * loop waited for the disk on every write, up to 130 ms while snapshots
 * were being written (perf sched_switch stacks, bench/snapshot.sh PERF=).
 * From aiodefer_start to aiodefer_stop (not only while armed: a planned
 * stop keeps raft writing through the hand-over, and the redirect is as
 * safe during raft_uv's close as before it: UvWriterClose waits for a
 * request in its pool queue), an io_submit with RWF_NOWAIT on the loop
 * thread fails with EAGAIN before reaching the kernel; raft_uv's writer then
 * takes its own documented fallback and runs the same request on a pool thread,
 * where io_submit without RWF_NOWAIT blocks instead of the loop. Before
 * aiodefer_start (raft_uv's start-up probe) and after aiodefer_stop,
 * submits go through untouched.
 *
 * Everything else is forwarded untouched: every syscall() number but the
 * AIO ones it follows (io_setup, io_submit, io_getevents, io_pgetevents,
 * io_destroy), from any library (libuv uses syscall() too). Only the
 * executables that link this file (flipd and the test programs) interpose;
 * until aiodefer_start they only count. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "aiodefer.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h> /* RWF_NOWAIT */
#include <unistd.h>

#include "lib/log.h"

#define AIODEFER_CTXS 64 /* contexts followed at once (raft_uv: about 4) */

typedef long (*aiodefer_syscall_fn)(long number, ...);

static _Atomic(aiodefer_syscall_fn) aiodefer_real;

/* Everything below is guarded by aiodefer_mu. */
static pthread_mutex_t aiodefer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t aiodefer_cv = PTHREAD_COND_INITIALIZER;
static int aiodefer_armed;
static int aiodefer_redirect; /* the write redirect: start to stop */
static int aiodefer_running;  /* the thread exists */
static int aiodefer_stopping;
static pthread_t aiodefer_loop;
static pthread_t aiodefer_thread;
static aio_context_t aiodefer_queue[AIODEFER_QUEUE];
static unsigned aiodefer_head;
static unsigned aiodefer_len;
static struct
{
    aio_context_t ctx; /* 0: free slot */
    long inflight;     /* submitted and not yet reaped, at least */
} aiodefer_ctxs[AIODEFER_CTXS];
static struct aiodefer_stats aiodefer_st;

/* glibc's syscall(), found once; every caller may race to store the same
 * value. */
static aiodefer_syscall_fn aiodefer_next(void)
{
    aiodefer_syscall_fn fn = atomic_load(&aiodefer_real);
    void *sym;

    if (fn != NULL) {
        return fn;
    }
    sym = dlsym(RTLD_NEXT, "syscall");
    if (sym == NULL) {
        static const char msg[] = "flipd: no syscall() after the executable\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        abort();
    }
    memcpy(&fn, &sym, sizeof fn);
    atomic_store(&aiodefer_real, fn);
    return fn;
}

/* The index of ctx's slot, or -1. With aiodefer_mu held. */
static int aiodefer_slot(aio_context_t ctx)
{
    for (int i = 0; i < AIODEFER_CTXS; i++) {
        if (aiodefer_ctxs[i].ctx == ctx) {
            return i;
        }
    }
    return -1;
}

static void aiodefer_count(aio_context_t ctx, long delta)
{
    int i;

    pthread_mutex_lock(&aiodefer_mu);
    i = aiodefer_slot(ctx);
    if (i >= 0) {
        aiodefer_ctxs[i].inflight += delta;
    }
    pthread_mutex_unlock(&aiodefer_mu);
}

/* A new context: followed if a slot is free, else unknown (synchronous). */
static void aiodefer_follow(aio_context_t ctx)
{
    int i;

    pthread_mutex_lock(&aiodefer_mu);
    i = aiodefer_slot(0);
    if (i >= 0 && ctx != 0) {
        aiodefer_ctxs[i].ctx = ctx;
        aiodefer_ctxs[i].inflight = 0;
    }
    pthread_mutex_unlock(&aiodefer_mu);
}

/* Decides the fate of an io_destroy: 1 if ctx was queued for the thread, 0
 * if the caller must destroy it now. Forgets the context either way. */
static int aiodefer_take(aio_context_t ctx)
{
    int i;
    long inflight = -1; /* unknown */
    int queued = 0;

    pthread_mutex_lock(&aiodefer_mu);
    i = ctx != 0 ? aiodefer_slot(ctx) : -1;
    if (i >= 0) {
        inflight = aiodefer_ctxs[i].inflight;
        aiodefer_ctxs[i].ctx = 0;
        aiodefer_ctxs[i].inflight = 0;
    }
    if (!aiodefer_armed) {
        aiodefer_st.disarmed++;
    } else if (!pthread_equal(pthread_self(), aiodefer_loop)) {
        aiodefer_st.other_thread++;
    } else if (inflight != 0) {
        aiodefer_st.loop_running++;
        if (inflight < 0) {
            aiodefer_st.loop_unknown++;
        } else {
            aiodefer_st.loop_inflight++;
        }
    } else if (aiodefer_len == AIODEFER_QUEUE) {
        aiodefer_st.loop_running++;
        aiodefer_st.loop_full++;
    } else {
        aiodefer_queue[(aiodefer_head + aiodefer_len) % AIODEFER_QUEUE] = ctx;
        aiodefer_len++;
        aiodefer_st.deferred++;
        queued = 1;
        pthread_cond_signal(&aiodefer_cv);
    }
    pthread_mutex_unlock(&aiodefer_mu);
    return queued;
}

/* 1 if an io_submit is raft_uv's loop-thread fast path and must go to its
 * thread pool instead (see aiodefer.h: a write with RWF_NOWAIT still
 * flushes the disk inside io_submit). The caller then answers EAGAIN, the
 * answer raft_uv's writer takes as "would block" and resubmits the same
 * request from a pool thread without RWF_NOWAIT (uvWriterSubmit). */
static int aiodefer_nowait_on_loop(long nr, long iocbpp)
{
    struct iocb **v = (struct iocb **)(uintptr_t)iocbpp;
    int nowait = 0;
    int refuse = 0;

    if (v == NULL) {
        return 0;
    }
    for (long i = 0; i < nr; i++) {
        if (v[i] != NULL && (v[i]->aio_rw_flags & RWF_NOWAIT) != 0) {
            nowait = 1;
        }
    }
    if (!nowait) {
        return 0;
    }
    pthread_mutex_lock(&aiodefer_mu);
    if (aiodefer_redirect && pthread_equal(pthread_self(), aiodefer_loop)) {
        aiodefer_st.to_pool++;
        refuse = 1;
    }
    pthread_mutex_unlock(&aiodefer_mu);
    return refuse;
}

/* Preempts glibc's syscall() for the whole process (see the top of the
 * file). Reads six long arguments whatever the number, like glibc's and
 * musl's: the kernel ignores the ones a call does not take. The sixth comes
 * from the caller's stack frame (the x86-64 ABI passes it there), readable
 * but possibly a redzone of one of the caller's variables to ASan: this
 * one function is not instrumented, so that read is not reported. */
__attribute__((no_sanitize_address)) long syscall(long number, ...)
{
    aiodefer_syscall_fn next = aiodefer_next();
    long a[6];
    long rv;
    va_list ap;

    va_start(ap, number);
    for (int i = 0; i < 6; i++) {
        a[i] = va_arg(ap, long);
    }
    va_end(ap);

    switch (number) {
    case SYS_io_setup:
        rv = next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (rv == 0) {
            aiodefer_follow(*(aio_context_t *)(uintptr_t)a[1]);
        }
        return rv;
    case SYS_io_submit:
        /* counted before the call: a completion may be reaped (on another
         * thread) before this call returns */
        if (a[1] <= 0) {
            break;
        }
        if (aiodefer_nowait_on_loop(a[1], a[2])) {
            errno = EAGAIN;
            return -1;
        }
        aiodefer_count((aio_context_t)a[0], a[1]);
        rv = next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
        {
            int saved = errno;
            aiodefer_count((aio_context_t)a[0], rv > 0 ? rv - a[1] : -a[1]);
            errno = saved;
        }
        return rv;
    case SYS_io_getevents:
#ifdef SYS_io_pgetevents
    case SYS_io_pgetevents:
#endif
        rv = next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (rv > 0) {
            aiodefer_count((aio_context_t)a[0], -rv);
        }
        return rv;
    case SYS_io_destroy:
        if (aiodefer_take((aio_context_t)a[0])) {
            return 0;
        }
        break;
    default:
        break;
    }
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void *aiodefer_main(void *arg)
{
    aiodefer_syscall_fn next = aiodefer_next();

    (void)arg;
    pthread_mutex_lock(&aiodefer_mu);
    for (;;) {
        aio_context_t ctx;
        long rv;

        while (aiodefer_len == 0 && !aiodefer_stopping) {
            pthread_cond_wait(&aiodefer_cv, &aiodefer_mu);
        }
        if (aiodefer_len == 0) {
            break; /* stopping, and drained */
        }
        ctx = aiodefer_queue[aiodefer_head];
        aiodefer_head = (aiodefer_head + 1) % AIODEFER_QUEUE;
        aiodefer_len--;
        pthread_mutex_unlock(&aiodefer_mu);
        rv = next(SYS_io_destroy, (long)ctx, 0L, 0L, 0L, 0L, 0L);
        pthread_mutex_lock(&aiodefer_mu);
        aiodefer_st.destroyed++;
        if (rv != 0) {
            aiodefer_st.failed++;
        }
    }
    pthread_mutex_unlock(&aiodefer_mu);
    return NULL;
}

int aiodefer_start(void)
{
    sigset_t all;
    sigset_t old;
    int rv;

    pthread_mutex_lock(&aiodefer_mu);
    if (aiodefer_running) {
        pthread_mutex_unlock(&aiodefer_mu);
        return 0;
    }
    /* signals stay with the loop thread (libuv's handlers) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    aiodefer_stopping = 0;
    rv = pthread_create(&aiodefer_thread, NULL, aiodefer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv == 0) {
        aiodefer_running = 1;
        aiodefer_loop = pthread_self();
        aiodefer_armed = 1;
        aiodefer_redirect = 1;
    }
    pthread_mutex_unlock(&aiodefer_mu);
    if (rv != 0) {
        flip_warnf(
            "raft: cannot start the io_destroy thread (%s); segment "
            "closes stay on the loop",
            strerror(rv));
    }
    return rv;
}

void aiodefer_disarm(void)
{
    pthread_mutex_lock(&aiodefer_mu);
    aiodefer_armed = 0;
    pthread_mutex_unlock(&aiodefer_mu);
}

void aiodefer_stop(void)
{
    struct aiodefer_stats s;

    pthread_mutex_lock(&aiodefer_mu);
    aiodefer_armed = 0;
    aiodefer_redirect = 0;
    if (!aiodefer_running) {
        pthread_mutex_unlock(&aiodefer_mu);
        return;
    }
    aiodefer_stopping = 1;
    pthread_cond_signal(&aiodefer_cv);
    pthread_mutex_unlock(&aiodefer_mu);
    pthread_join(aiodefer_thread, NULL);
    pthread_mutex_lock(&aiodefer_mu);
    aiodefer_running = 0;
    aiodefer_stopping = 0;
    s = aiodefer_st;
    pthread_mutex_unlock(&aiodefer_mu);
    flip_infof(
        "raft: io_destroy off the loop: %llu deferred, %llu done, %llu "
        "failed; on the loop while running: %llu (%llu in flight, %llu "
        "queue full, %llu unknown); not armed: %llu; other threads: "
        "%llu; writes sent to the pool: %llu",
        (unsigned long long)s.deferred, (unsigned long long)s.destroyed,
        (unsigned long long)s.failed, (unsigned long long)s.loop_running,
        (unsigned long long)s.loop_inflight, (unsigned long long)s.loop_full,
        (unsigned long long)s.loop_unknown, (unsigned long long)s.disarmed,
        (unsigned long long)s.other_thread, (unsigned long long)s.to_pool);
}

void aiodefer_get_stats(struct aiodefer_stats *out)
{
    pthread_mutex_lock(&aiodefer_mu);
    *out = aiodefer_st;
    pthread_mutex_unlock(&aiodefer_mu);
}
