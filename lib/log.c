/* Logging; see log.h. The tag and level are process-wide settings written
 * once at startup, before the loop runs. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level < log_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    fprintf(stderr, "%s.%03ldZ %s %s %s\n", stamp, ts.tv_nsec / 1000000L,
            log_tag, names[level], line);
}
