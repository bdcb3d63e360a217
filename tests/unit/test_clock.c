/* lib/clock: the UTC stamp format shared by log lines and flipctl, and the
 * monotonic clock never running backwards. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../lib/runner.h"
#include "lib/clock.h"

/* Milliseconds become an ISO-8601 UTC stamp with three fraction digits,
 * before the epoch too, and a buffer too short is cut, not overrun. */
TEST(clock_format_utc_stamps, 5)
{
    char out[40];
    char small[8];

    clock_format_utc(0, out, sizeof out);
    CHECK(strcmp(out, "1970-01-01T00:00:00.000Z") == 0);
    clock_format_utc(1764142200123, out, sizeof out);
    CHECK(strcmp(out, "2025-11-26T07:30:00.123Z") == 0);
    clock_format_utc(-1, out, sizeof out);
    CHECK(strcmp(out, "1969-12-31T23:59:59.999Z") == 0);
    clock_format_utc(0, small, sizeof small);
    CHECK(strlen(small) < sizeof small);
}

/* The monotonic clock in ms and ns agree and never go back; the realtime
 * clock is the wall time's seconds. */
TEST(clock_readings_agree, 5)
{
    int64_t ms = clock_mono_ms();
    uint64_t ns = clock_mono_ns();
    int64_t real = clock_real_ms();
    time_t wall = time(NULL);

    CHECK(ms > 0);
    CHECK((int64_t)(ns / 1000000u) >= ms);
    CHECK(clock_mono_ms() >= ms);
    CHECK(real / 1000 >= (int64_t)wall - 1);
    CHECK(real / 1000 <= (int64_t)wall + 1);
}
