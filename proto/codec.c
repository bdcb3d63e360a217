/* Client protocol codec and validation; see codec.h. */
#include "codec.h"

#include <math.h>
#include <string.h>

#include "frame.h"
#include "lib/err.h"
#include "lib/heap.h"

static void *codec_alloc(void *data, size_t size)
{
    (void)data;
    return flip_malloc(size);
}

static void codec_release(void *data, void *ptr)
{
    (void)data;
    flip_free(ptr);
}

ProtobufCAllocator codec_allocator = { codec_alloc, codec_release, NULL };

static void *codec_alloc_noting(void *data, size_t size)
{
    void *p = flip_malloc(size);

    if (p == NULL) {
        *(int *)data = 1;
    }
    return p;
}

ProtobufCAllocator codec_allocator_noting(int *short_of_memory)
{
    ProtobufCAllocator a = { codec_alloc_noting, codec_release,
                             short_of_memory };

    *short_of_memory = 0;
    return a;
}

int codec_request_decode(const uint8_t *p, size_t n, Flip__Request **out)
{
    /* protobuf-c cannot tell a short allocation from a malformed message;
     * both come back as NULL and the caller treats the frame as garbage. */
    *out = flip__request__unpack(&codec_allocator, n, p);
    return *out == NULL ? FLIP_PROTO : FLIP_OK;
}

/* ---- embedded NUL -------------------------------------------------------- */

/* protobuf-c hands every `string` field over as a NUL-terminated char *
 * and drops its wire length, so "a\0b" would silently become "a". The
 * only reliable witness is the frame itself: this walks its encoding with
 * the message descriptors and looks inside every string field for a zero
 * byte. It works on any valid encoding (field order, repeated or unknown
 * fields, non-minimal varints), unlike comparing a re-packed size. */

#define NUL_SCAN_DEPTH 16

static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;

    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        if (shift < 64) {
            r |= (uint64_t)(b & 0x7F) << shift;
        }
        if ((b & 0x80) == 0) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* 1 if a string field of `desc` (or of a message inside it) in p[0..n)
 * holds a zero byte; 0 if none does or the bytes stop making sense (they
 * decoded already, so that is an encoding this scan does not follow). */
static int scan_nul(const ProtobufCMessageDescriptor *desc,
                    const uint8_t *p,
                    size_t n,
                    int depth)
{
    const uint8_t *end = p + n;

    if (depth > NUL_SCAN_DEPTH) {
        return 0;
    }
    while (p < end) {
        const ProtobufCFieldDescriptor *f;
        uint64_t key;
        uint64_t len;

        if (!wire_varint(&p, end, &key)) {
            return 0;
        }
        switch (key & 7) {
        case 0:
            if (!wire_varint(&p, end, &len)) {
                return 0;
            }
            continue;
        case 1:
            if ((size_t)(end - p) < 8) {
                return 0;
            }
            p += 8;
            continue;
        case 5:
            if ((size_t)(end - p) < 4) {
                return 0;
            }
            p += 4;
            continue;
        case 2:
            break;
        default:
            return 0; /* groups: no flip message has one */
        }
        if (!wire_varint(&p, end, &len) || len > (uint64_t)(end - p)) {
            return 0;
        }
        f = key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(
                                         desc, (unsigned)(key >> 3))
                                   : NULL;
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
            memchr(p, 0, (size_t)len) != NULL) {
            return 1;
        }
        if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            scan_nul(f->descriptor, p, (size_t)len, depth + 1)) {
            return 1;
        }
        p += len;
    }
    return 0;
}

int codec_request_has_nul(const uint8_t *p, size_t n)
{
    return scan_nul(&flip__request__descriptor, p, n, 0);
}

void codec_request_free(Flip__Request *req)
{
    if (req != NULL) {
        flip__request__free_unpacked(req, &codec_allocator);
    }
}

int codec_request_is_unknown(const Flip__Request *req)
{
    return req->op_case == FLIP__REQUEST__OP__NOT_SET;
}

int codec_response_decode(const uint8_t *p, size_t n, Flip__Response **out)
{
    *out = flip__response__unpack(&codec_allocator, n, p);
    return *out == NULL ? FLIP_PROTO : FLIP_OK;
}

void codec_response_free(Flip__Response *resp)
{
    if (resp != NULL) {
        flip__response__free_unpacked(resp, &codec_allocator);
    }
}

static int encode(const ProtobufCMessage *msg, size_t max, struct buf *out)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    int rv;

    if (size > max) {
        return FLIP_TOOBIG;
    }
    rv = buf_reserve(out, FRAME_HEADER + size);
    if (rv != FLIP_OK) {
        return rv;
    }
    frame_put_header(buf_tail(out), size);
    protobuf_c_message_pack(msg, buf_tail(out) + FRAME_HEADER);
    buf_commit(out, FRAME_HEADER + size);
    return FLIP_OK;
}

int codec_request_encode(const Flip__Request *req, size_t max, struct buf *out)
{
    return encode(&req->base, max, out);
}

int codec_response_encode(const Flip__Response *resp,
                          size_t max,
                          struct buf *out)
{
    return encode(&resp->base, max, out);
}

/* ---- validation -------------------------------------------------------- */

static int key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
           c == '/' || c == ':';
}

static int check_name(const char *s, int allow_empty, const char **why)
{
    size_t len;

    if (s == NULL) {
        if (allow_empty) {
            return FLIP_OK;
        }
        *why = "key is required";
        return FLIP_INVALID;
    }
    len = strlen(s);
    if (len == 0 && !allow_empty) {
        *why = "key is empty";
        return FLIP_INVALID;
    }
    if (len > CODEC_KEY_MAX) {
        *why = "key longer than 256 bytes";
        return FLIP_TOOBIG;
    }
    for (size_t i = 0; i < len; i++) {
        if (!key_char_ok((unsigned char)s[i])) {
            *why = "key may only contain A-Z a-z 0-9 . _ - / :";
            return FLIP_INVALID;
        }
    }
    return FLIP_OK;
}

