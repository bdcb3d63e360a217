/* Protobuf wire bits for the bench programs that read messages by hand:
 * fanout scans every subscriber's frames without unpacking them (cheap
 * with 10000 sockets), etcd_grpc has no generated code for etcd's
 * messages. Leaf code: libc only. */
#ifndef FLIPD_BENCH_BPB_H
#define FLIPD_BENCH_BPB_H

#include <stdint.h>

/* Reads one varint at *p (not past end) into *out and advances *p over
 * it: 0, or -1 when it is truncated or longer than 64 bits. */
int bench_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

#endif
