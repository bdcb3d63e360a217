/* Framing, the client codec, validation and the log-entry envelope,
 * including every bad-input class a node can receive. */
#include <math.h>
#include <string.h>

#include "../lib/runner.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "proto/codec.h"
#include "proto/command.h"
#include "proto/frame.h"

static void frame_request(struct buf *b, const Flip__Request *req)
{
    CHECK_EQ_INT(codec_request_encode(req, FRAME_MAX_DEFAULT, b), FLIP_OK);
}

/* A frame split at every byte boundary is only returned once complete. */
TEST(frame_incremental, 5)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__GetRequest get = FLIP__GET_REQUEST__INIT;
    struct buf whole;
    struct buf in;
    const uint8_t *payload = NULL;
    size_t len = 0;

    buf_init(&whole);
    buf_init(&in);
    req.has_id = 1;
    req.id = 42;
    req.op_case = FLIP__REQUEST__OP_GET;
    get.key = "checkout.new_flow";
    req.get = &get;
    frame_request(&whole, &req);
    for (size_t i = 0; i < buf_len(&whole); i++) {
        CHECK_EQ_INT(frame_next(&in, FRAME_MAX_DEFAULT, &payload, &len),
                     FLIP_AGAIN);
        CHECK_EQ_INT(buf_append(&in, buf_head(&whole) + i, 1), FLIP_OK);
    }
    CHECK_EQ_INT(frame_next(&in, FRAME_MAX_DEFAULT, &payload, &len), FLIP_OK);
    CHECK_EQ_INT(len, buf_len(&whole) - FRAME_HEADER);
    Flip__Request *out = NULL;
    CHECK_EQ_INT(codec_request_decode(payload, len, &out), FLIP_OK);
    CHECK_EQ_INT(out->id, 42);
    CHECK(out->op_case == FLIP__REQUEST__OP_GET);
    CHECK(strcmp(out->get->key, "checkout.new_flow") == 0);
    codec_request_free(out);
    buf_close(&whole);
    buf_close(&in);
}

/* An oversized length prefix is refused before any body is buffered. */
TEST(frame_oversized_refused_early, 5)
{
    struct buf in;
    uint8_t hdr[4];
    const uint8_t *payload = NULL;
    size_t len = 0;

    buf_init(&in);
    frame_put_header(hdr, FRAME_MAX_DEFAULT + 1);
    CHECK_EQ_INT(buf_append(&in, hdr, 4), FLIP_OK);
    CHECK_EQ_INT(frame_next(&in, FRAME_MAX_DEFAULT, &payload, &len),
                 FLIP_TOOBIG);
    frame_put_header(hdr, 0xFFFFFFFFu);
    buf_reset(&in);
    CHECK_EQ_INT(buf_append(&in, hdr, 4), FLIP_OK);
    CHECK_EQ_INT(frame_next(&in, FRAME_MAX_DEFAULT, &payload, &len),
                 FLIP_TOOBIG);
    buf_close(&in);
}

/* No frame is encoded over its limit: a message of exactly `max` bytes is
 * framed, one byte over is FLIP_TOOBIG with nothing written. */
TEST(codec_encode_at_its_limit, 5)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__GetRequest get = FLIP__GET_REQUEST__INIT;
    struct buf out;
    size_t n;

    req.id = 7;
    req.op_case = FLIP__REQUEST__OP_GET;
    req.get = &get;
    get.key = "checkout.new_flow";
    n = protobuf_c_message_get_packed_size(&req.base);
    buf_init(&out);
    CHECK_EQ_INT(codec_request_encode(&req, n - 1, &out), FLIP_TOOBIG);
    CHECK_EQ_INT(buf_len(&out), 0);
    CHECK_EQ_INT(codec_request_encode(&req, n, &out), FLIP_OK);
    CHECK_EQ_INT(buf_len(&out), FRAME_HEADER + n);
    buf_close(&out);
}

/* Garbage bytes do not decode as a Request; a truncated message neither. */
TEST(codec_garbage_and_truncated, 5)
{
    Flip__Request *out = NULL;
    uint8_t garbage[64];
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__SetRequest set = FLIP__SET_REQUEST__INIT;
    struct buf b;

    for (size_t i = 0; i < sizeof garbage; i++) {
        garbage[i] = (uint8_t)(0xFF - i * 7);
    }
    CHECK_EQ_INT(codec_request_decode(garbage, sizeof garbage, &out),
                 FLIP_PROTO);
    buf_init(&b);
    req.op_case = FLIP__REQUEST__OP_SET;
    set.key = "a.b";
    set.reason = "a long enough reason to be cut in the middle";
    req.set = &set;
    frame_request(&b, &req);
    CHECK_EQ_INT(codec_request_decode(buf_head(&b) + FRAME_HEADER,
                                      buf_len(&b) - FRAME_HEADER - 5, &out),
                 FLIP_PROTO);
    buf_close(&b);
}

/* An op this version does not know decodes with no op set (answered with
 * UNKNOWN_TYPE by dispatch), and an empty frame likewise. */
TEST(codec_unknown_op, 5)
{
    /* field 99, varint 1: an op from a future protocol */
    uint8_t future[] = { 0x98, 0x06, 0x01 };
    Flip__Request *out = NULL;

    CHECK_EQ_INT(codec_request_decode(future, sizeof future, &out), FLIP_OK);
    CHECK(codec_request_is_unknown(out));
    codec_request_free(out);
    CHECK_EQ_INT(codec_request_decode(future, 0, &out), FLIP_OK);
    CHECK(codec_request_is_unknown(out));
    codec_request_free(out);
}

