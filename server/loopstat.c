/* Turn-by-turn busy time of the loop; see loopstat.h.
 *
 * A turn is measured from one prepare hook to the next: timers, pending
 * and idle callbacks, the poll with its I/O callbacks, check and close
 * callbacks all lie between. libuv's idle-time metric counts the time
 * spent blocked in the poll inside that span, so busy = span - idle.
 *
 * Busy wall time mixes three things: time on the CPU (work), time blocked
 * in the kernel outside the poll (a disk flush, a lock, a page fault) and
 * time runnable but waiting for a CPU other threads held. The first two
 * are the node's doing. The thread's exact CPU time comes from
 * CLOCK_THREAD_CPUTIME_ID (getrusage lags by up to a scheduler tick for a
 * running thread) and its total wait for a CPU from the second field of
 * /proc/thread-self/schedstat (run_delay, updated whenever it is switched
 * in). Reading both costs two system calls, so they are sampled at most
 * once a millisecond; every turn busy for more than 1 ms spans more than a
 * millisecond and so ends with a sample, whose window starts at most 1 ms
 * before the turn. A slow turn's own share is busy minus the CPU wait in
 * that window, and never less than its CPU time: an estimate. It counts
 * blocking too little when the thread also waited for a CPU just before
 * the turn (after the poll woke it: libuv counts that as idle), and too
 * much when libuv 1.44 fails to count a
 * sleep as idle (a wake-up by an fd no callback is left for: libuv then
 * restarts its idle clock without adding what it slept). */
#define _GNU_SOURCE /* O_CLOEXEC in fcntl.h under -std=c11 */
#include "loopstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/log.h"

#define NS_PER_MS     1000000ull
#define SAMPLE_NS     NS_PER_MS
#define WARN_EVERY_NS (1000ull * NS_PER_MS)

/* The thread's total wait on a run queue, in ns; 0 when unknown. */
static uint64_t run_delay_ns(int fd)
{
    char text[96];
    ssize_t n;
    char *end;

    if (fd < 0) {
        return 0;
    }
    n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    (void)strtoull(text, &end, 10); /* time on the CPU: lags, not used */
    return strtoull(end, NULL, 10);
}

static void slow_turn(struct loopstat *ls,
                      uint64_t now,
                      uint64_t busy,
                      uint64_t cpu,
                      uint64_t delay)
{
    uint64_t own = busy > delay ? busy - delay : 0;

    if (own < cpu) {
        own = cpu; /* exact, whatever the wait before the turn was */
    }

    ls->over_slow++;
    if (own > LOOPSTAT_SLOW_MS * NS_PER_MS) {
        ls->over_slow_own++;
    }
    if (ls->warned_ns != 0 && now - ls->warned_ns < WARN_EVERY_NS) {
        return; /* a stalling loop must not also flood its log */
    }
    ls->warned_ns = now;
    flip_warnf(
        "loop: one turn held the loop for %llu ms: %llu ms on the "
        "CPU, about %llu ms waiting for a CPU, the rest blocked in "
        "the kernel (%llu turns over %u ms since start)",
        (unsigned long long)(busy / NS_PER_MS),
        (unsigned long long)(cpu / NS_PER_MS),
        (unsigned long long)(delay / NS_PER_MS),
        (unsigned long long)ls->over_slow, LOOPSTAT_SLOW_MS);
}

static void on_turn(uv_prepare_t *h)
{
    struct loopstat *ls = h->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(h->loop);
    uint64_t span = now - ls->last_turn_ns;
    uint64_t slept = idle - ls->last_idle_ns;
    uint64_t busy = span > slept ? span - slept : 0;
    uint64_t cpu_ns;
    uint64_t delay_ns;
    uint64_t cpu;
    uint64_t delay;

    ls->last_turn_ns = now;
    ls->last_idle_ns = idle;
    if (busy > ls->busy_max_ns) {
        ls->busy_max_ns = busy;
    }
    if (now - ls->sample_ns < SAMPLE_NS) {
        return; /* a turn this short is busy for under 1 ms */
    }
    cpu_ns = clock_thread_cpu_ns();
    delay_ns = run_delay_ns(ls->schedstat_fd);
    cpu = cpu_ns > ls->sample_cpu_ns ? cpu_ns - ls->sample_cpu_ns : 0;
    delay = delay_ns > ls->sample_delay_ns ? delay_ns - ls->sample_delay_ns : 0;
    ls->sample_ns = now;
    ls->sample_cpu_ns = cpu_ns;
    ls->sample_delay_ns = delay_ns;
    if (busy <= NS_PER_MS) {
        return;
    }
    ls->over_1ms++;
    if (cpu > busy) {
        cpu = busy; /* the window may reach up to 1 ms before the turn */
    }
    if (cpu > ls->cpu_max_ns) {
        ls->cpu_max_ns = cpu;
    }
    if (busy > LOOPSTAT_SLOW_MS * NS_PER_MS) {
        slow_turn(ls, now, busy, cpu, delay);
    }
}

int loopstat_start(struct loopstat *ls, uv_loop_t *loop)
{
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) != 0) {
        return FLIP_INTERNAL;
    }
    /* without it the CPU wait reads 0: every slow turn counts as own */
    ls->schedstat_fd =
        open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    uv_prepare_init(loop, &ls->hook);
    ls->hook.data = ls;
    ls->last_turn_ns = uv_hrtime();
    ls->last_idle_ns = uv_metrics_idle_time(loop);
    ls->sample_ns = ls->last_turn_ns;
    ls->sample_cpu_ns = clock_thread_cpu_ns();
    ls->sample_delay_ns = run_delay_ns(ls->schedstat_fd);
    uv_prepare_start(&ls->hook, on_turn);
    uv_unref((uv_handle_t *)&ls->hook); /* never keeps the loop alive */
    ls->started = 1;
    return FLIP_OK;
}

void loopstat_stop(struct loopstat *ls)
{
    if (ls->started) {
        ls->started = 0;
        uv_close((uv_handle_t *)&ls->hook, NULL);
        if (ls->schedstat_fd >= 0) {
            close(ls->schedstat_fd);
            ls->schedstat_fd = -1;
        }
    }
}
