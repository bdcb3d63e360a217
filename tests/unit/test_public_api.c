/* client/flip.h's return codes are lib/err.h's, name for name and number
 * for number (tests/api/flip_h_alone.c lists the public ones). */
#include <stddef.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/err.h"

struct flip_public_code
{
    const char *name;
    int value;
};

extern const struct flip_public_code flip_public_codes[];
extern const size_t flip_public_n_codes;

static int public_value(const char *name)
{
    for (size_t i = 0; i < flip_public_n_codes; i++) {
        if (strcmp(flip_public_codes[i].name, name) == 0) {
            return flip_public_codes[i].value;
        }
    }
    return -1;
}

/* Every internal code is public with the same number, and no public code
 * is unknown inside. */
TEST(public_api_codes_match, 5)
{
    size_t n = 0;

#define CHECK_CODE(name, num, text)           \
    CHECK_EQ_INT(public_value(#name), (num)); \
    n++;
    FLIP_ERRORS(CHECK_CODE)
#undef CHECK_CODE
    CHECK_EQ_INT(n, flip_public_n_codes);
}