/* Keys: charset and length limits. */
TEST(codec_keys, 5)
{
    const char *why = NULL;
    char long_key[CODEC_KEY_MAX + 2];

    CHECK_EQ_INT(codec_check_key("checkout.new_flow", &why), FLIP_OK);
    CHECK_EQ_INT(codec_check_key("team/a:b-c_d.e9", &why), FLIP_OK);
    CHECK_EQ_INT(codec_check_key("", &why), FLIP_INVALID);
    CHECK_EQ_INT(codec_check_key(NULL, &why), FLIP_INVALID);
    CHECK_EQ_INT(codec_check_key("has space", &why), FLIP_INVALID);
    CHECK_EQ_INT(codec_check_key("caf\xc3\xa9", &why), FLIP_INVALID);
    memset(long_key, 'k', sizeof long_key);
    long_key[CODEC_KEY_MAX] = '\0';
    CHECK_EQ_INT(codec_check_key(long_key, &why), FLIP_OK);
    long_key[CODEC_KEY_MAX] = 'k';
    long_key[CODEC_KEY_MAX + 1] = '\0';
    CHECK_EQ_INT(codec_check_key(long_key, &why), FLIP_TOOBIG);
    CHECK_EQ_INT(codec_check_prefix("", &why), FLIP_OK);
}

/* Values: every type, wrong and oversized ones. */
TEST(codec_values, 5)
{
    Flip__Value v = FLIP__VALUE__INIT;
    const char *why = NULL;
    static char big[CODEC_VALUE_MAX + 2];

    CHECK_EQ_INT(codec_check_value(NULL, &why), FLIP_INVALID);
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_INVALID);
    v.kind_case = FLIP__VALUE__KIND_BOOL_VALUE;
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_OK);
    v.kind_case = FLIP__VALUE__KIND_DOUBLE_VALUE;
    v.double_value = NAN;
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_INVALID);
    v.double_value = 0.25;
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_OK);
    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    v.string_value = "\xff\xfe";
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_INVALID);
    memset(big, 'x', sizeof big - 1);
    v.string_value = big;
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_TOOBIG);
    v.kind_case = FLIP__VALUE__KIND_JSON_VALUE;
    v.json_value = "{\"a\": [1, 2.5e3, true, null, \"x\\u00e9\"]}";
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_OK);
    v.json_value = "{\"a\": }";
    CHECK_EQ_INT(codec_check_value(&v, &why), FLIP_INVALID);
}

/* The JSON checker accepts RFC 8259 text and nothing else. */
TEST(codec_json, 5)
{
    const char *good[] = { "0",    "-1.5e-3", "\"s\"",
                           "[]",   "{}",      " [ 1 , {} ] ",
                           "true", "null",    "{\"k\":{\"k\":[false]}}" };
    const char *bad[] = {
        "",        "01",    "1.",      "[1,]", "{\"a\"}",       "tru",
        "\"\\x\"", "[1] 2", "{'a':1}", "NaN",  "\"unterminated"
    };
    char deep[200];

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(codec_json_valid(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!codec_json_valid(bad[i], strlen(bad[i])));
    }
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CHECK(!codec_json_valid(deep, sizeof deep)); /* nesting over 64 */
}

/* Every log entry handed to raft is a multiple of 8 bytes and decodes back;
 * corrupt envelopes are refused. */
TEST(command_envelope_padding, 5)
{
    Flipcmd__Command cmd = FLIPCMD__COMMAND__INIT;
    Flipcmd__Change ch = FLIPCMD__CHANGE__INIT;
    Flipcmd__Change *chs[1] = { &ch };
    Flip__Value v = FLIP__VALUE__INIT;
    char key[64];
    uint8_t buf[512];

    cmd.n_changes = 1;
    cmd.changes = chs;
    ch.has_op = 1;
    ch.op = FLIPCMD__OP__SET;
    ch.value = &v;
    v.kind_case = FLIP__VALUE__KIND_STRING_VALUE;
    for (size_t n = 1; n < 40; n++) {
        Flipcmd__Command *out = NULL;
        size_t size;
        memset(key, 'a', n);
        key[n] = '\0';
        ch.key = key;
        v.string_value = key;
        size = command_size(&cmd);
        CHECK(size % 8 == 0);
        CHECK(size <= sizeof buf);
        command_write(&cmd, buf);
        CHECK_EQ_INT(command_decode(buf, size, &out), FLIP_OK);
        CHECK(strcmp(out->changes[0]->key, key) == 0);
        command_free(out);
        /* wrong length, dirty padding, unknown format */
        CHECK_EQ_INT(command_decode(buf, size - 1, &out), FLIP_CORRUPT);
        if (size > COMMAND_HEADER + buf_get_u32be(buf)) {
            buf[size - 1] = 1;
            CHECK_EQ_INT(command_decode(buf, size, &out), FLIP_CORRUPT);
            buf[size - 1] = 0;
        }
        buf[7] = 9;
        CHECK_EQ_INT(command_decode(buf, size, &out), FLIP_CORRUPT);
    }
}
