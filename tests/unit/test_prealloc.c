/* raft/prealloc.c on real files and libuv's real pool: blocks are
 * allocated past the end in use by the margin prealloc.h gives, never past
 * the map size, the size and the bytes stay as they were, a job starts
 * only when the margin runs low, a refusal stops it for good, a close
 * during a job frees it when the job ends, and off ext4 it does nothing.
 * The tests that allocate are skipped when TMPDIR is not on ext4. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <uv.h>

#include "../lib/runner.h"
#include "../lib/tmpdir.h"
#include "lib/err.h"
#include "raft/prealloc.h"

#define MIB   ((uint64_t)1 << 20)
#define LIMIT ((uint64_t)1 << 40) /* a map size that never binds */

static void need_ext4(const char *dir)
{
    struct statfs fs;

    CHECK_EQ_INT(statfs(dir, &fs), 0);
    if (fs.f_type != 0xEF53) {
        runner_skip("TMPDIR is not on ext4");
    }
}

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
    need_ext4(dir);
    fd = open_file(dir, path, sizeof path, MIB);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, dup(fd), PREALLOC_KEEP_FREE),
                 FLIP_OK);

    prealloc_note(p, MIB, LIMIT);
    run_jobs(&loop, p, 1);
    CHECK_EQ_INT(prealloc_jobs(p), 1);
    CHECK_EQ_INT(prealloc_reserved(p), MIB + PREALLOC_MIN_AHEAD);
    CHECK_EQ_INT(fstat(fd, &st), 0);
    CHECK_EQ_INT(st.st_size, (long)MIB); /* KEEP_SIZE */
    CHECK((uint64_t)st.st_blocks * 512 >= MIB + PREALLOC_MIN_AHEAD);
    CHECK_EQ_INT(pread(fd, &byte, 1, 4095), 1);
    CHECK_EQ_INT(byte, 0x5a); /* what was written stays */

    /* within half the margin of the end: nothing to do */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD / 2, LIMIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ_INT(prealloc_jobs(p), 1);

    /* past it: the next slice, from where the last one ended */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD / 2 + 4096, LIMIT);
    run_jobs(&loop, p, 2);
    CHECK_EQ_INT(prealloc_reserved(p),
                 MIB + PREALLOC_MIN_AHEAD / 2 + 4096 + PREALLOC_MIN_AHEAD);

    /* a large file gets an eighth of it, at most PREALLOC_MAX_AHEAD */
    prealloc_note(p, 256 * MIB, LIMIT);
    run_jobs(&loop, p, 3);
    CHECK_EQ_INT(prealloc_reserved(p), 256 * MIB + 32 * MIB);
    prealloc_note(p, 1024 * MIB, LIMIT);
    run_jobs(&loop, p, 4);
    CHECK_EQ_INT(prealloc_reserved(p), 1024 * MIB + PREALLOC_MAX_AHEAD);
    /* LMDB never writes past its map: nothing is allocated beyond it */
    prealloc_note(p, 1100 * MIB, 1110 * MIB);
    run_jobs(&loop, p, 5);
    CHECK_EQ_INT(prealloc_reserved(p), 1110 * MIB);
    prealloc_note(p, 1110 * MIB, 1110 * MIB);
    CHECK(!prealloc_busy(p));
    CHECK_EQ_INT(fstat(fd, &st), 0);
    CHECK_EQ_INT(st.st_size, (long)MIB);

    prealloc_close(p);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(fd);
    tmpdir_remove(dir);
}

/* A descriptor fallocate refuses (read-only: EBADF): one job, a warning,
 * then no more attempts. */
TEST(prealloc_refused_stops_trying, 30)
{
    char dir[256];
    char path[300];
    uv_loop_t loop;
    struct prealloc *p;
    int fd;

    tmpdir_make(dir, sizeof dir);
    need_ext4(dir);
    close(open_file(dir, path, sizeof path, 4096));
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, fd, PREALLOC_KEEP_FREE), FLIP_OK);
    prealloc_note(p, MIB, LIMIT);
    CHECK(prealloc_busy(p));
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(prealloc_jobs(p), 0);
    CHECK_EQ_INT(prealloc_reserved(p), 0);
    prealloc_note(p, 8 * MIB, LIMIT);
    CHECK(!prealloc_busy(p)); /* nothing queued */
    prealloc_close(p);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    tmpdir_remove(dir);
}

/* Not ext4 (a pipe stands in for any other filesystem): inert from the
 * start, no job, no warning. */
TEST(prealloc_inert_off_ext4, 30)
{
    uv_loop_t loop;
    struct prealloc *p;
    int pipefd[2];

    CHECK_EQ_INT(pipe(pipefd), 0);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, pipefd[1], PREALLOC_KEEP_FREE),
                 FLIP_OK);
    prealloc_note(p, MIB, LIMIT);
    CHECK(!prealloc_busy(p));
    prealloc_close(p);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(pipefd[0]);
}

/* Less than keep_free would be left free: nothing allocated, and no new
 * job until the file has grown past the margin that one wanted. */
TEST(prealloc_short_of_space_waits_for_growth, 30)
{
    char dir[256];
    char path[300];
    uv_loop_t loop;
    struct prealloc *p;
    struct stat st;
    int fd;

    tmpdir_make(dir, sizeof dir);
    need_ext4(dir);
    fd = open_file(dir, path, sizeof path, MIB);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, dup(fd), (uint64_t)1 << 62), FLIP_OK);
    prealloc_note(p, MIB, LIMIT);
    CHECK(prealloc_busy(p));
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(prealloc_jobs(p), 0);
    CHECK(prealloc_reserved(p) <= MIB); /* LMDB's own blocks at most */
    CHECK_EQ_INT(fstat(fd, &st), 0);
    CHECK((uint64_t)st.st_blocks * 512 < MIB + PREALLOC_MIN_AHEAD);
    /* not grown by the margin yet: no job */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD - 4096, LIMIT);
    CHECK(!prealloc_busy(p));
    /* grown past it: tried again (still short, no warning) */
    prealloc_note(p, MIB + PREALLOC_MIN_AHEAD, LIMIT);
    CHECK(prealloc_busy(p));
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(prealloc_jobs(p), 0);
    prealloc_close(p);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    close(fd);
    tmpdir_remove(dir);
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
    need_ext4(dir);
    fd = open_file(dir, path, sizeof path, 4096);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(prealloc_open(&p, &loop, fd, PREALLOC_KEEP_FREE), FLIP_OK);
    prealloc_note(p, 4096, LIMIT);
    CHECK(prealloc_busy(p));
    prealloc_close(p);
    CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
    prealloc_close(NULL);
    tmpdir_remove(dir);
}
