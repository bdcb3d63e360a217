/* Fresh temporary directories for tests, removed by tmpdir_remove. */
#ifndef FLIP_TESTS_TMPDIR_H
#define FLIP_TESTS_TMPDIR_H

#include <stddef.h>

/* Creates a new directory and writes its path into out (size n). Aborts the
 * test on failure. */
void tmpdir_make(char *out, size_t n);
/* Removes the directory and everything below it. */
void tmpdir_remove(const char *path);

#endif
