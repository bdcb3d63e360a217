/* Length-prefixed framing: u32 big-endian length, then that many bytes of
 * one protobuf message. No sockets here: bytes in, frames out. */
#ifndef FLIP_PROTO_FRAME_H
#define FLIP_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define FRAME_HEADER      4
/* 1 MiB, both directions. */
#define FRAME_MAX_DEFAULT (1024u * 1024u)

/* Looks for one complete frame at the head of `in`.
 *
 * Returns FLIP_OK and sets payload and len (pointing into `in`, valid until
 * `in` is next modified; the caller then calls buf_consume(in, FRAME_HEADER
 * + len)), FLIP_AGAIN when more bytes are needed, or FLIP_TOOBIG when the
 * announced length exceeds `max` (checked before any body is buffered; the
 * connection cannot be resynchronised and must be closed). */
int frame_next(const struct buf *in,
               size_t max,
               const uint8_t **payload,
               size_t *len);

/* Writes the 4-byte header for a payload of `len` bytes. */
void frame_put_header(uint8_t *out, size_t len);

#endif
