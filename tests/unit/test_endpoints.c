/* client/endpoints: the endpoint list both the request client and the
 * watch parse, and the backoff both sleep. */
#include <stdint.h>
#include <string.h>

#include "../lib/runner.h"
#include "client/endpoints.h"
#include "lib/err.h"

static void destroy(struct wire *eps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wire_destroy(&eps[i]);
    }
}

/* Blanks around items are trimmed and empty items skipped; more than max,
 * none at all, or one bad address is FLIP_INVALID, with what was built
 * left counted for the caller to destroy. */
TEST(endpoints_parse_list, 5)
{
    struct wire eps[3];
    size_t n = 0;

    CHECK_EQ_INT(endpoints_parse(" 127.0.0.1:1 ,,\t[::1]:2 ,", eps, 3, &n),
                 FLIP_OK);
    CHECK_EQ_INT(n, 2);
    CHECK(strcmp(eps[0].addr, "127.0.0.1:1") == 0);
    CHECK(strcmp(eps[1].addr, "[::1]:2") == 0);
    destroy(eps, n);
    n = 0;
    CHECK_EQ_INT(endpoints_parse("a:1,b:2,c:3,d:4", eps, 3, &n), FLIP_INVALID);
    CHECK_EQ_INT(n, 3);
    destroy(eps, n);
    n = 0;
    CHECK_EQ_INT(endpoints_parse(" , ,", eps, 3, &n), FLIP_INVALID);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(endpoints_parse("a:1,nope", eps, 3, &n), FLIP_INVALID);
    CHECK_EQ_INT(n, 1);
    destroy(eps, n);
}

/* The backoff doubles from min to max and each sleep lies in [b/2, b]. */
TEST(endpoints_backoff_doubles_with_jitter, 5)
{
    unsigned b = 0;
    uint64_t rng = endpoints_seed(&b);
    unsigned want[] = { 10, 20, 40, 50, 50 };

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t ms = endpoints_backoff(&rng, &b, 10, 50);
        CHECK_EQ_INT(b, want[i]);
        CHECK(ms >= (int64_t)want[i] / 2 && ms <= (int64_t)want[i]);
    }
}
