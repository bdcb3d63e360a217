/* Error codes shared by every layer of flipd.
 *
 * Every function that can fail returns one of these (0 = OK). The table is
 * the single source for both the enum and flip_strerror(). Foreign codes
 * (MDB_*, RAFT_*, UV_*, errno) are translated at the module boundary that
 * calls the foreign library; this file knows none of them. */
#ifndef FLIP_LIB_ERR_H
#define FLIP_LIB_ERR_H

#define FLIP_ERRORS(X)                                             \
    X(FLIP_OK, 0, "ok")                                            \
    X(FLIP_NOMEM, 1, "out of memory")                              \
    X(FLIP_INVALID, 2, "invalid argument")                         \
    X(FLIP_TOOBIG, 3, "too large")                                 \
    X(FLIP_NOTFOUND, 4, "not found")                               \
    X(FLIP_CONFLICT, 5, "compare-and-set conflict")                \
    X(FLIP_NOTLEADER, 6, "not leader")                             \
    X(FLIP_UNAVAILABLE, 7, "unavailable")                          \
    X(FLIP_IOERR, 8, "I/O error")                                  \
    X(FLIP_NOSPACE, 9, "no space left")                            \
    X(FLIP_CORRUPT, 10, "corrupt data")                            \
    X(FLIP_AGAIN, 11, "try again")                                 \
    X(FLIP_BUSY, 12, "busy")                                       \
    X(FLIP_LEADERSHIPLOST, 13, "leadership lost, outcome unknown") \
    X(FLIP_UNSUPPORTED, 14, "unsupported protocol version")        \
    X(FLIP_PROTO, 15, "protocol error")                            \
    X(FLIP_TIMEOUT, 16, "timed out")                               \
    X(FLIP_CLOSED, 17, "connection closed")                        \
    X(FLIP_INTERNAL, 18, "internal error")                         \
    X(FLIP_TYPEMISMATCH, 19, "value type differs from the flag's") \
    X(FLIP_STOREFULL, 20, "store size budget exceeded")

/* client/flip.h, the public header, spells the same enum out (it may not
 * include this file): whichever comes first in a file defines it. */
#ifndef FLIP_CODES_DEFINED
#define FLIP_CODES_DEFINED
enum flip_err
{
#define FLIP_ERR_ENUM(name, num, text) name = num,
    FLIP_ERRORS(FLIP_ERR_ENUM)
#undef FLIP_ERR_ENUM
};
#endif

/* Static text for a FLIP_* code; never NULL. */
const char *flip_strerror(int rv);

#endif
