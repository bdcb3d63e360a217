/* What a store looks like from outside, for tests that check it did not
 * change (or changed exactly as another did): content hash, applied
 * index, compacted point and logical size. */
#ifndef FLIP_TESTS_SHAPE_H
#define FLIP_TESTS_SHAPE_H

#include <stdint.h>

#include "storage/store.h"

struct shape
{
    uint64_t hash;
    uint64_t applied;
    uint64_t compacted;
    uint64_t bytes;
};

struct shape shape_of(struct store *s);
/* The store in directory `dir` (not open), as a fresh process sees it. */
struct shape shape_in(const char *dir);
int shape_same(const struct shape *a, const struct shape *b);
/* Fails the test (with both shapes printed) unless they are the same. */
void shape_check(const struct shape *got, const struct shape *want);

#endif
