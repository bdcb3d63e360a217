/* Small helpers shared by the bench programs: clocks,
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

struct msghdr;

uint64_t bench_clock_ns(clockid_t id);
uint64_t bench_mono_ns(void); /* CLOCK_MONOTONIC: intervals, deadlines */
uint64_t bench_real_ns(void); /* CLOCK_REALTIME: what kernel stamps use */
void bench_sleep_ms(unsigned ms);

/* The SO_TIMESTAMPNS receive stamp (realtime ns) a recvmsg returned in its
 * control data, 0 if there is none. */
uint64_t bench_msg_stamp_ns(struct msghdr *m);

/* A pause of gap_ms plus a uniformly random 0..jitter_ms, in ns; *rng is
 * the state of the generator (any non-zero seed). */
uint64_t bench_gap_ns(unsigned gap_ms, unsigned jitter_ms, uint64_t *rng);

/* Nearest-rank percentile of a sorted array of nanoseconds, in ms. */
double bench_pct_ms(const int64_t *v, size_t n, unsigned pct);

/* Sorts v (nanoseconds) in place and summarises it. */
struct bench_dist bench_summarise(int64_t *v, size_t n);

/* The same for unsigned samples (durations that cannot be negative). */
void bench_sort_u64(uint64_t *v, size_t n);
double bench_pct_ms_u64(const uint64_t *v, size_t n, unsigned pct);

/* Raises the soft RLIMIT_NOFILE so `n` sockets fit, with room to spare;
 * 0, or -1 with the reason on stderr prefixed by `prog`. */
int bench_raise_nofile(const char *prog, unsigned n);

#endif
