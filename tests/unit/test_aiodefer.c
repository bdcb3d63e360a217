/* raft/aiodefer.c: which io_destroy calls leave the calling thread. This
 * test program links the module, so its syscall() is the module's, as in
 * flipd; the calls below go through it exactly as raft_uv's do. Each test
 * runs in its own process (tests/lib/runner.c), so the module's
 * process-wide state starts fresh. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h> /* RWF_NOWAIT, RWF_DSYNC */
#include <time.h>
#include <unistd.h>

#include "../lib/runner.h"
#include "raft/aiodefer.h"

static aio_context_t ctx_setup(void)
{
    aio_context_t ctx = 0;

    CHECK(syscall(SYS_io_setup, 4L, &ctx) == 0);
    CHECK(ctx != 0);
    return ctx;
}

/* Whether the kernel still knows ctx (io_getevents fails with EINVAL on a
 * destroyed context); reaps nothing. */
static int ctx_alive(aio_context_t ctx)
{
    struct io_event ev;
    struct timespec zero = { 0, 0 };

    return syscall(SYS_io_getevents, ctx, 0L, 1L, &ev, &zero) >= 0;
}

static struct aiodefer_stats stats(void)
{
    struct aiodefer_stats s;

    aiodefer_get_stats(&s);
    return s;
}

/* Waits (bounded, 10 s) until the thread has destroyed `n` contexts. */
static void wait_destroyed(uint64_t n)
{
    struct timespec ms = { 0, 1000000 };

    for (int i = 0; i < 10000 && stats().destroyed < n; i++) {
        nanosleep(&ms, NULL);
    }
    CHECK_EQ_INT(stats().destroyed, n);
}

/* A POLLIN request on the read end of `fds`: stays in flight (in the
 * kernel) until something is written to the pipe. */
static void submit_poll(aio_context_t ctx, const int fds[2])
{
    struct iocb cb;
    struct iocb *cbs[1] = { &cb };

    memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_POLL;
    cb.aio_fildes = (uint32_t)fds[0];
    cb.aio_buf = POLLIN;
    CHECK(syscall(SYS_io_submit, ctx, 1L, cbs) == 1);
}

/* The process's syscall() is the module's (the one libraft.so and libuv
 * bind to), and it forwards other numbers untouched: all six arguments
 * (mmap's sixth, the file offset, selects the page), the result, errno. */
TEST(aiodefer_interposes_and_forwards_syscall, 10)
{
    long (*ours)(long, ...) = syscall;
    void *global = dlsym(RTLD_DEFAULT, "syscall");
    void *mine;
    char pages[8192];
    FILE *f = tmpfile();
    long p;

    memcpy(&mine, &ours, sizeof mine);
    CHECK(global == mine);
    CHECK_EQ_INT(syscall(SYS_getpid), getpid());
    errno = 0;
    CHECK_EQ_INT(syscall(SYS_close, -1L), -1);
    CHECK_EQ_INT(errno, EBADF);

    CHECK(f != NULL);
    memset(pages, 'a', 4096);
    memset(pages + 4096, 'b', 4096);
    CHECK(fwrite(pages, 1, sizeof pages, f) == sizeof pages);
    CHECK(fflush(f) == 0);
    p = syscall(SYS_mmap, 0L, 4096L, (long)PROT_READ, (long)MAP_SHARED,
                (long)fileno(f), 4096L);
    CHECK(p != -1);
    CHECK(*(const char *)(uintptr_t)p == 'b');
    CHECK(munmap((void *)(uintptr_t)p, 4096) == 0);
    fclose(f);
}

/* Armed, an idle context's io_destroy returns at once and the module's
 * thread destroys it; aiodefer_stop leaves nothing behind. */
TEST(aiodefer_defers_an_idle_context_to_its_thread, 30)
{
    aio_context_t ctx;

    CHECK_EQ_INT(aiodefer_start(), 0);
    ctx = ctx_setup();
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    CHECK_EQ_INT(stats().deferred, 1);
    CHECK_EQ_INT(stats().loop_running, 0);
    wait_destroyed(1);
    CHECK(!ctx_alive(ctx));
    aiodefer_stop();
    CHECK_EQ_INT(stats().failed, 0);
}

/* A context with a request in the kernel is destroyed synchronously (the
 * kernel waits for it, or cancels it, before the call returns): raft_uv may
 * free the request's buffers right after. Once its completion has been
 * reaped, the same kind of context is idle again and deferred. */
TEST(aiodefer_destroys_a_busy_context_synchronously, 30)
{
    aio_context_t ctx;
    struct io_event ev;
    int fds[2];

    CHECK(pipe(fds) == 0);
    CHECK_EQ_INT(aiodefer_start(), 0);

    ctx = ctx_setup();
    submit_poll(ctx, fds);
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    CHECK(!ctx_alive(ctx)); /* gone before the call returned */
    CHECK_EQ_INT(stats().deferred, 0);
    CHECK_EQ_INT(stats().loop_running, 1);
    CHECK_EQ_INT(stats().loop_inflight, 1);

    ctx = ctx_setup();
    submit_poll(ctx, fds);
    CHECK(write(fds[1], "x", 1) == 1);
    CHECK_EQ_INT(syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL), 1);
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    CHECK_EQ_INT(stats().deferred, 1);
    CHECK_EQ_INT(stats().loop_running, 1);
    wait_destroyed(1);
    aiodefer_stop();
    close(fds[0]);
    close(fds[1]);
}

