/* Membership as the leader holds it, and leadership transfer on request
 * (flipctl member list, flipctl leader transfer).
 *
 * The member list is read from raft's own configuration (struct raft's
 * `configuration`, public in libraft 0.22.1's header), not from --cluster:
 * it is what raft replicates to. Client addresses still come from the
 * --cluster list (node_member_by_id); a member that list does not name
 * shows an empty client address. */
#ifndef FLIP_RAFT_MEMBER_H
#define FLIP_RAFT_MEMBER_H

#include <stdint.h>

#include <raft.h>

struct node;

/* One configuration entry; the strings are borrowed from raft and from the
 * node's config, valid until the loop runs again. */
struct node_member_view
{
    uint64_t id;
    const char *raft_address;
    const char *client_address; /* "" when unknown */
    int role;                   /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
    int reachable;  /* the leader itself, or its last connect succeeded */
    uint64_t match; /* raft index known replicated there */
};

/* "voter", "standby", "spare" (or "unknown"). */
const char *node_member_role_name(int role);

/* Fills out[0..max) with the configuration in raft's order and sets
 * *n_out. FLIP_NOTLEADER unless this node leads (only the leader knows
 * the match indexes, and its configuration is the newest). */
int node_members(struct node *n,
                 struct node_member_view *out,
                 unsigned max,
                 unsigned *n_out);

struct node_transfer;
/* Fires once: when the target leads, or the transfer gave up (raft waits
 * an election timeout), or raft closed. `leader_id` is the leader this
 * node knows then (0 = none). */
typedef void (*node_transfer_cb)(struct node_transfer *t, uint64_t leader_id);

struct node_transfer
{
    struct raft_transfer req; /* raft's; first */
    struct node *n;
    uint64_t target; /* the id asked for; raft's choice when 0 was */
    node_transfer_cb cb;
    void *data; /* the caller's */
};

/* Starts handing leadership to voter `id` (0: raft picks the most
 * up-to-date voter). `t` must live until its callback.
 * @return FLIP_OK (cb will fire), FLIP_NOTLEADER, FLIP_INVALID (`id` is
 *         this node or not a voter; no other voter for 0), FLIP_UNAVAILABLE
 *         (a transfer or a planned stop is under way). */
int node_transfer(struct node *n,
                  struct node_transfer *t,
                  uint64_t id,
                  node_transfer_cb cb);

#endif
