/* The one mapping between flip.proto's Status enum and the FLIP_* codes of
 * lib/err.h, both directions, next to the enum it maps.
 *
 *   FLIP_*               wire Status           back to FLIP_*
 *   OK                   OK                    OK
 *   NOTLEADER            NOT_LEADER            NOTLEADER
 *   NOTFOUND             NOT_FOUND             NOTFOUND
 *   CONFLICT             CAS_CONFLICT          CONFLICT
 *   INVALID              INVALID_ARGUMENT      INVALID
 *   TOOBIG               TOO_LARGE             TOOBIG
 *   LEADERSHIPLOST       LEADERSHIP_LOST       LEADERSHIPLOST
 *   NOSPACE              NO_SPACE              NOSPACE
 *   STOREFULL            STORE_FULL            STOREFULL
 *   TYPEMISMATCH         TYPE_MISMATCH         TYPEMISMATCH
 *   UNAVAILABLE, BUSY    UNAVAILABLE           UNAVAILABLE
 *   anything else        INTERNAL              INTERNAL
 *
 * Statuses only a client receives: UNSUPPORTED_VERSION and UNKNOWN_TYPE
 * read as FLIP_UNSUPPORTED, PROTOCOL_ERROR as FLIP_PROTO; SLOW_CONSUMER,
 * AHEAD_OF_NODE and values this build does not know read as FLIP_INTERNAL
 * (the watch handles the first two before it asks). */
#ifndef FLIP_PROTO_STATUS_H
#define FLIP_PROTO_STATUS_H

#include "flip.pb-c.h"

/* The wire status a server answers for the FLIP_* code `rv` (rv != OK). */
Flip__Status status_from_flip(int rv);
/* The FLIP_* code a client reports for the wire status `status`. */
int status_to_flip(Flip__Status status);

#endif
