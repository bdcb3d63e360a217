/* The options fanout and etcd_fanout, the two sides of one comparison,
 * must agree on: run.sh passes both the same flags, so the names, ranges
 * and defaults live here once. Header only. */
#ifndef FLIPD_BENCH_BFAN_H
#define FLIPD_BENCH_BFAN_H

#include "bopt.h"

/* Bound on --n x --flips: the per-delivery samples are kept in memory. */
#define BENCH_FAN_SAMPLES_MAX (64u * 1024u * 1024u)

/* The bench_numopt entries over `type`, for its unsigned members n, flips,
 * gap_ms, jitter_ms, warmup, timeout_ms, attach_seconds, window,
 * max_seconds and errors. */
#define BENCH_FAN_NUMOPTS(type)                                           \
    BENCH_NUMOPT(type, "--n", 1, 200000, n),                              \
        BENCH_NUMOPT(type, "--flips", 1, 100000, flips),                  \
        BENCH_NUMOPT(type, "--gap-ms", 0, 60000, gap_ms),                 \
        BENCH_NUMOPT(type, "--gap-jitter-ms", 0, 60000, jitter_ms),       \
        BENCH_NUMOPT(type, "--warmup", 0, 100, warmup),                   \
        BENCH_NUMOPT(type, "--timeout", 1, 600000, timeout_ms),           \
        BENCH_NUMOPT(type, "--attach-seconds", 1, 86400, attach_seconds), \
        BENCH_NUMOPT(type, "--window", 1, 100000, window),                \
        BENCH_NUMOPT(type, "--max-seconds", 1, 86400, max_seconds),       \
        BENCH_NUMOPT(type, "--errors", 0, 1000, errors)

/* The bench_stropt entries over `type`, for its const char * members
 * endpoints, prefix, key, rss_pids and source. */
#define BENCH_FAN_STROPTS(type)                     \
    BENCH_STROPT(type, "--endpoints", endpoints),   \
        BENCH_STROPT(type, "--prefix", prefix),     \
        BENCH_STROPT(type, "--key", key),           \
        BENCH_STROPT(type, "--rss-pids", rss_pids), \
        BENCH_STROPT(type, "--source", source)

/* Designated initialisers of the defaults of those members and of the
 * strings prefix and key. */
#define BENCH_FAN_DEFAULTS                                                \
    .prefix = "bench.fan.", .key = "bench.fan.k", .n = 1000, .flips = 50, \
    .gap_ms = 20, .warmup = 1, .timeout_ms = 5000, .attach_seconds = 60,  \
    .window = 32, .max_seconds = 120, .errors = 5

#endif
