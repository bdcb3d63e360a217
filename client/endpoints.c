/* See endpoints.h. */
#include "client/endpoints.h"

#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"

int endpoints_parse(const char *csv, struct wire *eps, size_t max, size_t *n)
{
    char one[WIRE_ADDR_MAX + 1];
    const char *p = csv;
    const char *end;
    size_t len;
    int rv;

    for (;;) {
        end = strchr(p, ',');
        len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len > 0) {
            if (len > WIRE_ADDR_MAX || *n == max) {
                return FLIP_INVALID;
            }
            memcpy(one, p, len);
            one[len] = '\0';
            rv = wire_init(&eps[*n], one);
            if (rv != FLIP_OK) {
                return rv;
            }
            (*n)++;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return *n > 0 ? FLIP_OK : FLIP_INVALID;
}

uint64_t endpoints_seed(const void *owner)
{
    uint64_t rng = ((uint64_t)clock_mono_ms() << 20) ^ (uint64_t)getpid() ^
                   (uint64_t)(uintptr_t)owner;

    return rng | 1;
}

uint64_t endpoints_random(uint64_t *rng)
{
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    return *rng * 2685821657736338717ull;
}

int64_t endpoints_backoff(uint64_t *rng,
                          unsigned *backoff_ms,
                          unsigned min_ms,
                          unsigned max_ms)
{
    unsigned b = *backoff_ms == 0 ? min_ms : *backoff_ms * 2;

    if (b > max_ms) {
        b = max_ms;
    }
    *backoff_ms = b;
    return (int64_t)(b / 2) + (int64_t)(endpoints_random(rng) % (b / 2 + 1));
}