static void *destroy_elsewhere(void *arg)
{
    aio_context_t *ctx = arg;

    CHECK_EQ_INT(syscall(SYS_io_destroy, *ctx), 0);
    return NULL;
}

/* Only the thread that armed the module (the loop) defers: another
 * thread's io_destroy (raft_uv's thread-pool fallback) stays synchronous,
 * and so does the loop's own once disarmed (raft closing) or before
 * aiodefer_start (raft_init's probe). */
TEST(aiodefer_defers_only_on_the_armed_loop_thread, 30)
{
    aio_context_t ctx;
    pthread_t t;

    ctx = ctx_setup();
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    CHECK(!ctx_alive(ctx));
    CHECK_EQ_INT(stats().disarmed, 1);

    CHECK_EQ_INT(aiodefer_start(), 0);
    ctx = ctx_setup();
    CHECK(pthread_create(&t, NULL, destroy_elsewhere, &ctx) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(!ctx_alive(ctx));
    CHECK_EQ_INT(stats().other_thread, 1);

    aiodefer_disarm();
    ctx = ctx_setup();
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    CHECK(!ctx_alive(ctx));
    CHECK_EQ_INT(stats().disarmed, 2);
    CHECK_EQ_INT(stats().deferred, 0);
    aiodefer_stop();
}

/* A one-page write of `c` at offset 0 of fd, with `rw_flags`. */
static long submit_write(aio_context_t ctx, int fd, char *page, int rw_flags)
{
    struct iocb cb;
    struct iocb *cbs[1] = { &cb };

    memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_fildes = (uint32_t)fd;
    cb.aio_buf = (uint64_t)(uintptr_t)page;
    cb.aio_nbytes = 4096;
    cb.aio_rw_flags = rw_flags;
    return syscall(SYS_io_submit, ctx, 1L, cbs);
}

static void *submit_nowait_elsewhere(void *arg)
{
    const long *a = arg; /* ctx, fd, page */
    static long rv;

    rv = submit_write((aio_context_t)a[0], (int)a[1], (char *)(uintptr_t)a[2],
                      RWF_NOWAIT);
    return &rv;
}

/* The loop thread's RWF_NOWAIT writes (raft_uv's in-loop fast path, whose
 * RWF_DSYNC flush can run inside io_submit) are answered EAGAIN before the
 * kernel sees them, so raft_uv resubmits them from its pool: only from
 * aiodefer_start to aiodefer_stop (through a disarm), only on the loop
 * thread, only with RWF_NOWAIT. A refused submit
 * leaves the context idle (its io_destroy is still deferred). */
TEST(aiodefer_sends_loop_nowait_writes_to_the_pool, 30)
{
    static char page[4096];
    FILE *f = tmpfile();
    aio_context_t ctx;
    struct io_event ev;
    struct stat st;
    pthread_t t;
    long args[3];
    void *res;
    long rv;

    CHECK(f != NULL);
    memset(page, 'w', sizeof page);
    ctx = ctx_setup();
    /* not armed (raft_uv's start-up probe): to the kernel */
    rv = submit_write(ctx, fileno(f), page, RWF_NOWAIT);
    if (rv == 1) {
        CHECK(syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL) == 1);
    }
    CHECK_EQ_INT(stats().to_pool, 0);
    CHECK(ftruncate(fileno(f), 0) == 0);

    CHECK_EQ_INT(aiodefer_start(), 0);
    errno = 0;
    CHECK_EQ_INT(submit_write(ctx, fileno(f), page, RWF_NOWAIT), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(stats().to_pool, 1);
    CHECK(fstat(fileno(f), &st) == 0);
    CHECK_EQ_INT(st.st_size, 0); /* the kernel never saw it */

    /* the pool's resubmission (no RWF_NOWAIT) goes through, even here */
    CHECK_EQ_INT(submit_write(ctx, fileno(f), page, RWF_DSYNC), 1);
    CHECK(syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL) == 1);
    CHECK_EQ_INT(ev.res, 4096);
    CHECK(fstat(fileno(f), &st) == 0);
    CHECK_EQ_INT(st.st_size, 4096);

    /* another thread's RWF_NOWAIT write is not the loop's: untouched */
    args[0] = (long)ctx;
    args[1] = fileno(f);
    args[2] = (long)(uintptr_t)page;
    CHECK(pthread_create(&t, NULL, submit_nowait_elsewhere, args) == 0);
    CHECK(pthread_join(t, &res) == 0);
    if (*(long *)res == 1) {
        CHECK(syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL) == 1);
    }
    CHECK_EQ_INT(stats().to_pool, 1);

    /* nothing in flight: the context's io_destroy is deferred as usual */
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    wait_destroyed(1);
    CHECK_EQ_INT(stats().deferred, 1);

    /* disarmed (a planned stop: raft still writes through the hand-over):
     * io_destroy is synchronous again, the redirect stays */
    aiodefer_disarm();
    ctx = ctx_setup();
    errno = 0;
    CHECK_EQ_INT(submit_write(ctx, fileno(f), page, RWF_NOWAIT), -1);
    CHECK_EQ_INT(errno, EAGAIN);
    CHECK_EQ_INT(stats().to_pool, 2);

    /* stopped: untouched */
    aiodefer_stop();
    rv = submit_write(ctx, fileno(f), page, RWF_NOWAIT);
    if (rv == 1) {
        CHECK(syscall(SYS_io_getevents, ctx, 1L, 1L, &ev, NULL) == 1);
    }
    CHECK_EQ_INT(stats().to_pool, 2);
    CHECK_EQ_INT(syscall(SYS_io_destroy, ctx), 0);
    fclose(f);
}
