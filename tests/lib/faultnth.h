/* Makes the Nth allocation of the calling thread fail (lib/heap.h's fault
 * hook), for out-of-memory tests that run fake nodes in other threads:
 * their allocations are neither counted nor failed. */
#ifndef FLIP_TESTS_FAULTNTH_H
#define FLIP_TESTS_FAULTNTH_H

/* From now on the calling thread's nth allocation fails (1 is the next
 * one; 0: none fails, they are only counted). */
void faultnth_start(int nth);
/* Allocations the thread made since faultnth_start, the failed one
 * included. */
int faultnth_count(void);
/* Every allocation succeeds again. */
void faultnth_stop(void);

#endif
