/* The one flipd protocol client of the bench programs (kvbench, fanout):
 * frames out (u32 big-endian length + a packed Request, the bytes
 * proto/codec.c's codec_request_encode produces), Hello, frames in, and a
 * Response read without allocating. The programs own their sockets and
 * epoll loops; this holds only what the wire says. bigstore and
 * snapshot_stall are blocking tools and use the library client/ instead.
 *
 * Responses are read by a small protobuf field scanner rather than
 * protobuf-c's unpack: fanout reads 10,000 streams and an allocation per
 * frame is the cost the bench would measure. fanout cross-checks the
 * scanner against flip__response__unpack on one subscriber. */
#ifndef FLIPD_BENCH_BFLIP_H
#define FLIPD_BENCH_BFLIP_H

#include <stddef.h>
#include <stdint.h>

#include "client/wire.h"
#include "lib/buf.h"

#define BFLIP_HDR         4u              /* u32 big-endian payload length */
#define BFLIP_FRAME_LIMIT (1024u * 1024u) /* the protocol's default limit */

/* Response result members (proto/flip.proto field numbers). */
#define BFLIP_R_HELLO 10u
#define BFLIP_R_SET   11u
#define BFLIP_R_SUB   16u
#define BFLIP_R_EVENT 17u

/* Event types (Flip__Event__Type). */
#define BFLIP_EV_SNAPSHOT_BEGIN 1u
#define BFLIP_EV_SNAPSHOT_END   3u
#define BFLIP_EV_CHANGE         4u
#define BFLIP_EV_HEARTBEAT      5u

/* What the bench programs read from one Response; pointers go into the
 * frame. */
struct bflip_view
{
    uint64_t id;
    int has_error;
    unsigned status;
    const uint8_t *msg;
    size_t msg_len;
    const uint8_t *leader; /* NOT_LEADER: the leader's client address */
    size_t leader_len;
    uint64_t resume_rev;
    uint32_t result;  /* field number of the result member, 0 if none */
    uint64_t set_rev; /* SetResult.revision */
    unsigned ev_type;
    uint64_t ev_rev;
    int ev_resync;
};

/* Appends one frame holding req to out: 0, or -1 out of memory. */
int bflip_put(struct buf *out, Flip__Request *req);

/* Appends Hello{protocol_version 1, client_name name} with request id. */
int bflip_put_hello(struct buf *out, uint64_t id, const char *name);

/* Whether p[0..n) starts with a whole frame: 1 with *len its payload
 * length, 0 when more bytes are needed, -1 when the header announces more
 * than BFLIP_FRAME_LIMIT. */
int bflip_frame(const uint8_t *p, size_t n, size_t *len);

/* Reads the Response payload p[0..n) into *v: 0, or -1 malformed. */
int bflip_scan(const uint8_t *p, size_t n, struct bflip_view *v);

/* The Flip__Status name of status, or "unknown status". */
const char *bflip_status_name(unsigned status);

#endif
