/* The code maps: raft -> FLIP (raft/errmap) and FLIP <-> wire Status
 * (proto/status). */
#include <stddef.h>

#include <raft.h>

#include "../lib/runner.h"
#include "lib/err.h"
#include "proto/status.h"
#include "raft/errmap.h"

/* Every FLIP_* code a server answers with comes back to the client as the
 * same code, BUSY excepted (a client sees it as UNAVAILABLE: retry
 * elsewhere); codes with no status of their own are INTERNAL on the
 * wire, and OK is OK. */
TEST(status_round_trip, 5)
{
    static const int same[] = {
        FLIP_OK,           FLIP_NOTLEADER,      FLIP_NOTFOUND,
        FLIP_CONFLICT,     FLIP_INVALID,        FLIP_TOOBIG,
        FLIP_NOSPACE,      FLIP_LEADERSHIPLOST, FLIP_STOREFULL,
        FLIP_TYPEMISMATCH, FLIP_UNAVAILABLE,    FLIP_INTERNAL,
    };

    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        CHECK_EQ_INT(status_to_flip(status_from_flip(same[i])), same[i]);
    }
    CHECK(status_from_flip(FLIP_BUSY) == FLIP__STATUS__UNAVAILABLE);
    CHECK(status_from_flip(FLIP_IOERR) == FLIP__STATUS__INTERNAL);
    CHECK(status_from_flip(FLIP_NOMEM) == FLIP__STATUS__INTERNAL);
    CHECK(status_from_flip(FLIP_CORRUPT) == FLIP__STATUS__INTERNAL);
}

/* The one raft map takes the safe side of both old ones: a proposal
 * ended by raft's shutdown has an unknown outcome (not an I/O error), and
 * corrupt data is named as such. */
TEST(errmap_from_raft_codes, 5)
{
    CHECK_EQ_INT(errmap_from_raft(0), FLIP_OK);
    CHECK_EQ_INT(errmap_from_raft(RAFT_NOMEM), FLIP_NOMEM);
    CHECK_EQ_INT(errmap_from_raft(RAFT_NOTLEADER), FLIP_NOTLEADER);
    CHECK_EQ_INT(errmap_from_raft(RAFT_LEADERSHIPLOST), FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(errmap_from_raft(RAFT_SHUTDOWN), FLIP_LEADERSHIPLOST);
    CHECK_EQ_INT(errmap_from_raft(RAFT_NOSPACE), FLIP_NOSPACE);
    CHECK_EQ_INT(errmap_from_raft(RAFT_CORRUPT), FLIP_CORRUPT);
    CHECK_EQ_INT(errmap_from_raft(RAFT_IOERR), FLIP_IOERR);
    CHECK_EQ_INT(errmap_from_raft(RAFT_BUSY), FLIP_IOERR);
}
