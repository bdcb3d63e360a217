/* The growable buffer keeps bytes in order across growth and compaction. */
#include <string.h>

#include "../lib/runner.h"
#include "lib/buf.h"
#include "lib/err.h"

/* Appending, consuming and regrowing preserves unread bytes. */
TEST(buf_append_consume, 5)
{
    struct buf b;
    uint8_t chunk[100];
    size_t expect = 0;

    buf_init(&b);
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof chunk; i++) {
            chunk[i] = (uint8_t)(round + i);
        }
        CHECK_EQ_INT(buf_append(&b, chunk, sizeof chunk), FLIP_OK);
        expect += sizeof chunk;
        CHECK_EQ_INT(buf_len(&b), expect);
        buf_consume(&b, 60);
        expect -= 60;
        CHECK_EQ_INT(buf_head(&b)[expect - 1], (uint8_t)(round + 99));
    }
    buf_close(&b);
}