int codec_check_key(const char *key, const char **why)
{
    return check_name(key, 0, why);
}

int codec_check_prefix(const char *prefix, const char **why)
{
    return check_name(prefix, 1, why);
}

static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        if (len - i <= n) {
            return 0;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += n + 1;
    }
    return 1;
}

int codec_check_text(const char *text, size_t max, const char **why)
{
    size_t len;

    if (text == NULL) {
        return FLIP_OK;
    }
    len = strlen(text);
    if (len > max) {
        *why = "text too long";
        return FLIP_TOOBIG;
    }
    if (!utf8_valid((const unsigned char *)text, len)) {
        *why = "text is not valid UTF-8";
        return FLIP_INVALID;
    }
    return FLIP_OK;
}

int codec_check_value(const Flip__Value *v, const char **why)
{
    const char *s;
    size_t len;

    if (v == NULL) {
        *why = "value is required";
        return FLIP_INVALID;
    }
    switch (v->kind_case) {
    case FLIP__VALUE__KIND_BOOL_VALUE:
    case FLIP__VALUE__KIND_INT_VALUE:
        return FLIP_OK;
    case FLIP__VALUE__KIND_DOUBLE_VALUE:
        if (!isfinite(v->double_value)) {
            *why = "double value must be finite";
            return FLIP_INVALID;
        }
        return FLIP_OK;
    case FLIP__VALUE__KIND_STRING_VALUE:
        s = v->string_value;
        len = strlen(s);
        if (len > CODEC_VALUE_MAX) {
            *why = "value larger than 64 KiB";
            return FLIP_TOOBIG;
        }
        if (!utf8_valid((const unsigned char *)s, len)) {
            *why = "string value is not valid UTF-8";
            return FLIP_INVALID;
        }
        return FLIP_OK;
    case FLIP__VALUE__KIND_JSON_VALUE:
        s = v->json_value;
        len = strlen(s);
        if (len > CODEC_VALUE_MAX) {
            *why = "value larger than 64 KiB";
            return FLIP_TOOBIG;
        }
        if (!codec_json_valid(s, len)) {
            *why = "json value is not valid JSON";
            return FLIP_INVALID;
        }
        return FLIP_OK;
    default:
        *why = "value has no type";
        return FLIP_INVALID;
    }
}

/* ---- JSON syntax check ------------------------------------------------- */

struct json_cursor
{
    const char *p;
    const char *end;
    int depth;
};

static void json_ws(struct json_cursor *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

static int json_lit(struct json_cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) {
        return 0;
    }
    c->p += n;
    return 1;
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int json_string(struct json_cursor *c)
{
    c->p++; /* opening quote */
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            return 1;
        }
        if (ch < 0x20) {
            return 0;
        }
        if (ch == '\\') {
            if (c->p >= c->end) {
                return 0;
            }
            ch = (unsigned char)*c->p++;
            if (ch == 'u') {
                for (int i = 0; i < 4; i++) {
                    if (c->p >= c->end || !is_hex(*c->p)) {
                        return 0;
                    }
                    c->p++;
                }
            } else if (strchr("\"\\/bfnrt", ch) == NULL) {
                return 0;
            }
        }
    }
    return 0;
}

static int json_number(struct json_cursor *c)
{
    if (c->p < c->end && *c->p == '-') {
        c->p++;
    }
    if (c->p >= c->end || !is_digit(*c->p)) {
        return 0;
    }
    if (*c->p == '0') {
        c->p++;
    } else {
        while (c->p < c->end && is_digit(*c->p)) {
            c->p++;
        }
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p)) {
            return 0;
        }
        while (c->p < c->end && is_digit(*c->p)) {
            c->p++;
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) {
            c->p++;
        }
        if (c->p >= c->end || !is_digit(*c->p)) {
            return 0;
        }
        while (c->p < c->end && is_digit(*c->p)) {
            c->p++;
        }
    }
    return 1;
}

static int json_value(struct json_cursor *c);

/* Arrays and objects share one loop; `close` is ']' or '}'. */
static int json_container(struct json_cursor *c, char close)
{
    if (++c->depth > 64) {
        return 0;
    }
    c->p++;
    json_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return 1;
    }
    for (;;) {
        json_ws(c);
        if (close == '}') {
            if (c->p >= c->end || *c->p != '"' || !json_string(c)) {
                return 0;
            }
            json_ws(c);
            if (c->p >= c->end || *c->p != ':') {
                return 0;
            }
            c->p++;
        }
        if (!json_value(c)) {
            return 0;
        }
        json_ws(c);
        if (c->p >= c->end) {
            return 0;
        }
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            c->depth--;
            return 1;
        }
        return 0;
    }
}

static int json_value(struct json_cursor *c)
{
    json_ws(c);
    if (c->p >= c->end) {
        return 0;
    }
    switch (*c->p) {
    case '{':
        return json_container(c, '}');
    case '[':
        return json_container(c, ']');
    case '"':
        return json_string(c);
    case 't':
        return json_lit(c, "true");
    case 'f':
        return json_lit(c, "false");
    case 'n':
        return json_lit(c, "null");
    default:
        return json_number(c);
    }
}

int codec_json_valid(const char *text, size_t len)
{
    struct json_cursor c = { text, text + len, 0 };

    if (!utf8_valid((const unsigned char *)text, len) || !json_value(&c)) {
        return 0;
    }
    json_ws(&c);
    return c.p == c.end;
}
