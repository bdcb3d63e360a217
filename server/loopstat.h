/* The loop's own stalls: how long each turn of the libuv loop kept the
 * thread busy with callbacks (as opposed to waiting in epoll_wait).
 *
 * Why: every timing promise of a node (10 ms heartbeats to subscribers and
 * followers, the 500 ms election timeout, the stale notice) assumes that no
 * callback holds the loop for long; review M3 asked for proof that a
 * snapshot of a 200 MB store costs the loop under 10 ms. A client probe
 * measures that plus the machine's scheduling of every process on it; this
 * meters only the work done on the loop, so the figure means the same on a
 * loaded host, and tells the node's own stalls (work, or blocking in the
 * kernel) from time the thread only waited for a CPU. Reported in Status
 * (loop_* fields, docs/protocol.md) and logged as a warning when a turn
 * passes LOOPSTAT_SLOW_MS. */
#ifndef FLIP_SERVER_LOOPSTAT_H
#define FLIP_SERVER_LOOPSTAT_H

#include <stdint.h>

#include <uv.h>

#define LOOPSTAT_SLOW_MS 10u

struct loopstat
{
    uv_prepare_t hook;
    int started;
    uint64_t last_turn_ns;  /* uv_hrtime at the previous prepare hook */
    uint64_t last_idle_ns;  /* uv_metrics_idle_time then */
    uint64_t last_cpu_ns;   /* the loop thread's CPU time then */
    uint64_t last_waits;    /* its voluntary context switches then */
    uint64_t busy_max_ns;   /* longest busy turn since start (wall) */
    uint64_t cpu_max_ns;    /* most CPU time one turn used */
    uint64_t over_1ms;      /* turns busy for more than 1 ms */
    uint64_t over_slow;     /* turns busy for more than LOOPSTAT_SLOW_MS */
    uint64_t over_slow_own; /* of those, the ones that worked or blocked */
    uint64_t warned_ns;     /* when the last warning was logged */
};

/* Must run before uv_run: libuv only accounts idle time when told so
 * before the loop first polls. Returns a FLIP_* code; on failure the meter
 * stays off and the node runs without it. */
int loopstat_start(struct loopstat *ls, uv_loop_t *loop);
/* Closes the hook (nothing to free); safe when never started. */
void loopstat_stop(struct loopstat *ls);

#endif
