/* Allocation funnel; see heap.h. The fault hook is the only mutable
 * file-scope state outside the server struct, and only tests set it. */
#include "heap.h"

#include <stdlib.h>
#include <string.h>

static flip_heap_fault_fn fault_fn;
static void *fault_data;

void flip_heap_set_fault(flip_heap_fault_fn fn, void *data)
{
    fault_fn = fn;
    fault_data = data;
}

static int should_fail(void)
{
    return fault_fn != NULL && fault_fn(fault_data) != 0;
}

void *flip_malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size == 0 ? 1 : size);
}

void *flip_calloc(size_t n, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
}

void *flip_realloc(void *ptr, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(ptr, size == 0 ? 1 : size);
}

void flip_free(void *ptr)
{
    free(ptr);
}

char *flip_strndup(const char *s, size_t len)
{
    char *copy = flip_malloc(len + 1);
    if (copy == NULL) {
        return NULL;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *flip_strdup(const char *s)
{
    return flip_strndup(s, strlen(s));
}
