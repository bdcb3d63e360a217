/* A tiny test runner: one forked process per test, a timeout per test, a
 * name filter, and the closing line "N passed, N failed, N skipped" that CI
 * reads.
 *
 *   TEST(store_put_get, 10) { ... CHECK(x == 1); ... }
 *
 * Tests register themselves at load time (constructor), so adding a test is
 * one block in one file. Each test's comment says the behaviour it proves. */
#ifndef FLIP_TESTS_RUNNER_H
#define FLIP_TESTS_RUNNER_H

#include <stdio.h>
#include <stdlib.h>

typedef void (*test_fn)(void);

void runner_register(const char *name, test_fn fn, int timeout_s);
/* Marks the running test as skipped and ends it. */
void runner_skip(const char *why) __attribute__((noreturn));
/* True when the test runs under valgrind (everything is ~50x slower):
 * for sizes that only measure speed, not for skipping checks. */
int runner_under_valgrind(void);
/* The seed for this run (FLIP_SEED, or time-based); printed on failure. */
unsigned runner_seed(void);
/* In a process a test forks that is expected to abort (the FSM's stop on
 * a local failure): a coverage build writes its counters before it dies.
 * Nothing otherwise. */
void runner_coverage_on_abort(void);

#define TEST(name, timeout_s)                                 \
    static void test_##name(void);                            \
    __attribute__((constructor)) static void reg_##name(void) \
    {                                                         \
        runner_register(#name, test_##name, timeout_s);       \
    }                                                         \
    static void test_##name(void)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  CHECK failed: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                               \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
    do {                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                  \
        if (a_ != b_) {                                                      \
            fprintf(stderr,                                                  \
                    "  CHECK failed: %s == %s (%lld != %lld) (%s:%d)\n", #a, \
                    #b, a_, b_, __FILE__, __LINE__);                         \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#endif
