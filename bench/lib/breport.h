/* What the fan-out programs report besides their numbers: the problems of a
 * run and the memory of the processes under test; and the JSON form of a
 * distribution, so that every program names the fields alike.
 * Leaf code: libc only. */
#ifndef FLIPD_BENCH_BREPORT_H
#define FLIPD_BENCH_BREPORT_H

#include <stddef.h>

#include "bstat.h"

#define BENCH_MSG_MAX  256
#define BENCH_PIDS_MAX 16

/* The first problem is kept for the report; the first `limit` ones are
 * printed on stderr as they happen, prefixed by `prog`. */
struct bench_problems
{
    const char *prog;
    unsigned limit;
    unsigned shown;
    char first[BENCH_MSG_MAX]; /* "" while there is none */
};

void bench_problem(struct bench_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct bench_rss
{
    long pid;
    long rss_kb; /* -1 when unreadable */
    long hwm_kb;
};

/* VmRSS and VmHWM of each pid of "PID,PID,..." (csv may be NULL), at most
 * BENCH_PIDS_MAX; stops at the first entry that is not a positive number.
 * Returns how many entries of out were filled. */
size_t bench_read_rss(const char *csv, struct bench_rss *out);

/* s as a JSON string on stdout (control bytes escaped; other bytes as
 * they are: the texts are addresses, keys and messages). */
void bench_json_str(const char *s);

/* ,"NAME":[{"pid":..,"rss_kb":..,"hwm_kb":..},...] on stdout. */
void bench_json_rss(const char *name, const struct bench_rss *r, size_t n);

/* "NAME":{"n":..,"p50":..,"p99":..,"max":..} on stdout, after a comma if
 * `comma`. */
void bench_json_dist(const char *name, const struct bench_dist *d, int comma);

#endif
