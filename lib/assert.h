/* Always-on assertions: a replicated store must crash rather than diverge.
 * flip_assert stays in release builds; flip_dassert is for debug builds. */
#ifndef FLIP_LIB_ASSERT_H
#define FLIP_LIB_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define flip_assert(cond)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "flipd: assertion failed: %s (%s:%d)\n", #cond, \
                    __FILE__, __LINE__);                                    \
            abort();                                                        \
        }                                                                   \
    } while (0)

#ifdef NDEBUG
#define flip_dassert(cond) ((void)0)
#else
#define flip_dassert(cond) flip_assert(cond)
#endif

#endif
