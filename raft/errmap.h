/* The one map from libraft's RAFT_* codes to flipd's FLIP_* codes.
 *
 *   0                          FLIP_OK
 *   RAFT_NOMEM                 FLIP_NOMEM
 *   RAFT_NOTLEADER             FLIP_NOTLEADER      nothing was appended
 *   RAFT_LEADERSHIPLOST        FLIP_LEADERSHIPLOST outcome unknown
 *   RAFT_SHUTDOWN              FLIP_LEADERSHIPLOST raft closed with the entry
 *                                                  maybe replicated: unknown
 *   RAFT_NOSPACE               FLIP_NOSPACE
 *   RAFT_CORRUPT               FLIP_CORRUPT
 *   anything else              FLIP_IOERR
 *
 * node.c and propose.c once had one each and they disagreed: one mapped
 * RAFT_CORRUPT (to FLIP_CORRUPT) and not RAFT_SHUTDOWN, the other the
 * reverse (a proposal ended by shutdown must read "outcome unknown", not
 * an I/O error; corrupt data must not read as a transient I/O error). */
#ifndef FLIP_RAFT_ERRMAP_H
#define FLIP_RAFT_ERRMAP_H

/* The FLIP_* code for the libraft return or callback status `rv`. */
int errmap_from_raft(int rv);

#endif
