/* The loop's own stalls: how long each turn of the libuv loop kept the
 * thread busy (as opposed to waiting in epoll_wait), and how much of that
 * the node itself caused.
 *
 * Why: every timing promise of a node (10 ms heartbeats to subscribers and
 * followers, the 500 ms election timeout, the stale notice) assumes that no
 * callback holds the loop for long; review M3 asked for proof that a
 * snapshot of a 200 MB store costs the loop under 10 ms. A client probe
 * measures that plus the machine's scheduling of every process on it; this
 * meters the loop thread itself and separates the time it waited for a CPU
 * (the machine's doing) from the rest (work, or blocking in the kernel:
 * the node's doing). Reported in Status (loop_* fields, docs/protocol.md
 * section 13) and logged as a warning, one line a second at most, when a
 * turn passes LOOPSTAT_SLOW_MS. */
#ifndef FLIP_SERVER_LOOPSTAT_H
#define FLIP_SERVER_LOOPSTAT_H

#include <stdint.h>

#include <uv.h>

#define LOOPSTAT_SLOW_MS 10u

struct loopstat
{
    uv_prepare_t hook;
    int started;
    int schedstat_fd;      /* this thread's /proc schedstat, or -1 */
    uint64_t last_turn_ns; /* uv_hrtime at the previous prepare hook */
    uint64_t last_idle_ns; /* uv_metrics_idle_time then */
    /* the last sample (at most one a millisecond, and after every turn
     * busy for over 1 ms): when, the thread's CPU time, its wait for a CPU */
    uint64_t sample_ns;
    uint64_t sample_cpu_ns;
    uint64_t sample_delay_ns;
    uint64_t busy_max_ns;   /* longest busy turn since start (wall) */
    uint64_t cpu_max_ns;    /* most CPU time one turn used */
    uint64_t over_1ms;      /* turns busy for more than 1 ms */
    uint64_t over_slow;     /* turns busy for more than LOOPSTAT_SLOW_MS */
    uint64_t over_slow_own; /* of those, busy that long without the CPU wait */
    uint64_t warned_ns;     /* when the last warning was logged */
};

/* Must run before uv_run (libuv only accounts idle time when told so
 * before the loop first polls), on the loop thread, and before any other
 * prepare hook is started: libuv runs the hook started last first, and the
 * meter must run after the others to count them in the turn they belong
 * to. Returns a FLIP_* code; on failure the meter stays off and the node
 * runs without it. */
int loopstat_start(struct loopstat *ls, uv_loop_t *loop);
/* Closes the hook and the schedstat file; safe when never started. */
void loopstat_stop(struct loopstat *ls);

#endif
