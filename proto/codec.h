/* Packing, unpacking and validation of the client protocol (flip.proto).
 *
 * The only place that builds or frees generated flip.pb-c messages coming
 * off the wire. Every allocation goes through lib/heap.
 *
 * Limits (also in docs/protocol.md):
 *   key      1..256 bytes of [A-Za-z0-9] and . _ - / :
 *   value    string / JSON text up to 64 KiB; JSON must parse; doubles finite
 *   reason   up to 1024 bytes, actor up to 128 bytes, prefix up to 256 bytes
 *   frame    FRAME_MAX_DEFAULT (1 MiB) unless configured otherwise */
#ifndef FLIP_PROTO_CODEC_H
#define FLIP_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "flip.pb-c.h"
#include "lib/buf.h"

#define CODEC_PROTOCOL_VERSION 1
#define CODEC_KEY_MAX          256
#define CODEC_VALUE_MAX        (64u * 1024u)
#define CODEC_REASON_MAX       1024
#define CODEC_ACTOR_MAX        128
/* Smallest --max-frame a node accepts: twice the largest response that
 * carries one flag (a 64 KiB value plus key, actor, reason and revisions
 * come to about 67 KB), so a get, a snapshot item or a one-change event
 * always fits a frame. */
#define CODEC_FRAME_MIN        (128u * 1024u)

/* The allocator handed to protobuf-c: routes through lib/heap. */
extern ProtobufCAllocator codec_allocator;

/* codec_allocator that also sets *short_of_memory when an allocation fails:
 * protobuf-c's unpack returns NULL alike for a malformed message and for a
 * short allocation, and the FSM must not take the second for the first.
 * Memory from it is freed with codec_allocator. */
ProtobufCAllocator codec_allocator_noting(int *short_of_memory);

/* Unpacks one Request. On success *out is owned by the caller and freed
 * with codec_request_free. Returns FLIP_PROTO when the bytes are not a
 * Request, FLIP_NOMEM on allocation failure. An unknown `op` is not an error
 * here: it decodes with op_case NOT_SET (see codec_request_is_unknown). */
int codec_request_decode(const uint8_t *p, size_t n, Flip__Request **out);
void codec_request_free(Flip__Request *req);
/* True when the request carried an op this version does not know. */
int codec_request_is_unknown(const Flip__Request *req);

/* True when a string field anywhere in the encoded Request p[0..n) (key,
 * value, actor, reason, client_name, prefixes, ...) contains a zero byte,
 * which the decoded C strings would silently cut off. Call it on the raw
 * frame of a request that decoded; the server refuses such a request with
 * INVALID_ARGUMENT (docs/protocol.md section 10). */
int codec_request_has_nul(const uint8_t *p, size_t n);

/* Same for Response (used by the client library). */
int codec_response_decode(const uint8_t *p, size_t n, Flip__Response **out);
void codec_response_free(Flip__Response *resp);

/* Appends one frame (header + packed message) to `out`. FLIP_TOOBIG when
 * the packed size exceeds `max`; FLIP_NOMEM leaves `out` unchanged. */
int codec_request_encode(const Flip__Request *req, size_t max, struct buf *out);
int codec_response_encode(const Flip__Response *resp,
                          size_t max,
                          struct buf *out);

/* Validation; each returns FLIP_OK, FLIP_INVALID or FLIP_TOOBIG and, on
 * error, a static message in *why. */
int codec_check_key(const char *key, const char **why);
int codec_check_prefix(const char *prefix, const char **why);
int codec_check_value(const Flip__Value *v, const char **why);
int codec_check_text(const char *text, size_t max, const char **why);

/* Strict JSON syntax check (RFC 8259), bounded nesting depth 64. */
int codec_json_valid(const char *text, size_t len);

#endif
