/* See status.h. Both directions are switches rather than one table: the
 * server side folds several codes into one status and the client side
 * several statuses into one code. */
#include "status.h"

#include "lib/err.h"

Flip__Status status_from_flip(int rv)
{
    switch (rv) {
    case FLIP_OK:
        return FLIP__STATUS__OK;
    case FLIP_NOTLEADER:
        return FLIP__STATUS__NOT_LEADER;
    case FLIP_NOTFOUND:
        return FLIP__STATUS__NOT_FOUND;
    case FLIP_CONFLICT:
        return FLIP__STATUS__CAS_CONFLICT;
    case FLIP_INVALID:
        return FLIP__STATUS__INVALID_ARGUMENT;
    case FLIP_TOOBIG:
        return FLIP__STATUS__TOO_LARGE;
    case FLIP_LEADERSHIPLOST:
        return FLIP__STATUS__LEADERSHIP_LOST;
    case FLIP_NOSPACE:
        return FLIP__STATUS__NO_SPACE;
    case FLIP_STOREFULL:
        return FLIP__STATUS__STORE_FULL;
    case FLIP_TYPEMISMATCH:
        return FLIP__STATUS__TYPE_MISMATCH;
    case FLIP_UNAVAILABLE:
    case FLIP_BUSY:
        return FLIP__STATUS__UNAVAILABLE;
    default:
        return FLIP__STATUS__INTERNAL;
    }
}

int status_to_flip(Flip__Status status)
{
    switch (status) {
    case FLIP__STATUS__OK:
        return FLIP_OK;
    case FLIP__STATUS__NOT_LEADER:
        return FLIP_NOTLEADER;
    case FLIP__STATUS__NOT_FOUND:
        return FLIP_NOTFOUND;
    case FLIP__STATUS__CAS_CONFLICT:
        return FLIP_CONFLICT;
    case FLIP__STATUS__INVALID_ARGUMENT:
        return FLIP_INVALID;
    case FLIP__STATUS__TOO_LARGE:
        return FLIP_TOOBIG;
    case FLIP__STATUS__UNAVAILABLE:
        return FLIP_UNAVAILABLE;
    case FLIP__STATUS__UNSUPPORTED_VERSION:
    case FLIP__STATUS__UNKNOWN_TYPE:
        return FLIP_UNSUPPORTED;
    case FLIP__STATUS__LEADERSHIP_LOST:
        return FLIP_LEADERSHIPLOST;
    case FLIP__STATUS__PROTOCOL_ERROR:
        return FLIP_PROTO;
    case FLIP__STATUS__NO_SPACE:
        return FLIP_NOSPACE;
    case FLIP__STATUS__TYPE_MISMATCH:
        return FLIP_TYPEMISMATCH;
    case FLIP__STATUS__STORE_FULL:
        return FLIP_STOREFULL;
    default:
        return FLIP_INTERNAL;
    }
}
