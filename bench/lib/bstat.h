/* Small helpers shared by the bench programs: clocks, option numbers,
 * percentiles, the descriptor limit. Leaf code: libc only. */
#ifndef FLIPD_BENCH_BSTAT_H
#define FLIPD_BENCH_BSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct bench_dist
{
    size_t n;
    double p50; /* ms */
    double p99;
    double max;
};

uint64_t bench_clock_ns(clockid_t id);

/* Decimal unsigned in [min, max] into *out; 0, or -1 when it is not. */
int bench_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Nearest-rank percentile of a sorted array of nanoseconds, in ms. */
double bench_pct_ms(const int64_t *v, size_t n, unsigned pct);

/* Sorts v (nanoseconds) in place and summarises it. */
struct bench_dist bench_summarise(int64_t *v, size_t n);

/* Raises the soft RLIMIT_NOFILE so `n` sockets fit, with room to spare;
 * 0, or -1 with the reason on stderr prefixed by `prog`. */
int bench_raise_nofile(const char *prog, unsigned n);

#endif
