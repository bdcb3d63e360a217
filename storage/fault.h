/* Test-only fault injection into the store's LMDB calls, in the spirit of
 * SQLite's fail-the-Nth tests (and of lib/heap.h's allocation hook).
 *
 * A test sets a hook; the store asks it before each LMDB call that can
 * fail on a write path (write txn begin and commit, get, put, del, drop,
 * stat, cursor open/get/del; store.c marks them with STORE_MDB). A
 * non-zero answer (an errno value or an MDB_* code) is returned as that
 * call's result and the call is not made. Without a hook (every process
 * but the unit tests that set one) it costs one predictable branch per
 * call, next to a B-tree operation.
 *
 * tests/unit/test_store_faults.c loops N = 1, 2, ... failing the Nth call
 * of an apply, a restore and the store's write functions, and checks that
 * the store is left as it was or as it would be without the fault. */
#ifndef FLIP_STORAGE_FAULT_H
#define FLIP_STORAGE_FAULT_H

/* Returns 0 to let `call` (a short name: "put", "commit", ...) run, or the
 * error it should return instead. */
typedef int (*store_fault_fn)(void *data, const char *call);

/* NULL (the default) injects nothing. */
void store_fault_set(store_fault_fn fn, void *data);

/* The error to inject into `call`, 0 for none (STORE_MDB's helper). */
int store_fault(const char *call);

/* `expr` (an LMDB call returning int), unless the hook fails it. */
#define STORE_MDB(call, expr)                \
    __extension__({                          \
        int fault_rc_ = store_fault(call);   \
        fault_rc_ != 0 ? fault_rc_ : (expr); \
    })

#endif
