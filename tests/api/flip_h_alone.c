/* The public header alone: compiled with only a copy of client/flip.h on
 * the include path (Makefile, rule for this file), -std=c11 -Wall -Wextra
 * -Wpedantic -Werror, so that flip.h including anything of the project,
 * or needing anything it does not include, fails the build.
 *
 * It also hands the unit tests the public return codes by name
 * (test_public_api compares them with lib/err.h's table, which cannot be
 * in the same file: the two define the same enum). */
#include "flip.h"

struct flip_public_code
{
    const char *name;
    int value;
};

extern const struct flip_public_code flip_public_codes[];
extern const size_t flip_public_n_codes;

#define P(code)     \
    {               \
#code, code \
    }

const struct flip_public_code flip_public_codes[] = {
    P(FLIP_OK),        P(FLIP_NOMEM),          P(FLIP_INVALID),
    P(FLIP_TOOBIG),    P(FLIP_NOTFOUND),       P(FLIP_CONFLICT),
    P(FLIP_NOTLEADER), P(FLIP_UNAVAILABLE),    P(FLIP_IOERR),
    P(FLIP_NOSPACE),   P(FLIP_CORRUPT),        P(FLIP_AGAIN),
    P(FLIP_BUSY),      P(FLIP_LEADERSHIPLOST), P(FLIP_UNSUPPORTED),
    P(FLIP_PROTO),     P(FLIP_TIMEOUT),        P(FLIP_CLOSED),
    P(FLIP_INTERNAL),  P(FLIP_TYPEMISMATCH),   P(FLIP_STOREFULL),
};

const size_t flip_public_n_codes =
    sizeof flip_public_codes / sizeof flip_public_codes[0];
