/* LD_PRELOAD helper for test_store_shutdown.sh (built by the test itself):
 * watches and slows the LMDB store's disk calls of one flipd process.
 *
 *   STORE_IO_LOG=FILE      appends one line per event to FILE:
 *                            sync-start / sync-end RC  mdb_env_sync called
 *                                                      off the main thread
 *                                                      (flipd's periodic
 *                                                      background sync)
 *                            fsync-dir PATH            fsync of a directory
 *   STORE_IO_SLOW_MS=N     that background sync first sleeps N ms (after
 *                          logging sync-start), so a shutdown can be sent
 *                          while it is in flight
 *
 * The main thread's own syncs (store_close) are passed through untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct MDB_env MDB_env;
typedef int (*env_sync_fn)(MDB_env *, int);
typedef int (*fsync_fn)(int);

static pid_t main_tid;

__attribute__((constructor)) static void remember_main_thread(void)
{
    main_tid = gettid();
}

static void log_line(const char *what, const char *arg)
{
    const char *path = getenv("STORE_IO_LOG");
    FILE *f;

    if (path == NULL || (f = fopen(path, "a")) == NULL) {
        return;
    }
    fprintf(f, "%s %s\n", what, arg);
    fclose(f);
}

int mdb_env_sync(MDB_env *env, int force)
{
    static env_sync_fn real;
    const char *slow = getenv("STORE_IO_SLOW_MS");
    char rc_text[16];
    int background = gettid() != main_tid;
    int rc;

    if (real == NULL) {
        real = (env_sync_fn)dlsym(RTLD_NEXT, "mdb_env_sync");
    }
    if (background) {
        log_line("sync-start", "-");
        if (slow != NULL) {
            long ms = strtol(slow, NULL, 10);
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    rc = real(env, force);
    if (background) {
        snprintf(rc_text, sizeof rc_text, "%d", rc);
        log_line("sync-end", rc_text);
    }
    return rc;
}

int fsync(int fd)
{
    static fsync_fn real;
    struct stat st;
    char link[64];
    char target[PATH_MAX];
    ssize_t n;

    if (real == NULL) {
        real = (fsync_fn)dlsym(RTLD_NEXT, "fsync");
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            log_line("fsync-dir", target);
        }
    }
    return real(fd);
}
