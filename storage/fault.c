/* LMDB fault injection for tests; see fault.h. Like lib/heap.c's hook, the
 * only file-scope state, and only tests set it. */
#include "fault.h"

#include <stddef.h>

static store_fault_fn fault_fn;
static void *fault_data;

void store_fault_set(store_fault_fn fn, void *data)
{
    fault_fn = fn;
    fault_data = data;
}

int store_fault(const char *call)
{
    return fault_fn != NULL ? fault_fn(fault_data, call) : 0;
}
