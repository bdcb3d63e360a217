/* See num.h. */
#include "num.h"

#include <stddef.h>

#include "err.h"

int num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0') {
        return FLIP_INVALID;
    }
    for (; *s != '\0'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (*s < '0' || *s > '9' || v > (UINT64_MAX - d) / 10) {
            return FLIP_INVALID;
        }
        v = v * 10 + d;
    }
    if (v < min || v > max) {
        return FLIP_INVALID;
    }
    *out = v;
    return FLIP_OK;
}
