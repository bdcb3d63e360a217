/* Membership as the leader holds it, and leadership transfer on request
 * (flipctl member list, flipctl leader transfer).
 *
 * The member list is read from raft's own configuration (struct raft's
 * `configuration`, public in libraft 0.22.1's header), not from --cluster:
 * it is what raft replicates to. Each member's address field there is
 * "RAFT/CLIENT", so every node knows every member's client address (for
 * NOT_LEADER redirects) from raft itself, including members added later
 * and a joining node that was given no --cluster; the --cluster list
 * still names the client address of members of a cluster bootstrapped
 * before the field carried it. */
#ifndef FLIP_RAFT_MEMBER_H
#define FLIP_RAFT_MEMBER_H

#include <stdint.h>

#include <raft.h>

#include "node.h"

struct node;

/* One configuration entry. */
struct node_member_view
{
    uint64_t id;
    char raft_address[NODE_ADDR_MAX];
    char client_address[NODE_ADDR_MAX]; /* "" when unknown */
    int role;       /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
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

/* ---- configuration changes (leader only; one at a time) ---------------- */

struct node_change;
/* Fires once with FLIP_OK or a FLIP_* code (raft's outcome). */
typedef void (*node_change_cb)(struct node_change *ch, int status);

struct node_change
{
    struct raft_change req; /* raft's; first */
    struct node *n;
    uint64_t id;
    int role;   /* the role asked for */
    int assign; /* after raft_add: assign `role` next */
    node_change_cb cb;
    void *data;    /* the caller's */
    char why[160]; /* a refusal's reason */
};

/* Each returns FLIP_OK when the change started (cb will fire), or FLIP_OK
 * with *already = 1 when it is already made (no callback), or
 * FLIP_NOTLEADER, FLIP_INVALID (refused: ch->why says why),
 * FLIP_UNAVAILABLE (another change is in progress), another FLIP_* code.
 *
 * add: `raft`/`client` checked by the caller. The member starts as a
 * spare (raft_add) and is then assigned `role`: for a voter raft first
 * catches it up in rounds (raft_assign), so it votes only once it holds
 * the log. An id present with the same addresses but another role is
 * assigned the role (a retry after an interrupted add).
 * remove/assign: refused for the leader itself (transfer first), and for
 * a voter whose loss would leave fewer than 2 voters or fewer reachable
 * voters than a majority of the rest. */
int node_member_add(struct node *n,
                    struct node_change *ch,
                    uint64_t id,
                    const char *raft,
                    const char *client,
                    int role,
                    node_change_cb cb,
                    int *already);
int node_member_remove(struct node *n,
                       struct node_change *ch,
                       uint64_t id,
                       node_change_cb cb,
                       int *already);
int node_member_assign(struct node *n,
                       struct node_change *ch,
                       uint64_t id,
                       int role,
                       node_change_cb cb,
                       int *already);

#endif
