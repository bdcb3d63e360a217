/* Test runner; see runner.h. Usage: unit [NAME-SUBSTRING...] */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "tmpdir.h"

#define RUNNER_MAX 512
#define SKIP_EXIT  77

/* A coverage build (make coverage: --coverage -DFLIP_COVERAGE) writes its
 * counters from an atexit handler; _exit skips it, so a passing child
 * flushes them itself first (failures and skips leave through exit). */
#ifdef FLIP_COVERAGE
void __gcov_dump(void);
#define COVERAGE_FLUSH() __gcov_dump()
#else
#define COVERAGE_FLUSH() ((void)0)
#endif

struct test_entry
{
    const char *name;
    test_fn fn;
    int timeout_s;
};

static struct test_entry tests[RUNNER_MAX];
static int n_tests;
static unsigned seed;

void runner_register(const char *name, test_fn fn, int timeout_s)
{
    if (n_tests == RUNNER_MAX) {
        fprintf(stderr, "runner: too many tests\n");
        abort();
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].timeout_s = timeout_s > 0 ? timeout_s : 10;
    n_tests++;
}

#ifdef FLIP_COVERAGE
static void abort_flush(int sig)
{
    COVERAGE_FLUSH();
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

void runner_coverage_on_abort(void)
{
#ifdef FLIP_COVERAGE
    signal(SIGABRT, abort_flush);
#endif
}

int runner_under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");

    return p != NULL && strstr(p, "vgpreload") != NULL;
}

void runner_skip(const char *why)
{
    fprintf(stderr, "  skipped: %s\n", why);
    exit(SKIP_EXIT);
}

unsigned runner_seed(void)
{
    return seed;
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc <= 1) {
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strstr(name, argv[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* Removes a test's temporary directory, which holds every flipd-test-*
 * directory it made: a failing test (CHECK exits at once) never reaches its
 * own cleanup. KEEP=1 keeps it after a failure, to look at. */
static void drop_tmp(const char *dir, int failed)
{
    const char *keep = getenv("KEEP");

    if (failed && keep != NULL && strcmp(keep, "1") == 0) {
        printf("      kept %s (KEEP=1)\n", dir);
        return;
    }
    tmpdir_remove(dir);
}

/* Runs one test in a child; returns 0 pass, 1 fail, 2 skip. The child's
 * TMPDIR is a fresh directory, removed once it ended. */
static int run_one(const struct test_entry *t)
{
    int64_t start = clock_mono_ms();
    int status = 0;
    char dir[1024];
    pid_t pid;
    pid_t w;
    int rv;

    tmpdir_make(dir, sizeof dir);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        tmpdir_remove(dir);
        return 1;
    }
    if (pid == 0) {
        if (setenv("TMPDIR", dir, 1) != 0) {
            perror("setenv");
            _exit(1);
        }
        alarm((unsigned)t->timeout_s);
        t->fn();
        fflush(NULL);
        COVERAGE_FLUSH();
        _exit(0);
    }
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    double took = (double)(clock_mono_ms() - start) / 1e3;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok    %-48s %6.2fs\n", t->name, took);
        rv = 0;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_EXIT) {
        printf("skip  %s\n", t->name);
        rv = 2;
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        printf("FAIL  %s: timed out after %ds (seed %u)\n", t->name,
               t->timeout_s, seed);
        rv = 1;
    } else if (WIFSIGNALED(status)) {
        printf("FAIL  %s: killed by signal %d (seed %u)\n", t->name,
               WTERMSIG(status), seed);
        rv = 1;
    } else {
        printf("FAIL  %s: exit %d (seed %u)\n", t->name, WEXITSTATUS(status),
               seed);
        rv = 1;
    }
    drop_tmp(dir, rv == 1);
    return rv;
}

int main(int argc, char **argv)
{
    const char *env_seed = getenv("FLIP_SEED");
    int passed = 0;
    int failed = 0;
    int skipped = 0;

    seed = env_seed != NULL ? (unsigned)strtoul(env_seed, NULL, 10)
                            : (unsigned)time(NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("FLIP_TEST_VERBOSE") == NULL) {
        flip_log_set_level(FLIP_LOG_WARN);
    }
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv)) {
            continue;
        }
        switch (run_one(&tests[i])) {
        case 0:
            passed++;
            break;
        case 2:
            skipped++;
            break;
        default:
            failed++;
            break;
        }
    }
    printf("unit: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed == 0 ? 0 : 1;
}
