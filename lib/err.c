/* The text of every FLIP_* code, generated from the one table in err.h. */
#include "err.h"

const char *flip_strerror(int rv)
{
    switch (rv) {
#define FLIP_ERR_CASE(name, num, text) \
    case num:                          \
        return text;
        FLIP_ERRORS(FLIP_ERR_CASE)
#undef FLIP_ERR_CASE
    default:
        return "unknown error";
    }
}
