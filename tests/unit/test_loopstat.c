/* server/loopstat.c: a turn's busy time leaves out the wait for events and
 * keeps what the node did in it, work or blocking. Only lower bounds are
 * asserted (a sleep lasts at least as long as asked, CPU spent is spent),
 * never how fast anything ran. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "../lib/runner.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "server/loopstat.h"

#define MS 1000000ull

static void on_nothing(uv_timer_t *t)
{
    (void)t;
}

/* Four 25 ms sleeps: the thread blocks, in the kernel, for 100 ms (long
 * enough that a wait for a CPU before the turn, which the meter may
 * subtract, cannot bring it under 10 ms on any machine that runs tests). */
static void on_block(uv_timer_t *t)
{
    struct timespec quarter = { 0, 25 * 1000000L };

    (void)t;
    for (int i = 0; i < 4; i++) {
        nanosleep(&quarter, NULL);
    }
}

/* 15 ms of CPU (bounded: 10 s of wall time at most on a starved machine). */
static void on_work(uv_timer_t *t)
{
    uint64_t cpu0 = clock_thread_cpu_ns();
    uint64_t wall0 = uv_hrtime();

    (void)t;
    while (clock_thread_cpu_ns() - cpu0 < 15 * MS &&
           uv_hrtime() - wall0 < 10000 * MS) {
    }
}

TEST(loopstat_counts_blocking_and_work_but_not_waiting, 30)
{
    uv_loop_t loop;
    uv_timer_t idle;
    uv_timer_t block;
    uv_timer_t work;
    struct loopstat ls;

    memset(&ls, 0, sizeof ls);
    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(loopstat_start(&ls, &loop), FLIP_OK);

    /* a second of waiting for a timer that does nothing: the loop slept,
     * it was not busy (a bound no scheduler comes near: nothing ran) */
    uv_timer_init(&loop, &idle);
    uv_timer_start(&idle, on_nothing, 1000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(ls.busy_max_ns < 1000 * MS);
    CHECK_EQ_INT(ls.over_slow_own, 0);

    uv_timer_init(&loop, &block);
    uv_timer_start(&block, on_block, 10, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(ls.busy_max_ns >= 100 * MS);
    CHECK(ls.over_slow >= 1);
    CHECK(ls.over_slow_own >= 1); /* blocked: the node's own stall */

    uv_timer_init(&loop, &work);
    uv_timer_start(&work, on_work, 10, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(ls.cpu_max_ns >= 15 * MS); /* the thread's own CPU clock */
    CHECK(ls.over_slow >= 2);
    CHECK(ls.over_slow_own >= 2); /* working */

    loopstat_stop(&ls);
    uv_close((uv_handle_t *)&block, NULL);
    uv_close((uv_handle_t *)&work, NULL);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}
