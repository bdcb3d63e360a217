/* The libuv host of the proposal path: raft/propose.h's propose_env with
 * its four timers as libuv handles on the node's loop (a check handle for
 * the batch flush, an idle handle for deferred answers, two timers), the
 * loop's clock, and the node's closing flags. propose.c itself knows no
 * libuv, so the fixture stress hosts the same code on its simulated clock
 * (tests/stress) and the unit tests on a fake one. */
#ifndef FLIP_RAFT_PROPOSE_UV_H
#define FLIP_RAFT_PROPOSE_UV_H

#include <uv.h>

#include "node.h"
#include "propose.h"

struct propose_uv
{
    struct node *node;
    struct propose *propose;
    uv_check_t flush;
    uv_idle_t defer;
    uv_timer_t nudge;
    uv_timer_t limbo;
};

/* Starts `pr` on the raft and loop of node `n` (after node_init), with this
 * node's id and an election timeout of limbo. The handles are closed when
 * propose_close releases them: `h` outlives the loop turn of that close. */
void propose_uv_init(struct propose_uv *h,
                     struct propose *pr,
                     struct node *n,
                     uint64_t keep);

#endif
