/* See bstat.h. */
#include "bstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define FD_SPARE 64 /* listeners, pipes, the client library's own sockets */

uint64_t bench_clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_mono_ns(void)
{
    return bench_clock_ns(CLOCK_MONOTONIC);
}

uint64_t bench_real_ns(void)
{
    return bench_clock_ns(CLOCK_REALTIME);
}

void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

uint64_t bench_msg_stamp_ns(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL;
         c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;

            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        }
    }
    return 0;
}

uint64_t bench_gap_ns(unsigned gap_ms, unsigned jitter_ms, uint64_t *rng)
{
    uint64_t ns = (uint64_t)gap_ms * 1000000u;

    if (jitter_ms > 0) {
        /* xorshift64: the phase only needs to wander, not be secure. */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        ns += *rng % ((uint64_t)jitter_ms * 1000000u + 1u);
    }
    return ns;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* Where the nearest-rank percentile of n > 0 sorted samples is. */
static size_t pct_index(size_t n, unsigned pct)
{
    uint64_t rank = ((uint64_t)n * pct + 99u) / 100u;

    return rank == 0 ? 0 : (size_t)(rank - 1);
}

double bench_pct_ms(const int64_t *v, size_t n, unsigned pct)
{
    return n == 0 ? 0.0 : (double)v[pct_index(n, pct)] / 1e6;
}

double bench_pct_ms_u64(const uint64_t *v, size_t n, unsigned pct)
{
    return n == 0 ? 0.0 : (double)v[pct_index(n, pct)] / 1e6;
}

void bench_sort_u64(uint64_t *v, size_t n)
{
    if (n > 1) { /* qsort wants a valid pointer even for none (UBSan) */
        qsort(v, n, sizeof v[0], cmp_u64);
    }
}

struct bench_dist bench_summarise(int64_t *v, size_t n)
{
    struct bench_dist d;

    if (n > 1) {
        qsort(v, n, sizeof v[0], cmp_i64);
    }
    d.n = n;
    d.p50 = bench_pct_ms(v, n, 50);
    d.p99 = bench_pct_ms(v, n, 99);
    d.max = n > 0 ? (double)v[n - 1] / 1e6 : 0.0;
    return d;
}

int bench_raise_nofile(const char *prog, unsigned n)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)n + FD_SPARE;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "%s: getrlimit: %s\n", prog, strerror(errno));
        return -1;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr,
                "%s: --n %u needs %llu descriptors but the hard limit "
                "(ulimit -Hn) is %llu; lower --n or raise the limit\n",
                prog, n, (unsigned long long)need,
                (unsigned long long)rl.rlim_max);
        return -1;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return 0;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE, %llu): %s\n", prog,
                (unsigned long long)rl.rlim_max, strerror(errno));
        return -1;
    }
    return 0;
}
