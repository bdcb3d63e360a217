/* codec_request_has_nul: an embedded U+0000 in any string field of a
 * Request is seen on the raw frame, at any nesting depth, while every
 * other valid encoding (unknown fields, repeated fields, zero varints,
 * non-minimal lengths) passes. */
#include <string.h>

#include "../lib/runner.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "proto/codec.h"

/* Appends a protobuf varint. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    do {
        p[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v != 0) {
            p[n] |= 0x80;
        }
        n++;
    } while (v != 0);
    return n;
}

/* Appends field `num` as length-delimited bytes. */
static size_t put_bytes(uint8_t *p, unsigned num, const void *data, size_t len)
{
    size_t n = put_varint(p, ((uint64_t)num << 3) | 2);
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

/* Request{id: 7, set: {key, value: {string_value: text}}} into out. */
static size_t set_frame(uint8_t *out,
                        const char *key,
                        size_t klen,
                        const char *text,
                        size_t tlen)
{
    uint8_t value[256];
    uint8_t set[512];
    size_t nv = put_bytes(value, 4, text, tlen);
    size_t ns = put_bytes(set, 1, key, klen);
    size_t n = 0;

    ns += put_bytes(set + ns, 2, value, nv);
    out[n++] = 0x08; /* id */
    out[n++] = 7;
    n += put_bytes(out + n, 11, set, ns);
    return n;
}

/* Decodes and scans; the frame must decode. */
static int scan(const uint8_t *p, size_t n)
{
    Flip__Request *req = NULL;

    CHECK_EQ_INT(codec_request_decode(p, n, &req), FLIP_OK);
    codec_request_free(req);
    return codec_request_has_nul(p, n);
}

/* A NUL in a nested string (Request.set.value.string_value) or in a key
 * is found; the same frame without it is clean. protobuf-c alone would
 * hand over "a" for "a\0b" (the silent truncation of F12). */
TEST(codec_nul_found_in_nested_strings, 5)
{
    uint8_t f[1024];
    size_t n;
    Flip__Request *req = NULL;

    n = set_frame(f, "k", 1, "a\0b", 3);
    CHECK_EQ_INT(scan(f, n), 1);
    CHECK_EQ_INT(codec_request_decode(f, n, &req), FLIP_OK);
    CHECK(strcmp(req->set->value->string_value, "a") == 0); /* the trap */
    codec_request_free(req);
    n = set_frame(f, "k\0z", 3, "ab", 2);
    CHECK_EQ_INT(scan(f, n), 1);
    n = set_frame(f, "k", 1, "\0", 1);
    CHECK_EQ_INT(scan(f, n), 1);
    n = set_frame(f, "k", 1, "ab", 2);
    CHECK_EQ_INT(scan(f, n), 0);
}

/* Every text field a Request has is covered, through the generated
 * descriptors: Hello.client_name, Set.actor and reason, Delete.actor,
 * List.prefix and start_after, Subscribe.prefixes (repeated). */
TEST(codec_nul_every_text_field, 5)
{
    static const struct
    {
        unsigned op;
        unsigned field;
    } cases[] = { { 10, 2 }, { 10, 3 }, { 11, 3 }, { 11, 4 }, { 12, 1 },
                  { 12, 3 }, { 13, 1 }, { 14, 1 }, { 14, 3 }, { 16, 1 } };
    uint8_t inner[64];
    uint8_t f[128];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t ni = put_bytes(inner, cases[i].field, "x\0y", 3);
        size_t n = put_bytes(f, cases[i].op, inner, ni);
        CHECK_EQ_INT(scan(f, n), 1);
        ni = put_bytes(inner, cases[i].field, "xy", 2);
        n = put_bytes(f, cases[i].op, inner, ni);
        CHECK_EQ_INT(scan(f, n), 0);
    }
}

/* Valid encodings from other runtimes are not refused: zero bytes inside
 * varints and fixed fields (id 0, expected_revision 0, a double 0.0), an
 * unknown length-delimited field full of zeros, a field sent twice, a
 * non-minimal length varint, and an empty frame. */
TEST(codec_nul_other_encodings_pass, 5)
{
    uint8_t f[256];
    uint8_t set[128];
    uint8_t value[32];
    size_t n = 0;
    size_t ns = 0;
    size_t nv = 0;

    value[nv++] = (3 << 3) | 1; /* double_value = 0.0 */
    memset(value + nv, 0, 8);
    nv += 8;
    ns += put_bytes(set + ns, 1, "k", 1);
    ns += put_bytes(set + ns, 2, value, nv);
    set[ns++] = 5 << 3; /* expected_revision = 0 */
    set[ns++] = 0;
    ns += put_bytes(set + ns, 77, "\0\0\0\0", 4); /* unknown field */
    ns += put_bytes(set + ns, 1, "k", 1);         /* key again: last wins */
    set[ns++] = (3 << 3) | 2;                     /* reason, length 2 ... */
    set[ns++] = 0x82;                             /* ... as a 2-byte varint */
    set[ns++] = 0x00;
    set[ns++] = 'o';
    set[ns++] = 'k';
    f[n++] = 0x08; /* id = 0 */
    f[n++] = 0;
    n += put_bytes(f + n, 11, set, ns);
    n += put_bytes(f + n, 99, "\0", 1); /* unknown top-level field */
    CHECK_EQ_INT(scan(f, n), 0);
    CHECK_EQ_INT(scan(f, 0), 0);
}

/* Bytes that stop making sense mid-way (a length past the end) never make
 * the scan read outside the frame; it reports no NUL (decode refuses
 * such a frame first anyway). */
TEST(codec_nul_truncated_input_is_safe, 5)
{
    uint8_t f[] = { 0x5A, 0x40, 0x0A, 0x01 }; /* set: length 64 of 2 */

    CHECK_EQ_INT(codec_request_has_nul(f, sizeof f), 0);
    CHECK_EQ_INT(codec_request_has_nul(f, 1), 0);
}
