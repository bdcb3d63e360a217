/* disk_floor: the physical floor of a durable write in one directory.
 *
 *   disk_floor --dir DIR [--n 1000] [--size 4096] [--max-seconds 30]
 *
 * The result is one JSON object on stdout.
 *
 * A replicated write cannot be acknowledged before at least one disk has it:
 * its latency is bounded below by one write + fdatasync on the data
 * directory's filesystem. This measures that bound the way a log does it:
 *
 *   overwrite  --size bytes written at the next offset of a file whose
 *              blocks were all written and synced beforehand (a
 *              preallocated, already-used log segment: no metadata change),
 *              then fdatasync. This is the floor the table reports.
 *   append     the same, but every write extends the file (a new block and
 *              a new size: the filesystem's journal commits too). For
 *              comparison; at most 200 operations.
 *   direct     overwrite with O_DIRECT | O_DSYNC and no separate
 *              fdatasync: how libraft writes its log when the filesystem
 *              allows direct I/O. For comparison; skipped (n 0) where
 *              O_DIRECT is refused (tmpfs).
 *
 * The file is created in DIR with mkstemp and unlinked at once, so nothing
 * is left behind even if the process is killed. Each operation is timed
 * with CLOCK_MONOTONIC from the pwrite to the end of fdatasync.
 *
 * Bounded: --n at most 100000, and the run stops at --max-seconds (what
 * was measured is reported, with "truncated").
 *
 * Exit status: 0 measured, 1 an I/O call failed, 2 usage error. libc and
 * bench/lib only. */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "bench/lib/bopt.h"
#include "bench/lib/bstat.h"

#define PROG        "disk_floor"
#define N_MAX       100000u
#define SIZE_MAX_B  (1024u * 1024u)
#define RING_BLOCKS 4096u /* overwrite cycles over this many blocks */
#define APPEND_MAX  200u
#define ALIGN       4096u /* O_DIRECT buffer and offset alignment */
#define EXIT_IO     1
#define EXIT_USAGE  2

struct opts
{
    const char *dir;
    unsigned n;
    unsigned size;
    unsigned max_seconds;
};

struct series
{
    uint64_t *ns;
    unsigned n;
    int truncated;
};

