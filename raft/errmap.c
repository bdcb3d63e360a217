/* See errmap.h. */
#include "errmap.h"

#include <raft.h>

#include "lib/err.h"

int errmap_from_raft(int rv)
{
    switch (rv) {
    case 0:
        return FLIP_OK;
    case RAFT_NOMEM:
        return FLIP_NOMEM;
    case RAFT_NOTLEADER:
        return FLIP_NOTLEADER;
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
        return FLIP_LEADERSHIPLOST;
    case RAFT_NOSPACE:
        return FLIP_NOSPACE;
    case RAFT_CORRUPT:
        return FLIP_CORRUPT;
    default:
        return FLIP_IOERR;
    }
}
