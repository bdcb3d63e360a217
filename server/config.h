/* flipd's command line, parsed and validated into struct config. Pure: no
 * loop, no I/O, so it is unit tested directly. */
#ifndef FLIP_SERVER_CONFIG_H
#define FLIP_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "raft/node.h"

struct config
{
    uint64_t id;
    char data_dir[512];
    char client_address[NODE_ADDR_MAX];
    char raft_address[NODE_ADDR_MAX];
    char raft_bind[NODE_ADDR_MAX]; /* listen here instead; "" = raft_address */
    struct node_member members[NODE_MAX_MEMBERS];
    unsigned n_members;
    char join[1024]; /* --join endpoints; "" = --cluster (bootstraps) */
    unsigned election_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    uint64_t changelog_keep;
    uint64_t max_store_bytes; /* size budget, see store_bytes */
    uint32_t max_frame;
    unsigned max_conns;
    size_t segment_size;
    size_t sub_buffer; /* per-subscriber output bound, bytes */
    unsigned sub_heartbeat_ms;
    /* resource bounds (docs/protocol.md section 10) */
    unsigned max_inflight;     /* requests in flight per connection */
    unsigned node_inflight;    /* requests in flight on this node */
    size_t output_budget;      /* queued responses, all request conns */
    size_t input_budget;       /* unfinished frames buffered, all conns */
    size_t sub_budget;         /* queued events, all subscribers */
    unsigned idle_timeout_ms;  /* 0 = never; request connections only */
    unsigned frame_timeout_ms; /* to finish a frame once begun */
    unsigned sub_snapshot_ms;  /* a snapshot may pin its view this long */
    size_t sub_snapshot_pin;   /* bytes written while a view is pinned */
    unsigned fd_reserve;       /* descriptors kept from client sockets */
};

/* Fills `c` from argv. Returns FLIP_OK, or FLIP_INVALID with a message in
 * `err`; *help is set when --help was asked for (nothing else parsed). */
int config_parse(struct config *c,
                 int argc,
                 char **argv,
                 int *help,
                 char *err,
                 size_t errlen);

/* Splits "host:port" of an IPv4 literal; FLIP_INVALID when malformed. */
int config_split_address(const char *addr,
                         char *host,
                         size_t hostlen,
                         int *port);

extern const char config_usage[];
extern const char config_usage_limits[]; /* printed after config_usage */

#endif
