/* Replicated log entries: encode a flipcmd.Command into the 8-byte-aligned
 * envelope libraft requires, and decode it back.
 *
 * Envelope (see proto/command.proto for the authoritative table):
 *   u32be payload length | u32be format (1) | protobuf | zero pad to 8.
 * Protobuf cannot absorb trailing zeros (tag 0 is invalid), hence the
 * explicit length. */
#ifndef FLIP_PROTO_COMMAND_H
#define FLIP_PROTO_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "command.pb-c.h"

#define COMMAND_FORMAT 1
#define COMMAND_HEADER 8

/* Bytes needed for the envelope of `cmd`: always a multiple of 8. */
size_t command_size(const Flipcmd__Command *cmd);

/* Writes the envelope into `out`, which holds command_size(cmd) bytes
 * (owned by the caller, e.g. raft_malloc'd). */
void command_write(const Flipcmd__Command *cmd, uint8_t *out);

/* Decodes an envelope. On success *out is owned by the caller and released
 * with command_free. FLIP_CORRUPT for any malformed envelope (wrong length,
 * unknown format, non-zero padding, bad protobuf), FLIP_NOMEM otherwise. */
int command_decode(const uint8_t *buf, size_t len, Flipcmd__Command **out);
void command_free(Flipcmd__Command *cmd);

/* Fills `out` with the validated members of `v` only (kind and its
 * scalar or string; strings borrowed from `v`): what goes into an entry or
 * a stored record, so unknown fields a client sent never pass through. */
void command_value_copy(const Flip__Value *v, Flip__Value *out);

#endif
