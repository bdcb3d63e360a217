/* The single allocation funnel of the process.
 *
 * Every allocation in flipd goes through flip_malloc/flip_realloc/flip_free,
 * so that one fault hook (tests/lib) can make the Nth allocation fail and a
 * test can prove that every caller handles FLIP_NOMEM cleanly. */
#ifndef FLIP_LIB_HEAP_H
#define FLIP_LIB_HEAP_H

#include <stddef.h>

void *flip_malloc(size_t size);
void *flip_calloc(size_t n, size_t size);
void *flip_realloc(void *ptr, size_t size);
void flip_free(void *ptr);
/* Copies a NUL-terminated string; NULL on allocation failure. */
char *flip_strdup(const char *s);
/* Copies len bytes and appends a NUL; NULL on allocation failure. */
char *flip_strndup(const char *s, size_t len);

/* Test hook: when set, called before each allocation; returning non-zero
 * makes that allocation fail. NULL (the default) never fails. */
typedef int (*flip_heap_fault_fn)(void *data);
void flip_heap_set_fault(flip_heap_fault_fn fn, void *data);

#endif
