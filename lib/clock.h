/* The clocks, in one place.
 *
 * Monotonic readings measure intervals and deadlines (never wall time);
 * the realtime reading is for timestamps: log lines, flipctl output, and
 * the time stamped into each log entry (Command.time_ms: the replicated
 * clock by which every replica ages request ids alike, raft/dedup.c).
 * clock_gettime cannot fail for these clock ids on Linux, so none of these
 * report an error; the thread CPU clock, which a kernel may lack, reads 0
 * there. */
#ifndef FLIP_LIB_CLOCK_H
#define FLIP_LIB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_mono_ms(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_mono_ns(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t clock_real_ms(void);
/* Writes "2026-11-26T07:30:00.123Z" for `ms` since the epoch into out (len
 * bytes, 32 is enough; "?" if the time cannot be broken down). */
void clock_format_utc(int64_t ms, char *out, size_t len);
/* CPU time of the calling thread, in nanoseconds; 0 when unknown. */
uint64_t clock_thread_cpu_ns(void);

#endif
