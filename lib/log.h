/* Levelled logging to stderr, one line per event.
 *
 * Lines look like "2026-11-26T07:30:00.123Z n1 INFO message". The node tag is
 * set once at startup. FLIP_TRACE=1 in the environment enables trace lines. */
#ifndef FLIP_LIB_LOG_H
#define FLIP_LIB_LOG_H

enum flip_log_level
{
    FLIP_LOG_TRACE,
    FLIP_LOG_INFO,
    FLIP_LOG_WARN,
    FLIP_LOG_ERROR
};

/* Sets the tag printed on every line (copied, truncated to 15 bytes) and
 * reads FLIP_TRACE from the environment. */
void flip_log_init(const char *tag);
/* Lines below this level are dropped. */
void flip_log_set_level(enum flip_log_level level);
void flip_log(enum flip_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define flip_tracef(...) flip_log(FLIP_LOG_TRACE, __VA_ARGS__)
#define flip_infof(...)  flip_log(FLIP_LOG_INFO, __VA_ARGS__)
#define flip_warnf(...)  flip_log(FLIP_LOG_WARN, __VA_ARGS__)
#define flip_errorf(...) flip_log(FLIP_LOG_ERROR, __VA_ARGS__)

#endif
