/* TCP_NODELAY on every raft peer connection, inbound and outbound.
 *
 * libraft 0.22.1's TCP transport (raft_uv_tcp) never sets it (libraft.so
 * imports neither uv_tcp_nodelay nor setsockopt), so Nagle's algorithm
 * holds a small AppendEntries back until the previous segment is
 * acknowledged, and the receiver delays that acknowledgement: pipelined
 * writes waited 40 ms (Linux's delayed ACK) at their tail (issue 9).
 * raft_uv takes any struct raft_uv_transport, so flipd keeps raft_uv_tcp
 * and puts itself in front of its listen and connect: every stream either
 * hands to raft gets TCP_NODELAY first. Nothing else about the transport
 * changes. */
#ifndef FLIP_RAFT_PEERTCP_H
#define FLIP_RAFT_PEERTCP_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

struct peertcp
{
    /* raft_uv's transport; first, so the accept callback, which gets only
     * the transport, finds the rest */
    struct raft_uv_transport transport;
    int (*next_listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*next_connect)(struct raft_uv_transport *t,
                        struct raft_uv_connect *req,
                        raft_id id,
                        const char *address,
                        raft_uv_connect_cb cb);
    raft_uv_accept_cb accept_cb; /* raft_uv's */
    uint64_t n_nodelay;          /* streams set */
    uint64_t n_failed;           /* streams the kernel refused it for */
};

/* Call after raft_uv_tcp_init(&p->transport, ...) and before raft_uv_init:
 * puts the wrapper in front of the transport's listen and connect. */
void peertcp_wrap(struct peertcp *p);

#endif
