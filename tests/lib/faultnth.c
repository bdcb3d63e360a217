/* Nth-allocation faults for one thread; see faultnth.h. */
#include "faultnth.h"

#include <pthread.h>

#include "lib/heap.h"

static pthread_t victim;
static int fail_at;
static int allocs;

static int fault(void *data)
{
    (void)data;
    if (!pthread_equal(pthread_self(), victim)) {
        return 0;
    }
    return ++allocs == fail_at;
}

void faultnth_start(int nth)
{
    victim = pthread_self();
    fail_at = nth;
    allocs = 0;
    flip_heap_set_fault(fault, NULL);
}

int faultnth_count(void)
{
    return allocs;
}

void faultnth_stop(void)
{
    flip_heap_set_fault(NULL, NULL);
}
