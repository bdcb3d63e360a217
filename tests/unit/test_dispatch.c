/* Requests kept in flight drop their unknown fields (F11: protobuf-c keeps
 * every unknown field, about 30x the wire bytes, for as long as the
 * request lives). */
#include <string.h>

#include "../lib/runner.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "server/dispatch.h"

/* Appends an unknown varint field (number 99) to a packed message. */
static size_t add_unknown(uint8_t *p, size_t n, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        p[n++] = 0x98; /* field 99, varint: (99 << 3) | 0 = 792 */
        p[n++] = 0x06;
        p[n++] = 0x01;
    }
    return n;
}

/* Unknown fields at the top, in the op and inside the value are all gone
 * after stripping; what the server reads is unchanged. */
TEST(dispatch_strips_unknown_fields, 10)
{
    Flip__Value v = FLIP__VALUE__INIT;
    Flip__SetRequest set = FLIP__SET_REQUEST__INIT;
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Request *got = NULL;
    uint8_t value[64];
    uint8_t setmsg[256];
    uint8_t wire[512];
    size_t vn;
    size_t sn;
    size_t n;

    /* value with 3 unknown fields, set with 2, request with 4 */
    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = "on";
    vn = add_unknown(value, flip__value__pack(&v, value), 3);
    set.key = "a.b";
    sn = flip__set_request__pack(&set, setmsg);
    setmsg[sn++] = 0x12; /* field 2 (value), length-delimited */
    setmsg[sn++] = (uint8_t)vn;
    memcpy(setmsg + sn, value, vn);
    sn = add_unknown(setmsg, sn + vn, 2);
    req.has_id = 1;
    req.id = 7;
    n = flip__request__pack(&req, wire);
    wire[n++] = 0x5a; /* field 11 (set), length-delimited */
    wire[n++] = (uint8_t)sn;
    memcpy(wire + n, setmsg, sn);
    n = add_unknown(wire, n + sn, 4);

    CHECK_EQ_INT(codec_request_decode(wire, n, &got), FLIP_OK);
    CHECK_EQ_INT(got->base.n_unknown_fields, 4);
    CHECK_EQ_INT(got->set->base.n_unknown_fields, 2);
    CHECK_EQ_INT(got->set->value->base.n_unknown_fields, 3);
    dispatch_strip_unknown(&got->base);
    CHECK_EQ_INT(got->base.n_unknown_fields, 0);
    CHECK_EQ_INT(got->set->base.n_unknown_fields, 0);
    CHECK_EQ_INT(got->set->value->base.n_unknown_fields, 0);
    CHECK(got->id == 7);
    CHECK(strcmp(got->set->key, "a.b") == 0);
    CHECK(strcmp(got->set->value->string_value, "on") == 0);
    codec_request_free(got); /* nothing freed twice (ASan build) */
}
