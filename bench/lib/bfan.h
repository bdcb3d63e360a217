/* The options fanout and etcd_fanout, the two sides of one comparison,
 * must agree on: run.sh passes both the same flags, so the names, ranges
 * and defaults live here once. Header only. */
#ifndef FLIPD_BENCH_BFAN_H
#define FLIPD_BENCH_BFAN_H

#include "bopt.h"

/* Bound on --n x --flips: the per-delivery samples are kept in memory. */
#define BENCH_FAN_SAMPLES_MAX (64u * 1024u * 1024u)

/* The bench_opt entries over `type`, for its unsigned members n, flips,
 * gap_ms, jitter_ms, warmup, timeout_ms, attach_seconds, window,
 * max_seconds and errors, its const char * members endpoints, prefix, key,
 * rss_pids and source, and its int json. */
#define BENCH_FAN_OPTS(type)                                            \
    BENCH_UINT(type, "n", 1, 200000, n),                                \
        BENCH_UINT(type, "flips", 1, 100000, flips),                    \
        BENCH_UINT(type, "gap-ms", 0, 60000, gap_ms),                   \
        BENCH_UINT(type, "gap-jitter-ms", 0, 60000, jitter_ms),         \
        BENCH_UINT(type, "warmup", 0, 100, warmup),                     \
        BENCH_UINT(type, "timeout", 1, 600000, timeout_ms),             \
        BENCH_UINT(type, "attach-seconds", 1, 86400, attach_seconds),   \
        BENCH_UINT(type, "window", 1, 100000, window),                  \
        BENCH_UINT(type, "max-seconds", 1, 86400, max_seconds),         \
        BENCH_UINT(type, "errors", 0, 1000, errors),                    \
        BENCH_STR(type, "endpoints", endpoints),                        \
        BENCH_STR(type, "prefix", prefix), BENCH_STR(type, "key", key), \
        BENCH_STR(type, "rss-pids", rss_pids),                          \
        BENCH_STR(type, "source", source), BENCH_FLAG(type, "json", json)

/* Designated initialisers of the defaults of those members and of the
 * strings prefix and key. */
#define BENCH_FAN_DEFAULTS                                                \
    .prefix = "bench.fan.", .key = "bench.fan.k", .n = 1000, .flips = 50, \
    .gap_ms = 20, .warmup = 1, .timeout_ms = 5000, .attach_seconds = 60,  \
    .window = 32, .max_seconds = 120, .errors = 5

#endif
