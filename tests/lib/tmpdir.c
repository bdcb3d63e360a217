/* Temporary directories for tests; see tmpdir.h. */
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"

void tmpdir_make(char *out, size_t n)
{
    const char *base = getenv("TMPDIR");
    int len =
        snprintf(out, n, "%s/flipd-test-XXXXXX", base != NULL ? base : "/tmp");
    CHECK(len > 0 && (size_t)len < n);
    CHECK(mkdtemp(out) != NULL);
}

void tmpdir_remove(const char *path)
{
    char cmd[1200];
    if (strstr(path, "flipd-test-") == NULL) {
        return; /* never remove anything we did not make */
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: could not remove %s\n", path);
    }
}
