/* LD_PRELOAD helper for test_low_disk_room.sh (built by the test itself):
 * makes flipd's free-space check see a nearly full disk without filling
 * one.
 *
 *   FAKE_STATVFS_UNDER=DIR   statvfs() of a path that starts with DIR ...
 *   FAKE_STATVFS_FREE=BYTES  ... reports BYTES available (to the caller and
 *                            to root alike)
 *   FAKE_STATVFS_LOG=FILE    and appends the path to FILE, one line a call,
 *                            so the test can count the calls
 *
 * Any other path, or a missing variable, gets the real answer. flipd calls
 * statvfs only for known-issues #13's room check (raft/ioshim.c); raft_uv
 * uses fstatfs, which is left alone. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

typedef int (*statvfs_fn)(const char *, struct statvfs *);

int statvfs(const char *path, struct statvfs *buf)
{
    static statvfs_fn real;
    const char *under = getenv("FAKE_STATVFS_UNDER");
    const char *free_s = getenv("FAKE_STATVFS_FREE");
    const char *log = getenv("FAKE_STATVFS_LOG");
    int rv;

    if (real == NULL) {
        real = (statvfs_fn)dlsym(RTLD_NEXT, "statvfs");
        if (real == NULL) {
            return -1;
        }
    }
    rv = real(path, buf);
    if (rv != 0 || under == NULL || free_s == NULL ||
        strncmp(path, under, strlen(under)) != 0) {
        return rv;
    }
    if (buf->f_frsize != 0) {
        unsigned long long bytes = strtoull(free_s, NULL, 10);
        buf->f_bavail = (fsblkcnt_t)(bytes / buf->f_frsize);
        buf->f_bfree = buf->f_bavail;
    }
    if (log != NULL) {
        FILE *f = fopen(log, "a");
        if (f != NULL) {
            fprintf(f, "%s\n", path);
            fclose(f);
        }
    }
    return rv;
}
