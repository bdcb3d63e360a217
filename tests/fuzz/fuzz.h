/* Shared by the libFuzzer harnesses in tests/fuzz/: each one drives one
 * decoder of untrusted bytes and checks what it can without an oracle
 * (no crash, no leak, no sanitizer report, invariants that must hold for
 * any input). See tests/fuzz/README.md. */
#ifndef FLIP_TESTS_FUZZ_H
#define FLIP_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/frame.h"

/* An invariant broke: stop here so libFuzzer saves the input. */
#define FUZZ_ASSERT(x)        \
    do {                      \
        if (!(x)) {           \
            __builtin_trap(); \
        }                     \
    } while (0)

/* A cursor over the fuzzer's input, for harnesses that take parameters
 * (a chunk size, a mode) from its first bytes. */
struct fuzz_in
{
    const uint8_t *p;
    size_t n;
};

static inline unsigned fuzz_byte(struct fuzz_in *in)
{
    unsigned b = 0;
    if (in->n > 0) {
        b = in->p[0];
        in->p++;
        in->n--;
    }
    return b;
}

/* Called with each complete frame's payload; non-zero stops the stream
 * (the peer would close the connection there). */
typedef int (*fuzz_frame_cb)(void *arg, const uint8_t *payload, size_t len);

/* Feeds the rest of `in` to a stream buffer in reads of `chunk` bytes and
 * cuts frames of at most `max` bytes as the peers do (proto/frame.c). */
static inline void fuzz_frames(struct fuzz_in *in,
                               size_t chunk,
                               size_t max,
                               fuzz_frame_cb cb,
                               void *arg)
{
    struct buf stream;

    buf_init(&stream);
    while (in->n > 0) {
        size_t take = in->n < chunk ? in->n : chunk;
        FUZZ_ASSERT(buf_append(&stream, in->p, take) == FLIP_OK);
        in->p += take;
        in->n -= take;
        for (;;) {
            const uint8_t *payload = NULL;
            size_t len = 0;
            int rv = frame_next(&stream, max, &payload, &len);
            if (rv == FLIP_AGAIN) {
                break;
            }
            if (rv != FLIP_OK) {
                goto out; /* over the limit: the stream ends here */
            }
            FUZZ_ASSERT(len <= max);
            rv = cb(arg, payload, len);
            buf_consume(&stream, FRAME_HEADER + len);
            if (rv != 0) {
                goto out;
            }
        }
    }
out:
    buf_close(&stream);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