static const char usage_text[] = "usage: " PROG
                                 " --dir DIR [--n 1000] [--size 4096] "
                                 "[--max-seconds 30]\n";

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct bench_opt optab[] = {
        BENCH_STR(struct opts, "dir", dir),
        BENCH_UINT(struct opts, "n", 1, N_MAX, n),
        BENCH_UINT(struct opts, "size", 1, SIZE_MAX_B, size),
        BENCH_UINT(struct opts, "max-seconds", 1, 3600, max_seconds),
    };

    *o = (struct opts){ .n = 1000, .size = 4096, .max_seconds = 30 };
    if (bench_getopt(PROG, usage_text, argc, argv, optab,
                     sizeof optab / sizeof optab[0], o, 0) < 0) {
        return EXIT_USAGE;
    }
    if (o->dir == NULL) {
        bench_usage_error(PROG, usage_text, "--dir is required", NULL);
        return EXIT_USAGE;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static double pct_ms(const struct series *s, unsigned pct)
{
    return bench_pct_ms_u64(s->ns, s->n, pct);
}

/* One measured series; `append` extends the file at every write. */
static int run_series(int fd,
                      const struct opts *o,
                      const char *block,
                      int append,
                      unsigned n,
                      uint64_t deadline,
                      struct series *s)
{
    off_t base = 0;
    struct stat st;

    if (append) {
        if (fstat(fd, &st) != 0) {
            return -1;
        }
        base = st.st_size;
    }
    for (unsigned i = 0; i < n; i++) {
        off_t off = append ? base + (off_t)i * (off_t)o->size
                           : (off_t)(i % RING_BLOCKS) * (off_t)o->size;
        uint64_t t0 = bench_mono_ns();

        if (t0 >= deadline) {
            s->truncated = 1;
            break;
        }
        if (write_all(fd, block, o->size, off) != 0 || fdatasync(fd) != 0) {
            return -1;
        }
        s->ns[s->n++] = bench_mono_ns() - t0;
    }
    bench_sort_u64(s->ns, s->n);
    return 0;
}

/* The direct series: a second descriptor on the same (already written)
 * file, opened through /proc/self/fd since the name is gone. */
static int run_direct(int fd,
                      const struct opts *o,
                      unsigned n,
                      uint64_t deadline,
                      struct series *s)
{
    char path[64];
    void *buf = NULL;
    int dfd;

    if (o->size % ALIGN != 0) {
        return 0; /* not a direct-I/O size: skipped */
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    dfd = open(path, O_WRONLY | O_DIRECT | O_DSYNC | O_CLOEXEC);
    if (dfd < 0) {
        return 0; /* no direct I/O here: skipped */
    }
    if (posix_memalign(&buf, ALIGN, o->size) != 0) {
        close(dfd);
        return -1;
    }
    memset(buf, 'd', o->size);
    for (unsigned i = 0; i < n; i++) {
        off_t off = (off_t)(i % RING_BLOCKS) * (off_t)o->size;
        uint64_t t0 = bench_mono_ns();

        if (t0 >= deadline) {
            s->truncated = 1;
            break;
        }
        if (write_all(dfd, buf, o->size, off) != 0) {
            free(buf);
            close(dfd);
            return -1;
        }
        s->ns[s->n++] = bench_mono_ns() - t0;
    }
    free(buf);
    close(dfd);
    bench_sort_u64(s->ns, s->n);
    return 0;
}

static void print_series(const char *name, const struct series *s)
{
    double sum = 0;

    for (unsigned i = 0; i < s->n; i++) {
        sum += (double)s->ns[i];
    }
    printf(
        "\"%s\":{\"n\":%u,\"min_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,"
        "\"p99_ms\":%.4f,\"max_ms\":%.4f,\"mean_ms\":%.4f,\"truncated\":%"
        "s}",
        name, s->n, s->n ? (double)s->ns[0] / 1e6 : 0.0, pct_ms(s, 50),
        pct_ms(s, 90), pct_ms(s, 99),
        s->n ? (double)s->ns[s->n - 1] / 1e6 : 0.0,
        s->n ? sum / s->n / 1e6 : 0.0, s->truncated ? "true" : "false");
}

int main(int argc, char **argv)
{
    struct opts o;
    struct series over;
    struct series app;
    struct series dir;
    char path[4096];
    char *block = NULL;
    unsigned ring;
    unsigned n_app;
    uint64_t deadline;
    int fd = -1;
    int code = EXIT_IO;
    int rv = parse_args(argc, argv, &o);

    if (rv != 0) {
        return rv;
    }
    memset(&over, 0, sizeof over);
    memset(&app, 0, sizeof app);
    memset(&dir, 0, sizeof dir);
    deadline = bench_mono_ns() + (uint64_t)o.max_seconds * 1000000000u;
    ring = o.n < RING_BLOCKS ? o.n : RING_BLOCKS;
    n_app = o.n < APPEND_MAX ? o.n : APPEND_MAX;
    block = malloc((size_t)o.size * ring);
    over.ns = calloc(o.n, sizeof over.ns[0]);
    app.ns = calloc(n_app, sizeof app.ns[0]);
    dir.ns = calloc(o.n, sizeof dir.ns[0]);
    if (block == NULL || over.ns == NULL || app.ns == NULL || dir.ns == NULL) {
        fprintf(stderr, "disk_floor: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < (size_t)o.size * ring; i++) {
        block[i] = (char)('a' + i % 26);
    }
    if (snprintf(path, sizeof path, "%s/.disk_floor.XXXXXX", o.dir) >=
        (int)sizeof path) {
        fprintf(stderr, "disk_floor: --dir too long\n");
        code = EXIT_USAGE;
        goto out;
    }
    fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "disk_floor: mkstemp in %s: %s\n", o.dir,
                strerror(errno));
        goto out;
    }
    (void)unlink(path);
    /* Every block of the ring written and synced once: later overwrites
     * change no metadata (fdatasync skips mtime). */
    if (write_all(fd, block, (size_t)o.size * ring, 0) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "disk_floor: preparing the file: %s\n",
                strerror(errno));
        goto out;
    }
    if (run_series(fd, &o, block, 0, o.n, deadline, &over) != 0 ||
        run_series(fd, &o, block, 1, n_app, deadline, &app) != 0 ||
        run_direct(fd, &o, o.n, deadline, &dir) != 0) {
        fprintf(stderr, "disk_floor: write/fdatasync: %s\n", strerror(errno));
        goto out;
    }
    printf("{\"size\":%u,", o.size);
    print_series("overwrite", &over);
    printf(",");
    print_series("append", &app);
    printf(",");
    print_series("direct", &dir);
    printf("}\n");
    code = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    free(block);
    free(over.ns);
    free(app.ns);
    free(dir.ns);
    return code;
}
