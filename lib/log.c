/* Logging; see log.h. The tag and level are process-wide settings written
 * once at startup, before the loop runs. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

static char log_tag[16] = "flip";
static enum flip_log_level log_level = FLIP_LOG_INFO;

void flip_log_init(const char *tag)
{
    const char *trace = getenv("FLIP_TRACE");
    snprintf(log_tag, sizeof log_tag, "%s", tag);
    if (trace != NULL && strcmp(trace, "1") == 0) {
        log_level = FLIP_LOG_TRACE;
    }
}

void flip_log_set_level(enum flip_log_level level)
{
    log_level = level;
}

void flip_log(enum flip_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "TRACE", "INFO", "WARN", "ERROR" };
    char line[1024];
    char stamp[40];
    va_list ap;
    int n;

    if (level < log_level) {
        return;
    }
    clock_format_utc(clock_real_ms(), stamp, sizeof stamp);
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    fprintf(stderr, "%s %s %s %s\n", stamp, log_tag, names[level], line);
}
