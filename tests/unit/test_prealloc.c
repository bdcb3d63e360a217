/* raft/prealloc.c on real files and libuv's real pool: blocks are
 * allocated past the end in use by the margin prealloc.h gives, the size
 * and the bytes stay as they were, a job starts only when the margin runs
 * low, a refusal stops it for good, and a close during a job frees it when
 * the job ends. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "raft/prealloc.h"

#define MIB ((uint64_t)1 << 20)

static void run_jobs(uv_loop_t *loop, struct prealloc *p, uint64_t jobs)
{
    for (int i = 0; i < 1000 && prealloc_jobs(p) < jobs; i++) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static int open_file(const char *dir, char *path, size_t n, uint64_t size)
{
    static char page[4096];
    int fd;

    snprintf(path, n, "%s/data", dir);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    memset(page, 0x5a, sizeof page);
    for (uint64_t off = 0; off < size; off += sizeof page) {
        CHECK_EQ_INT(pwrite(fd, page, sizeof page, (off_t)off),
                     (long)sizeof page);
    }
    return fd;
}

TEST(prealloc_allocates_ahead_without_growing_the_file, 30)
{
    char dir[256];
    char path[300];
    uv_loop_t loop;
    struct prealloc *p;
    struct stat st;
    char byte = 0;
    int fd;

    tmpdir_make(dir, sizeof dir);
    fd = open_file(dir, path, sizeof path, MIB);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, dup(fd)), FLIP_OK);

    prealloc_note(p, MIB);
    run_jobs(&loop, p, 1);
    CHECK_EQ_INT(prealloc_jobs(p), 1);
    CHECK_EQ_INT(prealloc_reserved(p), MIB + PREALLOC_MIN_AHEAD);
    CHECK_EQ_INT(fstat(fd, &st), 0);
    CHECK_EQ_INT(st.st_size, (long)MIB); /* KEEP_SIZE */
    CHECK((uint64_t)st.st_blocks * 512 >= MIB + PREALLOC_MIN_AHEAD);
    CHECK_EQ_INT(pread(fd, &byte, 1, 4095), 1);
    CHECK_EQ_INT(byte, 0x5a); /* what was written stays */

    /* within half the margin of the end: nothing to do */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD / 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(prealloc_jobs(p), 1);

    /* past it: the next slice, from where the last one ended */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD / 2 + 4096);
    run_jobs(&loop, p, 2);
    CHECK_EQ_INT(prealloc_reserved(p),
                 MIB + PREALLOC_MIN_AHEAD / 2 + 4096 + PREALLOC_MIN_AHEAD);

    /* a large file gets an eighth of it, at most PREALLOC_MAX_AHEAD */
    prealloc_note(p, 256 * MIB);
    run_jobs(&loop, p, 3);
    CHECK_EQ_INT(prealloc_reserved(p), 256 * MIB + 32 * MIB);
    prealloc_note(p, 1024 * MIB);
    run_jobs(&loop, p, 4);
    CHECK_EQ_INT(prealloc_reserved(p), 1024 * MIB + PREALLOC_MAX_AHEAD);
    CHECK_EQ_INT(fstat(fd, &st), 0);
    CHECK_EQ_INT(st.st_size, (long)MIB);

    prealloc_close(p);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(fd);
    tmpdir_remove(dir);
}

/* A descriptor fallocate refuses (a pipe: ESPIPE, where a filesystem
 * without it says EOPNOTSUPP): one job, then no more attempts. */
TEST(prealloc_refused_stops_trying, 30)
{
    uv_loop_t loop;
    struct prealloc *p;
    int pipefd[2];

    CHECK_EQ_INT(pipe(pipefd), 0);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, pipefd[1]), FLIP_OK);
    prealloc_note(p, MIB);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(prealloc_jobs(p), 0);
    CHECK_EQ_INT(prealloc_reserved(p), 0);
    prealloc_note(p, 2 * MIB);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_NOWAIT), 0); /* nothing queued */
    prealloc_close(p);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(pipefd[0]);
}

/* Closed while its job runs: the job finishes on its own descriptor, then
 * frees everything (ASan and valgrind see no leak, no use after free). */
TEST(prealloc_close_during_a_job, 30)
{
    char dir[256];
    char path[300];
    uv_loop_t loop;
    struct prealloc *p;
    int fd;

    tmpdir_make(dir, sizeof dir);
    fd = open_file(dir, path, sizeof path, 4096);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, fd), FLIP_OK);
    prealloc_note(p, 4096);
    prealloc_close(p);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    prealloc_close(NULL);
    tmpdir_remove(dir);
}
