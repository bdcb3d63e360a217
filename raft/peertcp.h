/* TCP_NODELAY on every raft peer connection, inbound and outbound.
 *
 * libraft 0.22.1's TCP transport (raft_uv_tcp) never sets it (libraft.so
 * imports neither uv_tcp_nodelay nor setsockopt), so Nagle's algorithm
 * holds a small AppendEntries back until the previous segment is
 * acknowledged, and the receiver delays that acknowledgement: pipelined
 * writes waited 40 ms (Linux's delayed ACK) at their tail (issue 9).
 * raft_uv takes any struct raft_uv_transport, so flipd keeps raft_uv_tcp
 * and puts itself in front of its listen and connect: every stream either
 * hands to raft gets TCP_NODELAY first.
 *
 * And TCP_USER_TIMEOUT. A peer cut off by the network (a partition, a dead
 * switch port) leaves the sender's segments unacknowledged, and the kernel
 * retransmits them at doubling intervals; over a few partitions in a row
 * the next try came 50-70 s after the network had healed, and raft_uv,
 * which has no timeout of its own, kept writing into that connection: a
 * follower stayed cut off long after the partition (the chaos `split`
 * scenario, 2026-12-07, a message of term 10 delivered 70 s late). With a
 * user timeout the kernel drops a connection whose data has waited that
 * long for an acknowledgement; raft_uv's next write fails and it connects
 * anew at once. Nothing else about the transport changes. */
#ifndef FLIP_RAFT_PEERTCP_H
#define FLIP_RAFT_PEERTCP_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

struct uv_loop_s;
struct peertcp;

/* Called when a connect to peer `id` succeeds after `refused` failed ones,
 * `waited_ms` (loop clock) after the first of them. */
typedef void (*peertcp_reached_cb)(struct peertcp *p,
                                   raft_id id,
                                   unsigned refused,
                                   uint64_t waited_ms);

#define PEERTCP_MAX_PEERS 16 /* peers whose refusals are counted */

struct peertcp_peer
{
    raft_id id;        /* 0 = free slot */
    unsigned refused;  /* failed connects since the last success */
    uint64_t first_at; /* uv_now of the first of them */
};

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
    raft_uv_accept_cb accept_cb;   /* raft_uv's */
    unsigned user_timeout_ms;      /* TCP_USER_TIMEOUT of every stream */
    uint64_t n_nodelay;            /* streams set */
    uint64_t n_failed;             /* streams the kernel refused an option */
    uint64_t n_refused;            /* connects that failed, all peers */
    struct uv_loop_s *loop;        /* clock of waited_ms */
    peertcp_reached_cb reached_cb; /* optional */
    struct peertcp_peer peer[PEERTCP_MAX_PEERS];
};

/* The user timeout for an election timeout: long enough that a loaded but
 * live peer always acknowledges in time (the kernel acknowledges, not the
 * process: even a paused peer does until its receive buffer fills), short
 * enough that a follower is back within seconds of a healed partition. */
unsigned peertcp_user_timeout_ms(unsigned election_ms);

/* How long raft_uv waits after a failed connect before the next one
 * (raft_uv_set_connect_retry_delay; raft_uv's own default is 1 s). A peer
 * that was stopped is reached again at most this long after it listens
 * once more, so a restarted follower hears its leader within it, instead of
 * 0-1000 ms later (500 ms on average, issue 9's cold restart row): a tenth
 * of the election timeout, never under a heartbeat nor over raft_uv's
 * 1 s. Each attempt at a dead peer costs a uv_getaddrinfo job on libuv's
 * thread pool (raft_uv resolves the address every time; a numeric address
 * resolves without a lookup) and a refused connect, microseconds on a LAN;
 * one that goes unanswered stays pending (no new attempt) until the kernel
 * gives up on it. */
unsigned peertcp_retry_delay_ms(unsigned heartbeat_ms, unsigned election_ms);

/* Call after raft_uv_tcp_init(&p->transport, ...) and before raft_uv_init:
 * puts the wrapper in front of the transport's listen and connect. `loop`
 * is the clock of the reached callback (p->reached_cb, set it any time). */
void peertcp_wrap(struct peertcp *p,
                  struct uv_loop_s *loop,
                  unsigned user_timeout_ms);

#endif
