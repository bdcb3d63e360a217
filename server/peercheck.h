/* Before a node bootstraps an empty data directory: do the other members
 * already hold a cluster this node was part of?
 *
 * A node whose data directory was wiped (or replaced by an empty one) and
 * restarted with the same flags would otherwise bootstrap, join the
 * running cluster as a member that holds nothing, and serve an empty flag
 * set. So server_start calls peercheck_run before node_init when the
 * data directory holds no raft state: it asks every other member over its
 * client port (Hello, then Status, all within PEERCHECK_MS in total) and
 * refuses the start when one answers with a cluster id and lists this
 * member as joined. When no member answers, or none has a cluster yet, or
 * the cluster never recorded this member (its first start came late), the
 * node bootstraps as before: the first start of a brand-new cluster needs
 * no flag and no order. */
#ifndef FLIP_SERVER_PEERCHECK_H
#define FLIP_SERVER_PEERCHECK_H

#include <stddef.h>

#include "config.h"

/* Whole check, over every peer. */
#define PEERCHECK_MS 2000

/* FLIP_OK to bootstrap, FLIP_INVALID (refused; errmsg says what to do). */
int peercheck_run(const struct config *c, char *errmsg, size_t len);

/* A node whose data directory holds cluster `own` ("" or NULL: none yet,
 * nothing checked) refuses to start when another member answers for a
 * different cluster: its data is another cluster's (an old backup, a
 * cluster rebuilt since), and it must not exchange raft messages with
 * this one. Same questions and bound as peercheck_run. FLIP_OK or
 * FLIP_INVALID with errmsg. */
int peercheck_cluster(const struct config *c,
                      const char *own,
                      char *errmsg,
                      size_t len);

#endif
