/* The flipd wire for the bench programs (bflip.h). A malformed Response
 * (truncated varint, length past the end, a group) is -1 and the caller
 * closes that connection; unknown fields are skipped, as protobuf-c does. */
#include "bflip.h"

#include <string.h>

/* Error, SetResult and Event fields (proto/flip.proto). */
#define F_RESP_ID     1u
#define F_RESP_ERROR  2u
#define F_ERR_STATUS  1u
#define F_ERR_MESSAGE 2u
#define F_ERR_LEADER  3u
#define F_ERR_RESUME  6u
#define F_SET_REV     1u
#define F_EV_TYPE     1u
#define F_EV_REVISION 2u
#define F_EV_RESYNC   4u

int bflip_put(struct buf *out, Flip__Request *req)
{
    size_t n = flip__request__get_packed_size(req);

    if (buf_reserve(out, BFLIP_HDR + n) != 0) {
        return -1;
    }
    buf_put_u32be(buf_tail(out), (uint32_t)n);
    flip__request__pack(req, buf_tail(out) + BFLIP_HDR);
    buf_commit(out, BFLIP_HDR + n);
    return 0;
}

int bflip_put_hello(struct buf *out, uint64_t id, const char *name)
{
    Flip__Request req = FLIP__REQUEST__INIT;
    Flip__Hello hello = FLIP__HELLO__INIT;

    hello.has_protocol_version = 1;
    hello.protocol_version = 1;
    hello.client_name = (char *)name; /* only read by pack */
    req.has_id = 1;
    req.id = id;
    req.op_case = FLIP__REQUEST__OP_HELLO;
    req.hello = &hello;
    return bflip_put(out, &req);
}

int bflip_frame(const uint8_t *p, size_t n, size_t *len)
{
    uint32_t l;

    if (n < BFLIP_HDR) {
        return 0;
    }
    l = buf_get_u32be(p);
    if (l > BFLIP_FRAME_LIMIT) {
        return -1;
    }
    *len = l;
    return n >= BFLIP_HDR + (size_t)l;
}

struct pb_field
{
    uint32_t num;
    unsigned wt;
    uint64_t v;       /* varint value, or the length of a LEN field */
    const uint8_t *p; /* LEN field: its bytes */
};

/* Reads one varint at *p (not past end) into *out and advances *p over
 * it: 0, or -1 when it is truncated or longer than 64 bits. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        v |= (uint64_t)(b & 0x7fu) << shift;
        if ((b & 0x80u) == 0) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The next field of a message: 1 with *f filled, 0 at the end, -1 when the
 * bytes are malformed (groups are malformed too: flip.proto has none). */
static int pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
    uint64_t key;

    if (*p >= end) {
        return 0;
    }
    if (pb_varint(p, end, &key) != 0 || (key >> 3) == 0 ||
        (key >> 3) > 0x1fffffffu) {
        return -1;
    }
    f->num = (uint32_t)(key >> 3);
    f->wt = (unsigned)(key & 7u);
    f->p = NULL;
    f->v = 0;
    switch (f->wt) {
    case 0:
        return pb_varint(p, end, &f->v) == 0 ? 1 : -1;
    case 1:
        if (end - *p < 8) {
            return -1;
        }
        *p += 8;
        return 1;
    case 2:
        if (pb_varint(p, end, &f->v) != 0 || f->v > (uint64_t)(end - *p)) {
            return -1;
        }
        f->p = *p;
        *p += f->v;
        return 1;
    case 5:
        if (end - *p < 4) {
            return -1;
        }
        *p += 4;
        return 1;
    default:
        return -1;
    }
}

static int scan_error(const uint8_t *p,
                      const uint8_t *end,
                      struct bflip_view *v)
{
    struct pb_field f;
    int r;

    v->has_error = 1;
    while ((r = pb_next(&p, end, &f)) > 0) {
        if (f.num == F_ERR_STATUS && f.wt == 0) {
            v->status = (unsigned)f.v;
        } else if (f.num == F_ERR_MESSAGE && f.wt == 2) {
            v->msg = f.p;
            v->msg_len = (size_t)f.v;
        } else if (f.num == F_ERR_LEADER && f.wt == 2) {
            v->leader = f.p;
            v->leader_len = (size_t)f.v;
        } else if (f.num == F_ERR_RESUME && f.wt == 0) {
            v->resume_rev = f.v;
        }
    }
    return r;
}

/* The members of SetResult and Event the bench reads. */
static int scan_result(const uint8_t *p,
                       const uint8_t *end,
                       struct bflip_view *v)
{
    struct pb_field f;
    int r;

    while ((r = pb_next(&p, end, &f)) > 0) {
        if (f.wt != 0) {
            continue;
        }
        if (v->result == BFLIP_R_SET && f.num == F_SET_REV) {
            v->set_rev = f.v;
        } else if (v->result == BFLIP_R_EVENT && f.num == F_EV_TYPE) {
            v->ev_type = (unsigned)f.v;
        } else if (v->result == BFLIP_R_EVENT && f.num == F_EV_REVISION) {
            v->ev_rev = f.v;
        } else if (v->result == BFLIP_R_EVENT && f.num == F_EV_RESYNC) {
            v->ev_resync = f.v != 0;
        }
    }
    return r;
}

int bflip_scan(const uint8_t *p, size_t n, struct bflip_view *v)
{
    const uint8_t *end = p + n;
    struct pb_field f;
    int r;

    memset(v, 0, sizeof *v);
    while ((r = pb_next(&p, end, &f)) > 0) {
        if (f.num == F_RESP_ID && f.wt == 0) {
            v->id = f.v;
        } else if (f.num == F_RESP_ERROR && f.wt == 2) {
            if (scan_error(f.p, f.p + f.v, v) < 0) {
                return -1;
            }
        } else if (f.num >= BFLIP_R_HELLO && f.wt == 2) {
            v->result = f.num;
            if (scan_result(f.p, f.p + f.v, v) < 0) {
                return -1;
            }
        }
    }
    return r;
}

const char *bflip_status_name(unsigned status)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
        &flip__status__descriptor, (int)status);

    return ev != NULL ? ev->name : "unknown status";
}
