/* Turn-by-turn busy time of the loop; see loopstat.h.
 *
 * A turn is measured from one prepare hook to the next: timers, pending
 * and idle callbacks, the poll with its I/O callbacks, check and close
 * callbacks all lie between. libuv's idle-time metric counts the time
 * spent blocked in the poll inside that span, so busy = span - idle.
 *
 * Busy wall time still mixes three things, and only the first two are the
 * node's doing: time on the CPU (work), time blocked in the kernel outside
 * the poll (a disk write throttled behind dirty pages, a page fault, a
 * lock) and time runnable but waiting for a CPU other processes hold. The
 * thread's own rusage, read once a turn (one getrusage call), separates
 * them: its CPU time, and whether it gave up the CPU voluntarily (blocked)
 * during the turn. A turn over LOOPSTAT_SLOW_MS that neither worked nor
 * blocked that long was the machine's scheduling, not the node. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "loopstat.h"

#include <sys/resource.h>

#include "lib/err.h"
#include "lib/log.h"

#define NS_PER_MS     1000000ull
#define WARN_EVERY_NS (1000ull * NS_PER_MS)

static uint64_t tv_ns(struct timeval tv)
{
    return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000u;
}

/* The calling thread's CPU time and voluntary switches; zeros when the
 * kernel does not say (the wall-time figures still hold). */
static void thread_usage(uint64_t *cpu_ns, uint64_t *waits)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        *cpu_ns = 0;
        *waits = 0;
        return;
    }
    *cpu_ns = tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime);
    *waits = (uint64_t)ru.ru_nvcsw;
}

static void slow_turn(struct loopstat *ls,
                      uint64_t now,
                      uint64_t busy,
                      uint64_t cpu,
                      uint64_t waits)
{
    const char *why = cpu > LOOPSTAT_SLOW_MS * NS_PER_MS ? "working"
                      : waits > 0 ? "blocked in the kernel"
                                  : "waiting for a CPU";

    ls->over_slow++;
    if (waits > 0 || cpu > LOOPSTAT_SLOW_MS * NS_PER_MS) {
        ls->over_slow_own++;
    }
    /* at most one line a second: a stalling loop must not also flood */
    if (ls->warned_ns != 0 && now - ls->warned_ns < WARN_EVERY_NS) {
        return;
    }
    ls->warned_ns = now;
    flip_warnf(
        "loop: one turn held the loop for %llu ms, %llu ms of it on "
        "the CPU, mostly %s (%llu turns over %u ms since start)",
        (unsigned long long)(busy / NS_PER_MS),
        (unsigned long long)(cpu / NS_PER_MS), why,
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
    uint64_t waits;
    uint64_t cpu;
    uint64_t turn_waits;

    thread_usage(&cpu_ns, &waits);
    cpu = cpu_ns > ls->last_cpu_ns ? cpu_ns - ls->last_cpu_ns : 0;
    /* the poll's own sleep is one voluntary switch when it slept */
    turn_waits = waits - ls->last_waits;
    if (slept > 0 && turn_waits > 0) {
        turn_waits--;
    }
    ls->last_turn_ns = now;
    ls->last_idle_ns = idle;
    ls->last_cpu_ns = cpu_ns;
    ls->last_waits = waits;
    if (busy > ls->busy_max_ns) {
        ls->busy_max_ns = busy;
    }
    if (cpu > ls->cpu_max_ns) {
        ls->cpu_max_ns = cpu;
    }
    if (busy > NS_PER_MS) {
        ls->over_1ms++;
    }
    if (busy > LOOPSTAT_SLOW_MS * NS_PER_MS) {
        slow_turn(ls, now, busy, cpu, turn_waits);
    }
}

int loopstat_start(struct loopstat *ls, uv_loop_t *loop)
{
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) != 0) {
        return FLIP_INTERNAL;
    }
    uv_prepare_init(loop, &ls->hook);
    ls->hook.data = ls;
    ls->last_turn_ns = uv_hrtime();
    ls->last_idle_ns = uv_metrics_idle_time(loop);
    thread_usage(&ls->last_cpu_ns, &ls->last_waits);
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
    }
}
