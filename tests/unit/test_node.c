/* raft/node.c pieces that need no running raft. */
#include <stddef.h>

#include "../lib/runner.h"
#include "raft/node.h"

/* raft_uv 0.22 reports its reserved log space as (unsigned short)(KiB) of
 * up to 4 segments, and at least about 2 segments on a healthy node:
 * wherever flipd keeps libraft's capacity check on, that counter can neither
 * wrap nor read below the threshold on a healthy node (known-issues #14).
 * Every size --segment-size accepts is checked, in 4 KiB steps. */
TEST(node_capacity_threshold_never_wraps, 10)
{
    const size_t mib = 1024u * 1024u;
    unsigned on = 0;

    for (size_t size = mib; size <= 64u * mib; size += 4096u) {
        unsigned short t = node_capacity_threshold(size);
        if (t == 0) {
            continue;
        }
        on++;
        CHECK(4u * size / 1024u <= 65535u);
        CHECK(2u * size / 1024u >= 2u * (size_t)t);
    }
    CHECK(on > 0);
    /* the default segment size keeps the check: a full disk is refused
     * with NO_SPACE rather than left to time out */
    CHECK_EQ_INT(node_capacity_threshold(0), 4096);
    CHECK_EQ_INT(node_capacity_threshold(8u * mib), 4096);
    CHECK_EQ_INT(node_capacity_threshold(24u * mib), 0);
    CHECK_EQ_INT(node_capacity_threshold(32u * mib), 0);
    CHECK_EQ_INT(node_capacity_threshold(64u * mib), 0);
}
