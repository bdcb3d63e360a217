/* See clock.h. */
#include "clock.h"

#include <stdio.h>
#include <time.h>

static struct timespec read_clock(clockid_t id)
{
    struct timespec ts = { 0, 0 };

    if (clock_gettime(id, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    return ts;
}

static int64_t read_ms(clockid_t id)
{
    struct timespec ts = read_clock(id);

    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t read_ns(clockid_t id)
{
    struct timespec ts = read_clock(id);

    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t clock_mono_ms(void)
{
    return read_ms(CLOCK_MONOTONIC);
}

uint64_t clock_mono_ns(void)
{
    return read_ns(CLOCK_MONOTONIC);
}

int64_t clock_real_ms(void)
{
    return read_ms(CLOCK_REALTIME);
}

uint64_t clock_thread_cpu_ns(void)
{
    return read_ns(CLOCK_THREAD_CPUTIME_ID);
}

void clock_format_utc(int64_t ms, char *out, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    struct tm tm;
    size_t n;

    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, len, "?");
        return;
    }
    n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03dZ", frac);
}
